"""The inner step (glmmteach.laplace) checked against answers computed independently.

* Gaussian identity models: the Laplace log-likelihood is exact, for ML and REML, at any
  (beta, theta, sigma); it is compared with the dense marginal density y ~ N(X beta + o, V),
  V = sigma^2 I + Z Sigma Z', built here from the data without the library's Z or Lambda.
* At the optimum, glmm()'s gaussian fits equal the maximiser of that dense (REML) likelihood, with
  the standard errors of glmmTMB's sdreport computed from it; a gaussian model with no random
  effects gives lm's / the closed-form ML answers.
* Binomial (1 | g): 25-point adaptive quadrature equals scipy.integrate.quad of each group's
  one-dimensional integral; the Laplace approximation is close to it but not equal.
* The conditional modes maximise f(v) = sum_i ell_i(eta_i) - b'b/2 (numerical gradient ~ 0).
* score_beta equals central differences of the Laplace log-likelihood in beta.
"""
import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from scipy.integrate import quad
from scipy.optimize import minimize
from scipy.special import expit

import glmmteach as gt
from glmmteach.design import build
from glmmteach.laplace import (InnerProblem, agq_loglik, conditional_modes, laplace_loglik,
                               score_beta)

GAUSSIAN = gt.families.get("gaussian")


