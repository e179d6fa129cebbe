"""The fast paths give the same numbers as the slow ones.

* One random-effect term: the block path equals the general path (below).
* The analytic gradient of the Laplace ML and REML log-likelihoods (in beta, theta and log(phi)), which
  spares the optimiser two inner solves per parameter, equals finite differences (last test).

The fast path for one random-effect term gives the same numbers as the general path.

With one term ``(x_1 + ... + x_k | g)``, A = M'DM + I is block diagonal (k x k per group), and
glmmteach.laplace works with the blocks (BlockM, BlockA: bincounts and batched k x k Cholesky).
Here the same Laplace log-likelihood, log-determinant, conditional modes, leverages and score are
computed a second time through the general path (M = Z Lambda as a sparse matrix, A factorised as a
dense matrix, or as a sparse one), and the two must agree to rounding.
"""
import numpy as np
import pandas as pd
import pytest

import glmmteach as gt
from glmmteach import laplace
from glmmteach.design import build
from glmmteach.laplace import BlockA, BlockM, DenseA, SparseA, SparseM, laplace_loglik, score, score_log_phi


def grouped_data(seed=7, groups=12):
    """Unbalanced groups g (2 to 13 rows each), covariates x and z, and responses for three families
    drawn with a random intercept and slope in x per group."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 14, groups)
    g = np.repeat([f"g{j:02d}" for j in range(groups)], sizes)
    n = len(g)
    x, z = rng.uniform(0, 3, n), rng.normal(size=n)
    codes = np.repeat(np.arange(groups), sizes)
    u0, u1 = rng.normal(0, 0.6, groups), rng.normal(0, 0.3, groups)
    eta = 0.2 + 0.3 * x - 0.2 * z + u0[codes] + u1[codes] * x
    trials = rng.integers(1, 9, n)
    return pd.DataFrame({"g": g, "x": x, "z": z, "y": eta + rng.normal(0, 0.5, n),
                         "count": rng.poisson(np.exp(eta)), "trials": trials,
                         "success": rng.binomial(trials, 1 / (1 + np.exp(-eta))),
                         "positive": np.exp(eta / 2 + rng.normal(0, 0.4, n)),
                         "proportion": np.clip(1 / (1 + np.exp(-eta / 2 - rng.normal(0, 0.5, n))), 0.01, 0.99)})


# (formula, family, beta, theta, phi): theta has a negative off-diagonal so that T is not diagonal.
MODELS = {
    "gaussian_slope": ("y ~ x + z + (1 + x | g)", "gaussian", [0.2, 0.3, -0.2], [0.9, -0.4, 0.5], 0.6),
    "poisson_slope": ("count ~ x + z + (1 + x | g)", "poisson", [0.1, 0.35, -0.1], [0.7, -0.2, 0.35], 1.0),
    "binomial_slope": ("cbind(success, trials - success) ~ x + z + (1 + x | g)", "binomial",
                       [0.3, 0.2, -0.25], [0.8, 0.3, 0.4], 1.0),
    "binomial_intercept": ("cbind(success, trials - success) ~ x + z + (1 | g)", "binomial",
                           [0.3, 0.2, -0.25], [0.9], 1.0),
    "poisson_three_columns": ("count ~ x + z + (1 + x + z | g)", "poisson", [0.1, 0.35, -0.1],
                              [0.7, -0.2, 0.1, 0.35, 0.05, 0.2], 1.0),
}


def both_paths(monkeypatch, model, reml, general="dense"):
    """laplace_loglik through the block path, then through the general one (dense or sparse A)."""
    formula, family, beta, theta, phi = MODELS[model]
    design = build(formula, grouped_data(), gt.families.get(family))
    beta = None if reml else np.array(beta)
    block = laplace_loglik(design, beta, np.array(theta), phi, reml)
    with monkeypatch.context() as patch:
        patch.setattr(laplace, "re_matrix", laplace.sparse_re_matrix)
        if general == "sparse":
            patch.setattr(laplace, "DENSE_LIMIT", 0)
        other = laplace_loglik(design, beta, np.array(theta), phi, reml)
        other_score = None if reml else score(other)
    return block, other, other_score


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
def test_block_path_equals_dense_path(monkeypatch, model, reml):
    block, dense, dense_score = both_paths(monkeypatch, model, reml)
    assert isinstance(block.problem.M, BlockM) and isinstance(block.factor.A, BlockA)
    assert isinstance(dense.problem.M, SparseM) and isinstance(dense.factor.A, DenseA)
    assert block.loglik == pytest.approx(dense.loglik, rel=1e-12, abs=1e-10)
    assert block.factor.A.logdet == pytest.approx(dense.factor.A.logdet, rel=1e-12, abs=1e-10)
    assert block.factor.logdet == pytest.approx(dense.factor.logdet, rel=1e-12, abs=1e-10)
    np.testing.assert_allclose(block.v, dense.v, rtol=0, atol=1e-10)
    np.testing.assert_allclose(block.response.eta, dense.response.eta, rtol=0, atol=1e-10)
    M, D = block.problem.M, block.response.D
    np.testing.assert_allclose(block.factor.A.leverage(M), dense.factor.A.leverage(dense.problem.M),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(M.weighted_cross(D, block.problem.design.X),
                               dense.problem.M.weighted_cross(D, block.problem.design.X), rtol=0, atol=1e-10)
    if not reml:
        for ours, theirs in zip(score(block), dense_score):
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


@pytest.mark.parametrize("model", ["poisson_slope", "binomial_intercept"])
def test_block_path_equals_sparse_path(monkeypatch, model):
    block, sparse, sparse_score = both_paths(monkeypatch, model, reml=False, general="sparse")
    assert isinstance(sparse.factor.A, SparseA)
    assert block.loglik == pytest.approx(sparse.loglik, rel=1e-12, abs=1e-10)
    np.testing.assert_allclose(block.v, sparse.v, rtol=0, atol=1e-10)
    for ours, theirs in zip(score(block), sparse_score):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


def test_block_products_equal_the_sparse_matrix():
    """M b, M'r, the blocks of M'DM, M'DX and A^{-1} r against M = Z Lambda built as a sparse matrix."""
    formula, family, beta, theta, phi = MODELS["poisson_three_columns"]
    design = build(formula, grouped_data(), gt.families.get(family))
    theta = np.array(theta)
    block, general = laplace.block_re_matrix(design, theta), laplace.sparse_re_matrix(design, theta).M.toarray()
    rng = np.random.default_rng(1)
    b, r, D = rng.normal(size=design.q), rng.normal(size=design.nobs), rng.uniform(0.1, 2, design.nobs)
    np.testing.assert_allclose(block @ b, general @ b, atol=1e-13)
    np.testing.assert_allclose(block.t_dot(r), general.T @ r, atol=1e-13)
    A = general.T @ (D[:, None] * general) + np.eye(design.q)
    k = block.k
    dense_blocks = np.array([A[g * k:(g + 1) * k, g * k:(g + 1) * k] for g in range(block.n_groups)])
    np.testing.assert_allclose(block.weighted_crossprod(D) + np.eye(k), dense_blocks, atol=1e-12)
    off_block = A.copy()
    for g in range(block.n_groups):
        off_block[g * k:(g + 1) * k, g * k:(g + 1) * k] = 0
    assert not off_block.any()     # A is block diagonal
    np.testing.assert_allclose(block.weighted_cross(D, design.X), general.T @ (D[:, None] * design.X), atol=1e-12)
    factor = BlockA(block.weighted_crossprod(D) + np.eye(k))
    np.testing.assert_allclose(factor.solve(b), np.linalg.solve(A, b), atol=1e-12)
    rhs = rng.normal(size=(design.q, 4))
    np.testing.assert_allclose(factor.solve(rhs), np.linalg.solve(A, rhs), atol=1e-12)
    assert factor.logdet == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-13)
    np.testing.assert_allclose(factor.diagonal, np.diag(A), atol=1e-13)


