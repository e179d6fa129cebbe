"""Tests of glmmteach.diagnostics: the PIT itself, reproducibility, the crowder printout and tests
against independent computations, recalculation by group, and calibration on simulated data.

The calibration tests here are the fast versions (50 data sets per family of 50 observations, 19
bootstrap refits); benchmarks/calibration.py runs larger ones and writes benchmarks/CALIBRATION.md.
"""
import json
import pathlib
import re
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import glmmteach as gt
from glmmteach.diagnostics import (BOOTSTRAP_TESTS, ScaledResiduals, benjamini_hochberg, bootstrap_pearson_chisq,
                                   bootstrap_statistics, scaled_residuals, simulate_residuals, test_categorical,
                                   test_dispersion, test_outliers, test_pearson_dispersion, test_quantiles,
                                   test_uniformity, test_zero_inflation)
from glmmteach.fit import ConvergenceWarning

CROWDER = "cbind(germ, n - germ) ~ gen * extract + (1 | plate)"
REFERENCE = pathlib.Path(__file__).parent / "reference"


# ---- data and fits ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeds():
    return gt.datasets.load("crowder_seeds")


@pytest.fixture(scope="module")
def crowder(seeds):
    return gt.glmm(CROWDER, data=seeds, family="binomial", reml=True)


def simulate_glmm_data(family, rng, n=100, groups=10, sd=0.5, size=None):
    """One data set from a random-intercept GLMM: eta = b0 + 0.4 x + u_g, u_g ~ N(0, sd^2).

    family: "poisson", "binomial" (1 to 10 trials), or "negbin" (negative binomial counts with the
    given ``size``: variance mu + mu^2/size).
    """
    g = np.repeat(np.arange(groups), n // groups)
    x = rng.normal(size=n)
    eta = (0.5 if family != "binomial" else -0.3) + 0.4 * x + rng.normal(0, sd, groups)[g]
    data = pd.DataFrame({"x": x, "g": [f"g{k}" for k in g]})
    if family == "binomial":
        trials = rng.integers(1, 11, n)
        data["y"] = rng.binomial(trials, 1 / (1 + np.exp(-eta)))
        data["failures"] = trials - data["y"]
    elif family == "poisson":
        data["y"] = rng.poisson(np.exp(eta))
    else:
        mu = np.exp(eta)
        data["y"] = rng.negative_binomial(size, size / (size + mu))
    return data


def fit_quietly(formula, data, family):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)   # an occasional singular fit is part of the game
        return gt.glmm(formula, data, family=family)


def fit_simulated(family, seed, **kwargs):
    data = simulate_glmm_data(family, np.random.default_rng(seed), **kwargs)
    if family == "binomial":
        return fit_quietly("cbind(y, failures) ~ x + (1 | g)", data, "binomial")
    return fit_quietly("y ~ x + (1 | g)", data, "poisson")


N_DATASETS, N_OBS, N_SIM, N_BOOT = 50, 50, 100, 19


@pytest.fixture(scope="module")
def calibration_residuals():
    """Scaled residuals (conditional=False) of 50 correctly specified Poisson and 50 binomial GLMM fits,
    each to 50 observations in 10 groups."""
    return {family: [simulate_residuals(fit_simulated(family, 1000 + k, n=N_OBS), n=N_SIM, seed=k)
                     for k in range(N_DATASETS)]
            for family in ("poisson", "binomial")}


