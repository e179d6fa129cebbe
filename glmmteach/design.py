"""From a formula and a DataFrame to the matrices of the GLMM.

The linear predictor of a GLMM is

.. math::  \\eta = X\\beta + Z u + o, \\qquad u = \\Lambda_\\theta b, \\quad b \\sim N(0, I),

so that :math:`\\mathrm{Var}(u) = \\Sigma_\\theta = \\Lambda_\\theta\\Lambda_\\theta^\\top`.
This module builds ``y``, ``X`` (dense), ``Z`` (sparse), the offset ``o``, the weights, and the map
:math:`\\theta \\mapsto \\Lambda_\\theta`. For a term ``(1 + x | g)`` with ``k`` columns and ``L``
levels, ``Z`` has ``L*k`` columns ordered level by level, and :math:`\\Lambda_\\theta` repeats one
``k x k`` lower-triangular template ``T`` (the Cholesky factor of the term's covariance) ``L`` times.
``theta`` lists the template's lower triangle column by column, as lme4 does.
"""
from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic import model_matrix

from . import families
from .formula import Formula, FormulaError, RandomTerm, parse, r_name

_SAFE_FUNCTIONS = {"log": np.log, "log2": np.log2, "log10": np.log10, "log1p": np.log1p, "exp": np.exp,
                   "sqrt": np.sqrt, "abs": np.abs, "I": lambda x: x}


@dataclass
class ReTerm:
    """One random-effect term: its group, the names of its k columns, its levels, its place in Z."""

    group: str
    names: list[str]
    levels: list[str]
    start: int          # first column of this term in Z
    spec: object = field(repr=False, default=None)   # formulaic spec of the term's columns

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def n_theta(self) -> int:
        return self.k * (self.k + 1) // 2

    def lower_triangle(self) -> list[tuple[int, int]]:
        """(row, col) of theta's entries in the template T: lower triangle, column by column."""
        return [(r, c) for c in range(self.k) for r in range(c, self.k)]


@dataclass
class Design:
    """Everything the likelihood needs: ``y``, trials ``n``, ``X``, ``Z``, ``offset``, ``weights``."""

    formula: Formula
    family: families.Family
    y: np.ndarray
    n: np.ndarray
    X: np.ndarray
    x_names: list[str]
    Z: sp.csc_matrix
    offset: np.ndarray
    weights: np.ndarray
    terms: list[ReTerm]
    response_name: str
    fixed_spec: object = field(repr=False, default=None)
    lambda_rows: np.ndarray = field(repr=False, default=None)
    lambda_cols: np.ndarray = field(repr=False, default=None)
    lambda_theta: np.ndarray = field(repr=False, default=None)

    @property
    def nobs(self) -> int:
        return len(self.y)

    @property
    def q(self) -> int:
        """Number of random effects (columns of Z)."""
        return self.Z.shape[1]

    @property
    def n_theta(self) -> int:
        return sum(t.n_theta for t in self.terms)

    @cached_property
    def z_is_diagonal(self) -> bool:
        """True when each row of Z has exactly one non-zero (one scalar term), so that Z'WZ is diagonal."""
        return self.q > 0 and bool(np.all(np.diff(self.Z.tocsr().indptr) == 1))

    @cached_property
    def z_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """For a diagonal Z: the column (group) of each row's non-zero, and its value."""
        Z = self.Z.tocsr()
        return Z.indices.copy(), Z.data.copy()

    def theta_names(self) -> list[str]:
        names = []
        for term in self.terms:
            for r, c in term.lower_triangle():
                names.append(f"{term.group}: " + (f"sd {term.names[r]}" if r == c
                                                  else f"cholesky[{term.names[r]}, {term.names[c]}]"))
        return names

    def theta_lower_bounds(self) -> np.ndarray:
        """Diagonal entries of each T are standard deviations on the Cholesky scale: >= 0."""
        return np.array([0.0 if r == c else -np.inf for t in self.terms for r, c in t.lower_triangle()])

    def Lambda(self, theta: np.ndarray) -> sp.csc_matrix:
        """The relative covariance factor: block diagonal, template T repeated for each level."""
        return sp.csc_matrix((np.asarray(theta)[self.lambda_theta], (self.lambda_rows, self.lambda_cols)),
                             shape=(self.q, self.q))

    def covariances(self, theta: np.ndarray) -> list[np.ndarray]:
        """Sigma = T T' for each term."""
        out, i = [], 0
        for term in self.terms:
            T = np.zeros((term.k, term.k))
            for r, c in term.lower_triangle():
                T[r, c] = theta[i]
                i += 1
            out.append(T @ T.T)
        return out


