"""Models without random effects: a GLM by iteratively reweighted least squares (IRLS).

With :math:`\\eta = X\\beta + o`, :math:`g_i = w_i\\,\\partial\\ell_i/\\partial\\eta_i` and
:math:`D_i = -w_i\\,\\partial^2\\ell_i/\\partial\\eta_i^2` (as in :class:`glmmteach.laplace.Response`), each
iteration is a weighted least-squares fit of the *working response* :math:`z = \\eta - o + g/D` on X
with weights D:

.. math:: \\beta \\leftarrow (X^\\top D X)^{-1} X^\\top D z = \\beta + (X^\\top D X)^{-1} X^\\top g ,

which is Newton's method on :math:`\\ell(\\beta)` (for a canonical link, D does not depend on y and
this is Fisher scoring, R's ``glm``). A step that lowers the log-likelihood is halved. For families
with a dispersion parameter, :math:`s = \\log\\phi` is then maximised for the current beta (the root of
its score, :func:`phi_step`), and the two steps alternate. A few Newton steps on :math:`(\\beta, s)`
together finish the fit, and their Hessian, the observed information

.. math:: \\mathcal I = \\begin{pmatrix} X^\\top D X & -X^\\top \\partial g/\\partial s \\\\
          \\cdot & -\\partial^2\\ell/\\partial s^2 \\end{pmatrix},

gives the standard errors, as glmmTMB reports them (the inverse Hessian of :math:`-\\log L` in all
its parameters).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from . import numdiff
from .design import Design
from .laplace import Response, per_observation

def loglik(design: Design, beta: np.ndarray, phi: float) -> float:
    """:math:`\\ell(\\beta, \\phi) = \\sum_i w_i \\log p(y_i \\mid \\mu_i, \\phi)` (:func:`total`)."""
    return total(design, _response(design, beta, phi))


def total(design: Design, response: Response) -> float:
    """:math:`\\sum_i \\ell_i`, or :math:`-\\infty` where it is rounding error: for a family of counts
    (``integer_valued``) every :math:`\\ell_i` is a log-probability, at most 0, and a positive one marks a point
    where the family's formulas have lost their digits (a beta-binomial far into its binomial limit,
    :math:`\\phi` ~ 1e17, where :math:`\\log\\Gamma` differences of numbers near 4e19 are taken), which no
    step may go to."""
    ell = response.loglik
    if design.family.integer_valued and np.any(ell > 1e-8):
        return -np.inf
    return float(np.sum(ell))


def irls(design: Design, beta: np.ndarray, phi: float, log: list, tol: float = 1e-10, max_iter: int = 100):
    """Maximise :math:`\\ell(\\beta)` at fixed :math:`\\phi` by IRLS with step-halving; each iteration's
    (beta, phi, log-likelihood) is appended to ``log``."""
    return irls_to_convergence(design, beta, phi, log, tol, max_iter)[0]


def irls_to_convergence(design: Design, beta: np.ndarray, phi: float, log: list, tol: float = 1e-10,
                        max_iter: int = 100) -> tuple[np.ndarray, float, bool]:
    """:func:`irls`, returning (beta, :math:`\\ell` there, whether it converged): the change in
    :math:`\\ell` below ``tol`` relative and the last step below 1e-8 (not converged: no step that halving
    leaves uphill, or ``max_iter`` iterations)."""
    response = _response(design, beta, phi)
    value = total(design, response)
    for _ in range(max_iter):
        D = np.maximum(response.D, 1e-10)
        step = np.linalg.solve(design.X.T @ (D[:, None] * design.X), design.X.T @ response.gradient)
        t = 1.0
        while True:
            candidate = _response(design, beta + t * step, phi)
            new = total(design, candidate)
            if np.isfinite(new) and new >= value - 1e-12 * abs(value):
                break
            t /= 2
            if t < 1e-10:
                return beta, value, False
        beta, response, change, value = beta + t * step, candidate, new - value, new
        log.append((beta.copy(), phi, value))
        if abs(change) < tol * (1 + abs(value)) and np.max(np.abs(t * step)) < 1e-8:
            return beta, value, True
    return beta, value, False


def best_phi(design: Design, beta: np.ndarray, phi: float) -> float:
    """:math:`\\hat\\phi(\\beta)`: the maximum of :math:`\\ell` in :math:`s = \\log\\phi` (Brent's method)."""
    best = minimize_scalar(lambda s: -loglik(design, beta, np.exp(s)), bracket=(np.log(phi) - 1, np.log(phi) + 1))
    return float(np.exp(best.x))


def phi_step(design: Design, beta: np.ndarray, phi: float, value: float) -> tuple[float, float]:
    """:math:`\\hat\\phi(\\beta)` and :math:`\\ell` there, from :math:`\\phi` where :math:`\\ell` = ``value``:
    the root of the score in :math:`s = \\log\\phi` at fixed :math:`\\mu`,

    .. math:: S(s) = \\sum_i w_i\\,\\frac{\\partial\\ell_i}{\\partial s} = 0,

    by :func:`score_root` (the secant method, safeguarded). Where it finds no root, or one below
    ``value``, Brent's method on :math:`\\ell` itself (:func:`best_phi`) takes over; where that is below
    ``value`` too, phi stays."""
    mu = design.family.link.inverse(design.X @ beta + design.offset)
    s = score_root(lambda s: _score_s(design, mu, float(np.exp(s))), float(np.log(phi)))
    if s is not None:
        new = loglik(design, beta, float(np.exp(s)))
        if np.isfinite(new) and new >= value - 1e-12 * abs(value):
            return float(np.exp(s)), new
    brent = best_phi(design, beta, phi)
    new = loglik(design, beta, brent)
    return (brent, new) if new >= value else (phi, value)


def score_root(S, s: float, tol: float = 1e-10, max_iter: int = 50, max_step: float = 2.0,
               min_curvature: float = 1e-4) -> float | None:
    """The maximum of a log-likelihood in one parameter s, as the root of its score S (None if not found).

    Newton's method with the derivative from the last two points (the secant method),

    .. math:: s_{k+1} = s_k - S(s_k)\\,\\frac{s_k - s_{k-1}}{S(s_k) - S(s_{k-1})},

    the first derivative by a forward difference (:mod:`glmmteach.numdiff`'s step). Safeguards: the
    derivative must be below ``-min_curvature`` (a maximum, not a minimum, and one the data pin down: where
    the log-likelihood is flat, as for a beta-binomial running to its binomial limit, the score is mostly
    rounding); a step is at most ``max_step``; once S has changed sign the root is bracketed, and a step
    leaving the bracket is replaced by its midpoint. Converged when the step is below ``tol``."""
    h = float(numdiff.steps(np.array([s]))[0])
    S0 = S(s)
    previous, S_previous = s + h, S(s + h)
    low, high = -np.inf, np.inf               # S > 0 at low (ell rising), S < 0 at high
    for _ in range(max_iter):
        if not (np.isfinite(S0) and np.isfinite(S_previous)):
            return None
        if S0 == 0:
            return s
        low, high = (max(low, s), high) if S0 > 0 else (low, min(high, s))
        slope = (S0 - S_previous) / (s - previous)
        if not slope < -min_curvature:
            return None
        step = float(np.clip(-S0 / slope, -max_step, max_step))
        if not low < s + step < high:         # only once bracketed: the other side is where S changed sign
            step = (low + high) / 2 - s
        if abs(step) < tol:
            return s + step
        previous, S_previous = s, S0
        s = s + step
        S0 = S(s)
    return None


def information(design: Design, beta: np.ndarray, phi) -> np.ndarray:
    """The observed information of :math:`(\\beta, s)`, minus the Hessian of :math:`\\ell`:

    .. math:: \\begin{pmatrix} X^\\top D X & -X^\\top \\partial g/\\partial s \\\\
              \\cdot & -\\partial^2\\ell/\\partial s^2 \\end{pmatrix},

    with :math:`\\partial g_i/\\partial s` from the family's formulas
    (:attr:`~glmmteach.laplace.Response.dispersion_partials`) and :math:`\\partial^2\\ell/\\partial s^2` the
    central difference of the exact :math:`\\partial\\ell/\\partial s` (:mod:`glmmteach.numdiff`). ``phi``: one
    number, or one value per observation that is the same for all (as ``fit.phi``)."""
    return information_and_score(design, beta, phi)[0]


def score(design: Design, beta: np.ndarray, phi) -> np.ndarray:
    """:math:`\\partial\\ell/\\partial(\\beta, s)`: :math:`X^\\top g`, and
    :math:`\\sum_i \\partial\\ell_i/\\partial s` from the family's formulas."""
    return information_and_score(design, beta, phi)[1]


def information_and_score(design: Design, beta: np.ndarray, phi) -> tuple[np.ndarray, np.ndarray]:
    """:func:`information` and :func:`score` at one point, from one evaluation of the response."""
    phi = _constant(phi)
    response = _response(design, beta, phi)
    H = design.X.T @ (response.D[:, None] * design.X)
    g_beta = design.X.T @ response.gradient
    if not design.family.has_phi:
        return H, g_beta
    l_s, g_s, _ = response.dispersion_partials
    cross = -design.X.T @ g_s
    mu = response.mu
    d2_s = numdiff.partials(lambda s: np.array([_score_s(design, mu, float(np.exp(s[0])))]),
                            np.array([np.log(phi)]))[0][0]
    return (np.block([[H, cross[:, None]], [cross[None, :], np.array([[-d2_s]])]]),
            np.append(g_beta, np.sum(l_s)))


def _score_s(design: Design, mu: np.ndarray, phi: float) -> float:
    """:math:`\\partial\\ell/\\partial s = \\sum_i w_i\\,\\partial\\ell_i/\\partial s` at fixed mu, from the
    family's formula (:meth:`~glmmteach.families.Family.dispersion_score`)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        l_s = design.family.dispersion_score(design.y, mu, phi, design.n)
    return float(np.sum(design.weights * l_s))


def fit(design: Design, beta: np.ndarray, phi: float, log: list, rounds: int = 20, value: float | None = None):
    """The maximum likelihood of the GLM from (beta, phi): IRLS for beta and :func:`phi_step` for phi,
    alternated until IRLS at the new phi would gain nothing (:func:`irls_gain`), then Newton steps on
    (beta, s) together. ``value``: :math:`\\ell` at (beta, phi) when beta is already IRLS's converged maximum
    at this phi (the first IRLS is then not repeated). Returns (beta, phi, observed information, score) at
    the optimum."""
    if value is None:
        beta, value, _ = irls_to_convergence(design, beta, phi, log)
    for _ in range(rounds if design.family.has_phi else 0):
        phi, value = phi_step(design, beta, phi, value)
        log.append((beta.copy(), phi, value))
        I, g = information_and_score(design, beta, phi)
        if irls_gain(I, g, len(beta)) < 1e-10 * (1 + abs(value)):
            return _newton(design, beta, phi, log, value, (I, g))   # beta is the maximum at this phi too
        beta, value, _ = irls_to_convergence(design, beta, phi, log)
    return _newton(design, beta, phi, log, value)


def irls_gain(I: np.ndarray, g: np.ndarray, p: int) -> float:
    """What an IRLS (Newton) step in beta would add to :math:`\\ell`, by the quadratic model:
    :math:`\\tfrac12 g_\\beta^\\top (X^\\top D X)^{-1} g_\\beta`, from the information ``I`` and score ``g`` of
    :func:`information_and_score` (their first p rows); inf where :math:`X^\\top D X` is not positive
    definite (away from the maximum, for a link that is not canonical)."""
    try:
        w = np.linalg.solve(np.linalg.cholesky(I[:p, :p]), g[:p])
    except np.linalg.LinAlgError:
        return np.inf
    return float(w @ w) / 2


def _newton(design: Design, beta: np.ndarray, phi: float, log: list, value: float, at: tuple | None = None,
            steps: int = 5):
    """Newton steps on :math:`(\\beta, s)` with the observed information, each kept if it raises
    :math:`\\ell` (= ``value`` at the start) and is not below the rounding of the estimates (1e-12);
    ``at``: the (information, score) at (beta, phi), if known. Returns (beta, phi, information, score)."""
    p = len(beta)
    psi = np.append(beta, np.log(phi)) if design.family.has_phi else beta.copy()
    unpack = (lambda v: (v[:p], float(np.exp(v[p])))) if design.family.has_phi else (lambda v: (v, phi))
    I, g = at if at is not None else information_and_score(design, *unpack(psi))   # the SEs need it at psi
    for _ in range(steps):
        try:
            step = np.linalg.solve(I, g)
        except np.linalg.LinAlgError:
            break
        if np.max(np.abs(step), initial=0.0) < 1e-12:
            break
        new = loglik(design, *unpack(psi + step))
        if not new > value:
            break
        psi, value = psi + step, new
        log.append((*unpack(psi.copy()), value))
        I, g = information_and_score(design, *unpack(psi))
        if np.max(np.abs(step)) < 1e-8:
            break
    beta, phi = unpack(psi)
    return beta, phi, I, g


def _constant(phi) -> float:
    """The one dispersion value of a GLM without a dispersion model (a number, or N equal values)."""
    phi = np.ravel(np.asarray(phi, float))
    if np.ptp(phi) > 1e-12 * np.max(np.abs(phi)):
        raise ValueError("this GLM step needs the same dispersion for every observation")
    return float(phi[0])


def _response(design: Design, beta: np.ndarray, phi: float) -> Response:
    """The response at :math:`\\eta = X\\beta + o`, with phi repeated for every observation (as the mixed
    models' steps give it: a number instead changes the last digits of some log-likelihoods, and with them
    the starts of mixed models)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return Response.at(design, design.X @ beta + design.offset, per_observation(design, phi))
