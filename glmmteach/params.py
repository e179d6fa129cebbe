"""The outer parameter vector :math:`\\psi`, in blocks: the one place that lays it out.

The optimiser sees one vector; the model sees its pieces. :func:`layout` lists the blocks in order:

* ``beta``: the fixed effects, when they are not integrated out (ML; under REML they join the random
  effects in the inner problem);
* ``theta``: one block per random-effect term, its entries as the term's covariance structure defines them;
* ``disp``: the coefficients of the log dispersion, :math:`\\log\\phi_i = c\\,(X_d\\,\\beta_d)_i`, one value
  of :math:`\\phi` per observation (without a ``dispformula`` :math:`X_d` is a column of ones and c = 1: one
  coefficient, :math:`\\log\\phi`, for families with a dispersion parameter; with one, glmmTMB's coefficients
  and c the family's ``disp_scale``);
* ``zi``: the zero-inflation coefficients, :math:`\\operatorname{logit}\\pi_i = (X_{zi}\\,\\beta_{zi})_i`
  (``ziformula``; :mod:`glmmteach.zeroinfl`), outer parameters under ML and REML alike, as in glmmTMB.

A new block is one more entry in :func:`layout` and one more field of :class:`Parameters`: names, bounds,
starting values, unpacking and the assembly of the gradient then follow from the list.

>>> import numpy as np
>>> blocks = Layout([Block("beta", ("(Intercept)", "x"), np.full(2, -np.inf), np.zeros(2)),
...                  Block("theta", ("g: sd (Intercept)",), np.zeros(1), np.ones(1))])
>>> blocks.names(), blocks.bounds()
(['(Intercept)', 'x', 'g: sd (Intercept)'], [(None, None), (None, None), (0.0, None)])
>>> blocks.unpack(np.array([1.0, 2.0, 0.5])).theta
array([0.5])
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: the kinds of block, in the order psi holds them
KINDS = ("beta", "theta", "disp", "zi")


@dataclass(frozen=True)
class Block:
    """One piece of psi: its kind (one of :data:`KINDS`), the names of its entries (the optimisation log's
    columns), their lower bounds (``-inf``: none) and starting values."""

    kind: str
    names: tuple
    lower: np.ndarray
    start: np.ndarray

    @property
    def size(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class Parameters:
    """psi unpacked: each kind's entries (empty when the model has none of that kind; ``beta`` is None
    when the fixed effects are integrated out, REML)."""

    beta: np.ndarray | None
    theta: np.ndarray
    disp: np.ndarray
    zi: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class Layout:
    """The blocks of psi, in order (blocks of one kind next to each other)."""

    blocks: list

    def __post_init__(self):
        order = [KINDS.index(b.kind) for b in self.blocks]
        if order != sorted(order):
            raise ValueError(f"blocks must come in the order {KINDS}; got {[b.kind for b in self.blocks]}")

    @property
    def size(self) -> int:
        return sum(b.size for b in self.blocks)

    def where(self, kind: str) -> slice:
        """The positions of one kind's entries in psi (an empty slice when there are none)."""
        start = sum(b.size for b in self.blocks if KINDS.index(b.kind) < KINDS.index(kind))
        return slice(start, start + sum(b.size for b in self.blocks if b.kind == kind))

    def has(self, kind: str) -> bool:
        return any(b.kind == kind for b in self.blocks)

    def names(self) -> list[str]:
        return [name for b in self.blocks for name in b.names]

    def lower(self) -> np.ndarray:
        return np.concatenate([b.lower for b in self.blocks] or [np.zeros(0)]).astype(float)

    def bounds(self) -> list[tuple]:
        """For scipy's L-BFGS-B: ``(lower, None)``, with None where there is no bound."""
        return [(float(lo) if np.isfinite(lo) else None, None) for lo in self.lower()]

    def start(self) -> np.ndarray:
        return np.concatenate([np.asarray(b.start, float) for b in self.blocks] or [np.zeros(0)])

    def unpack(self, psi: np.ndarray) -> Parameters:
        psi = np.asarray(psi, float)
        part = {kind: psi[self.where(kind)] for kind in KINDS}
        return Parameters(part["beta"] if self.has("beta") else None, part["theta"], part["disp"], part["zi"])

    def pack(self, **parts) -> np.ndarray:
        """The vector with each kind's entries in its place (the gradient is assembled this way); a kind
        left out is 0."""
        out = np.zeros(self.size)
        for kind, values in parts.items():
            out[self.where(kind)] = values
        return out


def layout(design, reml: bool, beta=None, theta=None, disp=None, zi=None) -> Layout:
    """The blocks of psi for a model, with their starting values (zeros where none are
    given): the one place where psi is laid out."""
    p, q_disp, q_zi = len(design.x_names), design.X_disp.shape[1], design.X_zi.shape[1]
    beta = np.zeros(p) if beta is None else np.asarray(beta, float)
    theta = np.zeros(design.n_theta) if theta is None else np.asarray(theta, float)
    disp = np.zeros(q_disp) if disp is None else np.asarray(disp, float)
    zi = np.zeros(q_zi) if zi is None else np.asarray(zi, float)
    unbounded = lambda size: np.full(size, -np.inf)          # noqa: E731
    blocks = []
    if not reml:                        # under REML beta is integrated, not optimised
        blocks.append(Block("beta", tuple(design.x_names), unbounded(p), beta))
    for term, part in zip(design.terms, design.theta_slices()):
        s = term.structure              # one block per random term
        blocks.append(Block("theta", tuple(s.theta_names(term.group)),
                            s.lower_bounds(), theta[part]))
    if q_disp:                          # log phi = X_disp beta_disp
        blocks.append(Block("disp", tuple(design.disp_labels), unbounded(q_disp), disp))
    if q_zi:                            # logit pi = X_zi beta_zi
        blocks.append(Block("zi", tuple(f"zi~{name}" for name in design.zi_names), unbounded(q_zi), zi))
    return Layout(blocks)
