"""Covariance structures of the random-effect terms: how theta makes each term's covariance.

A term ``(1 + x | g)`` with k columns has random effects :math:`u_g \\sim N(0, \\Sigma)` for every level g,
and :math:`u_g = T b_g` with :math:`b_g \\sim N(0, I_k)`, so that

.. math::  \\Sigma(\\theta) = T(\\theta)\\,T(\\theta)^\\top .

A structure says how the k x k *template* :math:`T(\\theta)` is made from the term's entries of theta:
how many there are, their names, bounds and starting values, :math:`T(\\theta)` and its derivatives
:math:`\\partial T/\\partial\\theta_j`, and how the summary prints the term. :mod:`glmmteach.design` repeats T
for every level to make :math:`\\Lambda_\\theta` (one place for all structures); :mod:`glmmteach.laplace`
uses the derivatives for the gradient. T need not be linear in theta (a structure says whether it is).

* ``us`` (unstructured, ``(1 + x | g)`` or ``us(1 + x | g)``): T lower triangular, theta its entries column
  by column, as lme4 (SDs on the diagonal of T, so :math:`\\Sigma` is any covariance matrix);
* ``diag`` (independent effects, ``(1 + x || g)`` or ``diag(1 + x | g)``): T diagonal, theta the k SDs;
* ``cs`` (``cs(day + 0 | fish)``, heterogeneous compound symmetry) and ``ar1`` (``ar1(day + 0 | fish)``,
  first-order autoregressive over the levels of a time factor), as glmmTMB 1.1.5 defines them: SDs and one
  correlation parameter t, :math:`\\Sigma = S R(t) S`; T is the Cholesky factor :math:`S\\,\\mathrm{chol}(R)`,
  not linear in t (:class:`Correlated`).

Adding a structure is one class here with its name in :data:`STRUCTURES` (see the book's page on extending
the library).

>>> import numpy as np
>>> s = Unstructured(("(Intercept)", "x"))
>>> s.n_theta, s.theta_names("g")
(3, ['g: sd (Intercept)', 'g: cholesky[x, (Intercept)]', 'g: sd x'])
>>> s.Sigma(np.array([2.0, 0.5, 1.0]))
array([[4.  , 1.  ],
       [1.  , 1.25]])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .rformat import correlation_rows


@dataclass(frozen=True)
class Structure:
    """The covariance of one random-effect term, :math:`\\Sigma(\\theta) = T(\\theta)T(\\theta)^\\top`.

    Parameters
    ----------
    names : tuple of str
        The names of the term's k columns (``"(Intercept)"``, ``"x"``).

    Notes
    -----
    A subclass sets ``name`` and ``linear`` and implements ``n_theta``, ``pattern``, ``template``,
    ``dtemplate``, ``theta_names``, ``lower_bounds`` and ``start``; ``Sigma``, ``correlation`` and the
    summary's ``correlation_text`` follow from them (override the last to print the term otherwise).
    """

    names: tuple

    name: ClassVar[str] = ""
    #: True when T is linear in theta, so that its derivatives are constants (kept from one theta to the next)
    linear: ClassVar[bool] = True

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def n_theta(self) -> int:
        raise NotImplementedError

    @property
    def pattern(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of the entries of T that may be non-zero: the sparsity of :math:`\\Lambda_\\theta`."""
        raise NotImplementedError

    def template(self, theta: np.ndarray) -> np.ndarray:
        """:math:`T(\\theta)`, k x k."""
        raise NotImplementedError

    def dtemplate(self, theta: np.ndarray) -> np.ndarray:
        """:math:`\\partial T/\\partial\\theta_j` for each j: an array (n_theta, k, k)."""
        raise NotImplementedError

    def theta_names(self, group: str) -> list[str]:
        raise NotImplementedError

    def lower_bounds(self) -> np.ndarray:
        raise NotImplementedError

    def start(self, sd: np.ndarray) -> np.ndarray:
        """theta with the SD of column j at ``sd[j]`` and no correlation."""
        raise NotImplementedError

    def Sigma(self, theta: np.ndarray) -> np.ndarray:
        """:math:`\\Sigma = T T^\\top`."""
        T = self.template(theta)
        return T @ T.T

    def correlation(self, theta: np.ndarray) -> np.ndarray:
        """:math:`\\Sigma_{jl} / \\sqrt{\\Sigma_{jj}\\Sigma_{ll}}` (NaN where an SD is 0)."""
        Sigma = self.Sigma(theta)
        sd = np.sqrt(np.diag(Sigma))
        with np.errstate(invalid="ignore", divide="ignore"):
            return Sigma / np.outer(sd, sd)

    def correlation_text(self, theta: np.ndarray, width: int) -> list[list[str]]:
        """The summary's "Corr" cells of this term, one row of ``width`` strings per row of
        ``summary_rows``: as glmmTMB 1.1.5 prints ``us`` and ``diag`` terms, correlations to 2 decimals below
        the diagonal."""
        return correlation_rows(self.Sigma(theta), width)

    @property
    def summary_rows(self) -> range:
        """The columns of the term that the summary prints a row for (all of them)."""
        return range(self.k)

    @property
    def corr_width(self) -> int:
        """How many "Corr" columns the summary needs for this term (none for a single column)."""
        return self.k if self.k > 1 else 0

    def flip_partners(self, j: int) -> np.ndarray:
        """The entries of theta whose sign may flip together when entry j sits at its bound 0 and the
        optimiser is restarted off it (the entries below a diagonal entry of T in its column, when theta is
        the entries of T; none otherwise)."""
        if not self.linear or len(self.pattern[0]) != self.n_theta:
            return np.zeros(0, int)
        rows, cols = self.pattern
        return np.flatnonzero((cols == cols[j]) & (rows > cols[j]))


