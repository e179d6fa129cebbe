"""From a formula and a DataFrame to the matrices of the GLMM.

The linear predictor of a GLMM is

.. math::  \\eta = X\\beta + Z u + o, \\qquad u = \\Lambda_\\theta b, \\quad b \\sim N(0, I),

so that :math:`\\mathrm{Var}(u) = \\Sigma_\\theta = \\Lambda_\\theta\\Lambda_\\theta^\\top`.
This module builds ``y``, ``X`` (dense), ``Z`` (sparse), the offset ``o``, the weights, and the map
:math:`\\theta \\mapsto \\Lambda_\\theta`. For a term ``(1 + x | g)`` with ``k`` columns and ``L``
levels, ``Z`` has ``L*k`` columns ordered level by level, and :math:`\\Lambda_\\theta` repeats the term's
``k x k`` template :math:`T(\\theta)` (with :math:`\\Sigma = TT^\\top`) ``L`` times. The term's covariance
structure (:mod:`glmmteach.covstruct`: ``us``, ``diag``, ``cs``, ``ar1``) makes T from the term's part of ``theta``;
:meth:`Design.Lambda` is the one place where the templates become :math:`\\Lambda_\\theta`.
"""
from __future__ import annotations

import ast
import difflib
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic import model_matrix

from . import blocked, covstruct, families
from .formula import (FUNCTIONS, Formula, FormulaError, RandomTerm, _to_formulaic, bare_names, parse, parse_one_sided,
                      r_name, rename_bare)
from .plainmatrix import DeferredSpec, plain_matrix

#: Functions of FUNCTIONS that formulaic does not know by itself (it has log, log2, log10, exp, I, C, ...).
_FORMULAIC_CONTEXT = {"sqrt": np.sqrt, "abs": np.abs, "log1p": np.log1p}

_SAFE_FUNCTIONS = {"log": np.log, "log2": np.log2, "log10": np.log10, "log1p": np.log1p, "exp": np.exp,
                   "sqrt": np.sqrt, "abs": np.abs, "I": lambda x: x, "np": np}


