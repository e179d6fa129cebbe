"""Confidence intervals for the fixed effects and the random-effect SDs and correlations (``fit.confint()``).

Three methods, as glmmTMB's ``confint`` and lme4's ``confint(method = "boot")``:

* ``wald``: :math:`\\hat\\beta_j \\pm z_{1-\\alpha/2}\\,\\mathrm{SE}_j`; an SD on the log scale,
  :math:`\\exp(\\log\\hat\\sigma \\pm z\\,\\mathrm{SE}(\\log\\hat\\sigma))`, and the correlation of a two-term
  random effect on glmmTMB's scale :math:`\\rho/\\sqrt{1-\\rho^2}` (that of a ``cs`` or ``ar1`` term on the
  scale of its own parameter, as glmmTMB estimates it), back-transformed; their SEs by the
  delta method from the inverse Hessian of :math:`-\\log L` (restricted under REML).
* ``profile``: the values :math:`v` of one parameter at which the profile log-likelihood
  :math:`\\ell_p(v) = \\max_{\\text{others}} \\log L` falls :math:`\\chi^2_{1,1-\\alpha}/2` below its maximum.
  ML fits only (as glmmTMB); fixed effects and the SD of a scalar random effect (or the first SD of a
  vector one, each SD of a ``diag`` or ``cs`` term, the SD of an ``ar1`` term). An SD whose profile never
  falls that far on the way to 0 has the lower limit 0.
* ``boot``: parametric bootstrap percentiles: ``nsim`` responses simulated from the fit (new random
  effects), the model refitted to each (:meth:`~glmmteach.results.GlmmFit.refit`), the
  :math:`\\alpha/2` and :math:`1-\\alpha/2` quantiles of the refitted estimates.
"""
from __future__ import annotations

import dataclasses
import functools
import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

from . import numdiff
from .covstruct import Correlated
from .parallel import map_items, replicate_seeds
from .problems import ConvergenceWarning


# ---- the variance parameters as glmmTMB reports them ---------------------------------------------
def variance_parameters(fit) -> list[tuple[str, str, int, int]]:
    """One entry per SD and correlation: (glmmTMB's row name, kind, term index, row or column). Correlations
    only for unstructured terms (``(1 + x | g)``): a ``diag`` term has none to estimate. A ``cs`` term has
    its SDs and one correlation, named after its first two columns, an ``ar1`` term one SD and its lag-1
    correlation (glmmTMB 1.1.5 labels the latter's two rows "Std.Dev." and repeats the SD in both).

    R: the row names of glmmTMB's ``confint(m, parm = "theta_")``."""
    out = []
    for t, term in enumerate(fit.design.terms):
        for j in term.structure.summary_rows:
            out.append((f"Std.Dev.{term.names[j]}|{term.group}", "sd", t, j))
        if isinstance(term.structure, Correlated):
            out.append((f"Cor.{term.names[1]}.{term.names[0]}|{term.group}", "cor", t, term.k))
            continue
        if term.structure.name != "us":
            continue
        for j in range(1, term.k):
            for i in range(j):
                out.append((f"Cor.{term.names[j]}.{term.names[i]}|{term.group}", "cor", t, j * term.k + i))
    return out


def _sd_and_corr(fit, theta: np.ndarray) -> np.ndarray:
    """The SDs and correlations of :func:`variance_parameters` at ``theta``."""
    values, templates = [], fit.design.templates(theta)
    for _, kind, t, index in variance_parameters(fit):
        T = templates[t]
        sd = np.sqrt(np.sum(T ** 2, axis=1))
        structure = fit.design.terms[t].structure
        if kind == "sd":
            values.append(sd[index])
        elif isinstance(structure, Correlated):           # defined also where an SD is 0
            values.append(structure.rho(theta[fit.design.theta_slices()[t]][-1]))
        else:
            j, i = divmod(index, T.shape[0])
            values.append((T[j] @ T[i]) / (sd[j] * sd[i]))
    return np.array(values)