@dataclass(frozen=True)
class Unstructured(Structure):
    """``us``: any covariance matrix. T is lower triangular; theta lists its entries column by column
    (lme4's order): :math:`T_{00}, T_{10}, \\dots, T_{k-1,0}, T_{11}, \\dots`. The diagonal entries are
    :math:`\\ge 0` (an SD when k = 1); T is linear in theta, :math:`\\partial T/\\partial\\theta_j = E_{r_j c_j}`."""

    name: ClassVar[str] = "us"

    @property
    def n_theta(self) -> int:
        return self.k * (self.k + 1) // 2

    @property
    def pattern(self) -> tuple[np.ndarray, np.ndarray]:
        """The lower triangle, column by column: entry j of theta sits at (rows[j], cols[j])."""
        pairs = [(r, c) for c in range(self.k) for r in range(c, self.k)]
        return tuple(np.array(pairs, dtype=int).reshape(-1, 2).T)

    def template(self, theta: np.ndarray) -> np.ndarray:
        T = np.zeros((self.k, self.k))
        T[self.pattern] = theta
        return T

    def dtemplate(self, theta: np.ndarray) -> np.ndarray:
        dT = np.zeros((self.n_theta, self.k, self.k))
        rows, cols = self.pattern
        dT[np.arange(self.n_theta), rows, cols] = 1.0
        return dT

    def theta_names(self, group: str) -> list[str]:
        return [f"{group}: " + (f"sd {self.names[r]}" if r == c else f"cholesky[{self.names[r]}, {self.names[c]}]")
                for r, c in zip(*self.pattern)]

    def lower_bounds(self) -> np.ndarray:
        rows, cols = self.pattern
        return np.where(rows == cols, 0.0, -np.inf)

    def start(self, sd: np.ndarray) -> np.ndarray:
        rows, cols = self.pattern
        return np.where(rows == cols, np.asarray(sd, float)[rows], 0.0)


@dataclass(frozen=True)
class Diagonal(Structure):
    """``diag``: independent random effects, :math:`\\Sigma = \\mathrm{diag}(\\theta_0^2, \\dots, \\theta_{k-1}^2)`;
    T is diagonal with the SDs :math:`\\theta_j \\ge 0`. glmmTMB reads ``(1 + x || g)`` as this structure."""

    name: ClassVar[str] = "diag"

    @property
    def n_theta(self) -> int:
        return self.k

    @property
    def pattern(self) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(self.k), np.arange(self.k)

    def template(self, theta: np.ndarray) -> np.ndarray:
        return np.diag(np.asarray(theta, float))

    def dtemplate(self, theta: np.ndarray) -> np.ndarray:
        dT = np.zeros((self.k, self.k, self.k))
        dT[np.arange(self.k), np.arange(self.k), np.arange(self.k)] = 1.0
        return dT

    def theta_names(self, group: str) -> list[str]:
        return [f"{group}: sd {name}" for name in self.names]

    def lower_bounds(self) -> np.ndarray:
        return np.zeros(self.k)

    def start(self, sd: np.ndarray) -> np.ndarray:
        return np.asarray(sd, float).copy()