def build(formula: str | Formula, data: pd.DataFrame, family: families.Family,
          weights=None) -> Design:
    """Build the :class:`Design` of ``formula`` on ``data``; missing values are dropped with a warning."""
    parsed = formula if isinstance(formula, Formula) else parse(formula)
    data = _complete_cases(parsed, _check_data(data), weights)
    weights = data.pop("(weights)").to_numpy(float) if "(weights)" in data else np.ones(len(data))
    X, x_names, fixed_spec = _fixed_matrix(parsed.fixed, data)
    offset = sum((np.asarray(_evaluate(o, data), float) for o in parsed.offsets), np.zeros(len(data)))
    _check_finite(offset, "offset(...)")
    y, n, weights = _response(parsed.response, data, family, weights)
    Z, terms = _random_matrix(parsed.random, data)
    design = Design(parsed, family, y, n, X, x_names, Z, offset, weights, terms, parsed.response,
                    fixed_spec)
    _index_lambda(design)
    return design


def _check_data(data) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame; got {type(data).__name__}. "
                        "Load one with gt.datasets.load(...) or pandas.read_csv(...).")
    if len(data) == 0:
        raise ValueError("data has no rows; a model needs at least one observation")
    return data


def _complete_cases(parsed: Formula, data: pd.DataFrame, weights) -> pd.DataFrame:
    """Keep the columns the formula uses; drop incomplete rows as R's na.omit does, with a warning."""
    missing = [v for v in parsed.variables() if v not in data.columns]
    if missing:
        raise ValueError(f"unknown column {missing[0]!r} in the formula {parsed.text!r}; "
                         f"the data has columns: {', '.join(map(str, data.columns))}")
    used = data[parsed.variables()].copy()
    if weights is not None:
        used["(weights)"] = _weights_column(weights, data)
    incomplete = used.isna().any(axis=1).to_numpy()
    if incomplete.any():
        warnings.warn(f"{incomplete.sum()} of {len(used)} rows had missing values and were dropped "
                      "(as R's na.omit)", stacklevel=4)
        used = used.loc[~incomplete]
        if len(used) == 0:
            raise ValueError("no complete rows are left after dropping missing values")
    for name in used.columns:
        if pd.api.types.is_numeric_dtype(used[name]) and not pd.api.types.is_bool_dtype(used[name]):
            _check_finite(used[name].to_numpy(float), name)
    return used.reset_index(drop=True)


def _weights_column(weights, data: pd.DataFrame) -> np.ndarray:
    if isinstance(weights, str):
        if weights not in data.columns:
            raise ValueError(f"unknown weights column {weights!r}; the data has: {', '.join(data.columns)}")
        weights = data[weights]
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (len(data),):
        raise ValueError(f"weights must have one value per row ({len(data)}); got shape {weights.shape}")
    if np.any(weights[np.isfinite(weights)] < 0):
        raise ValueError("weights must be >= 0")
    return weights


def _check_finite(values: np.ndarray, name: str) -> None:
    bad = np.isinf(values)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"column {name!r} has an infinite value ({values[row]}) in row {row}; "
                         "covariates must be finite numbers")