@dataclass
class ReTerm:
    """One random-effect term: its group, the names of its k columns, its levels, its place in Z, and its
    covariance structure (which makes the k x k template T from the term's entries of theta)."""

    group: str
    names: list[str]
    levels: list[str]
    start: int          # first column of this term in Z
    spec: object = field(repr=False, default=None)   # formulaic spec of the term's columns
    structure: covstruct.Structure = None

    def __post_init__(self):
        if self.structure is None:
            self.structure = covstruct.Unstructured(tuple(self.names))

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def n_theta(self) -> int:
        return self.structure.n_theta


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
    #: levels of every text/categorical column the fixed part uses, to check ``newdata`` against
    factor_levels: dict = field(repr=False, default_factory=dict)
    #: columns named like a formula function, and the names formulaic sees them by (see :func:`_aliases`)
    aliases: dict = field(repr=False, default_factory=dict)
    #: the dispersion model, :math:`\\log\\phi_i = c\\,(X_d\\,\\beta_d)_i`: a column of ones for families with a
    #: dispersion parameter (one phi for all observations, c = 1, its coefficient log(sigma)), no column for
    #: the others (phi = 1); with a ``dispformula``, its columns, and c the family's ``disp_scale`` (glmmTMB's
    #: coefficients model the log of its own dispersion parameter: log sigma^2 for the gaussian, ...)
    X_disp: np.ndarray = field(repr=False, default=None)
    disp_names: list = field(repr=False, default_factory=list)
    #: the zero-inflation model (``ziformula``), :math:`\\operatorname{logit}\\pi_i = (X_{zi}\\,\\beta_{zi})_i`
    #: (:mod:`glmmteach.zeroinfl`): no column without one; its one-sided formula and formulaic spec (for newdata)
    X_zi: np.ndarray = field(repr=False, default=None)
    zi_names: list = field(repr=False, default_factory=list)
    zi_formula: Formula | None = field(repr=False, default=None)
    zi_spec: object = field(repr=False, default=None)
    disp_formula: Formula | None = field(repr=False, default=None)
    disp_scale: float = field(repr=False, default=1.0)
    #: which rows of the data frame the design was built from: those without a missing value in the columns
    #: the model uses (R's na.omit)
    complete: np.ndarray | None = field(repr=False, default=None)
    _z_dlambda: list | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self):
        if self.X_disp is None:
            self.X_disp = np.ones((self.nobs, 1)) if self.family.has_phi else np.zeros((self.nobs, 0))
            self.disp_names = ["log(sigma)"] if self.family.has_phi else []
        if self.X_zi is None:
            self.X_zi = np.zeros((self.nobs, 0))

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
    def z_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """Z's stored entries row by row (CSR indices and data). For one term of k columns each row holds
        exactly k entries, so these reshape to n x k: the columns g_i k + j and the values x_i."""
        Z = self.Z.tocsr()
        return Z.indices.copy(), Z.data.copy()

    @cached_property
    def term_entries(self) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """For each term, the columns of Z that row i uses in it, :math:`s + g_i k + j` (n x k), and their
        values :math:`x_i` (n x k); None if some row does not store exactly k entries in each term."""
        entries = []
        for term in self.terms:
            block = self.Z[:, term.start:term.start + len(term.levels) * term.k].tocsr()
            if block.nnz != self.nobs * term.k:
                return None
            block.sort_indices()
            entries.append(((block.indices + term.start).reshape(-1, term.k), block.data.reshape(-1, term.k)))
        return entries

    @cached_property
    def terms_layout(self) -> "blocked.Layout | None":
        """For several terms, where their entries sit in Z and A (:class:`glmmteach.blocked.Layout`); None for
        one term, or when some row does not store exactly k entries in each term."""
        if len(self.terms) < 2 or self.term_entries is None:
            return None
        return blocked.Layout.of([columns for columns, _ in self.term_entries], [t.start for t in self.terms],
                                 [len(t.levels) * t.k for t in self.terms], self.q)

    @property
    def zero_inflated(self) -> bool:
        """Whether the model has a zero-inflation part (a ``ziformula`` other than ``~ 0``)."""
        return self.X_zi.shape[1] > 0

    def zeta(self, beta_zi: np.ndarray) -> np.ndarray | None:
        """The zero-inflation linear predictor :math:`\\zeta = X_{zi}\\beta_{zi}`, logit of the structural-zero
        probability of every observation; None for a model without zero inflation."""
        return self.X_zi @ np.asarray(beta_zi, float) if self.zero_inflated else None

    def variables(self) -> list[str]:
        """The columns the model uses: the formula's, then the zero-inflation and dispersion formulas'."""
        names = list(self.formula.variables())
        for extra in (self.zi_formula, self.disp_formula):
            names += [v for v in (extra.variables() if extra is not None else []) if v not in names]
        return names

    def phi(self, disp: np.ndarray) -> np.ndarray:
        """The dispersion of every observation, :math:`\\phi_i = \\exp(c\\,(X_d\\,\\beta_d)_i)` (1 without a
        dispersion parameter): always an array of length N, even when all its values are equal."""
        if not self.X_disp.shape[1]:
            return np.ones(self.nobs)
        if self.disp_formula is None:               # one phi for all: computed once
            return np.full(self.nobs, np.exp(self.disp_scale * float(np.asarray(disp, float)[0])))
        return np.exp(self.disp_scale * (self.X_disp @ np.asarray(disp, float)))

    def disp_gradient(self, d_log_phi: np.ndarray) -> np.ndarray:
        """The gradient in the dispersion coefficients from the derivatives in each :math:`\\log\\phi_i`:
        :math:`c\\,X_d^\\top\\,\\partial/\\partial\\log\\phi`."""
        return self.disp_scale * (self.X_disp.T @ d_log_phi)

    def disp_start(self, phi: float) -> np.ndarray:
        """The dispersion coefficients of one phi for every observation: least squares of
        :math:`\\log\\phi / c` on :math:`X_d` (the intercept alone when X_d has one)."""
        target = np.full(self.nobs, np.log(phi) / self.disp_scale)
        return np.linalg.lstsq(self.X_disp, target, rcond=None)[0]

    @property
    def disp_labels(self) -> list[str]:
        """The names of the dispersion coefficients in psi: ``log(sigma)``, or with a ``dispformula`` glmmTMB's
        ``d~(Intercept)``, ``d~day82``, ... (``disp_names`` without the prefix, as ``fixef(m)$disp``)."""
        return self.disp_names if self.disp_formula is None else [f"d~{name}" for name in self.disp_names]

    def theta_slices(self) -> list[slice]:
        """Where each term's entries sit in theta."""
        ends = np.cumsum([0] + [t.n_theta for t in self.terms])
        return [slice(a, b) for a, b in zip(ends[:-1], ends[1:])]

    def templates(self, theta: np.ndarray) -> list[np.ndarray]:
        """Each term's k x k template :math:`T(\\theta)`, made by its covariance structure."""
        theta = np.asarray(theta, float)
        return [t.structure.template(theta[s]) for t, s in zip(self.terms, self.theta_slices())]

    def Lambda(self, theta: np.ndarray) -> sp.csc_matrix:
        """The relative covariance factor: block diagonal, each term's template T repeated for its L levels.
        The entries of T that the structure may fill (its ``pattern``) go to the positions precomputed by
        :func:`_index_lambda`, pattern entry by entry, level by level."""
        return self._repeat_templates(self.templates(theta))

    def dLambda(self, theta: np.ndarray) -> list[sp.csc_matrix]:
        """:math:`\\partial\\Lambda_\\theta/\\partial\\theta_j` for each j: the term's :math:`\\partial T/\\partial\\theta_j`
        repeated for its levels, zero elsewhere."""
        theta, out = np.asarray(theta, float), []
        for i, (term, part) in enumerate(zip(self.terms, self.theta_slices())):
            for dT in term.structure.dtemplate(theta[part]):
                out.append(self._repeat_templates([dT if j == i else None for j in range(len(self.terms))]))
        return out

    def _repeat_templates(self, templates: list) -> sp.csc_matrix:
        values = [np.repeat(T[t.structure.pattern] if T is not None else np.zeros(len(t.structure.pattern[0])),
                            len(t.levels)) for t, T in zip(self.terms, templates)]
        data = np.concatenate(values) if values else np.zeros(0)
        return sp.csc_matrix((data, (self.lambda_rows, self.lambda_cols)), shape=(self.q, self.q))

    def Z_dLambda(self, theta: np.ndarray) -> list[sp.csc_matrix]:
        """:math:`Z\\,\\partial\\Lambda_\\theta/\\partial\\theta_j` for each j (kept when every structure is linear
        in theta, as its derivatives are then constants)."""
        if all(t.structure.linear for t in self.terms):
            if self._z_dlambda is None:
                self._z_dlambda = [(self.Z @ E).tocsc() for E in self.dLambda(theta)]
            return self._z_dlambda
        return [(self.Z @ E).tocsc() for E in self.dLambda(theta)]

    def theta_names(self) -> list[str]:
        return [name for t in self.terms for name in t.structure.theta_names(t.group)]

    def theta_lower_bounds(self) -> np.ndarray:
        """Each structure's bounds (SDs >= 0)."""
        return np.concatenate([t.structure.lower_bounds() for t in self.terms] or [np.zeros(0)])

    # --- new data (predict) ------------------------------------------------------
    def check_newdata(self, newdata, population: bool = False) -> pd.DataFrame:
        """``newdata`` must be a DataFrame with every column the model's predictors use (the grouping
        columns only when ``population`` is False); its text/categorical columns may only hold levels
        seen in fitting (the grouping columns may hold new levels: they get the population level)."""
        if not isinstance(newdata, pd.DataFrame):
            raise TypeError(f"newdata must be a pandas DataFrame; got {type(newdata).__name__}")
        if population:
            needed = Formula("", "1", self.formula.fixed, self.formula.offsets, ()).variables()
        else:
            response = set(Formula("", self.formula.response, "1", (), ()).variables())
            needed = [v for v in self.formula.variables() if v not in response]
        if self.zi_formula is not None:
            needed += [v for v in self.zi_formula.variables() if v not in needed and v != "1"]
        missing = [v for v in needed if v not in newdata.columns]
        if missing:
            raise ValueError(f"newdata has no column {missing[0]!r}, which the model uses; "
                             f"it needs the columns: {', '.join(needed)}")
        for name, levels in self.factor_levels.items():
            unseen = sorted(set(label_text(newdata[name].dropna())) - set(map(str, levels)))
            if unseen:
                raise ValueError(f"newdata column {name!r} has the level {unseen[0]!r}, which was not in the "
                                 f"data of the fit; allowed levels: {', '.join(map(str, levels))}")
        return newdata

    def new_X(self, newdata: pd.DataFrame) -> np.ndarray:
        """The fixed-effects matrix for ``newdata`` (same columns as ``X``); a row with a missing value
        in a column it uses is all NaN (R's predict gives NA there)."""
        return _rows_with_missing_as_nan(newdata, self._fixed_columns(),
                                         lambda rows: np.asarray(self.fixed_spec.get_model_matrix(
                                             rows.rename(columns=self.aliases), context=_FORMULAIC_CONTEXT), float),
                                         len(self.x_names))

    def new_X_zi(self, newdata: pd.DataFrame) -> np.ndarray:
        """The zero-inflation matrix for ``newdata`` (the columns of ``X_zi``; rows with a missing value NaN)."""
        if not self.zero_inflated:
            return np.zeros((len(newdata), 0))
        columns = [v for v in self.zi_formula.variables() if v not in ("", "1")]
        return _rows_with_missing_as_nan(newdata, columns,
                                         lambda rows: np.asarray(self.zi_spec.get_model_matrix(
                                             rows.rename(columns=self.aliases), context=_FORMULAIC_CONTEXT), float),
                                         len(self.zi_names))

    def new_offset(self, newdata: pd.DataFrame) -> np.ndarray:
        return sum((np.asarray(_evaluate(o, newdata), float) for o in self.formula.offsets),
                   np.zeros(len(newdata)))

    def new_Z(self, newdata: pd.DataFrame) -> sp.csr_matrix:
        """Z for ``newdata``, with the columns of ``Z``; a level of a grouping factor not seen in fitting
        gets a row of zeros, that is the population level (as glmmTMB's predict with allow.new.levels)."""
        blocks = []
        for term in self.terms:
            codes = _new_group_codes(term, newdata)
            values = np.asarray(term.spec.get_model_matrix(newdata.rename(columns=self.aliases),
                                                           context=_FORMULAIC_CONTEXT), float)
            known = np.flatnonzero(codes >= 0)
            rows = np.repeat(known, term.k)
            cols = (codes[known, None] * term.k + np.arange(term.k)[None, :]).ravel()
            blocks.append(sp.csr_matrix((values[known].ravel(), (rows, cols)),
                                        shape=(len(newdata), len(term.levels) * term.k)))
        return sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((len(newdata), 0))

    def new_term_columns(self, term: ReTerm, newdata: pd.DataFrame) -> np.ndarray:
        """The k columns of a random-effect term (``1``, ``t``, ...) evaluated on ``newdata``."""
        return np.asarray(term.spec.get_model_matrix(newdata.rename(columns=self.aliases),
                                                     context=_FORMULAIC_CONTEXT), float)

    def new_trials(self, newdata: pd.DataFrame) -> np.ndarray:
        """The binomial trials of ``newdata``: successes + failures of a ``cbind()`` response, 1 for a 0/1
        response."""
        cbind = _cbind_arguments(self.formula.response)
        if cbind is not None:
            return sum(np.broadcast_to(np.asarray(_evaluate(e, newdata), float), (len(newdata),)) for e in cbind)
        if not np.all(self.n == 1):
            raise ValueError("this binomial fit has a proportion response with weights= the trials, which new "
                             "data cannot give; write the response as cbind(successes, failures)")
        return np.ones(len(newdata))

    def _fixed_columns(self) -> list[str]:
        return [v for v in Formula("", "1", self.formula.fixed, (), ()).variables() if v != "1"]

    def covariances(self, theta: np.ndarray) -> list[np.ndarray]:
        """:math:`\\Sigma = T T^\\top` for each term."""
        return [T @ T.T for T in self.templates(theta)]


