"""Tests for glmmteach.families: densities against scipy and R, derivatives, draws, errors."""
import re
import warnings
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as hs
from numpy.testing import assert_allclose

from glmmteach import families, links
from glmmteach.families import Beta, BetaBinomial, Binomial, Gamma, Gaussian, NBinom1, NBinom2, Poisson

ALL = [Gaussian(), Binomial(), Poisson(), Gamma(), NBinom1(), NBinom2(), Beta(), BetaBinomial()]
IDS = [f.name for f in ALL]


# --- random responses and parameters inside each family's support ---------------------
def draw_case(family, rng, size=300):
    """(y, mu, phi, n) with y in the support of ``family``."""
    n = np.ones(size)
    if family.name == "gaussian":
        mu, phi = rng.normal(0, 5, size), rng.uniform(0.1, 5, size)
        y = rng.normal(mu, 2 * phi)
    elif family.name in ("binomial", "betabinomial"):
        n = rng.integers(1, 60, size).astype(float)
        mu = rng.uniform(0.01, 0.99, size)
        y, phi = rng.integers(0, n + 1).astype(float), np.ones(size)
        if family.name == "betabinomial":
            phi = rng.uniform(0.3, 200, size)
    elif family.name in ("poisson", "nbinom2", "nbinom1"):
        mu, phi = rng.uniform(0.05, 60, size), rng.uniform(0.1, 50, size)
        y = rng.poisson(rng.uniform(0, 80, size)).astype(float)
    elif family.name == "Gamma":
        mu, phi = rng.uniform(0.05, 50, size), rng.uniform(0.05, 2, size)
        y = rng.gamma(2.0, rng.uniform(0.05, 30, size))
    else:  # beta
        mu, phi = rng.uniform(0.02, 0.98, size), rng.uniform(0.5, 200, size)
        y = rng.uniform(0.001, 0.999, size)
    return y, mu, phi, n


def scipy_logpdf(family, y, mu, phi, n):
    if family.name == "gaussian":
        return st.norm.logpdf(y, mu, phi)
    if family.name == "binomial":
        return st.binom.logpmf(y, n, mu)
    if family.name == "poisson":
        return st.poisson.logpmf(y, mu)
    if family.name == "Gamma":
        return st.gamma.logpdf(y, 1 / phi**2, scale=mu * phi**2)
    if family.name == "nbinom2":
        return st.nbinom.logpmf(y, phi, phi / (phi + mu))
    if family.name == "nbinom1":
        return st.nbinom.logpmf(y, mu / phi, 1 / (1 + phi))
    if family.name == "betabinomial":
        return st.betabinom.logpmf(y, n, mu * phi, (1 - mu) * phi)
    return st.beta.logpdf(y, mu * phi, (1 - mu) * phi)


@pytest.mark.parametrize("family", ALL, ids=IDS)
def test_loglik_equals_scipy(family):
    y, mu, phi, n = draw_case(family, np.random.default_rng(20240611))
    assert_allclose(family.loglik(y, mu, phi, n), scipy_logpdf(family, y, mu, phi, n),
                    rtol=1e-10, atol=1e-10)


