"""design.build: y, n, X (R's names and order, treatment contrasts), Z, the offset, Lambda(theta)."""
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import glmmteach as gt
from glmmteach import design, families

GAUSSIAN = families.get("gaussian")
BINOMIAL = families.get("binomial")
POISSON = families.get("poisson")


@pytest.fixture(scope="module")
def seeds():
    return gt.datasets.load("crowder_seeds")


@pytest.fixture
def small():
    """Six rows: a text column f (levels b, a, c: sorted a < b < c), a numeric group g (2 and 10)."""
    return pd.DataFrame({
        "y": [1.0, 2.0, 0.5, 3.0, 2.5, 4.0],
        "x": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
        "t": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "f": ["b", "a", "c", "a", "b", "c"],
        "g": [10, 2, 10, 2, 10, 2],
        "h": ["u", "u", "v", "v", "w", "w"],
    })


def build(formula, data, family=GAUSSIAN, weights=None):
    return design.build(formula, data, family, weights)


# --- fixed effects: R's names, order and values ------------------------------------------------------

def test_crossed_factors_have_R_names_and_order(seeds):
    d = build("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", seeds, BINOMIAL)
    assert d.x_names == ["(Intercept)", "genO75", "extractcucumber", "genO75:extractcucumber"]


def test_X_equals_the_hand_built_treatment_contrasts(seeds):
    d = build("cbind(germ, n - germ) ~ gen * extract", seeds, BINOMIAL)
    o75 = (seeds.gen == "O75").to_numpy(float)
    cucumber = (seeds.extract == "cucumber").to_numpy(float)
    expected = np.column_stack([np.ones(len(seeds)), o75, cucumber, o75 * cucumber])
    np.testing.assert_array_equal(d.X, expected)
    assert d.X.shape == (21, 4)


def test_factor_of_a_numeric_column():
    fish = gt.datasets.load("fish_vaccines")
    d = build("wt ~ factor(day)", fish)
    assert d.x_names == ["(Intercept)", "factor(day)82", "factor(day)246", "factor(day)505", "factor(day)901"]
    np.testing.assert_array_equal(d.X[:, 1], (fish.day == 82).to_numpy(float))


def test_factor_of_whole_numbers_stored_as_floats_is_named_as_R():
    """A column with a missing value is float in pandas; R still names the level 82, not 82.0."""
    data = pd.DataFrame({"y": [1.0, 2, 3, 4, 5], "day": [0, 82, np.nan, 82, 0]})
    with pytest.warns(UserWarning, match="1 of 5 rows"):
        d = build("y ~ factor(day)", data)
    assert d.x_names == ["(Intercept)", "factor(day)82"]


def test_text_column_levels_are_sorted_first_is_reference(small):
    d = build("y ~ f", small)
    assert d.x_names == ["(Intercept)", "fb", "fc"]
    np.testing.assert_array_equal(d.X[:, 1], (small.f == "b").to_numpy(float))
    np.testing.assert_array_equal(d.X[:, 2], (small.f == "c").to_numpy(float))


def test_categorical_keeps_its_category_order(small):
    data = small.assign(f=pd.Categorical(small.f, categories=["c", "a", "b"]))
    d = build("y ~ f", data)
    assert d.x_names == ["(Intercept)", "fa", "fb"]          # reference: c, the first category
    np.testing.assert_array_equal(d.X[:, 1], (small.f == "a").to_numpy(float))


def test_unused_categories_are_dropped_as_R_does(small):
    """R's model frame drops unused levels: an empty first category is not the reference."""
    data = small.assign(f=pd.Categorical(small.f, categories=["z", "a", "b", "c", "q"]))
    d = build("y ~ f", data)
    assert d.x_names == ["(Intercept)", "fb", "fc"]


def test_power_inside_I(small):
    d = build("y ~ x + I(x^2)", small)
    assert d.x_names == ["(Intercept)", "x", "I(x^2)"]
    np.testing.assert_allclose(d.X[:, 2], small.x ** 2)


def test_transformed_covariate(small):
    d = build("y ~ log(t)", small)
    assert d.x_names == ["(Intercept)", "log(t)"]
    np.testing.assert_allclose(d.X[:, 1], np.log(small.t))


@pytest.mark.parametrize("formula", ["y ~ 0 + x", "y ~ x - 1", "y ~ -1 + x"])
def test_no_intercept(small, formula):
    d = build(formula, small)
    assert d.x_names == ["x"]
    np.testing.assert_array_equal(d.X[:, 0], small.x)