# ---- the PIT ----------------------------------------------------------------------------------------
def test_pit_of_a_continuous_response_is_the_fraction_of_simulations_below():
    simulated = np.array([[0.1, 0.2, 0.7, 0.9], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    r = scaled_residuals([0.5, 0.5, 9.0], simulated, rng=1)
    np.testing.assert_array_equal(r, [0.5, 0.0, 1.0])


def test_pit_of_a_tie_is_a_uniform_draw_between_the_two_fractions():
    """r = P(sim < obs) + U P(sim == obs): for obs = 2 among (1, 2, 2, 3), between 1/4 and 3/4."""
    simulated = np.array([[1, 2, 2, 3], [0, 0, 0, 0]])
    r = scaled_residuals([2, 0], simulated, rng=7)
    U = np.random.default_rng(7).uniform(size=2)
    np.testing.assert_allclose(r, [0.25 + 0.5 * U[0], U[1]])


def test_pit_is_uniform_when_the_simulations_come_from_the_true_distribution():
    """No fitting: Poisson and (heavily tied) Bernoulli-like binomial data against their own law.
    Mean 1/2 and variance 1/12 within 4 standard errors of N = 5000 independent residuals
    (Var of a uniform's sample variance: (1/80 - 1/144)/N), and KS not rejecting at 1%."""
    rng = np.random.default_rng(11)
    N = 5000
    mu = np.exp(rng.normal(0, 1, N))
    p = rng.uniform(0.05, 0.95, N)
    cases = {"poisson": (rng.poisson(mu), rng.poisson(mu[:, None], (N, 100))),
             "binomial": (rng.binomial(2, p), rng.binomial(2, p[:, None], (N, 100)))}
    for observed, simulated in cases.values():
        r = scaled_residuals(observed, simulated, rng=3)
        assert abs(r.mean() - 1 / 2) < 4 * np.sqrt(1 / 12 / N)
        assert abs(r.var() - 1 / 12) < 4 * np.sqrt((1 / 80 - 1 / 144) / N)
        assert stats.kstest(r, "uniform").pvalue > 0.01


def test_from_simulations_needs_one_row_per_observation():
    with pytest.raises(ValueError, match="one row per observation"):
        ScaledResiduals.from_simulations([1, 2, 3], np.zeros((2, 10)))


# ---- reproducibility and the random state ------------------------------------------------------------
def test_same_seed_gives_the_same_residuals_and_the_global_state_is_untouched(crowder):
    np.random.seed(2024)
    before = np.random.get_state()
    first = simulate_residuals(crowder, n=100, seed=5)
    second = simulate_residuals(crowder, n=100, seed=5)
    other = simulate_residuals(crowder, n=100, seed=6)
    first.recalculate(np.arange(len(first)) // 3)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    np.testing.assert_array_equal(first.scaled, second.scaled)
    np.testing.assert_array_equal(first.simulated, second.simulated)
    assert not np.array_equal(first.scaled, other.scaled)


def test_seed_none_draws_a_seed_and_keeps_it(crowder):
    res = simulate_residuals(crowder, n=50, seed=None)
    again = simulate_residuals(crowder, n=50, seed=res.seed)
    np.testing.assert_array_equal(res.scaled, again.scaled)


def test_conditional_simulations_keep_the_fitted_random_effects(crowder):
    """conditional=True: the simulations scatter around the fitted mean with the fitted random
    effects (n p-hat); conditional=False: around the population-level mean, more widely."""
    unconditional = simulate_residuals(crowder, n=2000, seed=1)
    conditional = simulate_residuals(crowder, n=2000, seed=1, conditional=True)
    n = crowder.design.n
    np.testing.assert_allclose(conditional.simulated.mean(axis=1), n * crowder.predict(type="response"),
                               rtol=0.05)
    np.testing.assert_allclose(conditional.fitted, crowder.predict(type="response"))
    np.testing.assert_allclose(unconditional.fitted, crowder.predict(type="response", re_form="~0"))
    assert np.all(unconditional.simulated.var(axis=1) > conditional.simulated.var(axis=1))


# ---- the crowder model ---------------------------------------------------------------------------
def test_crowder_printout_has_dharmas_shape(crowder):
    res = simulate_residuals(crowder, n=250, seed=123)
    text = str(res)
    head, values = text.split("\n\n")
    assert " ".join(head.split()).startswith(
        "Scaled residuals from 250 simulations (refit = False, new random effects drawn")
    assert max(len(line) for line in text.splitlines()) <= 80          # a few values per line, as R prints
    assert len(values.splitlines()) > 1
    assert values.startswith("Scaled residual values: ") and values.endswith(" ...")
    printed = values.removeprefix("Scaled residual values: ").removesuffix(" ...").split()
    assert len(printed) == 20 == len(res) - 1
    assert printed == [f"{r:.3g}" for r in res.scaled[:20]]
    assert all(len(re.sub(r"^0\.0*|\.", "", p)) <= 3 for p in printed)      # 3 significant digits
    assert res.observed.tolist() == crowder.design.y.tolist()                 # success counts
    assert res.simulated.shape == (21, 250) and res.integer


def test_crowder_tests_agree_with_independent_computations(crowder):
    res = simulate_residuals(crowder, n=250, seed=123)
    # uniformity: scipy's KS on the same residuals
    ks = stats.kstest(res.scaled, stats.uniform.cdf)
    assert test_uniformity(res).statistic == pytest.approx(ks.statistic)
    assert test_uniformity(res).pvalue == pytest.approx(ks.pvalue)
    # dispersion: rebuild the simulations and the population-level expected counts by hand
    simulated = crowder.simulate(250, seed=123).to_numpy()
    expected = crowder.design.n * crowder.predict(type="response", re_form="~0")
    observed_var = np.var(crowder.design.y - expected, ddof=1)
    simulated_var = np.array([np.var(simulated[:, k] - expected, ddof=1) for k in range(250)])
    dispersion = test_dispersion(res)
    assert dispersion.statistic == pytest.approx(observed_var / simulated_var.mean())
    p = min(1, 2 * min(np.mean(simulated_var <= observed_var), np.mean(simulated_var >= observed_var)))
    assert dispersion.pvalue == pytest.approx(p)
    # outliers: scipy's binomial test on the count of residuals at 0 or 1
    outliers = int(np.sum((res.scaled == 0) | (res.scaled == 1)))
    assert test_outliers(res).statistic == outliers
    assert test_outliers(res).pvalue == pytest.approx(stats.binomtest(outliers, 21, 2 / 251).pvalue)
    # zero inflation: count zeros directly
    zeros = np.sum(simulated == 0, axis=0)
    assert test_zero_inflation(res).statistic == pytest.approx(np.sum(crowder.design.y == 0) / zeros.mean())


def test_results_print_like_htest(crowder):
    res = simulate_residuals(crowder, n=250, seed=123)
    for test, statistic_name in [(test_uniformity, "D = "), (test_dispersion, "dispersion = "),
                                 (test_outliers, "outliers = "), (test_zero_inflation, "ratioObsSim = ")]:
        result = test(res)
        lines = str(result).splitlines()
        assert 2 <= len(lines) <= 4
        assert lines[1].startswith(statistic_name) and "p-value = " in lines[1]
        assert lines[2].startswith("alternative hypothesis: ")
        assert 0 <= result.pvalue <= 1 and result.name


def test_test_functions_are_not_collected_by_pytest():
    for function in (test_uniformity, test_dispersion, test_outliers, test_zero_inflation, test_pearson_dispersion,
                     test_quantiles, test_categorical):
        assert function.__test__ is False


# ---- recalculating by group ---------------------------------------------------------------------------
def test_recalculate_sums_observations_and_simulations_within_groups(crowder, seeds):
    res = simulate_residuals(crowder, n=250, seed=123)
    treatment = seeds["gen"].astype(str) + ":" + seeds["extract"].astype(str)
    grouped = res.recalculate(treatment)
    totals = pd.DataFrame(res.simulated).groupby(treatment.to_numpy()).sum()
    assert grouped.group.tolist() == sorted(treatment.unique())
    np.testing.assert_array_equal(grouped.observed, seeds.groupby(treatment)["germ"].sum().to_numpy())
    np.testing.assert_array_equal(grouped.simulated, totals.to_numpy())
    np.testing.assert_allclose(grouped.expected, pd.Series(res.expected).groupby(treatment).sum())
    np.testing.assert_array_equal(grouped.scaled, res.recalculate(treatment).scaled)
    lower = np.mean(grouped.simulated < grouped.observed[:, None], axis=1)
    upper = np.mean(grouped.simulated <= grouped.observed[:, None], axis=1)
    assert np.all((lower <= grouped.scaled) & (grouped.scaled <= upper))
    assert "summed within 4 groups" in str(grouped)


def test_recalculate_by_column_name_uses_the_fitted_data(crowder, seeds):
    from_fit = simulate_residuals(crowder, n=50).recalculate("plate")      # the fit keeps the rows it used
    res = simulate_residuals(crowder, n=50, data=seeds)
    by_plate = res.recalculate("plate")          # one observation per plate: nothing is summed
    order = np.argsort(seeds["plate"].astype(str).to_numpy(), kind="stable")
    np.testing.assert_array_equal(by_plate.observed, res.observed[order])
    np.testing.assert_array_equal(from_fit.scaled, by_plate.scaled)
    with pytest.raises(ValueError, match="one label per residual"):
        res.recalculate(np.arange(5))


# ---- the quantile and categorical tests ----------------------------------------------------------------
def test_quantile_test_detects_spread_changing_along_the_predictor():
    """Simulations N(0, 1) everywhere; observations N(0, (0.2 + 2x)^2): the outer quantile
    curves bend, the median stays."""
    rng = np.random.default_rng(3)
    x = np.linspace(0, 1, 400)
    res = ScaledResiduals.from_simulations(rng.normal(0, 0.2 + 2 * x), rng.normal(size=(400, 200)), fitted=x)
    pvalues = test_quantiles(res).details["pvalues"]
    assert pvalues[0] < 0.001 and pvalues[2] < 0.001 and pvalues[1] > 0.01
    flat = ScaledResiduals.from_simulations(rng.normal(size=400), rng.normal(size=(400, 200)), fitted=x)
    assert test_quantiles(flat).pvalue > 0.05


def test_categorical_test_finds_the_level_with_the_wrong_spread():
    rng = np.random.default_rng(4)
    level = np.repeat(["a", "b", "c"], 150)
    observed = rng.normal(0, np.where(level == "c", 3.0, 1.0))
    res = ScaledResiduals.from_simulations(observed, rng.normal(size=(450, 200)))
    result = test_categorical(res, level)
    assert result.details["levels"] == ["a", "b", "c"]
    assert result.details["pvalues"][2] < 0.001 and np.all(result.details["pvalues"][:2] > 0.001)
    assert result.pvalue < 0.001


def test_benjamini_hochberg_matches_r_p_adjust():
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.2, NA), "BH") -> 0.04 0.05333333 0.05333333 0.2 NA
    adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.2, np.nan])
    np.testing.assert_allclose(adjusted[:4], [0.04, 0.16 / 3, 0.16 / 3, 0.2])
    assert np.isnan(adjusted[4])


