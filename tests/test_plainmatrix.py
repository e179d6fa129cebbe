"""The direct model matrix of plain formulas (glmmteach.plainmatrix) against formulaic's, which the
design falls back on for every other formula: the same columns, in the same order, with the same names."""
import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import glmmteach as gt
from glmmteach.design import _formulaic_matrix, _model_matrix
from glmmteach.plainmatrix import DeferredSpec, plain_matrix

COLUMNS = ["x", "i", "a", "b", "d"]


def frame(seed: int, n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x": rng.normal(size=n),                                              # numeric
        "i": rng.integers(0, 9, size=n),                                      # integer, numeric
        "a": rng.choice(["lo", "mid", "hi"], size=n),                         # text: sorted levels
        "b": pd.Categorical(rng.choice(["r", "q", "p"], size=n), categories=["r", "q", "p"]),
        "d": pd.Categorical(rng.choice([82, 0, 246], size=n)),                # categorical of numbers
    })


def hierarchical(names: tuple[str, ...]) -> str:
    """The full factorial a * b * ...: every sub-term present, so every factor takes contrasts."""
    return " * ".join(names)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000),
       names=st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=3, unique=True),
       extra=st.lists(st.sampled_from(COLUMNS), max_size=2, unique=True))
def test_plain_formulas_give_formulaic_matrix(seed, names, extra):
    data = frame(seed)
    expr = " + ".join([hierarchical(tuple(names))] + extra)
    direct = plain_matrix(expr, data)
    assert direct is not None, expr
    X, names_direct = direct
    expected, names_expected, _ = _formulaic_matrix(expr, data, "the fixed effects", {})
    assert names_direct == names_expected
    np.testing.assert_array_equal(X, expected)
    assert X.flags.f_contiguous == expected.flags.f_contiguous     # same layout: same rounding in X'DX


@pytest.mark.parametrize("expr", ["0 + a", "a - 1", "a:x", "x + a:b", "x + I(x ** 2)", "log(x)", "C(i)",
                                  "flag", "x + flag:a"])
def test_other_formulas_are_left_to_formulaic(expr):
    data = frame(1).assign(flag=lambda d: d.x > 0)
    assert plain_matrix(expr, data) is None


def test_unused_category_is_kept_as_formulaic_keeps_it():
    data = frame(2).assign(b=lambda d: d.b.cat.add_categories(["s"]))
    X, names = plain_matrix("b", data)
    assert names == ["(Intercept)", "bq", "bp", "bs"] and not X[:, 3].any()


def test_deferred_spec_is_made_when_first_used_and_predicts_like_formulaic():
    data = frame(3)
    X, names, spec = _model_matrix("a * x + d", data, "the fixed effects")
    assert isinstance(spec, DeferredSpec) and "spec" not in vars(spec)
    new = frame(4, n=7)
    expected = _formulaic_matrix("a * x + d", data, "the fixed effects", {})[2].get_model_matrix(new)
    np.testing.assert_array_equal(np.asarray(spec.get_model_matrix(new)), np.asarray(expected))
    assert [str(t) for t in spec.formula] == [str(t) for t in expected.model_spec.formula]


def test_fit_predict_and_emmeans_unchanged_on_the_direct_path(monkeypatch):
    """The salmon Gamma GLM built directly and built by formulaic give the same fit, predictions for
    new rows, marginal means and joint tests."""
    fish = gt.datasets.load("fish_vaccines").assign(vaccine=lambda d: pd.Categorical(d.vaccine),
                                                    day_f=lambda d: d.day.astype(str))
    direct = gt.glmm("wt ~ vaccine * day_f", fish, family="Gamma")
    assert isinstance(direct.design.fixed_spec, DeferredSpec)
    monkeypatch.setattr("glmmteach.design.plain_matrix", lambda expr, data: None)
    via_formulaic = gt.glmm("wt ~ vaccine * day_f", fish, family="Gamma")
    assert not isinstance(via_formulaic.design.fixed_spec, DeferredSpec)
    np.testing.assert_allclose(direct.loglik, via_formulaic.loglik, rtol=1e-12)
    np.testing.assert_allclose(direct.fixef.to_numpy(), via_formulaic.fixef.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(direct.se.to_numpy(), via_formulaic.se.to_numpy(), rtol=1e-9)
    new = fish.iloc[::97]
    np.testing.assert_allclose(direct.predict(new), via_formulaic.predict(new), rtol=1e-9)
    emm = [gt.emmeans(f, "vaccine", by="day_f", type="response").table for f in (direct, via_formulaic)]
    assert len(emm[0]) == 20
    pd.testing.assert_frame_equal(emm[0], emm[1], rtol=1e-9)
    pd.testing.assert_frame_equal(gt.joint_tests(direct).table, gt.joint_tests(via_formulaic).table, rtol=1e-9)
