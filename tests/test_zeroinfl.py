"""Zero inflation (ziformula): the mixture's log-likelihood and derivatives, the outer gradient, simulation,
parameter recovery, the fitted model's extractors, and clear errors. The references from glmmTMB are checked in
tests/test_reference.py (the fields every reference has) and here (the zero-inflation model's own)."""
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

import glmmteach as gt
from glmmteach import families, numdiff, zeroinfl
from glmmteach.formula import FormulaError
from glmmteach.laplace import laplace_loglik, score, score_zero_inflation

REFERENCE = Path(__file__).parent / "reference"
COUNT_FAMILIES = [families.Poisson(), families.NBinom2(), families.Binomial(), families.Binomial(link="cloglog")]


def egg_counts():
    data = gt.datasets.load("fecal_egg_counts")
    for column in ["tx", "lact", "manure", "province", "herd"]:
        data[column] = pd.Categorical(data[column])
    return data


def reference(case):
    return json.loads((REFERENCE / f"{case}.json").read_text())


def response_values(family, rng, size=200):
    """y with many zeros, eta over a wide range, zeta from 'never' to 'almost always' a structural zero."""
    eta = rng.uniform(-4, 3, size) if family.name != "binomial" else rng.uniform(-5, 5, size)
    n = rng.integers(1, 12, size).astype(float) if family.trials else np.ones(size)
    y = np.where(rng.random(size) < 0.5, 0.0, rng.integers(0, 8, size).astype(float))
    y = np.minimum(y, n) if family.trials else y
    zeta = rng.uniform(-30, 30, size)
    return y, eta, 2.5, n, zeta


# ---- the mixture -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", COUNT_FAMILIES, ids=str)
def test_loglik_is_the_mixture_written_out(family):
    y, eta, phi, n, zeta = response_values(family, np.random.default_rng(1))
    zeta = np.clip(zeta, -8, 8)                       # where the plain formula is still accurate
    pi, log_f = expit(zeta), family.loglik_eta(y, eta, phi, n)
    f0 = np.exp(family.loglik_eta(np.zeros_like(y), eta, phi, n))
    expected = np.where(y == 0, np.log(pi + (1 - pi) * f0), np.log(1 - pi) + log_f)
    np.testing.assert_allclose(zeroinfl.loglik(family, y, eta, phi, n, zeta), expected, rtol=1e-10, atol=1e-12)


def test_loglik_stays_finite_at_extreme_probabilities():
    poisson = families.Poisson()
    y, eta, zeta = np.array([0.0, 0.0, 5.0, 0.0]), np.array([8.0, 8.0, 0.0, -30.0]), np.array([-800.0, 800.0, 40.0, 0.0])
    ell = zeroinfl.loglik(poisson, y, eta, 1.0, 1, zeta)
    assert np.all(np.isfinite(ell))
    # pi = 1/(1 + e^800): a zero at mu = e^8 is log(pi + f(0)) = logaddexp(-800, -e^8) = -800
    assert ell[0] == pytest.approx(-800.0, abs=1e-9)
    assert ell[1] == pytest.approx(0.0, abs=1e-12)                     # pi = 1: a zero is certain
    assert ell[2] == pytest.approx(-40.0 + poisson.loglik(5.0, 1.0, 1.0), abs=1e-9)


