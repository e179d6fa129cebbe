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
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_factor, cho_solve
from scipy.linalg.lapack import dpotri

#: The blocked factorisation is used while its dense part S (q2 x q2) stays small, and while the pairs of
#: non-zeros of :math:`A_{21}` that share a column (the work of the selected inverse) are not too many.
SCHUR_LIMIT = 5000
PAIR_LIMIT = 30_000_000


@dataclass
class Layout:
    """Where the terms' entries sit in Z, and so in A; fixed by the design, built once.

    Row i uses the columns ``columns[i]`` (n x r, r = sum of the terms' k): its *slots*, term by term
    (term t in the slots ``slots(t)``). Term ``first`` (the one with the most columns) is block 1, its
    columns ``block1``; the others, block 2, are ``rest``, and ``position[c]`` is column c's place there.

    :math:`A_{21}` (q2 x q1) has the non-zeros ``indices``/``indptr`` (CSR), ``nonzero_row`` their rows;
    ``where[j]`` is the non-zero that slot pair ``cross_pairs[j]`` of each row adds to (pairs x n), and
    ``same_column`` the pairs of non-zeros in one column (with the place of their rows' entry in the lower
    triangle of a q2 x q2 matrix). ``rest_index`` places each row's contributions
    to the dense :math:`A_{22}`.
    """

    columns: np.ndarray
    widths: list[int]
    sizes: list[int]
    first: int
    block1: slice
    rest: np.ndarray
    position: np.ndarray
    cross_pairs: list = field(default_factory=list)
    rest_pairs: list = field(default_factory=list)
    indices: np.ndarray = None
    indptr: np.ndarray = None
    nonzero_row: np.ndarray = None
    where: np.ndarray = None
    same_column: tuple = ()
    rest_index: np.ndarray = None

    @classmethod
    def of(cls, entries: list[np.ndarray], starts: list[int], sizes: list[int], q: int) -> "Layout":
        """From each term's columns (n x k_t), first column and number of columns."""
        first = int(np.argmax(sizes))
        block1 = slice(starts[first], starts[first] + sizes[first])
        rest = np.concatenate([np.arange(starts[t], starts[t] + sizes[t]) for t in range(len(sizes))
                               if t != first])
        position = np.full(q, -1)
        position[rest] = np.arange(len(rest))
        layout = cls(np.column_stack(entries), [c.shape[1] for c in entries], sizes, first, block1, rest, position)
        in1 = np.zeros(layout.columns.shape[1], bool)
        in1[layout.slots(first)] = True
        layout.cross_pairs = [(p, r) for p in np.flatnonzero(~in1) for r in np.flatnonzero(in1)]
        layout.rest_pairs = [(p, r) for p in np.flatnonzero(~in1) for r in np.flatnonzero(~in1)]
        layout._cross_pattern()
        q2 = len(rest)
        layout.rest_index = np.concatenate([position[layout.columns[:, p]] * q2 + position[layout.columns[:, r]]
                                            for p, r in layout.rest_pairs])
        return layout

    @property
    def q(self) -> int:
        return len(self.position)

    @cached_property
    def slot_columns(self) -> np.ndarray:
        """``columns`` slot by slot (r x n, each row contiguous), for gathers and bincounts."""
        return np.ascontiguousarray(self.columns.T)

    @cached_property
    def slot_ranges(self) -> list[tuple[int, int]]:
        """For each slot, the first column and the number of columns of its term."""
        starts = np.concatenate([[0], np.cumsum(self.sizes)])
        return [(int(starts[t]), int(self.sizes[t])) for t in range(len(self.widths)) for _ in range(self.widths[t])]

    @property
    def k1(self) -> int:
        return self.widths[self.first]

    def slots(self, t: int) -> slice:
        start = sum(self.widths[:t])
        return slice(start, start + self.widths[t])

    def fits(self) -> bool:
        """Whether the dense S and the selected inverse's work stay small."""
        return len(self.rest) <= SCHUR_LIMIT and len(self.same_column[0]) <= PAIR_LIMIT

    def _cross_pattern(self) -> None:
        """The non-zeros of :math:`A_{21}`, where each row's contributions go, and the pairs of non-zeros
        that share a column (for :math:`S^{-1}R` at the non-zeros of R, which has the pattern of
        :math:`A_{21}`: a row of term 1's group fills all its k1 columns)."""
        q1, q2 = self.block1.stop - self.block1.start, len(self.rest)
        linear = np.stack([self.position[self.columns[:, p]] * q1 + self.columns[:, r] - self.block1.start
                           for p, r in self.cross_pairs])
        nonzero, where = np.unique(linear, return_inverse=True)
        self.indices, self.nonzero_row = nonzero % q1, nonzero // q1
        self.indptr = np.searchsorted(self.nonzero_row, np.arange(q2 + 1))
        self.where = where.reshape(linear.shape)
        by_column = np.argsort(self.indices, kind="stable")      # the non-zeros, column after column
        counts = np.bincount(self.indices, minlength=q1)
        size = counts[self.indices[by_column]]                   # how many share each one's column
        column_start = np.repeat(np.cumsum(counts) - counts, counts)
        owner = np.repeat(np.arange(len(nonzero)), size)
        within = np.arange(len(owner)) - np.repeat(np.cumsum(size) - size, size)
        partner = by_column[np.repeat(column_start, size) + within]
        owner = by_column[owner]
        lower = np.maximum(self.nonzero_row[owner], self.nonzero_row[partner]) * q2 + np.minimum(
            self.nonzero_row[owner], self.nonzero_row[partner])
        self.same_column = (owner, partner, lower)


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

    @cached_property
    def by_slot(self) -> np.ndarray:
        """``m`` slot by slot (width x n, each row contiguous)."""
        return np.ascontiguousarray(self.m.T)

    def __matmul__(self, b: np.ndarray) -> np.ndarray:
        """:math:`(Mb)_i = \\sum_p m_{ip}\\, b_{c_{ip}}` (b a vector or a q x s matrix)."""
        columns = self.layout.slot_columns[self.slots]
        Mb = 0.0
        for m_p, c_p in zip(self.by_slot, columns):
            Mb = Mb + (m_p if b.ndim == 1 else m_p[:, None]) * b[c_p]
        return Mb

    def t_dot(self, r: np.ndarray) -> np.ndarray:
        """:math:`M^\\top r`: column c collects :math:`m_{ip} r_i` over the rows whose slot p uses it (one
        bincount per slot, over its term's columns)."""
        out = np.zeros(self.q)
        ranges = self.layout.slot_ranges[self.slots]
        for m_p, c_p, (start, size) in zip(self.by_slot, self.layout.slot_columns[self.slots], ranges):
            out[start:start + size] += np.bincount(c_p - start, m_p * r, minlength=size)
        return out

    def weighted_cross(self, D: np.ndarray, X: np.ndarray) -> np.ndarray:
        """:math:`M^\\top D X` (q x p), one column of X at a time."""
        return np.column_stack([self.t_dot(D * x) for x in X.T]) if X.shape[1] else np.zeros((self.q, 0))