@dataclass(frozen=True)
class Correlated(Structure):
    """A structure made of SDs and a correlation matrix with its own parameters, as glmmTMB's ``cs`` and
    ``ar1``: :math:`\\Sigma = S R(t) S` with :math:`S = \\mathrm{diag}(s)`, so that

    .. math::  T = S\\,C, \\qquad C = \\mathrm{chol}(R(t)) \\ (\\text{lower triangular}, CC^\\top = R),

    a Cholesky factor of :math:`\\Sigma` that is not linear in t. Its derivatives:
    :math:`\\partial T/\\partial s_j` is row j of C (the rows that share :math:`s_j`), and
    :math:`\\partial T/\\partial t = S\\,\\partial C/\\partial t` with the derivative of a Cholesky factor,

    .. math::  \\frac{\\partial C}{\\partial t} = C\\,\\Phi\\!\\left(C^{-1}\\frac{\\partial R}{\\partial t}C^{-\\top}\\right),

    :math:`\\Phi` keeping the lower triangle and half the diagonal. theta is the SDs (:math:`\\ge 0`, as for
    ``diag``) then t (unbounded, glmmTMB's parameter). A subclass gives ``sd_of`` (which SD each column has),
    ``rho`` (t to the correlation), ``R`` and ``dR``."""

    linear: ClassVar[bool] = False
    #: the correlation's name in the summary: "cs", "ar1"
    label: ClassVar[str] = ""

    def __post_init__(self):
        if self.k < 2:
            raise ValueError(f"{self.name}() needs a term with at least two columns, such as "
                             f"{self.name}(day + 0 | fish) with day a factor; got the columns {', '.join(self.names)}")

    @property
    def n_sd(self) -> int:
        return int(np.max(self.sd_of)) + 1

    @property
    def n_theta(self) -> int:
        return self.n_sd + 1

    @property
    def sd_of(self) -> np.ndarray:
        """For each column, the index of its SD among the first entries of theta."""
        raise NotImplementedError

    def rho(self, t: float) -> float:
        raise NotImplementedError

    def R(self, t: float) -> np.ndarray:
        """The k x k correlation matrix."""
        raise NotImplementedError

    def dR(self, t: float) -> np.ndarray:
        """:math:`\\partial R/\\partial t`."""
        raise NotImplementedError

    def t_of(self, rho: float) -> float:
        """The inverse of ``rho``: the scale of the correlation's Wald interval (glmmTMB's parameter)."""
        raise NotImplementedError

    @property
    def pattern(self) -> tuple[np.ndarray, np.ndarray]:
        """The lower triangle, column by column (T = S C is lower triangular)."""
        pairs = [(r, c) for c in range(self.k) for r in range(c, self.k)]
        return tuple(np.array(pairs, dtype=int).T)

    def _sd(self, theta: np.ndarray) -> np.ndarray:
        return np.asarray(theta, float)[:self.n_sd][self.sd_of]

    def template(self, theta: np.ndarray) -> np.ndarray:
        return self._sd(theta)[:, None] * np.linalg.cholesky(self.R(theta[-1]))

    def dtemplate(self, theta: np.ndarray) -> np.ndarray:
        t, sd = theta[-1], self._sd(theta)
        C = np.linalg.cholesky(self.R(t))
        dT = np.zeros((self.n_theta, self.k, self.k))
        for j in range(self.n_sd):
            rows = self.sd_of == j
            dT[j, rows] = C[rows]
        inverse = np.linalg.inv(C)
        Phi = np.tril(inverse @ self.dR(t) @ inverse.T)
        Phi[np.diag_indices(self.k)] /= 2
        dT[-1] = sd[:, None] * (C @ Phi)
        return dT

    def correlation(self, theta: np.ndarray) -> np.ndarray:
        """:math:`R(t)`, also where an SD is 0."""
        return self.R(theta[-1])

    def lower_bounds(self) -> np.ndarray:
        return np.r_[np.zeros(self.n_sd), -np.inf]

    def correlation_text(self, theta: np.ndarray, width: int) -> list[list[str]]:
        """As glmmTMB 1.1.5 prints the term: the correlation of the first two columns to 2 decimals and the
        structure's name, "0.72 (ar1)", in the term's first row."""
        first = correlation_rows(self.Sigma(np.r_[np.ones(self.n_sd), theta[-1]]), 1)[1][0]
        rows = [[""] * width for _ in self.summary_rows]
        rows[0][0] = f"{first} ({self.label})"
        return rows

    #: one Corr column in the summary
    corr_width = property(lambda self: 1)