def build(formula: str | Formula, data: pd.DataFrame, family: families.Family,
          weights=None, ziformula: str | None = None, dispformula: str | None = None) -> Design:
    """Build the :class:`Design` of ``formula`` on ``data``, with the zero-inflation model ``ziformula``
    (one-sided, fixed effects: ``"~ 1"``, ``"~ x"``) and the dispersion model ``dispformula`` (``"~ day"``);
    missing values are dropped with a warning."""
    parsed = formula if isinstance(formula, Formula) else parse(formula)
    zi_formula, disp_formula = _zi_formula(ziformula, family), _disp_formula(dispformula, family)
    data, complete = _complete_cases(parsed, _check_data(data), weights, zi_formula, disp_formula)
    weights = data.pop("(weights)").to_numpy(float) if "(weights)" in data else np.ones(len(data))
    y, n, weights = _response(parsed.response, data, family, weights)
    aliases = _aliases(parsed, data)
    X, x_names, fixed_spec = _fixed_matrix(parsed.fixed, data, aliases)
    offset = np.zeros(len(data))
    for expr in parsed.offsets:
        values = np.broadcast_to(np.asarray(_evaluate(expr, data), float), offset.shape)
        _check_finite_result(values, f"offset({expr})", data)
        offset = offset + values
    Z, terms = _random_matrix(parsed.random, data, aliases)
    X_zi, zi_names, zi_spec = (None, [], None) if zi_formula is None else _model_matrix(
        zi_formula.fixed, data, f"the zero-inflation formula {zi_formula.text!r}", aliases)
    factor_levels = _factor_levels(parsed.fixed, data)
    if zi_formula is not None:
        factor_levels.update(_factor_levels(zi_formula.fixed, data))
    disp = {}
    if disp_formula is not None:
        X_disp, disp_names, _ = _model_matrix(disp_formula.fixed, data, f"the dispersion formula {disp_formula.text!r}",
                                              aliases)
        _check_full_rank(X_disp, disp_names, "dispersion formula's")
        disp = dict(X_disp=X_disp, disp_names=disp_names, disp_formula=disp_formula, disp_scale=family.disp_scale)
    design = Design(parsed, family, y, n, X, x_names, Z, offset, weights, terms, parsed.response,
                    fixed_spec, factor_levels=factor_levels, aliases=aliases,
                    X_zi=X_zi, zi_names=zi_names, zi_formula=zi_formula, zi_spec=zi_spec, complete=complete, **disp)
    _index_lambda(design)
    return design


