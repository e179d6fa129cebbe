"""The inner step of a GLMM fit: conditional modes and the Laplace approximation.

Notation (as in the lessons). With spherical random effects :math:`b \\sim N(0, I_q)` and
:math:`u = \\Lambda_\\theta b`, the linear predictor is

.. math::  \\eta = X\\beta + M b + o, \\qquad M = Z\\Lambda_\\theta,

and the marginal likelihood integrates the random effects out:

.. math::  L(\\beta, \\theta, \\phi) = \\int \\prod_i p(y_i \\mid \\eta_i, \\phi)\\,
           (2\\pi)^{-q/2} e^{-b^\\top b/2}\\, db .

**Laplace approximation.** Let :math:`f(b) = \\sum_i \\ell_i(\\eta_i) - \\tfrac12 b^\\top b`,
:math:`\\hat b` its maximiser (the *conditional modes*), and
:math:`H = -\\nabla^2 f(\\hat b) = M^\\top D M + I` with :math:`D = \\mathrm{diag}(-\\partial^2 \\ell_i / \\partial\\eta_i^2)`.
Expanding :math:`f` to second order around :math:`\\hat b` and integrating the Gaussian gives

.. math::  \\log L \\approx \\sum_i \\ell_i(\\hat\\eta_i) - \\tfrac12 \\hat b^\\top\\hat b - \\tfrac12 \\log|H| .

**REML** (as glmmTMB's ``REML = TRUE``): :math:`\\beta` joins the integrated vector with a flat
prior, :math:`v = (\\beta, b)`, and the same expansion gives

.. math::  \\log L_R \\approx \\sum_i \\ell_i(\\hat\\eta_i) - \\tfrac12 \\hat b^\\top\\hat b
           - \\tfrac12 \\log|H_v| + \\tfrac{p}{2}\\log 2\\pi,
           \\qquad H_v = \\begin{pmatrix} X^\\top D X & X^\\top D M \\\\ M^\\top D X & M^\\top D M + I \\end{pmatrix}.

For the Gaussian family with the identity link :math:`f` is exactly quadratic, so both formulas
are exact (ML and REML). The modes are found by Newton's method (penalised iteratively reweighted
least squares) with step-halving.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_factor, cho_solve
from scipy.sparse.linalg import splu
from scipy.special import logsumexp, roots_hermite

from .blocked import SchurA, TermsM
from . import numdiff, zeroinfl
from .design import Design


class NotPositiveDefinite(ArithmeticError):
    """The Hessian of the inner problem is not positive definite."""


@dataclass
class Response:
    r"""The response's state at one value of eta (as MixedModels.jl's response object): mu, ell_i, its
    gradient and curvature with respect to eta_i. ``phi`` holds one dispersion value per observation, ``zeta``
    the logit of each observation's structural-zero probability (None without zero inflation).

    ``gradient`` = :math:`w_i\\,\\partial\\ell_i/\\partial\\eta_i` (:math:`= w_i\\,\\ell'(\\mu_i)\\,\\mu'(\\eta_i)`);
    ``D`` = :math:`-w_i\\,\\partial^2\\ell_i/\\partial\\eta_i^2` (:math:`= -w_i\\,[\\ell''(\\mu_i)\\mu'(\\eta_i)^2 + \\ell'(\\mu_i)\\mu''(\\eta_i)]`).
    The family computes them on the eta scale (for the binomial with a logit, probit or cloglog link from
    :math:`\\log\\mu` and :math:`\\log(1-\\mu)`, exact where mu rounds to 0 or 1); with zero inflation,
    :mod:`glmmteach.zeroinfl` mixes them with the point mass at zero (then D can be negative at a zero).
    Each is computed when first asked for.
    """

    design: Design
    eta: np.ndarray
    phi: np.ndarray
    zeta: np.ndarray | None = None

    @classmethod
    def at(cls, design: Design, eta: np.ndarray, phi: np.ndarray, zeta: np.ndarray | None = None) -> "Response":
        return cls(design, eta, phi, zeta)

    @cached_property
    def mu(self) -> np.ndarray:
        return self.design.family.link.inverse(self.eta)

    @cached_property
    def _mixture(self) -> tuple[np.ndarray, np.ndarray]:
        """With zero inflation, :math:`\\ell_i` and :math:`\\omega_i` (:func:`glmmteach.zeroinfl.mixture`), computed once."""
        d = self.design
        return zeroinfl.mixture(d.family, d.y, self.eta, self.phi, d.n, self.zeta)

    @cached_property
    def loglik(self) -> np.ndarray:
        d = self.design
        if self.zeta is not None:
            return d.weights * self._mixture[0]
        return d.weights * d.family.loglik_eta(d.y, self.eta, self.phi, d.n)

    @cached_property
    def _derivatives(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.design
        if self.zeta is not None:
            return zeroinfl.eta_derivatives(d.family, d.y, self.eta, self.phi, d.n, self.zeta, self._mixture[1])
        return d.family.eta_derivatives(d.y, self.eta, self.phi, d.n)

    @cached_property
    def gradient(self) -> np.ndarray:
        return self.design.weights * self._derivatives[0]

    @cached_property
    def D(self) -> np.ndarray:
        return -self.design.weights * self._derivatives[1]

    @cached_property
    def dispersion_partials(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The partial derivatives of ``loglik``, ``gradient`` and ``D`` in :math:`s_i = \\log\\phi_i` at fixed
        eta, from the family's formulas (:meth:`~glmmteach.families.Family.dispersion_derivatives`; with zero
        inflation, mixed as :func:`glmmteach.zeroinfl.dispersion_partials` says)."""
        d, w = self.design, self.design.weights
        if self.zeta is not None:
            l_s, g_s, d2_s = zeroinfl.dispersion_partials(d.family, d.y, self.eta, self.phi, d.n, self.zeta,
                                                          self._mixture[1])
        else:
            l_s, g_s, d2_s = d.family.dispersion_derivatives(d.y, self.eta, self.phi, d.n)
        return w * l_s, w * g_s, -w * d2_s

    def zeta_partials(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The partial derivatives in :math:`\\zeta_i` of ``loglik``, ``gradient`` and ``D``
        (:func:`glmmteach.zeroinfl.zeta_partials`, times the prior weights)."""
        d = self.design
        partials = zeroinfl.zeta_partials(d.family, d.y, self.eta, self.phi, d.n, self.zeta, self._mixture[1])
        return tuple(d.weights * part for part in partials)


@dataclass
class BlockM:
    """:math:`M = Z\\Lambda_\\theta` for one random-effect term with k columns (k = 1: ``(1 | g)``).

    b is stored group by group: :math:`b_g = (b_{gk}, \\dots, b_{gk+k-1})`. Row i of Z holds the term's
    k values :math:`x_i` in the block of its group :math:`g_i`, and :math:`\\Lambda_\\theta` repeats the
    k x k template T, so row i of M is the k-vector :math:`m_i = T^\\top x_i` (``m[i]``), in the columns
    ``columns[i]`` = :math:`g_i k, \\dots, g_i k + k - 1`. Then :math:`M^\\top D M` is block diagonal,
    and every product is a gather or a ``np.bincount`` over groups.
    """

    columns: np.ndarray
    m: np.ndarray
    n_groups: int

    def __post_init__(self):
        self.k = self.m.shape[1]
        self.q = self.n_groups * self.k
        self.group = self.columns[:, 0] // self.k

    def group_sum(self, v: np.ndarray) -> np.ndarray:
        """:math:`\\sum_{i: g_i = g} v_i` for each group g (a vector of length G)."""
        return np.bincount(self.group, v, minlength=self.n_groups)

    def __matmul__(self, b: np.ndarray) -> np.ndarray:
        """:math:`(Mb)_i = m_i^\\top b_{g_i} = \\sum_j m_{ij}\\, b_{g_i k + j}` (b a vector or a q x s matrix)."""
        m = self.m if b.ndim == 1 else self.m[:, :, None]
        Mb = m[:, 0] * b[self.columns[:, 0]]
        for j in range(1, self.k):
            Mb += m[:, j] * b[self.columns[:, j]]
        return Mb

    def t_dot(self, r: np.ndarray) -> np.ndarray:
        """:math:`(M^\\top r)_{gk + j} = \\sum_{i: g_i = g} m_{ij} r_i`."""
        return np.bincount(self.columns.ravel(), (self.m * r[:, None]).ravel(), minlength=self.q)

    def weighted_crossprod(self, D: np.ndarray) -> np.ndarray:
        """The diagonal blocks of :math:`M^\\top D M`: :math:`\\sum_{i: g_i = g} D_i m_i m_i^\\top`, (G, k, k)."""
        blocks = np.empty((self.n_groups, self.k, self.k))
        for j in range(self.k):
            for l in range(j + 1):
                blocks[:, j, l] = self.group_sum(D * self.m[:, j] * self.m[:, l])
                blocks[:, l, j] = blocks[:, j, l]
        return blocks

    def weighted_cross(self, D: np.ndarray, X: np.ndarray) -> np.ndarray:
        """:math:`M^\\top D X` (q x p): block g holds :math:`\\sum_{i: g_i = g} D_i m_i x_i^\\top`,
        one bincount for each column j of m and c of X (row gk + j, column c)."""
        if X.shape[1] == 0:
            return np.zeros((self.q, 0))
        mD = self.m * D[:, None]
        return np.column_stack([np.bincount(self.group, mD_j * x, minlength=self.n_groups)
                                for mD_j in mD.T for x in X.T]).reshape(self.q, X.shape[1])


@dataclass
class SparseM:
    """:math:`M = Z\\Lambda_\\theta` in general (crossed, nested or several terms): a sparse matrix."""

    M: sp.csc_matrix

    @property
    def q(self) -> int:
        return self.M.shape[1]

    def __matmul__(self, b: np.ndarray) -> np.ndarray:
        return self.M @ b

    def t_dot(self, r: np.ndarray) -> np.ndarray:
        return self.M.T @ r

    def weighted_crossprod(self, D: np.ndarray) -> sp.csc_matrix:
        return (self.M.T.multiply(D) @ self.M).tocsc()

    def weighted_cross(self, D: np.ndarray, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.M.T @ (D[:, None] * X))


def re_matrix(design: Design, theta: np.ndarray):
    """M for the design at theta: block by group for one term, by term for several (while the blocked
    factorisation of A stays small), else a sparse matrix."""
    if _one_term(design):
        return block_re_matrix(design, theta)
    if design.terms_layout is not None and design.terms_layout.fits():
        return terms_re_matrix(design, theta)
    return sparse_re_matrix(design, theta)


def terms_re_matrix(design: Design, theta: np.ndarray) -> TermsM:
    """:math:`m_{it} = T_t^\\top x_{it}` for each term t, with :math:`T_t` its template."""
    m = [x @ T for (_, x), T in zip(design.term_entries, design.templates(theta))]
    return TermsM(design.terms_layout, np.column_stack(m), slice(0, design.terms_layout.columns.shape[1]))


def sparse_re_matrix(design: Design, theta: np.ndarray) -> "SparseM":
    """:math:`M = Z\\Lambda_\\theta` as a sparse matrix (any terms: crossed, nested, several)."""
    return SparseM((design.Z @ design.Lambda(theta)).tocsc())


def block_re_matrix(design: Design, theta: np.ndarray) -> BlockM:
    """:math:`m_i = T_\\theta^\\top x_i` for one term, with T the term's template."""
    columns, x = _term_columns(design)
    return BlockM(columns, x @ design.templates(theta)[0], len(design.terms[0].levels))


def _one_term(design: Design) -> bool:
    """One term whose k values are all stored in each row of Z (so that Z's CSR data is an n x k array)."""
    return len(design.terms) == 1 and design.Z.nnz == design.nobs * design.terms[0].k


def _term_columns(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """For one term, the columns of Z that row i uses, :math:`g_i k + j` (n x k), and their values
    :math:`x_i` (n x k): Z's CSR indices and data, as each row holds k entries, in order."""
    columns, values = design.z_columns
    k = design.terms[0].k
    return columns.reshape(-1, k), values.reshape(-1, k)


@dataclass
class BlockA:
    """:math:`A = M^\\top D M + I` for one term: G diagonal blocks :math:`A_g` of k x k, stored as (G, k, k).

    Each block is factorised, :math:`A_g = L_g L_g^\\top`, so :math:`\\log|A| = 2\\sum_g\\sum_j \\log (L_g)_{jj}`;
    solves use the inverse blocks :math:`A_g^{-1} = L_g^{-\\top} L_g^{-1}` (k is small).
    """

    blocks: np.ndarray

    def __post_init__(self):
        if self.blocks.shape[1] == 1:     # k = 1: A is diagonal
            if not np.all(self.blocks > 0):
                raise NotPositiveDefinite("M'DM + I has a non-positive diagonal")
            self.inverse, self.logdet = 1.0 / self.blocks, float(np.sum(np.log(self.blocks)))
        else:
            try:
                L = np.linalg.cholesky(self.blocks)
            except np.linalg.LinAlgError:
                raise NotPositiveDefinite("a block of M'DM + I is not positive definite") from None
            L_inv = np.linalg.inv(L)
            self.inverse = np.swapaxes(L_inv, 1, 2) @ L_inv
            self.logdet = 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
        self._P = None

    @property
    def diagonal(self) -> np.ndarray:
        """The diagonal of A (for k = 1, the curvature of each group's integrand at its mode)."""
        return np.diagonal(self.blocks, axis1=1, axis2=2).ravel()

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """:math:`A^{-1} r`, block by block: :math:`A_g^{-1} r_g` (r a vector or a q x s matrix)."""
        G, k = self.blocks.shape[:2]
        r = rhs.reshape(G, k, -1 if rhs.ndim == 1 else rhs.shape[1])
        return (self.inverse * r if k == 1 else self.inverse @ r).reshape(rhs.shape)

    def leverage(self, M: BlockM) -> np.ndarray:
        """:math:`h_i = m_i^\\top A_{g_i}^{-1} m_i`."""
        return np.sum(self.P(M) * M.m, axis=1)

    def trace(self, M: BlockM, D: np.ndarray, Mk: BlockM) -> float:
        """:math:`\\mathrm{tr}(A^{-1} M^\\top D M_k) = \\sum_i D_i\\, m_i^\\top A_{g_i}^{-1} (m_k)_i`."""
        return float(D @ np.sum(self.P(M) * Mk.m, axis=1))

    def P(self, M: BlockM) -> np.ndarray:
        """The rows of :math:`P = M A^{-1}`: :math:`p_i = A_{g_i}^{-1} m_i` (n x k), computed once."""
        if self._P is None:
            self._P = M @ self.inverse.reshape(M.q, M.k)      # row gk + j of the matrix is (A_g^{-1})_{j.}
        return self._P


@dataclass
class DenseA:
    """:math:`A` by a dense Cholesky factorisation :math:`A = LL^\\top` (a few thousand random effects at most)."""

    A: np.ndarray

    def __post_init__(self):
        try:
            self.cholesky = cho_factor(self.A, lower=True)
        except np.linalg.LinAlgError:
            raise NotPositiveDefinite("M'DM + I is not positive definite") from None
        self.logdet = 2.0 * float(np.sum(np.log(np.diag(self.cholesky[0]))))

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        return cho_solve(self.cholesky, rhs) if rhs.size else rhs

    def leverage(self, M) -> np.ndarray:
        """:math:`h_i = [M A^{-1} M^\\top]_{ii}`, from :math:`P = M A^{-1}`."""
        return np.asarray(M.M.multiply(self._P(M)).sum(axis=1)).ravel()

    def trace(self, M, D: np.ndarray, Mk) -> float:
        """:math:`\\mathrm{tr}(A^{-1} M^\\top D M_k) = \\sum_{ij} P_{ij} D_i (M_k)_{ij}`."""
        return float(np.asarray(Mk.M.multiply(self._P(M)).sum(axis=1)).ravel() @ D)

    def _P(self, M) -> np.ndarray:
        if getattr(self, "_P_cache", None) is None:
            self._P_cache = np.asarray(M.M @ cho_solve(self.cholesky, np.eye(len(self.A))))
        return self._P_cache


@dataclass
class SparseA:
    """:math:`A` by a sparse LU with symmetric pivoting only, so that diag(U) are the pivots of an
    LDL' factorisation: all positive exactly when A is positive definite, and log|A| = sum log diag(U)."""

    A: sp.spmatrix

    def __post_init__(self):
        self.lu = splu(sp.csc_matrix(self.A), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                       options={"SymmetricMode": True})
        pivots = self.lu.U.diagonal()
        if np.any(pivots <= 0):
            raise NotPositiveDefinite("M'DM + I is not positive definite")
        self.logdet = float(np.sum(np.log(pivots)))

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        return self.lu.solve(rhs) if rhs.size else rhs

    def leverage(self, M) -> np.ndarray:
        Mt = M.M.T.toarray()
        return np.sum(Mt * self.solve(Mt), axis=0)

    def trace(self, M, D: np.ndarray, Mk) -> float:
        """:math:`\\mathrm{tr}(A^{-1} M^\\top D M_k)`, one sparse solve per column (slow for many effects)."""
        return float(np.trace(self.solve((M.M.T.multiply(D) @ Mk.M).toarray())))


#: Above this many random effects, A is factorised as a sparse matrix instead of a dense one.
DENSE_LIMIT = 3000


def factor_A(M, D: np.ndarray):
    """Factorise :math:`A = M^\\top D M + I` in the cheapest form its structure allows."""
    if isinstance(M, BlockM):
        return BlockA(M.weighted_crossprod(D) + np.eye(M.k))
    if isinstance(M, TermsM):
        try:
            return SchurA.of(M, D, BlockA)
        except np.linalg.LinAlgError:
            raise NotPositiveDefinite("the Schur complement of M'DM + I is not positive definite") from None
    A = M.weighted_crossprod(D) + sp.identity(M.q)
    return DenseA(A.toarray()) if M.q <= DENSE_LIMIT else SparseA(A)


@dataclass
class HessianFactor:
    """Factorisation of :math:`H_v = \\begin{pmatrix} C & B^\\top \\\\ B & A\\end{pmatrix}` by its Schur complement.

    :math:`A = M^\\top D M + I` (block diagonal for one term, else dense or sparse),
    :math:`B = M^\\top D X`, :math:`C = X^\\top D X`, :math:`S = C - B^\\top A^{-1} B`, and
    :math:`\\log|H_v| = \\log|A| + \\log|S|`. With no integrated beta (ML), :math:`H_v = A`.
    """

    A: BlockA | DenseA | SparseA
    B: np.ndarray
    S_chol: tuple | None
    logdet: float
    Ainv_B: np.ndarray | None = None
    _U: tuple | None = field(default=None, repr=False)

    @classmethod
    def of(cls, X: np.ndarray, M, D: np.ndarray) -> "HessianFactor":
        A = factor_A(M, D)
        if X.shape[1] == 0:                       # ML: H_v = A
            return cls(A, np.zeros((M.q, 0)), None, A.logdet)
        B = M.weighted_cross(D, X)
        Ainv_B = A.solve(B)
        S = X.T @ (D[:, None] * X) - B.T @ Ainv_B
        try:
            S_chol = cho_factor(S)
        except np.linalg.LinAlgError:
            raise NotPositiveDefinite("the fixed-effects block of the Hessian is not positive definite") from None
        return cls(A, B, S_chol, A.logdet + 2.0 * np.sum(np.log(np.diag(S_chol[0]))), Ainv_B)

    def solve(self, g_beta: np.ndarray, g_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Solve :math:`H_v (\\delta_\\beta, \\delta_b) = (g_\\beta, g_b)` by block elimination."""
        Ainv_gb = self.A.solve(g_b)
        if self.S_chol is None:
            return np.zeros(0), Ainv_gb
        delta_beta = cho_solve(self.S_chol, g_beta - self.B.T @ Ainv_gb)
        return delta_beta, Ainv_gb - self.Ainv_B @ delta_beta

    def inverse_beta_block(self) -> np.ndarray:
        """:math:`[H_v^{-1}]_{\\beta\\beta} = S^{-1}`."""
        return cho_solve(self.S_chol, np.eye(len(self.S_chol[0])))

    def leverage(self, X: np.ndarray, M) -> np.ndarray:
        """:math:`h_i = [W H_v^{-1} W^\\top]_{ii}`, :math:`W = [X\\; M]`: by the block inverse,
        :math:`W H_v^{-1} W^\\top = M A^{-1} M^\\top + U S^{-1} U^\\top`, :math:`U = X - M A^{-1} B`."""
        h = self.A.leverage(M) if M.q else np.zeros(len(X))
        if self.S_chol is None:
            return h
        U, US = self.U(X, M)
        return h + np.sum(U * US, axis=1)

    def trace(self, X: np.ndarray, M, D: np.ndarray, Mk) -> float:
        """:math:`\\mathrm{tr}(H_v^{-1} W^\\top D W_k)`, :math:`W_k = [0\\; M_k]`: the columns of
        :math:`H_v^{-1}` for b give :math:`\\mathrm{tr}(A^{-1} M^\\top D M_k)
        - \\sum_i D_i\\, (U S^{-1})_i \\cdot (M_k A^{-1} B)_i`."""
        trace = self.A.trace(M, D, Mk)
        if self.S_chol is None:
            return trace
        return trace - float(np.sum(D[:, None] * self.U(X, M)[1] * (Mk @ self.Ainv_B)))

    def U(self, X: np.ndarray, M) -> tuple[np.ndarray, np.ndarray]:
        """:math:`U = X - M A^{-1} B` and :math:`U S^{-1}` (n x p), computed once."""
        if self._U is None:
            U = X - M @ self.Ainv_B if M.q else X
            self._U = (U, cho_solve(self.S_chol, U.T).T)
        return self._U


@dataclass
class InnerProblem:
    """The integrated vector for fixed (beta, theta, phi): v = b (ML) or v = (beta, b) (REML).

    ``X_in`` holds the columns of X whose coefficients are integrated (all for REML, none for ML);
    ``eta_fixed`` the part of eta that is held fixed (X beta + offset for ML, the offset for REML).
    """

    design: Design
    X_in: np.ndarray
    M: BlockM | SparseM
    eta_fixed: np.ndarray
    phi: np.ndarray
    reml: bool
    iterations: list = field(default_factory=list)
    theta: np.ndarray | None = None
    _factor: tuple | None = field(default=None, repr=False)
    zeta: np.ndarray | None = None

    @classmethod
    def build(cls, design: Design, beta, theta, phi, reml: bool, zeta=None) -> "InnerProblem":
        """The problem at (beta, theta, phi, zeta); phi is one value per observation (a number is repeated),
        zeta the logit of the structural-zero probabilities (None without zero inflation)."""
        M = re_matrix(design, theta) if design.q else SparseM(design.Z)
        theta, phi = np.asarray(theta, float), per_observation(design, phi)
        if reml:
            return cls(design, design.X, M, design.offset.copy(), phi, True, theta=theta, zeta=zeta)
        return cls(design, design.X[:, :0], M, design.X @ beta + design.offset, phi, False, theta=theta,
                   zeta=zeta)

    def response(self, eta: np.ndarray) -> Response:
        """The response at eta, with this problem's phi and zeta."""
        return Response.at(self.design, eta, self.phi, self.zeta)

    @property
    def p_in(self) -> int:
        return self.X_in.shape[1]

    def eta(self, v: np.ndarray) -> np.ndarray:
        return self.eta_fixed + self.X_in @ v[:self.p_in] + self.M @ v[self.p_in:]

    def objective(self, v: np.ndarray, response: Response) -> float:
        """f(v) = sum_i ell_i(eta_i) - b'b / 2."""
        b = v[self.p_in:]
        return float(np.sum(response.loglik) - 0.5 * b @ b)

    def hessian(self, D: np.ndarray) -> HessianFactor:
        """The factorisation of :math:`H_v` at the curvatures D, kept while D stays the same (a Gaussian
        response with the identity link has the same D at every v)."""
        if self._factor is None or not np.array_equal(self._factor[0], D):
            self._factor = (D, HessianFactor.of(self.X_in, self.M, D))
        return self._factor[1]

    def newton_step(self, v: np.ndarray, response: Response) -> np.ndarray:
        """Newton direction H^{-1} grad f. Where -d2ell/deta2 < 0 (possible far from the mode with a
        non-canonical link, and at the zeros of a zero-inflated model, :mod:`glmmteach.zeroinfl`) H need not be
        positive definite, and its direction need not climb: a small positive curvature is used there instead,
        which makes H positive definite, so the step climbs and step-halving finds an increase of f. (With zero
        inflation the true H is tried first: where it is positive definite, as it is near the mode, that is the
        exact Newton step.)"""
        factor = None
        if self.zeta is not None and np.any(response.D <= 0):
            try:
                factor = self.hessian(response.D)
            except (NotPositiveDefinite, np.linalg.LinAlgError):
                factor = None
        if factor is None:
            factor = self.hessian(np.maximum(response.D, 1e-10))
        g_beta = self.X_in.T @ response.gradient
        g_b = self.M.t_dot(response.gradient) - v[self.p_in:]
        d_beta, d_b = factor.solve(g_beta, g_b)
        return np.concatenate([d_beta, d_b])


def _valid_start(problem: InnerProblem, v0: np.ndarray):
    """Start at v0, or at b = 0 when v0 puts a mean outside the family's range (a warm start from other
    parameters can, e.g. a negative mean under the inverse link); raise if that is invalid too."""
    for v in (v0.copy(), np.concatenate([v0[:problem.p_in], np.zeros(problem.design.q)])):
        with np.errstate(all="ignore"):
            response = problem.response(problem.eta(v))
            f = problem.objective(v, response)
        if np.isfinite(f):
            return v, response, f
    raise NotPositiveDefinite("the linear predictor gives a mean outside the family's range "
                              f"(link '{problem.design.family.link.name}')")


def conditional_modes(problem: InnerProblem, v0: np.ndarray, tol: float = 1e-10, max_iter: int = 100):
    """Maximise f(v) by Newton's method with step-halving (penalised IRLS).

    Each iteration: :math:`v \\leftarrow v + t\\,H^{-1}\\nabla f(v)`, with t halved until f increases.
    Stops when the increase of f is below ``tol`` (relative) and the step is tiny, or after one full
    step when f is quadratic (a Gaussian response with the identity link: that step is exact). The iterations
    (number, f, step size t, largest change) are recorded in ``problem.iterations``.
    Returns v-hat and the response at v-hat.
    """
    v, response, f = _valid_start(problem, v0)
    for iteration in range(1, max_iter + 1):
        step = problem.newton_step(v, response)
        t = 1.0
        while True:
            candidate = v + t * step
            new = problem.response(problem.eta(candidate))
            f_new = problem.objective(candidate, new)
            if np.isfinite(f_new) and f_new >= f - 1e-12 * abs(f):
                break
            t /= 2
            if t < 1e-10:
                return v, response
        change = f_new - f
        v, response, f = candidate, new, f_new
        problem.iterations.append((iteration, f, t, float(np.max(np.abs(t * step), initial=0.0))))
        if abs(change) < tol * (1 + abs(f)) and np.max(np.abs(t * step), initial=0.0) < 1e-6:
            break
        if t == 1.0 and problem.design.family.quadratic:
            break
    return v, response


@dataclass
class LaplaceResult:
    """The Laplace log-likelihood and what it was computed from."""

    loglik: float
    v: np.ndarray
    response: Response
    factor: HessianFactor
    problem: InnerProblem

    @property
    def b(self) -> np.ndarray:
        return self.v[self.problem.p_in:]

    @property
    def beta_in(self) -> np.ndarray:
        return self.v[:self.problem.p_in]

    @cached_property
    def leverage(self) -> np.ndarray:
        """:math:`h_i = [W H_v^{-1} W^\\top]_{ii}`, :math:`W = [X_{in}\\; M]`."""
        return self.factor.leverage(self.problem.X_in, self.problem.M)

    @cached_property
    def logdet_mode_change(self) -> np.ndarray:
        """:math:`W H_v^{-1} W^\\top c`, shared by the derivatives in every per-observation parameter
        (:func:`score_dispersion`); 0 where c is (a quadratic log-likelihood), without the solve."""
        c = self.dlogdet_deta
        return _mode_change(self.problem, self.factor, c) if np.any(c) else np.zeros_like(c)

    @cached_property
    def dlogdet_deta(self) -> np.ndarray:
        """:math:`c = D' \\odot h = \\partial\\log|H_v|/\\partial\\eta` at fixed W; 0 when
        :math:`\\log p(y \\mid \\eta)` is quadratic in eta (D does not depend on eta)."""
        design = self.problem.design
        if design.family.quadratic:
            return np.zeros(design.nobs)
        return _dD_deta(self.problem, self.response.eta) * self.leverage


def per_observation(design: Design, phi) -> np.ndarray:
    """phi as one value per observation (a number is repeated N times)."""
    return np.broadcast_to(np.asarray(phi, float), (design.nobs,))


def laplace_loglik(design: Design, beta, theta, phi, reml: bool, v0=None, zeta=None) -> LaplaceResult:
    """The Laplace approximation to the (REML) log-likelihood at (beta, theta, phi) (phi a number or one
    value per observation), and zeta (the logit of the structural-zero probabilities; None: no zero inflation).

    .. math:: \\log L \\approx \\sum_i \\ell_i(\\hat\\eta_i) - \\tfrac12\\hat b^\\top\\hat b - \\tfrac12\\log|H_v|
              \\;(+\\tfrac p2 \\log 2\\pi \\text{ for REML}).
    """
    problem = InnerProblem.build(design, beta, theta, phi, reml, zeta)
    if v0 is None:
        v0 = np.zeros(problem.p_in + design.q)
    if problem.p_in + design.q == 0:
        response = problem.response(problem.eta(v0))
        return LaplaceResult(float(np.sum(response.loglik)), v0, response, None, problem)
    v, response = conditional_modes(problem, v0)
    factor = problem.hessian(response.D)
    loglik = problem.objective(v, response) - 0.5 * factor.logdet + 0.5 * problem.p_in * np.log(2 * np.pi)
    return LaplaceResult(loglik, v, response, factor, problem)


def agq_loglik(design: Design, beta, theta, phi, nagq: int, v0=None) -> LaplaceResult:
    """Adaptive Gauss-Hermite quadrature for one scalar random-effect term (glmer's ``nAGQ``).

    Each group's integral is one-dimensional. With :math:`\\hat b_j` its mode and :math:`h_j` the
    curvature there, substitute :math:`b = \\hat b_j + \\sqrt{2/h_j}\\,x` and use the Gauss-Hermite
    nodes :math:`x_k` and weights :math:`w_k` for :math:`\\int g(x)e^{-x^2}dx`:

    .. math:: \\log L_j \\approx \\tfrac12\\log\\frac{2}{h_j} + \\log\\sum_k w_k
              \\exp\\big(f_j(\\hat b_j + \\sqrt{2/h_j}\\,x_k) + x_k^2\\big),
              \\quad f_j(b) = \\sum_{i \\in j}\\ell_i - \\tfrac12 b^2 - \\tfrac12\\log 2\\pi .

    With one node this is the Laplace approximation.
    """
    laplace = laplace_loglik(design, beta, theta, phi, reml=False, v0=v0)
    problem, b_hat, h = laplace.problem, laplace.b, laplace.factor.A.diagonal
    x, w = roots_hermite(nagq)
    group, m = problem.M.group, problem.M.m[:, 0]        # row i: entry m_i of M = Z Lambda in column group_i
    shift = np.sqrt(2.0 / h)[:, None] * x[None, :]      # (groups, nodes)
    b_nodes = b_hat[:, None] + shift
    eta = laplace.response.eta[:, None] + m[:, None] * shift[group]
    phi = problem.phi[:, None]
    ell = design.weights[:, None] * design.family.loglik_eta(design.y[:, None], eta, phi, design.n[:, None])
    f = np.stack([np.bincount(group, ell[:, k], minlength=len(b_hat)) for k in range(nagq)], axis=1)
    f += -0.5 * b_nodes ** 2 - 0.5 * np.log(2 * np.pi)
    log_groups = 0.5 * np.log(2.0 / h) + logsumexp(f + x[None, :] ** 2, b=w[None, :], axis=1)
    laplace.loglik = float(np.sum(log_groups))
    return laplace


def score(result: LaplaceResult) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of the Laplace ML or REML log-likelihood with respect to beta (ML) and theta.

    The integrated vector is :math:`v = (\\beta_{in}, b)` (:math:`\\beta_{in}` empty for ML), with
    :math:`\\eta = W v + \\dots`, :math:`W = [X_{in}\\; M]` and :math:`H_v = W^\\top D W + \\mathrm{diag}(0, I)`.
    The modes move with the parameters; with :math:`g_i = \\partial\\ell_i/\\partial\\eta_i`,
    :math:`D'_i = \\partial D_i/\\partial\\eta_i` (central differences of D, a function of eta_i alone),
    :math:`h_i = [W H_v^{-1} W^\\top]_{ii}` and :math:`c = D' \\odot h`
    (so that :math:`\\partial\\log|H_v|/\\partial\\eta = c` at fixed W):

    .. math:: \\frac{\\partial \\log L}{\\partial\\beta} = X^\\top g - \\tfrac12 X^\\top (I - D M A^{-1} M^\\top)\\,c
              \\quad\\text{(ML, where } W = M,\\ H_v = A),

    .. math:: \\frac{\\partial \\log L}{\\partial\\theta_k} = g^\\top M_k\\hat b
              - \\mathrm{tr}(H_v^{-1}W^\\top D W_k) - \\tfrac12 c^\\top \\frac{d\\hat\\eta}{d\\theta_k},
              \\quad \\frac{d\\hat\\eta}{d\\theta_k} = M_k\\hat b + W H_v^{-1}(W_k^\\top g - W^\\top D M_k \\hat b),

    where :math:`M_k = Z\\,\\partial\\Lambda_\\theta/\\partial\\theta_k` and :math:`W_k = [0\\; M_k]`.
    """
    design, problem, response, factor = result.problem.design, result.problem, result.response, result.factor
    g, D = response.gradient, response.D
    X_out = design.X[:, :0] if problem.reml else design.X
    if factor is None:                       # nothing integrated: a GLM
        return X_out.T @ g, np.zeros(0)
    M, X_in, c = problem.M, problem.X_in, result.dlogdet_deta
    moves = bool(np.any(c))              # c = 0 (a quadratic log-likelihood): the modes' moves drop out
    d_beta = X_out.T @ g - (0.5 * X_out.T @ (c - D * _mode_change(problem, factor, c)) if moves else 0.0)
    d_theta = np.zeros(design.n_theta)
    for k, Mk in enumerate(_theta_derivatives(design, M, problem.theta)):
        Mk_b = Mk @ result.b
        d_theta[k] = g @ Mk_b - factor.trace(X_in, M, D, Mk)
        if moves:
            d_theta[k] -= 0.5 * c @ (Mk_b + _mode_change(problem, factor, -D * Mk_b, Mk.t_dot(g)))
    return d_beta, d_theta


def _mode_change(problem: InnerProblem, factor: HessianFactor, r: np.ndarray, extra_b=0.0) -> np.ndarray:
    """:math:`W H_v^{-1} (W^\\top r + (0, e))`: how :math:`\\hat\\eta` moves when the mode equation
    :math:`W^\\top g = (0, b)` is pushed by :math:`W^\\top r + (0, e)` (e = ``extra_b``)."""
    d_beta, d_b = factor.solve(problem.X_in.T @ r, problem.M.t_dot(r) + extra_b)
    return problem.X_in @ d_beta + problem.M @ d_b


def score_dispersion(result: LaplaceResult, partials=None) -> np.ndarray:
    """Derivative of the Laplace ML or REML log-likelihood with respect to a per-observation parameter
    :math:`s_i` that enters :math:`\\ell_i(\\eta_i, s_i)` alone (here :math:`s_i = \\log\\phi_i`), one entry per
    observation (the gradient in the coefficients of a model :math:`s = X_s\\beta_s` is :math:`X_s^\\top` times this).

    :math:`\\sum_i\\ell_i - \\tfrac12\\hat b^\\top\\hat b` is at its maximum in v, so only its direct
    dependence on s counts; :math:`\\log|H_v|` moves with :math:`D(\\eta, s)` directly and through the modes,
    :math:`d\\hat\\eta/ds_i = W H_v^{-1} W^\\top e_i\\,\\partial g_i/\\partial s_i` (from the mode equation
    :math:`W^\\top g = (0, \\hat b)`). With h and c as in :func:`score`, and :math:`W H_v^{-1} W^\\top` symmetric,

    .. math:: \\frac{\\partial \\log L}{\\partial s_i} = \\frac{\\partial\\ell_i}{\\partial s_i}
              - \\tfrac12\\, h_i \\frac{\\partial D_i}{\\partial s_i}
              - \\tfrac12\\, \\frac{\\partial g_i}{\\partial s_i}\\,(W H_v^{-1} W^\\top c)_i .

    ``partials`` are :math:`(\\partial\\ell_i/\\partial s_i, \\partial g_i/\\partial s_i, \\partial D_i/\\partial s_i)`
    (weighted, as :class:`Response` holds g and D); by default the dispersion's, from the family's formulas
    (:attr:`Response.dispersion_partials`). Another per-observation parameter passes its own.
    """
    dloglik, dg, dD = result.response.dispersion_partials if partials is None else partials
    if result.factor is None:
        return dloglik
    return dloglik - 0.5 * result.leverage * dD - 0.5 * dg * result.logdet_mode_change


def score_zero_inflation(result: LaplaceResult) -> np.ndarray:
    """Derivative of the Laplace ML or REML log-likelihood with respect to :math:`\\zeta_i`, the logit of
    observation i's structural-zero probability: the general formula of :func:`score_dispersion` with the
    partial derivatives of :func:`glmmteach.zeroinfl.zeta_partials`. The gradient in :math:`\\beta_{zi}` is
    :math:`X_{zi}^\\top` times this."""
    return score_dispersion(result, result.response.zeta_partials())


def score_log_phi(result: LaplaceResult) -> float:
    """The derivative in :math:`\\log\\phi` when every observation has the same phi: the sum of
    :func:`score_dispersion`."""
    return float(np.sum(score_dispersion(result)))


def score_beta(result: LaplaceResult) -> np.ndarray:
    """The beta part of :func:`score`."""
    return score(result)[0]


def _theta_derivatives(design: Design, M, theta: np.ndarray):
    """:math:`M_k = Z\\,\\partial\\Lambda/\\partial\\theta_k`, in M's own form. For one term the rows are
    :math:`\\partial (x_i^\\top T)/\\partial\\theta_k = x_i^\\top\\,\\partial T/\\partial\\theta_k`."""
    if isinstance(M, BlockM):
        x = _term_columns(design)[1]
        return [BlockM(M.columns, x @ dT, M.n_groups) for dT in design.terms[0].structure.dtemplate(theta)]
    if isinstance(M, TermsM):
        return [TermsM(M.layout, x @ dT, M.layout.slots(t))
                for t, (term, (_, x), part) in enumerate(zip(design.terms, design.term_entries, design.theta_slices()))
                for dT in term.structure.dtemplate(theta[part])]
    return [SparseM(Zk) for Zk in design.Z_dLambda(theta)]


def _dD_deta(problem: InnerProblem, eta: np.ndarray) -> np.ndarray:
    """:math:`D'_i = \\partial D_i/\\partial\\eta_i` by central differences (D_i depends on eta_i alone)."""
    return numdiff.elementwise(lambda e: problem.response(e).D, eta)
