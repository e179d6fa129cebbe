"""From random-effect SDs ten times too large and ten times too small, every reference model (the lesson models
among them: crowder, fish) reaches the optimum of the default start: the same log-likelihood within 1e-3 and the
same fixed effects within 1e-3 relative (or 1e-3 of the SE). The generated models are checked the same way in
test_generated.py."""
import warnings

import numpy as np
import pytest

import glmmteach as gt
from test_generated import start_theta
from test_reference import CASES, load_case

WITH_RANDOM_EFFECTS = [c for c in CASES if "|" in load_case(c)[1]["formula"]]


@pytest.fixture(scope="module")
def default_fits():
    return {}


def fit(args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gt.fit.ConvergenceWarning)
        return gt.glmm(**args, **kwargs)


# A known failure, kept visible: ar1(day_f + 0 | animal) has one random effect per weighing, so the random effects
# can take all the variation as phi -> 0. From SDs ten times too large the optimiser runs to that ridge, where the
# dispersion floor holds it (logLik -1112.006, not converged, with a warning), and misses the interior optimum
# (-1111.988, phi = 0.0039) that the default start and glmmTMB reach. strict: the test fails once this is fixed.
KNOWN_FAILURES = {("cow_gamma_ar1_ml", 10.0): "from 10x the SDs the fit stops on the phi -> 0 ridge"}
STARTS = [pytest.param(case, factor, marks=pytest.mark.xfail(reason=KNOWN_FAILURES[case, factor], strict=True))
          if (case, factor) in KNOWN_FAILURES else (case, factor)
          for case in WITH_RANDOM_EFFECTS for factor in (10.0, 0.1)]


@pytest.mark.parametrize(("case", "factor"), STARTS)
def test_starts_ten_times_off_reach_the_same_optimum(case, factor, default_fits):
    ref, args = load_case(case)
    if case not in default_fits:
        default_fits[case] = fit(args)
    ours = default_fits[case]
    other = fit(args, start={"theta": start_theta(ours, factor)})
    assert other.loglik == pytest.approx(ours.loglik, abs=1e-3)
    assert other.loglik == pytest.approx(ref["logLik"], abs=1e-3) or "nAGQ" in ref
    for name in ours.fixef.index:
        se = ours.se[name]
        assert abs(other.fixef[name] - ours.fixef[name]) <= 1e-3 * max(abs(ours.fixef[name]), se), name
    assert other.converged


def test_a_fit_held_at_the_dispersion_floor_reports_no_point_from_below_it(default_fits):
    """From 10x the SDs the cattle ar1 fit runs towards phi -> 0, where the Gamma log-likelihood is rounding
    error (it once reported +7e154 from phi = 7.6e-84, the best point seen before the floor was set). Held at
    the floor, the fit must end near it, below the default fit's log-likelihood, and say that it did not
    converge."""
    ref, args = load_case("cow_gamma_ar1_ml")
    ours = default_fits.setdefault("cow_gamma_ar1_ml", fit(args))
    with pytest.warns(gt.fit.ConvergenceWarning):
        other = gt.glmm(**args, start={"theta": start_theta(ours, 10.0)})
    assert other.sigma > 1e-6 * ours.sigma
    assert other.loglik <= ours.loglik + 1e-3 and not other.converged