@pytest.mark.parametrize("family", COUNT_FAMILIES, ids=str)
def test_eta_derivatives_match_numerical_ones(family):
    y, eta, phi, n, zeta = response_values(family, np.random.default_rng(2))
    d1, d2 = zeroinfl.eta_derivatives(family, y, eta, phi, n, zeta)
    ell = lambda e: zeroinfl.loglik(family, y, e, phi, n, zeta)                 # noqa: E731
    g = lambda e: zeroinfl.eta_derivatives(family, y, e, phi, n, zeta)[0]       # noqa: E731
    np.testing.assert_allclose(d1, numdiff.elementwise(ell, eta), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(d2, numdiff.elementwise(g, eta), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("family", COUNT_FAMILIES, ids=str)
def test_zeta_partials_match_numerical_ones(family):
    y, eta, phi, n, zeta = response_values(family, np.random.default_rng(3))
    dloglik, dg, dD = zeroinfl.zeta_partials(family, y, eta, phi, n, zeta)

    def state(z):
        g, h = zeroinfl.eta_derivatives(family, y, eta, phi, n, z)
        return zeroinfl.loglik(family, y, eta, phi, n, z), g, -h

    numerical = numdiff.elementwise(state, zeta)
    for ours, theirs in zip((dloglik, dg, dD), numerical):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("family", [families.NBinom2(), families.NBinom1()], ids=str)
def test_dispersion_partials_of_the_mixture_match_numerical_ones(family):
    y, eta, phi, n, zeta = response_values(family, np.random.default_rng(5))
    zeta = np.clip(zeta, -6, 6)
    ours = zeroinfl.dispersion_partials(family, y, eta, phi, n, zeta)

    def state(s):
        g, h = zeroinfl.eta_derivatives(family, y, eta, np.exp(s), n, zeta)
        return zeroinfl.loglik(family, y, eta, np.exp(s), n, zeta), g, h

    numerical = numdiff.elementwise(state, np.full(y.shape, np.log(phi)))
    for mine, theirs in zip(ours, numerical):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-7)


def test_the_curvature_can_be_negative_at_a_zero():
    """-d2 ell/d eta2 = omega mu - omega (1 - omega) mu^2 for a ZIP zero: negative once (1 - omega) mu > 1."""
    poisson = families.Poisson()
    _, d2 = zeroinfl.eta_derivatives(poisson, np.zeros(1), np.log([3.0]), 1.0, 1, np.zeros(1))
    omega = 0.5 * np.exp(-3.0) / (0.5 + 0.5 * np.exp(-3.0))
    assert -d2[0] == pytest.approx(omega * 3 - omega * (1 - omega) * 9)
    assert -d2[0] < 0


# ---- the Laplace log-likelihood and its gradient in the zero-inflation coefficients ----------------------------
def small_zip(seed=4, groups=12, per=10):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=g.size)
    mu = np.exp(0.8 + 0.4 * x + rng.normal(0, 0.5, groups)[g])
    zero = rng.random(g.size) < expit(-0.5 + 0.7 * x)
    y = np.where(zero, 0, rng.poisson(mu))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k:02d}" for k in g]})


@pytest.mark.parametrize(("family", "reml"), [("poisson", False), ("poisson", True), ("nbinom2", False),
                                              ("nbinom1", True), ("binomial", False)])
def test_gradient_in_the_zero_inflation_coefficients_is_exact(family, reml):
    """The analytic outer gradient (beta, theta, the dispersion, beta_zi) against central differences of the
    Laplace log-likelihood, away from the optimum."""
    data = small_zip()
    if family == "binomial":
        data["y"] = np.minimum(data.y, 6)
        formula = "cbind(y, 6 - y) ~ x + (1 | g)"
    else:
        formula = "y ~ x + (1 | g)"
    fit = gt.glmm(formula, data, family=family, ziformula="~ x", reml=reml)
    objective = fit.objective
    psi = fit.psi + np.array([0.05, -0.03, 0.1, -0.2, 0.2, -0.1])[-len(fit.psi):]      # away from the optimum
    analytic = objective.gradient(psi)
    numerical = numdiff.partials(objective, psi, np.arange(len(psi)))
    np.testing.assert_allclose(analytic, numerical, rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(analytic[objective.layout.where("zi")])) > 1e-2     # a gradient that could be wrong


def test_laplace_without_zero_inflation_is_the_limit_pi_to_zero():
    data = small_zip()
    fit = gt.glmm("y ~ x + (1 | g)", data, family="poisson")
    design = fit.design
    plain = laplace_loglik(design, fit.beta, fit.theta, fit.phi, False)
    tiny = laplace_loglik(design, fit.beta, fit.theta, fit.phi, False, zeta=np.full(design.nobs, -40.0))
    assert tiny.loglik == pytest.approx(plain.loglik, abs=1e-9)
    np.testing.assert_allclose(score(tiny)[0], score(plain)[0], atol=1e-8)
    # at pi -> 0 the derivative in zeta_i is -pi_i + (1 - omega_i) -> 0
    assert np.max(np.abs(score_zero_inflation(tiny))) < 1e-12


# ---- fitting: the egg counts, simulation and recovery ------------------------------------------------------------
@pytest.fixture(scope="module")
def zip_fit():
    return gt.glmm("fec ~ tx + lact + manure + province + (1 | province:herd)", egg_counts(), family="poisson",
                   ziformula="~ 1")