def _wald_scale(fit, psi: np.ndarray) -> np.ndarray:
    """The SDs as log SDs and the correlations (two-term effects) as :math:`\\rho/\\sqrt{1-\\rho^2}`; the
    correlation of a ``cs`` or ``ar1`` term on the scale of its parameter t (the structure's ``t_of``)."""
    _, theta, _ = fit.objective.unpack(psi)
    values = _sd_and_corr(fit, theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.array([np.log(v) if kind == "sd" else _to_scale(fit, t)(v)
                         for v, (_, kind, t, _) in zip(values, variance_parameters(fit))])


def _to_scale(fit, t: int):
    structure = fit.design.terms[t].structure
    return structure.t_of if isinstance(structure, Correlated) else (lambda v: v / np.sqrt(1 - v ** 2))


def _from_scale(fit, t: int):
    structure = fit.design.terms[t].structure
    return structure.rho if isinstance(structure, Correlated) else (lambda x: x / np.sqrt(1 + x ** 2))


# ---- Wald ----------------------------------------------------------------------------------------
def wald(fit, level: float = 0.95) -> pd.DataFrame:
    """Wald intervals, as glmmTMB's ``confint(m)``: the rows are the fixed effects, then each SD and
    correlation; the columns the two limits and the estimate.

    R: ``confint(m)`` (glmmTMB)."""
    z = stats.norm.ppf(0.5 + level / 2)
    beta, se = fit.fixef, fit.se
    rows = {name: (b - z * s, b + z * s, b) for name, b, s in zip(beta.index, beta, se)}
    names = [name for name, *_ in variance_parameters(fit)]
    if names:
        g, se_g = _variance_parameter_se(fit)
        for (name, kind, t, _), value, s in zip(variance_parameters(fit), g, se_g):
            back = np.exp if kind == "sd" else _from_scale(fit, t)
            rows[name] = (back(value - z * s), back(value + z * s), back(value))
    return _interval_table(rows, level, estimate=True)


def _variance_parameter_se(fit) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_wald_scale` at the estimates and its delta-method SEs
    :math:`\\sqrt{\\mathrm{diag}(J H^{-1} J^\\top)}`, H the Hessian of :math:`-\\log L` over the free outer
    parameters."""
    objective, psi = fit.objective, np.asarray(fit.psi, float)
    bounds = objective.bounds()
    free = np.array([lo is None or x > lo + 1e-6 for x, (lo, _) in zip(psi, bounds)], bool)
    g = _wald_scale(fit, psi)
    H = numdiff.hessian(objective.gradient, psi, np.flatnonzero(free))
    try:
        np.linalg.cholesky(H)
        V = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return g, np.full(len(g), np.nan)
    J = numdiff.partials(lambda x: _wald_scale(fit, x), psi, np.flatnonzero(free)).T
    return g, np.sqrt(np.diag(J @ V @ J.T))


def _interval_table(rows: dict, level: float, estimate: bool = False) -> pd.DataFrame:
    tail = 50 * (1 - level)
    columns = [f"{_percent(tail)} %", f"{_percent(100 - tail)} %"] + (["Estimate"] if estimate else [])
    return pd.DataFrame([v[:len(columns)] for v in rows.values()], index=list(rows), columns=columns)


def _percent(x: float) -> str:
    """As R labels the limits: 2.5, 97.5, 5, 95."""
    return f"{x:.3g}"


# ---- profile likelihood --------------------------------------------------------------------------
class _Profile:
    """The profile log-likelihood of one outer parameter :math:`\\psi_k`: the others maximised by L-BFGS-B,
    scaled by their Wald SEs, started where the quadratic (Wald) approximation puts their maximum,
    :math:`\\hat\\psi_{-k} + V_{-k,k} V_{kk}^{-1}(v - \\hat\\psi_k)`."""

    def __init__(self, fit, k: int, V: np.ndarray):
        self.objective, self.k = _objective_at_estimates(fit), k
        self.estimate = np.asarray(fit.psi, float).copy()
        self.others = np.array([i for i in range(len(self.estimate)) if i != k], int)
        self.scale = np.sqrt(np.clip(np.diag(V)[self.others], 1e-12, None))
        self.slope = V[self.others, k] / V[k, k] if V[k, k] > 0 else np.zeros(len(self.others))
        self.maximum = fit.loglik

    def drop(self, value: float) -> float:
        """:math:`\\log L(\\hat\\psi) - \\ell_p(v)`."""
        objective, others, scale = self.objective, self.others, self.scale
        psi = self.estimate.copy()
        psi[self.k] = value
        psi[others] += self.slope * (value - self.estimate[self.k])
        for i, (lo, _) in zip(others, np.array(objective.bounds(), dtype=object)[others]):
            if lo is not None:
                psi[i] = max(psi[i], lo)

        def f(z):
            psi[others] = z * scale
            return objective(psi), objective.gradient(psi)[others] * scale

        bounds = [(None if lo is None else lo / s, None) for (lo, _), s in
                  zip(np.array(objective.bounds(), dtype=object)[others], scale)]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            result = optimize.minimize(f, psi[others] / scale, jac=True, method="L-BFGS-B", bounds=bounds,
                                       options={"maxiter": 500, "ftol": 1e-13, "gtol": 1e-9})
        return self.maximum + result.fun

    def limit(self, estimate: float, step: float, cutoff: float, direction: int, lower_bound=None) -> float:
        """The value on one side of the estimate where the drop reaches ``cutoff``."""
        inner, distance = estimate, step
        for _ in range(12):
            outer = estimate + direction * distance
            if lower_bound is not None and outer <= lower_bound:
                outer = lower_bound
                if self.drop(outer) < cutoff:
                    return lower_bound
            elif self.drop(outer) < cutoff:
                inner, distance = outer, 2 * distance
                continue
            return optimize.brentq(lambda v: self.drop(v) - cutoff, *sorted((inner, outer)), xtol=1e-5 * step)
        raise RuntimeError("the profile log-likelihood does not fall far enough: no finite limit")


def _objective_at_estimates(fit):
    """A copy of the fit's :math:`-\\log L` as it stands at :math:`\\hat\\psi`: its inner solves start from
    the fit's conditional modes, the optimum is its best point, its log is empty. Each profile starts from
    it, so an interval does not depend on which parameters were profiled before it, or in which process,
    and the fit's own ``optimizer_log`` is left as it was."""
    psi, v = np.asarray(fit.psi, float).copy(), fit.optimum.v.copy()
    return dataclasses.replace(fit.objective, log=[], warm_start=v, last=None, best=(-fit.loglik, psi, v.copy()))


def profile(fit, parm=None, level: float = 0.95, n_jobs: int = 1) -> pd.DataFrame:
    """Profile-likelihood intervals: where :math:`2[\\log L(\\hat\\psi) - \\ell_p(v)] = \\chi^2_{1,\\,level}`.

    Each parameter is profiled on its own (:func:`_profile_limits`), so the parameters can be shared
    between ``n_jobs`` processes (-1: every core; :func:`glmmteach.parallel.map_items`) and the limits
    are the same for any ``n_jobs``.

    R: ``confint(m, method = "profile")`` (glmmTMB; ``parallel = "multicore", ncpus = n_jobs``)."""
    if fit.objective.reml:
        raise ValueError("profile likelihood intervals need a fit by maximum likelihood (reml=False): under "
                         "REML the fixed effects are integrated out, and glmmTMB does not profile REML fits "
                         "either. Refit with reml=False, or use method='wald' or 'boot'.")
    names = _select(fit, parm)
    for name in names:
        _outer_index(fit, name)                     # a clear error before any work is sent out
    cutoff = stats.chi2.ppf(level, 1) / 2
    psi = np.asarray(fit.psi, float)
    bounds = fit.objective.bounds()
    free = np.array([lo is None or x > lo + 1e-6 for x, (lo, _) in zip(psi, bounds)], bool)
    V = np.zeros((len(psi), len(psi)))
    H = numdiff.hessian(_objective_at_estimates(fit).gradient, psi, np.flatnonzero(free))
    V[np.ix_(free, free)] = np.linalg.inv(H)
    limits = map_items(functools.partial(_profile_limits, fit, V, cutoff), names, n_jobs)
    return _interval_table(dict(zip(names, limits)), level)


def _profile_limits(fit, V: np.ndarray, cutoff: float, name: str) -> tuple[float, float]:
    """The lower and upper limit of one parameter's profile interval: where the profile falls ``cutoff``
    below its maximum on either side of the estimate, the first step one Wald SE (:math:`\\sqrt{V_{kk}}`)."""
    k = _outer_index(fit, name)
    estimate, lower_bound = float(np.asarray(fit.psi, float)[k]), fit.objective.bounds()[k][0]
    step = np.sqrt(V[k, k]) if V[k, k] > 0 else 0.1 * max(abs(estimate), 0.1)
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):   # small algebra: no threads
        warnings.simplefilter("ignore", ConvergenceWarning)
        curve = _Profile(fit, k, V)
        return (curve.limit(estimate, step, cutoff, -1, lower_bound), curve.limit(estimate, step, cutoff, +1))


def _outer_index(fit, name: str) -> int:
    """The position in the outer parameters of a fixed effect, or of an SD that is one entry of theta itself
    (the only entry in its row of T, on the diagonal: a scalar term, the first column of a ``us`` term, every
    column of a ``diag`` term)."""
    x_names = list(fit.fixef.index)
    if name in x_names:
        return x_names.index(name)
    design, p = fit.design, len(x_names)
    for row, kind, t, r in variance_parameters(fit):
        structure = design.terms[t].structure
        if row == name and kind == "sd" and isinstance(structure, Correlated):    # cs, ar1: theta holds the SDs
            return p + design.theta_slices()[t].start + int(structure.sd_of[r])
        rows, cols = structure.pattern
        entries = np.flatnonzero(rows == r)
        if row == name and kind == "sd" and structure.linear and len(entries) == 1 and cols[entries[0]] == r:
            return p + design.theta_slices()[t].start + int(entries[0])
    raise ValueError(f"no profile interval for {name!r}: profiles are available for the fixed effects and for "
                     "the SDs that are one parameter of the fit (a scalar random effect, the first SD of a "
                     "correlated term, each SD of a diag or cs term, the SD of an ar1 term); use method='wald' or 'boot' for the other "
                     "SDs and the correlations")


def _select(fit, parm) -> list[str]:
    """``parm``: None (all), ``"beta_"`` (fixed effects), ``"theta_"`` (SDs and correlations), a name, a list."""
    beta = list(fit.fixef.index)
    theta = [name for name, *_ in variance_parameters(fit)]
    if parm is None:
        return beta + theta
    if isinstance(parm, str):
        parm = beta if parm == "beta_" else theta if parm == "theta_" else [parm]
    unknown = [p for p in parm if p not in beta + theta]
    if unknown:
        raise ValueError(f"parm names {unknown[0]!r}, which is not a parameter of the model; the parameters are: "
                         f"{', '.join(beta + theta)} (or 'beta_' / 'theta_' for either group)")
    return list(parm)


# ---- parametric bootstrap ------------------------------------------------------------------------
def bootstrap_estimates(fit, nsim: int = 200, seed=None, n_jobs: int = 1) -> pd.DataFrame:
    """The fixed effects, SDs and correlations refitted to ``nsim`` responses simulated from ``fit``
    (new random effects each time, as glmmTMB's ``simulate``), one row per simulation. Refits that do not
    converge are dropped, with a warning saying how many.

    Simulation b draws from its own seed (:func:`glmmteach.parallel.replicate_seeds` of ``seed``, a number
    or None), so the estimates are the same for any ``n_jobs`` (processes for the refits, -1 for every core:
    :func:`glmmteach.parallel.map_items`).

    R: ``lme4::bootMer(m, function(f) c(fixef(f), sqrt(unlist(VarCorr(f)))), nsim, seed, type = "parametric")$t``."""
    names = list(fit.fixef.index) + [name for name, *_ in variance_parameters(fit)]
    seeds = replicate_seeds(seed, nsim, stream=4)
    rows = [row for row in map_items(functools.partial(_bootstrap_replicate, fit), seeds, n_jobs)
            if row is not None]
    if len(rows) < nsim:
        warnings.warn(f"{nsim - len(rows)} of {nsim} bootstrap refits did not converge and were left out",
                      ConvergenceWarning, stacklevel=3)
    return pd.DataFrame(rows, columns=names)


def _bootstrap_replicate(fit, seed: int) -> np.ndarray | None:
    """One row of :func:`bootstrap_estimates`: simulate from ``seed``, refit, (beta, SDs, correlations);
    None if the refit does not converge."""
    y = fit.simulate(1, seed=seed)["sim_1"].to_numpy()
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        refit = fit.refit(y, standard_errors=False)
    return np.concatenate([refit.beta, _sd_and_corr(fit, refit.theta)]) if refit.converged else None


def bootstrap(fit, parm=None, level: float = 0.95, nsim: int = 200, seed=None, n_jobs: int = 1) -> pd.DataFrame:
    """Percentile intervals from :func:`bootstrap_estimates`.

    R: ``confint(m, method = "boot", nsim = nsim, boot.type = "perc")`` (lme4)."""
    names = _select(fit, parm)
    estimates = bootstrap_estimates(fit, nsim, seed, n_jobs)[names]
    tail = (1 - level) / 2
    rows = {name: tuple(np.quantile(estimates[name], [tail, 1 - tail])) for name in names}
    return _interval_table(rows, level)


def confint(fit, parm=None, level: float = 0.95, method: str = "wald", nsim: int = 200, seed=None,
            n_jobs: int = 1) -> pd.DataFrame:
    """Confidence intervals for the fixed effects and the random-effect SDs and correlations.

    R: ``confint(m, parm, level, method)`` (glmmTMB; lme4 for ``method = "boot"``).

    Parameters
    ----------
    fit : GlmmFit
    parm : str or list of str, optional
        None (all), ``"beta_"`` (the fixed effects), ``"theta_"`` (the SDs and correlations), a name or a
        list of names (``"genO75"``, ``"Std.Dev.(Intercept)|plate"``), as glmmTMB's ``confint``.
    level : float
    method : str
        ``"wald"``, ``"profile"`` or ``"boot"`` (see the module's description).
    nsim, seed : int
        The number of bootstrap refits and their seed (``"boot"`` only).
    n_jobs : int
        Processes (-1 for every core) for the bootstrap refits (``"boot"``) or the parameters' profiles
        (``"profile"``, one parameter at a time); the intervals are the same for any ``n_jobs``.

    Returns
    -------
    DataFrame with the columns ``"2.5 %"`` and ``"97.5 %"`` (for level 0.95), and for ``wald`` also
    ``"Estimate"``, one row per parameter named as glmmTMB names them.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1; got {level!r}")
    if method == "wald":
        return wald(fit, level).loc[_select(fit, parm)]
    if method == "profile":
        return profile(fit, parm, level, n_jobs)
    if method == "boot":
        return bootstrap(fit, parm, level, nsim, seed, n_jobs)
    raise ValueError(f"method must be 'wald', 'profile' or 'boot'; got {method!r}")
