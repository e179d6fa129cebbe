"""Bad input gets a clear error (DEVELOPERS.md): the message names the column or value and says what is
allowed, and the exception is raised by glmmteach itself, not deep inside numpy, scipy or formulaic.
Missing values are dropped with a warning that says how many, as R's na.omit.
"""
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmmteach as gt
from glmmteach.formula import FormulaError

PACKAGE = Path(gt.__file__).parent


@pytest.fixture(scope="module")
def seeds():
    return gt.datasets.load("crowder_seeds")


def raises(exception, call, *words):
    """``call()`` raises ``exception`` from glmmteach's own code, with every one of ``words`` in the message."""
    with pytest.raises(exception) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} is not in the message: {message}"
    innermost = Path(str(info.traceback[-1].path))
    assert PACKAGE in innermost.parents, f"raised in {innermost}, not by glmmteach: {message}"
    assert "\x1b[" not in message, "no terminal colour codes"
    return message


# --- unknown column ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("formula, column, where", [
    ("germ ~ genn + extract", "genn", "fixed effects"),
    ("germ ~ gen + (1 | plat)", "plat", "grouping factor"),
    ("germ ~ gen + (1 + x | plate)", "x", "random-effect term"),
    ("germs ~ gen", "germs", "response"),
    ("cbind(germ, N - germ) ~ gen", "N", "response"),
    ("germ ~ gen + offset(log(trials))", "trials", "offset"),
])
def test_unknown_column(seeds, formula, column, where):
    message = raises(ValueError, lambda: gt.glmm(formula, seeds, family="poisson"
                                                 if "cbind" not in formula else "binomial"),
                     f"unknown column {column!r}", where, "columns: plate, gen, extract, germ, n")
    assert formula in message


def test_unknown_column_suggests_a_close_name(seeds):
    raises(ValueError, lambda: gt.glmm("germ ~ genn", seeds, family="poisson"), "Did you mean 'gen'?")


def test_unknown_weights_column(seeds):
    raises(ValueError, lambda: gt.glmm("I(germ/n) ~ gen", seeds, family="binomial", weights="trials"),
           "unknown weights column 'trials'", "columns: plate, gen, extract, germ, n")


def test_bad_weights(seeds):
    raises(ValueError, lambda: gt.glmm("I(germ/n) ~ gen", seeds, family="binomial", weights="gen"),
           "weights column 'gen'", "not numeric", "must be numbers")
    raises(ValueError, lambda: gt.glmm("I(germ/n) ~ gen", seeds, family="binomial", weights=[1, 2, 3]),
           "one value per row", "21 rows", "3 value(s)")
    raises(ValueError, lambda: gt.glmm("I(germ/n) ~ gen", seeds, family="binomial", weights=-seeds.n),
           "weights must be >= 0", "-39", "row 0")


# --- family and link ------------------------------------------------------------------------------------

def test_unknown_family(seeds):
    raises(ValueError, lambda: gt.glmm("germ ~ gen", seeds, family="poison"),
           "unknown family 'poison'", "choose one of", "poisson", "binomial")


def test_link_the_family_does_not_allow(seeds):
    raises(ValueError, lambda: gt.families.Gamma(link="logit"),
           "Gamma", "'logit'", "allowed: inverse, identity, log")
    raises(ValueError, lambda: gt.glmm("n ~ gen", seeds, family=gt.families.Poisson(link="logit")),
           "poisson", "'logit'", "allowed")


def test_family_class_without_parentheses(seeds):
    raises(TypeError, lambda: gt.glmm("germ ~ gen", seeds, family=gt.families.Poisson), "Poisson()")


# --- response outside the family's support ----------------------------------------------------------------

def with_germ(seeds, row, value):
    data = seeds.assign(germ=seeds.germ.astype(float))
    data.loc[row, "germ"] = value
    return data


def test_negative_counts(seeds):
    raises(ValueError, lambda: gt.glmm("germ ~ gen", with_germ(seeds, 3, -1), family="poisson"),
           "'germ'", "negative", "-1", "row 3", "poisson")


