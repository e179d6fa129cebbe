"""Models without random effects go through IRLS (glmmteach.glm), not the general optimiser.

The reference tests compare these fits with glmmTMB (tests/reference/glm_*.json). Here: the IRLS optimum
is the maximum the general optimiser finds; the observed information used for the standard errors is
the Hessian of -log L (numerically, from the analytic gradient); each iteration raises the log-likelihood.
"""
import numpy as np
import pandas as pd
import pytest

import glmmteach as gt
from glmmteach import glm
from glmmteach import numdiff
from glmmteach.fit import Objective, _optimise, _start, _glm_start
from glmmteach.design import build


def data(seed=11, n=400):
    rng = np.random.default_rng(seed)
    x, f = rng.normal(size=n), rng.choice(["a", "b", "c"], n)
    eta = 0.4 + 0.5 * x + np.where(f == "b", 0.3, 0.0)
    trials = rng.integers(1, 10, n)
    return pd.DataFrame({"x": x, "f": f, "count": rng.negative_binomial(3, 3 / (3 + np.exp(eta))),
                         "positive": rng.gamma(4, np.exp(eta) / 4), "y": eta + rng.normal(0, 0.7, n),
                         "trials": trials, "success": rng.binomial(trials, 1 / (1 + np.exp(-eta))),
                         "proportion": np.clip(rng.beta(4 / (1 + np.exp(-eta)) * 5, 5), 0.01, 0.99)})


MODELS = {
    "gaussian": ("y ~ x + f", "gaussian"),
    "gamma_log": ("positive ~ x + f", gt.families.Gamma(link="log")),
    "poisson": ("count ~ x + f", "poisson"),
    "nbinom2": ("count ~ x + f", "nbinom2"),
    "binomial_probit": ("cbind(success, trials - success) ~ x + f", gt.families.Binomial(link="probit")),
    "beta": ("proportion ~ x + f", "beta"),
}


@pytest.mark.parametrize("model", list(MODELS))
def test_irls_reaches_the_optimum_of_the_general_optimiser(model):
    formula, family = MODELS[model]
    fit = gt.glmm(formula, data(), family=family)
    assert fit.converged and fit.message == "IRLS"
    objective = Objective(fit.design, reml=False)
    beta, phi = _glm_start(fit.design)
    psi = _optimise(objective, _start(objective, {"beta": beta + 0.1}, beta + 0.1, phi * 1.5), False).psi
    assert -objective(psi) == pytest.approx(fit.loglik, abs=1e-7)
    assert fit.loglik >= -objective(psi) - 1e-9
    np.testing.assert_allclose(fit.psi, psi, rtol=0, atol=2e-5)


@pytest.mark.parametrize("model", list(MODELS))
def test_observed_information_is_the_hessian_of_minus_loglik(model):
    formula, family = MODELS[model]
    fit = gt.glmm(formula, data(), family=family)
    numeric = numdiff.hessian(fit.objective.gradient, np.asarray(fit.psi, float))
    information = glm.information(fit.design, fit.beta, fit.phi)
    np.testing.assert_allclose(information, numeric, rtol=2e-6, atol=1e-6 * np.max(np.abs(numeric)))
    np.testing.assert_allclose(fit.vcov.to_numpy(), np.linalg.inv(numeric)[:len(fit.beta), :len(fit.beta)],
                               rtol=1e-5)


@pytest.mark.parametrize("model", list(MODELS))
def test_each_irls_iteration_raises_the_loglik_and_is_logged(model):
    formula, family = MODELS[model]
    fit = gt.glmm(formula, data(), family=family)
    values = -fit.optimizer_log()["-logLik"].to_numpy()
    assert len(values) >= 2
    assert np.all(np.diff(values) >= -1e-9 * np.abs(values[1:]))
    assert values[-1] == pytest.approx(fit.loglik, abs=1e-9)


def test_irls_is_exact_least_squares_for_the_gaussian():
    d = data()
    fit = gt.glmm("y ~ x + f", d, family="gaussian")
    design = build("y ~ x + f", d, gt.families.get("gaussian"))
    beta, residual = np.linalg.lstsq(design.X, design.y, rcond=None)[:2]
    np.testing.assert_allclose(fit.beta, beta, rtol=0, atol=1e-10)
    assert fit.sigma == pytest.approx(np.sqrt(residual[0] / len(d)), rel=1e-8)
