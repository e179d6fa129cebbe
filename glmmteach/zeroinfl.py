"""Zero inflation: a point mass at zero mixed with the family's distribution (glmmTMB's ``ziformula``).

Observation i is a *structural zero* with probability :math:`\\pi_i` and otherwise comes from the family's
density :math:`f(y \\mid \\eta_i)`, so that

.. math::  p(y_i) = \\pi_i\\,[y_i = 0] + (1 - \\pi_i)\\, f(y_i \\mid \\eta_i),
           \\qquad \\operatorname{logit}\\pi_i = \\zeta_i = (X_{zi}\\,\\beta_{zi})_i,

and its log-likelihood is

.. math::  \\ell_i(\\eta_i, \\zeta_i) = \\begin{cases}
           \\log\\big(\\pi_i + (1 - \\pi_i)\\, f(0 \\mid \\eta_i)\\big) & y_i = 0,\\\\
           \\log(1 - \\pi_i) + \\log f(y_i \\mid \\eta_i) & y_i > 0. \\end{cases}

It is computed on the log scale: :math:`\\log\\pi = -\\log(1 + e^{-\\zeta})`,
:math:`\\log(1 - \\pi) = -\\log(1 + e^{\\zeta})`, and at a zero
:math:`\\ell = \\operatorname{logaddexp}(\\log\\pi,\\ \\log(1 - \\pi) + \\log f(0 \\mid \\eta))`, which stays
finite however small :math:`\\pi` or :math:`f(0 \\mid \\eta)` are.

**Derivatives.** Let :math:`\\omega_i` be the probability that a zero came from the family's distribution
rather than the point mass (1 for :math:`y_i > 0`),

.. math::  \\omega_i = \\frac{(1 - \\pi_i) f(0 \\mid \\eta_i)}{\\pi_i + (1 - \\pi_i) f(0 \\mid \\eta_i)}
           \\quad (y_i = 0),

and :math:`d_1 = \\partial\\log f/\\partial\\eta`, :math:`d_2 = \\partial^2\\log f/\\partial\\eta^2` those of the
family alone. Then (using :math:`\\partial\\omega/\\partial\\eta = \\omega(1 - \\omega)d_1` and
:math:`\\partial\\omega/\\partial\\zeta = -\\omega(1 - \\omega)`)

.. math::  \\frac{\\partial\\ell}{\\partial\\eta} = \\omega d_1, \\qquad
           \\frac{\\partial^2\\ell}{\\partial\\eta^2} = \\omega d_2 + \\omega(1 - \\omega)\\,d_1^2, \\qquad
           \\frac{\\partial\\ell}{\\partial\\zeta} = (1 - \\omega) - \\pi,

the last one as in the EM algorithm for mixtures: the posterior probability of a structural zero minus its prior.
The term :math:`\\omega(1 - \\omega)d_1^2 \\ge 0` can make the curvature :math:`-\\partial^2\\ell/\\partial\\eta^2`
negative at a zero (the mixture is not log-concave in :math:`\\eta`); the inner Newton step of
:mod:`glmmteach.laplace` then uses a small positive curvature, so that each step still climbs.

The outer gradient in :math:`\\beta_{zi}` (:func:`glmmteach.laplace.score_per_observation`) also needs how the
inner problem's gradient and curvature move with :math:`\\zeta`:

.. math::  \\frac{\\partial}{\\partial\\zeta}\\frac{\\partial\\ell}{\\partial\\eta} = -\\omega(1 - \\omega)d_1, \\qquad
           \\frac{\\partial}{\\partial\\zeta}\\Big(-\\frac{\\partial^2\\ell}{\\partial\\eta^2}\\Big)
           = \\omega(1 - \\omega)\\big[d_2 + (1 - 2\\omega)\\, d_1^2\\big].

For a family with a dispersion parameter, :math:`s = \\log\\phi` enters through :math:`f` alone; with
:math:`a = \\partial\\log f/\\partial s` and :math:`b, c` the s-derivatives of :math:`d_1, d_2`
(:meth:`glmmteach.families.Family.dispersion_derivatives`), and :math:`\\partial\\omega/\\partial s = \\omega(1 - \\omega)a`,

.. math::  \\frac{\\partial\\ell}{\\partial s} = \\omega a, \\qquad
           \\frac{\\partial}{\\partial s}\\frac{\\partial\\ell}{\\partial\\eta} = \\omega b + \\omega(1 - \\omega)\\,a d_1, \\qquad
           \\frac{\\partial}{\\partial s}\\frac{\\partial^2\\ell}{\\partial\\eta^2} = \\omega c + \\omega(1 - \\omega)
           \\big[a d_2 + (1 - 2\\omega)\\,a d_1^2 + 2 d_1 b\\big].

The mean of y is :math:`(1 - \\pi)\\mu` and its variance :math:`(1 - \\pi)\\,\\mathrm{Var}_f(y) + \\pi(1 - \\pi)\\mu^2`.

>>> import numpy as np
>>> from glmmteach import families
>>> poisson = families.get("poisson")
>>> ell = loglik(poisson, np.array([0.0, 3.0]), np.log(2.0), 1.0, 1, zeta=0.0)   # pi = 1/2, mu = 2
>>> np.allclose(ell, [np.log(0.5 + 0.5 * np.exp(-2)), np.log(0.5) + poisson.loglik(3.0, 2.0, 1.0)])
True
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from .families import Family


def log_pi(zeta):
    """:math:`\\log\\pi = -\\log(1 + e^{-\\zeta})` and :math:`\\log(1 - \\pi) = -\\log(1 + e^{\\zeta})`, stable
    for any :math:`\\zeta`."""
    zeta = np.asarray(zeta, float)
    return -np.logaddexp(0.0, -zeta), -np.logaddexp(0.0, zeta)


def _parts(family: Family, y, eta, phi, n, zeta):
    """:math:`\\log(1-\\pi)`, the family's :math:`\\log f(y \\mid \\eta)`, and :math:`\\ell` (at zeros the mixture)."""
    log_p, log_1mp = log_pi(zeta)
    log_f = family.loglik_eta(y, eta, phi, n)
    ell = np.where(y == 0, np.logaddexp(log_p, log_1mp + log_f), log_1mp + log_f)
    return log_1mp, log_f, ell