def test_no_intercept_with_a_factor_gives_every_level(small):
    d = build("y ~ 0 + f", small)
    assert d.x_names == ["fa", "fb", "fc"]
    np.testing.assert_array_equal(d.X.sum(axis=1), np.ones(len(small)))


def test_factor_by_numeric_interaction(small):
    d = build("y ~ f * x", small)
    assert d.x_names == ["(Intercept)", "fb", "fc", "x", "fb:x", "fc:x"]
    np.testing.assert_allclose(d.X[:, 4], (small.f == "b") * small.x)


# --- response ------------------------------------------------------------------------------------------

def test_cbind_gives_successes_and_trials(seeds):
    d = build("cbind(germ, n - germ) ~ 1", seeds, BINOMIAL)
    np.testing.assert_array_equal(d.y, seeds.germ)
    np.testing.assert_array_equal(d.n, seeds.n)
    np.testing.assert_array_equal(d.weights, np.ones(21))


def test_proportion_with_weights_gives_successes_and_trials(seeds):
    data = seeds.assign(p=seeds.germ / seeds.n)
    for weights in ("n", seeds.n.to_numpy()):
        d = build("p ~ 1", data, BINOMIAL, weights=weights)
        np.testing.assert_allclose(d.y, seeds.germ)       # y = p * w
        np.testing.assert_array_equal(d.n, seeds.n)       # n = w
        np.testing.assert_array_equal(d.weights, np.ones(21))


def test_zero_one_response_has_one_trial():
    data = pd.DataFrame({"y": [0, 1, 1, 0], "x": [1.0, 2, 3, 4]})
    d = build("y ~ x", data, BINOMIAL)
    np.testing.assert_array_equal(d.y, [0, 1, 1, 0])
    np.testing.assert_array_equal(d.n, [1, 1, 1, 1])


def test_transformed_response(small):
    d = build("log(y) ~ x", small)
    np.testing.assert_allclose(d.y, np.log(small.y))
    d = build("y^2 ~ x", small)                            # R's ^ is power, not Python's xor
    np.testing.assert_allclose(d.y, small.y ** 2)


def test_prior_weights_for_other_families(small):
    d = build("y ~ x", small, weights="t")
    np.testing.assert_array_equal(d.weights, small.t)
    np.testing.assert_array_equal(d.n, np.ones(6))


# --- offset ----------------------------------------------------------------------------------------

def test_offset_is_evaluated(small):
    d = build("y ~ x + offset(log(t))", small)
    np.testing.assert_allclose(d.offset, np.log(small.t))
    assert d.x_names == ["(Intercept)", "x"]
    d = build("y ~ x + offset(log(t)) + offset(x)", small)
    np.testing.assert_allclose(d.offset, np.log(small.t) + small.x)


def test_no_offset_is_zero(small):
    np.testing.assert_array_equal(build("y ~ x", small).offset, np.zeros(6))


# --- Z ------------------------------------------------------------------------------------------------

def test_random_intercept_Z_is_the_indicator_matrix(seeds):
    d = build("cbind(germ, n - germ) ~ 1 + (1 | plate)", seeds, BINOMIAL)
    assert sp.issparse(d.Z)
    assert d.Z.shape == (21, 21)
    term = d.terms[0]
    assert term.group == "plate" and term.names == ["(Intercept)"] and term.k == 1
    Z = d.Z.toarray()
    for i, plate in enumerate(seeds.plate.astype(str)):
        assert Z[i, term.levels.index(plate)] == 1
    assert np.all(Z.sum(axis=1) == 1)


def test_correlated_slope_Z_is_level_major(small):
    d = build("y ~ x + (1 + x | f)", small)
    term = d.terms[0]
    assert term.names == ["(Intercept)", "x"]
    assert term.levels == ["a", "b", "c"]
    assert d.Z.shape == (6, 3 * 2)
    Z = d.Z.toarray()
    for i, (level, x) in enumerate(zip(small.f, small.x)):
        expected = np.zeros(6)
        j = term.levels.index(level)
        expected[2 * j] = 1.0            # level j's intercept
        expected[2 * j + 1] = x          # level j's slope, right after it
        np.testing.assert_array_equal(Z[i], expected)


def test_slope_alone_means_intercept_and_slope_as_in_R(small):
    d = build("y ~ x + (x | f)", small)
    assert d.terms[0].names == ["(Intercept)", "x"]
    assert d.Z.shape == (6, 6)