# ---- data -------------------------------------------------------------------------------------
def gaussian_data(seed=20240601, n=60):
    """60 rows: groups g (6 levels, unbalanced), crossed factors a (4) and b (5), covariate x,
    an offset column o, a response y with effects of g and the offset, and yc with effects of a and b."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"g": rng.choice(list("PQRSTU"), n), "a": rng.integers(0, 4, n),
                         "b": rng.integers(0, 5, n), "x": rng.normal(size=n),
                         "o": rng.uniform(-0.5, 0.5, n)})
    g_effect = dict(zip("PQRSTU", rng.normal(0, 1.2, 6)))
    a_effect, b_effect = np.array([-0.9, 0.1, 0.3, 0.8]), np.array([0.7, -0.8, 0.2, -0.4, 0.5])
    data["y"] = 1.0 + 0.5 * data.x + data.g.map(g_effect) + data.o + rng.normal(0, 0.7, n)
    data["yc"] = 1.0 + 0.5 * data.x + a_effect[data.a] + b_effect[data.b] + rng.normal(0, 0.5, n)
    return data


def same(labels):
    """Indicator matrix [labels_i == labels_j]."""
    labels = np.asarray(labels)
    return (labels[:, None] == labels[None, :]).astype(float)


def cov_intercept_g(data, theta):
    return theta[0] ** 2 * same(data.g)


def cov_slopes_g(data, theta):
    T = np.array([[theta[0], 0.0], [theta[1], theta[2]]])
    Sigma = T @ T.T
    z = np.column_stack([np.ones(len(data)), data.x])
    return same(data.g) * (z @ Sigma @ z.T)


def cov_crossed(data, theta):
    return theta[0] ** 2 * same(data.a) + theta[1] ** 2 * same(data.b)


# formula, V_random(data, theta) = Z Sigma Z', number of theta, does the formula use the offset
GAUSSIAN_MODELS = {
    "intercept": ("y ~ x + (1 | g)", cov_intercept_g, 1, False),
    "intercept_offset": ("y ~ x + offset(o) + (1 | g)", cov_intercept_g, 1, True),
    "slopes": ("y ~ x + (1 + x | g)", cov_slopes_g, 3, False),
    "crossed": ("yc ~ x + (1 | a) + (1 | b)", cov_crossed, 2, False),
}


def dense_loglik(data, response, V_random, beta, theta, sigma, reml, use_offset):
    """Exact log-likelihood of y ~ N(X beta + o, sigma^2 I + Z Sigma Z') (ML), or the REML one
    -1/2 [(n - p) log 2 pi + log|V| + log|X'V^-1 X| + r'V^-1 r], r = y - o - X beta_GLS."""
    n = len(data)
    X = np.column_stack([np.ones(n), data.x])
    offset = data.o.to_numpy() if use_offset else np.zeros(n)
    y = data[response].to_numpy()
    V = sigma ** 2 * np.eye(n) + V_random(data, theta)
    if not reml:
        return st.multivariate_normal(X @ beta + offset, V).logpdf(y)
    V_inv = np.linalg.inv(V)
    XtVX = X.T @ V_inv @ X
    beta_gls = np.linalg.solve(XtVX, X.T @ V_inv @ (y - offset))
    r = y - offset - X @ beta_gls
    p = X.shape[1]
    return -0.5 * ((n - p) * np.log(2 * np.pi) + np.linalg.slogdet(V)[1] + np.linalg.slogdet(XtVX)[1]
                   + r @ V_inv @ r)


# ---- 1. Gaussian exactness at arbitrary parameter values ---------------------------------------
@pytest.mark.parametrize("model", list(GAUSSIAN_MODELS))
@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
def test_gaussian_laplace_is_exact_at_arbitrary_parameters(model, reml):
    formula, V_random, n_theta, use_offset = GAUSSIAN_MODELS[model]
    data = gaussian_data()
    design = build(formula, data, GAUSSIAN)
    np.testing.assert_allclose(design.X, np.column_stack([np.ones(len(data)), data.x]))
    rng = np.random.default_rng(7)
    for _ in range(4):
        beta = rng.normal(0, 2, 2)
        theta = rng.uniform(0.1, 2.0, n_theta)
        if model == "slopes":
            theta[1] = rng.normal(0, 1)          # the off-diagonal of the Cholesky template is free
        sigma = rng.uniform(0.3, 2.0)
        got = laplace_loglik(design, beta, theta, sigma, reml=reml).loglik
        want = dense_loglik(data, response_of(formula), V_random, beta, theta, sigma, reml, use_offset)
        assert got == pytest.approx(want, abs=1e-6), (beta, theta, sigma)


def test_gaussian_reml_does_not_depend_on_beta():
    """Under REML beta is integrated out: the beta argument must not matter."""
    data = gaussian_data()
    design = build("y ~ x + (1 | g)", data, GAUSSIAN)
    values = [laplace_loglik(design, beta, np.array([0.9]), 0.8, reml=True).loglik
              for beta in (np.zeros(2), np.array([5.0, -3.0]))]
    assert values[0] == pytest.approx(values[1], abs=1e-9)


# ---- 1b. Gaussian fits at the optimum equal the dense maximiser --------------------------------
def response_of(formula):
    return formula.split("~")[0].strip()


def dense_fit(data, response, V_random, n_sd, reml):
    """Maximise the dense likelihood over log standard deviations (beta profiled out by GLS,
    which is exact for the gaussian): returns (loglik, beta, sds, sigma)."""
    n = len(data)
    X = np.column_stack([np.ones(n), data.x])
    y = data[response].to_numpy()

    def gls(theta, sigma):
        V_inv = np.linalg.inv(sigma ** 2 * np.eye(n) + V_random(data, theta))
        return np.linalg.solve(X.T @ V_inv @ X, X.T @ V_inv @ y)

    def negative(log_sd):
        theta, sigma = np.exp(log_sd[:n_sd]), np.exp(log_sd[n_sd])
        return -dense_loglik(data, response, V_random, gls(theta, sigma), theta, sigma, reml, False)

    start = np.log(np.r_[np.full(n_sd, 0.8), np.std(y)])
    best = minimize(negative, start, method="BFGS", options={"gtol": 1e-9})
    best = minimize(negative, best.x, method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 20000})
    theta, sigma = np.exp(best.x[:n_sd]), np.exp(best.x[n_sd])
    return -best.fun, gls(theta, sigma), theta, sigma


def central_hessian(f, x, h=2e-4):
    k = len(x)
    H = np.zeros((k, k))
    for i, ei in enumerate(h * np.eye(k)):
        for j, ej in enumerate(h * np.eye(k)):
            H[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h * h)
    return H


def dense_covariance_of_beta(data, response, V_random, beta, sds, sigma, reml):
    """As glmmTMB's sdreport, from the dense likelihood. ML: the beta block of the inverse Hessian
    of -log L over (beta, log sds, log sigma). REML: (X'V^-1 X)^-1 + J W J', W the inverse Hessian
    of -log L_R over (log sds, log sigma) and J the derivative of beta_GLS with respect to them.
    (Both are unchanged by a reparametrisation of the variance parameters at the optimum.)"""
    n, k = len(data), len(sds)
    X = np.column_stack([np.ones(n), data.x])
    y = data[response].to_numpy()
    log_sd = np.log(np.r_[sds, sigma])
    if not reml:
        def negative(z):
            return -dense_loglik(data, response, V_random, z[:2], np.exp(z[2:2 + k]), np.exp(z[-1]), False, False)
        return np.linalg.inv(central_hessian(negative, np.r_[beta, log_sd]))[:2, :2]

    def gls(z):
        V_inv = np.linalg.inv(np.exp(z[-1]) ** 2 * np.eye(n) + V_random(data, np.exp(z[:-1])))
        return np.linalg.solve(X.T @ V_inv @ X, X.T @ V_inv @ y), X.T @ V_inv @ X

    def negative(z):
        return -dense_loglik(data, response, V_random, None, np.exp(z[:-1]), np.exp(z[-1]), True, False)
    W = np.linalg.inv(central_hessian(negative, log_sd))
    J = np.column_stack([(gls(log_sd + e)[0] - gls(log_sd - e)[0]) / 2e-5 for e in 1e-5 * np.eye(k + 1)])
    return np.linalg.inv(gls(log_sd)[1]) + J @ W @ J.T


@pytest.mark.parametrize("model", ["intercept", "crossed"])
@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
def test_gaussian_fit_equals_dense_maximiser(model, reml):
    formula, V_random, n_theta, _ = GAUSSIAN_MODELS[model]
    data = gaussian_data()
    fit = gt.glmm(formula, data, family="gaussian", reml=reml)
    loglik, beta, sds, sigma = dense_fit(data, response_of(formula), V_random, n_theta, reml)
    assert fit.converged
    assert fit.loglik == pytest.approx(loglik, abs=1e-6)
    np.testing.assert_allclose(fit.fixef.to_numpy(), beta, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fit.varcorr.sd.to_numpy(), sds, rtol=1e-4)
    assert fit.sigma == pytest.approx(sigma, rel=1e-4)
    cov = dense_covariance_of_beta(data, response_of(formula), V_random, beta, sds, sigma, reml)
    np.testing.assert_allclose(fit.se.to_numpy(), np.sqrt(np.diag(cov)), rtol=1e-5)


def lm_data(seed=11, n=40):
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"x": rng.normal(size=n), "f": rng.choice(["lo", "mid", "hi"], n)})
    data["y"] = 2.0 - 1.0 * data.x + (data.f == "hi") * 0.7 + rng.normal(0, 0.5, n)
    return data


def ols(data):
    X = np.column_stack([np.ones(len(data)), data.f == "lo", data.f == "mid", data.x]).astype(float)
    y = data.y.to_numpy()
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    rss = float(np.sum((y - X @ beta) ** 2))
    return X, beta, rss


def test_gaussian_no_random_effects_reml_is_lm():
    """REML with no random-effect term: OLS coefficients, lm's sigma sqrt(RSS/(n - p)) and
    SEs from sigma^2 (X'X)^-1."""
    data = lm_data()
    X, beta, rss = ols(data)
    n, p = X.shape
    fit = gt.glmm("y ~ f + x", data, family="gaussian", reml=True)
    assert list(fit.fixef.index) == ["(Intercept)", "flo", "fmid", "x"]
    np.testing.assert_allclose(fit.fixef.to_numpy(), beta, atol=1e-6)
    sigma = np.sqrt(rss / (n - p))
    assert fit.sigma == pytest.approx(sigma, abs=1e-6)
    cov = sigma ** 2 * np.linalg.inv(X.T @ X)
    np.testing.assert_allclose(fit.vcov.to_numpy(), cov, atol=1e-6)
    np.testing.assert_allclose(fit.se.to_numpy(), np.sqrt(np.diag(cov)), atol=1e-6)


def test_gaussian_no_random_effects_ml_is_closed_form():
    """ML: sigma = sqrt(RSS/n) and log L = -n/2 [log(2 pi RSS/n) + 1]."""
    data = lm_data()
    X, beta, rss = ols(data)
    n = len(data)
    fit = gt.glmm("y ~ f + x", data, family="gaussian", reml=False)
    np.testing.assert_allclose(fit.fixef.to_numpy(), beta, atol=1e-6)
    assert fit.sigma == pytest.approx(np.sqrt(rss / n), abs=1e-6)
    assert fit.loglik == pytest.approx(-0.5 * n * (np.log(2 * np.pi * rss / n) + 1), abs=1e-6)
    # ML SEs (glmmTMB): sigma_ML^2 (X'X)^-1, beta and log(sigma) being orthogonal at the optimum
    np.testing.assert_allclose(fit.se.to_numpy(), np.sqrt(np.diag(rss / n * np.linalg.inv(X.T @ X))),
                               rtol=1e-5)


# ---- 2. Laplace and quadrature against brute-force integration ---------------------------------
def binomial_data(seed=3, groups=6, per_group=8):
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"g": np.repeat([f"G{j}" for j in range(groups)], per_group),
                         "x": rng.normal(size=groups * per_group),
                         "n": rng.integers(1, 6, groups * per_group)})
    eta = -0.3 + 0.8 * data.x + np.repeat(rng.normal(0, 1, groups), per_group)
    data["s"] = rng.binomial(data.n, expit(eta))
    return data


def group_log_integral(s, n, eta_fixed, sd):
    """log of the integral over b of prod_i Binomial(s_i; n_i, expit(eta_i + sd b)) phi(b) db, by
    quad, centred at the maximum of the integrand so that exp() never overflows."""
    def log_integrand(b):
        return np.sum(st.binom.logpmf(s, n, expit(eta_fixed + sd * b))) + st.norm.logpdf(b)

    peak = minimize(lambda b: -log_integrand(b[0]), [0.0], method="BFGS").x[0]
    top = log_integrand(peak)
    value, _ = quad(lambda b: np.exp(log_integrand(b) - top), -np.inf, np.inf, points=None,
                    epsabs=0, epsrel=1e-12, limit=200)
    return top + np.log(value)


def test_agq25_equals_quad_and_laplace_is_close():
    data = binomial_data()
    design = build("cbind(s, n - s) ~ x + (1 | g)", data, gt.families.get("binomial"))
    for beta, sd in [(np.array([-0.2, 0.7]), 1.1), (np.array([0.5, -0.4]), 0.4),
                     (np.array([0.0, 1.5]), 2.5)]:
        exact = sum(group_log_integral(sub.s.to_numpy(), sub.n.to_numpy(),
                                       beta[0] + beta[1] * sub.x.to_numpy(), sd)
                    for _, sub in data.groupby("g"))
        agq = agq_loglik(design, beta, np.array([sd]), 1.0, 25).loglik
        laplace = laplace_loglik(design, beta, np.array([sd]), 1.0, reml=False).loglik
        assert agq == pytest.approx(exact, abs=1e-6)
        assert 1e-8 < abs(laplace - exact) < 0.5
        # one quadrature node is the Laplace approximation
        assert agq_loglik(design, beta, np.array([sd]), 1.0, 1).loglik == pytest.approx(laplace, abs=1e-9)


def penalised_loglik(design, beta, theta, phi, v, reml):
    """f(v) = sum_i ell_i(eta_i) - b'b/2, written here from the family's log density."""
    p_in = design.X.shape[1] if reml else 0
    beta_all = v[:p_in] if reml else beta
    b = v[p_in:]
    eta = design.X @ beta_all + design.Z @ (design.Lambda(theta) @ b) + design.offset
    mu = design.family.link.inverse(eta)
    return np.sum(design.weights * design.family.loglik(design.y, mu, phi, design.n)) - 0.5 * b @ b


def central_gradient(f, v, h=1e-5):
    out = np.zeros_like(v)
    for k in range(len(v)):
        e = np.zeros_like(v)
        e[k] = h
        out[k] = (f(v + e) - f(v - e)) / (2 * h)
    return out


MODE_CASES = {
    "binomial_intercept": ("cbind(s, n - s) ~ x + (1 | g)", "binomial", np.array([-0.2, 0.7]), [1.1], 1.0),
    "poisson_crossed": ("y ~ x + (1 | a) + (1 | b)", "poisson", np.array([0.3, 0.4]), [0.6, 0.5], 1.0),
    "poisson_slopes": ("y ~ x + (1 + x | g)", "poisson", np.array([0.3, 0.4]), [0.6, 0.2, 0.3], 1.0),
}


def count_data(seed=5, n=80):
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"g": rng.choice(list("ABCDEFG"), n), "a": rng.integers(0, 5, n),
                         "b": rng.integers(0, 6, n), "x": rng.normal(size=n)})
    eta = (0.3 + 0.4 * data.x + rng.normal(0, 0.6, 5)[data.a] + rng.normal(0, 0.5, 6)[data.b])
    data["y"] = rng.poisson(np.exp(eta))
    data["t"] = rng.gamma(4.0, np.exp(eta) / 4.0)
    return data


