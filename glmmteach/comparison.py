"""Likelihood-ratio tests of nested fits: ``gt.anova(m0, m1, ...)``, as R's ``anova()`` on glmmTMB fits; and
the AICs of fits that need not be nested: ``gt.AIC(m1, m2, ...)``, as R's ``AIC(m1, m2, ...)``.

The fits are sorted by their number of parameters :math:`k` (``Df``); each row after the first is tested
against the one before it: :math:`\\chi^2 = 2\\max(0, \\log L_i - \\log L_{i-1})` on
:math:`k_i - k_{i-1}` degrees of freedom (``Chisq``, ``Chi Df``, ``Pr(>Chisq)``). This is only a test when
the smaller model is a special case of the larger one; for a variance tested at 0 the chi-square p-value
is conservative (see the lesson "Is the random effect needed?").

``gt.bootstrap_lrt(null, alternative, nsim, seed, n_jobs)`` takes the reference distribution of the same
statistic from the models themselves, as pbkrtest's ``PBmodcomp``: data simulated from the null fit,
both models refitted to each.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .parallel import map_items, replicate_seeds
from .problems import ConvergenceWarning
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


# ---- parametric bootstrap likelihood-ratio test --------------------------------------------------
#: Likelihood-ratio statistics closer than this are ties: the precision of the refits' log-likelihoods.
TIES = 1e-6


@dataclass(eq=False)
class BootstrapLRT:
    """The result of :func:`bootstrap_lrt`: ``print`` it, or read ``.table`` and the fields.

    R: the object ``pbkrtest::PBmodcomp()`` returns (``$test``, ``$ref``, ``$samples``)."""

    #: The observed statistic LRT, twice the difference of the two log-likelihoods.
    #:
    #: R: ``$test["LRT", "stat"]``.
    statistic: float
    #: The number of extra parameters of the alternative.
    #:
    #: R: ``$test["LRT", "df"]``.
    df: int
    #: The p-value from the chi-square reference on ``df`` degrees of freedom.
    #:
    #: R: ``$test["LRT", "p.value"]``.
    p_chisq: float
    #: The bootstrap p-value, (1 + extremes) / (1 + usable replicates).
    #:
    #: R: ``$test["PBtest", "p.value"]`` (which leaves out the replicates with LRT* = 0).
    p_boot: float
    #: The statistics LRT* of the usable replicates, in the order of their seeds.
    #:
    #: R: ``$ref``.
    lrt_star: np.ndarray
    #: The number of replicates asked for.
    #:
    #: R: ``$samples["nsim"]``.
    nsim: int
    #: The formulas of the alternative and of the null, in that order.
    #:
    #: R: ``$formula.large``, ``$formula.small``.
    formulas: tuple

    @property
    def n_used(self) -> int:
        """The number of usable replicates, those whose two refits converged.

        R: ``$samples["npos"]`` (the replicates with LRT* > 0)."""
        return len(self.lrt_star)

    @property
    def n_extreme(self) -> int:
        """The number of usable replicates at least as large as the observed statistic, up to :data:`TIES`.

        R: ``$n.extreme`` (those strictly larger)."""
        return int(np.sum(self.lrt_star >= self.statistic - TIES))

    @property
    def table(self) -> pd.DataFrame:
        """The two tests as rows ``LRT`` and ``PBtest``, the columns ``stat``, ``df`` and ``p.value``.

        R: ``PBmodcomp(...)$test``."""
        return pd.DataFrame({"stat": [self.statistic, self.statistic], "df": [float(self.df), np.nan],
                             "p.value": [self.p_chisq, self.p_boot]}, index=["LRT", "PBtest"])

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        t = self.table
        cells = {"stat": r_format(t["stat"].to_numpy(), 5), "df": [str(self.df), ""],
                 "p.value": r_format_pval(t["p.value"].to_numpy(), 4)}
        widths = {c: max(len(c), *map(len, v)) for c, v in cells.items()}
        lines = [f"Parametric bootstrap test; samples: {self.nsim}; used: {self.n_used}; "
                 f"extremes: {self.n_extreme}",
                 f"large : {self.formulas[0]}", f"small : {self.formulas[1]}",
                 " " * 6 + "".join(" " + c.rjust(widths[c]) for c in cells)]
        for i, row in enumerate(t.index):
            lines.append(row.ljust(6) + "".join(" " + v[i].rjust(widths[c]) for c, v in cells.items()))
        return "\n".join(lines)


def bootstrap_lrt(null, alternative, nsim: int = 1000, seed=None, n_jobs: int = 1) -> BootstrapLRT:
    """Parametric bootstrap likelihood-ratio test of a null model against a larger alternative.

    The statistic is that of :func:`anova`, :math:`\\mathrm{LRT} = 2\\max(0, \\log L_1 - \\log L_0)`. Its
    chi-square reference on :math:`d = k_1 - k_0` degrees of freedom is a large-sample result, and wrong
    for a variance tested at 0 (the lesson "Is the random effect needed?"). The bootstrap takes the
    reference from the models instead; for :math:`b = 1, \\dots, B`:

    1. simulate :math:`y^*_b` from the null fit (new random effects), from the b-th seed of
       :func:`glmmteach.parallel.replicate_seeds` ``(seed, nsim, stream=5)``;
    2. refit both models to it (``refit(y_star, standard_errors=False)``);
    3. :math:`\\mathrm{LRT}^*_b = 2\\max(0, \\log L^*_1 - \\log L^*_0)`: a slightly negative difference is
       the optimisers' tolerance, since the alternative contains the null.

    A replicate is usable when both refits converged; the others are left out, with a warning saying how
    many. Of the :math:`B'` usable ones, the p-value counts those at least as large as the observed:

    .. math:: p = \\frac{1 + \\#\\{b : \\mathrm{LRT}^*_b \\ge \\mathrm{LRT}\\}}{1 + B'},

    the observed statistic counted as one draw of the null distribution. Statistics closer than
    :data:`TIES` count as equal: two fits at the boundary differ in their log-likelihoods by rounding
    (1e-14), and a singular fit of the data (LRT 0 but for rounding) then has p = 1, as it should. The
    Monte Carlo standard error of p is about :math:`\\sqrt{p(1 - p)/B'}`. Each replicate has its own seed,
    so the result is the same for any ``n_jobs``.

    R: ``set.seed(seed); pbkrtest::PBmodcomp(alternative, null, nsim = nsim, cl = n_jobs)`` (the large
    model first; pbkrtest 0.5.2 takes a ``seed`` argument but does not use it). pbkrtest keeps only the
    replicates with :math:`\\mathrm{LRT}^* > 0` and counts those strictly above the observed,
    :math:`(1 + \\#\\{b : \\mathrm{LRT}^*_b > \\mathrm{LRT}\\}) / (1 + \\#\\{b : \\mathrm{LRT}^*_b > 0\\})`. For
    a variance tested at 0, where :math:`\\mathrm{LRT}^* = 0` is the null's most common outcome, dropping
    the zeros leaves a sample of the other outcomes only and inflates the p-value, so they are kept here;
    pbkrtest's value is ``(1 + np.sum(r.lrt_star > r.statistic)) / (1 + np.sum(r.lrt_star > 0))`` for
    ``r = bootstrap_lrt(...)``.

    Parameters
    ----------
    null : GlmmFit
        The smaller model, fitted; the data are simulated from it.
    alternative : GlmmFit
        The larger model, of the same observations of the same response, with more parameters.
    nsim : int
        The number of simulated data sets :math:`B`, >= 1 (each costs two refits).
    seed : int, optional
        The seed of the simulations (None: fresh entropy).
    n_jobs : int
        Processes for the refits (-1: every core).

    Returns
    -------
    BootstrapLRT
        With ``statistic``, ``df``, ``p_chisq``, ``p_boot``, ``lrt_star``, ``n_used``, and ``.table``.

    Raises
    ------
    ValueError
        If the fits are not comparable as :func:`anova` requires (the same data; REML fits with the same
        fixed effects), the alternative does not have more parameters than the null, or ``nsim`` is not
        a whole number >= 1.
    """
    _check_nested(null, alternative)
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise ValueError(f"nsim must be a whole number of simulated data sets >= 1; got {nsim!r}")
    statistic = 2 * max(0.0, alternative.loglik - null.loglik)
    df = alternative.n_parameters - null.n_parameters
    step = functools.partial(_lrt_replicate, null, alternative)
    draws = map_items(step, replicate_seeds(seed, int(nsim), stream=5), n_jobs)
    lrt_star = np.array([t for t in draws if t is not None], float)
    if len(lrt_star) < nsim:
        warnings.warn(f"{nsim - len(lrt_star)} of {nsim} bootstrap replicates had a refit that did not converge "
                      "and were left out", ConvergenceWarning, stacklevel=2)
    p_boot = (1 + np.sum(lrt_star >= statistic - TIES)) / (1 + len(lrt_star))
    return BootstrapLRT(statistic, df, float(stats.chi2.sf(statistic, df)), float(p_boot), lrt_star, int(nsim),
                        (alternative.design.formula.text, null.design.formula.text))


def _lrt_replicate(null, alternative, seed: int) -> float | None:
    """One :math:`\\mathrm{LRT}^*_b` of :func:`bootstrap_lrt`: simulate from the null fit, refit both models;
    None if either refit did not converge."""
    y_star = null.simulate(1, seed=seed)["sim_1"].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)    # singular fits: expected under the null
        fit1 = alternative.refit(y_star, standard_errors=False)
        fit0 = null.refit(y_star, standard_errors=False)
    if not (fit0.converged and fit1.converged):
        return None
    return max(0.0, 2 * (fit1.loglik - fit0.loglik))


def _check_nested(null, alternative) -> None:
    """The checks of :func:`anova`, and the alternative the larger model."""
    for fit, name in ((null, "null"), (alternative, "alternative")):
        if not hasattr(fit, "refit") or not hasattr(fit, "n_parameters"):
            raise TypeError(f"{name} must be a fitted model (gt.glmm(...)); got {type(fit).__name__}")
    _check_comparable([null, alternative], ["the null", "the alternative"])
    if alternative.n_parameters <= null.n_parameters:
        raise ValueError(f"the alternative must be the larger model: it has {alternative.n_parameters} parameters "
                         f"and the null {null.n_parameters}. Give the smaller model first, "
                         "gt.bootstrap_lrt(null, alternative) (pbkrtest's PBmodcomp takes the large one first)")
