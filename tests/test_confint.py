"""fit.confint(): Wald and profile intervals against glmmTMB 1.1.5's confint; the parametric bootstrap.

References: tests/reference/inference_reference.json ("confint"), made by make_inference_reference.R.
Tolerance: limits within 1e-3 relative (a limit near zero: within 1e-3 of the parameter's SE).
"""
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmmteach as gt

REFERENCE = json.loads((Path(__file__).parent / "reference" / "inference_reference.json").read_text())["confint"]
CROWDER = "cbind(germ, n - germ) ~ gen * extract + (1 | plate)"
SALMON = "wt ~ vaccine * day_f + (1 | fish)"


def fish_data():
    fish = gt.datasets.load("fish_vaccines")
    return fish.assign(vaccine=pd.Categorical(fish.vaccine), day_f=pd.Categorical(fish.day),
                       fish=fish.fish.astype(str), t=fish.day / 901)


@pytest.fixture(scope="module")
def fits():
    seeds, fish = gt.datasets.load("crowder_seeds"), fish_data()
    gamma = gt.families.Gamma(link="log")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"crowder_reml": gt.glmm(CROWDER, seeds, family="binomial", reml=True),
                "crowder_ml": gt.glmm(CROWDER, seeds, family="binomial"),
                "salmon_reml": gt.glmm(SALMON, fish, family=gamma, reml=True),
                "salmon_ml": gt.glmm(SALMON, fish, family=gamma),
                "fish_slope_ml": gt.glmm("wt ~ vaccine * day_f + (1 + t | fish)", fish, family=gamma)}


def assert_limits(table, ref, scale):
    """Both limits, each within 1e-3 of max(|limit|, the parameter's SE) (``scale``: the SE per row)."""
    for column, expected in zip(table.columns[:2], (ref["lower"], ref["upper"])):
        got, expected = table[column].to_numpy(float), np.asarray(expected, float)
        tolerance = 1e-3 * np.maximum(np.abs(expected), scale)
        assert np.all(np.abs(got - expected) <= tolerance), (column, got, expected)


@pytest.mark.parametrize("case", ["crowder_reml", "crowder_ml", "salmon_reml", "salmon_ml", "fish_slope_ml"])
def test_wald_intervals_as_glmmtmb(fits, case):
    ref = REFERENCE[f"{case}_wald"]
    table = fits[case].confint()
    assert list(table.index) == ref["rows"]
    assert list(table.columns) == ["2.5 %", "97.5 %", "Estimate"]
    width = np.asarray(ref["upper"]) - np.asarray(ref["lower"])
    assert_limits(table, ref, width / 3.92)
    error = np.abs(table["Estimate"].to_numpy() - ref["estimate"])
    assert np.all(error <= 1e-3 * np.maximum(np.abs(ref["estimate"]), width / 3.92))


def test_wald_level_and_parm(fits):
    fit = fits["crowder_ml"]
    ref = REFERENCE["level90_crowder_ml_wald"]
    table = fit.confint(level=0.9)
    assert list(table.columns[:2]) == ["5 %", "95 %"]
    assert_limits(table, ref, (np.asarray(ref["upper"]) - np.asarray(ref["lower"])) / 3.29)
    assert list(fit.confint(parm="theta_").index) == ["Std.Dev.(Intercept)|plate"]
    assert list(fit.confint(parm="beta_").index) == list(fit.fixef.index)
    with pytest.raises(ValueError, match="'gen', which is not a parameter.*genO75"):
        fit.confint(parm="gen")
    with pytest.raises(ValueError, match="method must be 'wald', 'profile' or 'boot'"):
        fit.confint(method="score")


def test_profile_crowder(fits):
    fit = fits["crowder_ml"]
    table = fit.confint(method="profile")
    beta, sd = REFERENCE["crowder_ml_profile_beta"], REFERENCE["crowder_ml_profile_sd"]
    assert list(table.index) == beta["rows"] + ["Std.Dev.(Intercept)|plate"]
    assert_limits(table.iloc[:4], beta, fit.se.to_numpy())
    # the profile of the plate SD never falls 3.84/2 below its maximum on the way to 0: lower limit 0
    assert sd["drop_at_sd_near_zero"] < 3.84 and sd["lower"] == 0
    assert table.iloc[4, 0] == 0
    assert abs(table.iloc[4, 1] - sd["upper"]) < 1e-3 * sd["upper"]


