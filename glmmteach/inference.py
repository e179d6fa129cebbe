"""Estimated marginal means, contrasts and joint tests: R's emmeans on a fitted GLMM.

Everything here is a linear function of the fixed effects. A *reference grid* holds every combination of
the levels of the model's factors, with each numeric covariate at its mean; its rows give a matrix
:math:`X_g`. A marginal mean averages rows of :math:`X_g` with equal weights into a row :math:`\\ell`, and
is estimated by :math:`\\ell\\hat\\beta` with standard error :math:`\\sqrt{\\ell V \\ell^\\top}`,
:math:`V` = ``fit.vcov``. A contrast is a combination :math:`c^\\top L` of such rows; a joint test asks
whether several contrasts are all zero,
:math:`F = (L\\hat\\beta)^\\top (L V L^\\top)^{-1} (L\\hat\\beta) / r`.
The degrees of freedom are the fit's residual df, as emmeans uses for glmmTMB; on the response scale the
means are :math:`g^{-1}(\\ell\\hat\\beta)` with the delta-method SE
:math:`|d\\mu/d\\eta|\\,\\sqrt{\\ell V \\ell^\\top}`, and contrasts of log means (log odds) become ratios
(odds ratios), as emmeans prints them.

>>> emm = emmeans(fit, "vaccine", by="day_f", type="response")      # doctest: +SKIP
>>> emm.pairs()                                                     # doctest: +SKIP
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from . import adjust as adjustments
from .formula import Formula
from .rformat import r_format, zapsmall

_LOG_LINKS = ("log",)


# ---- the reference grid --------------------------------------------------------------------------
def _variables(text: str) -> list[str]:
    return [v for v in Formula("", "1", text, (), ()).variables() if v != "1"]


def _grid_values(fit, at: dict) -> dict:
    """Values of each predictor in the reference grid: a factor's levels (as they are in the data), a
    covariate's mean; ``at`` replaces either (a factor's levels given as text or as values)."""
    design, data = fit.design, fit.data
    if data is None:
        raise ValueError("this fit keeps no data, so its reference grid cannot be built")
    names = _variables(design.formula.fixed)
    for expr in design.formula.offsets:
        names += [v for v in _variables(expr) if v not in names]
    at = dict(at or {})
    unknown = [k for k in at if k not in names]
    if unknown:
        raise ValueError(f"at= names {unknown[0]!r}, which is not a predictor of the model; "
                         f"its predictors are: {', '.join(names)}")
    values = {}
    for name in names:
        column = data[name]
        if name in design.factor_levels:
            levels = _levels_in_data(column)
            values[name] = _pick_levels(levels, at[name], name) if name in at else levels
        else:
            wanted = at.get(name, float(np.mean(column.to_numpy(float))))
            values[name] = list(np.atleast_1d(np.asarray(wanted, float)))
    return values


def _levels_in_data(column: pd.Series) -> list:
    """The levels of a factor column in R's order: a categorical's categories (those present), else sorted."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column.dropna())
        return [c for c in column.cat.categories if c in present]
    return sorted(column.dropna().unique())


def _pick_levels(levels: list, wanted, name: str) -> list:
    wanted = [wanted] if np.isscalar(wanted) else list(wanted)
    text = {str(level): level for level in levels}
    picked = []
    for w in wanted:
        if str(w) not in text:
            raise ValueError(f"at= gives {name!r} the level {w!r}, which is not in the data; "
                             f"its levels are: {', '.join(map(str, levels))}")
        picked.append(text[str(w)])
    return picked