# ---- the parametric bootstrap --------------------------------------------------------------------
def test_bootstrap_pvalue_counts_the_observed_statistic_among_the_null_values():
    from glmmteach.diagnostics import _bootstrap_pvalue
    null = np.array([1.0, 2.0, 3.0, 4.0, np.nan])     # a failed replicate (nan) is left out: B = 4
    assert _bootstrap_pvalue(null, 3.0, "greater") == pytest.approx(3 / 5)
    assert _bootstrap_pvalue(null, 3.0, "less") == pytest.approx(4 / 5)
    assert _bootstrap_pvalue(null, 0.5, "two-sided") == pytest.approx(2 / 5)
    assert _bootstrap_pvalue(null, 3.0, "two-sided") == 1.0
    assert np.isnan(_bootstrap_pvalue(null, np.nan, "greater"))


def test_bootstrap_replicate_is_simulate_refit_and_residuals_as_the_original(crowder, seeds):
    """One replicate recomputed step by step: y* from the fit with new random effects, refit, residuals
    of y* with the original's number of simulations, grouped as the original, then each statistic."""
    from glmmteach.diagnostics import _bootstrap_replicate
    res = simulate_residuals(crowder, n=60, seed=4).recalculate(seeds["extract"])
    row = _bootstrap_replicate(res, (31, 32))
    y_star = crowder.simulate(1, seed=31)["sim_1"].to_numpy()
    refitted = crowder.refit(y_star, standard_errors=False)
    by_hand = simulate_residuals(refitted, n=60, seed=32).recalculate(seeds["extract"].to_numpy())
    assert len(by_hand) == 2
    assert row["uniformity"] == stats.kstest(by_hand.scaled, "uniform").statistic
    assert row["dispersion"] == test_dispersion(by_hand).statistic
    assert row["outliers"] == np.sum((by_hand.scaled == 0) | (by_hand.scaled == 1))
    assert set(row) == set(BOOTSTRAP_TESTS)


