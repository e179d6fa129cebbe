"""Dispersion formulas (``dispformula``), and the nbinom1 and beta-binomial families, beyond the glmmTMB
references of test_reference.py: exact Gaussian ML, clear errors, per-observation dispersion in simulate,
residuals and refit, and parameter recovery on simulated data."""
import warnings

import numpy as np
import pandas as pd
import pytest

import glmmteach as gt


def grouped_gaussian(seed=1, groups=3, size=200):
    rng = np.random.default_rng(seed)
    g = np.repeat([f"g{k}" for k in range(groups)], size)
    sd = np.repeat(np.linspace(0.5, 2.0, groups), size)
    y = np.repeat(np.linspace(1.0, 3.0, groups), size) + rng.normal(0, 1, groups * size) * sd
    return pd.DataFrame({"y": y, "g": g})


@pytest.mark.parametrize("reml", [False, True])
def test_gaussian_with_a_variance_per_group_is_exact(reml):
    """y ~ g with dispformula ~ g: the ML estimates are each group's mean and its variance with divisor n_g,
    glmmTMB's log(sigma^2) coefficients their logs (the first level the intercept); under REML each group's
    variance has divisor n_g - 1 (its own mean integrated out)."""
    data = grouped_gaussian()
    fit = gt.glmm("y ~ g", data, reml=reml, dispformula="~ g")
    by = data.groupby("g").y
    means, variances = by.mean().to_numpy(), by.var(ddof=1 if reml else 0).to_numpy()
    np.testing.assert_allclose(fit.beta, [means[0], *(means[1:] - means[0])], rtol=1e-6)
    log_var = np.log(variances)
    np.testing.assert_allclose(fit.fixef_disp, [log_var[0], *(log_var[1:] - log_var[0])], rtol=1e-5, atol=1e-6)
    assert list(fit.fixef_disp.index) == ["(Intercept)", "gg1", "gg2"]
    np.testing.assert_allclose(fit.phi, np.sqrt(np.repeat(variances, 200)), rtol=1e-5)
    # the SE of a log variance from n_g normal draws: sqrt(2/n_g) (ML), sqrt(2/(n_g - 1)) (REML)
    assert fit.se_disp.iloc[0] == pytest.approx(np.sqrt(2 / (199 if reml else 200)), rel=1e-3)
    expected = sum(np.sum(-0.5 * np.log(2 * np.pi * v) - 0.5 * (part - part.mean()) ** 2 / v)
                   for part, v in zip((p.to_numpy() for _, p in by), variances))
    if not reml:
        assert fit.loglik == pytest.approx(expected, abs=1e-6)


def test_without_dispformula_the_dispersion_coefficients_are_empty():
    fit = gt.glmm("y ~ g", grouped_gaussian())
    assert fit.fixef_disp.empty and fit.se_disp.empty
    assert fit.design.disp_labels == ["log(sigma)"]
    same = gt.glmm("y ~ g", grouped_gaussian(), dispformula="~ 1")     # glmmTMB's default
    assert same.design.disp_formula is None and same.loglik == pytest.approx(fit.loglik, abs=1e-9)


@pytest.mark.parametrize("dispformula, message", [
    ("~ (1 | g)", r"random-effect terms in dispformula are not supported yet"),
    ("~ x + (1 | g)", r"random-effect terms in dispformula are not supported yet"),
    ("y ~ g", r"dispformula has no response: write '~ g'"),
    ("g", r"dispformula must start with '~'"),
    ("~ h", r"unknown column 'h' in the dispersion formula"),
])
def test_dispformula_errors(dispformula, message):
    data = grouped_gaussian().assign(x=1.0)
    with pytest.raises(ValueError, match=message):
        gt.glmm("y ~ 1", data, dispformula=dispformula)


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_dispformula_for_a_family_without_dispersion_is_an_error(family):
    data = pd.DataFrame({"y": [0, 1, 1, 0, 1, 0], "x": [1, 2, 3, 4, 5, 6]})
    with pytest.raises(ValueError, match=rf"the {family} family has no dispersion parameter, so it takes no "
                                         r"dispformula \('~ x'\); dispersion formulas are for the families "
                                         r"gaussian, Gamma, nbinom1, nbinom2, beta and betabinomial"):
        gt.glmm("y ~ 1", data, family=family, dispformula="~ x")


def test_missing_values_of_the_dispersion_formula_are_dropped_with_a_warning():
    data = grouped_gaussian()
    data["z"] = np.where(np.arange(len(data)) % 50 == 0, np.nan, np.random.default_rng(2).normal(size=len(data)))
    with pytest.warns(UserWarning, match=r"12 of 600 rows had missing values.*z: 12"):
        fit = gt.glmm("y ~ 1", data, dispformula="~ g + z")
    assert fit.nobs == 588 and len(fit.data) == 588


def test_an_aliased_dispersion_column_is_named():
    data = grouped_gaussian().assign(z=1.0)
    with pytest.raises(ValueError, match=r"the dispersion formula's column 'z' is a linear combination of the "
                                         r"columns before it"):
        gt.glmm("y ~ 1", data, dispformula="~ g + z")