@settings(max_examples=100, deadline=None)
@given(n=hs.integers(1, 200), fraction=hs.floats(0, 1), mu=hs.floats(1e-6, 1 - 1e-6))
def test_binomial_loglik_equals_scipy_hypothesis(n, fraction, mu):
    y = float(np.floor(fraction * n))
    assert_allclose(Binomial().loglik(y, mu, 1, n), st.binom.logpmf(y, n, mu), rtol=1e-10, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(y=hs.integers(0, 500), mu=hs.floats(1e-3, 1e3), theta=hs.floats(0.05, 1e3))
def test_nbinom2_loglik_equals_scipy_hypothesis(y, mu, theta):
    assert_allclose(NBinom2().loglik(y, mu, theta),
                    st.nbinom.logpmf(y, theta, theta / (theta + mu)), rtol=1e-9, atol=1e-9)


# Values printed by R 4.2.2 (options(digits = 17)):
#   dnorm(c(-1.3, 0.2, 4.1), mean = 0.5, sd = c(0.7, 1.9, 2.5), log = TRUE)
#   dbinom(c(0, 3, 9, 12, 250), size = c(1, 9, 10, 40, 1000),
#          prob = c(0.2, 0.4, 0.93, 0.31, 0.27), log = TRUE)
#   dpois(c(0, 1, 7, 120), lambda = c(0.3, 2.5, 4.1, 101.7), log = TRUE)
#   s <- c(0.6, 1.3, 0.05); m <- c(2.3, 0.8, 35)
#   dgamma(c(0.2, 1.5, 40), shape = 1/s^2, scale = m * s^2, log = TRUE)
#   dnbinom(c(0, 3, 7, 150, 4), size = c(1.7, 0.4, 12, 3.3, 1e5),
#           mu = c(2.3, 5.1, 6.2, 80, 3.9), log = TRUE)
#   m <- c(0.3, 0.5, 0.8, 0.6); p <- c(5, 1.2, 40, 300)
#   dbeta(c(0.01, 0.5, 0.93, 0.999), m * p, (1 - m) * p, log = TRUE)
R_DENSITIES = [
    (Gaussian(), [-1.3, 0.2, 4.1], 0.5, [0.7, 1.9, 2.5], 1,
     [-3.8683860382455331, -1.5732577933382863, -2.8720292650788277]),
    (Binomial(), [0, 3, 9, 12, 250], [0.2, 0.4, 0.93, 0.31, 0.27], 1, [1, 9, 10, 40, 1000],
     [-0.22314355131420971, -1.3830091393750956, -1.0098111794522517, -2.0002967750646627,
      -4.5674330737468356]),
    (Poisson(), [0, 1, 7, 120], [0.3, 2.5, 4.1, 101.7], 1, 1,
     [-0.29999999999999999, -1.5837092681258449, -2.74825254509358, -4.8691116147364664]),
    (Gamma(), [0.2, 1.5, 40], [2.3, 0.8, 35], [0.6, 1.3, 0.05], 1,
     [-3.0766152332245822, -1.8645871358990331, -5.3425941401026797]),
    (NBinom2(), [0, 3, 7, 150, 4], [2.3, 5.1, 6.2, 80, 3.9], [1.7, 0.4, 12, 3.3, 1e5], 1,
     [-1.4546323870981244, -2.7710474142965644, -2.1683094446651658, -6.1549166574762459,
      -1.6341675674404783]),
    (Beta(), [0.01, 0.5, 0.93, 0.999], [0.3, 0.5, 0.8, 0.6], [5, 1.2, 40, 300], 1,
     [-0.22984846699168271, -0.32732406169382922, -0.85013639014661369, -619.07995275715416]),
]


@pytest.mark.parametrize("family, y, mu, phi, n, expected", R_DENSITIES,
                         ids=[case[0].name for case in R_DENSITIES])
def test_loglik_equals_r(family, y, mu, phi, n, expected):
    got = family.loglik(np.array(y, float), np.array(mu, float), np.array(phi, float), np.array(n, float))
    assert_allclose(got, expected, rtol=1e-10)


# First three observations of fits in glmmTMB 1.1.5 (R 4.2.2), with sigma(fit):
#   set.seed(1); n <- 60; x <- runif(n)
#   yg <- rgamma(n, shape = 3, scale = exp(1 + x)/3); yn <- rnbinom(n, size = 2, mu = exp(1 + x))
#   yb <- rbeta(n, 2 + 3*x, 4); set.seed(2); ybin <- rbinom(60, 10, 0.3)
#   f1 <- glmmTMB(yg ~ x, family = Gamma(link = "log")); f2 <- glmmTMB(yn ~ x, family = nbinom2)
#   f3 <- glmmTMB(yb ~ x, family = beta_family());       f4 <- glmmTMB(yg ~ x, family = gaussian)
#   f5 <- glmmTMB(cbind(ybin, 10 - ybin) ~ x, family = binomial); f6 <- glmmTMB(yn ~ x, family = poisson)
#   fitted(f), residuals(f, "pearson"), and R's family()$dev.resids(y, fitted(f), wt)
# The whole-sample logLik()s matched too (checked when this file was written).
GLMMTMB_FITS = [  # family, sigma, y, fitted, pearson, dev.resids
    (Gamma(link="log"), 0.50058516674546838, [6.03785913459198031, 3.07625724158637004, 2.53640275298835016],
     [3.31235259580305019, 3.73297070252804009, 4.67523078070712028],
     [0.82283104227560699, -0.17592247924606899, -0.45748073796589700],
     [0.44488046403525899, 0.03513639133368230, 0.30810190035660900]),
    (NBinom2(), 1.4988254404306265, [3, 1, 5],
     [3.08788300768252011, 3.40067865559265980, 4.07813531699622001],
     [-0.02858903216139670, -0.72003017774089795, 0.23665358889213300],
     [0.00083054613109160, 0.91703426178780301, 0.04963247186348330]),
    (Beta(), 6.8820433759211008, [0.60282620721121305, 0.14138702314026499, 0.76404622752504803],
     [0.42006273508311198, 0.43209090136956901, 0.45494450410786202],
     [0.37028985551472499, -0.58684559852138696, 0.62072873946092399], None),
    (Gaussian(), 2.2462294221938262, [6.03785913459198031, 3.07625724158637004, 2.53640275298835016],
     [3.42589226540706004, 3.91087088605929001, 4.82396268829586994],
     [2.61196686918491983, -0.83461364447292397, -2.28755993530752022], None),
    (Poisson(), 1.0, [3, 1, 5], [3.13200548198333983, 3.43053463141687009, 4.07196724748521000],
     [-0.07459001773103439, -1.31226307769543005, 0.45989762386010902],
     [0.00564352532939566, 2.39563702633524001, 0.19705126063694500]),
]


@pytest.mark.parametrize("family, sigma, y, mu, pearson, deviance", GLMMTMB_FITS,
                         ids=[case[0].name for case in GLMMTMB_FITS])
def test_residuals_match_glmmtmb_1_1_5(family, sigma, y, mu, pearson, deviance):
    y, mu = np.array(y), np.array(mu)
    assert_allclose(family.pearson_residual(y, mu, sigma), pearson, rtol=1e-12)
    if deviance is not None:
        assert_allclose(family.unit_deviance(y, mu, sigma), deviance, rtol=1e-12)


def test_binomial_residuals_match_glmmtmb_1_1_5():
    y, n = np.array([2.0, 4.0, 3.0]), 10
    mu = np.array([0.30651389295786002, 0.30872422819075002, 0.31290953548653000])
    assert_allclose(Binomial().pearson_residual(y, mu, 1, n),
                    [-0.73057077204734300, 0.62480498985813404, -0.08804288315597909], rtol=1e-12)
    assert_allclose(Binomial().unit_deviance(y, mu, 1, n),
                    [0.57830547725248804, 0.37281891478836099, 0.00781129303664072], rtol=1e-12)
    # the same residual on the proportion scale, as R writes it
    assert_allclose(Binomial().pearson_residual(y, mu, 1, n),
                    (y / n - mu) / np.sqrt(mu * (1 - mu) / n), rtol=1e-12)


@pytest.mark.parametrize("family", [Poisson(), NBinom2(), Binomial()], ids=lambda f: f.name)
def test_unit_deviance_is_twice_the_loglik_drop_from_saturated(family):
    y, mu, phi, n = draw_case(family, np.random.default_rng(5))
    saturated = y / n
    drop = family.loglik(y, saturated, phi, n) - family.loglik(y, mu, phi, n)
    assert_allclose(family.unit_deviance(y, mu, phi, n), 2 * drop, rtol=1e-9, atol=1e-9)


def test_loglik_finite_at_saturated_boundaries():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Binomial().loglik(0.0, 0.0, 1, 5) == 0.0
        assert Binomial().loglik(5.0, 1.0, 1, 5) == 0.0
        assert Binomial().loglik(0.0, 1.0, 1, 1) == -np.inf  # impossible outcome: density 0
        assert np.isfinite(Binomial().loglik(0.0, 1e-300, 1, 10))
        assert np.isfinite(Binomial().loglik(10.0, 1 - 1e-16, 1, 10))
        assert Poisson().loglik(0.0, 0.0, 1) == 0.0
        assert NBinom2().loglik(0.0, 0.0, 2.0) == 0.0
        assert_allclose(Binomial().loglik(np.array([0.0, 3.0, 7.0]), np.array([0.0, 0.3, 1.0]), 1,
                                          np.array([4.0, 10.0, 7.0])),
                        [0.0, st.binom.logpmf(3, 10, 0.3), 0.0])


# --- derivatives ---------------------------------------------------------------------
@pytest.mark.parametrize("family", ALL, ids=IDS)
def test_derivatives_match_finite_differences(family):
    y, mu, phi, n = draw_case(family, np.random.default_rng(7), size=200)
    h = 1e-5 * mu if family.name != "gaussian" else 1e-5 * np.maximum(1, np.abs(mu))

    def loglik(m):
        return family.loglik(y, m, phi, n)

    def score(m):
        return family.dloglik_dmu(y, m, phi, n)

    numeric_score = (loglik(mu + h) - loglik(mu - h)) / (2 * h)
    numeric_curvature = (score(mu + h) - score(mu - h)) / (2 * h)
    scale = np.abs(family.dloglik_dmu(y, mu, phi, n)).max()
    assert_allclose(family.dloglik_dmu(y, mu, phi, n), numeric_score, rtol=1e-6, atol=1e-6 * scale)
    scale = np.abs(family.d2loglik_dmu2(y, mu, phi, n)).max()
    assert_allclose(family.d2loglik_dmu2(y, mu, phi, n), numeric_curvature, rtol=1e-6,
                    atol=1e-8 * scale)


LINK_CASES = [(type(f), link) for f in ALL for link in f.allowed_links]


@pytest.mark.parametrize("cls, link", LINK_CASES, ids=[f"{c.name}-{l}" for c, l in LINK_CASES])
def test_dispersion_derivatives_match_finite_differences(cls, link):
    """d/ds of ell, g = d ell/d eta and d2 ell/d eta2 at fixed eta, s = log phi: the family's formulas
    against central differences in s (step 1e-6 |s|, 1e-6 near 0) of the eta-scale functions."""
    family = cls(link=link)
    y, mu, phi, n = draw_case(family, np.random.default_rng(11), size=200)
    if family.name == "gaussian" and link != "identity":
        mu = np.abs(mu) + 0.1                  # inside the range of the log and inverse links
    eta = family.link.link(mu)
    assert np.all(np.isfinite(eta))
    s = np.log(phi)
    h = 1e-6 * np.maximum(1, np.abs(s))

    def state(s):
        g, d2 = family.eta_derivatives(y, eta, np.exp(s), n)
        return np.array([family.loglik_eta(y, eta, np.exp(s), n), g, d2])

    numeric = (state(s + h) - state(s - h)) / (2 * h)
    for exact, approx in zip(family.dispersion_derivatives(y, eta, phi, n), numeric):
        assert_allclose(exact, approx, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(approx).max()))
    if not family.has_phi:
        assert all(np.all(d == 0) for d in family.dispersion_derivatives(y, eta, phi, n))


