"""gt.anova(): the likelihood-ratio table of nested fits against R's anova() on glmmTMB 1.1.5 fits.

References: tests/reference/inference_reference.json ("anova"), made by make_inference_reference.R.
"""
import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

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


# ---- the parametric bootstrap likelihood-ratio test (pbkrtest's PBmodcomp) ---------------------------
SEEDS_NULL = "cbind(germ, n - germ) ~ gen * extract"
SEEDS_ALTERNATIVE = "cbind(germ, n - germ) ~ gen * extract + (1 | plate)"


@pytest.fixture(scope="module")
def seed_fits():
    seeds = gt.datasets.load("crowder_seeds")
    return (gt.glmm(SEEDS_NULL, seeds, family="binomial"), gt.glmm(SEEDS_ALTERNATIVE, seeds, family="binomial"))


def lrt_by_hand(null, alternative, seeds):
    """The loop of the lesson "Is the random effect needed?", one simulated data set per seed."""
    lrt_star = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gt.ConvergenceWarning)     # singular fits: expected under H0
        for seed in seeds:
            y_star = null.simulate(1, seed=seed)["sim_1"]
            fit1 = alternative.refit(y_star, standard_errors=False)
            fit0 = null.refit(y_star, standard_errors=False)
            lrt_star.append(max(0.0, 2 * (fit1.loglik - fit0.loglik)))
    return np.array(lrt_star)


def test_bootstrap_lrt_is_the_lessons_loop_on_any_number_of_processes(seed_fits):
    """The statistics of the replicates are those of the lesson's loop with the same seeds (stream 5), the
    observed statistic and chi-square p-value those of anova, the p-value (1 + #{LRT* >= LRT}) / (1 + B);
    and all of it is the same on two processes, without touching the global random state."""
    from glmmteach.parallel import replicate_seeds
    null, alternative = seed_fits
    state = np.random.get_state()[1].copy()
    one = gt.bootstrap_lrt(null, alternative, nsim=10, seed=2024)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    by_hand = lrt_by_hand(null, alternative, replicate_seeds(2024, 10, stream=5))
    assert one.n_used == 10 and one.nsim == 10
    np.testing.assert_array_equal(one.lrt_star, by_hand)
    assert (by_hand > 1e-6).any() and (by_hand < 1e-6).any()      # both kinds of replicate: on and off the boundary
    anova = gt.anova(null, alternative).table.iloc[1]
    assert one.statistic == anova["Chisq"] == pytest.approx(2 * (alternative.loglik - null.loglik))
    assert one.df == anova["Chi Df"] == 1
    assert one.p_chisq == pytest.approx(anova["Pr(>Chisq)"], rel=1e-12)
    assert one.p_boot == (1 + np.sum(by_hand >= one.statistic)) / 11
    assert one.n_extreme == np.sum(by_hand >= one.statistic)
    two = gt.bootstrap_lrt(null, alternative, nsim=10, seed=2024, n_jobs=2)
    np.testing.assert_array_equal(two.lrt_star, one.lrt_star)
    assert two.p_boot == one.p_boot
    assert not np.array_equal(gt.bootstrap_lrt(null, alternative, nsim=10, seed=2025).lrt_star, one.lrt_star)
    table = one.table
    assert list(table.index) == ["LRT", "PBtest"] and list(table.columns) == ["stat", "df", "p.value"]
    assert table.loc["PBtest", "p.value"] == one.p_boot and np.isnan(table.loc["PBtest", "df"])
    lines = str(one).split("\n")
    assert lines[0] == f"Parametric bootstrap test; samples: 10; used: 10; extremes: {one.n_extreme}"
    assert lines[1:3] == [f"large : {SEEDS_ALTERNATIVE}", f"small : {SEEDS_NULL}"]
    assert lines[4].startswith("LRT ") and lines[5].startswith("PBtest ")


