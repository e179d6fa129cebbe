"""The outer parameter vector psi in blocks (params.py): one layout gives names, bounds, starts, unpacking and
the assembly of the gradient; phi is one value per observation."""
import numpy as np
import pandas as pd
import pytest

import glmmteach as gt
from glmmteach import params
from glmmteach.design import build


@pytest.fixture(scope="module")
def design():
    fish = gt.datasets.load("fish_vaccines")
    fish = fish.assign(fish=fish.fish.astype(str), t=fish.day / 901)
    return build("wt ~ t + (1 + t | fish) + diag(1 + t | vaccine)", fish, gt.families.Gamma(link="log"))


def test_ml_layout_is_beta_then_theta_by_term_then_dispersion(design):
    layout = params.layout(design, reml=False)
    assert [b.kind for b in layout.blocks] == ["beta", "theta", "theta", "disp"]
    assert layout.names() == ["(Intercept)", "t", "fish: sd (Intercept)", "fish: cholesky[t, (Intercept)]",
                              "fish: sd t", "vaccine: sd (Intercept)", "vaccine: sd t", "log(sigma)"]
    assert layout.bounds() == [(None, None)] * 2 + [(0.0, None), (None, None), (0.0, None), (0.0, None),
                                                    (0.0, None), (None, None)]
    assert layout.where("theta") == slice(2, 7) and layout.where("zi") == slice(8, 8)


def test_reml_layout_has_no_beta(design):
    layout = params.layout(design, reml=True)
    assert not layout.has("beta") and layout.names()[0] == "fish: sd (Intercept)"
    assert layout.unpack(np.arange(6.0)).beta is None


def test_unpack_and_pack_are_inverse(design):
    layout = params.layout(design, reml=False, beta=[1.0, 2.0], theta=np.arange(5.0), disp=[-1.0])
    psi = layout.start()
    np.testing.assert_array_equal(psi, [1, 2, 0, 1, 2, 3, 4, -1])
    parts = layout.unpack(psi)
    np.testing.assert_array_equal(layout.pack(beta=parts.beta, theta=parts.theta, disp=parts.disp), psi)
    np.testing.assert_array_equal(layout.pack(theta=parts.theta), [0, 0, 0, 1, 2, 3, 4, 0])


def test_blocks_out_of_order_are_refused():
    with pytest.raises(ValueError, match="order"):
        params.Layout([params.Block("theta", ("a",), np.zeros(1), np.ones(1)),
                       params.Block("beta", ("b",), np.full(1, -np.inf), np.zeros(1))])


def test_phi_is_one_value_per_observation(design):
    phi = design.phi(np.array([np.log(0.2)]))
    assert phi.shape == (design.nobs,) and np.allclose(phi, 0.2)
    poisson = build("germ ~ gen", gt.datasets.load("crowder_seeds"), gt.families.get("poisson"))
    assert poisson.X_disp.shape == (21, 0) and np.array_equal(poisson.phi(np.zeros(0)), np.ones(21))


def test_a_fit_keeps_phi_per_observation_and_sigma_as_glmmtmb():
    seeds = gt.datasets.load("crowder_seeds")
    fit = gt.glmm("germ ~ gen * extract", seeds, family="nbinom2")
    assert fit.phi.shape == (21,) and fit.sigma == pytest.approx(fit.phi[0])
    assert fit.objective.names()[-1] == "log(sigma)" and fit.n_parameters == 5
    assert fit.psi[-1] == pytest.approx(np.log(fit.sigma))