def loglik(family: Family, y, eta, phi, n, zeta):
    """:math:`\\ell_i(\\eta_i, \\zeta_i)`: :math:`\\log(\\pi + (1 - \\pi) f(0 \\mid \\eta))` at a zero,
    :math:`\\log(1 - \\pi) + \\log f(y \\mid \\eta)` otherwise (no prior weights).

    R: the zero-inflated part of glmmTMB's likelihood (its C++ template, ``ziformula``)."""
    return _parts(family, np.asarray(y, float), eta, phi, n, zeta)[2]


def mixture(family: Family, y, eta, phi, n, zeta):
    """:math:`\\ell_i` and :math:`\\omega_i` together, from one evaluation of the family's density (what
    :class:`glmmteach.laplace.Response` keeps and passes to the derivatives below as ``w``; they compute it
    when it is not given).

    R: no counterpart (glmmTMB differentiates its likelihood automatically)."""
    y = np.asarray(y, float)
    log_1mp, log_f, ell = _parts(family, y, eta, phi, n, zeta)
    return ell, np.where(y == 0, np.exp(np.minimum(log_1mp + log_f - ell, 0.0)), 1.0)


def omega(family: Family, y, eta, phi, n, zeta):
    """:math:`\\omega_i`: the probability that observation i came from the family's distribution, given y
    (:math:`(1 - \\pi) f(0 \\mid \\eta)/(\\pi + (1 - \\pi) f(0 \\mid \\eta))` at a zero, 1 otherwise).

    R: no counterpart (glmmTMB differentiates its likelihood automatically)."""
    return mixture(family, y, eta, phi, n, zeta)[1]


def eta_derivatives(family: Family, y, eta, phi, n, zeta, w=None):
    """:math:`\\partial\\ell/\\partial\\eta = \\omega d_1` and
    :math:`\\partial^2\\ell/\\partial\\eta^2 = \\omega d_2 + \\omega(1 - \\omega) d_1^2` (see the module's text).

    R: no counterpart (glmmTMB differentiates its likelihood automatically)."""
    d1, d2 = family.eta_derivatives(y, eta, phi, n)
    w = omega(family, y, eta, phi, n, zeta) if w is None else w
    return w * d1, w * d2 + w * (1 - w) * d1 ** 2


