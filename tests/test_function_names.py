"""A column may be named like a formula function (``I``, ``center``, ``log``, ...): as in R, a bare name is
the column and only a call is the function. The reference fits for ``I`` and ``center`` are in
test_reference.py (``column_I``, ``column_center``); here every allowed function name is tried."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import glmmteach as gt
from glmmteach.formula import FUNCTIONS, parse

# Some random fits here are singular (the comparison is between two fits of the same data, both singular)
pytestmark = pytest.mark.filterwarnings("ignore:singular fit:glmmteach.fit.ConvergenceWarning")


def data(seed: int, rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"w": rng.uniform(0.5, 2.0, rows), "x": rng.uniform(1.0, 3.0, rows),
                      "g": np.repeat([f"g{i}" for i in range(6)], rows // 6),
                      "t": rng.uniform(1.0, 4.0, rows)})
    d["y"] = rng.poisson(d.t * np.exp(0.3 + 0.4 * d.w + 0.2 * d.x)).astype(float)
    return d


# Each formula uses the column "w" bare, next to calls of functions, some of the same name.
FORMULAS = ["y ~ w + x", "y ~ w * x + (1 | g)", "y ~ w + log(x) + offset(log(t))", "y ~ x + (w | g)",
            "y ~ w + I(x^2) + exp(x / 3)", "y ~ log(w) + w + sqrt(x)"]


def renamed(formula: str, name: str) -> str:
    """The formula with the bare column w called ``name``; calls keep their function."""
    from glmmteach.formula import rename_bare
    return rename_bare(formula, {"w": name})


def same_fit(a, b, name):
    assert list(b.fixef.index) == [renamed(n, name) if n != "(Intercept)" else n for n in a.fixef.index]
    np.testing.assert_allclose(b.fixef.to_numpy(), a.fixef.to_numpy(), rtol=1e-10, atol=1e-12)
    assert b.loglik == pytest.approx(a.loglik, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(FUNCTIONS)), formula=st.sampled_from(FORMULAS), seed=st.integers(0, 10**6))
def test_a_column_named_like_a_function_is_the_column(name, formula, seed):
    d = data(seed)
    ours = gt.glmm(formula, d, family="poisson")
    theirs = gt.glmm(renamed(formula, name), d.rename(columns={"w": name}), family="poisson")
    same_fit(ours, theirs, name)
    new = d.iloc[:7]
    np.testing.assert_allclose(theirs.predict(new.rename(columns={"w": name})), ours.predict(new), rtol=1e-10)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_name_as_a_column(name):
    """Every allowed function name, bare in the fixed part, also as a factor, the response and in an offset."""
    d = data(1).rename(columns={"w": name})
    fit = gt.glmm(f"y ~ {name} + x", d, family="poisson")
    assert list(fit.fixef.index) == ["(Intercept)", name, "x"]
    d["lev"] = np.where(d[name] > 1.2, "high", "low")
    named = gt.glmm("y ~ lev + x", d, family="poisson")
    text = gt.glmm(f"y ~ {name} + x", d.assign(**{name: d.lev}), family="poisson")
    assert list(text.fixef.index) == ["(Intercept)", f"{name}low", "x"]
    np.testing.assert_allclose(text.fixef, named.fixef, rtol=1e-10)
    response = gt.glmm(f"{name} ~ x", d.assign(**{name: d.y}), family="poisson")
    np.testing.assert_allclose(response.fixef, gt.glmm("y ~ x", d, family="poisson").fixef, rtol=1e-10)
    offset = gt.glmm(f"y ~ x + offset(log({name}))", d.assign(**{name: d.t}), family="poisson")
    np.testing.assert_allclose(offset.fixef, gt.glmm("y ~ x + offset(log(t))", d, family="poisson").fixef,
                               rtol=1e-10)


@pytest.mark.parametrize("formula, variables", [
    ("y ~ I + I(x^2)", ["y", "I", "x"]),
    ("log ~ log(log) + center + scale(center)", ["log", "center"]),
    ("y ~ offset + offset(log(t)) + (poly | factor)", ["y", "offset", "t", "poly", "factor"]),
])
def test_variables_are_the_bare_names(formula, variables):
    assert parse(formula).variables() == variables


def test_a_column_and_a_call_of_the_same_name_in_one_formula():
    d = data(2).rename(columns={"w": "I"})
    fit = gt.glmm("y ~ I + I(x^2)", d, family="poisson")
    assert list(fit.fixef.index) == ["(Intercept)", "I", "I(x^2)"]
    plain = gt.glmm("y ~ w + x2", d.assign(w=d.I, x2=d.x ** 2), family="poisson")
    np.testing.assert_allclose(fit.fixef, plain.fixef, rtol=1e-10)
    d = data(3).rename(columns={"w": "log"})
    fit = gt.glmm("y ~ log + log(log) + offset(log(t))", d, family="poisson")
    assert list(fit.fixef.index) == ["(Intercept)", "log", "log(log)"]
    plain = gt.glmm("y ~ w + lw + offset(log(t))", d.assign(w=d.log, lw=np.log(d.log)), family="poisson")
    np.testing.assert_allclose(fit.fixef, plain.fixef, rtol=1e-10)
