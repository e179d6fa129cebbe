"""glmm() end to end on simulated data: the known parameters are recovered, for every family.

Bands (one fixed seed per case; 60 groups x 20 observations):

* fixed effects: within 4 of the fit's own standard errors of the truth;
* a random-effect SD: within 30% of the truth. Its relative standard error with 60 groups is about
  1/sqrt(2 * 60) = 9% when the groups are well informed (10-12% here for gaussian, poisson, Gamma,
  nbinom2, beta and the 5-trial binomial, from the inverse Hessian), so 30% is about 3 SEs;
* sigma (glmmTMB's sigma()): gaussian residual SD and Gamma 1/sqrt(shape) within 10% (relative SE
  about 2% with 1200 observations); beta precision within 15% (relative SE about 4%); nbinom2 size
  within 35% (relative SE about 10%);
* the correlation of gaussian correlated slopes (40 groups x 15): within 0.35 of the truth (its
  estimates over seeds 0-5 spread by about 0.13).

Also: REML standard errors cover the uncertainty of theta (crowder_seeds, as glmmTMB's sdreport).
"""
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import glmmteach as gt

GROUPS, PER_GROUP = 60, 20

# family -> (the family object, intercept, slope of x, SD of the group effect, sigma or None, band for sigma)
TRUTH = {
    "gaussian": ("gaussian", 2.0, 1.0, 1.5, 1.0, 0.10),
    "binomial": ("binomial", 0.5, 0.4, 0.6, None, None),
    "poisson": ("poisson", 0.5, 0.4, 0.6, None, None),
    "Gamma": (gt.families.Gamma(link="log"), 0.5, 0.4, 0.6, 0.5, 0.10),
    "nbinom2": ("nbinom2", 0.5, 0.4, 0.6, 2.0, 0.35),
    "beta": ("beta", 0.5, 0.4, 0.6, 10.0, 0.15),
}
FORMULA = {"binomial": "cbind(y, trials - y) ~ x + (1 | g)"}
SD_BAND = 0.30


def simulate(name, seed):
    """y from the GLMM with eta = b0 + b1 x + u_g, u_g ~ N(0, sd^2); binomial: 5 trials per row."""
    _, b0, b1, sd, phi, _ = TRUTH[name]
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"g": np.repeat([f"g{j:02d}" for j in range(GROUPS)], PER_GROUP),
                         "x": rng.normal(size=GROUPS * PER_GROUP)})
    eta = b0 + b1 * data.x.to_numpy() + np.repeat(rng.normal(0, sd, GROUPS), PER_GROUP)
    if name == "gaussian":
        y = rng.normal(eta, phi)
    elif name == "binomial":
        data["trials"] = 5
        y = rng.binomial(5, expit(eta))
    elif name == "poisson":
        y = rng.poisson(np.exp(eta))
    elif name == "Gamma":                    # shape 1/phi^2, mean exp(eta)
        y = rng.gamma(1 / phi ** 2, np.exp(eta) * phi ** 2)
    elif name == "nbinom2":                  # size phi, mean exp(eta)
        y = rng.negative_binomial(phi, phi / (phi + np.exp(eta)))
    else:                                    # beta: mean expit(eta), precision phi
        mu = expit(eta)
        y = rng.beta(mu * phi, (1 - mu) * phi)
    data["y"] = y
    return data


@pytest.mark.parametrize("name", list(TRUTH))
def test_parameter_recovery(name):
    family, b0, b1, sd, phi, sigma_band = TRUTH[name]
    data = simulate(name, seed=2024)
    fit = gt.glmm(FORMULA.get(name, "y ~ x + (1 | g)"), data, family=family)
    assert fit.converged
    z = (fit.fixef.to_numpy() - [b0, b1]) / fit.se.to_numpy()
    assert np.all(np.abs(z) < 4), z
    assert fit.varcorr.sd.iloc[0] == pytest.approx(sd, rel=SD_BAND)
    if phi is None:
        assert fit.sigma == 1.0
    else:
        assert fit.sigma == pytest.approx(phi, rel=sigma_band)


def test_correlated_slopes_recovery():
    """Gaussian (1 + x | g), 40 groups x 15, SDs (1.0, 0.5) and correlation 0.5. (A poisson version
    with these sizes estimates the correlation too noisily for a useful band: SE about 0.3.)"""
    sds, rho, beta = np.array([1.0, 0.5]), 0.5, np.array([0.5, 0.4])
    n_groups, per_group = 40, 15
    rng = np.random.default_rng(7)
    data = pd.DataFrame({"g": np.repeat(np.arange(n_groups), per_group),   # numeric grouping column
                         "x": rng.normal(size=n_groups * per_group)})
    U = rng.multivariate_normal(np.zeros(2), np.outer(sds, sds) * np.array([[1, rho], [rho, 1]]), n_groups)
    g = data.g.to_numpy()
    data["y"] = rng.normal(beta[0] + beta[1] * data.x + U[g, 0] + U[g, 1] * data.x, 1.0)
    fit = gt.glmm("y ~ x + (1 + x | g)", data, family="gaussian")
    assert fit.converged
    z = (fit.fixef.to_numpy() - beta) / fit.se.to_numpy()
    assert np.all(np.abs(z) < 4), z
    np.testing.assert_allclose(fit.varcorr.sd.to_numpy(), sds, rtol=SD_BAND)
    assert fit.ranef_corr["g"].iloc[1, 0] == pytest.approx(rho, abs=0.35)
    assert fit.sigma == pytest.approx(1.0, rel=0.10)


def test_reml_standard_errors_include_theta_uncertainty():
    """crowder_seeds REML: SE^2 = [H_v^-1]_bb + J V J'. The second term is positive semi-definite
    (rank one: one theta) and raises the SEs by 0.06%-1% (glmmTMB: the intercept's by 0.7%)."""
    seeds = gt.datasets.load("crowder_seeds")
    fit = gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", seeds, family="binomial",
                  reml=True)
    H_inverse = fit.optimum.factor.inverse_beta_block()
    extra = fit.vcov.to_numpy() - H_inverse
    eigenvalues = np.linalg.eigvalsh((extra + extra.T) / 2)
    assert eigenvalues.min() > -1e-10 * np.abs(eigenvalues).max()
    assert np.sum(eigenvalues > 1e-8 * eigenvalues.max()) == 1
    excess = fit.se.to_numpy() / np.sqrt(np.diag(H_inverse)) - 1
    assert np.all(excess > 0.0005) and np.all(excess < 0.01), excess
    assert excess[0] == pytest.approx(0.0074, abs=0.001)       # glmmTMB: 0.24563 / 0.24382 - 1