def test_non_integer_counts(seeds):
    raises(ValueError, lambda: gt.glmm("germ ~ gen", with_germ(seeds, 4, 2.5), family="poisson"),
           "'germ'", "non-integer", "2.5", "row 4", "whole numbers")
    raises(ValueError, lambda: gt.glmm("germ ~ gen", with_germ(seeds, 4, 2.5), family="nbinom2"),
           "'germ'", "non-integer", "2.5")


def test_gamma_needs_positive_values(seeds):
    raises(ValueError, lambda: gt.glmm("germ ~ gen", with_germ(seeds, 2, 0), family="Gamma"),
           "'germ'", "must be > 0", "Gamma", "found 0", "row 2")


def test_successes_above_trials_with_cbind(seeds):
    data = seeds.assign(n=seeds.n.where(seeds.index != 5, 1))     # row 5: germ = 8 > n = 1
    message = raises(ValueError, lambda: gt.glmm("cbind(germ, n - germ) ~ gen", data, family="binomial"),
                     "more successes than trials", "row 5", "'n - germ'", "must be >= 0")
    assert str(1 - seeds.germ[5]) in message


def test_successes_above_trials_with_a_proportion(seeds):
    data = seeds.assign(p=seeds.germ / seeds.n)
    data.loc[2, "p"] = (seeds.n[2] + 1) / seeds.n[2]              # n + 1 successes out of n
    raises(ValueError, lambda: gt.glmm("p ~ gen", data, family="binomial", weights="n"),
           "'p'", "more successes than trials", "row 2")


def test_proportion_without_trials(seeds):
    raises(ValueError, lambda: gt.glmm("I(germ/n) ~ gen", seeds, family="binomial"),
           "non-integer success counts", "weights")


@pytest.mark.parametrize("value", [0.0, 1.0, 1.2, -0.1])
def test_beta_outside_the_unit_interval(seeds, value):
    data = seeds.assign(p=(seeds.germ + 0.5) / (seeds.n + 1))
    data.loc[6, "p"] = value
    raises(ValueError, lambda: gt.glmm("p ~ gen", data, family="beta"),
           "'p'", "strictly between 0 and 1", "beta", "row 6")


def test_cbind_with_another_family(seeds):
    raises(ValueError, lambda: gt.glmm("cbind(germ, n - germ) ~ gen", seeds, family="poisson"),
           "cbind(successes, failures)", "binomial", "not poisson")


# --- text response ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["binomial", "gaussian", "poisson"])
def test_text_response(seeds, family):
    raises(ValueError, lambda: gt.glmm("gen ~ extract", seeds, family=family),
           "response 'gen'", "text or categorical", "must be numeric", "cbind(successes, failures)")


def test_object_text_response(seeds):
    data = seeds.assign(word=seeds.gen.astype(str).astype(object))
    raises(ValueError, lambda: gt.glmm("word ~ extract", data), "'word'", "text or categorical")


# --- malformed formula ------------------------------------------------------------------------------------

@pytest.mark.parametrize("formula, words", [
    ("germ ~ gen +", ["ends with '+'"]),
    ("germ gen", ["exactly one '~'"]),
    ("germ ~ (gen", ["unmatched '('"]),
    ("germ ~ gen + us(1 || plate)", ["'||'", "us()"]),
    ("germ ~ gen | plate", ["parentheses"]),
    ("germ ~ .", ["not supported"]),
    ("germ ~ logg(n)", ["unknown function logg()", "allowed"]),
])
def test_malformed_formula(seeds, formula, words):
    raises(FormulaError, lambda: gt.glmm(formula, seeds, family="poisson"), *words)


def test_function_of_a_text_column(seeds):
    raises(ValueError, lambda: gt.glmm("germ ~ log(gen)", seeds, family="poisson"),
           "column 'gen'", "text or categorical", "log(gen)", "needs numbers")
    raises(ValueError, lambda: gt.glmm("germ ~ I(gen^2)", seeds, family="poisson"),
           "column 'gen'", "I(gen^2)")


def test_aliased_fixed_effect(seeds):
    raises(ValueError, lambda: gt.glmm("germ ~ n + I(2 * n)", seeds, family="poisson"),
           "'I(2 * n)'", "linear combination", "cannot be estimated")