@pytest.mark.parametrize("family", [f for f in ALL if f.has_phi], ids=[f.name for f in ALL if f.has_phi])
def test_constant_phi_terms_computed_once_give_the_same_density(family):
    """With one phi for every observation, the terms in phi alone are computed once and broadcast: the
    density and its dispersion derivatives equal those with the same phi given as distinct arrays."""
    y, mu, phi, n = draw_case(family, np.random.default_rng(5), size=50)
    constant = np.full(50, phi[0])
    almost = constant.copy()
    almost[-1] = np.nextafter(almost[-1], np.inf)         # not all equal: entry by entry
    assert_allclose(family.loglik(y, mu, constant, n), family.loglik(y, mu, almost, n), rtol=1e-13)
    for a, b in zip(family.dispersion_partials(y, mu, constant, n), family.dispersion_partials(y, mu, almost, n)):
        assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("family", ALL, ids=IDS)
def test_score_has_mean_zero_at_the_true_mu(family):
    """E[d loglik / d mu] = 0 when y is drawn with mean mu (checked on many draws)."""
    rng = np.random.default_rng(11)
    mu = {"binomial": 0.3, "beta": 0.3, "betabinomial": 0.3}.get(family.name, 4.0)
    phi = {"gaussian": 2.0, "Gamma": 0.5, "nbinom2": 3.0, "beta": 8.0, "nbinom1": 1.5,
           "betabinomial": 4.0}.get(family.name, 1.0)
    y = family.simulate(np.full(40000, mu), phi, rng, n=5)
    score = family.dloglik_dmu(y, mu, phi, n=5)
    # information identity: Var(score) = -E(d2 loglik / d mu2)
    information = -family.d2loglik_dmu2(y, mu, phi, n=5).mean()
    assert abs(score.mean()) < 4 * score.std() / np.sqrt(y.size)
    assert_allclose(score.var(), information, rtol=0.05)


