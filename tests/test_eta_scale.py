"""The binomial log-likelihood and its derivatives on the eta scale, where mu rounds to 0 or 1.

For the logit, probit and cloglog links, log mu and log(1 - mu) and their first two derivatives in eta are
compared with mpmath at 60 digits for |eta| up to 40, where the clipped mean 1 - EPS would cap
log(1 - mu) near -36 (the cloglog's is -exp(40) = -2.4e17 there). Then the same for the family's
log-likelihood, a GLM's log-likelihood and a GLMM's Laplace log-likelihood.
"""
import mpmath as mp
import numpy as np
import pandas as pd
import pytest

import glmmteach as gt
from glmmteach import links
from glmmteach.laplace import laplace_loglik

mp.mp.dps = 60

# The probabilities in mpmath, each written from its definition (not from our formulas).
MU = {"logit": lambda e: 1 / (1 + mp.exp(-e)), "probit": lambda e: mp.ncdf(e),
      "cloglog": lambda e: -mp.expm1(-mp.exp(e))}
ONE_MINUS_MU = {"logit": lambda e: 1 / (1 + mp.exp(e)), "probit": lambda e: mp.ncdf(-e),
                "cloglog": lambda e: mp.exp(-mp.exp(e))}

ETA = np.array([-40, -38.5, -37, -30, -20, -12, -8.5, -6, -3, -1, -1e-3, 0, 0.5, 2, 3.6, 5, 8.3, 12, 20, 30,
                37, 38.5, 40])


def reference(function, name, eta):
    """(log p, d/deta, d2/deta2) in mpmath at eta, for p = mu or 1 - mu; log p as log1p(-(1 - p)) where p
    is near 1 (60 digits would round p = 1 - 1e-89 to 1)."""
    other = ONE_MINUS_MU if function is MU else MU

    def f(e):
        p = function[name](e)
        return mp.log(p) if p < 0.5 else mp.log1p(-other[name](e))
    return [mp.diff(f, mp.mpf(float(eta)), k) for k in range(3)]


def close(ours, exact, rtol=1e-12):
    """Relative error below rtol where the exact value is a normal double; where it underflows, ours too."""
    exact = float(exact)
    if abs(exact) < 1e-290:
        return abs(ours) < 1e-280
    return abs(ours - exact) <= rtol * abs(exact)


@pytest.mark.parametrize("name", ["logit", "probit", "cloglog"])
@pytest.mark.parametrize("which", ["log_mu", "log1m_mu"])
def test_log_probabilities_and_derivatives_against_mpmath(name, which):
    link = links.get(name)
    ours = np.array([getattr(link, which)(ETA), *getattr(link, which + "_derivatives")(ETA)])
    function = MU if which == "log_mu" else ONE_MINUS_MU
    for j, eta in enumerate(ETA):
        exact = reference(function, name, eta)
        for k in range(3):
            assert close(ours[k][j], exact[k]), (name, which, eta, k, ours[k][j], float(exact[k]))


def test_cloglog_log_of_one_minus_mu_is_minus_exp_eta_not_clipped():
    log1m = links.get("cloglog").log1m_mu(np.array([3.6, 10.0, 40.0]))
    np.testing.assert_array_equal(log1m, -np.exp([3.6, 10.0, 40.0]))
    assert np.log1p(-links.get("cloglog").inverse(10.0)) > -37     # what the clipped mean would give


def binomial_reference(name, y, n, eta):
    """log C(n, y) + y log mu + (n - y) log(1 - mu) and its derivatives, in mpmath."""
    out = [mp.log(mp.binomial(n, y)), 0, 0]
    for count, function in ((y, MU), (n - y, ONE_MINUS_MU)):
        if count:
            parts = reference(function, name, eta)
            out = [o + count * p for o, p in zip(out, parts)]
    return out


@pytest.mark.parametrize("name", ["logit", "probit", "cloglog"])
def test_binomial_loglik_on_the_eta_scale(name):
    family = gt.families.Binomial(link=name)
    for y, n in [(0, 1), (1, 1), (0, 20), (20, 20), (3, 20), (17, 20)]:
        values = [family.loglik_eta(y, ETA, 1.0, n), *family.eta_derivatives(y, ETA, 1.0, n)]
        for j, eta in enumerate(ETA):
            exact = binomial_reference(name, y, n, eta)
            for k in range(3):
                if float(exact[k]) == 0:
                    assert abs(values[k][j]) < 1e-280
                else:
                    assert close(values[k][j], exact[k], 1e-11), (name, y, n, eta, k, values[k][j], float(exact[k]))


def extreme_data(seed=7, groups=8, each=6):
    """A binomial data set whose linear predictor x beta runs from -40 to 40."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, groups * each)
    n = rng.integers(1, 30, groups * each)
    y = np.array([rng.integers(0, k + 1) for k in n])
    return pd.DataFrame({"y": y, "n": n, "x": x, "g": np.repeat([f"g{i}" for i in range(groups)], each)})


@pytest.mark.parametrize("name", ["logit", "probit", "cloglog"])
def test_glm_loglik_at_extreme_eta_is_exact(name):
    d = extreme_data()
    design = gt.design.build("cbind(y, n - y) ~ x", d, gt.families.Binomial(link=name))
    beta = np.array([0.0, 40.0])
    ours = laplace_loglik(design, beta, np.zeros(0), 1.0, reml=False).loglik
    exact = mp.fsum(binomial_reference(name, int(y), int(k), e)[0]
                    for y, k, e in zip(d.y, d.n, 40.0 * d.x))
    assert ours == pytest.approx(float(exact), rel=1e-12)
    assert float(exact) < -1e10 if name == "cloglog" else True


@pytest.mark.parametrize("name", ["logit", "probit", "cloglog"])
def test_glmm_laplace_loglik_at_extreme_eta_is_exact(name):
    """The Laplace log-likelihood of (1 | g) at beta with eta up to +-40, recomputed in mpmath from our modes:
    f(b) = sum ell_i - b'b / 2 and -log|H| / 2 with H_g = 1 + sum_i D_i theta^2 (D from mpmath)."""
    d = extreme_data()
    design = gt.design.build("cbind(y, n - y) ~ x + (1 | g)", d, gt.families.Binomial(link=name))
    beta, theta = np.array([0.0, 38.0]), np.array([0.8])
    result = laplace_loglik(design, beta, theta, 1.0, reml=False)
    groups = pd.factorize(d.g, sort=True)[0]
    b = result.b
    eta = 38.0 * d.x.to_numpy() + theta[0] * b[groups]
    parts = [binomial_reference(name, int(y), int(k), e) for y, k, e in zip(d.y, d.n, eta)]
    f = mp.fsum(p[0] for p in parts) - mp.fsum(mp.mpf(float(v)) ** 2 for v in b) / 2
    H = [1 + mp.fsum(-parts[i][2] * theta[0] ** 2 for i in np.flatnonzero(groups == g)) for g in range(len(b))]
    exact = f - mp.fsum(mp.log(h) for h in H) / 2
    assert result.loglik == pytest.approx(float(exact), rel=1e-10, abs=1e-8)
    gradient = [mp.fsum(parts[i][1] * theta[0] for i in np.flatnonzero(groups == g)) - b[g] for g in range(len(b))]
    assert max(abs(float(v)) for v in gradient) < 1e-6 * max(1.0, abs(float(exact)))     # b-hat is the mode