def test_more_coefficients_than_rows(seeds):
    data = seeds.assign(x=np.arange(21.0), z=np.arange(21.0) ** 2).iloc[:2]
    raises(ValueError, lambda: gt.glmm("germ ~ x + z", data, family="poisson"),
           "3 coefficients", "only 2 complete rows")


# --- infinite values ----------------------------------------------------------------------------------------

def test_infinite_covariate(seeds):
    data = seeds.assign(x=np.linspace(0, 1, 21))
    data.loc[7, "x"] = np.inf
    raises(ValueError, lambda: gt.glmm("germ ~ x", data, family="poisson"),
           "column 'x'", "infinite", "row 7", "must be finite")


def test_transformation_giving_infinity(seeds):
    data = seeds.assign(x=np.linspace(0, 1, 21))           # log(0) in row 0
    raises(ValueError, lambda: gt.glmm("germ ~ log(x)", data, family="poisson"),
           "'log(x)'", "not finite", "row 0", "log of a value <= 0")
    raises(ValueError, lambda: gt.glmm("germ ~ gen + offset(log(x))", data, family="poisson"),
           "offset(log(x))", "not finite", "row 0")
    raises(ValueError, lambda: gt.glmm("log(x) ~ gen", data),
           "response 'log(x)'", "not finite", "row 0")


# --- data -------------------------------------------------------------------------------------------------

def test_empty_data(seeds):
    raises(ValueError, lambda: gt.glmm("germ ~ gen", seeds.iloc[:0], family="poisson"), "no rows")


@pytest.mark.parametrize("make", [lambda d: d.to_dict("list"), lambda d: d.to_numpy().tolist(),
                                  lambda d: d.to_numpy()], ids=["dict", "list", "ndarray"])
def test_data_that_is_not_a_dataframe(seeds, make):
    data = make(seeds)
    raises(TypeError, lambda: gt.glmm("germ ~ gen", data, family="poisson"),
           "data must be a pandas DataFrame", type(data).__name__)


def test_all_rows_missing(seeds):
    data = seeds.assign(germ=np.nan)
    with pytest.warns(UserWarning):
        raises(ValueError, lambda: gt.glmm("germ ~ gen", data, family="poisson"), "no complete rows")


# --- random effects -------------------------------------------------------------------------------------

def test_grouping_factor_with_one_level(seeds):
    raises(ValueError, lambda: gt.glmm("germ ~ gen + (1 | one)", seeds.assign(one="A"), family="poisson"),
           "grouping factor 'one'", "only 1 level", "'A'", "at least two")


def test_nagq_with_two_random_terms(seeds):
    raises(ValueError, lambda: gt.glmm("cbind(germ, n - germ) ~ gen + (1 | plate) + (1 | extract)", seeds,
                                       family="binomial", nagq=5),
           "nagq = 5", "one scalar random-effect term", "nagq = 1")


def test_nagq_with_a_slope(seeds):
    data = seeds.assign(x=np.linspace(-1, 1, 21))
    raises(ValueError, lambda: gt.glmm("cbind(germ, n - germ) ~ gen + (1 + x | plate)", data,
                                       family="binomial", nagq=5),
           "nagq = 5", "one scalar random-effect term", "x | plate")


# --- predict ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def poisson_fit(seeds):
    return gt.glmm("germ ~ gen + log(n) + (1 | plate)", seeds, family="poisson")


def test_predict_with_a_missing_column(seeds, poisson_fit):
    raises(ValueError, lambda: poisson_fit.predict(newdata=seeds.drop(columns="n")),
           "newdata has no column 'n'", "gen", "plate")
    raises(ValueError, lambda: poisson_fit.predict(newdata=seeds.drop(columns="gen"), re_form="~0"),
           "newdata has no column 'gen'")


def test_predict_a_new_group_gives_the_population_level(seeds, poisson_fit):
    new = seeds.assign(plate="a plate never seen")
    population = poisson_fit.predict(newdata=seeds, re_form="~0")
    np.testing.assert_allclose(poisson_fit.predict(newdata=new), population)
    # and a seen plate still gets its random effect
    conditional = poisson_fit.predict(newdata=seeds)
    np.testing.assert_allclose(conditional, poisson_fit.predict())
    assert not np.allclose(conditional, population)