# (formula, family, theta, phi), with and without a dispersion parameter, one term (block path) and two
# (general path); beta is the GLM's start, away from the optimum.
SCORE_MODELS = {
    "gaussian_slope": ("y ~ x + z + (1 + x | g)", "gaussian", [0.5, 0.1, 0.3], 0.6),
    "gamma_slope": ("positive ~ x + z + (1 + x | g)", gt.families.Gamma(link="log"), [0.5, 0.1, 0.3], 0.5),
    "nbinom2_intercept": ("count ~ x + z + (1 | g)", "nbinom2", [0.5], 3.0),
    "beta_intercept": ("proportion ~ x + (1 | g)", "beta", [0.5], 5.0),
    "gamma_crossed": ("positive ~ x + (1 | g) + (1 | z_sign)", gt.families.Gamma(link="log"), [0.5, 0.3], 0.5),
    "binomial_slope": ("cbind(success, trials - success) ~ x + z + (1 + x | g)", "binomial", [0.8, 0.3, 0.4], 1.0),
    "poisson_three_columns": ("count ~ x + z + (1 + x + z | g)", "poisson", [0.7, -0.2, 0.1, 0.35, 0.05, 0.2], 1.0),
    "gaussian_no_random_effects": ("y ~ x + z", "gaussian", [], 0.6),
    "gamma_diag": ("positive ~ x + z + (1 + x || g)", gt.families.Gamma(link="log"), [0.5, 0.3], 0.5),
    "poisson_diag_and_crossed": ("count ~ x + diag(1 + x | g) + (1 | z_sign)", "poisson", [0.5, 0.2, 0.3], 1.0),
}