@dataclass
class SchurA:
    """:math:`A = M^\\top D M + I` for several terms, by its blocks (see the module's text).

    ``A11`` factorises term 1's block-diagonal :math:`A_{11}`; it is built by the caller
    (``laplace.BlockA``, which gives ``inverse``, the (G, k, k) blocks of :math:`A_{11}^{-1}`, ``logdet``
    and ``solve``). :math:`A_{21}` and :math:`R = A_{21}A_{11}^{-1}` share the layout's non-zeros.
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
        layout, k1 = M.layout, M.layout.k1
        one = layout.slots(layout.first)
        group = (layout.columns[:, one.start] - layout.block1.start) // k1
        A11 = block_factor(_diagonal_blocks(group, M.by_slot[one], D, layout.sizes[layout.first] // k1)
                           + np.eye(k1))
        m = M.by_slot
        contributions = np.stack([D * m[p] * m[r] for p, r in layout.cross_pairs])
        A21_data = np.bincount(layout.where.ravel(), contributions.ravel(), minlength=len(layout.indices))
        shape = (len(layout.rest), layout.sizes[layout.first])
        A21 = sp.csr_matrix((A21_data, layout.indices, layout.indptr), shape=shape)
        R = sp.csr_matrix((_times_inverse_blocks(A21_data, layout, A11.inverse), layout.indices, layout.indptr),
                          shape=shape)
        q2 = len(layout.rest)
        values = np.concatenate([D * m[p] * m[r] for p, r in layout.rest_pairs])
        A22 = np.bincount(layout.rest_index, values, minlength=q2 * q2).reshape(q2, q2) + np.eye(q2)
        S_chol = cho_factor(A22 - (R @ A21.T).toarray(), lower=True, check_finite=False)
        logdet = A11.logdet + 2.0 * float(np.sum(np.log(np.diag(S_chol[0]))))
        return cls(layout, A11, A21, R, S_chol, logdet)

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """:math:`A^{-1}r` by block elimination: :math:`y_1 = A_{11}^{-1}r_1`,
        :math:`x_2 = S^{-1}(r_2 - A_{21}y_1)`, :math:`x_1 = y_1 - R^\\top x_2` (r a vector or a q x s matrix)."""
        if not rhs.size:
            return rhs
        block1, rest = self.layout.block1, self.layout.rest
        y1 = self.A11.solve(rhs[block1])
        x2 = cho_solve(self.S_chol, rhs[rest] - self.A21 @ y1, check_finite=False)
        x = np.empty(rhs.shape)
        x[block1], x[rest] = y1 - self.R.T @ x2, x2
        return x

    def leverage(self, M: TermsM) -> np.ndarray:
        """:math:`h_i = m_i^\\top A^{-1} m_i = \\sum_{p,r} m_{ip} E_{ipr} m_{ir}`, over the pairs of slots."""
        return self._quadratic_form(M.by_slot, M)

    def trace(self, M: TermsM, D: np.ndarray, Mk: TermsM) -> float:
        """:math:`\\mathrm{tr}(A^{-1}M^\\top D M_k) = \\sum_i D_i\\, m_i^\\top A^{-1} (m_k)_i`."""
        return float(D @ self._quadratic_form(M.by_slot, Mk))

    def _quadratic_form(self, m: np.ndarray, other: TermsM) -> np.ndarray:
        """:math:`\\sum_p \\sum_{r \\in \\text{other's slots}} m_{ip} E_{pri} (m_{other})_{ir}` for each row i
        (m slot by slot)."""
        E = self._pairs()
        out = np.zeros(m.shape[1])
        for r, column in zip(range(other.slots.start, other.slots.stop), other.by_slot):
            for p in range(len(m)):
                out += m[p] * E[p, r] * column
        return out

    def _pairs(self) -> np.ndarray:
        """:math:`E_{pri} = [A^{-1}]_{c_{ip} c_{ir}}` for the columns :math:`c_{ip}` that row i uses (r x r x n),
        from the blocks of :math:`A^{-1}`: :math:`S^{-1}`; :math:`-S^{-1}R` at the non-zeros of R, where
        row i's entries of block 2 and term 1 meet; and the diagonal blocks of
        :math:`A_{11}^{-1} + R^\\top S^{-1} R` (a selected inverse)."""
        if self._pairs_cache is None:
            layout = self.layout
            S_inv = _inverse(self.S_chol[0])
            owner, partner, lower = layout.same_column
            R = self.R.data
            SR = np.bincount(owner, np.take(S_inv, lower) * R[partner], minlength=len(R))
            inverse11 = self.A11.inverse + _block_diagonal_of_product(R, SR, layout)
            self._pairs_cache = self._entries(S_inv, SR, inverse11)
        return self._pairs_cache

    def _entries(self, S_inv: np.ndarray, SR: np.ndarray, inverse11: np.ndarray) -> np.ndarray:
        """Place the three kinds of entries of :math:`A^{-1}` in each row's slot pairs."""
        layout = self.layout
        columns, position, k1 = layout.slot_columns, layout.position, layout.k1
        E = np.empty(columns.shape[:1] + columns.shape)
        one = layout.slots(layout.first)
        group = (columns[one.start] - layout.block1.start) // k1
        for j in range(k1):
            for l in range(k1):
                E[one.start + j, one.start + l] = inverse11[group, j, l]
        for (p, r), where in zip(layout.cross_pairs, layout.where):
            E[p, r] = E[r, p] = -SR[where]
        for p, r in layout.rest_pairs:
            a, b = position[columns[p]], position[columns[r]]
            E[p, r] = S_inv[np.maximum(a, b), np.minimum(a, b)]
        return E


