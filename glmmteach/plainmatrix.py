"""The model matrix of a plain formula, built directly.

A *plain* formula has an intercept and terms that are columns of the data or interactions of columns,
such as ``vaccine * day_f`` or ``1 + x + f``. R codes each factor in a term by treatment contrasts
(every level but the first gets a 0/1 column) when the term without that factor is also in the model,
which for such hierarchical formulas is every factor of every term. A numeric column enters as it is,
and the columns of an interaction are the products of its factors' columns, the first factor's
varying fastest:

.. math:: X = [\\,1 \\;\\; x_{a_2} \\;\\dots\\; x_{a_A} \\;\\; x_{b_2} \\;\\dots \\;\\; x_{a_2} x_{b_2}
          \\;\\; x_{a_3} x_{b_2} \\;\\dots\\,], \\qquad x_{a_j} = [a_i = j].

formulaic builds the same matrix for any formula, but spends most of a small GLM's fit doing it (it
infers the data types, evaluates each factor, and records how to redo this for new data). For a plain
formula this module builds X in one pass of numpy instead; :func:`glmmteach.design.build` uses it when
it applies and formulaic otherwise, and ``tests/test_plainmatrix.py`` checks that the two agree,
columns and names, on every formula this module accepts. The formulaic specification that predictions
on new data need is made only when first asked for (:class:`DeferredSpec`).
"""
from __future__ import annotations

import functools
from functools import cached_property

import numpy as np
import pandas as pd
from formulaic import Formula
from formulaic.parser.types import Factor

from .formula import r_name


def plain_matrix(expr: str, data: pd.DataFrame) -> tuple[np.ndarray, list[str]] | None:
    """X and its R column names for a plain formula ``expr``, or None if it is not plain (then
    formulaic builds it): an intercept, every factor a column looked up by name (numeric, text or
    categorical), and every factor of a term coded by contrasts (the term without it is in the model)."""
    terms = _terms(expr)
    if not terms or terms[0] != ("1",):
        return None
    present = {frozenset(factors) - {"1"} for factors in terms}
    columns, names, coded_by_name = [np.ones((len(data), 1))], ["Intercept"], {}
    for factors in terms[1:]:
        if not all(name is not None and name in data.columns for name in factors):
            return None
        for name in factors:
            if name not in coded_by_name:
                coded_by_name[name] = _coded(name, data[name])
        coded = [coded_by_name[name] for name in factors]
        if any(c is None for c in coded) or not _contrasts_apply(factors, coded, present):
            return None
        block, labels = _interaction(coded)
        columns.append(block)
        names += labels
    # column-major, as formulaic's matrices are: the same numbers in the same layout give the same sums
    return np.asfortranarray(np.hstack(columns)), [r_name(name) for name in names]


@functools.lru_cache(maxsize=256)
def _terms(expr: str) -> tuple[tuple, ...] | None:
    """formulaic's terms of ``expr``, each as the names of its factors (None for a factor that is not a column
    looked up by name; the intercept is ``("1",)``), parsed once for each formula text; None if formulaic cannot
    parse it."""
    try:
        terms = list(Formula(expr))
    except Exception:  # noqa: BLE001 - formulaic reports the formula's errors itself, on its own path
        return None
    return tuple(tuple(f.expr if f.eval_method == Factor.EvalMethod.LOOKUP or f.expr == "1" else None
                       for f in term.factors) for term in terms)


def _coded(name: str, column: pd.Series) -> tuple[np.ndarray, list[str], bool] | None:
    """(columns, formulaic's names, is_factor) of one factor: a numeric column as it is; a text or
    categorical column by treatment contrasts against its first level. None for anything else
    (booleans, mixed or non-text values), which formulaic handles."""
    if pd.api.types.is_bool_dtype(column):
        return None
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(float)[:, None], [name], False
    if isinstance(column.dtype, pd.CategoricalDtype):
        levels = list(column.dtype.categories)
        if not all(isinstance(level, (str, int, np.integer)) for level in levels):
            return None
        codes = column.array.codes
    elif pd.api.types.infer_dtype(column, skipna=False) == "string":
        levels, codes = _levels_and_codes(column)
    else:
        return None
    dummies = (codes[:, None] == np.arange(1, len(levels))[None, :]).astype(float)
    return dummies, [f"{name}[T.{level}]" for level in levels[1:]], True


def _levels_and_codes(column: pd.Series) -> tuple[list[str], np.ndarray]:
    """Sorted levels of a text column and each row's position among them."""
    levels, codes = np.unique(column.to_numpy(str), return_inverse=True)
    return [str(level) for level in levels], codes


def _contrasts_apply(factors: list[str], coded: list, present: set) -> bool:
    """R codes a factor of a term by contrasts when the term without it is in the model (the
    intercept stands for the empty term); otherwise by one column per level, which is left to formulaic."""
    return all(not is_factor or frozenset(factors) - {name} in present
               for name, (_, _, is_factor) in zip(factors, coded))


def _interaction(coded: list) -> tuple[np.ndarray, list[str]]:
    """The products of the factors' columns, the first factor's columns varying fastest (as R and
    formulaic order them), with names joined by ``:``."""
    block, labels = coded[0][0], coded[0][1]
    for columns, names, _ in coded[1:]:
        block = (block[:, :, None] * columns[:, None, :]).reshape(len(block), -1, order="F")
        labels = [f"{a}:{b}" for b in names for a in labels]
    return block, labels


class DeferredSpec:
    """formulaic's model specification of ``expr`` on ``data``, made when first used (predictions on
    new data, the terms of the fixed part) rather than on every fit. ``make`` builds it."""

    def __init__(self, make):
        self._make = make

    @cached_property
    def spec(self):
        return self._make()

    def __getattr__(self, name):
        if name.startswith("_") or name == "spec":
            raise AttributeError(name)
        return getattr(self.spec, name)