@pytest.fixture(scope="module")
def salmon():
    fish = gt.datasets.load("fish_vaccines")
    fish = fish.assign(vaccine=pd.Categorical(fish.vaccine), fish=fish.fish.astype(str),
                       day=pd.Categorical(fish.day))
    return gt.glmm("wt ~ vaccine * day + (1 | fish)", fish, family=gt.families.Gamma(link="log"),
                   dispformula="~ day")


def test_simulations_carry_each_observations_dispersion(salmon):
    """Conditional simulations around the fitted means: y/mu - 1 has SD sigma_i (the Gamma's coefficient of
    variation), one per day, as the dispersion model says."""
    sims = salmon.simulate(200, seed=4, conditional=True).to_numpy()
    mu = salmon.fitted()
    relative = sims / mu[:, None] - 1
    day = salmon.data.day.to_numpy()
    for level in np.unique(day):
        rows = day == level
        sigma = salmon.phi[rows][0]
        np.testing.assert_allclose(salmon.phi[rows], sigma)
        assert relative[rows].std() == pytest.approx(sigma, rel=0.03)


def test_scaled_residuals_of_a_dispersion_model_are_uniform(salmon):
    """Simulated (scaled) residuals draw each observation with its own dispersion: near uniform on the salmon,
    day by day (with one dispersion for all days, the early days' residuals crowd the middle)."""
    scaled = gt.simulate_residuals(salmon, n=100, seed=1).scaled
    assert scaled.shape == (salmon.nobs,)
    day = salmon.data.day.to_numpy()
    for level in np.unique(day):
        part = scaled[day == level]
        assert abs(part.mean() - 0.5) < 0.05 and abs(part.std() - np.sqrt(1 / 12)) < 0.03, (level, part.std())


def test_pearson_residuals_use_each_observations_dispersion():
    """nbinom1 with a dispersion per group: (y - mu) / sqrt(mu (1 + phi_i)), glmmTMB's variance function at
    predict(type = "disp")."""
    rng = np.random.default_rng(3)
    g = np.repeat(["a", "b"], 300)
    phi = np.where(g == "a", 0.5, 4.0)
    y = gt.families.NBinom1().simulate(np.full(600, 6.0), phi, rng)
    fit = gt.glmm("y ~ 1", pd.DataFrame({"y": y, "g": g}), family="nbinom1", dispformula="~ g")
    mu = fit.fitted()
    assert len(np.unique(np.round(fit.phi, 12))) == 2
    np.testing.assert_allclose(fit.residuals("pearson"), (y - mu) / np.sqrt(mu * (1 + fit.phi)), rtol=1e-12)
    np.testing.assert_allclose(np.exp(fit.fixef_disp.cumsum()), [0.5, 4.0], rtol=0.35)


def test_refit_to_a_simulated_response_keeps_the_dispersion_model(salmon):
    y = salmon.simulate(1, seed=8).iloc[:, 0].to_numpy()
    refit = salmon.refit(y)
    assert list(refit.fixef_disp.index) == list(salmon.fixef_disp.index)
    assert np.all(np.abs(refit.fixef_disp - salmon.fixef_disp) < 4 * salmon.se_disp)
    assert refit.loglik != salmon.loglik and refit.converged


# --- the new families: parameter recovery on simulated data -------------------------------------------------
def simulated_groups(family, beta, sd, phi, seed, groups=60, size=20, trials=None):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), size)
    x = rng.normal(size=groups * size)
    eta = beta[0] + beta[1] * x + rng.normal(0, sd, groups)[g]
    mu = family.link.inverse(eta)
    n = np.full(groups * size, 1.0) if trials is None else rng.integers(trials[0], trials[1], groups * size) * 1.0
    y = family.simulate(mu, phi, rng, n=n)
    return pd.DataFrame({"y": y, "n": n, "f": n - y, "x": x, "g": g.astype(str)})


@pytest.mark.parametrize("family, response, phi, trials", [
    ("nbinom1", "y", 2.5, None),
    ("betabinomial", "cbind(y, f)", 6.0, (5, 30)),
], ids=["nbinom1", "betabinomial"])
def test_new_families_recover_their_parameters(family, response, phi, trials):
    """On data simulated with known beta, random-intercept SD and dispersion, each estimate is within 3.5 of its
    standard errors (the dispersion: of the SE of log sigma from the Hessian) on each of three data sets."""
    fam = gt.families.get(family)
    beta, sd = np.array([0.8 if family == "nbinom1" else -0.4, 0.5]), 0.6
    for seed in range(3):
        data = simulated_groups(fam, beta, sd, phi, seed, trials=trials)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fit = gt.glmm(f"{response} ~ x + (1 | g)", data, family=family)
        assert np.all(np.abs(fit.beta - beta) < 3.5 * fit.se.to_numpy()), (seed, fit.beta)
        assert abs(fit.varcorr.sd[0] - sd) < 0.25, (seed, fit.varcorr.sd[0])
        dispersion = gt.glmm(f"{response} ~ x + (1 | g)", data, family=family, dispformula="~ 1 + x")
        log_sigma, se = dispersion.fixef_disp.to_numpy(), dispersion.se_disp.to_numpy()
        assert abs(log_sigma[0] - np.log(phi)) < 3.5 * se[0], (seed, log_sigma, se)
        assert abs(log_sigma[1]) < 3.5 * se[1], (seed, log_sigma, se)     # no trend in x was simulated
        assert abs(np.log(fit.sigma) - np.log(phi)) < 3.5 * se[0]