@dataclass(frozen=True)
class CompoundSymmetry(Correlated):
    """``cs``: heterogeneous compound symmetry, as glmmTMB 1.1.5 defines it: an SD per column and one
    correlation between any two columns,

    .. math::  \\Sigma_{jl} = s_j s_l\\,(\\rho + (1 - \\rho)\\,\\delta_{jl}), \\qquad
               \\rho = \\frac{1 + a}{1 + e^{-t}} - a, \\quad a = \\frac{1}{k - 1},

    so that :math:`-1/(k-1) < \\rho < 1`, the range where R is positive definite. theta =
    :math:`(s_1, \\dots, s_k, t)`.

    >>> s = CompoundSymmetry(("day0", "day82", "day246"))
    >>> s.n_theta, float(s.rho(0.0))
    (4, 0.25)
    """

    name: ClassVar[str] = "cs"
    label: ClassVar[str] = "cs"

    @property
    def sd_of(self) -> np.ndarray:
        return np.arange(self.k)

    @property
    def a(self) -> float:
        return 1.0 / (self.k - 1)

    def rho(self, t: float) -> float:
        return (1 + self.a) / (1 + np.exp(-t)) - self.a

    def R(self, t: float) -> np.ndarray:
        rho = self.rho(t)
        return (1 - rho) * np.eye(self.k) + rho

    def dR(self, t: float) -> np.ndarray:
        p = 1 / (1 + np.exp(-t))
        return (1 + self.a) * p * (1 - p) * (np.ones((self.k, self.k)) - np.eye(self.k))

    def t_of(self, rho: float) -> float:
        p = (rho + self.a) / (1 + self.a)
        return np.log(p / (1 - p))

    def theta_names(self, group: str) -> list[str]:
        return [f"{group}: sd {name}" for name in self.names] + [f"{group}: cs correlation, logit scale"]

    def start(self, sd: np.ndarray) -> np.ndarray:
        """The SDs ``sd`` and :math:`\\rho = 0`, :math:`t = -\\log(k - 1)`."""
        return np.r_[np.asarray(sd, float), -np.log(self.k - 1)]


@dataclass(frozen=True)
class AutoRegressive(Correlated):
    """``ar1``: a first-order autoregressive effect over the columns in their order (the levels of a time
    factor, one step apart), as glmmTMB 1.1.5 defines it: one SD and

    .. math::  \\Sigma_{jl} = s^2 \\rho^{|j - l|}, \\qquad \\rho = t/\\sqrt{1 + t^2}.

    theta = (s, t). The Cholesky factor of R has a closed form, :math:`C_{j0} = \\rho^j` and
    :math:`C_{jl} = \\rho^{j-l}\\sqrt{1-\\rho^2}` for :math:`1 \\le l \\le j`: the effects are
    :math:`u_0 = s b_0`, :math:`u_j = \\rho u_{j-1} + s\\sqrt{1-\\rho^2}\\,b_j`.

    >>> s = AutoRegressive(("day0", "day82", "day246"))
    >>> s.n_theta, s.theta_names("fish")
    (2, ['fish: sd', 'fish: ar1 correlation, rho/sqrt(1 - rho^2)'])
    """

    name: ClassVar[str] = "ar1"
    label: ClassVar[str] = "ar1"

    @property
    def sd_of(self) -> np.ndarray:
        return np.zeros(self.k, int)

    def rho(self, t: float) -> float:
        return t / np.sqrt(1 + t * t)

    def R(self, t: float) -> np.ndarray:
        lag = np.abs(np.subtract.outer(np.arange(self.k), np.arange(self.k)))
        return self.rho(t) ** lag

    def dR(self, t: float) -> np.ndarray:
        lag = np.abs(np.subtract.outer(np.arange(self.k), np.arange(self.k)))
        rho, drho = self.rho(t), (1 + t * t) ** -1.5
        return np.where(lag > 0, lag * rho ** np.maximum(lag - 1, 0) * drho, 0.0)

    def t_of(self, rho: float) -> float:
        return rho / np.sqrt(1 - rho * rho)

    def theta_names(self, group: str) -> list[str]:
        return [f"{group}: sd", f"{group}: ar1 correlation, rho/sqrt(1 - rho^2)"]

    def start(self, sd: np.ndarray) -> np.ndarray:
        """One SD, the root mean square of ``sd``, and :math:`\\rho = t = 0`."""
        return np.array([np.sqrt(np.mean(np.square(sd))), 0.0])

    @property
    def summary_rows(self) -> range:
        """glmmTMB prints one row for the term, its first column: all columns have the same SD."""
        return range(1)


#: Structures by the name a formula writes them with: ``diag(1 + x | g)``. ``(1 + x | g)`` is ``us``.
STRUCTURES = {"us": Unstructured, "diag": Diagonal, "cs": CompoundSymmetry, "ar1": AutoRegressive}


def get(name: str, names) -> Structure:
    """The structure called ``name`` for a term with the columns ``names``."""
    if name not in STRUCTURES:
        raise ValueError(f"unknown covariance structure {name!r}; known: {', '.join(STRUCTURES)}")
    return STRUCTURES[name](tuple(names))
