"""P-values of several tests at once: the adjustments for multiplicity that emmeans offers.

A family of :math:`m` t statistics :math:`t_i = \\hat\\theta_i / \\mathrm{SE}_i` with :math:`\\nu` degrees of
freedom, each with its unadjusted two-sided p-value :math:`p_i = 2\\,P(T_\\nu > |t_i|)`:

* ``none``: :math:`p_i`;
* ``bonferroni``: :math:`\\min(1, m p_i)`; ``holm``: Holm's step-down version of it;
* ``sidak``: :math:`1 - (1 - p_i)^m`;
* ``tukey``: all pairwise differences of :math:`k` means, :math:`P(Q_{k,\\nu} > \\sqrt2 |t_i|)` with
  :math:`Q` the studentized range (exact for equal SEs and independent means);
* ``dunnettx``: emmeans' approximation of Dunnett's test of :math:`m` treatments against one control, a
  weighted average of the Tukey and Sidak answers;
* ``mvt``: :math:`P(\\max_j |T_j| > |t_i|)` with :math:`T` multivariate t with the correlation of the
  estimates: exact for any family of contrasts (Dunnett's test when they are comparisons with a control).

Confidence intervals of the same family, :math:`\\hat\\theta_i \\pm c\\,\\mathrm{SE}_i`, use the critical value
:math:`c` at which the adjusted p-value equals :math:`\\alpha = 1 - \\text{level}` (:func:`critical_value`): all
:math:`m` intervals then cover their targets together with probability ``level``.
"""
from __future__ import annotations

import numpy as np
from scipy import optimize, stats
from scipy.stats import qmc

METHODS = ("tukey", "dunnettx", "mvt", "sidak", "bonferroni", "holm", "none")


def unadjusted(t, df) -> np.ndarray:
    """Two-sided p-values :math:`2 P(T_\\nu > |t|)`."""
    return 2 * stats.t.sf(np.abs(t), df)


def tukey(t, n_means: float, df) -> np.ndarray:
    """:math:`P(Q_{k,\\nu} > \\sqrt 2 |t|)`: ``scipy.stats.studentized_range`` (R's ``ptukey``)."""
    t = np.abs(np.asarray(t, float))
    return stats.studentized_range.sf(np.sqrt(2) * t, n_means, df)


def dunnettx(t, n_tests: int, df) -> np.ndarray:
    """emmeans' approximate Dunnett p-value for ``n_tests`` comparisons with a control:
    :math:`1 - [w F_Q(\\sqrt2|t|; k', \\nu) + (1 - w) F_{1,\\nu}(t^2)^m]`, with :math:`m` = ``n_tests``,
    :math:`k' = (1 + \\sqrt{1 + 8m})/2` (the number of means whose pairs number :math:`m`) and
    :math:`w = (m - 1)/m`."""
    t = np.abs(np.asarray(t, float))
    k = (1 + np.sqrt(1 + 8 * n_tests)) / 2
    weight = (n_tests - 1) / n_tests
    below_tukey = stats.studentized_range.cdf(np.sqrt(2) * t, k, df)
    below_sidak = _f_cdf(t ** 2, 1, df) ** n_tests
    return 1 - (weight * below_tukey + (1 - weight) * below_sidak)


def mvt(t, corr: np.ndarray, df, n_points: int = 2 ** 16, seed: int = 20261201) -> np.ndarray:
    """:math:`P(\\max_j |T_j| \\ge |t_i|)` for :math:`T = Bz/s` multivariate t with correlation
    :math:`R = BB^\\top` (of any rank r), :math:`z \\sim N(0, I_r)`, :math:`s^2 \\sim \\chi^2_\\nu/\\nu`.

    Written :math:`z = \\rho u` with :math:`u` uniform on the sphere, the event
    :math:`\\max_j|T_j| < c` is :math:`(\\rho^2/r)/s^2 < (c/M(u))^2/r` with :math:`M(u) = \\max_j |B_j u|`,
    and :math:`(\\rho^2/r)/s^2 \\sim F_{r,\\nu}`. So
    :math:`P(\\max_j |T_j| < c) = E_u[F_{r,\\nu}((c / M(u))^2 / r)]`, a smooth average over directions,
    taken over ``n_points`` scrambled Sobol points (fixed ``seed``; the global random state is not used).
    """
    corr = np.asarray(corr, float)
    values, vectors = np.linalg.eigh(corr)
    keep = values > 1e-10 * values.max()
    B = vectors[:, keep] * np.sqrt(values[keep])
    r = B.shape[1]
    normal = stats.norm.ppf(qmc.Sobol(r, scramble=True, seed=seed).random(n_points).clip(1e-12, 1 - 1e-12))
    u = normal / np.linalg.norm(normal, axis=1, keepdims=True)
    M = np.max(np.abs(u @ B.T), axis=1)
    c = np.abs(np.asarray(t, float)).ravel()
    x = (c[:, None] / M[None, :]) ** 2 / r
    inside = _f_cdf(x, r, df)
    return np.clip(1 - inside.mean(axis=1), 0, 1)