def test_slope_without_intercept(small):
    d = build("y ~ x + (0 + x | f)", small)
    assert d.terms[0].names == ["x"]
    assert d.Z.shape == (6, 3)


def test_numeric_grouping_column_is_a_factor_with_numeric_order(small):
    d = build("y ~ x + (1 | g)", small)
    assert d.terms[0].levels == ["2", "10"]               # numbers sorted as numbers, as R's factor()
    Z = d.Z.toarray()
    np.testing.assert_array_equal(Z[:, 0], (small.g == 2).to_numpy(float))
    np.testing.assert_array_equal(Z[:, 1], (small.g == 10).to_numpy(float))


def test_crossed_terms_are_side_by_side(small):
    d = build("y ~ x + (1 | f) + (1 | h)", small)
    assert [t.group for t in d.terms] == ["f", "h"]
    assert [t.start for t in d.terms] == [0, 3]
    assert d.Z.shape == (6, 6)
    np.testing.assert_array_equal(d.Z.toarray().sum(axis=1), 2 * np.ones(6))


def test_nested_terms_use_R_names_and_levels():
    data = pd.DataFrame({"y": np.arange(8.0), "a": list("ppppqqqq"), "b": list("11221122")})
    d = build("y ~ 1 + (1 | a/b)", data)
    assert [t.group for t in d.terms] == ["a", "b:a"]
    # R's b:a: the levels that occur, b's levels varying slowest (as factor(b):factor(a))
    assert d.terms[1].levels == ["1:p", "1:q", "2:p", "2:q"]
    Z = d.Z.toarray()[:, 2:]
    np.testing.assert_array_equal(Z.argmax(axis=1), [0, 0, 2, 2, 1, 1, 3, 3])


def test_interaction_grouping(small):
    d = build("y ~ 1 + (1 | f:h)", small)
    assert d.terms[0].group == "f:h"
    assert len(d.terms[0].levels) == 6
    assert d.Z.shape == (6, 6)


def test_model_without_random_effects_has_an_empty_Z(small):
    d = build("y ~ x", small)
    assert d.Z.shape == (6, 0)
    assert d.terms == [] and d.n_theta == 0


# --- Lambda(theta) -----------------------------------------------------------------------------------

def test_lambda_repeats_the_cholesky_template(small):
    d = build("y ~ x + (1 + x | f)", small)
    assert d.n_theta == 3
    theta = np.array([1.5, 0.3, 0.7])                      # lower triangle, column by column (lme4)
    T = np.array([[1.5, 0.0], [0.3, 0.7]])
    np.testing.assert_array_equal(d.Lambda(theta).toarray(), np.kron(np.eye(3), T))
    np.testing.assert_allclose(d.covariances(theta)[0], T @ T.T)


def test_lambda_of_crossed_terms_is_block_diagonal(small):
    d = build("y ~ x + (1 | f) + (1 + x | h)", small)
    assert d.n_theta == 1 + 3
    theta = np.array([2.0, 1.5, 0.3, 0.7])
    T = np.array([[1.5, 0.0], [0.3, 0.7]])
    expected = np.zeros((9, 9))
    expected[:3, :3] = 2.0 * np.eye(3)
    expected[3:, 3:] = np.kron(np.eye(3), T)
    np.testing.assert_array_equal(d.Lambda(theta).toarray(), expected)


def test_theta_lower_bounds_are_zero_on_the_diagonal(small):
    d = build("y ~ x + (1 | f) + (1 + x | h)", small)
    np.testing.assert_array_equal(d.theta_lower_bounds(), [0.0, 0.0, -np.inf, 0.0])
    assert d.theta_names() == ["f: sd (Intercept)", "h: sd (Intercept)", "h: cholesky[x, (Intercept)]", "h: sd x"]


# --- missing values -----------------------------------------------------------------------------------

def test_rows_with_missing_values_are_dropped_with_a_count(small):
    data = small.copy()
    data.loc[[1, 4], "x"] = np.nan
    data.loc[1, "y"] = np.nan
    with pytest.warns(UserWarning, match=r"2 of 6 rows had missing values and were dropped") as record:
        d = build("y ~ x + (1 | f)", data)
    assert "x: 2" in str(record[0].message) and "y: 1" in str(record[0].message)
    assert d.nobs == 4
    np.testing.assert_array_equal(d.y, small.y.drop([1, 4]))


