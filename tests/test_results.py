"""The fitted model (glmmteach.results): what it reports, checked against direct computations.

Every expected value is built here from the data and the reported estimates (fixef, ranef, theta,
sigma), not from the library's design matrices: eta = b0 + b1 x + offset + u_g (+ u_g,x x).
"""
import json
import pathlib
import random
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import glmmteach as gt
from glmmteach.fit import ConvergenceWarning
from glmmteach.rformat import coefficient_lines, r_format_pval


# ---- data and fits ---------------------------------------------------------------------------
def grouped(rng, n_groups, per_group):
    return pd.DataFrame({"g": np.repeat([f"g{j:02d}" for j in range(n_groups)], per_group),
                         "x": rng.normal(size=n_groups * per_group)})


def group_effect(rng, data, sd):
    levels = sorted(data.g.unique())
    return data.g.map(dict(zip(levels, rng.normal(0, sd, len(levels))))).to_numpy()


def poisson_data(seed=1):
    rng = np.random.default_rng(seed)
    data = grouped(rng, 30, 10)
    data["expo"] = rng.uniform(0.5, 2.0, len(data))
    eta = 0.3 + 0.5 * data.x + np.log(data.expo) + group_effect(rng, data, 0.6)
    data["y"] = rng.poisson(np.exp(eta))
    return data


def binomial_data(seed=2):
    rng = np.random.default_rng(seed)
    data = grouped(rng, 20, 8)
    data["trials"] = rng.integers(1, 7, len(data))
    data["s"] = rng.binomial(data.trials, expit(-0.2 + 0.7 * data.x + group_effect(rng, data, 0.8)))
    return data


def gaussian_data(seed=3):
    """Weighted gaussian (1 | g)."""
    rng = np.random.default_rng(seed)
    data = grouped(rng, 15, 8)
    data["w"] = rng.uniform(0.5, 3.0, len(data))
    data["y"] = 1.0 + 0.8 * data.x + group_effect(rng, data, 1.0) + rng.normal(0, 1, len(data)) / np.sqrt(data.w)
    return data


def slopes_data(seed=4):
    """Gaussian (1 + x | g): SDs 1 and 0.6, correlation 0.4."""
    rng = np.random.default_rng(seed)
    data = grouped(rng, 20, 10)
    Sigma = np.array([[1.0, 0.4 * 0.6], [0.4 * 0.6, 0.36]])
    U = rng.multivariate_normal([0, 0], Sigma, 20)
    code = data.g.str[1:].astype(int).to_numpy()
    data["y"] = 2.0 - 0.5 * data.x + U[code, 0] + U[code, 1] * data.x + rng.normal(0, 0.8, len(data))
    return data


def gamma_data(seed=5):
    rng = np.random.default_rng(seed)
    data = grouped(rng, 15, 10)
    mu = np.exp(1.0 + 0.3 * data.x + group_effect(rng, data, 0.5))
    data["y"] = rng.gamma(4.0, mu / 4.0)
    return data


def nbinom_data(seed=6):
    rng = np.random.default_rng(seed)
    data = grouped(rng, 15, 10)
    mu = np.exp(1.0 + 0.3 * data.x + group_effect(rng, data, 0.5))
    data["y"] = rng.negative_binomial(3.0, 3.0 / (3.0 + mu))
    return data


