"""Finite differences: every numerical derivative of the library, with one step rule.

The step for coordinate k is

.. math::  h_k = \\epsilon\\,\\max(1, |x_k|), \\qquad \\epsilon = 10^{-5},

relative for large values and absolute near zero. Central differences have an error of order
:math:`h^2 f^{(3)}/6` from truncation and :math:`\\delta/h` from the rounding :math:`\\delta` of ``f``; with
:math:`\\epsilon` near the cube root of the machine epsilon both stay near 1e-10 relative for the smooth
functions differenced here (log-likelihoods, their analytic gradients, the curvatures D).

>>> import numpy as np
>>> round(float(partials(lambda x: np.sum(x ** 3), np.array([2.0]))[0]), 6)       # 3 x^2 = 12
12.0
"""
from __future__ import annotations

import numpy as np

#: the relative step :math:`\\epsilon` of every finite difference
STEP = 1e-5


def steps(x: np.ndarray) -> np.ndarray:
    """:math:`h_k = \\epsilon\\max(1, |x_k|)`."""
    return STEP * np.maximum(1.0, np.abs(np.asarray(x, float)))


def partials(f, x: np.ndarray, index=None, lower=None, central: bool = True) -> np.ndarray:
    """:math:`\\partial f/\\partial x_k` for each k in ``index`` (all by default), stacked along the first axis.

    Central, :math:`[f(x + h_k e_k) - f(x - h_k e_k)] / 2h_k`; forward, :math:`[f(x + h_k e_k) - f(x)] / h_k`,
    where ``central`` is False or where :math:`x_k - h_k` would cross its lower bound ``lower[k]`` (None: no
    bound). ``f`` may return a number or an array (then row k is the derivative of every entry).
    """
    x = np.asarray(x, float)
    h = steps(x)
    index = range(len(x)) if index is None else index
    f0, rows = None, []
    for k in index:
        e = np.zeros_like(x)
        e[k] = h[k]
        bound = None if lower is None else lower[k]
        if central and (bound is None or x[k] - h[k] >= bound):
            rows.append((np.asarray(f(x + e), float) - np.asarray(f(x - e), float)) / (2 * h[k]))
        else:
            f0 = np.asarray(f(x), float) if f0 is None else f0
            rows.append((np.asarray(f(x + e), float) - f0) / h[k])
    return np.array(rows)


def hessian(gradient, x: np.ndarray, index=None) -> np.ndarray:
    """Central differences of an analytic gradient over the coordinates ``index``, symmetrised:
    :math:`H_{jk} \\approx [g_k(x + h_j e_j) - g_k(x - h_j e_j)] / 2h_j`, then :math:`(H + H^\\top)/2`."""
    index = np.arange(len(x)) if index is None else np.asarray(index)
    H = partials(gradient, x, index)[:, index]
    return (H + H.T) / 2


def elementwise(f, x: np.ndarray):
    """The derivative of a function that acts entry by entry (:math:`f(x)_i` depends on :math:`x_i` alone),
    all entries at once: :math:`[f(x + h) - f(x - h)] / 2h`, with :math:`h_i` by the same rule. When ``f``
    returns a tuple of arrays, the tuple of their derivatives (from the same two calls)."""
    h = steps(x)
    up, down = f(x + h), f(x - h)
    if isinstance(up, tuple):
        return tuple((a - b) / (2 * h) for a, b in zip(up, down))
    return (up - down) / (2 * h)