def _zi_formula(ziformula, family: families.Family) -> Formula | None:
    """The parsed ``ziformula``: None without one (None or ``"~ 0"``, glmmTMB's default); an error for a family
    that cannot have structural zeros."""
    if ziformula is None:
        return None
    parsed = parse_one_sided(ziformula, "ziformula")
    if parsed.fixed.replace(" ", "") in ("0", "-1", "1-1", "+0"):
        return None
    if not family.zero_inflation:
        allowed = [f.name for f in families.FAMILIES.values() if f.zero_inflation]
        raise ValueError(f"ziformula (structural zeros) is for the {', '.join(allowed[:-1])} and {allowed[-1]} "
                         f"families, not {family.name}: a zero-inflated {family.name} model is not available")
    return parsed


def _disp_formula(dispformula, family: families.Family) -> Formula | None:
    """The parsed ``dispformula``: None without one (None or ``"~ 1"``, glmmTMB's default: one phi for all); an
    error for a family without a dispersion parameter."""
    if dispformula is None:
        return None
    parsed = parse_one_sided(dispformula, "dispformula")
    if not family.has_phi:
        allowed = [f.name for f in families.FAMILIES.values() if f.has_phi]
        raise ValueError(f"the {family.name} family has no dispersion parameter, so it takes no dispformula "
                         f"({dispformula!r}); dispersion formulas are for the families "
                         f"{', '.join(allowed[:-1])} and {allowed[-1]}")
    if parsed.fixed.replace(" ", "") == "1":
        return None
    return parsed


def _check_data(data) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame; got {type(data).__name__}. "
                        "Load one with gt.datasets.load(...) or pandas.read_csv(...), or convert it "
                        "with pandas.DataFrame(...).")
    if len(data) == 0:
        raise ValueError("data has no rows (0 observations); a model needs at least one row of data")
    return data


def _where(parsed: Formula, name: str) -> str:
    """Which part of the formula uses ``name``, for error messages."""
    uses = lambda piece: Formula("", piece, "1", (), ()).variables()    # noqa: E731
    if name in uses(parsed.response):
        return "in the response"
    for term in parsed.random:
        if name in term.group.split(":"):
            return f"as the grouping factor of ({term.expr} | {term.group})"
        if name in uses(term.expr):
            return f"in the random-effect term ({term.expr} | {term.group})"
    for expr in parsed.offsets:
        if name in uses(expr):
            return f"in offset({expr})"
    return "in the fixed effects"


def _unknown_column(name: str, where: str, formula_text: str, data: pd.DataFrame) -> ValueError:
    close = difflib.get_close_matches(name, [str(c) for c in data.columns], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"unknown column {name!r} {where} of the formula {formula_text!r}; the data has the "
                      f"columns: {', '.join(map(str, data.columns))}.{hint}")


