"""The covariance structures cs() and ar1() (glmmTMB 1.1.5's definitions): their templates and derivatives, the
formula and its errors, parameter recovery on simulated data, and everything downstream of a fit (predict,
residuals, simulate, refit, scaled residuals, confint, emmeans). The fits against glmmTMB on the salmon data are
in tests/test_reference.py (tests/reference/make_covstruct_reference.R)."""
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmmteach as gt
from glmmteach import covstruct, numdiff
from glmmteach.design import build
from glmmteach.formula import FormulaError, parse

REFERENCE = Path(__file__).parent / "reference"
COLUMNS = ("day0", "day82", "day246", "day505", "day901")


def structures():
    for k in (2, 3, 5):
        yield covstruct.CompoundSymmetry(COLUMNS[:k])
        yield covstruct.AutoRegressive(COLUMNS[:k])


def some_theta(structure, t):
    return np.r_[np.linspace(0.3, 1.2, structure.n_sd), t]


# ---- the structures ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("structure", list(structures()), ids=lambda s: f"{s.name}{s.k}")
@pytest.mark.parametrize("t", [-1.3, 0.0, 0.8, 3.0])
def test_derivatives_of_the_template_match_finite_differences(structure, t):
    theta = some_theta(structure, t)
    np.testing.assert_allclose(structure.dtemplate(theta), numdiff.partials(structure.template, theta), atol=1e-8)


@pytest.mark.parametrize("structure", list(structures()), ids=lambda s: f"{s.name}{s.k}")
def test_template_is_a_cholesky_factor_of_glmmtmbs_sigma(structure):
    """T is lower triangular with T T' = S R S, R as glmmTMB 1.1.5 builds it (src/glmmTMB.cpp): cs has
    rho = invlogit(t)(1 + a) - a with a = 1/(k - 1); ar1 has rho = t/sqrt(1 + t^2) and R_jl = rho^|j-l|."""
    t, k = 0.8, structure.k
    theta = some_theta(structure, t)
    T = structure.template(theta)
    np.testing.assert_array_equal(T, np.tril(T))
    assert np.all(np.diag(T) > 0)
    if structure.name == "cs":
        a = 1 / (k - 1)
        rho = 1 / (1 + np.exp(-t)) * (1 + a) - a
        R, sd = np.where(np.eye(k, dtype=bool), 1.0, rho), theta[:k]
    else:
        rho = t / np.sqrt(1 + t * t)
        R = rho ** np.abs(np.subtract.outer(np.arange(k), np.arange(k)))
        sd = np.full(k, theta[0])
    np.testing.assert_allclose(T @ T.T, np.outer(sd, sd) * R, rtol=1e-13)
    np.testing.assert_allclose(structure.correlation(theta), R, rtol=1e-13)
    assert structure.t_of(structure.rho(t)) == pytest.approx(t, rel=1e-12)
    outside = np.ones_like(T, bool)
    outside[structure.pattern] = False
    assert not T[outside].any()
    assert len(structure.theta_names("fish")) == structure.n_theta == len(structure.lower_bounds())


def test_ar1_cholesky_factor_is_the_autoregression():
    """u_0 = s b_0 and u_j = rho u_(j-1) + s sqrt(1 - rho^2) b_j: row j of T is rho times row j-1 plus
    s sqrt(1 - rho^2) on the diagonal."""
    s = covstruct.AutoRegressive(COLUMNS)
    theta = np.array([0.4, 1.1])
    T, rho = s.template(theta), s.rho(1.1)
    for j in range(1, 5):
        expected = rho * T[j - 1]
        expected[j] = 0.4 * np.sqrt(1 - rho ** 2)
        np.testing.assert_allclose(T[j], expected, rtol=1e-12)


def test_start_has_the_sds_and_no_correlation():
    sd = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    cs, ar1 = covstruct.CompoundSymmetry(COLUMNS), covstruct.AutoRegressive(COLUMNS)
    np.testing.assert_allclose(cs.Sigma(cs.start(sd)), np.diag(sd ** 2), atol=1e-15)
    np.testing.assert_allclose(ar1.Sigma(ar1.start(sd)), np.mean(sd ** 2) * np.eye(5), atol=1e-15)
    np.testing.assert_array_equal(cs.lower_bounds(), [0, 0, 0, 0, 0, -np.inf])
    assert ar1.theta_names("fish")[0] == "fish: sd" and ar1.summary_rows == range(1)


