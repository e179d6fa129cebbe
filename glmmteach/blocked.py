"""Several random-effect terms at scale: M stored term by term, and A = M'DM + I factorised by blocks.

Row i of Z holds, for each term t, its :math:`k_t` values :math:`x_{it}` in the columns of its level
:math:`g_{it}`; so row i of :math:`M = Z\\Lambda_\\theta` holds :math:`m_{it} = T_t^\\top x_{it}` in the same
columns (:class:`TermsM`). Put first the term with the most columns, (1), and the others together, (2):

.. math:: A = M^\\top D M + I = \\begin{pmatrix} A_{11} & A_{21}^\\top \\\\ A_{21} & A_{22} \\end{pmatrix}.

Every row lies in one level of term 1, so :math:`A_{11}` is block diagonal (one :math:`k_1 \\times k_1`
block per level; diagonal for a scalar term); :math:`A_{21}` is sparse; :math:`A_{22}` is small. With
:math:`R = A_{21}A_{11}^{-1}` and the Schur complement :math:`S = A_{22} - R A_{21}^\\top` (dense),

.. math:: \\log|A| = \\log|A_{11}| + \\log|S|, \\qquad
          A^{-1} = \\begin{pmatrix} A_{11}^{-1} + R^\\top S^{-1} R & -R^\\top S^{-1} \\\\
                                    -S^{-1} R & S^{-1} \\end{pmatrix}.

This is the blocked Cholesky factorisation of MixedModels.jl. The gradient needs the leverages
:math:`m_i^\\top A^{-1} m_i` and the traces :math:`\\mathrm{tr}(A^{-1}M^\\top D M_k)`, that is :math:`A^{-1}`
only at the pairs of columns that share a row of Z (a *selected inverse*): neither :math:`A^{-1}` whole
nor any n x q matrix is formed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_factor, cho_solve

#: The blocked factorisation is used while its dense parts stay small: S is q2 x q2, and the selected
#: inverse uses :math:`S^{-1}R`, q2 x q1.
SCHUR_LIMIT = 5000
CROSS_LIMIT = 60_000_000


@dataclass
class Layout:
    """Where the terms' entries sit in Z, and so in A; fixed by the design, built once.

    Row i uses the columns ``columns[i]`` (n x r, r = sum of the terms' k): its *slots*, term by term
    (term t in the slots ``slots(t)``). Term ``first`` (the one with the most columns) is block 1, its
    columns ``block1``; the others, block 2, are ``rest``, and ``position[c]`` is column c's place there.
    ``cross`` places each row's contributions to the non-zeros of :math:`A_{21}` and ``rest_index`` its
    contributions to the dense :math:`A_{22}`.
    """

    columns: np.ndarray
    widths: list[int]
    sizes: list[int]
    q: int
    first: int
    block1: slice
    rest: np.ndarray
    position: np.ndarray
    cross: tuple
    rest_index: np.ndarray

    @classmethod
    def of(cls, entries: list[np.ndarray], starts: list[int], sizes: list[int], q: int) -> "Layout":
        """From each term's columns (n x k_t), first column and number of columns."""
        first = int(np.argmax(sizes))
        block1 = slice(starts[first], starts[first] + sizes[first])
        rest = np.concatenate([np.arange(starts[t], starts[t] + sizes[t]) for t in range(len(sizes))
                               if t != first])
        position = np.full(q, -1)
        position[rest] = np.arange(len(rest))
        widths = [c.shape[1] for c in entries]
        layout = cls(np.column_stack(entries), widths, sizes, q, first, block1, rest, position, (), np.zeros(0))
        layout.cross, layout.rest_index = layout._cross_pattern(), layout._rest_pattern()
        return layout

    def slots(self, t: int) -> slice:
        start = sum(self.widths[:t])
        return slice(start, start + self.widths[t])

    def fits(self) -> bool:
        """Whether the dense parts (S, q2 x q2; S^{-1}R, q2 x q1) stay small."""
        q1, q2 = self.block1.stop - self.block1.start, len(self.rest)
        return q2 <= SCHUR_LIMIT and q1 * q2 <= CROSS_LIMIT

    def pairs(self, pattern: str) -> list[tuple[int, int]]:
        """Slot pairs (p, r) of each row that fall in :math:`A_{21}` (p in block 2, r in term 1) or in
        :math:`A_{22}` (both in block 2), in the order the contributions are stored."""
        in1 = np.zeros(self.columns.shape[1], bool)
        in1[self.slots(self.first)] = True
        if pattern == "cross":
            return [(p, r) for p in np.flatnonzero(~in1) for r in np.flatnonzero(in1)]
        return [(p, r) for p in np.flatnonzero(~in1) for r in np.flatnonzero(~in1)]

    def _cross_pattern(self) -> tuple:
        """The non-zeros of :math:`A_{21}` (CSR indices and indptr) and, for each contribution, its
        non-zero (an index into the CSR data)."""
        q1, q2 = self.block1.stop - self.block1.start, len(self.rest)
        linear = np.concatenate([self.position[self.columns[:, p]] * q1 + self.columns[:, r] - self.block1.start
                                 for p, r in self.pairs("cross")])
        nonzero, where = np.unique(linear, return_inverse=True)
        indptr = np.searchsorted(nonzero // q1, np.arange(q2 + 1))
        return nonzero % q1, indptr, where, (q2, q1)

    def _rest_pattern(self) -> np.ndarray:
        q2 = len(self.rest)
        return np.concatenate([self.position[self.columns[:, p]] * q2 + self.position[self.columns[:, r]]
                               for p, r in self.pairs("rest")])


@dataclass
class TermsM:
    """:math:`M = Z\\Lambda_\\theta` for several terms, by term: row i holds the entries ``m[i]`` in the
    columns of its slots ``slots`` (all of them for M; one term's for a derivative
    :math:`M_k = Z\\,\\partial\\Lambda/\\partial\\theta_k`), where Z holds :math:`x_{it}` and M holds
    :math:`m_{it} = T_t^\\top x_{it}`."""

    layout: Layout
    m: np.ndarray
    slots: slice

    @property
    def q(self) -> int:
        return self.layout.q

    @property
    def columns(self) -> np.ndarray:
        return self.layout.columns[:, self.slots]

    def __matmul__(self, b: np.ndarray) -> np.ndarray:
        """:math:`(Mb)_i = \\sum_p m_{ip}\\, b_{c_{ip}}` (b a vector or a q x s matrix)."""
        columns = self.columns
        Mb = 0.0
        for p in range(self.m.shape[1]):
            Mb = Mb + (self.m[:, p] if b.ndim == 1 else self.m[:, p, None]) * b[columns[:, p]]
        return Mb

    def t_dot(self, r: np.ndarray) -> np.ndarray:
        """:math:`M^\\top r`: column c collects :math:`m_{ip} r_i` over the rows whose slot p uses it."""
        return np.bincount(self.columns.ravel(), (self.m * r[:, None]).ravel(), minlength=self.q)

    def weighted_cross(self, D: np.ndarray, X: np.ndarray) -> np.ndarray:
        """:math:`M^\\top D X` (q x p), one column of X at a time."""
        return np.column_stack([self.t_dot(D * x) for x in X.T]) if X.shape[1] else np.zeros((self.q, 0))


@dataclass
class SchurA:
    """:math:`A = M^\\top D M + I` for several terms, by its blocks (see the module's text).

    ``A11`` factorises term 1's block-diagonal :math:`A_{11}`; it is built by the caller
    (``laplace.BlockA``, which gives ``inverse``, the (G, k, k) blocks of :math:`A_{11}^{-1}`, ``logdet``
    and ``solve``).
    """

    layout: Layout
    A11: object
    A21: sp.csr_matrix
    R: sp.csr_matrix
    S_chol: tuple
    logdet: float
    _pairs_cache: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def of(cls, M: TermsM, D: np.ndarray, block_factor) -> "SchurA":
        """Factorise A from M and the curvatures D; ``block_factor`` builds the factor of :math:`A_{11}` from
        its (G, k, k) blocks. Raises ``np.linalg.LinAlgError`` when S is not positive definite."""
        layout = M.layout
        one = layout.slots(layout.first)
        m1, c1 = M.m[:, one], layout.columns[:, one] - layout.block1.start
        k1 = m1.shape[1]
        A11 = block_factor(_diagonal_blocks(c1[:, 0] // k1, m1, D, layout.sizes[layout.first] // k1) + np.eye(k1))
        indices, indptr, where, shape = layout.cross
        values = np.concatenate([D * M.m[:, p] * M.m[:, r] for p, r in layout.pairs("cross")])
        A21 = sp.csr_matrix((np.bincount(where, values, minlength=len(indices)), indices, indptr), shape=shape)
        R = (A21 @ _block_diagonal(A11.inverse)).tocsr()
        q2 = len(layout.rest)
        values = np.concatenate([D * M.m[:, p] * M.m[:, r] for p, r in layout.pairs("rest")])
        A22 = np.bincount(layout.rest_index, values, minlength=q2 * q2).reshape(q2, q2) + np.eye(q2)
        S_chol = cho_factor(A22 - (R @ A21.T).toarray(), lower=True)
        logdet = A11.logdet + 2.0 * float(np.sum(np.log(np.diag(S_chol[0]))))
        return cls(layout, A11, A21, R, S_chol, logdet)

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """:math:`A^{-1}r` by block elimination: :math:`y_1 = A_{11}^{-1}r_1`,
        :math:`x_2 = S^{-1}(r_2 - A_{21}y_1)`, :math:`x_1 = y_1 - R^\\top x_2` (r a vector or a q x s matrix)."""
        if not rhs.size:
            return rhs
        block1, rest = self.layout.block1, self.layout.rest
        y1 = self.A11.solve(rhs[block1])
        x2 = cho_solve(self.S_chol, rhs[rest] - self.A21 @ y1)
        x = np.empty(rhs.shape)
        x[block1], x[rest] = y1 - self.R.T @ x2, x2
        return x

    def leverage(self, M: TermsM) -> np.ndarray:
        """:math:`h_i = m_i^\\top A^{-1} m_i = \\sum_{p,r} m_{ip} E_{ipr} m_{ir}`, over the pairs of slots."""
        return self._quadratic_form(M.m, M)

    def trace(self, M: TermsM, D: np.ndarray, Mk: TermsM) -> float:
        """:math:`\\mathrm{tr}(A^{-1}M^\\top D M_k) = \\sum_i D_i\\, m_i^\\top A^{-1} (m_k)_i`."""
        return float(D @ self._quadratic_form(M.m, Mk))

    def _quadratic_form(self, m: np.ndarray, other: TermsM) -> np.ndarray:
        """:math:`\\sum_p \\sum_{r \\in \\text{other's slots}} m_{ip} E_{ipr} (m_{other})_{ir}` for each row i."""
        E = self._pairs()
        out = np.zeros(len(m))
        for r, column in zip(range(other.slots.start, other.slots.stop), other.m.T):
            for p in range(m.shape[1]):
                out += m[:, p] * E[:, p, r] * column
        return out

    def _pairs(self) -> np.ndarray:
        """:math:`E_{ipr} = [A^{-1}]_{c_{ip} c_{ir}}` for the columns :math:`c_{ip}` that row i uses (n x r x r),
        from the blocks of :math:`A^{-1}`: :math:`S^{-1}`, :math:`-S^{-1}R` and the diagonal blocks of
        :math:`A_{11}^{-1} + R^\\top S^{-1} R` (a selected inverse)."""
        if self._pairs_cache is None:
            layout = self.layout
            S_inv = cho_solve(self.S_chol, np.eye(len(layout.rest)))
            SR = np.asarray(self.R.T @ S_inv).T                      # S^{-1} R, q2 x q1
            k1 = self.A11.inverse.shape[1]
            inverse11 = self.A11.inverse + _diagonal_of_product(self.R, SR, k1)
            columns, position = layout.columns, layout.position
            local = columns - layout.block1.start
            in1 = np.zeros(columns.shape[1], bool)
            in1[layout.slots(layout.first)] = True
            E = np.empty(columns.shape + columns.shape[1:])
            for p in range(columns.shape[1]):
                for r in range(p + 1):
                    if in1[p] and in1[r]:
                        E_pr = inverse11[local[:, p] // k1, local[:, p] % k1, local[:, r] % k1]
                    elif in1[p]:
                        E_pr = -SR[position[columns[:, r]], local[:, p]]
                    elif in1[r]:
                        E_pr = -SR[position[columns[:, p]], local[:, r]]
                    else:
                        E_pr = S_inv[position[columns[:, p]], position[columns[:, r]]]
                    E[:, p, r] = E[:, r, p] = E_pr
            self._pairs_cache = E
        return self._pairs_cache


def _diagonal_blocks(group: np.ndarray, m: np.ndarray, D: np.ndarray, n_groups: int) -> np.ndarray:
    """:math:`\\sum_{i: g_i = g} D_i m_i m_i^\\top` for each group g, (G, k, k)."""
    k = m.shape[1]
    blocks = np.empty((n_groups, k, k))
    for j in range(k):
        for l in range(j + 1):
            blocks[:, j, l] = blocks[:, l, j] = np.bincount(group, D * m[:, j] * m[:, l], minlength=n_groups)
    return blocks


def _block_diagonal(blocks: np.ndarray) -> sp.bsr_matrix:
    """The (G, k, k) blocks as a sparse block-diagonal matrix."""
    G, k = blocks.shape[:2]
    return sp.bsr_matrix((blocks, np.arange(G), np.arange(G + 1)), shape=(G * k, G * k))


def _diagonal_of_product(R: sp.csr_matrix, SR: np.ndarray, k: int) -> np.ndarray:
    """The (G, k, k) diagonal blocks of :math:`R^\\top (S^{-1}R)`: entry (c, c') sums
    :math:`R_{ac}(S^{-1}R)_{ac'}` over the rows a where R is non-zero."""
    R = R.tocoo()
    out = np.zeros(R.shape[1] * k)
    for l in range(k):
        partner = (R.col // k) * k + l
        out += np.bincount(R.col * k + l, R.data * SR[R.row, partner], minlength=len(out))
    return out.reshape(-1, k, k)