def _complete_cases(parsed: Formula, data: pd.DataFrame, weights, zi_formula: Formula | None = None,
                    disp_formula: Formula | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Keep the columns the formula (and the zero-inflation and dispersion formulas) uses; drop incomplete rows
    as R's na.omit does, with a warning. The index of ``data`` is kept, so that messages name the rows as the
    user sees them. Returns those rows and columns, and which rows of ``data`` they are (a boolean mask)."""
    for name in parsed.variables():
        if name not in data.columns:
            raise _unknown_column(name, _where(parsed, name), parsed.text, data)
    variables = list(parsed.variables())
    for extra, where in ((zi_formula, "in the zero-inflation part"), (disp_formula, "in the dispersion formula")):
        for name in extra.variables() if extra is not None else []:
            if name not in data.columns:
                raise _unknown_column(name, where, extra.text, data)
            if name not in variables:
                variables.append(name)
        if name not in variables:
            variables.append(name)
    used = data[variables].copy()
    if weights is not None:
        used["(weights)"] = _weights_column(weights, data)
    incomplete = used.isna().any(axis=1).to_numpy()
    if incomplete.any():
        counts = used.isna().sum()
        where = ", ".join(f"{name if name != '(weights)' else 'weights'}: {count}"
                          for name, count in counts[counts > 0].items())
        warnings.warn(f"{incomplete.sum()} of {len(used)} rows had missing values and were dropped "
                      f"(as R's na.omit); missing values by column: {where}", UserWarning,
                      stacklevel=caller_stacklevel())
        used = used.loc[~incomplete]
        if len(used) == 0:
            raise ValueError(f"no complete rows are left after dropping missing values (missing values by "
                             f"column: {where})")
    for name in used.columns:
        column = used[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            values = column.to_numpy(float)
            if np.isinf(values).any():
                position = int(np.argmax(np.isinf(values)))
                what = "the weights" if name == "(weights)" else f"column {name!r}"
                raise ValueError(f"{what} has an infinite value ({values[position]}) in row "
                                 f"{used.index[position]}; the values a "
                                 "model uses must be finite numbers (drop or correct that row)")
        elif isinstance(column.dtype, pd.CategoricalDtype) and _has_unused_levels(column):
            used[name] = column.cat.remove_unused_categories()   # as R's drop.unused.levels
    for name in _factor_columns(parsed):
        if name in used and _is_whole_float(used[name]):
            used[name] = used[name].astype("int64")      # factor(day) with day 82.0: level "82", as R
    return used, ~incomplete


def _has_unused_levels(column: pd.Series) -> bool:
    """Whether a categorical column has a category that no row takes."""
    codes = column.array.codes
    return not np.bincount(codes[codes >= 0], minlength=len(column.dtype.categories)).all()


def caller_stacklevel() -> int:
    """The stacklevel of the first frame outside glmmteach, so that a warning points at the user's line."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == package:
        frame, level = frame.f_back, level + 1
    return level


def _is_whole_float(column: pd.Series) -> bool:
    return pd.api.types.is_float_dtype(column) and bool(np.all(column.to_numpy() == np.round(column.to_numpy())))


def _factor_columns(parsed: Formula) -> set:
    """Columns that the formula wraps in factor() / C(). (Grouping columns keep their type: their level
    names are their values as text, the same in fitting and in predict's newdata.)"""
    names = set(re.findall(r"(?<![\w.])C\(\s*([A-Za-z_][\w.]*)\s*\)",
                           " ".join([parsed.fixed, *(_to_formulaic(t.expr) for t in parsed.random)])))
    return names - {name for t in parsed.random for name in t.group.split(":")}


def _weights_column(weights, data: pd.DataFrame) -> np.ndarray:
    name = "weights"
    if isinstance(weights, str):
        if weights not in data.columns:
            close = difflib.get_close_matches(weights, [str(c) for c in data.columns], n=1)
            raise ValueError(f"unknown weights column {weights!r}; weights= must be a column of the data "
                             f"(the data has the columns: {', '.join(map(str, data.columns))}) or one number "
                             f"per row." + (f" Did you mean {close[0]!r}?" if close else ""))
        name, weights = f"weights column {weights!r}", data[weights]
    if isinstance(weights, pd.Series) and not (pd.api.types.is_numeric_dtype(weights)
                                               and not pd.api.types.is_bool_dtype(weights)):
        raise ValueError(f"the {name} is not numeric (text, categorical or true/false); weights must be "
                         f"numbers (for a binomial "
                         "proportion: the number of trials of each row)")
    try:
        weights = np.asarray(weights, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"the {name} must be numbers, one per row of the data (for a binomial proportion: "
                         "the number of trials of each row)") from None
    if weights.shape != (len(data),):
        raise ValueError(f"the {name} must have one value per row of the data ({len(data)} rows); got "
                         f"{weights.size} value(s) of shape {weights.shape}")
    negative = weights < 0
    if negative.any():
        row = data.index[int(np.argmax(negative))]
        raise ValueError(f"the {name} must be >= 0; found {weights[np.argmax(negative)]:g} in row {row}")
    return weights


def _check_finite_result(values: np.ndarray, name: str, data: pd.DataFrame, what: str = "") -> None:
    """A transformation that gives -inf/inf/NaN (log(0), sqrt(-1), ...) must not reach the fit."""
    bad = ~np.isfinite(values)
    if bad.any():
        position = int(np.argmax(bad))
        raise ValueError(f"{what or repr(name)} is not finite ({values[position]}) in row {data.index[position]}; "
                         f"a transformation such as log() or sqrt() was given a value outside its domain "
                         f"(log of a value <= 0, sqrt of a negative value, ...). Transform differently or "
                         f"drop those rows.")


def _evaluate(expr: str, data: pd.DataFrame):
    """Evaluate an arithmetic expression of columns, such as ``n - germ`` or ``log(wt)``.
    ``^`` is R's power, as in ``y^2``. A bare column name is taken as it is (even ``yield``), and as in R
    a bare name is the column even where a function has that name (``log(log)``: the log of column log)."""
    if expr in data.columns:
        if not pd.api.types.is_numeric_dtype(data[expr]):
            raise ValueError(f"column {expr!r} is text or categorical; it must be numeric here")
        return data[expr].to_numpy()
    dotted = {name: f"_dotted_column_{i}" for i, name in enumerate(sorted(bare_names(expr) & set(data.columns)))
              if "." in name}                          # R's names such as body.mass are not Python's
    try:
        tree = ast.parse(rename_bare(expr, dotted).replace("^", "**"), mode="eval")
    except SyntaxError as error:
        raise FormulaError(f"cannot read the expression {expr!r}: {error.msg}") from None
    data = data.rename(columns=dotted)
    functions = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    functions |= {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}   # np. in np.log
    calls = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in functions}
    not_here = calls - set(_SAFE_FUNCTIONS)
    if not_here:
        raise FormulaError(f"{sorted(not_here)[0]}() cannot be used in {expr!r} (a response or an offset); "
                           f"the functions allowed there are: "
                           f"{', '.join(f for f in _SAFE_FUNCTIONS if f != 'np')} and numpy's np.*")
    unknown = names - set(data.columns) - set(_SAFE_FUNCTIONS)
    if unknown:
        raise ValueError(f"unknown column {sorted(unknown)[0]!r} in {expr!r}; "
                         f"the data has the columns: {', '.join(map(str, data.columns))}")
    columns = {name: data[name].to_numpy() for name in names & set(data.columns)}
    for name, column in columns.items():
        if not pd.api.types.is_numeric_dtype(column):
            original = {alias: name for name, alias in dotted.items()}.get(name, name)
            raise ValueError(f"column {original!r} is text or categorical; {expr!r} needs numbers")
    tree = _ColumnLookups(functions, set(columns)).visit(tree)
    try:
        with np.errstate(all="ignore"):
            return eval(compile(ast.fix_missing_locations(tree), expr, "eval"),
                        {"__builtins__": {}, **_SAFE_FUNCTIONS}, {"__columns__": columns})
    except Exception as error:     # noqa: BLE001 - report it in the formula's terms
        raise FormulaError(f"cannot evaluate {expr!r}: {error}") from None


class _ColumnLookups(ast.NodeTransformer):
    """Each bare name of a column becomes ``__columns__["name"]``; names that are called (``log`` in
    ``log(x)``) or hold an attribute (``np`` in ``np.log``) stay as they are."""

    def __init__(self, functions: set, columns: set):
        self.functions, self.columns = functions, columns

    def visit_Name(self, node: ast.Name):
        if id(node) in self.functions or node.id not in self.columns:
            return node
        lookup = ast.Subscript(ast.Name("__columns__", ast.Load()), ast.Constant(node.id), ast.Load())
        return ast.copy_location(lookup, node)