def test_zero_inflation_coefficients_and_predictions_match_glmmtmb(zip_fit):
    ref = reference("fec_zip")
    assert list(zip_fit.fixef_zi.index) == ["(Intercept)"]
    for (name, value), se in zip(ref["fixef_zi"].items(), ref["se_zi"].values()):
        assert abs(zip_fit.fixef_zi[name] - value) <= 1e-3 * max(abs(value), se)
        assert zip_fit.se_zi[name] == pytest.approx(se, rel=0.01)
    np.testing.assert_allclose(zip_fit.predict(type="zprob")[:5], ref["zprob_head"], rtol=1e-3)
    np.testing.assert_allclose(zip_fit.predict(type="conditional")[:5], ref["conditional_head"], rtol=1e-3)
    np.testing.assert_allclose(zip_fit.predict(type="response"),
                               (1 - zip_fit.predict(type="zprob")) * zip_fit.predict(type="conditional"))
    np.testing.assert_allclose(zip_fit.predict(type="zlink"), np.log(zip_fit.predict(type="zprob") /
                                                                     (1 - zip_fit.predict(type="zprob"))))


def test_predict_on_new_data_uses_both_parts(zip_fit):
    data = egg_counts()
    new = data.iloc[[0, 5, 50]]
    np.testing.assert_allclose(zip_fit.predict(new, type="response"), zip_fit.predict(type="response")[[0, 5, 50]])
    np.testing.assert_allclose(zip_fit.predict(new, type="zprob", re_form="~0"), zip_fit.predict(type="zprob")[:3])


def test_simulations_match_the_zero_inflated_density(zip_fit):
    """Means, variances and the share of zeros of 4000 conditional simulations against the mixture's:
    E y = (1 - pi) mu, Var y = (1 - pi) mu + pi (1 - pi) mu^2, P(y = 0) = pi + (1 - pi) e^{-mu}."""
    sims = zip_fit.simulate(4000, seed=11, conditional=True).to_numpy()
    mu, pi = zip_fit.predict(type="conditional"), zip_fit.predict(type="zprob")
    mean, var, p0 = (1 - pi) * mu, (1 - pi) * mu + pi * (1 - pi) * mu ** 2, pi + (1 - pi) * np.exp(-mu)
    z_mean = (sims.mean(axis=1) - mean) / np.sqrt(var / sims.shape[1])
    z_zero = ((sims == 0).mean(axis=1) - p0) / np.sqrt(p0 * (1 - p0) / sims.shape[1])
    assert np.max(np.abs(z_mean)) < 4.5 and np.max(np.abs(z_zero)) < 4.5
    assert abs(np.mean(z_mean)) < 4 / np.sqrt(len(mu)) and abs(np.mean(z_zero)) < 4 / np.sqrt(len(mu))
    ratio = sims.var(axis=1, ddof=1) / var
    assert abs(np.mean(ratio) - 1) < 0.03
    # the structural zeros matter: without them the zeros would be far fewer
    assert np.mean((sims == 0).mean(axis=1)) > np.mean(np.exp(-mu)) + 0.2


def test_simulated_binomial_zeros_match_the_density():
    ref = reference("zi_binomial")
    data = pd.read_csv(Path(__file__).parent.parent / ref["data_file"])
    fit = gt.glmm("cbind(y, n - y) ~ x + (1 | g)", data, family="binomial", ziformula="~ x")
    sims = fit.simulate(3000, seed=5, conditional=True).to_numpy()
    mu, pi, n = fit.predict(type="conditional"), fit.predict(type="zprob"), fit.design.n
    p0 = pi + (1 - pi) * (1 - mu) ** n
    z_zero = ((sims == 0).mean(axis=1) - p0) / np.sqrt(p0 * (1 - p0) / sims.shape[1])
    assert np.max(np.abs(z_zero)) < 4.5 and abs(np.mean(z_zero)) < 4 / np.sqrt(len(mu))
    z_mean = (sims.mean(axis=1) - (1 - pi) * n * mu) / np.sqrt(
        ((1 - pi) * n * mu * (1 - mu) + pi * (1 - pi) * (n * mu) ** 2) / sims.shape[1])
    assert np.max(np.abs(z_mean)) < 4.5
    assert np.all(sims <= n[:, None])