def test_bootstrap_is_reproducible_kept_and_leaves_the_global_state_alone(crowder, monkeypatch):
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    first = test_uniformity(simulate_residuals(crowder, n=50, seed=8), n_boot=9)
    res = simulate_residuals(crowder, n=50, seed=8)
    second = test_uniformity(res, n_boot=9)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    assert first.pvalue == second.pvalue
    assert "parametric bootstrap with 9 refits" in str(second)
    assert len(bootstrap_statistics(res, 9)) == 9
    # every other test with the same n_boot reuses the same refits
    monkeypatch.setattr(type(crowder), "refit", lambda *args: pytest.fail("refitted again"))
    assert test_dispersion(res, n_boot=9).pvalue == _pvalue_among(bootstrap_statistics(res, 9)["dispersion"],
                                                                  test_dispersion(res).statistic)


def _pvalue_among(null, observed):
    greater, less = (1 + np.sum(null >= observed)) / (len(null) + 1), (1 + np.sum(null <= observed)) / (len(null) + 1)
    return min(1.0, 2 * min(greater, less))


def _make_refits_fail(monkeypatch, fit, every: int, error: Exception) -> None:
    """Make every ``every``-th refit of ``fit``'s class raise ``error``."""
    calls = {"n": 0}
    refit = type(fit).refit

    def failing(fit, y, standard_errors=True):
        calls["n"] += 1
        if calls["n"] % every == 0:
            raise error
        return refit(fit, y, standard_errors)

    monkeypatch.setattr(type(fit), "refit", failing)