def _response(expr: str, data: pd.DataFrame, family: families.Family, weights: np.ndarray):
    """The response y and trials n. Binomial: ``cbind(s, f)`` gives y = s, n = s + f; a proportion
    with ``weights`` gives y = p w, n = w (then the weights are the trials, not prior weights)."""
    cbind = _cbind_arguments(expr)
    if cbind is not None:
        if not family.trials:
            raise ValueError(f"the response {expr!r}: cbind(successes, failures) is for the binomial family, "
                             f"not {family.name}; choose family='binomial' or a single response column")
        successes, failures = (np.broadcast_to(np.asarray(_evaluate(e, data), float), (len(data),))
                               for e in cbind)
        for part, values in zip(cbind, (successes, failures)):
            _check_finite_result(values, part, data, what=f"the response {expr!r}: {part}")
        negative = failures < 0
        if negative.any():
            row = int(np.argmax(negative))
            raise ValueError(f"the response {expr!r} has more successes than trials in row {data.index[row]}: "
                             f"the failures {cbind[1]!r} = {failures[row]:g} must be >= 0 (cbind(successes, "
                             f"failures) needs failures = trials - successes, 0 or more)")
        y, n = successes, successes + failures
        family.check_response(y, n, name=expr)
        return y, n, weights
    text = [name for name in Formula("", expr, "1", (), ()).variables()
            if name in data.columns and not pd.api.types.is_numeric_dtype(data[name])]
    if text:
        raise ValueError(f"the response {expr!r} uses the text or categorical column {text[0]!r}; the response "
                         f"must be numeric (for the binomial family: 0/1, a proportion with weights= the "
                         f"trials, or cbind(successes, failures))")
    y = np.broadcast_to(np.asarray(_evaluate(expr, data), dtype=float), (len(data),)).copy()
    if np.any(~np.isfinite(y)):
        row = int(np.argmax(~np.isfinite(y)))
        raise ValueError(f"the response {expr!r} is not finite in row {data.index[row]} (value {y[row]}); "
                         f"a transformation such as log() or sqrt() was given a value outside its domain")
    if family.trials:
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
        call = ast.parse(expr.replace("^", "**"), mode="eval").body
    except SyntaxError as error:
        raise FormulaError(f"cannot read the response {expr!r}: {error.msg}") from None
    if len(call.args) != 2 or call.keywords:
        raise FormulaError(f"cbind() takes two columns, successes and failures; got {expr!r}")
    return [ast.unparse(a) for a in call.args]


_ANSI = re.compile(r"\x1b\[[0-9;]*m|[⧛⧚]")


def _aliases(parsed: Formula, data: pd.DataFrame) -> dict[str, str]:
    """A new name for each column named like a formula function (``I``, ``center``, ``log``, ...) that the
    fixed part or a random-effect term uses bare. R reads a bare name as the column and only a call as
    the function; formulaic would find the column for both, so it sees the column by another name."""
    used = set().union(*(bare_names(e) for e in [parsed.fixed, *(_to_formulaic(t.expr) for t in parsed.random)]))
    aliases = {}
    for name in sorted(used & FUNCTIONS & set(map(str, data.columns))):
        alias = f"{name.replace('.', '_')}_column"
        while alias in data.columns:
            alias += "_"
        aliases[name] = alias
    return aliases


def _restore(text: str, aliases: dict[str, str]) -> str:
    """``text`` with the aliases of :func:`_aliases` turned back into the columns' own names."""
    for name, alias in aliases.items():
        text = re.sub(rf"(?<![\w.]){re.escape(alias)}(?![\w.])", name, text)
    return text


def _model_matrix(expr: str, data: pd.DataFrame, part: str, aliases: dict | None = None):
    """The model matrix of ``expr``, its R column names and formulaic's specification for new data.
    A plain formula (:mod:`glmmteach.plainmatrix`) is built directly and its specification made only when
    needed; any other by formulaic, its errors re-worded and non-finite values reported by column.
    Columns named like functions are passed to formulaic under their ``aliases``."""
    aliases = aliases or {}
    plain = None if aliases else plain_matrix(expr, data)
    if plain is not None:
        return plain[0], plain[1], DeferredSpec(lambda: _formulaic_matrix(expr, data, part, aliases)[2])
    return _formulaic_matrix(expr, data, part, aliases)


def _formulaic_matrix(expr: str, data: pd.DataFrame, part: str, aliases: dict):
    _check_numeric_arguments(expr, data, part)
    try:
        with np.errstate(all="ignore"):            # log(0) and the like are reported below, by column
            matrix = model_matrix(rename_bare(expr, aliases), data.rename(columns=aliases), na_action="ignore",
                                  context=_FORMULAIC_CONTEXT)
    except Exception as error:  # noqa: BLE001 - formulaic's own error types differ between versions
        message = _restore(_ANSI.sub("", str(error)).strip(), aliases)
        raise FormulaError(f"cannot build {part} {expr!r} from the data: {message}") from None
    values = np.asarray(matrix, dtype=float)
    names = [r_name(_restore(c, aliases)) for c in matrix.columns]
    for j, name in enumerate(names):
        _check_finite_result(values[:, j], name, data, what=f"the column {name!r} of {part}")
    return values, names, matrix.model_spec.update(na_action="raise")


def _check_numeric_arguments(expr: str, data: pd.DataFrame, part: str) -> None:
    """``log(gen)`` or ``I(gen^2)`` on a text column: say so, instead of a numpy error."""
    for match in re.finditer(r"(?<![\w.])([A-Za-z_][\w.]*)\s*\(", expr):
        function = match.group(1)
        if function == "C":
            continue
        depth, end = 1, match.end()
        while end < len(expr) and depth:
            depth += {"(": 1, ")": -1}.get(expr[end], 0)
            end += 1
        inside = expr[match.end():end - 1]
        for name in Formula("", inside, "1", (), ()).variables():
            if name in data.columns and not pd.api.types.is_numeric_dtype(data[name]):
                shown = f"{function}({inside})".replace("**", "^")
                raise ValueError(f"column {name!r} is text or categorical, but {shown} in {part} "
                                 f"needs numbers; use {name!r} on its own as a factor, or a numeric column")


def _fixed_matrix(fixed: str, data: pd.DataFrame, aliases: dict | None = None):
    """X with treatment contrasts and R's column names; formulaic does the expansion. The columns must
    be linearly independent (R would report NA for an aliased one; we say which it is)."""
    X, names, spec = _model_matrix(fixed, data, "the fixed effects", aliases)
    _check_full_rank(X, names)
    return X, names, spec