def test_the_design_knows_the_rows_it_used_and_the_fit_keeps_them(small):
    data = small.assign(unused=np.nan).set_axis([10, 11, 12, 12, 14, 15])      # a repeated label too
    data.loc[11, "x"] = np.nan
    data.iloc[3, data.columns.get_loc("y")] = np.nan
    with pytest.warns(UserWarning, match="2 of 6 rows"):
        d = build("y ~ x", data)
    np.testing.assert_array_equal(d.complete, [True, False, True, False, True, True])
    with pytest.warns(UserWarning, match="2 of 6 rows"):
        fit = gt.glmm("y ~ x", data)
    pd.testing.assert_frame_equal(fit.data, data.iloc[[0, 2, 4, 5]])


def test_missing_values_in_unused_columns_are_ignored(small):
    data = small.assign(unused=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = build("y ~ x + (1 | f)", data)
    assert d.nobs == 6


def test_missing_weights_drop_the_row(seeds):
    weights = seeds.n.to_numpy(float)
    weights[0] = np.nan
    with pytest.warns(UserWarning, match="1 of 21 rows"):
        d = build("I(germ/n) ~ 1", seeds, BINOMIAL, weights=weights)
    assert d.nobs == 20


# --- new data (for predict) ---------------------------------------------------------------------------

def test_new_matrices_reproduce_the_fitting_ones(small):
    d = build("y ~ f * x + offset(log(t)) + (1 + x | h)", small)
    np.testing.assert_array_equal(d.new_X(small), d.X)
    np.testing.assert_array_equal(d.new_Z(small).toarray(), d.Z.toarray())
    np.testing.assert_allclose(d.new_offset(small), d.offset)


def test_new_Z_gives_unseen_levels_a_zero_row(small):
    d = build("y ~ x + (1 | h)", small)
    new = small.iloc[:3].assign(h=["u", "NEW", "w"])
    Z = d.new_Z(new).toarray()
    np.testing.assert_array_equal(Z, [[1, 0, 0], [0, 0, 0], [0, 0, 1]])


def test_new_Z_matches_numeric_groups_as_numbers(small):
    for fitted, new in [(small.g, small.g.astype(float)), (small.g.astype(float), small.g)]:
        d = build("y ~ x + (1 | g)", small.assign(g=fitted))
        np.testing.assert_array_equal(d.new_Z(small.assign(g=new)).toarray(), d.Z.toarray())
    d = build("y ~ x + (1 | f:g)", small.assign(g=small.g.astype(float)))
    np.testing.assert_array_equal(d.new_Z(small).toarray(), d.Z.toarray())


def test_new_X_gives_nan_for_rows_with_missing_values(small):
    d = build("y ~ f + x", small)
    new = small.iloc[:3].assign(x=[1.0, np.nan, 2.0])
    X = d.new_X(new)
    assert np.isnan(X[1]).all()
    np.testing.assert_array_equal(X[[0, 2]], d.X[[0, 2]] + [[0, 0, 0, 0.5], [0, 0, 0, 0.5]])


def test_check_newdata(small):
    d = build("y ~ f + x + (1 | h)", small)
    d.check_newdata(small)
    d.check_newdata(small.drop(columns=["h", "y"]), population=True)
    with pytest.raises(ValueError, match="newdata has no column 'x'.*f, x, h"):
        d.check_newdata(small.drop(columns="x"))
    with pytest.raises(ValueError, match="newdata has no column 'h'"):
        d.check_newdata(small.drop(columns="h"))
    with pytest.raises(ValueError, match="column 'f' has the level 'zz'.*allowed levels: a, b, c"):
        d.check_newdata(small.assign(f="zz"))
    with pytest.raises(TypeError, match="newdata must be a pandas DataFrame"):
        d.check_newdata(small.to_dict())
    d.check_newdata(small.assign(h="new level"))           # a new group: the population level


def test_check_newdata_reads_whole_floats_as_the_integer_levels():
    data = pd.DataFrame({"y": [1.0, 2, 3, 4], "day": [0, 82, 0, 82]})
    d = build("y ~ factor(day)", data)
    d.check_newdata(pd.DataFrame({"day": [82.0, 0.0]}))
    with pytest.raises(ValueError, match="'day' has the level '5'.*allowed levels: 0, 82"):
        d.check_newdata(pd.DataFrame({"day": [5.0]}))
    np.testing.assert_array_equal(d.new_X(pd.DataFrame({"day": [82.0, 0.0]})), [[1, 1], [1, 0]])