def test_bootstrap_leaves_out_failed_refits_and_says_how_many(crowder, monkeypatch):
    _make_refits_fail(monkeypatch, crowder, 3, ValueError("no optimum"))
    res = simulate_residuals(crowder, n=50, seed=8)
    with pytest.warns(RuntimeWarning, match="3 of 9 refits in the parametric bootstrap did not converge"):
        result = test_uniformity(res, n_boot=9)
    assert "with 6 refits" in result.method


def test_bootstrap_on_two_processes_gives_the_same_statistics(crowder):
    """Each refit has its own seeds, so the null statistics do not depend on n_jobs."""
    one = bootstrap_statistics(simulate_residuals(crowder, n=40, seed=12), 6, n_jobs=1)
    two = bootstrap_statistics(simulate_residuals(crowder, n=40, seed=12), 6, n_jobs=2)
    pd.testing.assert_frame_equal(one, two)
    res = simulate_residuals(crowder, n=40, seed=12)
    assert test_dispersion(res, n_boot=6, n_jobs=2).pvalue == test_dispersion(res, n_boot=6).pvalue


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5, True, "2"])
def test_bad_n_jobs_is_a_clear_error(crowder, n_jobs):
    with pytest.raises(ValueError, match="n_jobs must be a whole number of processes >= 1, or -1"):
        bootstrap_statistics(simulate_residuals(crowder, n=20, seed=1), 3, n_jobs=n_jobs)


@pytest.mark.parametrize("n_boot", [-1, 2.5, True, "99"])
def test_bad_n_boot_is_a_clear_error(crowder, n_boot):
    with pytest.raises(ValueError, match="n_boot must be a whole number"):
        test_uniformity(simulate_residuals(crowder, n=20), n_boot=n_boot)


def test_bootstrap_needs_the_fitted_model():
    rng = np.random.default_rng(1)
    res = ScaledResiduals.from_simulations(rng.poisson(3, 5), rng.poisson(3, (5, 40)))
    with pytest.raises(ValueError, match=r"n_boot needs residuals made by gt.simulate_residuals\(fit\)"):
        test_dispersion(res, n_boot=19)