def _inverse(L: np.ndarray) -> np.ndarray:
    """:math:`S^{-1}` from the lower Cholesky factor of S (LAPACK's potri); only its lower triangle
    (entry [max(a, b), min(a, b)]) is to be read."""
    inverse, info = dpotri(L, lower=1)
    if info:
        raise np.linalg.LinAlgError("S is singular")
    return inverse


def _times_inverse_blocks(data: np.ndarray, layout: Layout, inverse: np.ndarray) -> np.ndarray:
    """The non-zeros of :math:`R = A_{21}A_{11}^{-1}`: in each row, the k1 non-zeros of one group g
    (adjacent, in column order) times :math:`A_g^{-1}`."""
    k1 = layout.k1
    group = layout.indices[::k1] // k1
    if k1 == 1:
        return data * inverse[group, 0, 0]
    return np.einsum("nj,njl->nl", data.reshape(-1, k1), inverse[group]).ravel()


def _block_diagonal_of_product(R: np.ndarray, SR: np.ndarray, layout: Layout) -> np.ndarray:
    """The (G, k, k) diagonal blocks of :math:`R^\\top (S^{-1}R)`: block g, entry (j, l), sums
    :math:`R_{a, gk+j}(S^{-1}R)_{a, gk+l}` over the rows a where the group's columns are non-zero."""
    k1, G = layout.k1, layout.sizes[layout.first] // layout.k1
    group = layout.indices[::k1] // k1
    products = np.einsum("nj,nl->njl", R.reshape(-1, k1), SR.reshape(-1, k1))
    return np.stack([np.bincount(group, products[:, j, l], minlength=G) for j in range(k1) for l in range(k1)],
                    axis=1).reshape(G, k1, k1)


def _diagonal_blocks(group: np.ndarray, m: np.ndarray, D: np.ndarray, n_groups: int) -> np.ndarray:
    """:math:`\\sum_{i: g_i = g} D_i m_i m_i^\\top` for each group g, (G, k, k); m slot by slot (k x n)."""
    k = len(m)
    blocks = np.empty((n_groups, k, k))
    for j in range(k):
        for l in range(j + 1):
            blocks[:, j, l] = blocks[:, l, j] = np.bincount(group, D * m[j] * m[l], minlength=n_groups)
    return blocks