def reference_grid(fit, at: dict | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The reference grid of a fit: every combination of the factors' levels (the first factor varying
    fastest, as R's ``expand.grid``), covariates at their means.

    Returns
    -------
    grid : DataFrame, one row per combination, in the data's types
    X : its fixed-effects matrix, one row per grid row
    offset : the offset at each grid row
    """
    values = _grid_values(fit, at)
    names = list(values)
    rows = list(itertools.product(*(values[n] for n in reversed(names))))
    grid = pd.DataFrame([dict(zip(reversed(names), r)) for r in rows])[names] if names else pd.DataFrame(index=[0])
    for name in names:
        column = fit.data[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            grid[name] = pd.Categorical(grid[name], categories=column.cat.categories)
        elif name in fit.design.factor_levels:
            grid[name] = grid[name].astype(column.dtype)
    X = fit.design.new_X(grid)
    return grid, X, fit.design.new_offset(grid)


# ---- linear functions of beta and their summary ---------------------------------------------------
class _LinearFunctions:
    """Rows L of linear functions of beta with labels; estimates L beta + offset, SE sqrt(diag(L V L'))."""

    def __init__(self, fit, labels: pd.DataFrame, L: np.ndarray, offset: np.ndarray, by: list[str],
                 level: float):
        self.fit, self.labels, self.L, self.offset = fit, labels.reset_index(drop=True), L, offset
        self.by, self.level = by, level

    @property
    def df(self) -> float:
        """The fit's residual degrees of freedom (emmeans' df for glmmTMB fits)."""
        return float(self.fit.df_resid)

    @property
    def estimate(self) -> np.ndarray:
        return self.L @ self.fit.fixef.to_numpy() + self.offset

    @property
    def covariance(self) -> np.ndarray:
        return self.L @ self.fit.vcov.to_numpy() @ self.L.T

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.covariance))

    def by_groups(self) -> list[np.ndarray]:
        """Row indices of each ``by`` group (one group of all rows without ``by``), in order of appearance."""
        if not self.by:
            return [np.arange(len(self.labels))]
        keys = self.labels[self.by].astype(str).agg("\r".join, axis=1)
        return [np.flatnonzero(keys.to_numpy() == k) for k in dict.fromkeys(keys)]

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return "\n".join(emmeans_lines(self.table, self.estimate_name, self.by, self.notes()))


class EmmGrid(_LinearFunctions):
    """Estimated marginal means (emmeans' ``emmGrid``): ``print`` it, read ``.table``, ``.plot()`` it,
    compare them with ``.pairs()`` or :func:`contrast`."""

    def __init__(self, fit, labels, L, offset, specs, by, type, level, averaged):
        super().__init__(fit, labels, L, offset, by, level)
        self.specs, self.type, self.averaged = specs, type, averaged

    @property
    def link(self):
        return self.fit.family.link

    @property
    def back_transformed(self) -> bool:
        return self.type == "response" and self.link.name != "identity"

    @property
    def estimate_name(self) -> str:
        """emmeans' name of the estimate: ``emmean`` on the link scale; on the response scale ``prob``
        (binomial), ``rate`` (Poisson) or ``response``."""
        if not self.back_transformed:
            return "emmean"
        return self.fit.family.response_name

    @property
    def table(self) -> pd.DataFrame:
        """One row per mean: the factors, the estimate, SE, df, lower.CL, upper.CL (as emmeans' summary)."""
        eta, se = self.estimate, self.se
        q = stats.t.ppf(0.5 + self.level / 2, self.df)
        lower, upper = eta - q * se, eta + q * se
        if self.back_transformed:
            inverse = self.link.inverse
            lower, upper = np.sort([inverse(lower), inverse(upper)], axis=0)
            eta, se = inverse(eta), se * np.abs(self.link.dmu_deta(eta))
        table = self.labels.copy()
        table[self.estimate_name], table["SE"], table["df"] = eta, se, self.df
        table["lower.CL"], table["upper.CL"] = lower, upper
        return table

    def notes(self) -> list[str]:
        notes = []
        if self.averaged:
            notes.append("Results are averaged over the levels of: " + ", ".join(self.averaged))
        if self.link.name != "identity" and not self.back_transformed:
            notes.append(f"Results are given on the {self.link.name} (not the response) scale.")
        notes.append(f"Confidence level used: {self.level:g}")
        if self.back_transformed:
            notes.append(f"Intervals are back-transformed from the {self.link.name} scale")
        return notes

    def level_labels(self) -> list[str]:
        """Labels of the means for contrasts (emmeans' style): the levels of the non-``by`` factors
        joined by spaces, a numeric-looking level prefixed by its factor's name ("vaccine1")."""
        parts = []
        for name in self.specs:
            values = pd.Series(_as_text(self.labels[name]))
            numeric = pd.to_numeric(values, errors="coerce").notna().all()
            parts.append(name + values if numeric else values)
        labels = parts[0]
        for more in parts[1:]:
            labels = labels + " " + more
        return [f"({s})" if any(c in s for c in "-+/*") else s for s in labels]

    def pairs(self, adjust: str = "tukey", reverse: bool = False) -> "Contrasts":
        """All pairwise differences (within each ``by`` group), as emmeans' ``pairs()``."""
        return contrast(self, "revpairwise" if reverse else "pairwise", adjust=adjust)

    def contrast(self, method="pairwise", ref=0, adjust: str | None = None) -> "Contrasts":
        return contrast(self, method, ref=ref, adjust=adjust)

    #: the function that draws :meth:`plot`; ``import glmmteach`` sets it to
    #: :func:`glmmteach.plotting.plot_emmeans` (the core imports no plotting; matplotlib loads on first use)
    painter = None

    def plot(self, ax=None):
        """The estimates with their confidence intervals, one panel row per ``by`` group."""
        return type(self).painter(self, ax=ax)


def _as_text(values) -> list[str]:
    """Values as R's ``as.character`` writes them: a number with up to 15 significant digits, no trailing
    ".0" (1.0 is "1", -0.5 is "-0.5")."""
    return [f"{v:.15g}" if isinstance(v, (float, np.floating)) else str(v) for v in values]


def _parse_specs(specs, by) -> tuple[list[str], list[str]]:
    """``"vaccine"``, ``["gen", "extract"]``, ``"gen * extract"`` or ``"~ vaccine | day"``."""
    by = [by] if isinstance(by, str) else list(by or [])
    if isinstance(specs, str):
        text = specs.strip().lstrip("~")
        if "|" in text:
            text, condition = text.split("|", 1)
            by += [v.strip() for v in condition.replace("*", "+").replace(":", "+").split("+") if v.strip()]
        specs = [v.strip() for v in text.replace("*", "+").replace(":", "+").split("+") if v.strip()]
    return list(specs), by


def emmeans(fit, specs, by=None, at: dict | None = None, type: str = "link", level: float = 0.95) -> EmmGrid:
    """Estimated marginal means, as R's ``emmeans(fit, specs, by = by, at = at, type = type)``.

    Each mean averages the reference grid (:func:`reference_grid`) over the factors not named, with
    equal weights.

    Parameters
    ----------
    fit : GlmmFit
    specs : str or list of str
        The factor(s) whose means are wanted: ``"vaccine"``, ``["gen", "extract"]``; the formula forms
        ``"~ vaccine | day_f"`` and ``"gen * extract"`` also work.
    by : str or list of str, optional
        Factors to condition on: a table (and a family of comparisons) for each of their levels.
    at : dict, optional
        Restrict the grid: ``{"day_f": "901"}`` (a level as text or as its value), or covariate values.
    type : ``"link"`` or ``"response"``
        The scale of the estimates: ``"response"`` back-transforms estimates and limits to
        :math:`g^{-1}(\\ell\\hat\\beta)`, with delta-method SEs.
    level : float
        Confidence level of the intervals, :math:`\\ell\\hat\\beta \\pm t_{1-\\alpha/2,\\nu}\\,\\mathrm{SE}`.

    Returns
    -------
    EmmGrid
    """
    if type not in ("link", "response"):
        raise ValueError(f"type must be 'link' or 'response'; got {type!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1; got {level!r}")
    specs, by = _parse_specs(specs, by)
    grid, X, offset = reference_grid(fit, at)
    for name in specs + by:
        if name not in grid.columns:
            raise ValueError(f"{name!r} is not a predictor of the model; its predictors are: "
                             f"{', '.join(grid.columns)}")
    keep = specs + by
    keys = grid[keep].astype(str).agg("\r".join, axis=1).to_numpy()
    # the means in emmeans' order: the first of specs varies fastest, then the rest, then by
    combos = list(itertools.product(*(list(dict.fromkeys(grid[n])) for n in reversed(keep))))
    labels = pd.DataFrame([dict(zip(reversed(keep), c)) for c in combos])[keep]
    for name in keep:                   # factors as categoricals (emmeans' summary holds R factors)
        if name in fit.design.factor_levels:
            labels[name] = pd.Categorical(labels[name], categories=list(dict.fromkeys(labels[name])))
    L, o = [], []
    for _, row in labels.iterrows():
        rows = keys == "\r".join(str(row[n]) for n in keep)
        L.append(X[rows].mean(axis=0))
        o.append(offset[rows].mean())
    averaged = [n for n in grid.columns if n not in keep and n in fit.design.factor_levels
                and grid[n].nunique() > 1]
    _warn_interactions(fit, keep, [n for n in grid.columns if n not in keep and n in fit.design.factor_levels])
    return EmmGrid(fit, labels, np.array(L), np.array(o), specs, by, type, level, averaged)


def _warn_interactions(fit, keep: list[str], others: list[str]) -> None:
    """emmeans' note when a factor of the means interacts with a factor they are averaged over."""
    for term in fit.design.fixed_spec.formula:
        variables = {v for f in term.factors for v in _variables(str(f.expr))}
        if len(variables) > 1 and variables & set(keep) and variables & set(others):
            warnings.warn("NOTE: Results may be misleading due to involvement in interactions",
                          UserWarning, stacklevel=3)
            return


# ---- contrasts -----------------------------------------------------------------------------------
def _contrast_matrix(method, levels: list[str], ref) -> tuple[dict, str, bool]:
    """(``{label: weights}``, default adjustment, whether they are pairwise comparisons)."""
    k = len(levels)
    if isinstance(method, dict):
        weights = {}
        for name, w in method.items():
            w = np.asarray(w, float)
            if w.shape != (k,):
                raise ValueError(f"the weights of contrast {name!r} must be {k} numbers, one per mean "
                                 f"({', '.join(levels)}); got {w.size}")
            weights[str(name)] = w
        return weights, "none", False
    unit = np.eye(k)
    if method == "pairwise":
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        return {f"{levels[i]} - {levels[j]}": unit[i] - unit[j] for i, j in pairs}, "tukey", True
    if method == "revpairwise":
        pairs = [(i, j) for i in range(1, k) for j in range(i)]
        return {f"{levels[i]} - {levels[j]}": unit[i] - unit[j] for i, j in pairs}, "tukey", True
    if method == "trt.vs.ctrl":
        r = _reference_position(ref, levels)
        return {f"{levels[i]} - {levels[r]}": unit[i] - unit[r] for i in range(k) if i != r}, "dunnettx", False
    if method == "consec":
        return {f"{levels[i + 1]} - {levels[i]}": unit[i + 1] - unit[i] for i in range(k - 1)}, "mvt", False
    raise ValueError(f"method must be 'pairwise', 'revpairwise', 'trt.vs.ctrl', 'consec' or a dict of "
                     f"weights such as {{'1 vs 2': [1, -1, 0, 0]}}; got {method!r}")


def _reference_position(ref, levels: list[str]) -> int:
    """``ref``: a position (0 = the first mean, as Python counts) or a label."""
    if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
        if not 0 <= ref < len(levels):
            raise ValueError(f"ref={ref} is out of range: there are {len(levels)} means "
                             f"(positions 0 to {len(levels) - 1})")
        return int(ref)
    plain = [s.strip("()") for s in levels]
    for candidates in (levels, plain):
        if str(ref) in candidates:
            return candidates.index(str(ref))
    raise ValueError(f"ref={ref!r} is neither a position nor one of the means: {', '.join(levels)}")


class Contrasts(_LinearFunctions):
    """Contrasts of marginal means (emmeans' contrast results): ``print`` them or read ``.table``."""

    def __init__(self, emm: EmmGrid, labels, L, offset, adjust: str, pairs: bool, n_means: int,
                 is_contrast: bool):
        super().__init__(emm.fit, labels, L, offset, emm.by, emm.level)
        self.emm, self.pairs_family, self.n_means = emm, pairs, n_means
        self.is_contrast, self.adjust = is_contrast, adjust

    @property
    def on_log_scale(self) -> bool:
        """Contrasts of log means (log odds) are log ratios (log odds ratios): emmeans keeps their
        transformation. Other links, and weights that do not sum to zero, leave them on the link scale."""
        return self.is_contrast and self.emm.link.name in ("log", "logit")

    @property
    def ratio_name(self) -> str | None:
        """``ratio`` (log link) or ``odds.ratio`` (logit) when the contrasts are shown back-transformed."""
        if not (self.emm.back_transformed and self.on_log_scale):
            return None
        return {"log": "ratio", "logit": "odds.ratio"}[self.emm.link.name]

    @property
    def estimate_name(self) -> str:
        return self.ratio_name or "estimate"

    def pvalues(self) -> np.ndarray:
        t = self.estimate / self.se
        p = np.empty(len(t))
        for rows in self.by_groups():
            corr = self.covariance[np.ix_(rows, rows)]
            corr = corr / np.sqrt(np.outer(np.diag(corr), np.diag(corr)))
            p[rows] = adjustments.adjust(t[rows], self.df, self.adjust, self.n_means, corr)
        return p

    @property
    def table(self) -> pd.DataFrame:
        """contrast, the by factors, estimate (or ratio / odds.ratio), SE, df, [null], t.ratio, p.value."""
        estimate, se = self.estimate, self.se
        table = self.labels.copy()
        if self.ratio_name:
            table["contrast"] = [s.replace(" - ", " / ") for s in table["contrast"]]
            table[self.ratio_name], table["SE"] = np.exp(estimate), np.exp(estimate) * se
        else:
            table["estimate"], table["SE"] = estimate, se
        table["df"] = self.df
        if self.ratio_name:
            table["null"] = 1.0
        table["t.ratio"], table["p.value"] = estimate / se, self.pvalues()
        return table

    def family_sizes(self) -> tuple[int, int]:
        return self.n_means, len(self.by_groups()[0])

    def confint(self, level: float | None = None, adjust: str | None = None) -> "ContrastIntervals":
        """Confidence intervals of the contrasts, :math:`c^\\top L\\hat\\beta \\pm c_\\alpha\\,\\mathrm{SE}`, with
        :math:`c_\\alpha` from :func:`glmmteach.adjust.critical_value`: with an adjustment the intervals of
        one ``by`` group cover all their contrasts together with probability ``level``. Ratios (odds
        ratios) get the back-transformed limits :math:`\\exp(\\cdot)`.

        Parameters
        ----------
        level : float, optional
            Confidence level; by default that of the means (0.95).
        adjust : str, optional
            The simultaneous adjustment (``"tukey"``, ``"dunnettx"``, ``"mvt"``, ``"sidak"``,
            ``"bonferroni"``, ``"none"``; ``"holm"`` gives Bonferroni's intervals, as in emmeans).
            By default the contrasts' own p-value adjustment.

        R: ``confint(pairs(emm), level = 0.95, adjust = "tukey")`` (emmeans)."""
        level = self.level if level is None else level
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1; got {level!r}")
        adjust = self.adjust if adjust is None else adjust
        if adjust not in adjustments.METHODS:
            raise ValueError(f"adjust must be one of {', '.join(map(repr, adjustments.METHODS))}; "
                             f"got {adjust!r}")
        return ContrastIntervals(self, level, "bonferroni" if adjust == "holm" else adjust)

    def link_notes(self) -> list[str]:
        """The notes on what the means average over and on the scale of the contrasts, as emmeans
        prints them (first, before those on the adjustment)."""
        notes, link = [], self.emm.link.name
        if self.emm.averaged:            # emmeans keeps the grid's note first
            notes.append("Results are averaged over the levels of: " + ", ".join(self.emm.averaged))
        if link != "identity" and not self.on_log_scale:
            notes.append(f"Note: contrasts are still on the {link} scale")
        elif link != "identity" and not self.emm.back_transformed:
            scale = "log odds ratio" if link == "logit" else link
            notes.append(f"Results are given on the {scale} (not the response) scale.")
        return notes

    def notes(self) -> list[str]:
        notes = self.link_notes() + self.adjustment_note(self.adjust, "P value", "tests")
        if self.ratio_name:
            notes.append(f"Tests are performed on the {self.ratio_scale()} scale")
        return notes

    def adjustment_note(self, adjust: str, what: str, units: str) -> list[str]:
        """emmeans' line on the multiplicity adjustment, if any: ``"{what} adjustment: tukey method for
        comparing a family of k estimates"`` (k means), or ``"... {adjust} method for m {units}"``."""
        n_means, n_tests = self.family_sizes()
        if adjust == "tukey" and n_means >= 3:
            return [f"{what} adjustment: tukey method for comparing a family of {n_means} estimates"]
        if adjust not in ("none", "tukey") and n_tests > 1:
            return [f"{what} adjustment: {adjust} method for {n_tests} {units}"]
        return []

    def ratio_scale(self) -> str:
        """The scale on which ratios are tested and their intervals made: ``log odds ratio`` or ``log``."""
        return "log odds ratio" if self.ratio_name == "odds.ratio" else "log"


class ContrastIntervals:
    """Confidence intervals of contrasts (emmeans' ``confint`` of a contrast result): ``print`` them or
    read ``.table`` (contrast, the ``by`` factors, the estimate or ratio, SE, df, lower.CL, upper.CL)."""

    def __init__(self, contrasts: Contrasts, level: float, adjust: str):
        self.contrasts, self.level, self.adjust = contrasts, level, adjust

    def critical_values(self) -> np.ndarray:
        """The multiplier of the SE for each contrast: one per ``by`` group (:func:`adjust.critical_value`)."""
        c = self.contrasts
        out, known = np.empty(len(c.labels)), {}
        for rows in c.by_groups():
            if self.adjust != "mvt" and len(rows) in known:    # the same value for every group of this size
                out[rows] = known[len(rows)]
                continue
            cov = c.covariance[np.ix_(rows, rows)]
            corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
            out[rows] = known[len(rows)] = adjustments.critical_value(c.df, self.adjust, self.level, len(rows),
                                                                       c.n_means, corr)
        return out

    @property
    def table(self) -> pd.DataFrame:
        c = self.contrasts
        estimate, se, q = c.estimate, c.se, self.critical_values()
        table = c.table[[*c.labels.columns, c.estimate_name, "SE", "df"]].copy()
        lower, upper = estimate - q * se, estimate + q * se
        if c.ratio_name:
            lower, upper = np.exp(lower), np.exp(upper)
        table["lower.CL"], table["upper.CL"] = lower, upper
        return table

    def notes(self) -> list[str]:
        c = self.contrasts
        notes = (c.link_notes() + [f"Confidence level used: {self.level:g}"]
                 + c.adjustment_note(self.adjust, "Conf-level", "estimates"))
        if c.ratio_name:
            notes.append(f"Intervals are back-transformed from the {c.ratio_scale()} scale")
        return notes

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return "\n".join(emmeans_lines(self.table, self.contrasts.estimate_name, self.contrasts.by,
                                        self.notes()))


def contrast(emm: EmmGrid, method="pairwise", ref=0, adjust: str | None = None) -> Contrasts:
    """Contrasts of marginal means within each ``by`` group, as R's ``contrast(emm, method, ...)``.

    On the response scale of a log (logit) link the contrasts print as ratios (odds ratios)
    :math:`\\exp(c^\\top L\\hat\\beta)`, with SE :math:`\\exp(\\cdot)\\,\\mathrm{SE}`; their tests are on the link
    scale.

    Parameters
    ----------
    emm : EmmGrid
        Marginal means from :func:`emmeans`.
    method : str or dict
        ``"pairwise"`` (all :math:`\\mu_i - \\mu_j`, i < j), ``"revpairwise"`` (:math:`\\mu_j - \\mu_i`),
        ``"trt.vs.ctrl"`` (each against ``ref``), ``"consec"`` (:math:`\\mu_{i+1} - \\mu_i`), or a dict of
        weights ``{"1 vs 2": [1, -1, 0, 0]}``.
    ref : int or str
        The control of ``"trt.vs.ctrl"``: a position (0 = the first mean) or a level's label.
    adjust : str, optional
        P-value adjustment (:mod:`glmmteach.adjust`): ``"tukey"``, ``"dunnettx"``, ``"mvt"``, ``"sidak"``,
        ``"bonferroni"``, ``"holm"``, ``"none"``. By default emmeans' choice for the method: tukey for
        pairs, dunnettx for trt.vs.ctrl, mvt for consec, none for custom weights.
    """
    if not isinstance(emm, EmmGrid):
        raise TypeError(f"contrast() needs the result of gt.emmeans(...); got {type(emm).__name__}")
    groups = emm.by_groups()
    levels = [emm.level_labels()[i] for i in groups[0]]
    weights, default, pairs = _contrast_matrix(method, levels, ref)
    adjust = default if adjust is None else adjust
    if adjust not in adjustments.METHODS:
        raise ValueError(f"adjust must be one of {', '.join(map(repr, adjustments.METHODS))}; got {adjust!r}")
    if adjust == "tukey" and not pairs:
        warnings.warn('adjust = "tukey" was changed to "sidak" because "tukey" is only appropriate for one '
                      'set of pairwise comparisons (as emmeans does)', UserWarning, stacklevel=2)
        adjust = "sidak"
    C = np.array(list(weights.values()))
    is_contrast = bool(np.all(np.abs(C.sum(axis=1)) <= 1e-6 * (1e-6 + np.abs(C).max(axis=1))))
    rows, L, offset = [], [], []
    for group in groups:
        for name, c in weights.items():
            rows.append({"contrast": name, **{b: emm.labels.loc[group[0], b] for b in emm.by}})
            L.append(c @ emm.L[group])
            offset.append(c @ emm.offset[group])
    labels = pd.DataFrame(rows)
    for name in labels.columns:
        labels[name] = pd.Categorical(labels[name], categories=list(dict.fromkeys(labels[name])))
    return Contrasts(emm, labels, np.array(L), np.array(offset), adjust, pairs, len(levels), is_contrast)


# ---- joint tests ---------------------------------------------------------------------------------
class JointTests:
    """One Wald F test per model term (emmeans' ``joint_tests``): ``print`` it or read ``.table``."""

    def __init__(self, table: pd.DataFrame):
        self.table = table

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return "\n".join(emmeans_lines(self.table, "F.ratio", [], []))


def joint_tests(fit) -> JointTests:
    """A Wald F test for each term of the fixed effects, as emmeans' ``joint_tests(fit)``.

    For a term of factors :math:`A, B, \\ldots` the marginal means of their level combinations (the
    reference grid averaged over the other factors, a numeric covariate at its minimum and maximum) are
    taken through consecutive differences in each factor, :math:`L = (C_A \\otimes C_B \\otimes\\cdots) M`;
    :math:`F = (L\\hat\\beta)^\\top (L V L^\\top)^{-1} (L\\hat\\beta) / r` with :math:`r` = rank of L
    (``df1``) and ``df2`` the residual df; p from :math:`F_{r,\\,\\mathrm{df2}}`.
    """
    design = fit.design
    covariates = {n: [float(fit.data[n].min()), float(fit.data[n].max())]
                  for n in _variables(design.formula.fixed) if n not in design.factor_levels}
    grid, X, _ = reference_grid(fit, covariates)
    beta, V = fit.fixef.to_numpy(), fit.vcov.to_numpy()
    rows = []
    for term in design.fixed_spec.formula:
        names = list(dict.fromkeys(v for f in term.factors for v in _variables(str(f.expr))))
        if not names:
            continue
        L = _term_contrasts(grid, X, names)
        r = np.linalg.matrix_rank(L @ V @ L.T)
        estimate = L @ beta
        F = float(estimate @ np.linalg.pinv(L @ V @ L.T) @ estimate) / r
        rows.append({"model term": ":".join(names), "df1": r, "df2": float(fit.df_resid), "F.ratio": F,
                     "p.value": stats.f.sf(F, r, fit.df_resid)})
    return JointTests(pd.DataFrame(rows))


def _term_contrasts(grid: pd.DataFrame, X: np.ndarray, names: list[str]) -> np.ndarray:
    """Consecutive differences in every factor of a term, of the means of its level combinations."""
    levels = [list(dict.fromkeys(grid[n])) for n in names]
    C = np.ones((1, 1))
    for values in reversed(levels):             # the first factor varies fastest in the means below
        k = len(values)
        C = np.kron(C, np.eye(k)[1:] - np.eye(k)[:-1])
    means = []
    for combo in itertools.product(*reversed(levels)):
        match = np.ones(len(grid), bool)
        for name, value in zip(reversed(names), combo):
            match &= (grid[name] == value).to_numpy()
        means.append(X[match].mean(axis=0))
    return C @ np.array(means)


# ---- printing as emmeans does --------------------------------------------------------------------
def _optimal_digits(row: np.ndarray) -> int:
    """emmeans' ``.opt.dig``: enough digits to show the estimate to the precision its SE allows."""
    z = (row.min(), row.max()) / np.max(np.abs(row))
    dz = zapsmall(np.array([z[1] - z[0], *z]), 8)[0]
    with np.errstate(divide="ignore"):
        digits = np.round(1.51 - np.log10(dz))
    return 3 if not np.isfinite(digits) else max(int(digits), 3)


def _fixed(x: np.ndarray, decimals: int) -> list[str]:
    """R's ``format(round(x, decimals), nsmall = decimals)``: a common layout, at least ``decimals`` places.
    A value that rounds to zero prints as 0, never -0, as in R (adding 0.0 turns -0.0 into 0.0)."""
    rounded = np.round(x, decimals) + 0.0
    text = r_format(rounded, 7)
    places = max([decimals] + [len(s.split(".")[1]) if "." in s else 0 for s in text])
    return [f"{v:.{places}f}" for v in rounded]


def emmeans_lines(table: pd.DataFrame, estimate: str, by: list[str], notes: list[str]) -> list[str]:
    """The lines emmeans prints for a summary table (``print.summary_emm``): numbers zapped and formatted
    with as many digits as the estimates' precision asks, test statistics to 3 decimals, p-values to 4
    (``<.0001`` below), text columns left-aligned, one block per ``by`` group, then the notes."""
    shown = [c for c in table.columns if c not in by]
    numeric = {c: pd.api.types.is_numeric_dtype(table[c]) for c in table.columns}
    digits = 7
    if "SE" in table:
        est, se = table[estimate].to_numpy(float), table["SE"].to_numpy(float)
        digits = max(_optimal_digits(np.array([e - 2 * s, e, e + 2 * s])) for e, s in zip(est, se))
    cells = {}
    for c in table.columns:
        values = table[c].to_numpy()
        if not numeric[c]:
            cells[c] = [str(v) for v in values]
            continue
        values = zapsmall(values.astype(float))
        if c in ("t.ratio", "z.ratio", "F.ratio", "T.square"):
            cells[c] = _fixed(values, 3)
        elif c == "p.value":
            cells[c] = ["<.0001" if s == "0.0000" else s for s in _fixed(values, 4)]
        else:
            cells[c] = r_format(np.round(values, 2) if c == "df" else values, digits)
    widths = {c: max(len(c), *(len(s) for s in cells[c])) for c in shown}
    padded = {c: [s.rjust(widths[c]) if numeric[c] else s.ljust(widths[c]) for s in cells[c]] for c in shown}
    header = "".join(" " + (c.rjust(widths[c]) if numeric[c] else c.ljust(widths[c])) for c in shown)
    lines = []
    keys = table[by].astype(str).agg(", ".join, axis=1) if by else pd.Series([""] * len(table))
    for key in dict.fromkeys(keys):
        rows = np.flatnonzero(keys.to_numpy() == key)
        if by:
            first = rows[0]
            lines.append(", ".join(f"{b} = {cells[b][first]}" for b in by) + ":")
        lines.append(header)
        lines += ["".join(" " + padded[c][i] for c in shown) for i in rows]
        lines.append("")
    return lines + [f"{note} " for note in notes]