# --- variance, simulation ------------------------------------------------------------
MOMENT_CASES = [  # family, mu, phi, n, Var(y) by hand
    (Gaussian(), 3.0, 2.0, 1, 4.0),
    (Binomial(), 0.3, 1.0, 12, 12 * 0.3 * 0.7),
    (Poisson(), 4.5, 1.0, 1, 4.5),
    (Gamma(), 5.0, 0.5, 1, 0.25 * 25.0),
    (NBinom1(), 4.0, 2.0, 1, 4.0 * 3.0),
    (NBinom2(), 4.0, 2.0, 1, 4.0 + 16.0 / 2.0),
    (Beta(), 0.3, 5.0, 1, 0.3 * 0.7 / 6.0),
    (BetaBinomial(), 0.3, 5.0, 12, 12 * 0.3 * 0.7 * (1 + 11 / 6.0)),
]


@pytest.mark.parametrize("family, mu, phi, n, var", MOMENT_CASES, ids=IDS)
def test_var_y_formula(family, mu, phi, n, var):
    assert_allclose(family.var_y(mu, phi, n), var, rtol=1e-14)


@pytest.mark.parametrize("family, mu, phi, n, var", MOMENT_CASES, ids=IDS)
def test_simulated_mean_and_variance(family, mu, phi, n, var):
    draws = family.simulate(np.full(50000, mu), phi, np.random.default_rng(42), n=n)
    mean = n * mu if family.trials else mu
    assert abs(draws.mean() - mean) < 4 * np.sqrt(var / draws.size)
    # 5%: several times the sampling error here, far less than a wrong parameterisation
    # (e.g. Gamma shape 1/phi instead of 1/phi^2 doubles the variance)
    assert_allclose(draws.var(), var, rtol=0.05)


