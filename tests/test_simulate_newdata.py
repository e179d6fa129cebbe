"""Simulating a fitted model on new data, with chosen fixed effects (lme4's simulate(newdata, newparams)).

What no reference shows: on the fit's own data the draws are those of ``simulate()`` with the same seed
(the same random numbers in the same order), and data simulated for a larger design with new groups and
chosen fixed effects give those effects back when the model is refitted.
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmmteach as gt

DATA = Path(__file__).parent / "reference" / "data"


@pytest.fixture(scope="module")
def slopes():
    data = pd.read_csv(DATA / "gaussian_slopes.csv")
    return gt.glmm("y ~ x + (1 + x | g)", data)


@pytest.fixture(scope="module")
def gamma():
    data = pd.read_csv(DATA / "gamma.csv")
    return gt.glmm("y ~ x + (1 | g)", data, family=gt.families.Gamma(link="log"))


@pytest.mark.parametrize("name", ["slopes", "gamma"])
def test_own_data_gives_the_draws_of_simulate(name, request):
    fit = request.getfixturevalue(name)
    np.testing.assert_allclose(fit.simulate(3, seed=7, newdata=fit.data), fit.simulate(3, seed=7), rtol=1e-12)


def test_binomial_trials_come_from_cbind_in_newdata():
    seeds = gt.datasets.load("crowder_seeds")
    fit = gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", seeds, family="binomial")
    np.testing.assert_array_equal(fit.simulate(4, seed=2, newdata=seeds), fit.simulate(4, seed=2))
    bigger = seeds.assign(n=seeds["n"] * 10)
    assert np.all(fit.simulate(4, seed=2, newdata=bigger).to_numpy() <= bigger[["n"]].to_numpy())


def test_a_larger_design_with_chosen_effects_is_recovered(gamma):
    """Four times the groups (new labels), a chosen slope of x: the refit finds that slope within 3 SE
    and the fitted SD of the groups and the CV within 15%."""
    copies = [gamma.data.assign(g=gamma.data["g"] + f"_{k}") for k in range(4)]
    design = pd.concat(copies, ignore_index=True)
    beta = gamma.beta + np.array([0.0, 0.3])
    y = gamma.simulate(1, seed=11, newdata=design, newparams={"beta": beta})["sim_1"]
    refit = gt.glmm("y ~ x + (1 | g)", design.assign(y=y.to_numpy()), family=gt.families.Gamma(link="log"))
    assert abs(refit.fixef["x"] - beta[1]) < 3 * refit.se["x"]
    np.testing.assert_allclose(refit.varcorr["sd"].iloc[0], gamma.varcorr["sd"].iloc[0], rtol=0.15)
    np.testing.assert_allclose(refit.sigma, gamma.sigma, rtol=0.15)


def test_newparams_beta_shifts_the_mean(gamma):
    """Without random effects' noise in the comparison: the same seed, one extra unit on the intercept,
    and every Gamma draw (log link) is e times larger."""
    base = gamma.simulate(2, seed=3, newdata=gamma.data)
    shifted = gamma.simulate(2, seed=3, newdata=gamma.data, newparams={"beta": gamma.beta + [1.0, 0.0]})
    np.testing.assert_allclose(shifted / base, np.e, rtol=1e-12)


def test_clear_errors(gamma):
    with pytest.raises(ValueError, match="conditional=True"):
        gamma.simulate(1, newdata=gamma.data, conditional=True)
    with pytest.raises(ValueError, match="newparams may only give 'beta'"):
        gamma.simulate(1, newparams={"theta": [1.0]})
    with pytest.raises(ValueError, match="needs 2 values, one per fixed effect"):
        gamma.simulate(1, newparams={"beta": [1.0]})
    with pytest.raises(ValueError, match="newdata has no column 'g'"):
        gamma.simulate(1, newdata=gamma.data.drop(columns="g"))


def test_new_factor_columns_of_another_type_are_matched_by_label():
    """Levels given as text for a numeric categorical (or as numbers for it) are the same levels: before,
    "2" for the level 2 coded as the reference level (and plain numbers as a covariate), silently."""
    fish = gt.datasets.load("fish_vaccines")
    fish = fish.assign(vaccine=pd.Categorical(fish["vaccine"]), day=pd.Categorical(fish["day"]))
    fit = gt.glmm("wt ~ vaccine * day", fish, family=gt.families.Gamma(link="log"))
    harvest = fish[fish["day"] == 901].drop_duplicates("vaccine")
    expected = fit.predict(harvest)
    as_text = pd.DataFrame({"vaccine": pd.Categorical(harvest["vaccine"].astype(str)), "day": ["901"] * 4})
    as_numbers = pd.DataFrame({"vaccine": harvest["vaccine"].astype(int).to_numpy(), "day": [901] * 4})
    np.testing.assert_allclose(fit.predict(as_text), expected, rtol=1e-12)
    np.testing.assert_allclose(fit.predict(as_numbers), expected, rtol=1e-12)
    assert len(set(np.round(expected, 8))) == 4
    sims = fit.simulate(2, seed=1, newdata=as_text)
    np.testing.assert_allclose(sims, fit.simulate(2, seed=1, newdata=harvest), rtol=1e-12)