@pytest.mark.parametrize("case", list(MODE_CASES))
@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
def test_conditional_modes_maximise_the_penalised_loglik(case, reml):
    formula, family, beta, theta, phi = MODE_CASES[case]
    data = binomial_data() if family == "binomial" else count_data()
    design = build(formula, data, gt.families.get(family))
    theta = np.asarray(theta, float)
    problem = InnerProblem.build(design, beta, theta, phi, reml)
    p_in = design.X.shape[1] if reml else 0
    v, _ = conditional_modes(problem, np.zeros(p_in + design.q))
    f = lambda w: penalised_loglik(design, beta, theta, phi, w, reml)
    gradient = central_gradient(f, v)
    assert np.max(np.abs(gradient)) < 1e-5
    rng = np.random.default_rng(0)
    for _ in range(5):                                  # and a maximum, not a saddle
        assert f(v + 1e-3 * rng.normal(size=len(v))) < f(v)
    # the same modes from laplace_loglik
    np.testing.assert_allclose(laplace_loglik(design, beta, theta, phi, reml).v, v, atol=1e-6)


# ---- 3. score_beta against central differences ---------------------------------------------
SCORE_CASES = {
    "binomial_logit": ("cbind(s, n - s) ~ x + (1 | g)", gt.families.Binomial(), [1.1], 1.0, "binomial"),
    "binomial_probit": ("cbind(s, n - s) ~ x + (1 | g)", gt.families.Binomial(link="probit"), [0.8], 1.0,
                        "binomial"),
    "poisson_crossed": ("y ~ x + (1 | a) + (1 | b)", gt.families.Poisson(), [0.6, 0.5], 1.0, "count"),
    "gamma_log": ("t ~ x + (1 | a)", gt.families.Gamma(link="log"), [0.5], 0.5, "count"),
    "poisson_slopes": ("y ~ x + (1 + x | g)", gt.families.Poisson(), [0.6, 0.2, 0.3], 1.0, "count"),
}


@pytest.mark.parametrize("case", list(SCORE_CASES))
def test_score_beta_equals_numerical_gradient(case):
    formula, family, theta, phi, which = SCORE_CASES[case]
    data = binomial_data() if which == "binomial" else count_data()
    design = build(formula, data, family)
    theta = np.asarray(theta, float)
    for beta in (np.array([0.1, 0.3]), np.array([-0.4, 0.9])):     # away from the optimum
        analytic = score_beta(laplace_loglik(design, beta, theta, phi, reml=False))
        h = 1e-5 * np.maximum(1.0, np.abs(beta))
        numeric = np.array([
            (laplace_loglik(design, beta + h[k] * e, theta, phi, reml=False).loglik
             - laplace_loglik(design, beta - h[k] * e, theta, phi, reml=False).loglik) / (2 * h[k])
            for k, e in enumerate(np.eye(len(beta)))])
        assert np.max(np.abs(numeric)) > 1e-2                       # a gradient worth comparing
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-5 * np.max(np.abs(numeric)))