@pytest.mark.parametrize("family, mu, phi, n", [
    (BetaBinomial(), 0.3, 3.0, 10), (BetaBinomial(), 0.8, 25.0, 6), (NBinom1(), 4.0, 2.0, 1),
    (NBinom1(), 0.7, 0.3, 1)], ids=["betabinomial-a", "betabinomial-b", "nbinom1-a", "nbinom1-b"])
def test_simulated_frequencies_match_the_density(family, mu, phi, n):
    """The draws' frequency of each value y = 0, 1, ... against exp(loglik(y)), within 4.5 binomial SEs (of
    100,000 draws), and the density sums to 1 over the support."""
    draws = family.simulate(np.full(100_000, mu), phi, np.random.default_rng(9), n=n)
    y = np.arange(0, n + 1 if family.trials else 60)
    p = np.exp(family.loglik(y.astype(float), mu, phi, n))
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    frequency = np.array([np.mean(draws == k) for k in y])
    se = np.sqrt(p * (1 - p) / draws.size)
    assert np.all(np.abs(frequency - p) <= 4.5 * se + 1e-12), np.max(np.abs(frequency - p) / (se + 1e-300))


@pytest.mark.parametrize("family", ALL, ids=IDS)
def test_simulate_leaves_global_random_state_alone(family):
    np.random.seed(123)
    before = np.random.get_state()
    family.simulate(np.full(10, 0.4), 1.5, np.random.default_rng(1), n=3)
    after = np.random.get_state()
    assert before[0] == after[0]
    assert np.array_equal(before[1], after[1]) and before[2:] == after[2:]