def zeta_partials(family: Family, y, eta, phi, n, zeta, w=None):
    """The partial derivatives in :math:`\\zeta_i` of :math:`\\ell_i`, of :math:`g_i = \\partial\\ell_i/\\partial\\eta_i`
    and of :math:`D_i = -\\partial^2\\ell_i/\\partial\\eta_i^2` (no prior weights):
    :math:`(1 - \\omega) - \\pi`, :math:`-\\omega(1 - \\omega) d_1` and :math:`\\omega(1 - \\omega)[d_2 + (1 - 2\\omega) d_1^2]`.

    R: no counterpart (glmmTMB differentiates its likelihood automatically)."""
    d1, d2 = family.eta_derivatives(y, eta, phi, n)
    w = omega(family, y, eta, phi, n, zeta) if w is None else w
    mix = w * (1 - w)
    return (1 - w) - expit(zeta), -mix * d1, mix * (d2 + (1 - 2 * w) * d1 ** 2)


def dispersion_partials(family: Family, y, eta, phi, n, zeta, w=None):
    """The partial derivatives in :math:`s_i = \\log\\phi_i` of :math:`\\ell_i`, :math:`\\partial\\ell_i/\\partial\\eta_i` and
    :math:`\\partial^2\\ell_i/\\partial\\eta_i^2` for the mixture (no prior weights; see the module's text), from the
    family's own (:meth:`glmmteach.families.Family.dispersion_derivatives`).

    R: no counterpart (glmmTMB differentiates its likelihood automatically)."""
    a, b, c = family.dispersion_derivatives(y, eta, phi, n)
    d1, d2 = family.eta_derivatives(y, eta, phi, n)
    w = omega(family, y, eta, phi, n, zeta) if w is None else w
    mix = w * (1 - w)
    return w * a, w * b + mix * a * d1, w * c + mix * (a * d2 + (1 - 2 * w) * a * d1 ** 2 + 2 * d1 * b)


def mean(mu, pi):
    """:math:`E y = (1 - \\pi)\\mu` (on the scale of mu: a proportion for a binomial).

    R: ``predict(m, type = "response")`` (glmmTMB)."""
    return (1 - np.asarray(pi, float)) * mu


def variance(variance_f, mu, pi):
    """:math:`\\mathrm{Var}\\,y = (1 - \\pi)\\,V_f + \\pi(1 - \\pi)\\mu^2`, with :math:`V_f` the family's variance at
    mu (glmmTMB's Pearson residuals divide by the square root of this, with :math:`V_f` its variance function).

    R: inside ``residuals(m, type = "pearson")`` (glmmTMB)."""
    pi = np.asarray(pi, float)
    return (1 - pi) * variance_f + pi * (1 - pi) * np.asarray(mu, float) ** 2


def simulate(draws: np.ndarray, pi, rng) -> np.ndarray:
    """The family's draws with each set to 0 with probability pi (a structural zero), independently.

    R: ``simulate(m)`` (glmmTMB) for a zero-inflated model."""
    rng = np.random.default_rng(rng)
    structural = rng.random(np.shape(draws)) < np.broadcast_to(pi, np.shape(draws))
    return np.where(structural, 0.0, draws)


def start(family: Family, y, mu, phi, n) -> float:
    """A starting :math:`\\zeta` for the intercept: the excess of zeros over what the fit without zero inflation
    expects, :math:`\\pi_0 = (\\bar z - \\bar f_0)/(1 - \\bar f_0)` with :math:`\\bar z` the share of zeros and
    :math:`\\bar f_0` the mean of :math:`f(0 \\mid \\mu_i)`, kept within [0.01, 0.9].

    R: glmmTMB starts the zero-inflation coefficients at 0 (pi = 1/2)."""
    f0 = np.mean(np.exp(family.loglik(np.zeros_like(np.asarray(y, float)), mu, phi, n)))
    excess = (np.mean(np.asarray(y) == 0) - f0) / max(1 - f0, 1e-12)
    pi0 = float(np.clip(excess, 0.01, 0.9))
    return float(np.log(pi0 / (1 - pi0)))
