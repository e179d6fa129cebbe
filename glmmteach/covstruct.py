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
* ``diag`` (independent effects, ``(1 + x || g)`` or ``diag(1 + x | g)``): T diagonal, theta the k SDs.

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
        """The summary's "Corr" cells of this term, one row of ``width`` strings per column of the term: as
        glmmTMB 1.1.5 prints ``us`` and ``diag`` terms, correlations to 2 decimals below the diagonal."""
        return correlation_rows(self.Sigma(theta), width)


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


#: Structures by the name a formula writes them with: ``diag(1 + x | g)``. ``(1 + x | g)`` is ``us``.
STRUCTURES = {"us": Unstructured, "diag": Diagonal}


def get(name: str, names) -> Structure:
    """The structure called ``name`` for a term with the columns ``names``."""
    if name not in STRUCTURES:
        raise ValueError(f"unknown covariance structure {name!r}; known: {', '.join(STRUCTURES)}")
    return STRUCTURES[name](tuple(names))