@pytest.mark.parametrize("family", ALL, ids=IDS)
def test_simulate_shape_support_and_reproducibility(family):
    mu = np.array([[0.2, 0.5, 0.7], [0.4, 0.6, 0.9]])
    n = np.array([1, 5, 20])
    a = family.simulate(mu, 2.0, np.random.default_rng(3), n=n)
    b = family.simulate(mu, 2.0, np.random.default_rng(3), n=n)
    assert a.shape == mu.shape
    assert np.array_equal(a, b)
    assert np.all(np.isfinite(a))
    if family.integer_valued:
        assert np.all(a == np.round(a)) and np.all(a >= 0)
    if family.trials:
        assert np.all(a <= n)
    if family.name in ("Gamma",):
        assert np.all(a > 0)
    if family.name == "beta":
        assert np.all((a > 0) & (a < 1))


def test_variance_functions_are_rs():
    mu = np.array([0.2, 0.5, 3.0])
    assert_allclose(Gaussian().variance(mu), [1, 1, 1])
    assert_allclose(Binomial().variance(mu[:2]), mu[:2] * (1 - mu[:2]))
    assert_allclose(Poisson().variance(mu), mu)
    assert_allclose(Gamma().variance(mu), mu**2)
    assert_allclose(NBinom2().variance(mu, 2.0), mu * (1 + mu / 2.0))
    assert_allclose(NBinom1().variance(mu, 2.0), mu * 3.0)
    assert_allclose(BetaBinomial().variance(mu[:2]), mu[:2] * (1 - mu[:2]))
    assert_allclose(Beta().variance(mu[:2]), mu[:2] * (1 - mu[:2]))
    with pytest.raises(TypeError, match="theta"):
        NBinom2().variance(mu)


# --- checking the response -----------------------------------------------------------
SUPPORT_ERRORS = [  # family, y, n, name, what the message must say
    (Poisson(), [3, 0, -2, 1], None, "count", r"response 'count' has negative counts.*found -2 in row 2"),
    (NBinom2(), [3, 0, 2.5], None, "fish", r"response 'fish' has non-integer counts.*found 2.5 in row 2"),
    (Poisson(), [1.0, 0.5], None, "y", r"non-integer counts.*found 0.5 in row 1"),
    (Gamma(), [1.2] * 17 + [0.0], None, "wt",
     r"^response 'wt' must be > 0 for the Gamma family; found 0 in row 17$"),
    (Gamma(), [1.2, -3.5], None, "wt", r"must be > 0.*found -3.5 in row 1"),
    (Binomial(), [2, 12], [10, 10], "germ",
     r"response 'germ' has more successes than trials.*found 12 successes with n = 10"),
    (Binomial(), [0, 2], None, "alive", r"more successes than trials.*found 2 successes with n = 1"),
    (Binomial(), [0, -1], [3, 3], "germ", r"response 'germ' has negative success counts.*found -1 in row 1"),
    (Binomial(), [0, 0.4], [3, 3], "germ", r"non-integer success counts.*found 0.4 in row 1"),
    (Binomial(), [0, 1], [3, 0], "germ", r"number of trials for response 'germ'.*>= 1.*found 0 in row 1"),
    (Binomial(), [0, 1], [3, 2.5], "germ", r"number of trials.*whole number.*found 2.5 in row 1"),
    (Beta(), [0.2, 1.0], None, "cover", r"response 'cover' must be strictly between 0 and 1.*found 1 in row 1"),
    (Beta(), [0.0, 0.5], None, "cover", r"strictly between 0 and 1.*found 0 in row 0"),
    (Gaussian(), [1.0, np.nan], None, "height", r"response 'height' must be finite.*found nan in row 1"),
    (Poisson(), [1.0, np.inf], None, "y", r"must be finite.*found inf in row 1"),
    (Gaussian(), ["a", "b"], None, "y", r"response 'y' must be numeric"),
    (NBinom1(), [3, 0, -1], None, "fec", r"response 'fec' has negative counts.*found -1 in row 2"),
    (NBinom1(), [3, 0.5], None, "fec", r"non-integer counts.*found 0.5 in row 1"),
    (BetaBinomial(), [2, 12], [10, 10], "germ",
     r"response 'germ' has more successes than trials for the betabinomial family.*found 12 successes"),
    (BetaBinomial(), [0, -1], [3, 3], "germ", r"negative success counts.*found -1 in row 1"),
    (BetaBinomial(), [0, 1], [3, 0], "germ", r"number of trials for response 'germ'.*>= 1 for the betabinomial"),
]


