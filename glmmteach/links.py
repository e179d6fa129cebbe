r"""Link functions: the map between the mean ``mu`` and the linear predictor ``eta``.

A generalized linear (mixed) model says ``g(mu) = eta = X beta + Z b``. Each link below
is a small frozen dataclass with four one-line methods:

========================  ==========================================
``link(mu)``              ``eta = g(mu)``
``inverse(eta)``          ``mu = g^{-1}(eta)``
``dmu_deta(eta)``         ``d mu / d eta``, used in the IRLS weights
``d2mu_deta2(eta)``       ``d^2 mu / d eta^2``, used in the exact Hessian of the
                          Laplace approximation when the link is not canonical
========================  ==========================================

>>> from glmmteach import links
>>> logit = links.get("logit")
>>> float(logit.inverse(0.0)), float(logit.dmu_deta(0.0))
(0.5, 0.25)

Links whose mean is a probability (logit, probit, cloglog) keep ``inverse(eta)`` inside
``[EPS, 1 - EPS]``, as R's ``make.link`` does; see :data:`EPS`. The likelihood does not use that clipped
mean: these links also give :math:`\\log\\mu` and :math:`\\log(1-\\mu)` with their first two derivatives
computed on the eta scale (``log_mu``, ``log1m_mu`` and their ``_derivatives``), exact where mu rounds to 0 or 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import erfcx, expit, log_ndtr, ndtr, ndtri

EPS = np.finfo(float).eps
"""Machine epsilon, 2.22e-16: probability means are clipped to ``[EPS, 1 - EPS]``.

Why: in floating point ``expit(37) == 1.0`` exactly (and ``ndtr(9) == 1.0``), so without a
clip ``1 - mu`` would be 0, ``log(1 - mu)`` would be ``-inf`` and the variance ``mu (1 - mu)``
would vanish. ``1 - EPS`` is the value R's ``binomial()$linkinv`` also stops at, so clipped fits
agree with R. The clip is only active for ``|eta| > 36`` (logit), ``|eta| > 8.1`` (probit), or
``eta > 3.6`` / ``eta < -36`` (cloglog), where ``mu`` is within 1e-16 of 0 or 1 anyway.
"""

TINY = np.finfo(float).tiny
"""Smallest normal double, 2.2e-308: floor for ``dmu_deta`` where the exact value underflows.