def fit_quietly(*args, **kwargs):
    """A good fit: no ConvergenceWarning at all."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return gt.glmm(*args, **kwargs)


# name -> (data maker, formula, family, glmm keywords, offset column as a function of the data)
MODELS = {
    "poisson": (poisson_data, "y ~ x + offset(log(expo)) + (1 | g)", "poisson", {}, lambda d: np.log(d.expo)),
    "binomial": (binomial_data, "cbind(s, trials - s) ~ x + (1 | g)", "binomial", {}, None),
    "gaussian": (gaussian_data, "y ~ x + (1 | g)", "gaussian", {"weights": "w"}, None),
    "slopes": (slopes_data, "y ~ x + (1 + x | g)", "gaussian", {}, None),
    "Gamma": (gamma_data, "y ~ x + (1 | g)", gt.families.Gamma(link="log"), {}, None),
    "nbinom2": (nbinom_data, "y ~ x + (1 | g)", "nbinom2", {}, None),
}
# parameters counted by AIC (beta, theta, sigma)
N_PARAMETERS = {"poisson": 3, "binomial": 3, "gaussian": 4, "slopes": 6, "Gamma": 4, "nbinom2": 4}

_FITS = {}


def fitted(name):
    """(data, fit), fitted once per test session."""
    if name not in _FITS:
        make, formula, family, keywords, _ = MODELS[name]
        data = make()
        _FITS[name] = data, fit_quietly(formula, data, family=family, **keywords)
    return _FITS[name]


def offset_of(name, data):
    offset = MODELS[name][4]
    return np.zeros(len(data)) if offset is None else np.asarray(offset(data), float)


def eta_by_hand(fit, data, offset, random_effects=True):
    """b0 + b1 x + offset + sum over terms of u[level, term] * (1 or x); unseen levels add 0."""
    eta = fit.fixef["(Intercept)"] + fit.fixef["x"] * data.x.to_numpy() + offset
    if random_effects:
        for group, table in fit.ranef.items():
            rows = table.reindex(data[group].astype(str))
            for term in table.columns:
                covariate = 1.0 if term == "(Intercept)" else data[term].to_numpy()
                eta = eta + rows[term].fillna(0.0).to_numpy() * covariate
    return eta


# ---- predict ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_predict_link_is_x_beta_plus_z_u_plus_offset(name):
    data, fit = fitted(name)
    offset = offset_of(name, data)
    np.testing.assert_allclose(fit.predict(type="link"), eta_by_hand(fit, data, offset), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fit.predict(type="link", re_form="~0"),
                               eta_by_hand(fit, data, offset, random_effects=False), rtol=1e-10, atol=1e-10)
    inverse = fit.family.link.inverse
    np.testing.assert_allclose(fit.predict(type="response"), inverse(fit.predict(type="link")), rtol=1e-12)


@pytest.mark.parametrize("name", ["poisson", "slopes", "binomial"])
def test_predict_newdata_equal_to_training_data(name):
    data, fit = fitted(name)
    for re_form in (None, "~0"):
        for type_ in ("link", "response"):
            np.testing.assert_allclose(fit.predict(data, type=type_, re_form=re_form),
                                       fit.predict(type=type_, re_form=re_form), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["poisson", "slopes"])
def test_predict_new_level_gets_population_level(name):
    data, fit = fitted(name)
    new = data.iloc[[0, 1, 15, 40]].copy().reset_index(drop=True)
    new.loc[[1, 3], "g"] = "never_seen"
    offset = offset_of(name, new)
    got = fit.predict(new, type="link")
    np.testing.assert_allclose(got, eta_by_hand(fit, new, offset), rtol=1e-10)
    population = eta_by_hand(fit, new, offset, random_effects=False)
    np.testing.assert_allclose(got[[1, 3]], population[[1, 3]], rtol=1e-12)
    assert not np.allclose(got[[0, 2]], population[[0, 2]])
    # population level needs no grouping column at all
    np.testing.assert_allclose(fit.predict(new.drop(columns="g"), re_form="~0"), population, rtol=1e-12)


def test_predict_new_level_without_warnings():
    data, fit = fitted("poisson")
    new = data.iloc[[0, 1]].copy().reset_index(drop=True)
    new.loc[1, "g"] = "never_seen"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit.predict(new)


# ---- residuals -------------------------------------------------------------------------------
def expected_residuals(name, data, fit, mu):
    """Response, Pearson ((y - mu) sqrt(w) / sqrt(V(mu)), R's variance function) and deviance
    (sign(y - mu) sqrt(w d(y, mu)), R's dev.resids) residuals, written out per family."""
    theta = fit.sigma
    if name == "binomial":
        n, p = data.trials.to_numpy(float), data.s.to_numpy() / data.trials.to_numpy()
        d = 2 * n * (p * np.log(np.where(p > 0, p, 1.0) / mu)
                     + (1 - p) * np.log(np.where(p < 1, 1 - p, 1.0) / (1 - mu)))
        return p - mu, (p - mu) * np.sqrt(n) / np.sqrt(mu * (1 - mu)), np.sign(p - mu) * np.sqrt(d)
    y = data.y.to_numpy(float)
    w = data.w.to_numpy() if name == "gaussian" else np.ones(len(y))
    if name in ("poisson", "nbinom2"):
        y_log_y_mu = y * np.log(np.where(y > 0, y, 1.0) / mu)       # 0 log 0 = 0
    if name == "poisson":
        variance, d = mu, 2 * (y_log_y_mu - (y - mu))
    elif name in ("gaussian", "slopes"):
        variance, d = np.ones_like(mu), (y - mu) ** 2
    elif name == "Gamma":
        variance, d = mu ** 2, -2 * (np.log(y / mu) - (y - mu) / mu)
    else:                                                              # nbinom2 (glmmTMB's dev.resids)
        variance, d = mu * (1 + mu / theta), 2 * (y_log_y_mu - (y + theta) * np.log((y + theta) / (mu + theta)))
    return y - mu, (y - mu) * np.sqrt(w) / np.sqrt(variance), np.sign(y - mu) * np.sqrt(w * d)


@pytest.mark.parametrize("name", list(MODELS))
def test_residuals_match_their_definitions(name):
    data, fit = fitted(name)
    mu = fit.family.link.inverse(eta_by_hand(fit, data, offset_of(name, data)))
    response, pearson, deviance = expected_residuals(name, data, fit, mu)
    np.testing.assert_allclose(fit.residuals("response"), response, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.residuals(type="pearson"), pearson, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.residuals(type="deviance"), deviance, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.residuals(), response, rtol=1e-8, atol=1e-10)   # the default
    with pytest.raises(ValueError):
        fit.residuals("studentized")


# ---- simulate --------------------------------------------------------------------------------
def global_state():
    return np.random.get_state(), random.getstate()


def test_simulate_shape_seed_and_global_state():
    data, fit = fitted("poisson")
    before_numpy, before_random = global_state()
    sims = fit.simulate(5, seed=42)
    again = fit.simulate(5, seed=42)
    other = fit.simulate(5, seed=43)
    fit.simulate(2)                                    # no seed: fresh entropy, still not the global state
    fit.simulate(2, seed=1, conditional=True)
    after_numpy, after_random = global_state()
    assert isinstance(sims, pd.DataFrame)
    assert list(sims.columns) == [f"sim_{k}" for k in range(1, 6)]
    assert sims.shape == (len(data), 5)
    pd.testing.assert_frame_equal(sims, again)
    assert not sims.equals(other)
    assert np.all(sims.to_numpy() >= 0) and np.all(sims.to_numpy() == np.round(sims.to_numpy()))
    assert before_numpy[0] == after_numpy[0] and np.array_equal(before_numpy[1], after_numpy[1])
    assert before_numpy[2:] == after_numpy[2:]
    assert before_random == after_random


def group_means(data, sims):
    """Matrix (groups, simulations) of each group's mean simulated response."""
    return sims.groupby(data.g.to_numpy()).mean().to_numpy()


def test_simulate_conditional_keeps_fitted_random_effects():
    data, fit = fitted("poisson")
    nsim = 2000
    conditional = fit.simulate(nsim, seed=7, conditional=True)
    marginal = fit.simulate(nsim, seed=7, conditional=False)
    mu = fit.predict(type="response")                  # conditional mean, with the fitted u
    z = (conditional.mean(axis=1).to_numpy() - mu) / np.sqrt(mu / nsim)
    assert np.max(np.abs(z)) < 5
    # new random effects: a group's mean varies much more from one simulation to the next
    spread_conditional = group_means(data, conditional).var(axis=1).mean()
    spread_marginal = group_means(data, marginal).var(axis=1).mean()
    assert spread_marginal > 3 * spread_conditional
    # ... and on average it is the population-level mean E exp(eta + u) = exp(eta + sd^2/2)
    sd = fit.varcorr.sd.iloc[0]
    population = np.exp(fit.predict(type="link", re_form="~0") + sd ** 2 / 2)
    assert marginal.to_numpy().mean() == pytest.approx(population.mean(), rel=0.05)


def test_simulate_binomial_gives_success_counts():
    data, fit = fitted("binomial")
    sims = fit.simulate(50, seed=3).to_numpy()
    trials = data.trials.to_numpy()[:, None]
    assert np.all(sims == np.round(sims))
    assert np.all((sims >= 0) & (sims <= trials))
    assert np.any(sims[(trials > 1).ravel()] > 1)      # counts, not proportions


# ---- summaries of the fit ----------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_information_criteria_and_counts(name):
    data, fit = fitted(name)
    k = N_PARAMETERS[name]
    assert fit.nobs == len(data)
    assert fit.df_resid == len(data) - k              # ML: every parameter is outer
    assert fit.aic == pytest.approx(-2 * fit.loglik + 2 * k, rel=1e-12)
    assert fit.bic == pytest.approx(-2 * fit.loglik + np.log(len(data)) * k, rel=1e-12)
    assert fit.converged


def test_reml_counts():
    """glmmTMB REML: AIC counts beta too; df.resid counts only the outer parameters (theta here)."""
    seeds = gt.datasets.load("crowder_seeds")
    fit = fit_quietly("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", seeds, family="binomial", reml=True)
    assert fit.nobs == 21 and fit.df_resid == 20
    assert fit.aic == pytest.approx(-2 * fit.loglik + 2 * 5, rel=1e-12)


@pytest.mark.parametrize("name", list(MODELS))
def test_summary_text(name):
    data, fit = fitted(name)
    text = str(fit.summary())
    for piece in ("Random effects", "Conditional model", "(Intercept)", "Number of obs", str(len(data)), "g"):
        assert piece in text
    assert "x" in text.split("Conditional model")[-1]
    if name == "slopes":
        assert "Corr" in text


def cholesky_template(theta, k):
    T, i = np.zeros((k, k)), 0
    for c in range(k):
        for r in range(c, k):
            T[r, c] = theta[i]
            i += 1
    return T


@pytest.mark.parametrize("name", ["poisson", "slopes"])
def test_varcorr_ranef_and_ranef_corr(name):
    data, fit = fitted(name)
    terms = ["(Intercept)", "x"] if name == "slopes" else ["(Intercept)"]
    T = cholesky_template(fit.theta, len(terms))
    Sigma = T @ T.T                                   # theta on the absolute scale, lower triangle by columns
    varcorr = fit.varcorr
    assert list(varcorr.columns) == ["group", "term", "variance", "sd"]
    assert list(varcorr.group) == ["g"] * len(terms) and list(varcorr.term) == terms
    np.testing.assert_allclose(varcorr.variance, np.diag(Sigma), rtol=1e-12)
    np.testing.assert_allclose(varcorr.sd ** 2, varcorr.variance, rtol=1e-12)
    ranef = fit.ranef
    assert list(ranef) == ["g"]
    assert list(ranef["g"].index) == sorted(data.g.unique())
    assert list(ranef["g"].columns) == terms
    if name == "poisson":
        assert fit.ranef_corr == {}
    else:
        corr = fit.ranef_corr["g"]
        assert list(corr.index) == terms and list(corr.columns) == terms
        np.testing.assert_allclose(np.diag(corr), 1.0)
        assert corr.iloc[0, 1] == pytest.approx(corr.iloc[1, 0], abs=1e-15)
        assert corr.iloc[1, 0] == pytest.approx(Sigma[1, 0] / np.sqrt(Sigma[0, 0] * Sigma[1, 1]), rel=1e-12)


def test_gaussian_ranef_is_the_blup():
    """For the gaussian, the conditional modes are the BLUP u = Sigma Z' V^-1 (y - X beta)."""
    data, fit = fitted("slopes")
    T = cholesky_template(fit.theta, 2)
    Sigma = T @ T.T
    levels = sorted(data.g.unique())
    Z = np.zeros((len(data), 2 * len(levels)))         # level-major: (intercept, x) per level
    for j, level in enumerate(levels):
        rows = (data.g == level).to_numpy()
        Z[rows, 2 * j] = 1.0
        Z[rows, 2 * j + 1] = data.x[rows]
    G = np.kron(np.eye(len(levels)), Sigma)
    V = fit.sigma ** 2 * np.eye(len(data)) + Z @ G @ Z.T
    r = data.y.to_numpy() - fit.fixef["(Intercept)"] - fit.fixef["x"] * data.x.to_numpy()
    blup = (G @ Z.T @ np.linalg.solve(V, r)).reshape(len(levels), 2)
    np.testing.assert_allclose(fit.ranef["g"].to_numpy(), blup, rtol=1e-6, atol=1e-8)


def test_singular_fit_warns():
    """No group effect at all (the noise sums to zero within each group): the SD is at 0."""
    rng = np.random.default_rng(8)
    data = grouped(rng, 12, 10)
    noise = rng.normal(0, 1, len(data))
    noise -= pd.Series(noise).groupby(data.g).transform("mean").to_numpy()
    data["y"] = 1.0 + 0.5 * data.x + noise
    with pytest.warns(ConvergenceWarning, match="singular"):
        fit = gt.glmm("y ~ x + (1 | g)", data, family="gaussian")
    assert fit.varcorr.sd.iloc[0] < 1e-3


def test_correlation_at_one_warns_singular():
    """Slopes exactly proportional to the intercepts (u_x = 0.6 u_0): the correlation is +1."""
    rng = np.random.default_rng(8)
    data = grouped(rng, 15, 10)
    u = np.repeat(rng.normal(0, 1, 15), 10)
    data["y"] = 1 + 0.5 * data.x + u + 0.6 * u * data.x + rng.normal(0, 0.5, len(data))
    with pytest.warns(ConvergenceWarning, match="singular"):
        fit = gt.glmm("y ~ x + (1 + x | g)", data, family="gaussian")
    assert fit.ranef_corr["g"].iloc[1, 0] == pytest.approx(1.0, abs=1e-3)


# ---- refit -------------------------------------------------------------------------------------
RESPONSE = {"poisson": "y", "binomial": "s", "gaussian": "y", "slopes": "y", "Gamma": "y", "nbinom2": "y"}


@pytest.mark.parametrize("name", list(MODELS))
def test_refit_to_a_simulated_response_equals_a_fresh_fit(name):
    """fit.refit(y*) (started at the old estimates) reaches the optimum that glmm() finds from its
    own starting values on the data with y* in the response column (also REML for gaussian)."""
    data, fit = fitted(name)
    _, formula, family, keywords, _ = MODELS[name]
    y_star = fit.simulate(1, seed=11)["sim_1"]
    refitted = fit.refit(y_star)
    fresh = fit_quietly(formula, data.assign(**{RESPONSE[name]: y_star.to_numpy()}), family=family, **keywords)
    assert refitted.converged
    assert refitted.loglik == pytest.approx(fresh.loglik, abs=1e-5)
    np.testing.assert_allclose(refitted.fixef, fresh.fixef, rtol=1e-4, atol=1e-4 * fresh.se.max())
    np.testing.assert_allclose(refitted.varcorr.sd, fresh.varcorr.sd, rtol=1e-3, atol=1e-5)
    assert refitted.sigma == pytest.approx(fresh.sigma, rel=1e-4)
    assert not np.allclose(refitted.fixef, fit.fixef)     # it did move to the new data


@pytest.mark.parametrize("name", list(MODELS))
def test_refit_without_standard_errors_reaches_the_same_optimum(name):
    """standard_errors=False skips the Newton polish and the covariance: same log-likelihood (1e-6),
    same estimates (1e-3 of their SEs, the tolerance against R), and a clear error for the SEs."""
    data, fit = fitted(name)
    y_star = fit.simulate(1, seed=12)["sim_1"]
    full, quick = fit.refit(y_star), fit.refit(y_star, standard_errors=False)
    assert quick.converged
    assert quick.loglik == pytest.approx(full.loglik, abs=1e-6)
    np.testing.assert_allclose(quick.fixef, full.fixef, atol=1e-3 * full.se.min())
    np.testing.assert_allclose(quick.varcorr.sd, full.varcorr.sd, rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="standard_errors=False"):
        quick.se


def test_refit_to_the_same_response_stays_at_the_estimates():
    data, fit = fitted("poisson")
    again = fit.refit(fit.design.y)
    assert again.loglik == pytest.approx(fit.loglik, abs=1e-8)
    np.testing.assert_allclose(again.fixef, fit.fixef, atol=1e-6)


def test_refit_keeps_reml_and_the_data():
    data, fit = fitted("gaussian")
    reml = fit_quietly("y ~ x + (1 | g)", data, family="gaussian", weights="w", reml=True)
    refitted = reml.refit(reml.simulate(1, seed=2)["sim_1"])
    assert refitted.objective.reml and refitted.data is reml.data


def test_refit_rejects_a_response_of_the_wrong_length_or_support():
    _, fit = fitted("poisson")
    with pytest.raises(ValueError, match=r"one response value per observation.*\(300\); got 299"):
        fit.refit(np.zeros(299))
    y = fit.design.y.copy()
    y[4] = -1
    with pytest.raises(ValueError, match=r"'y'.*-1.*row 4"):
        fit.refit(y)
    _, binomial = fitted("binomial")
    with pytest.raises(ValueError, match="trials"):
        binomial.refit(binomial.design.n + 1)


# ---- printed like R ----------------------------------------------------------------------------
PRINT_REFERENCE = json.loads((pathlib.Path(__file__).parent / "reference" / "print_reference.json").read_text())


@pytest.mark.parametrize("case", PRINT_REFERENCE["format_pval"], ids=lambda c: " ".join(map(str, c["p"])))
def test_pvalues_are_formatted_as_r_format_pval(case):
    """R's format.pval(p, digits = 3), as printCoefmat calls it (tests/reference/make_print_reference.R)."""
    assert r_format_pval(case["p"], 3) == case["formatted"]


@pytest.mark.parametrize("case", PRINT_REFERENCE["format_pval_htest"], ids=lambda c: str(c["p"]))
def test_a_test_prints_its_pvalue_as_r_print_htest(case):
    """A residual test's printout formats its p-value as R's print.htest: format.pval(p, digits = 4)."""
    from glmmteach.diagnostics import TestResult
    p = float(case["p"])
    assert r_format_pval([p], 4) == [case["formatted"]]
    result = TestResult("Some test", "a method", 0.5, "D", p, "two-sided")
    assert f"p-value = {case['formatted']}\n" in str(result)


@pytest.mark.parametrize("name", list(PRINT_REFERENCE["tables"]))
def test_coefficient_table_is_printed_as_r_prints_it(name):
    """R's coefficient tables of six glmmTMB fits (and one with NaN standard errors), at full precision,
    give R's printed lines (printCoefmat(cc, zap.ind = 3, digits = 4), as glmmTMB's summary)."""
    case = PRINT_REFERENCE["tables"][name]
    table = pd.DataFrame(np.array(case["values"], float), index=case["rownames"], columns=case["colnames"])
    assert coefficient_lines(table) == case["lines"]


def test_summary_prints_the_crowder_coefficients_as_glmmtmb():
    """The whole route: our fit of the crowder model (REML) prints glmmTMB's coefficient lines."""
    seeds = gt.datasets.load("crowder_seeds")
    fit = gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", seeds, family="binomial", reml=True)
    text = str(fit.summary()).splitlines()
    start = text.index("Conditional model:", text.index("Number of obs: 21, groups:  plate, 21"))
    expected = PRINT_REFERENCE["tables"]["crowder_reml"]["lines"]
    assert text[start + 1:start + 1 + len(expected)] == expected
    assert text[start + 1 + len(expected)] == "---"


def _r_summary_data(case):
    if case["data_file"].startswith("datasets/"):
        return gt.datasets.load(pathlib.Path(case["data_file"]).stem)
    return pd.read_csv(pathlib.Path(__file__).parent.parent / case["data_file"])


@pytest.mark.parametrize("name", list(PRINT_REFERENCE["summaries"]))
def test_summary_prints_what_glmmtmb_prints(name):
    """The whole summary of eight fits, line by line, as glmmTMB 1.1.5 prints it for the same data, with
    the numbers of our own fit: AIC block, variance components (with correlations and the residual),
    number of groups, dispersion and coefficients. Three differences are deliberate: no "Data:" line
    (glmmteach does not know the name of your data frame), plain quotes in the legend of the stars,
    and a REML fit's -2 log-likelihood labelled "-2*log(L)" where glmmTMB 1.1.5 says "deviance"."""
    case = PRINT_REFERENCE["summaries"][name]
    family = gt.families.get(case["family"]).__class__(link=case["link"])
    fit = gt.glmm(case["formula"], _r_summary_data(case), family=family, reml=case["REML"])
    expected = [line.replace("\u2018", "'").replace("\u2019", "'") for line in case["lines"]
                if not line.startswith("Data: ")]
    ours = str(fit.summary()).splitlines()
    if case["REML"]:        # compare the AIC block word by word, with glmmTMB 1.1.5's label
        aic = ours.index(next(line for line in ours if line.lstrip().startswith("AIC")))
        assert ours[aic].split() == [w.replace("deviance", "-2*log(L)") for w in expected[aic].split()]
        assert ours[aic + 1].split() == expected[aic + 1].split()
        del ours[aic:aic + 2], expected[aic:aic + 2]
    assert ours == expected
