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


@pytest.mark.parametrize("factor", [10.0, 0.1])
@pytest.mark.parametrize("case", WITH_RANDOM_EFFECTS)
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