``dmu/deta`` of probit and cloglog is mathematically positive but underflows to 0 for large
``|eta|`` (e.g. the normal density at 40). We keep it exact wherever it is representable and
never let it reach 0, so that IRLS weights never divide by zero.
"""


def _as_float(x):
    return np.asarray(x, dtype=float)


@dataclass(frozen=True)
class Link:
    """A link function ``eta = g(mu)``, with its inverse and derivatives.

    Subclasses set ``name`` and override the four methods. All methods are vectorised
    (elementwise on numpy arrays) and return float arrays.
    """

    name: ClassVar[str] = "link"
    mu_domain: ClassVar[str] = "all real mu"

    def link(self, mu):
        """``eta = g(mu)``."""
        raise NotImplementedError

    def inverse(self, eta):
        """``mu = g^{-1}(eta)``."""
        raise NotImplementedError

    def dmu_deta(self, eta):
        """First derivative ``d mu / d eta``."""
        raise NotImplementedError

    def d2mu_deta2(self, eta):
        """Second derivative ``d^2 mu / d eta^2``."""
        raise NotImplementedError

    #: True for the links whose mean is a probability and that give ``log_mu`` and ``log1m_mu``
    log_probabilities: ClassVar[bool] = False

    def log_mu(self, eta):
        """``log mu``, computed on the eta scale."""
        raise NotImplementedError

    def log_mu_derivatives(self, eta):
        """``(d log mu / d eta, d^2 log mu / d eta^2)``."""
        raise NotImplementedError

    def log1m_mu(self, eta):
        """``log(1 - mu)``, computed on the eta scale."""
        raise NotImplementedError

    def log1m_mu_derivatives(self, eta):
        """``(d log(1 - mu) / d eta, d^2 log(1 - mu) / d eta^2)``."""
        raise NotImplementedError

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class Identity(Link):
    """Identity link.

    ``g(mu) = mu``, ``g^{-1}(eta) = eta``, ``dmu/deta = 1``, ``d2mu/deta2 = 0``.
    """

    name: ClassVar[str] = "identity"

    def link(self, mu):
        return _as_float(mu).copy()

    def inverse(self, eta):
        return _as_float(eta).copy()

    def dmu_deta(self, eta):
        return np.ones_like(_as_float(eta))

    def d2mu_deta2(self, eta):
        return np.zeros_like(_as_float(eta))


@dataclass(frozen=True)
class Log(Link):
    """Log link, for means ``mu > 0``.

    ``g(mu) = log(mu)``, ``g^{-1}(eta) = exp(eta)``, ``dmu/deta = exp(eta)``,
    ``d2mu/deta2 = exp(eta)``. Not clipped: ``exp(eta)`` is finite and positive for
    ``|eta| < 709``, far beyond any sensible linear predictor.
    """

    name: ClassVar[str] = "log"
    mu_domain: ClassVar[str] = "mu > 0"

    def link(self, mu):
        return np.log(_as_float(mu))

    def inverse(self, eta):
        return np.exp(_as_float(eta))

    def dmu_deta(self, eta):
        return np.exp(_as_float(eta))

    def d2mu_deta2(self, eta):
        return np.exp(_as_float(eta))


@dataclass(frozen=True)
class Logit(Link):
    """Logit link (log-odds), for probabilities ``0 < mu < 1``; canonical for the binomial.

    ``g(mu) = log(mu / (1 - mu))``, ``g^{-1}(eta) = 1 / (1 + exp(-eta))`` clipped to
    ``[EPS, 1 - EPS]`` (see :data:`EPS`), ``dmu/deta = mu (1 - mu)``,
    ``d2mu/deta2 = mu (1 - mu)(1 - 2 mu)``.

    The derivatives use the unclipped ``mu``, written as ``expit(eta) expit(-eta)``
    so that they stay positive (about 2e-22 at ``eta = 50``) instead of rounding to 0.
    """

    name: ClassVar[str] = "logit"
    mu_domain: ClassVar[str] = "0 < mu < 1"

    def link(self, mu):
        mu = _as_float(mu)
        return np.log(mu) - np.log1p(-mu)

    def inverse(self, eta):
        return np.clip(expit(_as_float(eta)), EPS, 1 - EPS)

    def dmu_deta(self, eta):
        eta = _as_float(eta)
        return expit(eta) * expit(-eta)

    def d2mu_deta2(self, eta):
        eta = _as_float(eta)
        # 1 - 2 mu = -tanh(eta / 2), accurate also where mu is close to 1
        return expit(eta) * expit(-eta) * -np.tanh(eta / 2)

    log_probabilities: ClassVar[bool] = True

    def log_mu(self, eta):
        """``log mu = -log(1 + exp(-eta))``."""
        return -np.logaddexp(0.0, -_as_float(eta))

    def log_mu_derivatives(self, eta):
        """``1 - mu`` and ``-mu (1 - mu)``."""
        eta = _as_float(eta)
        return expit(-eta), -expit(eta) * expit(-eta)

    def log1m_mu(self, eta):
        """``log(1 - mu) = -log(1 + exp(eta))``."""
        return -np.logaddexp(0.0, _as_float(eta))

    def log1m_mu_derivatives(self, eta):
        """``-mu`` and ``-mu (1 - mu)``."""
        eta = _as_float(eta)
        return -expit(eta), -expit(eta) * expit(-eta)


@dataclass(frozen=True)
class Probit(Link):
    """Probit link, for probabilities ``0 < mu < 1``: the standard normal quantile.

    ``g(mu) = Phi^{-1}(mu)``, ``g^{-1}(eta) = Phi(eta)`` clipped to ``[EPS, 1 - EPS]``
    (see :data:`EPS`), ``dmu/deta = phi(eta) = exp(-eta^2 / 2) / sqrt(2 pi)`` (floored at
    :data:`TINY`, where it would underflow), ``d2mu/deta2 = -eta phi(eta)``.
    """

    name: ClassVar[str] = "probit"
    mu_domain: ClassVar[str] = "0 < mu < 1"

    def link(self, mu):
        return ndtri(_as_float(mu))

    def inverse(self, eta):
        return np.clip(ndtr(_as_float(eta)), EPS, 1 - EPS)

    def dmu_deta(self, eta):
        return np.maximum(_normal_density(_as_float(eta)), TINY)

    def d2mu_deta2(self, eta):
        eta = _as_float(eta)
        return -eta * _normal_density(eta)

    log_probabilities: ClassVar[bool] = True

    def log_mu(self, eta):
        """``log Phi(eta)`` (scipy's ``log_ndtr``)."""
        return log_ndtr(_as_float(eta))

    def log_mu_derivatives(self, eta):
        """The ratio ``m = phi(eta) / Phi(eta)`` and ``-m (eta + m)``."""
        eta = _as_float(eta)
        m = _mills_ratio(eta)
        return m, -m * (eta + m)

    def log1m_mu(self, eta):
        """``log(1 - Phi(eta)) = log Phi(-eta)``."""
        return log_ndtr(-_as_float(eta))

    def log1m_mu_derivatives(self, eta):
        """:meth:`log_mu_derivatives` at ``-eta``, signed by the chain rule."""
        d1, d2 = self.log_mu_derivatives(-_as_float(eta))
        return -d1, d2


def _mills_ratio(eta):
    """``phi(eta) / Phi(eta) = sqrt(2 / pi) / erfcx(-eta / sqrt 2)``: the scaled complementary error function
    keeps the ratio exact where both densities underflow (it is close to ``-eta`` for eta below -5)."""
    return np.sqrt(2 / np.pi) / erfcx(-eta / np.sqrt(2))


def _normal_density(eta):
    """Standard normal density ``exp(-eta^2 / 2) / sqrt(2 pi)``."""
    return np.exp(-0.5 * eta**2) / np.sqrt(2 * np.pi)


@dataclass(frozen=True)
class Cloglog(Link):
    """Complementary log-log link, for probabilities ``0 < mu < 1``.

    ``g(mu) = log(-log(1 - mu))``, ``g^{-1}(eta) = 1 - exp(-exp(eta))`` clipped to
    ``[EPS, 1 - EPS]`` (see :data:`EPS`), ``dmu/deta = exp(eta - exp(eta))`` (floored at
    :data:`TINY`, where it would underflow), ``d2mu/deta2 = exp(eta - exp(eta)) (1 - exp(eta))``.
    """

    name: ClassVar[str] = "cloglog"
    mu_domain: ClassVar[str] = "0 < mu < 1"

    def link(self, mu):
        return np.log(-np.log1p(-_as_float(mu)))

    def inverse(self, eta):
        # -expm1(-x) = 1 - exp(-x), accurate for small x = exp(eta)
        return np.clip(-np.expm1(-np.exp(_capped(eta))), EPS, 1 - EPS)

    def dmu_deta(self, eta):
        eta = _capped(eta)
        return np.maximum(np.exp(eta - np.exp(eta)), TINY)

    def d2mu_deta2(self, eta):
        eta = _capped(eta)
        return np.exp(eta - np.exp(eta)) * -np.expm1(eta)

    log_probabilities: ClassVar[bool] = True

    def log_mu(self, eta):
        """With ``t = exp(eta)``: ``log mu = log(1 - exp(-t))`` (through expm1 for small t, log1p for large)."""
        t = np.exp(np.minimum(_as_float(eta), 700.0))
        return np.where(t < np.log(2), np.log(-np.expm1(-np.minimum(t, np.log(2)))),
                        np.log1p(-np.exp(-np.maximum(t, np.log(2)))))

    def log_mu_derivatives(self, eta):
        """``r = t / (exp(t) - 1)`` and ``r (1 - t / (1 - exp(-t)))`` (a series where t is small, as the
        difference cancels there)."""
        t = np.exp(np.minimum(_as_float(eta), 700.0))
        with np.errstate(over="ignore"):
            r = t / np.expm1(t)                         # 0 where exp(t) overflows, as it should
        return r, r * _one_minus_t_over_expm1(t)

    def log1m_mu(self, eta):
        """``log(1 - mu) = -exp(eta)``."""
        return -np.exp(np.minimum(_as_float(eta), 700.0))

    def log1m_mu_derivatives(self, eta):
        """Both are ``-exp(eta)`` too."""
        t = self.log1m_mu(eta)
        return t, t


def _one_minus_t_over_expm1(t):
    """``1 - t / (1 - exp(-t))``: for t < 0.1 the series ``-(t/2 + t^2/12 - t^4/720 + t^6/30240
    - t^8/1209600)`` (Bernoulli numbers; the next term is below 1e-16 relative), else directly."""
    small = np.minimum(t, 0.1)
    series = -(small / 2 + small**2 / 12 - small**4 / 720 + small**6 / 30240 - small**8 / 1209600)
    large = np.maximum(t, 0.1)
    return np.where(t < 0.1, series, 1 - large / -np.expm1(-large))


def _capped(eta):
    """``min(eta, 30)``: beyond ``eta = 4`` the cloglog mean is 1 to double precision and
    its derivatives underflow to 0, so capping changes nothing but avoids ``exp`` overflow."""
    return np.minimum(_as_float(eta), 30.0)


@dataclass(frozen=True)
class Inverse(Link):
    """Inverse (reciprocal) link, canonical for the Gamma family; ``eta != 0``.

    ``g(mu) = 1 / mu``, ``g^{-1}(eta) = 1 / eta``, ``dmu/deta = -1 / eta^2`` (negative:
    the mean falls as ``eta`` rises), ``d2mu/deta2 = 2 / eta^3``.
    """

    name: ClassVar[str] = "inverse"
    mu_domain: ClassVar[str] = "mu != 0"

    def link(self, mu):
        return 1.0 / _as_float(mu)

    def inverse(self, eta):
        return 1.0 / _as_float(eta)

    def dmu_deta(self, eta):
        return -1.0 / _as_float(eta) ** 2

    def d2mu_deta2(self, eta):
        return 2.0 / _as_float(eta) ** 3


@dataclass(frozen=True)
class Sqrt(Link):
    """Square-root link, for means ``mu >= 0`` (counts).

    ``g(mu) = sqrt(mu)``, ``g^{-1}(eta) = eta^2``, ``dmu/deta = 2 eta``, ``d2mu/deta2 = 2``.
    As in R, ``inverse`` is ``eta^2`` for every ``eta``, so ``eta`` and ``-eta`` give the
    same mean; fits are meant to stay at ``eta > 0``.
    """

    name: ClassVar[str] = "sqrt"
    mu_domain: ClassVar[str] = "mu >= 0"

    def link(self, mu):
        return np.sqrt(_as_float(mu))

    def inverse(self, eta):
        return _as_float(eta) ** 2

    def dmu_deta(self, eta):
        return 2.0 * _as_float(eta)

    def d2mu_deta2(self, eta):
        return np.full_like(_as_float(eta), 2.0)


LINKS = {link.name: link for link in
         (Identity(), Log(), Logit(), Probit(), Cloglog(), Inverse(), Sqrt())}
"""All links by name: ``{"identity": Identity(), "log": Log(), ...}``."""


def get(name):
    """Return the link called ``name`` (or ``name`` itself if it is already a :class:`Link`).

    Raises
    ------
    ValueError
        For an unknown name, listing the names that exist.
    """
    if isinstance(name, Link):
        return name
    if isinstance(name, str) and name in LINKS:
        return LINKS[name]
    raise ValueError(f"unknown link {name!r}; choose one of: {', '.join(LINKS)}")