def _evaluate(expr: str, data: pd.DataFrame):
    """Evaluate an arithmetic expression of columns, such as ``n - germ`` or ``log(wt)``."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as error:
        raise FormulaError(f"cannot read the expression {expr!r}: {error.msg}") from None
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    unknown = names - set(data.columns) - set(_SAFE_FUNCTIONS)
    if unknown:
        raise ValueError(f"unknown column {sorted(unknown)[0]!r} in {expr!r}; "
                         f"the data has columns: {', '.join(map(str, data.columns))}")
    namespace = {name: data[name].to_numpy() for name in names & set(data.columns)}
    for name, column in namespace.items():
        if not pd.api.types.is_numeric_dtype(column):
            raise ValueError(f"column {name!r} is text or categorical; {expr!r} needs numbers")
    with np.errstate(all="ignore"):
        return eval(compile(tree, expr, "eval"), {"__builtins__": {}, **_SAFE_FUNCTIONS}, namespace)


def _response(expr: str, data: pd.DataFrame, family: families.Family, weights: np.ndarray):
    """The response y and trials n. Binomial: ``cbind(s, f)`` gives y = s, n = s + f; a proportion
    with ``weights`` gives y = p w, n = w (then the weights are the trials, not prior weights)."""
    cbind = _cbind_arguments(expr)
    if cbind is not None:
        if family.name != "binomial":
            raise ValueError(f"cbind(successes, failures) is for the binomial family, not {family.name}")
        successes, failures = (np.asarray(_evaluate(e, data), float) for e in cbind)
        y, n = successes, successes + failures
        family.check_response(y, n, name=expr)
        return y, n, weights
    if expr in data.columns and not pd.api.types.is_numeric_dtype(data[expr]):
        raise ValueError(f"the response {expr!r} is text or categorical; it must be numeric "
                         f"(for binomial use 0/1, a proportion with weights=, or cbind(successes, failures))")
    y = np.asarray(_evaluate(expr, data), dtype=float)
    if np.any(~np.isfinite(y)):
        row = int(np.argmax(~np.isfinite(y)))
        raise ValueError(f"the response {expr!r} is not finite in row {row} (value {y[row]})")
    if family.name == "binomial":
        n = weights.copy()
        y = y * n
        family.check_response(np.round(y, 9), n, name=expr)
        return np.round(y, 9), n, np.ones_like(n)
    family.check_response(y, name=expr)
    return y, np.ones_like(y), weights


def _cbind_arguments(expr: str):
    if not expr.startswith("cbind(") or not expr.endswith(")"):
        return None
    try:
        call = ast.parse(expr, mode="eval").body
    except SyntaxError as error:
        raise FormulaError(f"cannot read the response {expr!r}: {error.msg}") from None
    if len(call.args) != 2:
        raise FormulaError(f"cbind() takes two columns, successes and failures; got {expr!r}")
    return [ast.unparse(a) for a in call.args]


def _fixed_matrix(fixed: str, data: pd.DataFrame):
    """X with treatment contrasts and R's column names; formulaic does the expansion."""
    try:
        X = model_matrix(fixed, data, na_action="raise")
    except Exception as error:  # formulaic's own error types differ between versions
        raise FormulaError(f"cannot build the fixed-effects part {fixed!r}: {error}") from None
    names = [r_name(c) for c in X.columns]
    return np.asarray(X, dtype=float), names, X.model_spec


def _random_matrix(random: tuple[RandomTerm, ...], data: pd.DataFrame):
    """Z = [Z_1 ... Z_m], one block per term, columns level-major: (level 1: k columns), (level 2), ..."""
    blocks, terms, start = [], [], 0
    for term in random:
        codes, levels = _grouping(term.group, data)
        Xr = model_matrix(term.expr, data, na_action="raise")
        names = [r_name(c) for c in Xr.columns]
        values = np.asarray(Xr, dtype=float)
        k, n = values.shape[1], len(data)
        rows = np.repeat(np.arange(n), k)
        cols = (codes[:, None] * k + np.arange(k)[None, :]).ravel()
        blocks.append(sp.csc_matrix((values.ravel(), (rows, cols)), shape=(n, len(levels) * k)))
        terms.append(ReTerm(term.group, names, levels, start, Xr.model_spec))
        start += len(levels) * k
    Z = sp.hstack(blocks, format="csc") if blocks else sp.csc_matrix((len(data), 0))
    return Z, terms


def _grouping(group: str, data: pd.DataFrame):
    """Integer codes and level names of a grouping factor; ``a:b`` is the interaction of a and b."""
    columns = [data[name] for name in group.split(":")]
    labels = columns[0].astype(str).to_numpy(dtype=object)
    for column in columns[1:]:
        labels = labels + ":" + column.astype(str).to_numpy(dtype=object)
    if len(columns) == 1:
        levels = _levels(columns[0])
    else:
        levels = sorted(set(labels))
    codes = pd.Categorical(labels, categories=levels).codes
    if len(levels) < 2:
        raise ValueError(f"the grouping factor {group!r} has only {len(levels)} level; a random effect "
                         "needs at least two groups (use a fixed effect instead)")
    return codes.astype(int), levels


def _levels(column: pd.Series) -> list[str]:
    """Levels as R's factor(): a categorical keeps its order, anything else is sorted."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column.astype(str))
        return [str(c) for c in column.cat.categories if str(c) in present]
    return [str(v) for v in sorted(column.unique())]


def _index_lambda(design: Design) -> None:
    """Precompute the sparsity of Lambda: entry (row, col) holds theta[index] (lme4's Lind)."""
    rows, cols, index, offset = [], [], [], 0
    for term in design.terms:
        k, L = term.k, len(term.levels)
        for i, (r, c) in enumerate(term.lower_triangle()):
            base = term.start + np.arange(L) * k
            rows.append(base + r)
            cols.append(base + c)
            index.append(np.full(L, offset + i))
        offset += term.n_theta
    concat = (lambda parts: np.concatenate(parts).astype(int)) if rows else (lambda parts: np.zeros(0, int))
    design.lambda_rows, design.lambda_cols, design.lambda_theta = concat(rows), concat(cols), concat(index)