def _f_cdf(x, d1, d2):
    """The F(d1, d2) distribution function; d2 = inf is chi2(d1) / d1."""
    return stats.chi2.cdf(x * d1, d1) if np.isinf(d2) else stats.f.cdf(x, d1, d2)


def holm(p: np.ndarray, m: int) -> np.ndarray:
    """Holm's step-down: the i-th smallest p times (m - i + 1), made monotone, at most 1."""
    order = np.argsort(p)
    scaled = np.maximum.accumulate((m - np.arange(len(p))) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(1, scaled)
    return out


def adjust(t, df, method: str, n_means: float | None = None, corr: np.ndarray | None = None) -> np.ndarray:
    """Adjusted p-values of one family of two-sided t tests (one ``by`` group).

    Parameters
    ----------
    t : array
        The t ratios.
    df : float
        Their degrees of freedom (``np.inf`` for z tests).
    method : str
        One of :data:`METHODS`.
    n_means : float, optional
        The number of means compared (``tukey``).
    corr : array, optional
        The correlation matrix of the estimates (``mvt``).
    """
    t = np.asarray(t, float)
    m = len(t)
    p = unadjusted(t, df)
    if method == "none" or m == 1:
        return p
    if method == "bonferroni":
        return np.minimum(1, m * p)
    if method == "holm":
        return holm(p, m)
    if method == "sidak":
        return 1 - (1 - p) ** m
    if method == "tukey":
        return tukey(t, n_means, df)
    if method == "dunnettx":
        return dunnettx(t, m, df)
    if method == "mvt":
        return mvt(t, corr, df)
    raise ValueError(f"adjust must be one of {', '.join(map(repr, METHODS))}; got {method!r}")


def critical_value(df, method: str, level: float = 0.95, n_tests: int = 1, n_means: float | None = None,
                   corr: np.ndarray | None = None) -> float:
    """The multiplier :math:`c` of simultaneous intervals :math:`\\hat\\theta_i \\pm c\\,\\mathrm{SE}_i`: the
    :math:`|t|` at which the adjusted p-value of ``method`` is :math:`\\alpha = 1 -` ``level``.

    ``none``: :math:`t_{1-\\alpha/2,\\nu}`; ``bonferroni``: :math:`t_{1-\\alpha/(2m),\\nu}`; ``sidak``:
    :math:`t_{(1+\\text{level}^{1/m})/2,\\nu}`; ``tukey``: :math:`q_{\\text{level};k,\\nu}/\\sqrt2` (the
    studentized range quantile); ``dunnettx`` and ``mvt``: the root of :func:`dunnettx` or :func:`mvt`
    minus :math:`\\alpha`. ``holm`` has no interval of its own: as emmeans does, it gives Bonferroni's.

    R: ``confint(contrast(...), adjust = method)`` (emmeans: ``qt``, ``qtukey``, its ``.qdunnx``, ``qmvt``).
    """
    alpha = 1 - level
    if method == "holm":
        method = "bonferroni"
    if method not in METHODS:
        raise ValueError(f"adjust must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    if method == "none" or n_tests == 1:
        return float(stats.t.ppf(1 - alpha / 2, df))
    if method == "bonferroni":
        return float(stats.t.ppf(1 - alpha / (2 * n_tests), df))
    if method == "sidak":
        return float(stats.t.ppf((1 + level ** (1 / n_tests)) / 2, df))
    if method == "tukey":
        return float(stats.studentized_range.ppf(level, n_means, df) / np.sqrt(2))
    pvalue = (lambda c: dunnettx(c, n_tests, df)) if method == "dunnettx" else (lambda c: mvt([c], corr, df)[0])
    upper = float(stats.t.ppf(1 - alpha / (2 * n_tests), df))      # Bonferroni's c is never smaller
    return float(optimize.brentq(lambda c: float(pvalue(c)) - alpha, 0.0, upper + 1.0, xtol=1e-10))