@pytest.mark.parametrize("family, y, n, name, message", SUPPORT_ERRORS)
def test_check_response_errors_name_column_and_value(family, y, n, name, message):
    with pytest.raises(ValueError, match=message) as error:
        family.check_response(y, n=n, name=name)
    assert f"'{name}'" in str(error.value)
    assert family.name in str(error.value)


@pytest.mark.parametrize("family, y, n", [
    (Gaussian(), [-3.0, 0.0, 1e6], None), (Binomial(), [0, 3, 10], [10, 10, 10]),
    (Binomial(), [0, 1, 1], None), (Binomial(), [True, False], None),
    (Poisson(), [0, 1, 250], None), (NBinom2(), np.array([0, 4], dtype=np.int64), None),
    (Gamma(), [1e-8, 3.0], None), (Beta(), [1e-6, 0.5, 1 - 1e-6], None)], ids=lambda x: "")
def test_check_response_accepts_valid_and_returns_floats(family, y, n):
    y_checked = family.check_response(y, n=n)
    assert y_checked.dtype == float
    assert_allclose(y_checked, np.asarray(y, float))


@pytest.mark.parametrize("family", ALL, ids=IDS)
def test_start_mu_strictly_inside_the_mean_range(family):
    y = {"gaussian": [-2.0, 0.0, 5.0], "binomial": [0.0, 2.0, 4.0], "poisson": [0.0, 0.0, 7.0],
         "Gamma": [1e-3, 1.0, 40.0], "nbinom2": [0.0, 1.0, 7.0], "beta": [1e-4, 0.5, 0.9999],
         "nbinom1": [0.0, 1.0, 7.0], "betabinomial": [0.0, 2.0, 4.0]}[family.name]
    mu0 = family.start_mu(np.array(y), n=4)
    eta0 = family.link.link(mu0)
    assert np.all(np.isfinite(eta0))
    if family.name in ("binomial", "beta", "betabinomial"):
        assert np.all((mu0 > 0) & (mu0 < 1))
    if family.name in ("poisson", "nbinom1", "nbinom2", "Gamma"):
        assert np.all(mu0 > 0)


def test_binomial_start_mu_is_rs():
    assert_allclose(Binomial().start_mu(np.array([0.0, 3.0]), n=np.array([1.0, 3.0])), [0.25, 0.875])


# --- construction, links, get(), table() -----------------------------------------------
DEFAULTS = {"gaussian": "identity", "binomial": "logit", "poisson": "log", "Gamma": "inverse",
            "nbinom1": "log", "nbinom2": "log", "beta": "logit", "betabinomial": "logit"}