def test_zip_recovers_its_parameters():
    """20 data sets of 60 groups of 15: the mean estimates of beta, the SD and beta_zi lie within 3 standard errors
    of the mean of the truth, and the SEs of beta and beta_zi are close to the spread of the estimates."""
    truth = {"beta": [1.0, 0.5], "sd": 0.6, "zi": [-0.7, 0.9]}
    estimates, ses = [], []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        g = np.repeat(np.arange(60), 15)
        x = rng.normal(size=g.size)
        eta = truth["beta"][0] + truth["beta"][1] * x + rng.normal(0, truth["sd"], 60)[g]
        zero = rng.random(g.size) < expit(truth["zi"][0] + truth["zi"][1] * x)
        data = pd.DataFrame({"y": np.where(zero, 0, rng.poisson(np.exp(eta))), "x": x, "g": g})
        fit = gt.glmm("y ~ x + (1 | g)", data, family="poisson", ziformula="~ x")
        estimates.append([*fit.fixef, fit.varcorr.sd[0], *fit.fixef_zi])
        ses.append([*fit.se, *fit.se_zi])
    estimates, ses = np.array(estimates), np.array(ses)
    target = np.array([*truth["beta"], truth["sd"], *truth["zi"]])
    spread = estimates.std(axis=0, ddof=1)
    assert np.all(np.abs(estimates.mean(axis=0) - target) < 3 * spread / np.sqrt(20) + 0.02)
    np.testing.assert_allclose(ses.mean(axis=0), spread[[0, 1, 3, 4]], rtol=0.45)


def test_refit_and_scaled_residuals(zip_fit):
    y = zip_fit.simulate(1, seed=3)["sim_1"].to_numpy()
    refitted = zip_fit.refit(y)
    assert refitted.design.zero_inflated and len(refitted.fixef_zi) == 1
    direct = gt.glmm("fec ~ tx + lact + manure + province + (1 | province:herd)", egg_counts().assign(fec=y),
                     family="poisson", ziformula="~ 1")
    assert refitted.loglik == pytest.approx(direct.loglik, abs=1e-4)
    assert refitted.fixef_zi.iloc[0] == pytest.approx(direct.fixef_zi.iloc[0], abs=1e-3 * direct.se_zi.iloc[0])
    res = gt.simulate_residuals(zip_fit, n=250, seed=1)
    assert res.scaled.shape == (zip_fit.nobs,) and np.all((res.scaled >= 0) & (res.scaled <= 1))
    zero = gt.test_zero_inflation(res)
    assert 0 <= zero.pvalue <= 1


def test_the_zero_inflation_test_flags_poisson_and_not_zip():
    """DHARMa's idea in the course's sequence: the Poisson fit has far too few zeros; the ZIP fit does not."""
    data = egg_counts()
    poisson = gt.glmm("fec ~ tx + lact + manure + province + (1 | province:herd)", data, family="poisson")
    zip_ = gt.glmm("fec ~ tx + lact + manure + province + (1 | province:herd)", data, family="poisson",
                   ziformula="~ 1")
    zero_poisson = gt.test_zero_inflation(gt.simulate_residuals(poisson, n=250, seed=2))
    zero_zip = gt.test_zero_inflation(gt.simulate_residuals(zip_, n=250, seed=2))
    assert zero_poisson.pvalue < 0.01 and zero_poisson.statistic > 1.5
    assert zero_zip.pvalue > 0.05


def test_bootstrap_of_the_dispersion_test_refits_zero_inflated_models(zip_fit):
    res = gt.simulate_residuals(zip_fit, n=100, seed=4)
    test = gt.test_dispersion(res, n_boot=5)
    assert 0 <= test.pvalue <= 1 and np.isfinite(test.statistic)


def test_emmeans_uses_the_conditional_model(zip_fit):
    emm = gt.emmeans(zip_fit, "tx", type="response")
    # the conditional model's rates: exp of the count part's linear predictor
    link = gt.emmeans(zip_fit, "tx")
    np.testing.assert_allclose(emm.table["rate"], np.exp(link.table["emmean"]))
    assert emm.table["df"].iloc[0] == zip_fit.df_resid == zip_fit.nobs - 7


# ---- extractors and printing ------------------------------------------------------------------------------------------
def test_models_without_zero_inflation_have_empty_zi_parts():
    fit = gt.glmm("y ~ x + (1 | g)", small_zip(), family="poisson")
    assert fit.fixef_zi.empty and fit.se_zi.empty and fit.vcov_zi.shape == (0, 0)
    assert "Zero" not in str(fit.summary())
    assert np.all(fit.predict(type="zprob") == 0)
    np.testing.assert_allclose(fit.predict(type="conditional"), fit.predict(type="response"))
    same = gt.glmm("y ~ x + (1 | g)", small_zip(), family="poisson", ziformula="~ 0")
    assert same.loglik == pytest.approx(fit.loglik, abs=1e-9) and same.fixef_zi.empty