def test_a_single_column_is_a_clear_error():
    with pytest.raises(ValueError, match=r"cs\(\) needs a term with at least two columns"):
        covstruct.CompoundSymmetry(("(Intercept)",))


def test_lambda_repeats_the_template_and_its_derivative_matches_finite_differences(panel):
    d = build("y ~ time + ar1(time + 0 | unit) + cs(time + 0 | block)", panel, gt.families.get("gaussian"))
    theta = np.array([0.7, 0.9, 0.2, 0.3, 0.4, 0.5, 0.6, -0.4])
    T = covstruct.AutoRegressive(("time1", "time2", "time3", "time4", "time5")).template(theta[:2])
    L = d.Lambda(theta).toarray()
    np.testing.assert_array_equal(L[:5, :5], T)
    np.testing.assert_array_equal(L[5:10, 5:10], T)
    numeric = numdiff.partials(lambda t: d.Lambda(t).toarray(), theta)
    np.testing.assert_allclose([E.toarray() for E in d.dLambda(theta)], numeric, atol=1e-8)


# ---- formulas and bad input ------------------------------------------------------------------------------
def test_formula_reads_cs_and_ar1():
    f = parse("log(wt) ~ vaccine * day + ar1(day + 0 | fish) + cs(0 + day | tank)")
    assert [(t.expr, t.group, t.structure) for t in f.random] == [("day + 0", "fish", "ar1"),
                                                                  ("0 + day", "tank", "cs")]
    with pytest.raises(FormulaError, match=r"'\|\|' .* cannot be combined with ar1\(\)"):
        parse("y ~ ar1(day + 0 || fish)")


@pytest.fixture(scope="module")
def panel():
    """60 units observed at 5 times (a factor), 12 blocks of 5 units."""
    rng = np.random.default_rng(4)
    unit, time = np.repeat(np.arange(60), 5), np.tile(np.arange(1, 6), 60)
    return pd.DataFrame({"y": rng.normal(size=300), "unit": [f"u{i:02d}" for i in unit],
                         "block": [f"b{i // 5:02d}" for i in unit], "time": pd.Categorical(time),
                         "t": time.astype(float)})


def test_numeric_time_is_a_clear_error(panel):
    with pytest.raises(ValueError, match=r"ar1\(t \+ 0 \| unit\): the time 't' is a numeric column .*"
                                         r"pd.Categorical\(data\['t'\]\)"):
        gt.glmm("y ~ 1 + ar1(t + 0 | unit)", panel)


def test_factor_of_a_numeric_time_is_accepted(panel):
    a = build("y ~ 1 + ar1(factor(t) + 0 | unit)", panel, gt.families.get("gaussian"))
    b = build("y ~ 1 + ar1(time + 0 | unit)", panel, gt.families.get("gaussian"))
    assert a.terms[0].k == 5 and a.terms[0].names[0].startswith("factor(t)1")
    assert (a.Z != b.Z).nnz == 0


def test_intercept_in_ar1_is_a_clear_error(panel):
    with pytest.raises(FormulaError, match=r"ar1\(time \| unit\) has an intercept.*write ar1\(time \+ 0 \| unit\)"):
        gt.glmm("y ~ 1 + ar1(time | unit)", panel)


def test_more_than_the_time_in_ar1_is_a_clear_error(panel):
    with pytest.raises(FormulaError, match=r"needs one time factor and nothing else.*'time', 't'"):
        gt.glmm("y ~ 1 + ar1(time + t + 0 | unit)", panel)