# ---- Pearson's chi-squared dispersion test ------------------------------------------------------------
def overdispersed_poisson_data(seed: int, shape: float | None = 1.5, groups: int = 40):
    """Poisson GLMM counts, 40 groups x 10, eta = 0.5 + 0.4 x + u_g (sd 0.5); with ``shape``, each mean is
    multiplied by a Gamma(shape, mean 1) draw (negative binomial counts, variance mu + mu^2/shape)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), 10)
    x = rng.normal(size=len(g))
    mu = np.exp(0.5 + 0.4 * x + rng.normal(0, 0.5, groups)[g])
    if shape is not None:
        mu = mu * rng.gamma(shape, 1 / shape, len(g))
    return pd.DataFrame({"x": x, "g": [f"g{k:02d}" for k in g], "y": rng.poisson(mu)})


def test_pearson_statistic_matches_glmmtmb_on_crowder(crowder):
    """X^2 = sum of squared Pearson residuals and df = df.residual of glmmTMB's REML fit of the seeds
    (tests/reference/crowder_binomial_reml.json); the chi-squared p-value is that of X^2 on df."""
    ref = json.loads((REFERENCE / "crowder_binomial_reml.json").read_text())
    result = test_pearson_dispersion(crowder)
    assert result.details["chisq"] == pytest.approx(ref["pearson_ss"], rel=1e-3)
    assert result.details["df"] == ref["df_resid"]
    assert result.statistic == pytest.approx(ref["pearson_ss"] / ref["df_resid"], rel=1e-3)
    assert result.pvalue == pytest.approx(stats.chi2.sf(ref["pearson_ss"], ref["df_resid"]), abs=2e-3)
    assert test_pearson_dispersion(crowder, "less").pvalue == pytest.approx(1 - result.pvalue)
    assert test_pearson_dispersion(simulate_residuals(crowder, n=10)).pvalue == result.pvalue
    lines = str(result).splitlines()
    assert any(line.startswith("dispersion = ") for line in lines)
    assert max(map(len, lines)) <= 88           # the long method line wraps within a page's code column


def test_pearson_statistic_of_a_glm_is_statsmodels_pearson_chi2():
    """Without random effects the test is the classical one: statsmodels' Poisson GLM gives the same
    Pearson chi-squared and residual degrees of freedom."""
    import statsmodels.api as sm
    data = overdispersed_poisson_data(3, shape=None, groups=10)
    glm = sm.GLM(data["y"], sm.add_constant(data["x"]), family=sm.families.Poisson()).fit()
    result = test_pearson_dispersion(gt.glmm("y ~ x", data, family="poisson"))
    assert result.details["chisq"] == pytest.approx(glm.pearson_chi2, rel=1e-6)
    assert result.details["df"] == glm.df_resid
    assert result.pvalue == pytest.approx(stats.chi2.sf(glm.pearson_chi2, glm.df_resid), rel=1e-5)


def test_pearson_bootstrap_is_simulate_refit_and_pearson(crowder):
    """Refit b: y* from the fit with new random effects, from the b-th seed of SeedSequence([seed, 3]),
    refitted, then X^2 of the refit with its own random effects; the p-value counts the observed X^2
    among them."""
    null = bootstrap_pearson_chisq(crowder, 3, seed=5)
    by_hand = []
    for seed in np.random.SeedSequence([5, 3]).generate_state(3):
        refitted = crowder.refit(crowder.simulate(1, seed=int(seed))["sim_1"].to_numpy(), standard_errors=False)
        by_hand.append(np.sum(refitted.residuals("pearson") ** 2))
    np.testing.assert_array_equal(null, by_hand)
    result = test_pearson_dispersion(crowder, n_boot=3, seed=5)
    np.testing.assert_array_equal(result.details["null_chisq"], null)
    chisq = result.details["chisq"]
    assert result.pvalue == (1 + np.sum(null >= chisq)) / 4
    assert "parametric bootstrap with 3 refits" in result.method


def test_pearson_bootstrap_is_reproducible_and_leaves_the_global_state_alone(crowder):
    np.random.seed(9)
    before = np.random.get_state()[1].copy()
    first = test_pearson_dispersion(crowder, "two-sided", n_boot=5, seed=21)
    second = test_pearson_dispersion(crowder, "two-sided", n_boot=5, seed=21)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    np.testing.assert_array_equal(first.details["null_chisq"], second.details["null_chisq"])
    assert first.pvalue == second.pvalue and first.details["seed"] == 21
    other = test_pearson_dispersion(crowder, n_boot=5, seed=22)
    assert not np.array_equal(other.details["null_chisq"], first.details["null_chisq"])
    drawn = test_pearson_dispersion(crowder, n_boot=2, seed=None)
    np.testing.assert_array_equal(bootstrap_pearson_chisq(crowder, 2, seed=drawn.details["seed"]),
                                  drawn.details["null_chisq"])


def test_pearson_bootstrap_gives_the_same_values_on_any_number_of_processes(crowder):
    """Each refit has its own seed, so the refits' X^2 and the p-value do not depend on n_jobs."""
    one = test_pearson_dispersion(crowder, "two-sided", n_boot=5, seed=3)
    two = test_pearson_dispersion(crowder, "two-sided", n_boot=5, seed=3, n_jobs=2)
    np.testing.assert_array_equal(two.details["null_chisq"], one.details["null_chisq"])
    assert two.pvalue == one.pvalue


def test_pearson_bootstrap_leaves_out_failed_refits_and_says_how_many(crowder, monkeypatch):
    _make_refits_fail(monkeypatch, crowder, 2, np.linalg.LinAlgError("singular"))
    with pytest.warns(RuntimeWarning, match="2 of 4 refits in the parametric bootstrap did not converge"):
        result = test_pearson_dispersion(crowder, n_boot=4)
    assert "with 2 refits" in result.method and np.isnan(result.details["null_chisq"]).sum() == 2


