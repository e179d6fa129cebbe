"""The two examples of the book's page on extending the library (lessons/extending.md) run and give the right
answers: the toy exponential family is the Gamma with shape 1, and the toy structure hom() is diag() with its SDs
held equal."""
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmmteach as gt
from glmmteach import covstruct, laplace, numdiff
from glmmteach.design import build

EXAMPLES = Path(__file__).resolve().parent.parent / "lessons" / "extending"


def example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data():
    """30 groups of 10, exponential responses with a random intercept and slope in x (SDs 0.4)."""
    rng = np.random.default_rng(1)
    g, x = np.repeat(np.arange(30), 10), rng.uniform(0, 1, 300)
    u0, u1 = rng.normal(0, 0.4, 30), rng.normal(0, 0.4, 30)
    y = rng.exponential(np.exp(0.5 + 0.8 * x + u0[g] + u1[g] * x))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i:02d}" for i in g]})


def test_the_examples_fit_on_the_page():
    assert all(len((EXAMPLES / f"{name}.py").read_text().splitlines()) <= 40
               for name in ("toy_family", "toy_structure"))


def test_toy_family_is_the_gamma_with_shape_one(data):
    Exponential = example("toy_family").Exponential
    family = Exponential()
    y, mu = np.array([0.2, 1.0, 3.5]), np.array([0.5, 2.0, 1.5])
    np.testing.assert_allclose(family.loglik(y, mu), gt.families.Gamma().loglik(y, mu, 1.0), rtol=1e-13)
    np.testing.assert_allclose(family.dloglik_dmu(y, mu), numdiff.elementwise(lambda m: family.loglik(y, m), mu),
                               rtol=1e-7)
    fit = gt.glmm("y ~ x + (1 | g)", data, family=family)
    assert fit.converged and fit.sigma == 1.0 and "Dispersion" not in str(fit.summary())
    gamma = build("y ~ x + (1 | g)", data, gt.families.Gamma(link="log"))
    same = laplace.laplace_loglik(gamma, fit.beta, fit.theta, 1.0, reml=False).loglik
    assert fit.loglik == pytest.approx(same, abs=1e-9)
    np.testing.assert_allclose(fit.fixef, [0.5, 0.8], atol=2 * fit.se.max())    # recovers the simulation
    with pytest.raises(ValueError, match="must be > 0"):
        gt.glmm("y ~ x", data.assign(y=data.y - 1), family=family)


def test_toy_structure_is_diag_with_equal_sds(data):
    Homogeneous = example("toy_structure").Homogeneous
    s = Homogeneous(("(Intercept)", "x"))
    theta = np.array([np.log(0.3)])
    np.testing.assert_allclose(s.dtemplate(theta), numdiff.partials(s.template, theta), atol=1e-9)
    np.testing.assert_allclose(s.Sigma(theta), 0.09 * np.eye(2))
    fit = gt.glmm("y ~ x + hom(1 + x | g)", data, family=gt.families.Gamma(link="log"))
    assert fit.converged and fit.objective.names()[2] == "g: log sd"
    sd = fit.varcorr.sd.to_numpy()
    assert sd[0] == pytest.approx(sd[1])
    diag = build("y ~ x + diag(1 + x | g)", data, gt.families.Gamma(link="log"))
    same = laplace.laplace_loglik(diag, fit.beta, sd, fit.phi, reml=False).loglik
    assert fit.loglik == pytest.approx(same, abs=1e-9)
    best = gt.glmm("y ~ x + diag(1 + x | g)", data, family=gt.families.Gamma(link="log"))
    assert best.loglik >= fit.loglik - 1e-6                       # the larger model fits at least as well


def test_a_scalar_hom_term_is_the_random_intercept(data):
    example("toy_structure")
    hom = gt.glmm("y ~ x + hom(1 | g)", data, family="Gamma")
    us = gt.glmm("y ~ x + (1 | g)", data, family="Gamma")
    assert hom.loglik == pytest.approx(us.loglik, abs=1e-6)
    np.testing.assert_allclose(hom.varcorr.sd, us.varcorr.sd, rtol=1e-4)
    assert "hom" in covstruct.STRUCTURES
