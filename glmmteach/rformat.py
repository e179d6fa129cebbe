"""Numbers printed as R prints them: the layouts of glmmTMB's ``summary()`` and of R's ``print.htest``.

R chooses one layout for a whole column of numbers (``format``, ``formatReal``), writes p-values by
``format.pval``, and coefficient tables by ``printCoefmat``. The summary of a fit
(:class:`glmmteach.results.Summary`), the tests of :mod:`glmmteach.diagnostics` and any other printout
that sits beside R output use these functions, so that both read the same, digit for digit.

>>> r_format([0.02273, 0.04271], 4)
['0.02273', '0.04271']
>>> r_format_pval([1e-20, 0.5])
['<2e-16', '0.5']
"""
from __future__ import annotations

import numpy as np
import pandas as pd

def _significant(x: float, digits: int) -> tuple[int, int]:
    """(power of ten, number of significant digits) of x rounded to ``digits`` significant digits,
    trailing zeros dropped: 9.0746 with 3 digits is 9.07, (0, 3); 0.5 is (-1, 1)."""
    mantissa, exponent = f"{abs(x):.{digits - 1}e}".split("e")
    return int(exponent), len(mantissa.replace(".", "").rstrip("0")) or 1


def r_format(x, digits: int) -> list[str]:
    """R's ``format(x, digits = digits)`` of a numeric vector: one layout for all values.

    Fixed notation with as many decimals as the value that needs the most for ``digits``
    significant digits; scientific notation instead when that is narrower (R's ``formatReal``).
    NaN prints as ``NaN`` and infinities as ``Inf`` and ``-Inf``, as R prints them; a negative zero (a
    tiny negative number rounded, say) prints as 0, since R's sign test is ``x < 0``.
    """
    x = np.asarray(x, float).ravel() + 0.0
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return [_r_special(v) for v in x]
    power, sig = np.array([_significant(v, digits) if v != 0 else (0, 1) for v in finite]).T
    left = power + 1
    fixed_width = np.max((finite < 0) + np.maximum(left, 1))
    decimals = max(0, int(np.max(sig - left)))
    fixed_width += decimals + (decimals > 0)
    exponent_digits = 2 if power.max() >= 100 or power.min() <= -99 else 1
    mantissa = int(sig.max()) - 1
    sci_width = int(np.any(finite < 0)) + (mantissa > 0) + mantissa + 4 + exponent_digits
    form = f".{decimals}f" if fixed_width <= sci_width else f".{mantissa}e"
    return [f"{v:{form}}" if np.isfinite(v) else _r_special(v) for v in x]


def _r_special(v: float) -> str:
    return "NaN" if np.isnan(v) else ("Inf" if v > 0 else "-Inf")


def r_format_pval(p, digits: int = 3, eps: float = np.finfo(float).eps) -> list[str]:
    """R's ``format.pval``: values from 1e-4 up in one layout, smaller ones in another, and those below
    machine epsilon as ``<2e-16`` (``< 2e-16`` when the other entries are wide); NaN as ``NA``."""
    p = np.asarray(p, float).ravel()
    out = np.array(["NA"] * len(p), dtype=object)
    tiny, rest = ~np.isnan(p) & (p < eps), ~np.isnan(p) & (p >= eps)
    with np.errstate(divide="ignore"):
        power = np.floor(np.log10(np.where(p > 0, p, 1e-50)))
    fixed = rest & ((power >= -3) | ((power == -4) & (digits > 1)))
    for group in (fixed, rest & ~fixed):
        if group.any():
            out[group] = r_format(p[group], digits)
    if tiny.any():
        d = max(1, digits - 2)
        width = max((len(s) for s in out[rest]), default=None)
        if width is not None and d > 1 and d + 6 > width:
            d = max(1, width - 7)
        sep = "" if d == 1 and (width is None or width <= 6) else " "
        out[tiny] = "<" + sep + r_format([eps], d)[0]
    return list(out)


def zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's (4.2) ``zapsmall``: ``round(x, digits - log10(max|x|))``, where ``round`` takes the nearest whole
    number of decimals. A value that rounds to zero is 0, not -0 (R prints both as 0; Python's -0.0 as "-0.000")."""
    finite = np.abs(x[np.isfinite(x)])
    largest = finite.max() if finite.size else 0.0
    decimals = max(0.0, digits - np.log10(largest)) if largest > 0 else digits
    return np.round(x, int(np.floor(decimals + 0.5))) + 0.0


def _round_half(x: np.ndarray, decimals: float) -> np.ndarray:
    """R's ``round(x, digits)``: a non-whole number of digits counts as the nearest whole one."""
    return np.round(x, int(np.floor(decimals + 0.5)))


def coefficient_lines(table: pd.DataFrame, digits: int = 4) -> list[str]:
    """The coefficient table as R's ``printCoefmat(table, zap.ind = 3, digits = 4)`` prints it (glmmTMB's
    summary): estimates and SEs in one layout rounded for the smallest of them, test statistics to 3
    decimals at most, p-values by :func:`r_format_pval`, and significance stars when some p < 0.1."""
    values = table.to_numpy(float)
    estimates, z, p = values[:, :2], values[:, 2], values[:, 3]
    nonzero = np.abs(estimates[np.isfinite(estimates) & (estimates != 0)])
    digmin = 1 + (np.floor(np.log10(nonzero.min())) if nonzero.size else 0)
    columns = np.array(r_format(np.round(estimates.ravel(), int(max(1, digits - digmin))), digits),
                       dtype=object).reshape(estimates.shape)
    reads_as_zero = np.array([[float(c) == 0 for c in row] for row in columns])
    fix = np.isfinite(estimates) & ((estimates == 0) != reads_as_zero)
    for i, j in zip(*np.nonzero(fix)):            # a value that rounding turned into 0: its own layout
        columns[i, j] = r_format([estimates[i, j]], max(1, digits - 1))[0]
    finite_z = np.abs(z[np.isfinite(z)])
    largest = finite_z.max() if finite_z.size else 0.0
    z = _round_half(z, max(0.0, digits - np.log10(largest)) if largest > 0 else digits)   # zapsmall
    cells = {"Estimate": columns[:, 0], "Std. Error": columns[:, 1],
             table.columns[2]: r_format(np.round(z, max(1, min(5, digits - 1))), digits),
             # printCoefmat shows a NaN p-value (from a NaN standard error) as NaN, not format.pval's NA
             table.columns[3]: ["NaN" if np.isnan(v) else s
                                for v, s in zip(p, r_format_pval(p, max(1, min(5, digits - 1))))]}
    if np.any(p[~np.isnan(p)] < 0.1):
        symbols = np.select([p <= 0.001, p <= 0.01, p <= 0.05, p <= 0.1, p <= 1], ["***", "**", "*", ".", " "], "")
        width = max(len(s) for s in symbols)
        cells[""] = [s.ljust(width) for s in symbols]
    return character_matrix(list(map(str, table.index)), cells)


def character_matrix(rows: list[str], cells: dict, right: bool = True) -> list[str]:
    """A table of strings as R's ``print(quote = FALSE, right = right)``: row names left-aligned, every
    column aligned to the wider of its header and entries, one space between columns. (Headers made of
    spaces stand for R's empty column names, which a dict cannot repeat.)"""
    row_width = max(len(r) for r in rows)
    headers = [h if h.strip() else "" for h in cells]
    widths = [max(len(h), *(len(c) for c in col)) for h, col in zip(headers, cells.values())]
    align = str.rjust if right else str.ljust
    lines = [" " * row_width + "".join(" " + align(h, w) for h, w in zip(headers, widths))]
    for i, row in enumerate(rows):
        lines.append(row.ljust(row_width) + "".join(" " + align(col[i], w) for col, w in zip(cells.values(), widths)))
    return lines


def correlation_rows(Sigma: np.ndarray, width: int) -> list[list[str]]:
    """Correlations of one term below the diagonal, as strings in ``width`` columns: R's
    ``format(round(corr, 2), nsmall = 2)`` over the whole matrix (so one width for all), upper part blank."""
    sd = np.sqrt(np.diag(Sigma))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.round(Sigma / np.outer(sd, sd), 2)
    text = [f"{v:.2f}" if np.isfinite(v) else "NaN" for v in corr.ravel()]
    text = np.array([t.rjust(max(map(len, text))) for t in text], dtype=object).reshape(corr.shape)
    k = len(sd)
    return [[text[r, c] if c < r else "" for c in range(width)] for r in range(k)]
