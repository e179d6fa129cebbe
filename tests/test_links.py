"""Tests for glmmteach.links: round trips, derivatives against finite differences, extremes."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from glmmteach import links

ALL = list(links.LINKS)
PROBABILITY_LINKS = ["logit", "probit", "cloglog"]

# Means where g is defined and the round trip mu -> eta -> mu is exact to ~1e-9 relative.
MU_DOMAIN = {
    "identity": st.floats(-1e6, 1e6),
    "log": st.floats(1e-10, 1e10),
    "logit": st.floats(1e-6, 1 - 1e-6),
    "probit": st.floats(1e-6, 1 - 1e-6),
    "cloglog": st.floats(1e-6, 1 - 1e-6),
    "inverse": st.one_of(st.floats(1e-6, 1e6), st.floats(-1e6, -1e-6)),
    "sqrt": st.floats(0, 1e10),
}

# Linear predictors where mu(eta) is known to full relative precision, so that central
# differences of inverse() are accurate to ~1e-8 (upper tails of the probability links
# are excluded: there 1 - mu, not mu, carries the information).
ETA_FOR_DMU = {
    "identity": (-50, 50), "log": (-20, 20), "logit": (-6, 6), "probit": (-6, 3),
    "cloglog": (-6, 2), "inverse": (0.05, 50), "sqrt": (-50, 50),
}
# For d2mu_deta2 we difference dmu_deta, which is accurate over a wider range.
ETA_FOR_D2MU = {
    "identity": (-50, 50), "log": (-20, 20), "logit": (-20, 20), "probit": (-8, 8),
    "cloglog": (-10, 3), "inverse": (0.05, 50), "sqrt": (-50, 50),
}


def central_difference(f, x, rel_step=1e-5):
    h = rel_step * np.maximum(1.0, np.abs(x))
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("name", ALL)
def test_round_trip_mu_eta_mu(name):
    link = links.get(name)

    @settings(max_examples=200, deadline=None)
    @given(MU_DOMAIN[name])
    def check(mu):
        assert_allclose(link.inverse(link.link(mu)), mu, rtol=1e-9, atol=1e-300)

    check()


@pytest.mark.parametrize("name", ALL)
def test_round_trip_on_arrays_keeps_shape(name):
    link = links.get(name)
    mu = {"identity": [[-2.0, 0.5, 3.0]], "log": [[0.1, 1.0, 7.0]], "inverse": [[-2.0, 0.5, 3.0]],
          "sqrt": [[0.0, 1.0, 9.0]]}.get(name, [[0.01, 0.5, 0.97]])
    mu = np.array(mu * 2)
    eta = link.link(mu)
    assert eta.shape == mu.shape
    for method in (link.inverse, link.dmu_deta, link.d2mu_deta2):
        assert method(eta).shape == mu.shape
    assert_allclose(link.inverse(eta), mu, rtol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_dmu_deta_matches_finite_differences(name):
    link = links.get(name)
    eta = np.linspace(*ETA_FOR_DMU[name], 201)
    assert_allclose(link.dmu_deta(eta), central_difference(link.inverse, eta),
                    rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_d2mu_deta2_matches_finite_differences(name):
    link = links.get(name)
    eta = np.linspace(*ETA_FOR_D2MU[name], 201)
    scale = np.max(np.abs(link.dmu_deta(eta)))
    assert_allclose(link.d2mu_deta2(eta), central_difference(link.dmu_deta, eta),
                    rtol=1e-6, atol=1e-9 * scale)


@pytest.mark.parametrize("name", ALL)
def test_dmu_deta_is_the_reciprocal_of_dg_dmu(name):
    link = links.get(name)
    eta = np.linspace(*ETA_FOR_DMU[name], 41)
    eta = eta[eta != 0]  # sqrt: g'(mu) is infinite at mu = 0
    mu = link.inverse(eta)
    h = 1e-6 * np.abs(mu)  # a relative step: mu can be as small as 1e-9
    dg_dmu = (link.link(mu + h) - link.link(mu - h)) / (2 * h)
    if name == "sqrt":  # g(inverse(eta)) = |eta|: the chain rule holds for eta > 0
        eta, dg_dmu = eta[eta > 0], dg_dmu[eta > 0]
    assert_allclose(link.dmu_deta(eta) * dg_dmu, 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_finite_without_warnings_at_eta_50(name):
    link = links.get(name)
    eta = np.array([-50.0, -49.5, -1.0, 1.0, 49.5, 50.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = [link.inverse(eta), link.dmu_deta(eta), link.d2mu_deta2(eta)]
    for value in values:
        assert np.all(np.isfinite(value)), name


@pytest.mark.parametrize("name", PROBABILITY_LINKS)
def test_probability_links_stay_strictly_inside_0_1(name):
    link = links.get(name)
    eta = np.array([-1000.0, -50.0, -40.0, 0.0, 10.0, 40.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mu = link.inverse(eta)
        eta_back = link.link(mu)
        dmu = link.dmu_deta(eta[1:-1])
    assert np.all(mu >= links.EPS) and np.all(mu <= 1 - links.EPS)
    assert np.all((mu > 0) & (mu < 1))
    assert np.all(np.isfinite(eta_back))
    assert np.all(dmu > 0)
    assert np.all(np.diff(mu) >= 0)


@pytest.mark.parametrize("name", ["log", "logit", "probit", "cloglog"])
def test_dmu_deta_strictly_positive_for_increasing_links(name):
    eta = np.linspace(-50, 50, 1001)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.all(links.get(name).dmu_deta(eta) > 0)


def test_inverse_link_is_decreasing():
    eta = np.array([-50.0, -2.0, 0.5, 50.0])
    assert np.all(links.get("inverse").dmu_deta(eta) < 0)


def test_log_inverse_is_exp():
    eta = np.array([-50.0, 0.0, 50.0])
    assert_allclose(links.get("log").inverse(eta), np.exp(eta), rtol=0)


def test_known_values():
    assert_allclose(links.get("logit").inverse(0.0), 0.5)
    assert_allclose(links.get("logit").dmu_deta(0.0), 0.25)
    assert_allclose(links.get("probit").inverse(1.959963984540054), 0.975)
    assert_allclose(links.get("cloglog").inverse(0.0), 1 - np.exp(-1))
    assert_allclose(links.get("sqrt").inverse(3.0), 9.0)
    assert_allclose(links.get("inverse").link(4.0), 0.25)


def test_get_and_registry():
    assert list(links.LINKS) == ["identity", "log", "logit", "probit", "cloglog", "inverse", "sqrt"]
    for name, link in links.LINKS.items():
        assert links.get(name) is link
        assert link.name == name
        assert str(link) == name
        assert links.get(link) is link
    assert links.get("logit") == links.Logit()


@pytest.mark.parametrize("bad", ["foo", "Logit", "", None, 3])
def test_unknown_link_raises(bad):
    with pytest.raises(ValueError, match=r"unknown link .*choose one of: identity, log, logit, "
                                         r"probit, cloglog, inverse, sqrt"):
        links.get(bad)


def test_unknown_link_message_names_it():
    with pytest.raises(ValueError, match="unknown link 'foo'"):
        links.get("foo")


def test_links_are_frozen():
    with pytest.raises(AttributeError):
        links.get("log").extra = 1