def richardson_derivative(f, x, h=1e-3):
    """Central differences at steps h and 2h combined so that the error is O(h^4)."""
    central = [(f(x + step) - f(x - step)) / (2 * step) for step in (h, 2 * h)]
    return (4 * central[0] - central[1]) / 3


@pytest.mark.parametrize("model", list(SCORE_MODELS))
@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
@pytest.mark.parametrize("path", ["default", "sparse"])
def test_score_equals_numerical_derivatives(monkeypatch, model, reml, path):
    """The analytic gradient in beta (ML), theta and log(phi) of the Laplace ML and REML log-likelihoods
    (the optimiser's gradient) against central differences with Richardson extrapolation, on the path
    the model takes by default (block or dense) and on the sparse one."""
    if path == "sparse":
        monkeypatch.setattr(laplace, "re_matrix", laplace.sparse_re_matrix)
        monkeypatch.setattr(laplace, "DENSE_LIMIT", 0)
    formula, family, theta, phi = SCORE_MODELS[model]
    data = grouped_data().assign(z_sign=lambda d: np.sign(d.z).astype(int).astype(str))
    design = build(formula, data, gt.families.get(family))
    beta = np.linalg.lstsq(design.X, design.family.link.link(design.family.start_mu(design.y, design.n)),
                           rcond=None)[0]
    theta = np.array(theta, float)
    outer_beta = None if reml else beta

    def loglik(beta=outer_beta, theta=theta, phi=phi):
        return laplace_loglik(design, beta, theta, phi, reml).loglik

    result = laplace_loglik(design, outer_beta, theta, phi, reml)
    d_beta, d_theta = score(result)
    if not reml:
        numeric = [richardson_derivative(lambda t: loglik(beta=beta + t * e), 0.0) for e in np.eye(len(beta))]
        np.testing.assert_allclose(d_beta, numeric, rtol=1e-7, atol=1e-7)
    numeric = [richardson_derivative(lambda t: loglik(theta=theta + t * e), 0.0) for e in np.eye(len(theta))]
    np.testing.assert_allclose(d_theta, numeric, rtol=1e-7, atol=1e-7)
    if design.family.has_phi:
        numeric = richardson_derivative(lambda s: loglik(phi=np.exp(s)), np.log(phi))
        assert score_log_phi(result) == pytest.approx(numeric, rel=1e-8, abs=1e-7)