def test_residuals_of_a_zero_inflated_fit(zip_fit):
    ref = reference("fec_zip")
    assert np.sum(zip_fit.residuals("pearson") ** 2) == pytest.approx(ref["pearson_ss"], rel=1e-3)
    np.testing.assert_allclose(zip_fit.residuals("response"), zip_fit.design.y - zip_fit.fitted())
    with pytest.raises(ValueError, match="no deviance residuals"):
        zip_fit.residuals("deviance")


def test_aic_counts_the_zero_inflation_coefficients(zip_fit):
    assert zip_fit.n_parameters == 5 + 1 + 1
    assert zip_fit.df_resid == reference("fec_zip")["df_resid"]


def test_zero_inflated_glm_without_random_effects():
    ref = reference("fec_zip_glm")
    fit = gt.glmm("fec ~ tx + lact", egg_counts(), family="poisson", ziformula="~ lact")
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    np.testing.assert_allclose(fit.fixef_zi[list(ref["fixef_zi"])], list(ref["fixef_zi"].values()), rtol=1e-3)
    np.testing.assert_allclose(fit.se_zi, list(ref["se_zi"].values()), rtol=0.01)



def test_new_data_codes_the_zero_inflation_factors_as_the_fit_did():
    """A factor of the ziformula in newdata is matched to the fit's levels by label, whatever its type or the
    order of its categories (as the conditional part's factors are)."""
    data = egg_counts()
    fit = gt.glmm("fec ~ tx + lact", data, family="poisson", ziformula="~ lact")
    rows = [0, 5, 50, 100]
    expected = fit.predict(type="zprob")[rows]
    reversed_levels = data.iloc[rows].assign(lact=pd.Categorical(data["lact"].iloc[rows].astype(int),
                                                                 categories=[1, 0]))
    as_text = data.iloc[rows].assign(lact=data["lact"].iloc[rows].astype(str).to_numpy())
    for new in (reversed_levels, as_text):
        np.testing.assert_allclose(fit.predict(new, type="zprob"), expected)
        np.testing.assert_allclose(fit.predict(new, type="response"), fit.predict(type="response")[rows])


# ---- clear errors -----------------------------------------------------------------------------------------------------
def test_clear_errors():
    data, fish = small_zip(), gt.datasets.load("fish_vaccines")
    with pytest.raises(ValueError, match="ziformula .*poisson.*not Gamma"):
        gt.glmm("wt ~ day", fish, family="Gamma", ziformula="~ 1")
    with pytest.raises(ValueError, match="not gaussian"):
        gt.glmm("y ~ x", data, ziformula="~ 1")
    with pytest.raises(FormulaError, match="random-effect terms in ziformula are not supported yet"):
        gt.glmm("y ~ x + (1 | g)", data, family="poisson", ziformula="~ x + (1 | g)")
    with pytest.raises(FormulaError, match="ziformula has no response"):
        gt.glmm("y ~ x + (1 | g)", data, family="poisson", ziformula="y ~ x")
    with pytest.raises(FormulaError, match="must start with '~'"):
        gt.glmm("y ~ x + (1 | g)", data, family="poisson", ziformula="x")
    with pytest.raises(ValueError, match="unknown column 'z'"):
        gt.glmm("y ~ x + (1 | g)", data, family="poisson", ziformula="~ z")
    with pytest.raises(ValueError, match="nagq = 5 .*not available with a ziformula"):
        gt.glmm("y ~ x + (1 | g)", data, family="poisson", ziformula="~ 1", nagq=5)
    with pytest.raises(ValueError, match="type must be one of"):
        gt.glmm("y ~ x + (1 | g)", data, family="poisson").predict(type="zi")


def test_missing_values_in_a_zero_inflation_column_drop_the_row():
    data = small_zip()
    data["w"] = np.where(np.arange(len(data)) % 17 == 0, np.nan, 1.0 * (np.arange(len(data)) % 3))
    with pytest.warns(UserWarning, match="rows had missing values"):
        fit = gt.glmm("y ~ x + (1 | g)", data, family="poisson", ziformula="~ w")
    assert fit.nobs == len(data) - int(np.sum(np.arange(len(data)) % 17 == 0))
    assert len(fit.data) == fit.nobs
