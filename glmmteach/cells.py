"""A linear mixed model on fewer rows: the same likelihood from each cell's cross-products.

For the Gaussian family with the identity link and one :math:`\\sigma` for all observations, row i enters
the (REML) log-likelihood only through the square of its residual
:math:`r_i = y_i - o_i - x_i^\\top\\beta - z_i^\\top\\Lambda b`, weighted by its prior weight:

.. math:: \\sum_i w_i \\ell_i = -\\frac{1}{2\\sigma^2} \\sum_i w_i r_i^2
          - \\Big(\\sum_i w_i\\Big)\\big(\\log\\sigma + \\tfrac12\\log 2\\pi\\big),

and :math:`H_v` through :math:`\\sum_i w_i\\,(x_i, M_i)(x_i, M_i)^\\top / \\sigma^2`. Both depend on the rows of
:math:`F = W^{1/2}\\,[Z \\; X \\; y - o]` only through the cross-products :math:`F^\\top F`, and a row of Z touches
only the columns of its levels. Rows that use the same columns of Z (the same level of every grouping factor:
a *cell*) can therefore be replaced by the rows of any matrix with the same :math:`F_c^\\top F_c`: the right
singular vectors of :math:`F_c = U S V^\\top`, scaled by the singular values, :math:`S V^\\top`, of which at most
:math:`K = r + p + 1` are not 0 (r the values a row of Z holds, p the columns of X). With weights
:math:`\\omega` that add up to the cell's :math:`\\sum w_i`, the pseudo-rows give the same log-likelihood, the
same :math:`H_v`, the same conditional modes and the same gradient, to rounding.

lme4's ``lmer`` computes its criterion from such cross-products (:math:`Z^\\top Z, Z^\\top X, X^\\top X,
Z^\\top y`), which is why it is faster than ``glmer`` on the same data. Here the optimiser runs on the
pseudo-rows with the same Laplace steps; the fit is finished on the rows of the data
(:func:`glmmteach.fit.finish`). For the pupils of mlmRev's Chem97, ``score ~ 1 + (1 | lea/school)``, a row
of F is (1, 1, 1, score): each school's F has rank 2 at most, and 31,022 rows become 4,576.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from .design import Design

#: The pseudo-rows are used when they are at most this share of the rows (else the data are kept)
WORTHWHILE = 0.5


def applies(design: Design, nagq: int = 1) -> bool:
    """Whether the log-likelihood depends on the rows only through their cross-products: a Gaussian response
    with the identity link, one sigma (no ``dispformula``), no zero inflation, the Laplace approximation (exact
    here), and random effects whose every row stores its k values in each term (:attr:`Design.term_entries`)."""
    return (design.family.quadratic and design.disp_formula is None and not design.zero_inflated and nagq == 1
            and design.q > 0 and design.term_entries is not None)


def cells(design: Design) -> tuple[np.ndarray, int]:
    """The cell of every row (the same level in every random-effect term) and the number of cells."""
    cell = np.zeros(design.nobs, np.int64)
    for columns, _ in design.term_entries:          # number the pairs (cell so far, level of this term)
        _, cell = np.unique(cell * (design.q + 1) + columns[:, 0], return_inverse=True)
    cell = cell.ravel()
    return cell, int(cell.max()) + 1


def weighted_rows(design: Design) -> np.ndarray:
    """:math:`F = W^{1/2}[z \\; X \\; y - o]`, n x K: each row's r values of Z (term by term), its row of X
    and its response less the offset, times the square root of its prior weight."""
    z = np.column_stack([values for _, values in design.term_entries])
    F = np.column_stack([z, design.X, design.y - design.offset])
    return np.sqrt(design.weights)[:, None] * F


def pseudo_rows(F: np.ndarray, cell: np.ndarray, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """For each cell c, the rows :math:`s_j v_j^\\top` of :math:`F_c = U S V^\\top` with :math:`s_j` above
    rounding (:math:`s_j > \\max(n_c, K)\\,\\epsilon\\,s_1`), so that :math:`\\sum_j s_j^2 v_j v_j^\\top =
    F_c^\\top F_c`. Cells of the same size are decomposed together, as a stack of SVDs.
    Returns the pseudo-rows (m x K) and the cell of each."""
    sizes = np.bincount(cell, minlength=n_cells)
    order = np.argsort(cell, kind="stable")
    first = np.cumsum(sizes) - sizes
    rows, owners = [], []
    for size in np.unique(sizes[sizes > 0]):
        members = np.flatnonzero(sizes == size)
        stack = F[order[first[members][:, None] + np.arange(size)]]          # (cells, size, K)
        _, s, Vt = np.linalg.svd(stack, full_matrices=False)
        kept = s > max(size, F.shape[1]) * np.finfo(float).eps * s[:, :1]
        rows.append((s[:, :, None] * Vt)[kept])
        owners.append(np.broadcast_to(members[:, None], kept.shape)[kept])
    return np.concatenate(rows), np.concatenate(owners)


def compressed(design: Design) -> Design | None:
    """The design on pseudo-rows with the same cross-products in every cell (see the module's text), or None
    where it does not apply or would keep more than :data:`WORTHWHILE` of the rows.

    Pseudo-row j of cell c has the weight :math:`\\omega_j = \\sum_{i \\in c} w_i / m_c` (:math:`m_c` the cell's
    pseudo-rows) and the values :math:`s_j v_j / \\sqrt{\\omega_j}`: then :math:`\\sum_j \\omega_j \\tilde F_j
    \\tilde F_j^\\top = F_c^\\top F_c` and :math:`\\sum_j \\omega_j = \\sum_{i \\in c} w_i`. Its columns of Z are the
    cell's, its offset 0 (the offset is in its response) and its trials 1."""
    if not applies(design):
        return None
    cell, n_cells = cells(design)
    if n_cells > WORTHWHILE * design.nobs:
        return None
    F = weighted_rows(design)
    rows, owner = pseudo_rows(F, cell, n_cells)
    if len(rows) > WORTHWHILE * design.nobs:
        return None
    m = np.bincount(owner, minlength=n_cells)
    omega = (np.bincount(cell, design.weights, minlength=n_cells) / np.maximum(m, 1))[owner]
    rows = rows / np.sqrt(omega)[:, None]
    r, p = F.shape[1] - design.X.shape[1] - 1, design.X.shape[1]
    return replace(design, y=rows[:, -1].copy(), n=np.ones(len(rows)), X=rows[:, r:r + p].copy(),
                   Z=_pseudo_Z(design, cell, owner, rows[:, :r]), offset=np.zeros(len(rows)), weights=omega,
                   X_disp=np.ones((len(rows), 1)), X_zi=np.zeros((len(rows), 0)))


def _pseudo_Z(design: Design, cell: np.ndarray, owner: np.ndarray, z: np.ndarray) -> sp.csc_matrix:
    """Z for the pseudo-rows: each in its cell's columns (those of the cell's first row), with its values z;
    every entry stored, as in the data's Z (so that :attr:`Design.term_entries` finds k values per term)."""
    columns = np.column_stack([columns for columns, _ in design.term_entries])
    _, first_row = np.unique(cell, return_index=True)          # cells are numbered 0, 1, ...: one row each
    indices = columns[first_row[owner]]
    r = z.shape[1]
    Z = sp.csr_matrix((z.ravel(), indices.ravel(), np.arange(0, len(z) * r + 1, r)), shape=(len(z), design.q))
    return Z.tocsc()
