"""Covariance structures: each structure's template, its derivatives and Sigma; Lambda built from them; a diag
term is the unstructured one with its correlations held at zero."""
import numpy as np
import pandas as pd
import pytest

import glmmteach as gt
from glmmteach import covstruct, laplace, numdiff
from glmmteach.design import build

STRUCTURES = [covstruct.Unstructured(("(Intercept)", "x", "z")), covstruct.Diagonal(("(Intercept)", "x", "z")),
              covstruct.Unstructured(("(Intercept)",))]


def some_theta(structure, seed=1):
    rng = np.random.default_rng(seed)
    return np.where(np.isfinite(structure.lower_bounds()), rng.uniform(0.2, 2.0, structure.n_theta),
                    rng.normal(size=structure.n_theta))


@pytest.mark.parametrize("structure", STRUCTURES, ids=lambda s: f"{s.name}{s.k}")
def test_derivatives_of_the_template_match_finite_differences(structure):
    theta = some_theta(structure)
    numeric = numdiff.partials(structure.template, theta)
    np.testing.assert_allclose(structure.dtemplate(theta), numeric, atol=1e-8)


@pytest.mark.parametrize("structure", STRUCTURES, ids=lambda s: f"{s.name}{s.k}")
def test_sigma_is_t_t_transposed_and_its_pattern_holds_every_entry(structure):
    theta = some_theta(structure)
    T = structure.template(theta)
    np.testing.assert_allclose(structure.Sigma(theta), T @ T.T)
    outside = np.ones_like(T, bool)
    outside[structure.pattern] = False
    assert not T[outside].any()
    assert len(structure.theta_names("g")) == structure.n_theta == len(structure.lower_bounds())


def test_start_puts_the_sds_on_the_diagonal_and_no_correlation():
    sd = np.array([0.5, 0.2, 0.1])
    for structure in STRUCTURES[:2]:
        Sigma = structure.Sigma(structure.start(sd))
        np.testing.assert_allclose(Sigma, np.diag(sd ** 2))


def test_diag_theta_names_and_bounds():
    s = covstruct.Diagonal(("(Intercept)", "t"))
    assert s.theta_names("fish") == ["fish: sd (Intercept)", "fish: sd t"]
    np.testing.assert_array_equal(s.lower_bounds(), [0.0, 0.0])
    np.testing.assert_array_equal(s.correlation(np.array([0.3, 0.4])), np.eye(2))


def test_unknown_structure_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown covariance structure 'toeplitz'"):
        covstruct.get("toeplitz", ["x"])


@pytest.fixture
def small():
    rng = np.random.default_rng(3)
    return pd.DataFrame({"y": rng.normal(size=12), "x": rng.normal(size=12), "f": np.repeat(["a", "b", "c"], 4),
                         "h": np.tile(["p", "q"], 6)})


def test_lambda_of_a_diag_term_repeats_its_diagonal_template(small):
    d = build("y ~ x + (1 | h) + (1 + x || f)", small, gt.families.get("gaussian"))
    theta = np.array([0.7, 1.5, 0.4])
    expected = np.zeros((2 + 6, 2 + 6))
    expected[:2, :2] = 0.7 * np.eye(2)
    expected[2:, 2:] = np.kron(np.eye(3), np.diag([1.5, 0.4]))
    np.testing.assert_array_equal(d.Lambda(theta).toarray(), expected)
    numeric = numdiff.partials(lambda t: d.Lambda(t).toarray(), theta)
    np.testing.assert_allclose([E.toarray() for E in d.dLambda(theta)], numeric, atol=1e-8)


def test_diag_fit_is_the_unstructured_fit_with_zero_correlation():
    """The Laplace log-likelihood of a diag term at SDs (a, b) equals the unstructured one at T = diag(a, b)."""
    data = gt.datasets.load("crowder_seeds").assign(x=lambda d: np.arange(len(d)) / 10)
    family = gt.families.get("binomial")
    diag = build("cbind(germ, n - germ) ~ gen + (1 + x || plate)", data, family)
    us = build("cbind(germ, n - germ) ~ gen + (1 + x | plate)", data, family)
    beta = np.array([-0.4, 0.1])
    a = laplace.laplace_loglik(diag, beta, np.array([0.3, 0.2]), 1.0, reml=False).loglik
    b = laplace.laplace_loglik(us, beta, np.array([0.3, 0.0, 0.2]), 1.0, reml=False).loglik
    assert a == pytest.approx(b, abs=1e-10)
