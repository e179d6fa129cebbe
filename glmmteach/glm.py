"""Models without random effects: a GLM by iteratively reweighted least squares (IRLS).

With :math:`\\eta = X\\beta + o`, :math:`g_i = w_i\\,\\partial\\ell_i/\\partial\\eta_i` and
:math:`D_i = -w_i\\,\\partial^2\\ell_i/\\partial\\eta_i^2` (as in :class:`glmmteach.laplace.Response`), each
iteration is a weighted least-squares fit of the *working response* :math:`z = \\eta - o + g/D` on X
with weights D:

.. math:: \\beta \\leftarrow (X^\\top D X)^{-1} X^\\top D z = \\beta + (X^\\top D X)^{-1} X^\\top g ,

which is Newton's method on :math:`\\ell(\\beta)` (for a canonical link, D does not depend on y and
this is Fisher scoring, R's ``glm``). A step that lowers the log-likelihood is halved. For families
with a dispersion parameter, :math:`s = \\log\\phi` is then maximised for the current beta, and the
two steps alternate. A few Newton steps on :math:`(\\beta, s)` together finish the fit, and their
Hessian, the observed information

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
    """:math:`\\ell(\\beta, \\phi) = \\sum_i w_i \\log p(y_i \\mid \\mu_i, \\phi)`."""
    return float(np.sum(_response(design, beta, phi).loglik))


def irls(design: Design, beta: np.ndarray, phi: float, log: list, tol: float = 1e-10, max_iter: int = 100):
    """Maximise :math:`\\ell(\\beta)` at fixed :math:`\\phi` by IRLS with step-halving; each iteration's
    (beta, phi, log-likelihood) is appended to ``log``."""
    response = _response(design, beta, phi)
    value = float(np.sum(response.loglik))
    for _ in range(max_iter):
        D = np.maximum(response.D, 1e-10)
        step = np.linalg.solve(design.X.T @ (D[:, None] * design.X), design.X.T @ response.gradient)
        t = 1.0
        while True:
            candidate = _response(design, beta + t * step, phi)
            new = float(np.sum(candidate.loglik))
            if np.isfinite(new) and new >= value - 1e-12 * abs(value):
                break
            t /= 2
            if t < 1e-10:
                return beta
        beta, response, change, value = beta + t * step, candidate, new - value, new
        log.append((beta.copy(), phi, value))
        if abs(change) < tol * (1 + abs(value)) and np.max(np.abs(t * step)) < 1e-8:
            break
    return beta


def best_phi(design: Design, beta: np.ndarray, phi: float) -> float:
    """:math:`\\hat\\phi(\\beta)`: the maximum of :math:`\\ell` in :math:`s = \\log\\phi` (Brent's method)."""
    best = minimize_scalar(lambda s: -loglik(design, beta, np.exp(s)), bracket=(np.log(phi) - 1, np.log(phi) + 1))
    return float(np.exp(best.x))


def information(design: Design, beta: np.ndarray, phi) -> np.ndarray:
    """The observed information of :math:`(\\beta, s)`, minus the Hessian of :math:`\\ell`:

    .. math:: \\begin{pmatrix} X^\\top D X & -X^\\top \\partial g/\\partial s \\\\
              \\cdot & -\\partial^2\\ell/\\partial s^2 \\end{pmatrix},

    with :math:`\\partial g_i/\\partial s` from the family's formulas
    (:attr:`~glmmteach.laplace.Response.dispersion_partials`) and :math:`\\partial^2\\ell/\\partial s^2` the
    central difference of the exact :math:`\\partial\\ell/\\partial s` (:mod:`glmmteach.numdiff`). ``phi``: one
    number, or one value per observation that is the same for all (as ``fit.phi``)."""
    phi = _constant(phi)
    response = _response(design, beta, phi)
    H = design.X.T @ (response.D[:, None] * design.X)
    if not design.family.has_phi:
        return H
    cross = -design.X.T @ response.dispersion_partials[1]
    d2_s = numdiff.partials(lambda s: np.array([_d_s(design, beta, float(np.exp(s[0])))]),
                            np.array([np.log(phi)]))[0][0]
    return np.block([[H, cross[:, None]], [cross[None, :], np.array([[-d2_s]])]])


def score(design: Design, beta: np.ndarray, phi) -> np.ndarray:
    """:math:`\\partial\\ell/\\partial(\\beta, s)`: :math:`X^\\top g`, and
    :math:`\\sum_i \\partial\\ell_i/\\partial s` from the family's formulas."""
    phi = _constant(phi)
    response = _response(design, beta, phi)
    g_beta = design.X.T @ response.gradient
    if not design.family.has_phi:
        return g_beta
    return np.append(g_beta, np.sum(response.dispersion_partials[0]))


def _d_s(design: Design, beta: np.ndarray, phi: float) -> float:
    """:math:`\\partial\\ell/\\partial s` at (beta, phi)."""
    return float(np.sum(_response(design, beta, phi).dispersion_partials[0]))


def fit(design: Design, beta: np.ndarray, phi: float, log: list, rounds: int = 20):
    """The maximum likelihood of the GLM from (beta, phi): IRLS for beta and Brent for phi, alternated
    until the log-likelihood stops rising, then Newton steps on (beta, s) together.
    Returns (beta, phi, observed information at the optimum)."""
    for round_ in range(rounds):
        before = loglik(design, beta, phi)
        beta = irls(design, beta, phi, log)
        if not design.family.has_phi or (round_ and loglik(design, beta, phi) < before + 1e-10 * (1 + abs(before))):
            break          # for the last phi, beta did not move: both are the optimum's
        phi = best_phi(design, beta, phi)
        log.append((beta.copy(), phi, loglik(design, beta, phi)))
    return _newton(design, beta, phi, log)


def _newton(design: Design, beta: np.ndarray, phi: float, log: list, steps: int = 5):
    """Newton steps on :math:`(\\beta, s)` with the observed information, each kept if it raises
    :math:`\\ell`; returns (beta, phi, information)."""
    p = len(beta)
    psi = np.append(beta, np.log(phi)) if design.family.has_phi else beta.copy()
    unpack = (lambda v: (v[:p], float(np.exp(v[p])))) if design.family.has_phi else (lambda v: (v, phi))
    value = loglik(design, *unpack(psi))
    I = information(design, *unpack(psi))              # at psi: the information the SEs need, kept
    for _ in range(steps):
        try:
            step = np.linalg.solve(I, score(design, *unpack(psi)))
        except np.linalg.LinAlgError:
            break
        new = loglik(design, *unpack(psi + step))
        if not new > value:
            break
        psi, value = psi + step, new
        log.append((*unpack(psi.copy()), value))
        I = information(design, *unpack(psi))
        if np.max(np.abs(step)) < 1e-8:
            break
    beta, phi = unpack(psi)
    return beta, phi, I


def _constant(phi) -> float:
    """The one dispersion value of a GLM without a dispersion model (a number, or N equal values)."""
    phi = np.ravel(np.asarray(phi, float))
    if np.ptp(phi) > 1e-12 * np.max(np.abs(phi)):
        raise ValueError("this GLM step needs the same dispersion for every observation")
    return float(phi[0])


def _response(design: Design, beta: np.ndarray, phi: float) -> Response:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return Response.at(design, design.X @ beta + design.offset, per_observation(design, phi))