def test_pearson_test_errors_are_clear(crowder):
    with pytest.raises(ValueError, match="alternative must be 'two-sided', 'greater' or 'less'"):
        test_pearson_dispersion(crowder, alternative="over")
    with pytest.raises(ValueError, match="n_boot must be a whole number"):
        test_pearson_dispersion(crowder, n_boot=2.5)
    with pytest.raises(ValueError, match="n_jobs must be a whole number"):
        test_pearson_dispersion(crowder, n_boot=2, n_jobs=0)
    rng = np.random.default_rng(1)
    res = ScaledResiduals.from_simulations(rng.poisson(3, 5), rng.poisson(3, (5, 40)))
    with pytest.raises(ValueError, match="needs a fitted model"):
        test_pearson_dispersion(res)


@pytest.fixture(scope="module")
def pearson_40_groups():
    """The Pearson test with 19 refits on Poisson GLMM fits to 4 correct and 4 overdispersed data sets
    (40 groups x 10; Gamma multiplier of shape 1.5)."""
    results = {}
    for name, shape in (("correct", None), ("overdispersed", 1.5)):
        fits = [fit_quietly("y ~ x + (1 | g)", overdispersed_poisson_data(700 + k, shape), "poisson")
                for k in range(4)]
        results[name] = [test_pearson_dispersion(fit, n_boot=N_BOOT, seed=k) for k, fit in enumerate(fits)]
    return results


def test_pearson_bootstrap_finds_gamma_overdispersion_that_the_fit_hides(pearson_40_groups):
    """Overdispersed counts (variance mu + mu^2/1.5) fitted as Poisson: every data set's X^2 lies above
    all 19 of its refits (p = 1/20, the smallest possible), with a dispersion ratio far above 1."""
    for result in pearson_40_groups["overdispersed"]:
        assert result.pvalue == 1 / (N_BOOT + 1) and result.statistic > 1.3


def test_pearson_bootstrap_does_not_reject_correct_models_and_shows_the_chisq_bias(pearson_40_groups):
    """Correct Poisson GLMMs: no rejection at 5% among the 4 (each would reject with probability 1/20).
    Their X^2 and the refits' X^2 lie *below* df on average: the fitted random effects absorb more
    than df subtracts, the bias that makes the chi-squared p-value conservative."""
    results = pearson_40_groups["correct"]
    assert all(result.pvalue > 0.05 for result in results)
    assert np.mean([r.statistic for r in results]) < 1
    assert np.mean([np.mean(r.details["null_chisq"]) / r.details["df"] for r in results]) < 1


# ---- calibration (fast versions) ----------------------------------------------------------------------
def _sampling_interval(trials: int, rate: float = 0.05, level: float = 0.99) -> tuple[int, int]:
    """Central binomial interval of the number of rejections when each test rejects with ``rate``."""
    lower, upper = stats.binom.ppf([(1 - level) / 2, (1 + level) / 2], trials, rate)
    return int(lower), int(upper)


def _uniform_pvalue_checks(pvalues: np.ndarray) -> dict:
    """For p-values that should be uniform: the counts at or below 0.05, 0.25 and 0.5, each with its
    99% binomial interval. A bootstrap p-value with B = 19 takes the values k/20, so P(p <= a) is
    exactly a at these levels when the model is right."""
    return {level: (int(np.sum(pvalues <= level)), _sampling_interval(len(pvalues), level))
            for level in (0.05, 0.25, 0.5)}


@pytest.fixture(scope="module")
def uniformity_pvalues(calibration_residuals):
    """KS p-values of the 100 fitted GLMMs: the test's own, and by parametric bootstrap (19 refits)."""
    residuals = calibration_residuals["poisson"] + calibration_residuals["binomial"]
    return {"ks": np.array([test_uniformity(res).pvalue for res in residuals]),
            "bootstrap": np.array([test_uniformity(res, n_boot=N_BOOT).pvalue for res in residuals])}


def test_bootstrap_uniformity_test_keeps_its_level_under_a_correct_glmm(uniformity_pvalues):
    """100 correctly specified random-intercept GLMMs (50 Poisson, 50 binomial; 50 observations in 10
    groups, sd 0.5), fitted, with the KS p-value from a parametric bootstrap with 19 refits: the
    rejections at 5%, and the p-values at or below 0.25 and 0.5, are within the 99% binomial
    intervals around their nominal rates, as for uniform p-values."""
    for level, (count, (lower, upper)) in _uniform_pvalue_checks(uniformity_pvalues["bootstrap"]).items():
        assert lower <= count <= upper, (level, count, (lower, upper))