def test_profile_salmon(fits):
    fit = fits["salmon_ml"]
    beta = REFERENCE["salmon_ml_profile_beta"]
    table = fit.confint(parm=beta["rows"] + ["Std.Dev.(Intercept)|fish"], method="profile")
    assert_limits(table.iloc[:3], beta, fit.se[beta["rows"]].to_numpy())
    log_sd = REFERENCE["salmon_ml_profile_log_sd"]       # glmmTMB gives this one on the log(SD) scale
    np.testing.assert_allclose(table.iloc[3, :2], np.exp([log_sd["lower"], log_sd["upper"]]), rtol=1e-3)


def test_profile_refuses_reml_and_correlations(fits):
    with pytest.raises(ValueError, match="maximum likelihood .reml=False"):
        fits["crowder_reml"].confint(method="profile")
    with pytest.raises(ValueError, match="no profile interval for 'Cor.t.\\(Intercept\\)\\|fish'"):
        fits["fish_slope_ml"].confint(parm="Cor.t.(Intercept)|fish", method="profile")


def test_profile_gives_the_same_intervals_on_two_processes_in_any_order(fits):
    """Each parameter is profiled on its own, from the fit's estimates, so the parameters can be shared
    between processes: the limits do not depend on n_jobs or on which parameters were profiled before,
    and the fit's optimiser log is left as it was."""
    fit = fits["crowder_ml"]
    evaluations = len(fit.optimizer_log())
    parm = ["genO75", "extractcucumber", "Std.Dev.(Intercept)|plate"]
    one = fit.confint(parm=parm, method="profile")
    assert len(fit.optimizer_log()) == evaluations
    two = fit.confint(parm=parm, method="profile", n_jobs=2)
    assert list(two.index) == parm
    np.testing.assert_array_equal(two.to_numpy(), one.to_numpy())
    backwards = gt.confint.confint(fit, parm=parm[::-1], method="profile")      # the SD first, in one process
    np.testing.assert_array_equal(backwards.loc[parm].to_numpy(), one.to_numpy())
    alone = fit.confint(parm="extractcucumber", method="profile", n_jobs=2)     # one parameter, one process
    np.testing.assert_array_equal(alone.to_numpy(), one.loc[["extractcucumber"]].to_numpy())
    with pytest.raises(ValueError, match="n_jobs must be a whole number of processes"):
        fit.confint(parm="genO75", method="profile", n_jobs=0)


def test_bootstrap_is_seeded_and_spreads_like_the_standard_errors(fits):
    from glmmteach.confint import bootstrap_estimates
    fit = fits["crowder_ml"]
    state = np.random.get_state()[1].copy()
    draws = bootstrap_estimates(fit, nsim=60, seed=7)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    assert len(draws) >= 55
    ratio = draws[list(fit.fixef.index)].std() / fit.se
    assert ratio.between(0.7, 1.4).all(), ratio
    shift = (draws[list(fit.fixef.index)].mean() - fit.fixef).abs() / fit.se
    assert (shift < 0.5).all(), shift
    table = fit.confint(method="boot", nsim=20, seed=7)
    np.testing.assert_allclose(table, fit.confint(method="boot", nsim=20, seed=7))
    assert (table["2.5 %"] <= table["97.5 %"]).all()


def test_bootstrap_gives_the_same_estimates_on_two_processes(fits):
    """Each refit draws from its own seed, so the work can be split between processes."""
    from glmmteach.confint import bootstrap_estimates
    fit = fits["crowder_ml"]
    one = bootstrap_estimates(fit, nsim=8, seed=11)
    two = bootstrap_estimates(fit, nsim=8, seed=11, n_jobs=2)
    np.testing.assert_array_equal(one.to_numpy(), two.to_numpy())
    table = fit.confint(method="boot", nsim=8, seed=11, n_jobs=2)
    np.testing.assert_array_equal(table, fit.confint(method="boot", nsim=8, seed=11))