def test_repeated_times_within_a_unit_are_a_clear_error(panel):
    twice = pd.concat([panel, panel.iloc[[7]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"unit 'u01' has 2 rows at time '3'; ar1\(\) needs at most one "
                                         r"observation per unit and time"):
        gt.glmm("y ~ 1 + ar1(time + 0 | unit)", twice)


def test_numbers_as_text_sorted_out_of_time_order_are_a_clear_error():
    data = gt.datasets.load("fish_vaccines").assign(day=lambda d: d.day.astype(str))
    with pytest.raises(ValueError, match=r"as text they sort as 0, 246, 505, 82, 901, which is not their order"):
        gt.glmm("log(wt) ~ day + ar1(day + 0 | fish)", data)


# ---- parameter recovery ------------------------------------------------------------------------------------
def simulate_panel(structure, theta, units=300, sigma=None, seed=1):
    """Responses for ``units`` units at 5 times: log mu = 1 + 0.1 time + u (u ~ N(0, Sigma)), Poisson, or
    Gaussian with residual SD ``sigma``."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((units, 5)) @ structure.template(theta).T
    time = np.tile(np.arange(5), units)
    eta = 1 + 0.1 * time + u.ravel()
    y = eta + sigma * rng.standard_normal(len(eta)) if sigma else rng.poisson(np.exp(eta))
    return pd.DataFrame({"y": y, "time": pd.Categorical(time), "x": time / 4.0,
                         "unit": [f"u{i:03d}" for i in np.repeat(np.arange(units), 5)]})


@pytest.mark.parametrize("name, theta, family, sigma", [
    ("ar1", np.array([0.5, 1.2]), "poisson", None),
    ("cs", np.array([0.3, 0.4, 0.5, 0.6, 0.7, 0.2]), "poisson", None),
    ("ar1", np.array([0.6, -0.5]), "gaussian", 0.3),
    ("cs", np.array([0.5, 0.6, 0.7, 0.8, 0.9, 1.0]), "gaussian", 0.4)])
def test_parameters_are_recovered_from_simulated_data(name, theta, family, sigma):
    """The truth lies inside the 99.9% Wald intervals of every fixed effect, SD and correlation; the residual SD
    (Gaussian) is near its value."""
    structure = covstruct.get(name, [f"time{j}" for j in range(5)])
    data = simulate_panel(structure, theta, sigma=sigma)
    fit = gt.glmm(f"y ~ x + {name}(time + 0 | unit)", data, family=family)
    assert fit.converged
    ci = fit.confint(level=0.999)
    truth = {"(Intercept)": 1.0, "x": 0.4, f"Cor.time1.time0|unit": structure.rho(theta[-1])}
    truth.update({f"Std.Dev.time{j}|unit": theta[structure.sd_of[j]] for j in structure.summary_rows})
    assert set(truth) == set(ci.index)
    for row, value in truth.items():
        assert ci.iloc[:, 0][row] < value < ci.iloc[:, 1][row], (row, value, ci.loc[row].tolist())
    if sigma and name == "ar1":
        assert fit.sigma == pytest.approx(sigma, rel=0.15)
    elif sigma:      # cs: a random effect per observation, so sigma is weakly identified, s_j^2 + sigma^2 well
        total = np.diag(fit.design.covariances(fit.theta)[0]) + fit.sigma ** 2
        np.testing.assert_allclose(total, theta[:5] ** 2 + sigma ** 2, rtol=0.15)


# ---- downstream ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gaussian_ar1():
    structure = covstruct.AutoRegressive(tuple(f"time{j}" for j in range(5)))
    data = simulate_panel(structure, np.array([0.6, 1.0]), units=200, sigma=0.3, seed=7)
    return gt.glmm("y ~ x + ar1(time + 0 | unit)", data, reml=True)


def test_predict_and_residuals(gaussian_ar1):
    fit = gaussian_ar1
    eta = fit.design.X @ fit.beta + fit.design.Z @ fit.u
    np.testing.assert_allclose(fit.predict(), eta)
    np.testing.assert_allclose(fit.predict(fit.data), eta)
    np.testing.assert_allclose(fit.predict(fit.data, re_form="~0"), fit.design.X @ fit.beta)
    np.testing.assert_allclose(fit.residuals(), fit.design.y - eta)
    u = fit.ranef["unit"]
    assert list(u.columns) == [f"time{j}" for j in range(5)] and len(u) == 200


def test_simulations_draw_new_effects_with_the_fitted_covariance(gaussian_ar1):
    """Unconditional simulations: per unit, y - X beta has covariance Sigma + sigma^2 I."""
    fit = gaussian_ar1
    sims = fit.simulate(100, seed=3).to_numpy() - (fit.design.X @ fit.beta)[:, None]
    by_unit = sims.reshape(200, 5, 100).transpose(0, 2, 1).reshape(-1, 5)
    expected = fit.design.covariances(fit.theta)[0] + fit.sigma ** 2 * np.eye(5)
    np.testing.assert_allclose(np.cov(by_unit.T), expected, atol=0.03)
    again = fit.simulate(100, seed=3).to_numpy() - (fit.design.X @ fit.beta)[:, None]
    np.testing.assert_array_equal(sims, again)


def test_refit_to_a_simulation_and_scaled_residuals_with_the_bootstrap(gaussian_ar1):
    fit = gaussian_ar1
    y = fit.simulate(1, seed=5)["sim_1"]
    refit = fit.refit(y)
    direct = gt.glmm("y ~ x + ar1(time + 0 | unit)", fit.data.assign(y=y.to_numpy()), reml=True)
    assert refit.loglik == pytest.approx(direct.loglik, abs=1e-6)
    np.testing.assert_allclose(refit.theta, direct.theta, rtol=1e-3)
    res = gt.simulate_residuals(fit, n=50, seed=2)
    assert res.scaled.shape == (1000,) and 0 <= res.scaled.min() and res.scaled.max() <= 1
    assert res.simulated.shape == (1000, 50)
    result = gt.test_uniformity(res, n_boot=5)
    assert 0 <= result.pvalue <= 1


def test_varcorr_ranef_corr_and_summary(gaussian_ar1):
    fit = gaussian_ar1
    vc = fit.varcorr
    assert list(vc.term) == [f"time{j}" for j in range(5)] and np.ptp(vc.sd) < 1e-12
    rho = fit.design.terms[0].structure.rho(fit.theta[1])
    corr = fit.ranef_corr["unit"]
    np.testing.assert_allclose(corr.to_numpy(), rho ** np.abs(np.subtract.outer(np.arange(5), np.arange(5))))
    lines = str(fit.summary()).splitlines()
    row = next(line for line in lines if line.startswith(" unit"))
    assert row.split()[1:] == ["time0", *row.split()[2:4], f"{rho:.2f}", "(ar1)"]
    assert not any(line.split()[:1] == ["time1"] for line in lines)


def test_profile_interval_of_an_ar1_sd(gaussian_ar1):
    fit = gt.glmm("y ~ x + ar1(time + 0 | unit)", gaussian_ar1.data)
    wald = fit.confint(parm="Std.Dev.time0|unit")
    profile = fit.confint(parm="Std.Dev.time0|unit", method="profile")
    np.testing.assert_allclose(profile.to_numpy(), wald.iloc[:, :2].to_numpy(), rtol=0.05)
    with pytest.raises(ValueError, match="no profile interval for 'Cor.time1.time0|unit'"):
        fit.confint(parm="Cor.time1.time0|unit", method="profile")


def test_bootstrap_intervals_cover_the_sd_and_the_correlation(gaussian_ar1):
    """The parametric bootstrap refits new simulations (new random effects) and reports the ar1 term's SD and
    lag-1 correlation as the Wald intervals name them."""
    boot = gaussian_ar1.confint(parm="theta_", method="boot", nsim=8, seed=1)
    assert list(boot.index) == ["Std.Dev.time0|unit", "Cor.time1.time0|unit"]
    sd, rho = gaussian_ar1.varcorr.sd[0], gaussian_ar1.ranef_corr["unit"].iloc[1, 0]
    assert boot.iloc[0, 0] < sd < boot.iloc[0, 1] and boot.iloc[1, 0] < rho < boot.iloc[1, 1]


def test_a_dispersion_running_to_zero_is_named_and_not_restarted():
    """cs() with one observation per unit and time gives every observation its own effect, which takes the
    Gamma's variation: its CV runs towards 0 (here from a true 0.02), a boundary the optimiser cannot reach. A fit
    that stops there unconverged says so, instead of restarting from other SDs (which end at the same place)."""
    structure = covstruct.CompoundSymmetry(tuple(f"time{j}" for j in range(5)))
    data = simulate_panel(structure, np.array([0.3, 0.3, 0.4, 0.5, 0.6, 0.5]), units=100, sigma=1e-9, seed=3)
    data["y"] = np.exp(data["y"]) * np.random.default_rng(1).gamma(2500, 1 / 2500, len(data))
    with pytest.warns(gt.fit.ConvergenceWarning, match=r"the dispersion ran towards 0 \(from .* to .*\)"):
        fit = gt.glmm("y ~ x + cs(time + 0 | unit)", data, family=gt.families.Gamma(link="log"))
    start, now = gt.fit.vanishing_dispersion(fit.objective, fit.psi)
    assert not fit.converged and now < 1e-2 * start and fit.sigma == pytest.approx(now)
    assert len(fit.objective.log) < 1000, "restarted from other SDs"
    ar1 = covstruct.AutoRegressive(tuple(f"time{j}" for j in range(5)))
    usual = gt.glmm("y ~ x + ar1(time + 0 | unit)", simulate_panel(ar1, np.array([0.6, 1.0]), units=80, sigma=0.3))
    assert usual.converged and gt.fit.vanishing_dispersion(usual.objective, usual.psi) is None