@pytest.mark.parametrize("family", ALL, ids=IDS)
def test_default_links_are_rs(family):
    assert family.link.name == DEFAULTS[family.name] == family.default_link
    assert family.default_link in family.allowed_links


@pytest.mark.parametrize("family", ALL, ids=IDS)
def test_every_allowed_link_constructs(family):
    for name in family.allowed_links:
        assert type(family)(link=name).link is links.get(name)
        assert type(family)(links.get(name)).link.name == name


def test_disallowed_link_error():
    with pytest.raises(ValueError, match=re.escape(
            "the Gamma family does not allow the 'logit' link; allowed: inverse, identity, log")):
        Gamma(link="logit")
    with pytest.raises(ValueError, match=re.escape(
            "the beta family does not allow the 'log' link; allowed: logit, probit, cloglog")):
        Beta(link=links.Log())
    with pytest.raises(ValueError, match="unknown link 'logt'"):
        Binomial(link="logt")


def test_get_family():
    assert isinstance(families.get("gamma"), Gamma)
    assert families.get("gamma") == families.get("Gamma") == Gamma()
    for family in ALL:
        assert families.get(family.name) == family
        assert families.get(family) is family
    probit = Binomial(link="probit")
    assert families.get(probit) is probit
    assert probit != Binomial()
    assert Gamma(link="log") == Gamma(link=links.Log())


def test_get_unknown_family():
    with pytest.raises(ValueError, match=r"unknown family 'negbin'; choose one of: gaussian, binomial, "
                                         r"poisson, Gamma, nbinom1, nbinom2, beta, betabinomial"):
        families.get("negbin")
    with pytest.raises(TypeError, match="did you mean Poisson()"):
        families.get(Poisson)
    for bad in (3, None, links.Log()):
        with pytest.raises(TypeError):
            families.get(bad)


def test_families_are_frozen():
    with pytest.raises(FrozenInstanceError):
        Poisson().link = links.Identity()


def test_attributes():
    assert [f.has_phi for f in ALL] == [True, False, False, True, True, True, True, True]
    assert [f.integer_valued for f in ALL] == [False, True, True, False, True, True, False, True]
    assert [f.trials for f in ALL] == [False, True, False, False, False, False, False, True]
    assert [f.name for f in ALL] == ["gaussian", "binomial", "poisson", "Gamma", "nbinom1", "nbinom2", "beta",
                                     "betabinomial"]
    for family in ALL:
        assert family.sigma_meaning and family.support and family.variance_text
        assert family.canonical_link.split()[0] in set(links.LINKS) | {"none"}
    assert str(Gamma(link="log")) == "Gamma(log)"


def test_table():
    table = families.table()
    assert table.shape == (8, 8)
    assert list(table.columns) == ["family", "support", "mean", "variance", "canonical link",
                                   "default link", "links allowed", "dispersion"]
    assert list(table["family"]) == ["gaussian", "binomial", "poisson", "Gamma", "nbinom1", "nbinom2", "beta",
                                     "betabinomial"]
    assert list(table["default link"]) == list(DEFAULTS.values())
    assert table.notna().all().all()


def test_families_declare_what_emmeans_calls_a_back_transformed_mean():
    """emmeans names the response-scale column prob for binomial-type families, rate for the Poisson."""
    names = {name: families.get(name).response_name for name in families.FAMILIES}
    assert names["binomial"] == names["betabinomial"] == "prob"
    assert names["poisson"] == "rate"
    assert {names[n] for n in ("gaussian", "Gamma", "nbinom1", "nbinom2", "beta")} == {"response"}


def test_phi_is_a_residual_sd_of_eta_only_for_the_gaussian_identity_and_the_gamma_log():
    """The dispersion floor of fit.py applies where phi is a residual SD on the scale of eta."""
    on_eta_scale = {(name, link) for name, family in families.FAMILIES.items() for link in family.allowed_links
                    if families.get(name).__class__(link=link).phi_is_sd_of_eta()}
    assert on_eta_scale == {("gaussian", "identity"), ("Gamma", "log")}