# Several terms: M by term (TermsM) and A by its blocks (SchurA). The term with the most columns comes
# first whatever its place in the formula; vector terms may sit in either block.
SEVERAL_TERMS = {
    "crossed_gamma": ("positive ~ x + (1 | g) + (1 | z_sign)", gt.families.Gamma(link="log"), [0.5, 0.3], 0.5),
    "nested_poisson": ("count ~ x + (1 | g/h)", "poisson", [0.4, 0.6], 1.0),
    "slope_first_binomial": ("cbind(success, trials - success) ~ x + (1 + x | g) + (1 | h)", "binomial",
                             [0.5, 0.1, 0.2, 0.3], 1.0),
    "slope_second_gaussian": ("y ~ x + (1 | gh) + (1 + x | g) + (1 | z_sign)", "gaussian",
                              [0.4, 0.5, -0.1, 0.2, 0.3], 0.6),
}


def several_terms_data():
    data = grouped_data().assign(z_sign=lambda d: np.sign(d.z).astype(int).astype(str),
                                 h=lambda d: (np.arange(len(d)) % 5).astype(str))
    return data.assign(gh=data.g + ":" + data.h)


@pytest.mark.parametrize("model", list(SEVERAL_TERMS))
@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
def test_blocked_path_equals_dense_path(monkeypatch, model, reml):
    """Log-likelihood, log|H|, modes, leverages and the whole score (traces included) of the blocked path
    against M = Z Lambda as a sparse matrix and A factorised densely."""
    formula, family, theta, phi = SEVERAL_TERMS[model]
    design = build(formula, several_terms_data(), gt.families.get(family))
    beta = None if reml else np.array([0.1, 0.2])
    blocked = laplace_loglik(design, beta, np.array(theta), phi, reml)
    assert isinstance(blocked.problem.M, laplace.TermsM) and isinstance(blocked.factor.A, laplace.SchurA)
    with monkeypatch.context() as patch:
        patch.setattr(laplace, "re_matrix", laplace.sparse_re_matrix)
        dense = laplace_loglik(design, beta, np.array(theta), phi, reml)
        dense_score = score(dense)
    assert isinstance(dense.factor.A, DenseA)
    assert blocked.loglik == pytest.approx(dense.loglik, rel=1e-12, abs=1e-10)
    assert blocked.factor.logdet == pytest.approx(dense.factor.logdet, rel=1e-12, abs=1e-10)
    np.testing.assert_allclose(blocked.v, dense.v, rtol=0, atol=1e-10)
    np.testing.assert_allclose(blocked.leverage, dense.leverage, rtol=0, atol=1e-12)
    for ours, theirs in zip(score(blocked), dense_score):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def test_blocked_factor_solves_and_inverts_like_the_dense_matrix():
    """A^{-1} r for a vector and a matrix, log|A|, and the selected entries of A^{-1} against numpy."""
    formula, family, theta, _ = SEVERAL_TERMS["slope_second_gaussian"]
    design = build(formula, several_terms_data(), gt.families.get(family))
    M = laplace.re_matrix(design, np.array(theta))
    rng = np.random.default_rng(3)
    D = rng.uniform(0.2, 3, design.nobs)
    general = laplace.sparse_re_matrix(design, np.array(theta)).M.toarray()
    A = general.T @ (D[:, None] * general) + np.eye(design.q)
    factor = laplace.factor_A(M, D)
    assert factor.logdet == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-13)
    for rhs in (rng.normal(size=design.q), rng.normal(size=(design.q, 3))):
        np.testing.assert_allclose(factor.solve(rhs), np.linalg.solve(A, rhs), atol=1e-12)
    A_inv = np.linalg.inv(A)
    columns = M.columns
    E = factor._pairs()
    for p in range(columns.shape[1]):
        for r in range(columns.shape[1]):
            np.testing.assert_allclose(E[p, r], A_inv[columns[:, p], columns[:, r]], atol=1e-12)
    b, r = rng.normal(size=design.q), rng.normal(size=design.nobs)
    np.testing.assert_allclose(M @ b, general @ b, atol=1e-12)
    np.testing.assert_allclose(M.t_dot(r), general.T @ r, atol=1e-12)
    np.testing.assert_allclose(M.weighted_cross(D, design.X), general.T @ (D[:, None] * design.X), atol=1e-12)