def test_ks_pvalue_alone_is_conservative_with_estimated_parameters(uniformity_pvalues):
    """The same fits with the KS test's own p-value: it does not reject too often, but its p-values
    crowd towards 1 (far fewer than a quarter at or below 0.25): the estimates adapt to the data, the
    effect Lilliefors described. This is why the bootstrap exists (benchmarks/CALIBRATION.md)."""
    checks = _uniform_pvalue_checks(uniformity_pvalues["ks"])
    count, (_, upper) = checks[0.05]
    assert count <= upper
    count, (lower, _) = checks[0.25]
    assert count < lower


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_uniformity_test_has_its_level_when_simulating_from_the_true_model(family):
    """The same GLMMs without fitting: 200 data sets, each observation against 100 draws from its
    true conditional distribution (true fixed and random effects). Then the residuals are
    independent uniforms and the KS rejection rate must lie in the two-sided 99% interval around 5%
    (4 to 18 of 200): this checks the randomised PIT itself, free of estimation effects."""
    rejections = 0
    for k in range(200):
        rng = np.random.default_rng(k)
        g = np.repeat(np.arange(10), 10)
        eta = 0.4 * rng.normal(size=100) + rng.normal(0, 0.5, 10)[g]
        if family == "poisson":
            mu = np.exp(0.5 + eta)
            observed, simulated = rng.poisson(mu), rng.poisson(mu[:, None], (100, N_SIM))
        else:
            trials, p = rng.integers(1, 11, 100), 1 / (1 + np.exp(0.3 - eta))
            observed, simulated = rng.binomial(trials, p), rng.binomial(trials[:, None], p[:, None], (100, N_SIM))
        res = ScaledResiduals.from_simulations(observed, simulated, seed=k)
        rejections += test_uniformity(res).pvalue < 0.05
    lower, upper = _sampling_interval(200)
    assert lower <= rejections <= upper


def test_binomial_residuals_have_the_mean_and_variance_of_a_uniform(calibration_residuals):
    """Pooled over the 50 binomial GLMM data sets (2500 residuals): mean 1/2 and variance 1/12 within
    4 standard errors. The standard error is the larger of the one for 2500 independent uniforms
    and the one estimated from the spread between the (independent) data sets, which accounts for
    the correlation of residuals in one group."""
    residuals = calibration_residuals["binomial"]
    means = np.array([res.scaled.mean() for res in residuals])
    variances = np.array([res.scaled.var() for res in residuals])
    N = sum(len(res) for res in residuals)
    se_mean = max(np.sqrt(1 / 12 / N), means.std(ddof=1) / np.sqrt(len(means)))
    se_var = max(np.sqrt((1 / 80 - 1 / 144) / N), variances.std(ddof=1) / np.sqrt(len(variances)))
    pooled = np.concatenate([res.scaled for res in residuals])
    assert abs(pooled.mean() - 1 / 2) < 4 * se_mean
    assert abs(pooled.var() - 1 / 12) < 4 * se_var


@pytest.mark.parametrize("random_effect", [True, False])
def test_dispersion_test_detects_negative_binomial_counts_fitted_as_poisson(random_effect):
    """Negative binomial counts (size 1: variance mu + mu^2) fitted as Poisson, 30 data sets: the
    dispersion test rejects in most. With a random effect the simulations keep the fitted random
    effects (conditional=True), as DHARMa recommends for dispersion tests; without one, the default."""
    rejections = 0
    for k in range(30):
        data = simulate_glmm_data("negbin", np.random.default_rng(500 + k), size=1.0,
                                  sd=0.5 if random_effect else 0.0)
        formula = "y ~ x + (1 | g)" if random_effect else "y ~ x"
        res = simulate_residuals(fit_quietly(formula, data, "poisson"), n=N_SIM, seed=k,
                                 conditional=random_effect)
        result = test_dispersion(res)
        rejections += result.pvalue < 0.05 and result.statistic > 1
    assert rejections >= 24


def test_the_core_does_not_import_matplotlib():
    code = "import sys, glmmteach, glmmteach.diagnostics; print('matplotlib' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "False"
