"""Response distributions: log density, its derivatives, variance and random draws.

Each family is a small frozen dataclass holding its link. Its density and its random
draw sit side by side, as in glmmTMB. Every method is vectorised (elementwise, numpy
broadcasting) and uses the argument names of the lessons:

``y``
    the observed response (for the binomial: the number of successes),
``mu``
    the mean (for the binomial: the success probability),
``phi``
    the dispersion parameter, which always means exactly what glmmTMB's ``sigma()``
    returns for that family (see each class and ``sigma_meaning``),
``n``
    the number of binomial trials (other families accept and ignore it).

``loglik`` keeps every constant that R's ``dnorm``, ``dbinom``, ``dpois``, ``dgamma``,
``dnbinom`` and ``dbeta`` keep, so that its sum is glmmTMB's ``logLik``.

>>> import numpy as np
>>> from glmmteach import families
>>> fam = families.get("poisson")
>>> fam.link.name
'log'
>>> round(float(fam.loglik(3, 2.0, 1.0)), 6)   # dpois(3, 2, log = TRUE) in R
-1.712318
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln, polygamma, xlog1py, xlogy

from . import links, numdiff
from .links import Link

LOG_2PI = np.log(2 * np.pi)


def _as_float(x):
    return np.asarray(x, dtype=float)


def _log_choose(n, y):
    """``log C(n, y) = lgamma(n + 1) - lgamma(y + 1) - lgamma(n - y + 1)``."""
    return gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1)


def _times(count, log_p):
    """``count * log_p`` with 0 times anything equal to 0 (no success: log mu does not count, even if -inf)."""
    with np.errstate(invalid="ignore"):
        return np.where(count == 0, 0.0, count * log_p)


def _phi_term(f, phi):
    """``f(phi)`` for a function of phi alone, computed once when every observation has the same phi
    (one dispersion for the whole model, the usual case) and broadcast; else entry by entry."""
    phi = _as_float(phi)
    if phi.size > 1 and phi.flat[0] == phi.flat[-1] and np.all(phi == phi.flat[0]):
        return np.broadcast_to(f(phi.flat[0]), phi.shape)
    return f(phi)


def _success_rules(y):
    return [(y < 0, "has negative success counts",
             "y is the number of successes, 0, 1, ..., n"),
            (y != np.round(y), "has non-integer success counts",
             "y is the number of successes; for a proportion, give the trials as weights")]


def _fmt(value):
    """A number as a student would write it: 17 rather than 17.0, 2.5, nan."""
    if np.isfinite(value) and value == np.round(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


@dataclass(frozen=True)
class Family:
    """A response distribution with its link ``g(mu) = eta``.

    Parameters
    ----------
    link : str or Link, optional
        A link name (``"log"``) or a :class:`~glmmteach.links.Link`; by default the
        family's ``default_link``, as in R. Links outside ``allowed_links`` raise ValueError.

    Notes
    -----
    Subclasses implement ``loglik``, ``dloglik_dmu``, ``d2loglik_dmu2``, ``variance``
    (R's variance function ``V(mu)``), ``var_y`` (the full ``Var y``, with ``phi``),
    ``simulate``, ``start_mu``, ``unit_deviance`` and ``_support_rules``; a family with a dispersion
    parameter also :meth:`dispersion_partials` (else they come from finite differences).

    A family also declares what the rest of the library would otherwise ask its name about:
    ``trials`` (a binomial-type response, successes out of ``n``: ``cbind()`` and proportions with
    weights), :meth:`observed` (the response on the scale of ``mu``), :meth:`mean_of_y`,
    :meth:`start_phi` and :meth:`eta_scale` (starting values), :meth:`dispersion_line` (how glmmTMB's
    summary prints the dispersion) and ``residual_in_varcorr`` (whether the summary lists a residual
    variance among the random effects).
    """

    link: Link | str | None = None

    name: ClassVar[str] = "family"
    support: ClassVar[str] = ""
    mean: ClassVar[str] = "mu"
    variance_text: ClassVar[str] = ""
    canonical_link: ClassVar[str] = ""
    default_link: ClassVar[str] = ""
    allowed_links: ClassVar[tuple] = ()
    has_phi: ClassVar[bool] = True
    sigma_meaning: ClassVar[str] = ""
    integer_valued: ClassVar[bool] = False
    #: y counts successes out of n trials (``cbind(s, f)``, or a proportion with the trials as weights)
    trials: ClassVar[bool] = False
    #: glmmTMB's "classic" dispersion (gaussian, Gamma): its summary prints sigma^2, else sigma itself
    classic_dispersion: ClassVar[bool] = False
    #: glmmTMB's summary lists the residual variance as a "Residual" row of the random effects
    residual_in_varcorr: ClassVar[bool] = False
    #: a ``ziformula`` may add structural zeros (:mod:`glmmteach.zeroinfl`): counts and binomials, as the
    #: course uses them with glmmTMB
    zero_inflation: ClassVar[bool] = False
    #: glmmTMB's dispersion formula models the log of its own dispersion parameter, which is
    #: ``phi ** (1 / disp_scale)``: so ``log phi = disp_scale * (X_d beta_d)``. 1 (log phi) for most
    #: families; 1/2 for the gaussian (log sigma^2), -1/2 for the Gamma (log shape = -2 log sigma).
    disp_scale: ClassVar[float] = 1.0
    #: emmeans' name for a mean back-transformed to the response scale: ``prob`` for binomial-type
    #: families, ``rate`` for the Poisson, ``response`` for the others
    response_name: ClassVar[str] = "response"

    def __post_init__(self):
        link = links.get(self.default_link if self.link is None else self.link)
        if link.name not in self.allowed_links:
            raise ValueError(
                f"the {self.name} family does not allow the {link.name!r} link; "
                f"allowed: {', '.join(self.allowed_links)}")
        object.__setattr__(self, "link", link)

    def __str__(self):
        return f"{self.name}({self.link.name})"

    @property
    def quadratic(self) -> bool:
        """Whether :math:`\\log p(y \\mid \\eta)` is quadratic in :math:`\\eta`, so that one Newton step reaches
        the conditional modes exactly (the Gaussian with the identity link)."""
        return False

    # --- checking the response -------------------------------------------------
    def check_response(self, y, n=None, name="y"):
        """Check that ``y`` lies in the family's support; return it as a float array.

        Raises
        ------
        ValueError
            Naming the column ``name``, the first offending value and its row
            (position, counting from 0), and what the family allows.
        """
        y = self._numeric(y, f"response {name!r}")
        self._raise_first(y, ~np.isfinite(y), name, "must be finite",
                          "drop or impute missing values first")
        for bad, problem, hint in self._support_rules(y, n, name):
            self._raise_first(y, bad, name, problem, hint)
        return y

    def _numeric(self, values, what):
        try:
            return np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{what} must be numeric for the {self.name} family") from None

    def _raise_first(self, y, bad, name, problem, hint=""):
        """Raise a ValueError about the first ``True`` of ``bad``, if any."""
        bad = np.broadcast_to(bad, np.shape(y)).ravel()
        if not bad.any():
            return
        row = int(np.argmax(bad))
        message = (f"response {name!r} {problem} for the {self.name} family; "
                   f"found {_fmt(np.ravel(y)[row])} in row {row}")
        raise ValueError(message + (f" ({hint})" if hint else ""))

    def _support_rules(self, y, n, name):
        """List of ``(bad_mask, problem, hint)``; the first violated one is reported."""
        return []

    def _count_rules(self, y):
        return [(y < 0, "has negative counts", "counts must be 0, 1, 2, ..."),
                (y != np.round(y), "has non-integer counts",
                 "counts must be whole numbers 0, 1, 2, ...")]

    # --- what the rest of the library asks a family -------------------------------
    def observed(self, y, n=1):
        """The response on the scale of ``mu``: the proportion ``y / n`` for ``trials`` families, else ``y``."""
        return _as_float(y) / _as_float(n) if self.trials else _as_float(y)

    def mean_of_y(self, mu, n=1):
        """``E y`` on the scale of ``y``: ``n mu`` for ``trials`` families (success counts), else ``mu``."""
        return _as_float(mu) * _as_float(n) if self.trials else _as_float(mu)

    def start_phi(self, y, weights):
        """The dispersion a fit starts its search from (refined by the GLM without random effects): 1."""
        return 1.0

    def eta_scale(self, phi) -> float:
        """The scale on which theta is measured relative to the linear predictor: 1, except for the
        gaussian with the identity link, where random effects are measured against sigma (``phi``)."""
        return 1.0

    def phi_is_sd_of_eta(self) -> bool:
        """Whether phi is a residual SD on the scale of eta (the gaussian with the identity link, and the
        Gamma with the log link, whose phi is the CV: Var log y ~ phi^2), so that random effects can take
        all of the residual variation (see ``fit._dispersion_floor``)."""
        return False

    def dispersion_line(self, sigma: float) -> str | None:
        """The summary's dispersion line as glmmTMB 1.1.5 prints it (None for families without one):
        "Dispersion estimate for gaussian family (sigma^2): 653 " for gaussian and Gamma, else
        "Dispersion parameter for nbinom2 family (): 3.1 "."""
        if not self.has_phi:
            return None
        if self.classic_dispersion:
            return f"Dispersion estimate for {self.name} family (sigma^2): {sigma ** 2:.3g} "
        return f"Dispersion parameter for {self.name} family (): {sigma:.3g} "

    # --- interface (documented in each subclass) -----------------------------------
    def loglik(self, y, mu, phi, n=1):
        raise NotImplementedError

    def dloglik_dmu(self, y, mu, phi, n=1):
        raise NotImplementedError

    def d2loglik_dmu2(self, y, mu, phi, n=1):
        raise NotImplementedError

    def variance(self, mu, phi=None):
        raise NotImplementedError

    def var_y(self, mu, phi, n=1):
        raise NotImplementedError

    def simulate(self, mu, phi, rng, n=1):
        raise NotImplementedError

    def start_mu(self, y, n=1):
        raise NotImplementedError

    def unit_deviance(self, y, mu, phi, n=1):
        raise NotImplementedError

    def dispersion_score(self, y, mu, phi, n=1):
        """:math:`\\partial\\ell/\\partial s` at fixed mu, :math:`s = \\log\\phi`: the first of
        :meth:`dispersion_partials`, which a family replaces where it costs less alone (the GLM's step in phi
        evaluates only this)."""
        return self.dispersion_partials(y, mu, phi, n)[0]

    def dispersion_partials(self, y, mu, phi, n=1):
        """The partial derivatives in :math:`s = \\log\\phi` of :math:`\\ell`, :math:`\\ell'(\\mu)` and
        :math:`\\ell''(\\mu)` at fixed mu (a tuple of three arrays): zeros for a family without a dispersion
        parameter; here by central differences in s (:func:`glmmteach.numdiff.elementwise`), which each
        family with a dispersion parameter replaces by its formulas."""
        shape = np.broadcast(_as_float(y), _as_float(mu), _as_float(phi)).shape
        if not self.has_phi:
            return tuple(np.zeros(shape) for _ in range(3))
        s = np.broadcast_to(np.log(_as_float(phi)), shape)
        return numdiff.elementwise(lambda s: (self.loglik(y, mu, np.exp(s), n), self.dloglik_dmu(y, mu, np.exp(s), n),
                                              self.d2loglik_dmu2(y, mu, np.exp(s), n)), s)

    # --- on the scale of the linear predictor (what the fit uses) ----------------------------------
    def loglik_eta(self, y, eta, phi, n=1):
        """``ell(eta) = loglik(y, mu(eta))``."""
        return self.loglik(y, self.link.inverse(eta), phi, n)

    def eta_derivatives(self, y, eta, phi, n=1):
        """``d ell / d eta = ell'(mu) mu'(eta)`` and ``d^2 ell / d eta^2 = ell''(mu) mu'(eta)^2 + ell'(mu) mu''(eta)``."""
        mu, dmu = self.link.inverse(eta), self.link.dmu_deta(eta)
        score = self.dloglik_dmu(y, mu, phi, n)
        return score * dmu, self.d2loglik_dmu2(y, mu, phi, n) * dmu**2 + score * self.link.d2mu_deta2(eta)

    def dispersion_derivatives(self, y, eta, phi, n=1):
        """The partial derivatives in :math:`s = \\log\\phi` of :math:`\\ell`, :math:`g = \\partial\\ell/\\partial\\eta`
        and :math:`\\partial^2\\ell/\\partial\\eta^2` at fixed eta. With :math:`\\ell_s, \\ell'_s, \\ell''_s` from
        :meth:`dispersion_partials` (mu does not depend on s):

        .. math:: \\frac{\\partial g}{\\partial s} = \\ell'_s\\,\\mu'(\\eta), \\qquad
                  \\frac{\\partial}{\\partial s}\\frac{\\partial^2\\ell}{\\partial\\eta^2}
                  = \\ell''_s\\,\\mu'(\\eta)^2 + \\ell'_s\\,\\mu''(\\eta).
        """
        if not self.has_phi:
            shape = np.broadcast(_as_float(y), _as_float(eta), _as_float(phi)).shape
            return tuple(np.zeros(shape) for _ in range(3))
        mu, dmu = self.link.inverse(eta), self.link.dmu_deta(eta)
        l_s, l1_s, l2_s = self.dispersion_partials(y, mu, phi, n)
        return l_s, l1_s * dmu, l2_s * dmu**2 + l1_s * self.link.d2mu_deta2(eta)

    def pearson_residual(self, y, mu, phi, n=1):
        """Pearson residual as glmmTMB 1.1.5 computes it: ``(y - mu) / sqrt(V(mu))``.

        ``V`` is :meth:`variance`, R's variance function: it carries ``theta`` for the
        nbinom2 but NOT ``sigma`` for the gaussian, Gamma and beta (so the gaussian Pearson
        residual equals the response residual, as in glmmTMB 1.1.5 and R's ``glm``).
        Divide by ``sqrt(var_y(mu, phi, n))`` instead for a residual with variance 1.
        """
        return (_as_float(y) - mu) / np.sqrt(self.variance(mu, phi))


@dataclass(frozen=True)
class Gaussian(Family):
    """Normal distribution, ``y ~ N(mu, sigma^2)``; ``phi`` is the residual SD ``sigma``.

    ``log f(y) = -log(2 pi)/2 - log(sigma) - (y - mu)^2 / (2 sigma^2)`` (R's ``dnorm``).
    ``E y = mu``, ``Var y = sigma^2``; ``sigma()`` in glmmTMB is the residual SD.
    """

    name: ClassVar[str] = "gaussian"
    support: ClassVar[str] = "all real y"
    variance_text: ClassVar[str] = "sigma^2"
    canonical_link: ClassVar[str] = "identity"
    default_link: ClassVar[str] = "identity"
    allowed_links: ClassVar[tuple] = ("identity", "log", "inverse")
    sigma_meaning: ClassVar[str] = "sigma = residual standard deviation"
    classic_dispersion: ClassVar[bool] = True
    residual_in_varcorr: ClassVar[bool] = True
    disp_scale: ClassVar[float] = 0.5           # dispformula: log(sigma^2)

    def start_phi(self, y, weights):
        """The SD of y, weighted by the prior weights."""
        w = _as_float(weights) / np.sum(weights)
        return float(np.sqrt(w @ (_as_float(y) - w @ _as_float(y)) ** 2))

    def eta_scale(self, phi) -> float:
        """sigma for the identity link (the random effects are on the scale of y), else 1."""
        return float(np.mean(phi)) if self.link.name == "identity" else 1.0

    def phi_is_sd_of_eta(self) -> bool:
        """sigma is the residual SD of eta = mu for the identity link."""
        return self.link.name == "identity"

    def loglik(self, y, mu, phi, n=1):
        """``-log(2 pi)/2 - log(phi) - (y - mu)^2 / (2 phi^2)``."""
        z = (_as_float(y) - mu) / phi
        return -0.5 * LOG_2PI - _phi_term(np.log, phi) - 0.5 * z**2

    def dispersion_partials(self, y, mu, phi, n=1):
        """With :math:`s = \\log\\sigma` and :math:`z = (y - \\mu)/\\sigma`: :math:`\\partial\\ell/\\partial s = z^2 - 1`,
        and :math:`\\ell' = (y - \\mu)/\\sigma^2`, :math:`\\ell'' = -1/\\sigma^2` carry :math:`\\sigma^{-2} = e^{-2s}`,
        so :math:`\\partial\\ell'/\\partial s = -2\\ell'` and :math:`\\partial\\ell''/\\partial s = -2\\ell''`."""
        return self.dispersion_score(y, mu, phi), -2 * self.dloglik_dmu(y, mu, phi), -2 * self.d2loglik_dmu2(y, mu, phi)

    def dispersion_score(self, y, mu, phi, n=1):
        """:math:`\\partial\\ell/\\partial s = z^2 - 1`, :math:`z = (y - \\mu)/\\sigma`."""
        z = (_as_float(y) - mu) / _as_float(phi)
        return z**2 - 1

    def dloglik_dmu(self, y, mu, phi, n=1):
        """``(y - mu) / phi^2``."""
        return (_as_float(y) - mu) / _as_float(phi) ** 2

    def d2loglik_dmu2(self, y, mu, phi, n=1):
        """``-1 / phi^2``."""
        return np.broadcast_to(-1.0 / _as_float(phi) ** 2, np.broadcast(y, mu).shape).copy()

    @property
    def quadratic(self) -> bool:
        return self.link.name == "identity"

    def variance(self, mu, phi=None):
        """R's ``gaussian()$variance``: ``V(mu) = 1``."""
        return np.ones_like(_as_float(mu))

    def var_y(self, mu, phi, n=1):
        """``Var y = phi^2``."""
        return np.broadcast_to(_as_float(phi) ** 2, np.broadcast(mu, phi).shape).copy()

    def simulate(self, mu, phi, rng, n=1):
        """Draws ``y ~ N(mu, phi^2)`` from the Generator ``rng``."""
        return np.random.default_rng(rng).normal(mu, phi)

    def start_mu(self, y, n=1):
        """``mu_0 = y``."""
        return _as_float(y).copy()

    def unit_deviance(self, y, mu, phi, n=1):
        """R's ``gaussian()$dev.resids``: ``(y - mu)^2`` (not divided by ``sigma^2``)."""
        return (_as_float(y) - mu) ** 2


def _check_trials(family, y, n, name):
    """For a family of successes out of n trials: n whole and at least 1, and y at most n."""
    trials = family._numeric(1.0 if n is None else n, f"number of trials for {name!r}")
    bad = ~np.isfinite(trials) | (trials < 1) | (trials != np.round(trials))
    bad = np.broadcast_to(bad, np.broadcast(y, trials).shape).ravel()
    if bad.any():
        row = int(np.argmax(bad))
        value = np.broadcast_to(trials, bad.shape)[row]
        raise ValueError(
            f"number of trials for response {name!r} must be a whole number >= 1 for "
            f"the {family.name} family; found {_fmt(value)} in row {row}")
    above = np.broadcast_to(y > trials, bad.shape)
    if above.any():
        row = int(np.argmax(above))
        raise ValueError(
            f"response {name!r} has more successes than trials for the {family.name} family; "
            f"found {_fmt(np.broadcast_to(y, bad.shape)[row])} successes with "
            f"n = {_fmt(np.broadcast_to(trials, bad.shape)[row])} trials in row {row}")
    return y


@dataclass(frozen=True)
class Binomial(Family):
    """Binomial distribution: ``y`` successes out of ``n`` trials, success probability ``mu``.

    ``log f(y) = log C(n, y) + y log(mu) + (n - y) log(1 - mu)`` (R's ``dbinom``).
    ``E y = n mu``, ``Var y = n mu (1 - mu)``. No dispersion: glmmTMB's ``sigma()`` is 1
    and ``phi`` is ignored. ``n`` defaults to 1 (a 0/1 response).
    """

    name: ClassVar[str] = "binomial"
    response_name: ClassVar[str] = "prob"
    support: ClassVar[str] = "{0, 1, ..., n}"
    mean: ClassVar[str] = "n mu"
    variance_text: ClassVar[str] = "n mu(1 - mu)"
    canonical_link: ClassVar[str] = "logit"
    default_link: ClassVar[str] = "logit"
    allowed_links: ClassVar[tuple] = ("logit", "probit", "cloglog", "log")
    has_phi: ClassVar[bool] = False
    sigma_meaning: ClassVar[str] = "none (sigma = 1)"
    integer_valued: ClassVar[bool] = True
    zero_inflation: ClassVar[bool] = True
    trials: ClassVar[bool] = True

    def loglik(self, y, mu, phi=1.0, n=1):
        """``log C(n, y) + y log(mu) + (n - y) log(1 - mu)``; finite at ``mu = y/n`` in {0, 1}."""
        y, n = _as_float(y), _as_float(n)
        return _log_choose(n, y) + xlogy(y, mu) + xlog1py(n - y, -_as_float(mu))

    def dloglik_dmu(self, y, mu, phi=1.0, n=1):
        """``y / mu - (n - y) / (1 - mu) = (y - n mu) / (mu (1 - mu))``."""
        mu = _as_float(mu)
        return (_as_float(y) - _as_float(n) * mu) / (mu * (1 - mu))

    def d2loglik_dmu2(self, y, mu, phi=1.0, n=1):
        """``-y / mu^2 - (n - y) / (1 - mu)^2``."""
        y, mu, n = _as_float(y), _as_float(mu), _as_float(n)
        return -y / mu**2 - (n - y) / (1 - mu) ** 2

    def variance(self, mu, phi=None):
        """R's ``binomial()$variance``: ``V(mu) = mu (1 - mu)``."""
        mu = _as_float(mu)
        return mu * (1 - mu)

    def var_y(self, mu, phi=1.0, n=1):
        """``Var y = n mu (1 - mu)`` for the success count ``y``."""
        mu = _as_float(mu)
        return _as_float(n) * mu * (1 - mu)

    def simulate(self, mu, phi, rng, n=1):
        """Success counts ``y ~ Binomial(n, mu)`` drawn from the Generator ``rng``."""
        trials = np.round(_as_float(n)).astype(np.int64)
        return np.random.default_rng(rng).binomial(trials, mu).astype(float)

    def start_mu(self, y, n=1):
        """``mu_0 = (y + 0.5) / (n + 1)``, as R's ``binomial()$initialize``."""
        return (_as_float(y) + 0.5) / (_as_float(n) + 1)

    def unit_deviance(self, y, mu, phi=1.0, n=1):
        """``2 [y log(y / (n mu)) + (n - y) log((n - y) / (n (1 - mu)))]``.

        Equal to R's ``binomial()$dev.resids(y/n, mu, wt = n)``; 0 log 0 = 0.
        """
        y, mu, n = _as_float(y), _as_float(mu), _as_float(n)
        return 2 * (xlogy(y, y / (n * mu)) + xlogy(n - y, (n - y) / (n * (1 - mu))))

    def pearson_residual(self, y, mu, phi=1.0, n=1):
        """``(y/n - mu) / sqrt(mu (1 - mu) / n) = (y - n mu) / sqrt(n mu (1 - mu))``, as R."""
        return (_as_float(y) - _as_float(n) * mu) / np.sqrt(self.var_y(mu, phi, n))

    # On the eta scale, for logit, probit and cloglog: ell = log C(n, y) + y log mu + (n - y) log(1 - mu)
    # with log mu and log(1 - mu) from the link (cloglog: log(1 - mu) = -exp(eta) exactly), not from a mean
    # clipped to [EPS, 1 - EPS], which caps log(1 - mu) near -36.
    def loglik_eta(self, y, eta, phi=1.0, n=1):
        """``log C(n, y) + y log mu(eta) + (n - y) log(1 - mu(eta))``, each log computed from eta."""
        if not self.link.log_probabilities:
            return super().loglik_eta(y, eta, phi, n)
        y, n = _as_float(y), _as_float(n)
        return _log_choose(n, y) + _times(y, self.link.log_mu(eta)) + _times(n - y, self.link.log1m_mu(eta))

    def eta_derivatives(self, y, eta, phi=1.0, n=1):
        """``y (log mu)' + (n - y) (log(1 - mu))'`` and the same with the second derivatives, in eta."""
        if not self.link.log_probabilities:
            return super().eta_derivatives(y, eta, phi, n)
        y, n = _as_float(y), _as_float(n)
        (d1, d2), (e1, e2) = self.link.log_mu_derivatives(eta), self.link.log1m_mu_derivatives(eta)
        return y * d1 + (n - y) * e1, y * d2 + (n - y) * e2

    def check_response(self, y, n=None, name="y"):
        return _check_trials(self, super().check_response(y, n, name), n, name)

    def _support_rules(self, y, n, name):
        return _success_rules(y)


@dataclass(frozen=True)
class Poisson(Family):
    """Poisson distribution for counts, mean ``mu``.

    ``log f(y) = y log(mu) - mu - log(y!)`` (R's ``dpois``). ``E y = Var y = mu``.
    No dispersion: glmmTMB's ``sigma()`` is 1 and ``phi`` is ignored.
    """

    name: ClassVar[str] = "poisson"
    response_name: ClassVar[str] = "rate"
    support: ClassVar[str] = "{0, 1, 2, ...}"
    variance_text: ClassVar[str] = "mu"
    canonical_link: ClassVar[str] = "log"
    default_link: ClassVar[str] = "log"
    allowed_links: ClassVar[tuple] = ("log", "identity", "sqrt")
    has_phi: ClassVar[bool] = False
    sigma_meaning: ClassVar[str] = "none (sigma = 1)"
    integer_valued: ClassVar[bool] = True
    zero_inflation: ClassVar[bool] = True

    def loglik(self, y, mu, phi=1.0, n=1):
        """``y log(mu) - mu - lgamma(y + 1)``; equal to 0 at ``y = mu = 0``."""
        y = _as_float(y)
        return xlogy(y, mu) - mu - gammaln(y + 1)

    def dloglik_dmu(self, y, mu, phi=1.0, n=1):
        """``y / mu - 1``."""
        return _as_float(y) / mu - 1

    def d2loglik_dmu2(self, y, mu, phi=1.0, n=1):
        """``-y / mu^2``."""
        return -_as_float(y) / _as_float(mu) ** 2

    def variance(self, mu, phi=None):
        """R's ``poisson()$variance``: ``V(mu) = mu``."""
        return _as_float(mu).copy()

    def var_y(self, mu, phi=1.0, n=1):
        """``Var y = mu``."""
        return _as_float(mu).copy()

    def simulate(self, mu, phi, rng, n=1):
        """Counts ``y ~ Poisson(mu)`` drawn from the Generator ``rng``."""
        return np.random.default_rng(rng).poisson(mu).astype(float)

    def start_mu(self, y, n=1):
        """``mu_0 = y + 0.1``, as R's ``poisson()$initialize``."""
        return _as_float(y) + 0.1

    def unit_deviance(self, y, mu, phi=1.0, n=1):
        """R's ``poisson()$dev.resids``: ``2 [y log(y / mu) - (y - mu)]``; 0 log 0 = 0."""
        y = _as_float(y)
        return 2 * (xlogy(y, y / mu) - (y - mu))

    def _support_rules(self, y, n, name):
        return self._count_rules(y)


def _gamma_shape_term(k):
    """The Gamma log density's terms in the shape k alone, :math:`k\\log k - \\log\\Gamma(k)`."""
    return k * np.log(k) - gammaln(k)


@dataclass(frozen=True)
class Gamma(Family):
    """Gamma distribution for positive ``y``, with mean ``mu`` and ``phi = sigma = 1/sqrt(shape)``.

    glmmTMB's ``sigma()`` for the Gamma is ``1/sqrt(shape)``, the coefficient of variation
    ``sd(y)/E(y)``. So ``shape k = 1/phi^2`` and ``scale s = mu phi^2``, and
    ``log f(y) = (k - 1) log(y) - y/s - lgamma(k) - k log(s)`` (R's ``dgamma``).
    ``E y = mu``, ``Var y = phi^2 mu^2``. (R's ``glm`` reports the dispersion ``phi^2``.)
    """

    name: ClassVar[str] = "Gamma"
    support: ClassVar[str] = "y > 0"
    variance_text: ClassVar[str] = "sigma^2 mu^2"
    canonical_link: ClassVar[str] = "inverse"
    default_link: ClassVar[str] = "inverse"
    allowed_links: ClassVar[tuple] = ("inverse", "identity", "log")
    sigma_meaning: ClassVar[str] = "sigma = 1/sqrt(shape), the coefficient of variation"
    classic_dispersion: ClassVar[bool] = True
    disp_scale: ClassVar[float] = -0.5          # dispformula: log(shape) = -2 log(sigma)

    def phi_is_sd_of_eta(self) -> bool:
        """With the log link, phi (the CV) is about the SD of log y around eta."""
        return self.link.name == "log"

    def loglik(self, y, mu, phi, n=1):
        """``(k - 1) log(y) - y/s - lgamma(k) - k log(s)`` with ``k = 1/phi^2``, ``s = mu phi^2``."""
        y, shape = _as_float(y), 1.0 / _as_float(phi) ** 2
        log_mu = np.log(mu)
        return (xlogy(shape - 1, y) - shape * y / mu - shape * log_mu
                + _phi_term(lambda phi: _gamma_shape_term(1.0 / phi**2), phi))

    def dispersion_partials(self, y, mu, phi, n=1):
        """With :math:`s = \\log\\phi`, :math:`k = e^{-2s}` (so :math:`\\partial k/\\partial s = -2k`) and
        :math:`\\partial\\ell/\\partial k = \\log y - y/\\mu - \\psi(k) + \\log k + 1 - \\log\\mu`:
        :math:`\\partial\\ell/\\partial s = -2k\\,\\partial\\ell/\\partial k`; :math:`\\ell'` and :math:`\\ell''` are
        proportional to k, so :math:`\\partial\\ell'/\\partial s = -2\\ell'` and :math:`\\partial\\ell''/\\partial s = -2\\ell''`."""
        return self.dispersion_score(y, mu, phi), -2 * self.dloglik_dmu(y, mu, phi), -2 * self.d2loglik_dmu2(y, mu, phi)

    def dispersion_score(self, y, mu, phi, n=1):
        """:math:`\\partial\\ell/\\partial s = -2k\\,\\partial\\ell/\\partial k`, :math:`\\partial\\ell/\\partial k = \\log y
        - y/\\mu - \\psi(k) + \\log k + 1 - \\log\\mu` (:meth:`dispersion_partials`)."""
        ratio, shape = _as_float(y) / _as_float(mu), 1.0 / _as_float(phi) ** 2
        in_k = np.log(ratio) - ratio + 1 + _phi_term(lambda phi: np.log(phi**-2) - digamma(phi**-2), phi)
        return -2 * shape * in_k

    def dloglik_dmu(self, y, mu, phi, n=1):
        """``k (y - mu) / mu^2`` with ``k = 1/phi^2``."""
        mu = _as_float(mu)
        return (_as_float(y) - mu) / (_as_float(phi) ** 2 * mu**2)

    def d2loglik_dmu2(self, y, mu, phi, n=1):
        """``k (mu - 2 y) / mu^3`` with ``k = 1/phi^2``."""
        mu = _as_float(mu)
        return (mu - 2 * _as_float(y)) / (_as_float(phi) ** 2 * mu**3)

    def variance(self, mu, phi=None):
        """R's ``Gamma()$variance``: ``V(mu) = mu^2``."""
        return _as_float(mu) ** 2

    def var_y(self, mu, phi, n=1):
        """``Var y = phi^2 mu^2``."""
        return (_as_float(phi) * mu) ** 2

    def simulate(self, mu, phi, rng, n=1):
        """``y ~ Gamma(shape = 1/phi^2, scale = mu phi^2)`` drawn from the Generator ``rng``."""
        phi2 = _as_float(phi) ** 2
        return np.random.default_rng(rng).gamma(1.0 / phi2, _as_float(mu) * phi2)

    def start_mu(self, y, n=1):
        """``mu_0 = y``, as R's ``Gamma()$initialize``."""
        return _as_float(y).copy()

    def unit_deviance(self, y, mu, phi, n=1):
        """R's ``Gamma()$dev.resids``: ``-2 [log(y / mu) - (y - mu) / mu]`` (no ``sigma``)."""
        y, mu = _as_float(y), _as_float(mu)
        return -2 * (np.log(y / mu) - (y - mu) / mu)

    def _support_rules(self, y, n, name):
        return [(y <= 0, "must be > 0", "")]


@dataclass(frozen=True)
class NBinom2(Family):
    """Negative binomial with quadratic variance (glmmTMB's ``nbinom2``); ``phi`` is the size ``theta``.

    ``Var y = mu + mu^2/theta`` and glmmTMB's ``sigma()`` returns ``theta`` (large ``theta``:
    close to Poisson). With size ``theta`` and ``p = theta/(theta + mu)`` (R's ``dnbinom``):
    ``log f(y) = lgamma(y + theta) - lgamma(theta) - lgamma(y + 1) + theta log(p) + y log(1 - p)``.

    There is no canonical link among ours (for known ``theta`` it would be
    ``log(mu/(mu + theta))``); the log link is the default, as in glmmTMB.
    """

    name: ClassVar[str] = "nbinom2"
    support: ClassVar[str] = "{0, 1, 2, ...}"
    variance_text: ClassVar[str] = "mu + mu^2/theta"
    canonical_link: ClassVar[str] = "none (log used)"
    default_link: ClassVar[str] = "log"
    allowed_links: ClassVar[tuple] = ("log", "identity", "sqrt")
    sigma_meaning: ClassVar[str] = "sigma = theta, the size (large: close to Poisson)"
    integer_valued: ClassVar[bool] = True
    zero_inflation: ClassVar[bool] = True

    def loglik(self, y, mu, phi, n=1):
        """``lgamma(y + theta) - lgamma(theta) - lgamma(y + 1) - theta log(1 + mu/theta)
        + y log(mu) - y log(theta + mu)``, with ``theta = phi``."""
        y, mu, theta = _as_float(y), _as_float(mu), _as_float(phi)
        return (gammaln(y + theta) - _phi_term(gammaln, theta) - gammaln(y + 1)
                - theta * np.log1p(mu / theta) + xlogy(y, mu) - xlogy(y, theta + mu))

    def dispersion_partials(self, y, mu, phi, n=1):
        """With :math:`s = \\log\\theta` (so :math:`\\partial/\\partial s = \\theta\\,\\partial/\\partial\\theta`):

        .. math:: \\frac{\\partial\\ell}{\\partial s} = \\theta\\Big[\\psi(y + \\theta) - \\psi(\\theta)
                  - \\log\\big(1 + \\tfrac{\\mu}{\\theta}\\big) + \\frac{\\mu - y}{\\theta + \\mu}\\Big],\\quad
                  \\frac{\\partial\\ell'}{\\partial s} = \\frac{\\theta (y - \\mu)}{(\\theta + \\mu)^2},\\quad
                  \\frac{\\partial\\ell''}{\\partial s} = \\frac{\\theta (\\mu - 2y - \\theta)}{(\\theta + \\mu)^3}.
        """
        y, mu, theta = _as_float(y), _as_float(mu), _as_float(phi)
        total = theta + mu
        l_s = theta * (digamma(y + theta) - _phi_term(digamma, theta) - np.log1p(mu / theta) + (mu - y) / total)
        return l_s, theta * (y - mu) / total**2, theta * (mu - 2 * y - theta) / total**3

    def dloglik_dmu(self, y, mu, phi, n=1):
        """``y/mu - (y + theta)/(theta + mu) = theta (y - mu) / (mu (theta + mu))``."""
        mu, theta = _as_float(mu), _as_float(phi)
        return theta * (_as_float(y) - mu) / (mu * (theta + mu))

    def d2loglik_dmu2(self, y, mu, phi, n=1):
        """``-y/mu^2 + (y + theta)/(theta + mu)^2``."""
        y, mu, theta = _as_float(y), _as_float(mu), _as_float(phi)
        return -y / mu**2 + (y + theta) / (theta + mu) ** 2

    def variance(self, mu, phi=None):
        """glmmTMB's ``nbinom2()$variance(mu, theta)``: ``mu (1 + mu/theta)``; needs ``phi``."""
        if phi is None:
            raise TypeError("the nbinom2 variance function needs phi (the size theta)")
        return self.var_y(mu, phi)

    def var_y(self, mu, phi, n=1):
        """``Var y = mu + mu^2/theta``, ``theta = phi``."""
        mu = _as_float(mu)
        return mu + mu**2 / phi

    def simulate(self, mu, phi, rng, n=1):
        """Counts from numpy's negative binomial with size ``theta`` and ``p = theta/(theta + mu)``.

        (The number of failures before ``theta`` successes: mean ``mu``, variance ``mu + mu^2/theta``.)
        """
        theta = _as_float(phi)
        return np.random.default_rng(rng).negative_binomial(
            theta, theta / (theta + _as_float(mu))).astype(float)

    def start_mu(self, y, n=1):
        """``mu_0 = y + 0.1`` (as for the Poisson)."""
        return _as_float(y) + 0.1

    def unit_deviance(self, y, mu, phi, n=1):
        """glmmTMB's ``nbinom2()$dev.resids``:
        ``2 [y log(y / mu) - (y + theta) log((y + theta) / (mu + theta))]``; 0 log 0 = 0."""
        y, mu, theta = _as_float(y), _as_float(mu), _as_float(phi)
        return 2 * (xlogy(y, y / mu) - (y + theta) * np.log((y + theta) / (mu + theta)))

    def _support_rules(self, y, n, name):
        return self._count_rules(y)


@dataclass(frozen=True)
class Beta(Family):
    """Beta distribution for proportions ``0 < y < 1``, mean ``mu``, precision ``phi``.

    glmmTMB's ``sigma()`` is the precision ``phi``: ``shape1 a = mu phi``,
    ``shape2 b = (1 - mu) phi``, ``Var y = mu (1 - mu)/(1 + phi)`` (large ``phi``: less spread).
    ``log f(y) = lgamma(phi) - lgamma(a) - lgamma(b) + (a - 1) log(y) + (b - 1) log(1 - y)``
    (R's ``dbeta``). Not an exponential family, so no canonical link; logit is the default.
    """

    name: ClassVar[str] = "beta"
    support: ClassVar[str] = "(0, 1)"
    variance_text: ClassVar[str] = "mu(1 - mu)/(1 + phi)"
    canonical_link: ClassVar[str] = "none (logit used)"
    default_link: ClassVar[str] = "logit"
    allowed_links: ClassVar[tuple] = ("logit", "probit", "cloglog")
    sigma_meaning: ClassVar[str] = "sigma = phi, the precision (large: less spread)"

    def loglik(self, y, mu, phi, n=1):
        """``lgamma(phi) - lgamma(a) - lgamma(b) + (a - 1) log(y) + (b - 1) log(1 - y)``."""
        y, mu, phi = _as_float(y), _as_float(mu), _as_float(phi)
        a, b = mu * phi, (1 - mu) * phi
        return _phi_term(gammaln, phi) - gammaln(a) - gammaln(b) + xlogy(a - 1, y) + xlog1py(b - 1, -y)

    def dispersion_partials(self, y, mu, phi, n=1):
        """With :math:`s = \\log\\phi`, :math:`a = \\mu\\phi`, :math:`b = (1 - \\mu)\\phi` (so :math:`\\partial a/\\partial s = a`,
        :math:`\\partial b/\\partial s = b`) and :math:`\\psi_k` the polygamma functions:

        .. math:: \\frac{\\partial\\ell}{\\partial s} = \\phi\\psi(\\phi) - a[\\psi(a) - \\log y] - b[\\psi(b) - \\log(1 - y)],
                  \\quad \\frac{\\partial\\ell'}{\\partial s} = \\ell' + \\phi^2[(1 - \\mu)\\psi_1(b) - \\mu\\psi_1(a)],
                  \\quad \\frac{\\partial\\ell''}{\\partial s} = 2\\ell'' - \\phi^3[\\mu\\psi_2(a) + (1 - \\mu)\\psi_2(b)].
        """
        y, mu, phi = _as_float(y), _as_float(mu), _as_float(phi)
        a, b = mu * phi, (1 - mu) * phi
        l_s = _phi_term(lambda p: p * digamma(p), phi) - a * (digamma(a) - np.log(y)) - b * (digamma(b) - np.log1p(-y))
        l1 = self.dloglik_dmu(y, mu, phi)
        l1_s = l1 + phi**2 * ((1 - mu) * polygamma(1, b) - mu * polygamma(1, a))
        l2_s = 2 * self.d2loglik_dmu2(y, mu, phi) - phi**3 * (mu * polygamma(2, a) + (1 - mu) * polygamma(2, b))
        return l_s, l1_s, l2_s

    def dloglik_dmu(self, y, mu, phi, n=1):
        """``phi [log(y) - log(1 - y) - digamma(a) + digamma(b)]``."""
        y, mu, phi = _as_float(y), _as_float(mu), _as_float(phi)
        return phi * (np.log(y) - np.log1p(-y) - digamma(mu * phi) + digamma((1 - mu) * phi))

    def d2loglik_dmu2(self, y, mu, phi, n=1):
        """``-phi^2 [trigamma(a) + trigamma(b)]``."""
        mu, phi = _as_float(mu), _as_float(phi)
        trigamma_sum = polygamma(1, mu * phi) + polygamma(1, (1 - mu) * phi)
        return np.broadcast_to(-phi**2 * trigamma_sum, np.broadcast(y, mu, phi).shape).copy()

    def variance(self, mu, phi=None):
        """glmmTMB's ``beta_family()$variance``: ``V(mu) = mu (1 - mu)``."""
        mu = _as_float(mu)
        return mu * (1 - mu)

    def var_y(self, mu, phi, n=1):
        """``Var y = mu (1 - mu) / (1 + phi)``."""
        mu = _as_float(mu)
        return mu * (1 - mu) / (1 + _as_float(phi))

    def simulate(self, mu, phi, rng, n=1):
        """``y ~ Beta(mu phi, (1 - mu) phi)`` drawn from the Generator ``rng``."""
        mu, phi = _as_float(mu), _as_float(phi)
        return np.random.default_rng(rng).beta(mu * phi, (1 - mu) * phi)

    def start_mu(self, y, n=1):
        """``mu_0 = (y (N - 1) + 1/2) / N``, ``N`` = number of observations (Smithson &
        Verkuilen 2006): ``y`` pulled slightly towards 1/2, strictly inside (0, 1)."""
        y = _as_float(y)
        size = max(y.size, 2)
        return (y * (size - 1) + 0.5) / size

    def unit_deviance(self, y, mu, phi, n=1):
        """Not defined: glmmTMB's ``beta_family()$dev.resids`` returns only zeros."""
        raise NotImplementedError("the beta family has no deviance residuals in glmmTMB; "
                                  "use Pearson or simulation-based (scaled) residuals")

    def _support_rules(self, y, n, name):
        return [((y <= 0) | (y >= 1), "must be strictly between 0 and 1",
                 "0 and 1 themselves are not allowed; a common fix is "
                 "(y (N - 1) + 0.5) / N with N the number of observations")]


@dataclass(frozen=True)
class NBinom1(Family):
    """Negative binomial with linear variance (glmmTMB's ``nbinom1``): ``Var y = mu (1 + phi)``.

    glmmTMB's ``sigma()`` returns ``phi``, the extra variance per unit of the mean (small ``phi``: close
    to Poisson). The size is ``k = mu/phi`` and the success probability ``p = 1/(1 + phi)`` (R's
    ``dnbinom(y, size = mu/phi, prob = 1/(1 + phi))``, glmmTMB's ``dnbinom_robust`` with
    ``log(var - mu) = log(mu phi)``):
    ``log f(y) = lgamma(y + k) - lgamma(k) - lgamma(y + 1) - k log(1 + phi) + y log(phi) - y log(1 + phi)``.
    The size moves with the mean, so the variance is proportional to it, as for a quasi-Poisson.
    """

    name: ClassVar[str] = "nbinom1"
    support: ClassVar[str] = "{0, 1, 2, ...}"
    variance_text: ClassVar[str] = "mu(1 + phi)"
    canonical_link: ClassVar[str] = "none (log used)"
    default_link: ClassVar[str] = "log"
    allowed_links: ClassVar[tuple] = ("log", "identity", "sqrt")
    sigma_meaning: ClassVar[str] = "sigma = phi, the variance per mean minus 1 (small: close to Poisson)"
    integer_valued: ClassVar[bool] = True
    zero_inflation: ClassVar[bool] = True

    def loglik(self, y, mu, phi, n=1):
        """``lgamma(y + k) - lgamma(k) - lgamma(y + 1) - (k + y) log(1 + phi) + y log(phi)``, ``k = mu/phi``."""
        y, mu, phi = _as_float(y), _as_float(mu), _as_float(phi)
        k = mu / phi
        return (gammaln(y + k) - gammaln(k) - gammaln(y + 1) - (k + y) * _phi_term(np.log1p, phi)
                + xlogy(y, phi))

    def dloglik_dmu(self, y, mu, phi, n=1):
        """``[psi(y + k) - psi(k) - log(1 + phi)] / phi`` (psi the digamma function, ``k = mu/phi``)."""
        y, mu, phi = _as_float(y), _as_float(mu), _as_float(phi)
        k = mu / phi
        return (digamma(y + k) - digamma(k) - np.log1p(phi)) / phi

    def d2loglik_dmu2(self, y, mu, phi, n=1):
        """``[psi_1(y + k) - psi_1(k)] / phi^2`` (psi_1 the trigamma function)."""
        y, mu, phi = _as_float(y), _as_float(mu), _as_float(phi)
        k = mu / phi
        return (polygamma(1, y + k) - polygamma(1, k)) / phi**2

    def dispersion_partials(self, y, mu, phi, n=1):
        """With :math:`s = \\log\\phi` and :math:`k = \\mu/\\phi` (so :math:`\\partial k/\\partial s = -k`),
        :math:`A = \\psi(y + k) - \\psi(k) - \\log(1 + \\phi)` and :math:`B = \\psi_1(y + k) - \\psi_1(k)`
        (so :math:`\\ell' = A/\\phi`, :math:`\\ell'' = B/\\phi^2`):

        .. math:: \\frac{\\partial\\ell}{\\partial s} = -kA + \\frac{y - \\mu}{1 + \\phi},\\quad
                  \\frac{\\partial\\ell'}{\\partial s} = -\\ell' - \\frac{kB}{\\phi} - \\frac{1}{1 + \\phi},\\quad
                  \\frac{\\partial\\ell''}{\\partial s} = -2\\ell'' - \\frac{k}{\\phi^2}[\\psi_2(y + k) - \\psi_2(k)].
        """
        y, mu, phi = _as_float(y), _as_float(mu), _as_float(phi)
        k = mu / phi
        A = digamma(y + k) - digamma(k) - np.log1p(phi)
        B = polygamma(1, y + k) - polygamma(1, k)
        l_s = -k * A + (y - mu) / (1 + phi)
        l1_s = -A / phi - k * B / phi - 1 / (1 + phi)
        l2_s = -2 * B / phi**2 - k * (polygamma(2, y + k) - polygamma(2, k)) / phi**2
        return l_s, l1_s, l2_s

    def variance(self, mu, phi=None):
        """glmmTMB's ``nbinom1()$variance(mu, alpha)``: ``mu (1 + phi)``; needs ``phi``."""
        if phi is None:
            raise TypeError("the nbinom1 variance function needs phi")
        return self.var_y(mu, phi)

    def var_y(self, mu, phi, n=1):
        """``Var y = mu (1 + phi)``."""
        return _as_float(mu) * (1 + _as_float(phi))

    def simulate(self, mu, phi, rng, n=1):
        """Counts from numpy's negative binomial with size ``k = mu/phi`` and ``p = 1/(1 + phi)``: the number
        of failures before k successes, mean ``k (1 - p)/p = mu``, variance ``k (1 - p)/p^2 = mu (1 + phi)``."""
        mu, phi = np.broadcast_arrays(_as_float(mu), _as_float(phi))
        return np.random.default_rng(rng).negative_binomial(mu / phi, 1 / (1 + phi)).astype(float)

    def start_mu(self, y, n=1):
        """``mu_0 = y + 0.1`` (as for the Poisson)."""
        return _as_float(y) + 0.1

    def unit_deviance(self, y, mu, phi, n=1):
        """Not defined: glmmTMB's ``nbinom1()$dev.resids`` returns only zeros."""
        raise NotImplementedError("the nbinom1 family has no deviance residuals in glmmTMB; "
                                  "use Pearson or simulation-based (scaled) residuals")

    def _support_rules(self, y, n, name):
        return self._count_rules(y)


@dataclass(frozen=True)
class BetaBinomial(Family):
    """Beta-binomial: ``y`` successes out of ``n`` trials whose success probability varies as
    ``Beta(a, b)``, with mean ``mu`` and precision ``phi``: ``a = mu phi``, ``b = (1 - mu) phi``
    (glmmTMB's ``betabinomial``; its ``sigma()`` is ``phi``, large: close to binomial).

    ``log f(y) = log C(n, y) + lbeta(y + a, n - y + b) - lbeta(a, b)``, with ``lbeta(a, b) = lgamma(a)
    + lgamma(b) - lgamma(a + b)``. ``E y = n mu``, ``Var y = n mu (1 - mu) (n + phi)/(1 + phi)``. The response
    is ``cbind(successes, failures)``, or a proportion with the trials as weights (as for the binomial).
    Crowder (1978) introduced it for the germination of seeds on plates (``crowder_seeds``).
    """

    name: ClassVar[str] = "betabinomial"
    response_name: ClassVar[str] = "prob"
    support: ClassVar[str] = "{0, 1, ..., n}"
    mean: ClassVar[str] = "n mu"
    variance_text: ClassVar[str] = "n mu(1 - mu)(n + phi)/(1 + phi)"
    canonical_link: ClassVar[str] = "none (logit used)"
    default_link: ClassVar[str] = "logit"
    allowed_links: ClassVar[tuple] = ("logit", "probit", "cloglog")
    sigma_meaning: ClassVar[str] = "sigma = phi, the precision of the success probability (large: close to binomial)"
    integer_valued: ClassVar[bool] = True
    trials: ClassVar[bool] = True

    def loglik(self, y, mu, phi, n=1):
        """``log C(n, y) + lgamma(y + a) + lgamma(n - y + b) - lgamma(n + phi) - lgamma(a) - lgamma(b)
        + lgamma(phi)``."""
        y, mu, phi, n = _as_float(y), _as_float(mu), _as_float(phi), _as_float(n)
        a, b = mu * phi, (1 - mu) * phi
        return (_log_choose(n, y) + gammaln(y + a) + gammaln(n - y + b) - gammaln(n + phi)
                - gammaln(a) - gammaln(b) + _phi_term(gammaln, phi))

    def dloglik_dmu(self, y, mu, phi, n=1):
        """``phi [psi(y + a) - psi(a) - psi(n - y + b) + psi(b)]``."""
        y, mu, phi, n = _as_float(y), _as_float(mu), _as_float(phi), _as_float(n)
        a, b = mu * phi, (1 - mu) * phi
        return phi * (digamma(y + a) - digamma(a) - digamma(n - y + b) + digamma(b))

    def d2loglik_dmu2(self, y, mu, phi, n=1):
        """``phi^2 [psi_1(y + a) - psi_1(a) + psi_1(n - y + b) - psi_1(b)]``."""
        y, mu, phi, n = _as_float(y), _as_float(mu), _as_float(phi), _as_float(n)
        a, b = mu * phi, (1 - mu) * phi
        return phi**2 * (polygamma(1, y + a) - polygamma(1, a) + polygamma(1, n - y + b) - polygamma(1, b))

    def dispersion_partials(self, y, mu, phi, n=1):
        """With :math:`s = \\log\\phi` (:math:`\\partial a/\\partial s = a`, :math:`\\partial b/\\partial s = b`),
        :math:`\\Delta_k(a) = \\psi_k(y + a) - \\psi_k(a)` and :math:`\\Delta_k(b) = \\psi_k(n - y + b) - \\psi_k(b)`:

        .. math:: \\frac{\\partial\\ell}{\\partial s} = a\\Delta_0(a) + b\\Delta_0(b) - \\phi[\\psi(n + \\phi) - \\psi(\\phi)],
                  \\quad \\frac{\\partial\\ell'}{\\partial s} = \\ell' + \\phi^2[\\mu\\Delta_1(a) - (1 - \\mu)\\Delta_1(b)],

        .. math:: \\frac{\\partial\\ell''}{\\partial s} = 2\\ell'' + \\phi^3[\\mu\\Delta_2(a) + (1 - \\mu)\\Delta_2(b)].
        """
        y, mu, phi, n = _as_float(y), _as_float(mu), _as_float(phi), _as_float(n)
        a, b = mu * phi, (1 - mu) * phi

        def delta(k):
            return polygamma(k, y + a) - polygamma(k, a), polygamma(k, n - y + b) - polygamma(k, b)
        (da0, db0), (da1, db1), (da2, db2) = delta(0), delta(1), delta(2)
        l_s = a * da0 + b * db0 - phi * (digamma(n + phi) - _phi_term(digamma, phi))
        l1_s = phi * (da0 - db0) + phi**2 * (mu * da1 - (1 - mu) * db1)
        l2_s = 2 * phi**2 * (da1 + db1) + phi**3 * (mu * da2 + (1 - mu) * db2)
        return l_s, l1_s, l2_s

    def variance(self, mu, phi=None):
        """glmmTMB's ``betabinomial()$variance``: ``V(mu) = mu (1 - mu)`` (as the binomial's)."""
        mu = _as_float(mu)
        return mu * (1 - mu)

    def var_y(self, mu, phi, n=1):
        """``Var y = n mu (1 - mu) (n + phi) / (1 + phi)`` for the success count ``y``."""
        mu, phi, n = _as_float(mu), _as_float(phi), _as_float(n)
        return n * mu * (1 - mu) * (n + phi) / (1 + phi)

    def simulate(self, mu, phi, rng, n=1):
        """A success probability ``p ~ Beta(mu phi, (1 - mu) phi)`` for each row, then ``y ~ Binomial(n, p)``,
        from the Generator ``rng``."""
        rng = np.random.default_rng(rng)
        mu, phi, n = np.broadcast_arrays(_as_float(mu), _as_float(phi), _as_float(n))
        p = rng.beta(mu * phi, (1 - mu) * phi)
        return rng.binomial(np.round(n).astype(np.int64), p).astype(float)

    def start_mu(self, y, n=1):
        """``mu_0 = (y + 0.5) / (n + 1)``, as for the binomial."""
        return (_as_float(y) + 0.5) / (_as_float(n) + 1)

    def unit_deviance(self, y, mu, phi, n=1):
        """Not defined: glmmTMB's ``betabinomial()$dev.resids`` returns only zeros."""
        raise NotImplementedError("the betabinomial family has no deviance residuals in glmmTMB; "
                                  "use Pearson or simulation-based (scaled) residuals")

    def pearson_residual(self, y, mu, phi, n=1):
        """``(y/n - mu) / sqrt(mu (1 - mu) / n)``, as glmmTMB 1.1.5 (R's variance function times the trials
        as weights, without phi)."""
        return (_as_float(y) - _as_float(n) * mu) / np.sqrt(_as_float(n) * self.variance(mu))

    def check_response(self, y, n=None, name="y"):
        return _check_trials(self, super().check_response(y, n, name), n, name)

    def _support_rules(self, y, n, name):
        return _success_rules(y)


FAMILIES = {"gaussian": Gaussian, "binomial": Binomial, "poisson": Poisson,
            "Gamma": Gamma, "nbinom1": NBinom1, "nbinom2": NBinom2, "beta": Beta,
            "betabinomial": BetaBinomial}
"""Family classes by R's name."""

_ALIASES = {"gamma": "Gamma"}


def get(family):
    """Return a :class:`Family`: from a name (default link) or a Family instance (as is).

    Names: ``"gaussian"``, ``"binomial"``, ``"poisson"``, ``"Gamma"`` (or ``"gamma"``),
    ``"nbinom1"``, ``"nbinom2"``, ``"beta"``, ``"betabinomial"``.

    Raises
    ------
    ValueError
        For an unknown name. TypeError for anything that is neither a name nor a Family.
    """
    if isinstance(family, Family):
        return family
    if isinstance(family, str):
        key = _ALIASES.get(family, family)
        if key in FAMILIES:
            return FAMILIES[key]()
        raise ValueError(f"unknown family {family!r}; choose one of: "
                         f"{', '.join(FAMILIES)} (or 'gamma')")
    if isinstance(family, type) and issubclass(family, Family):
        raise TypeError(f"family must be a name or a Family object; "
                        f"did you mean {family.__name__}() with parentheses?")
    raise TypeError(f"family must be a name such as 'poisson' or a Family object, "
                    f"not {type(family).__name__}")


def table():
    """The properties of the families as a DataFrame, one row per family.

    Columns: family, support, mean, variance, canonical link, default link, links allowed,
    dispersion (what glmmTMB's ``sigma()`` means). Shown in the lessons as
    "Properties of probability distributions".
    """
    rows = [{"family": f.name, "support": f.support, "mean": f.mean,
             "variance": f.variance_text, "canonical link": f.canonical_link,
             "default link": f.default_link, "links allowed": ", ".join(f.allowed_links),
             "dispersion": f.sigma_meaning}
            for f in FAMILIES.values()]
    return pd.DataFrame(rows)
