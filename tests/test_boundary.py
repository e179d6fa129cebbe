"""Optima next to a boundary, and honest convergence (the glmmTMB references are in tests/reference:
poisson_freq_weights, poisson_freq_expanded, binomial_cloglog_dose_slopes_b)."""
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmmteach as gt
from glmmteach.fit import Objective, _glm_start, _start

REFERENCE = Path(__file__).parent / "reference"


def reference(case):
    ref = json.loads((REFERENCE / f"{case}.json").read_text())
    return ref, pd.read_csv(REFERENCE.parent.parent / ref["data_file"])


def quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", gt.fit.ConvergenceWarning)
        return gt.glmm(*args, **kwargs)


def start_of(formula, data, family, weights=None):
    design = gt.design.build(formula, data, gt.families.get(family), weights)
    beta, phi = _glm_start(design)
    return _start(Objective(design, False), {}, beta, phi)


@pytest.mark.parametrize("family", ["poisson", "gaussian"])
def test_frequency_weights_start_where_the_expanded_data_start(family):
    _, freq = reference("poisson_freq_weights")
    _, expanded = reference("poisson_freq_expanded")
    np.testing.assert_allclose(start_of("y ~ x + (x | i)", freq, family, "Freq"),
                               start_of("y ~ x + (x | i)", expanded, family), rtol=1e-6, atol=1e-8)


def test_frequency_weights_give_the_fit_of_the_expanded_data():
    _, freq = reference("poisson_freq_weights")
    _, expanded = reference("poisson_freq_expanded")
    weighted = quiet_fit("y ~ x + (x | i)", freq, family="poisson", weights="Freq")
    one_row_each = quiet_fit("y ~ x + (x | i)", expanded, family="poisson")
    assert weighted.loglik == pytest.approx(one_row_each.loglik, abs=1e-6)
    np.testing.assert_allclose(weighted.fixef, one_row_each.fixef, rtol=1e-5)
    np.testing.assert_allclose(weighted.se, one_row_each.se, rtol=1e-4)
    np.testing.assert_allclose(weighted.varcorr.sd, one_row_each.varcorr.sd, rtol=1e-4)
    assert weighted.converged and one_row_each.converged


@pytest.mark.parametrize("case, formula, family, weights", [
    ("poisson_freq_weights", "y ~ x + (x | i)", "poisson", "Freq"),
    ("binomial_cloglog_dose_slopes_b", "cbind(alive, n - alive) ~ Dose + (Dose | Rep)",
     gt.families.Binomial(link="cloglog"), None),
])
def test_a_start_on_the_wrong_side_of_the_boundary_reaches_the_optimum(case, formula, family, weights):
    """Started at an intercept SD of 0 with the Cholesky entry below it of the wrong sign (the correlation
    of the optimum reversed), where the bound lets the optimiser leave only to the wrong side."""
    ref, data = reference(case)
    sd, corr = ref["random"][0]["sd"], ref["random"][0]["corr"][0]
    theta = [0.0, -corr * sd[1], np.sqrt(1 - corr ** 2) * sd[1]]
    fit = quiet_fit(formula, data, family=family, weights=weights, start={"theta": theta})
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    np.testing.assert_allclose(fit.varcorr.sd, sd, rtol=1e-3)
    assert fit.converged


def test_nan_standard_errors_are_never_reported_as_converged():
    """Finishing at a point where -log L is not convex (an SD 30 times its estimate), even with the
    optimiser's converged=True, gives converged=False and a warning that says why."""
    from glmmteach import numdiff
    from glmmteach.fit import Optimum, _free, finish

    ref, data = reference("column_I")
    fit = quiet_fit("y ~ I + I(x^2) + (1 | g)", data, family="poisson")
    psi = fit.psi.copy()
    psi[3] *= 30
    H = numdiff.hessian(fit.objective.gradient, psi, np.flatnonzero(_free(psi, fit.objective.bounds())))
    assert np.min(np.linalg.eigvalsh(H)) < 0
    with pytest.warns(gt.fit.ConvergenceWarning, match="not positive definite.*NaN"):
        there = finish(fit.objective, Optimum(psi, True, "stopped"))
    assert not there.converged
    assert "did not converge" in str(there.summary())


@pytest.mark.parametrize("factor", [1e-4, 1e-2, 1.0, 1e2])
def test_convergence_does_not_depend_on_the_scale_of_a_covariate(factor):
    """The Newton decrement is scale-free: x in other units (its coefficient 1e4 times smaller or larger,
    the gradient in it as much larger or smaller) gives the same fit, converged, without a warning."""
    ref, data = reference("poisson_freq_weights")
    scaled = data.assign(x=data.x * factor)
    fit = quiet_fit("y ~ x + (x | i)", scaled, family="poisson", weights="Freq")
    assert fit.converged
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    assert fit.fixef["x"] * factor == pytest.approx(ref["fixef"]["x"], rel=1e-3)
