"""Likelihood-ratio tests of nested fits: ``gt.anova(m0, m1, ...)``, as R's ``anova()`` on glmmTMB fits; and
the AICs of fits that need not be nested: ``gt.AIC(m1, m2, ...)``, as R's ``AIC(m1, m2, ...)``.

The fits are sorted by their number of parameters :math:`k` (``Df``); each row after the first is tested
against the one before it: :math:`\\chi^2 = 2\\max(0, \\log L_i - \\log L_{i-1})` on
:math:`k_i - k_{i-1}` degrees of freedom (``Chisq``, ``Chi Df``, ``Pr(>Chisq)``). This is only a test when
the smaller model is a special case of the larger one; for a variance tested at 0 the chi-square p-value
is conservative (see the lesson "Is the random effect needed?").
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .rformat import r_format, r_format_pval, zapsmall


class AnovaTable:
    """The table of :func:`anova`: ``print`` it or read ``.table``."""

    def __init__(self, table: pd.DataFrame, formulas: list[str]):
        self.table, self.formulas = table, formulas

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        lines = ["Models:"] + [f"{name}: {formula}" for name, formula in zip(self.table.index, self.formulas)]
        t = self.table
        cells = {"Df": [str(int(v)) for v in t["Df"]]}
        for column in ("AIC", "BIC", "logLik", "deviance", "Chisq"):      # as R's printCoefmat(zap.ind = ...)
            cells[column] = _blank_na(t[column], lambda v: r_format(zapsmall(v, 5), 5))
        cells["Chi Df"] = [str(int(v)) if np.isfinite(v) else "" for v in t["Chi Df"]]
        cells["Pr(>Chisq)"] = _blank_na(t["Pr(>Chisq)"], lambda v: r_format_pval(v, 4))
        p = t["Pr(>Chisq)"].to_numpy(float)
        stars = any(p[np.isfinite(p)] < 0.1)
        if stars:
            cells[""] = [_stars(v) for v in p]
        rows = list(map(str, t.index))
        width = max(map(len, rows))
        widths = {c: max(len(c), *(len(s) for s in v)) for c, v in cells.items()}
        lines.append(" " * width + "".join(" " + c.rjust(widths[c]) for c in cells))
        for i, row in enumerate(rows):
            line = "".join(" " + (v[i].ljust(widths[c]) if c == "" else v[i].rjust(widths[c]))
                           for c, v in cells.items())
            lines.append(row.ljust(width) + line)
        if stars:
            lines += ["---", "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"]
        return "\n".join(lines)


def _blank_na(column: pd.Series, formatter) -> list[str]:
    values = column.to_numpy(float)
    finite = np.isfinite(values)
    out = [""] * len(values)
    if finite.any():
        for i, s in zip(np.flatnonzero(finite), formatter(values[finite])):
            out[i] = s
    return out


def _stars(p: float) -> str:
    if not np.isfinite(p):
        return ""
    return "***" if p <= 0.001 else "**" if p <= 0.01 else "*" if p <= 0.05 else "." if p <= 0.1 else " "


def anova(*fits, names: list[str] | None = None) -> AnovaTable:
    """Likelihood-ratio table of nested fits (R's ``anova(m0, m1, ...)`` on glmmTMB fits).

    Parameters
    ----------
    *fits : GlmmFit
        Two or more fits to the same data (the same observations of the same response).
    names : list of str, optional
        Labels of the rows, by default ``"Model 1"``, ``"Model 2"``, ... in the order given.

    Returns
    -------
    AnovaTable whose ``.table`` has the columns Df, AIC, BIC, logLik, deviance, Chisq, Chi Df and
    Pr(>Chisq), one row per fit, sorted by Df.

    Raises
    ------
    ValueError
        If the fits used different data, or if they are REML fits with different fixed effects (REML
        likelihoods of different fixed effects are not comparable), or mix REML and ML.
    """
    if len(fits) < 2:
        raise ValueError("anova() compares two or more fits, e.g. gt.anova(m0, m1); "
                         "for the tests of one model's terms see gt.joint_tests(fit)")
    names = list(names) if names is not None else [f"Model {i + 1}" for i in range(len(fits))]
    if len(names) != len(fits) or len(set(names)) != len(names):
        raise ValueError(f"names must be {len(fits)} different labels, one per fit; got {names!r}")
    _check_comparable(fits, names)
    order = np.argsort([f.n_parameters for f in fits], kind="stable")
    fits, names = [fits[i] for i in order], [names[i] for i in order]
    loglik = np.array([f.loglik for f in fits])
    df = np.array([f.n_parameters for f in fits], float)
    chisq = np.concatenate([[np.nan], 2 * np.maximum(0, np.diff(loglik))])
    chi_df = np.concatenate([[np.nan], np.diff(df)])
    with np.errstate(invalid="ignore"):
        p = np.where(np.isfinite(chisq), stats.chi2.sf(chisq, np.where(chi_df > 0, chi_df, np.nan)), np.nan)
    table = pd.DataFrame({"Df": df.astype(int), "AIC": [f.aic for f in fits], "BIC": [f.bic for f in fits],
                          "logLik": loglik, "deviance": -2 * loglik, "Chisq": chisq, "Chi Df": chi_df,
                          "Pr(>Chisq)": p}, index=names)
    return AnovaTable(table, [f.design.formula.text for f in fits])


def AIC(*fits, names: list[str] | None = None) -> pd.DataFrame:
    """The AIC of each fit, :math:`\\mathrm{AIC} = -2\\log L + 2k` with :math:`k` its number of parameters,
    one row per fit in the order given (R's ``AIC(m1, m2, ...)``).

    R: ``AIC(m1, m2)`` gives the same ``df`` and ``AIC`` columns.

    Unlike :func:`anova`, the fits need not be nested: a binomial model with a random effect and a beta-binomial
    model of the same counts are compared by their AICs, the smaller the better. They must be fits of the same
    observations of the same response, since likelihoods of different data cannot be compared.

    Parameters
    ----------
    *fits : GlmmFit
        One or more fits to the same data.
    names : list of str, optional
        Labels of the rows, by default ``"Model 1"``, ``"Model 2"``, ... in the order given.

    Returns
    -------
    pandas.DataFrame with the columns ``df`` (:math:`k`), ``logLik`` and ``AIC``, one row per fit.

    Raises
    ------
    ValueError
        If no fit is given, the names are not one per fit, the fits used different data, or they are REML fits
        with different fixed effects (or mix REML and ML).
    """
    if not fits:
        raise ValueError("AIC() needs at least one fit, e.g. gt.AIC(m1, m2)")
    names = list(names) if names is not None else [f"Model {i + 1}" for i in range(len(fits))]
    if len(names) != len(fits) or len(set(names)) != len(names):
        raise ValueError(f"names must be {len(fits)} different labels, one per fit; got {names!r}")
    _check_comparable(fits, names)
    return pd.DataFrame({"df": [f.n_parameters for f in fits], "logLik": [f.loglik for f in fits],
                         "AIC": [f.aic for f in fits]}, index=names)


def _check_comparable(fits, names) -> None:
    first = fits[0]
    for fit, name in zip(fits[1:], names[1:]):
        if fit.nobs != first.nobs:
            raise ValueError(f"the fits were made with different data: {names[0]} used {first.nobs} observations "
                             f"and {name} {fit.nobs}; likelihoods of different data cannot be compared (check "
                             "for rows dropped for missing values in one model's columns)")
        same_y = np.array_equal(fit.design.y, first.design.y) and np.array_equal(fit.design.n, first.design.n)
        if not same_y:
            raise ValueError(f"the fits were made with different data: the response of {name} "
                             f"({fit.design.response_name}) is not the response of {names[0]} "
                             f"({first.design.response_name}) observation by observation; likelihoods of "
                             "different responses cannot be compared")
    reml = [f.objective.reml for f in fits]
    if any(reml) and not all(reml):
        raise ValueError("some fits are REML and some ML; compare fits made the same way (for different fixed "
                         "effects: all with reml=False)")
    if all(reml):
        for fit, name in zip(fits[1:], names[1:]):
            same = fit.design.X.shape == first.design.X.shape and np.allclose(fit.design.X, first.design.X)
            if not same:
                raise ValueError(f"{names[0]} and {name} are REML fits with different fixed effects: their "
                                 "restricted likelihoods are of different data (the residuals of different X) "
                                 "and cannot be compared. Refit both with reml=False to compare fixed effects.")