def _check_full_rank(X: np.ndarray, names: list[str], part: str = "fixed effects") -> None:
    n, p = X.shape
    if p == 0:
        return
    if n < p:
        raise ValueError(f"the {part} have {p} coefficients ({', '.join(names)}) but the data has only "
                         f"{n} complete rows; a model needs at least as many rows as coefficients")
    norms = np.linalg.norm(X, axis=0)
    if _clearly_full_rank(X, norms):
        return
    R = np.linalg.qr(X, mode="r")
    aliased = [j for j in range(p) if abs(R[j, j]) <= 1e-7 * max(norms[j], 1e-300) or norms[j] == 0]
    if aliased:
        j = aliased[0]
        why = ("is zero in every row" if norms[j] == 0 else
               "is a linear combination of the columns before it" if j else "is zero in every row")
        raise ValueError(f"the {part} column {names[j]!r} {why}, so its coefficient cannot be "
                         f"estimated (R would report NA for it). The columns are: {', '.join(names)}. Remove "
                         f"a term, or check the data: often a combination of factor levels has no rows.")


def _clearly_full_rank(X: np.ndarray, norms: np.ndarray) -> bool:
    """The quick check before the QR decomposition: :math:`X^\\top X = LL^\\top` (a p x p Cholesky factor,
    cheaper than the QR of the N x p X) has :math:`L_{jj} = |R_{jj}|`, the part of column j that the columns
    before it do not explain; when every one is above 1e-5 of its column's norm, 100 times the QR test's
    limit and far above the rounding of the squared matrix, no column is aliased."""
    if np.any(norms == 0):
        return False
    try:
        L = np.linalg.cholesky(X.T @ X)
    except np.linalg.LinAlgError:
        return False
    return bool(np.all(np.diag(L) > 1e-5 * norms))


def _factor_levels(fixed: str, data: pd.DataFrame) -> dict:
    """Levels of each column the fixed part uses as a factor (text, categorical, or inside factor())."""
    names = Formula("", "1", fixed, (), ()).variables()
    wrapped = set(re.findall(r"(?<![\w.])C\(\s*([A-Za-z_][\w.]*)\s*\)", fixed))
    levels = {}
    for name in names:
        if name in data.columns and (name in wrapped or not pd.api.types.is_numeric_dtype(data[name])):
            if pd.api.types.is_bool_dtype(data[name]):
                continue
            levels[name] = _levels(data[name])
    return levels


def _rows_with_missing_as_nan(data: pd.DataFrame, columns: list[str], matrix, p: int) -> np.ndarray:
    complete = ~data[columns].isna().any(axis=1).to_numpy() if columns else np.ones(len(data), bool)
    out = np.full((len(data), p), np.nan)
    if complete.any():
        out[complete] = matrix(data.loc[complete])
    return out


def _random_matrix(random: tuple[RandomTerm, ...], data: pd.DataFrame, aliases: dict | None = None):
    """Z = [Z_1 ... Z_m], one block per term, columns level-major: (level 1: k columns), (level 2), ..."""
    blocks, terms, start = [], [], 0
    for term in random:
        codes, levels = _grouping(term.group, data)
        values, names, spec = _model_matrix(_to_formulaic(term.expr), data,
                                            f"the random-effect term ({term.expr} | {term.group})", aliases)
        k, n = values.shape[1], len(data)
        if k == 0:
            raise FormulaError(f"the random-effect term ({term.expr} | {term.group}) has no columns; write "
                               f"(1 | {term.group}) for a random intercept")
        if term.structure == "ar1":
            _check_time_factor(term, data, names, values, codes, levels)
        rows = np.repeat(np.arange(n), k)
        cols = (codes[:, None] * k + np.arange(k)[None, :]).ravel()
        blocks.append(sp.csc_matrix((values.ravel(), (rows, cols)), shape=(n, len(levels) * k)))
        terms.append(ReTerm(term.group, names, levels, start, spec, covstruct.get(term.structure, names)))
        start += len(levels) * k
    Z = sp.hstack(blocks, format="csc") if blocks else sp.csc_matrix((len(data), 0))
    return Z, terms


