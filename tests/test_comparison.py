"""gt.anova(): the likelihood-ratio table of nested fits against R's anova() on glmmTMB 1.1.5 fits.

References: tests/reference/inference_reference.json ("anova"), made by make_inference_reference.R.
"""
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmmteach as gt

REFERENCE = json.loads((Path(__file__).parent / "reference" / "inference_reference.json").read_text())["anova"]


def fish_data():
    fish = gt.datasets.load("fish_vaccines")
    return fish.assign(vaccine=pd.Categorical(fish.vaccine), day_f=pd.Categorical(fish.day), fish=fish.fish.astype(str))


def numbers(values):
    return np.array([np.nan if v == "NA" else v for v in values], float)


def assert_table(table, ref):
    assert list(table.columns) == ref["columns"]
    for column in ref["columns"]:
        expected, got = numbers(ref["values"][column]), table[column].to_numpy(float)
        assert np.array_equal(np.isnan(got), np.isnan(expected)), column
        keep = ~np.isnan(expected)
        if column in ("Df", "Chi Df"):
            np.testing.assert_array_equal(got[keep], expected[keep])
        elif column == "Pr(>Chisq)":
            np.testing.assert_allclose(got[keep], expected[keep], rtol=0, atol=2e-3)
        else:       # log-likelihoods within 1e-3 (so AIC, BIC, deviance and Chisq within 2e-3)
            np.testing.assert_allclose(got[keep], expected[keep], rtol=0, atol=2e-3, err_msg=column)


def test_three_nested_crowder_fits_given_in_any_order():
    ref = REFERENCE["crowder_three"]
    seeds = gt.datasets.load("crowder_seeds")
    fits = [gt.glmm(f, seeds, family="binomial") for f in ref["formulas"]]
    result = gt.anova(fits[2], fits[0], fits[1], names=["crowder_ml", "c00", "c0"])
    assert list(result.table.index) == ref["rows"]
    assert_table(result.table, ref)
    # printed as R prints the table (R's header names the data and adds glmmTMB's zi and disp formulas)
    start = ref["lines"].index("Models:") + len(fits) + 1
    r_lines = [line.replace("‘", "'").replace("’", "'") for line in ref["lines"][start:]]
    assert str(result).split("\n")[len(fits) + 1:] == r_lines


def test_salmon_interaction():
    ref = REFERENCE["salmon_interaction"]
    fish = fish_data()
    gamma = gt.families.Gamma(link="log")
    m0, m1 = (gt.glmm(f, fish, family=gamma) for f in ref["formulas"])
    result = gt.anova(m0, m1, names=["s0", "salmon_ml"])
    assert_table(result.table, ref)
    start = ref["lines"].index("Models:") + 3
    assert str(result).split("\n")[3:] == ref["lines"][start:]


def test_refuses_different_data_and_reml_fits_with_different_fixed_effects():
    seeds = gt.datasets.load("crowder_seeds")
    full = gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", seeds, family="binomial")
    fewer = gt.glmm("cbind(germ, n - germ) ~ gen + (1 | plate)", seeds.iloc[:15], family="binomial")
    with pytest.raises(ValueError, match="different data: Model 1 used 21 observations and Model 2 15"):
        gt.anova(full, fewer)
    other = gt.glmm("cbind(n - germ, germ) ~ gen + (1 | plate)", seeds, family="binomial")
    with pytest.raises(ValueError, match="response of Model 2 .*cbind\\(n - germ, germ\\)"):
        gt.anova(full, other)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r1 = gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", seeds, family="binomial", reml=True)
        r0 = gt.glmm("cbind(germ, n - germ) ~ gen + extract + (1 | plate)", seeds, family="binomial", reml=True)
    with pytest.raises(ValueError, match="REML fits with different fixed effects.*reml=False"):
        gt.anova(r0, r1)
    with pytest.raises(ValueError, match="some fits are REML and some ML"):
        gt.anova(full, r1)
    with pytest.raises(ValueError, match="two or more fits"):
        gt.anova(full)


def test_reml_fits_with_the_same_fixed_effects_compare_their_random_effects():
    seeds = gt.datasets.load("crowder_seeds")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        glm = gt.glmm("cbind(germ, n - germ) ~ gen * extract", seeds, family="binomial", reml=True)
        glmm = gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", seeds, family="binomial", reml=True)
    table = gt.anova(glmm, glm).table
    assert list(table["Df"]) == [glm.n_parameters, glmm.n_parameters]
    assert table["Chisq"].iloc[1] == pytest.approx(2 * (glmm.loglik - glm.loglik))


def test_aic_of_fits_that_are_not_nested_in_the_order_given():
    """gt.AIC lists df, logLik and AIC as R's AIC(m1, m2) does, for glmmTMB's fits of the seeds (the reference
    JSONs of make_reference.R), in the order given, and refuses fits of different data."""
    seeds = gt.datasets.load("crowder_seeds")
    refs = [json.loads((Path(__file__).parent / "reference" / f"{case}.json").read_text())
            for case in ("crowder_binomial_ml", "crowder_binomial_glm")]
    fits = [gt.glmm(ref["formula"], seeds, family="binomial") for ref in refs]
    table = gt.AIC(*fits, names=["plate", "glm"])
    assert list(table.index) == ["plate", "glm"] and list(table.columns) == ["df", "logLik", "AIC"]
    assert table["df"].tolist() == [5, 4]
    np.testing.assert_allclose(table["AIC"], [ref["AIC"] for ref in refs], rtol=0, atol=2e-3)
    np.testing.assert_allclose(table["AIC"], -2 * table["logLik"] + 2 * table["df"], rtol=1e-12)
    assert gt.AIC(fits[1]).index.tolist() == ["Model 1"]
    with pytest.raises(ValueError, match="different data"):
        gt.AIC(fits[0], gt.glmm(refs[1]["formula"], seeds.iloc[1:], family="binomial"))
    with pytest.raises(ValueError, match="one per fit"):
        gt.AIC(*fits, names=["only one"])
    with pytest.raises(ValueError, match="at least one fit"):
        gt.AIC()
