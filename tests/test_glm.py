"""Models without random effects go through IRLS (glmmteach.glm), not the general optimiser.

The reference tests compare these fits with glmmTMB (tests/reference/glm_*.json). Here: the IRLS optimum
is the maximum the general optimiser finds; the observed information used for the standard errors is
the Hessian of -log L (numerically, from the analytic gradient); each iteration raises the log-likelihood;
the step in phi solves the score equation in log(phi), and falls back to Brent's method where it cannot.
"""
from dataclasses import dataclass
from types import SimpleNamespace

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
    assert fit.sigma == pytest.approx(np.sqrt(residual[0] / len(d)), rel=1e-12)     # the score in s solved


WITH_PHI = [m for m in MODELS if gt.families.get(MODELS[m][1]).has_phi]


@pytest.mark.parametrize("model", WITH_PHI)
def test_the_phi_step_is_the_maximum_brent_finds_with_its_score_zero(model):
    """phi_step solves the score equation in s = log(phi) at fixed mu; Brent's method on the log-likelihood
    itself (the fallback) finds the same maximum to its own tolerance, and the step never lowers ell."""
    formula, family = MODELS[model]
    fit = gt.glmm(formula, data(), family=family)
    design, beta = fit.design, fit.beta
    value = glm.loglik(design, beta, 1.0)
    phi, new = glm.phi_step(design, beta, 1.0, value)
    assert phi == pytest.approx(glm.best_phi(design, beta, 1.0), rel=1e-6)
    assert new == glm.loglik(design, beta, phi) and new >= value
    mu = design.family.link.inverse(design.X @ beta + design.offset)
    assert abs(glm._score_s(design, mu, phi)) < 1e-8 * design.nobs
    assert abs(glm._score_s(design, mu, phi)) < abs(glm._score_s(design, mu, glm.best_phi(design, beta, 1.0)))


@pytest.mark.parametrize("model", WITH_PHI)
def test_without_a_root_of_the_score_the_phi_step_falls_back_to_brent(model, monkeypatch):
    formula, family = MODELS[model]
    fit = gt.glmm(formula, data(), family=family)
    monkeypatch.setattr(glm, "score_root", lambda S, s, **kw: None)
    fallback = gt.glmm(formula, data(), family=family)
    assert fallback.converged and fallback.message == "IRLS"
    assert fallback.loglik == pytest.approx(fit.loglik, abs=1e-9)
    np.testing.assert_allclose(fallback.psi, fit.psi, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fallback.se, fit.se, rtol=1e-5)


def test_score_root_finds_a_maximum_and_gives_up_where_there_is_none():
    assert glm.score_root(lambda s: 2 - np.exp(s), 0.0) == pytest.approx(np.log(2), abs=1e-12)
    assert glm.score_root(lambda s: -(s - 1) ** 3 - (s - 1), -5.0) == pytest.approx(1.0, abs=1e-12)
    assert glm.score_root(lambda s: np.exp(s), 0.0) is None            # rising slope: a minimum, not a maximum
    assert glm.score_root(lambda s: np.exp(-s), 0.0) is None           # always uphill: no maximum
    assert glm.score_root(lambda s: np.nan, 0.0) is None


@dataclass(frozen=True)
class GammaWithNumericalPartials(gt.families.Gamma):
    """A Gamma that gives no formulas for its derivatives in log(phi): the base class's finite differences."""

    dispersion_partials = gt.families.Family.dispersion_partials
    dispersion_score = gt.families.Family.dispersion_score


def test_a_family_without_dispersion_formulas_fits_the_same_glm():
    fit = gt.glmm("positive ~ x + f", data(), family=gt.families.Gamma(link="log"))
    numerical = gt.glmm("positive ~ x + f", data(), family=GammaWithNumericalPartials(link="log"))
    assert numerical.converged
    np.testing.assert_allclose(numerical.psi, fit.psi, rtol=0, atol=1e-8)
    np.testing.assert_allclose(numerical.se, fit.se, rtol=1e-6)


def test_a_positive_log_probability_of_a_count_is_no_log_likelihood():
    """For counts every ell_i is a log-probability, at most 0; a positive one is the rounding error of a family's
    formulas far outside their range (a beta-binomial at phi ~ 1e17), and no GLM step may go there."""
    counts = gt.glmm("count ~ x + f", data(), family="poisson").design
    positive = gt.glmm("positive ~ x + f", data(), family=gt.families.Gamma(link="log")).design
    ell = SimpleNamespace(loglik=np.array([-2.0, -0.5, 0.25]))
    assert glm.total(counts, ell) == -np.inf
    assert glm.total(positive, ell) == pytest.approx(-2.25)      # a density may exceed 1
    assert glm.total(counts, SimpleNamespace(loglik=np.array([-2.0, 0.0]))) == -2.0


@pytest.mark.parametrize("model", ["gamma_log", "nbinom2", "binomial_probit"])
def test_a_glm_refit_runs_irls_from_the_fit_and_matches_a_new_fit(model):
    formula, family = MODELS[model]
    d = data()
    fit = gt.glmm(formula, d, family=family)
    y = fit.simulate(1, seed=3).to_numpy(float)[:, 0]
    refit = fit.refit(y)
    response = {"gamma_log": "positive", "nbinom2": "count", "binomial_probit": "success"}[model]
    direct = gt.glmm(formula, d.assign(**{response: y}), family=family)
    assert refit.converged and refit.message == "IRLS"
    assert refit.loglik == pytest.approx(direct.loglik, abs=1e-9)
    np.testing.assert_allclose(refit.psi, direct.psi, rtol=0, atol=1e-7)