def _check_time_factor(term: RandomTerm, data: pd.DataFrame, names: list[str], values: np.ndarray,
                       codes: np.ndarray, levels: list[str]) -> None:
    """``ar1(day + 0 | fish)``: the columns are the indicators of one factor whose levels are the time order
    (one step apart, as glmmTMB assumes), and each unit has each time at most once."""
    shown = f"ar1({term.expr} | {term.group})"
    variables = Formula("", term.expr, "1", (), ()).variables()
    variables = [v for v in variables if v not in ("0", "1")]
    fix = f"ar1({variables[0] if len(variables) == 1 else 'day'} + 0 | {term.group})"
    if len(variables) != 1:
        raise FormulaError(f"{shown} needs one time factor and nothing else, as {fix}; it uses "
                           f"{', '.join(map(repr, variables)) or 'no column'}")
    time = variables[0]
    is_factor = re.search(rf"(?<![\w.])(?:as\.)?(?:factor|C)\s*\(\s*{re.escape(time)}\s*\)", term.expr)
    column = data[time]
    if not is_factor and (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
        values_seen = ", ".join(map(str, sorted(column.unique())[:5]))
        raise ValueError(f"{shown}: the time {time!r} is a numeric column ({values_seen}, ...), but ar1() needs "
                         f"a factor whose levels are the times in order, one step apart (as glmmTMB: \"ar1() "
                         f"expects a single, factor variable as the time component\"). Make it one, "
                         f"data[{time!r}] = pd.Categorical(data[{time!r}]), or write ar1(factor({time}) + 0 | "
                         f"{term.group})")
    if "(Intercept)" in names:
        raise FormulaError(f"{shown} has an intercept, and an autoregressive effect over an intercept and "
                           f"contrasts is not meaningful (glmmTMB warns so and fits a random intercept); "
                           f"write {fix}: one effect per level of {time!r}")
    if not is_factor and not isinstance(column.dtype, pd.CategoricalDtype):
        text = [str(v) for v in sorted(column.dropna().unique())]
        numbers = pd.to_numeric(pd.Series(text), errors="coerce")
        if numbers.notna().all() and list(numbers) != sorted(numbers):
            raise ValueError(f"{shown}: the times {time!r} are text that reads as numbers, and as text they sort "
                             f"as {', '.join(text)}, which is not their order in time. ar1() takes the order of "
                             f"the levels: make {time!r} numbers and then a factor, data[{time!r}] = "
                             f"pd.Categorical(pd.to_numeric(data[{time!r}])), or a Categorical with the levels "
                             f"in time order")
    step = values.argmax(axis=1)
    pairs = pd.DataFrame({"unit": codes, "time": step})
    repeated = pairs.duplicated()
    if repeated.any():
        i = int(np.flatnonzero(repeated.to_numpy())[0])
        count = int(((pairs.unit == codes[i]) & (pairs.time == step[i])).sum())
        raise ValueError(f"{shown}: {term.group} {levels[codes[i]]!r} has {count} rows at {time} "
                         f"{str(data[time].iloc[i])!r}; ar1() needs at most one observation per {term.group} and time "
                         f"(each {term.group}'s effects follow one another in time). Average the repeats, or add "
                         f"a term for them, such as (1 | {term.group}:{time})")


def label_text(column: pd.Series) -> np.ndarray:
    """Text labels of a factor column's values: a whole number reads as R prints it (3.0 reads "3"), so that a
    number 2 and the text "2" give the same label (used to check and match predict's newdata against the levels
    of a factor(day) column, which is made integer for fitting)."""
    column = pd.Series(column)
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return np.array([_whole_number_text(str(v)) for v in column.to_numpy()], dtype=object)
    return column.astype(str).to_numpy(dtype=object)


def _group_labels(group: str, data: pd.DataFrame) -> np.ndarray:
    """Labels of the grouping factor ``group`` (a column or an interaction ``a:b``) in ``data``."""
    columns = group.split(":")
    labels = data[columns[0]].astype(str).to_numpy(dtype=object)
    for name in columns[1:]:
        labels = labels + ":" + data[name].astype(str).to_numpy(dtype=object)
    return labels


def _new_group_codes(term: ReTerm, newdata: pd.DataFrame) -> np.ndarray:
    """Codes of ``newdata``'s groups among ``term.levels``; -1 for a group not seen in fitting. Numbers
    match as numbers: a group fitted as 3.0 is the group 3 in newdata, and the other way round."""
    columns = term.group.split(":")
    numeric = [pd.api.types.is_numeric_dtype(newdata[c]) and not pd.api.types.is_bool_dtype(newdata[c])
               for c in columns]

    def canonical(level: str) -> str:
        parts = level.split(":")
        if len(parts) != len(columns):
            return level
        return ":".join(_whole_number_text(p) if is_number else p for p, is_number in zip(parts, numeric))

    labels = [label_text(newdata[c]) if is_number else newdata[c].astype(str).to_numpy(dtype=object)
              for c, is_number in zip(columns, numeric)]
    joined = labels[0]
    for more in labels[1:]:
        joined = joined + ":" + more
    position = {}
    for i, level in enumerate(term.levels):
        position.setdefault(canonical(level), i)
    return np.array([position.get(label, -1) for label in joined], dtype=int)


def _whole_number_text(text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if np.isfinite(value) and value == round(value) else text


def _grouping(group: str, data: pd.DataFrame):
    """Integer codes and level names of a grouping factor; ``a:b`` is the interaction of a and b,
    with the levels that occur, ordered by a's levels then b's (as R's ``a:b``)."""
    columns = group.split(":")
    codes, levels = _column_codes(data[columns[0]])
    for name in columns[1:]:                  # number the pairs (level so far, level of the next column)
        more, more_levels = _column_codes(data[name])
        pairs, codes = np.unique(codes * len(more_levels) + more, return_inverse=True)
        levels = [f"{levels[pair // len(more_levels)]}:{more_levels[pair % len(more_levels)]}" for pair in pairs]
    if len(levels) < 2:
        raise ValueError(f"the grouping factor {group!r} has only {len(levels)} level "
                         f"({', '.join(map(repr, levels))}); a random effect needs at least two groups "
                         "(use a fixed effect instead, or drop the term)")
    return codes.ravel().astype(int), levels


def _column_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """The code of each value among the column's levels, as R's factor(): a categorical's categories that
    occur, in its order; else the values sorted (numbers as numbers). Returns the codes and the levels as
    text; the column has no missing values."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        used, codes = np.unique(codes, return_inverse=True)
        return codes.ravel(), [str(c) for c in column.cat.categories[used]]
    uniques = sorted(pd.unique(column.to_numpy()))
    return pd.Index(uniques).get_indexer(column.to_numpy()), [str(v) for v in uniques]


def group_codes(group: str, data: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The integer code of each row's group and the groups' labels, in the order fitting uses (R's
    factor levels), for a grouping factor of new data (one group is allowed here)."""
    columns = group.split(":")
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ValueError(f"newdata has no column {missing[0]!r}, the grouping factor of ({group})")
    if len(columns) == 1:
        levels = _levels(data[columns[0]])
        return pd.Index(levels).get_indexer(_group_labels(group, data)).astype(int), levels
    return _grouping(group, data)


def _levels(column: pd.Series) -> list[str]:
    """Levels as R's factor(): a categorical keeps its order, anything else is sorted (numbers as numbers);
    missing values are no level (:func:`_column_codes` of the values present)."""
    return _column_codes(column.dropna())[1]


def _index_lambda(design: Design) -> None:
    """Precompute the sparsity of Lambda: for each term, entry (r, c) of its structure's pattern sits at
    rows start + l k + r and columns start + l k + c for its levels l = 0, ..., L - 1 (lme4's Lind)."""
    rows, cols = [np.zeros(0, int)], [np.zeros(0, int)]
    for term in design.terms:
        k, L = term.k, len(term.levels)
        base = term.start + np.arange(L) * k
        for r, c in zip(*term.structure.pattern):
            rows.append(base + r)
            cols.append(base + c)
    design.lambda_rows, design.lambda_cols = np.concatenate(rows).astype(int), np.concatenate(cols).astype(int)