def simulated_counts(seed: int) -> pd.DataFrame:
    """60 Poisson counts in 10 groups, with neither an effect of x nor of the group: both nulls are true."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y": rng.poisson(3.0, 60).astype(float), "x": rng.uniform(-1, 1, 60),
                         "g": np.repeat([f"g{i}" for i in range(10)], 6)})


def test_bootstrap_lrt_under_a_true_null():
    """When the null is true: for a fixed effect (inside the parameter space) the replicates follow the
    chi-square(1) distribution; for a variance at 0 (on its boundary) many are exactly 0 and large ones are
    rare. The p-values lie in [1/(1 + B), 1]."""
    data = simulated_counts(11)
    fixed = gt.bootstrap_lrt(gt.glmm("y ~ 1", data, family="poisson"), gt.glmm("y ~ x", data, family="poisson"),
                             nsim=80, seed=1)
    assert fixed.df == 1 and fixed.n_used == 80 and (fixed.lrt_star > 0).all()
    assert 0.6 < fixed.lrt_star.mean() < 1.5                            # chi-square(1): mean 1
    assert stats.kstest(fixed.lrt_star, stats.chi2(1).cdf).pvalue > 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gt.ConvergenceWarning)          # the data's own fit is singular too
        variance = gt.bootstrap_lrt(gt.glmm("y ~ 1", data, family="poisson"),
                                    gt.glmm("y ~ 1 + (1 | g)", data, family="poisson"), nsim=40, seed=2)
    assert variance.df == 1 and variance.n_used == 40
    assert variance.statistic < 1e-12 and variance.p_boot == 1      # the data's fit is singular: LRT = 0 (rounding)
    assert np.mean(variance.lrt_star < 1e-8) > 0.3                      # half of them or more, in theory
    assert np.mean(variance.lrt_star > stats.chi2.ppf(0.95, 1)) < 0.15  # 2.5% under the 50:50 mixture
    for result in (fixed, variance):
        assert 1 / (1 + result.n_used) <= result.p_boot <= 1
        assert 0 <= result.p_chisq <= 1


def test_bootstrap_lrt_leaves_out_replicates_whose_refits_fail(seed_fits, monkeypatch):
    null, alternative = seed_fits
    calls = []
    refit = type(alternative).refit

    def failing_every_second(self, y, standard_errors=True):
        """The alternative's refit of every second replicate does not converge."""
        fit = refit(self, y, standard_errors)
        if self is alternative:
            calls.append(1)
            return dataclasses.replace(fit, converged=False) if len(calls) % 2 == 0 else fit
        return fit

    monkeypatch.setattr(type(alternative), "refit", failing_every_second)    # in this process (n_jobs=1)
    with pytest.warns(gt.ConvergenceWarning, match="3 of 6 bootstrap replicates had a refit that did not converge"):
        result = gt.bootstrap_lrt(null, alternative, nsim=6, seed=3)
    assert result.n_used == 3 and result.nsim == 6
    assert result.p_boot == (1 + np.sum(result.lrt_star >= result.statistic)) / 4


def test_bootstrap_lrt_refuses_what_it_cannot_test(seed_fits):
    null, alternative = seed_fits
    seeds = gt.datasets.load("crowder_seeds")
    with pytest.raises(ValueError, match="the alternative must be the larger model: it has 4 parameters and "
                                         "the null 5. Give the smaller model first"):
        gt.bootstrap_lrt(alternative, null, nsim=5)
    with pytest.raises(ValueError, match="different data: the null used 21 observations and the alternative 15"):
        gt.bootstrap_lrt(null, gt.glmm("cbind(germ, n - germ) ~ gen + (1 | plate)", seeds.iloc[:15],
                                       family="binomial"), nsim=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reml = gt.glmm(SEEDS_ALTERNATIVE, seeds, family="binomial", reml=True)
    with pytest.raises(ValueError, match="some fits are REML and some ML"):
        gt.bootstrap_lrt(null, reml, nsim=5)
    for nsim in (0, 2.5, True, "10"):
        with pytest.raises(ValueError, match="nsim must be a whole number of simulated data sets >= 1"):
            gt.bootstrap_lrt(null, alternative, nsim=nsim)
    with pytest.raises(ValueError, match="n_jobs must be a whole number of processes"):
        gt.bootstrap_lrt(null, alternative, nsim=2, n_jobs=0)
    with pytest.raises(TypeError, match="null must be a fitted model"):
        gt.bootstrap_lrt(seeds, alternative)