def test_predict_keeps_the_random_effects_of_a_numeric_grouping_column(seeds):
    """A grouping column of whole numbers stored as floats (as after a missing value): newdata must find
    the same groups, not treat them all as new."""
    data = seeds.assign(block=(seeds.index % 7).astype(float))
    fit = gt.glmm("germ ~ gen + (1 | block)", data, family="poisson")
    assert fit.varcorr.sd.iloc[0] > 0.05
    np.testing.assert_allclose(fit.predict(newdata=data), fit.predict())


def test_predict_population_level_needs_no_grouping_column(seeds, poisson_fit):
    np.testing.assert_allclose(poisson_fit.predict(newdata=seeds.drop(columns="plate"), re_form="~0"),
                               poisson_fit.predict(re_form="~0"))


def test_predict_with_an_unseen_level_of_a_fixed_factor(seeds, poisson_fit):
    raises(ValueError, lambda: poisson_fit.predict(newdata=seeds.assign(gen="O99")),
           "column 'gen'", "'O99'", "allowed levels: O73, O75")


# --- missing values ---------------------------------------------------------------------------------------

def test_missing_values_are_dropped_with_a_warning_and_the_fit_is_the_complete_rows_fit(seeds):
    data = seeds.assign(germ=seeds.germ.astype(float), unused=np.nan)
    data.loc[[1, 5, 7], "germ"] = np.nan
    data.loc[7, "extract"] = np.nan
    with pytest.warns(UserWarning, match=r"3 of 21 rows had missing values and were dropped") as record:
        fit = gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", data, family="binomial")
    assert "germ: 3" in str(record[0].message) and "extract: 1" in str(record[0].message)
    complete = seeds.drop(index=[1, 5, 7])
    reference = gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", complete, family="binomial")
    assert fit.nobs == reference.nobs == 18
    np.testing.assert_allclose(fit.fixef, reference.fixef, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.se, reference.se, rtol=1e-8)
    assert fit.loglik == pytest.approx(reference.loglik, abs=1e-8)


def test_missing_values_in_an_unused_column_drop_nothing(seeds):
    data = seeds.assign(unused=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fit = gt.glmm("germ ~ gen", data, family="poisson")
    assert fit.nobs == 21


def test_the_missing_value_warning_points_at_the_callers_line(seeds):
    data = seeds.assign(germ=seeds.germ.where(seeds.index != 0))
    with pytest.warns(UserWarning) as record:
        gt.glmm("germ ~ gen", data, family="poisson")
    assert record[0].filename == __file__


# --- binomial: cbind and proportion with weights are the same model ------------------------------------------

def test_cbind_and_proportion_with_weights_give_the_same_fit(seeds):
    formula = "~ gen * extract + (1 | plate)"
    a = gt.glmm("cbind(germ, n - germ) " + formula, seeds, family="binomial")
    b = gt.glmm("I(germ / n) " + formula, seeds, family="binomial", weights="n")
    c = gt.glmm("p " + formula, seeds.assign(p=seeds.germ / seeds.n), family="binomial", weights=seeds.n)
    for other in (b, c):
        assert list(other.fixef.index) == list(a.fixef.index)
        np.testing.assert_allclose(other.fixef, a.fixef, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(other.se, a.se, rtol=1e-6, atol=1e-6)
        assert other.loglik == pytest.approx(a.loglik, abs=1e-6)
        np.testing.assert_allclose(other.varcorr.sd, a.varcorr.sd, rtol=1e-6, atol=1e-6)


def test_a_response_column_named_like_a_python_keyword():
    """R accepts a column called `yield`; so do we (the turnip data has one)."""
    turnips = gt.datasets.load("mcconway_turnip")
    fit = gt.glmm("yield ~ gen + (1 | block)", turnips, family=gt.families.Gamma(link="log"))
    renamed = gt.glmm("yld ~ gen + (1 | block)", turnips.rename(columns={"yield": "yld"}),
                      family=gt.families.Gamma(link="log"))
    assert fit.loglik == pytest.approx(renamed.loglik, abs=1e-9)
