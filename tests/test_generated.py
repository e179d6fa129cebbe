"""The differential test: random but well-posed GLMMs, simulated and fitted by glmmTMB in
tests/reference/make_generated_reference.R (every family and link, canonical or not, with (1 | g), (1 + x | g),
crossed and nested terms, offsets, 0/1 and y-out-of-n binomials, true SDs of 0, ML and REML), fitted here by
glmmteach.

* glmmTMB's clean fits (converged, positive-definite Hessian, no warning, nothing at a boundary) are matched within
  the project's tolerances: log-likelihood 1e-3; fixed effects, SDs and sigma 1e-3 relative (a fixed effect near 0:
  1e-3 of its SE); SEs 1%.
* Where glmmTMB reported a problem, glmmteach's log-likelihood is at least glmmTMB's - 1e-3, and glmmteach never says
  converged=True at a worse point; where glmmTMB failed, glmmteach gives a finite log-likelihood.
* Started with SDs ten times too large and ten times too small, a third of the models (and the large ones) reach
  the same optimum.
"""
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmmteach as gt

REFERENCE = Path(__file__).parent / "reference"
MODELS = {m["id"]: m for m in json.loads((REFERENCE / "generated_models.json").read_text())}
DATA = pd.read_csv(REFERENCE / "data" / "generated.csv", dtype={"g": str, "h": str})

CLEAN = [i for i, m in MODELS.items() if m.get("clean")]
UNCLEAN = [i for i, m in MODELS.items() if not m.get("clean") and "failed" not in m]
FAILED = [i for i, m in MODELS.items() if "failed" in m]
STARTS = [i for i in MODELS if int(i[1:]) % 3 == 0 or MODELS[i]["nobs"] >= 1500]


def data_of(model):
    d = DATA[DATA.model == model["id"]]
    return d.loc[:, d.notna().any()].drop(columns="model")


def family_of(model):
    return gt.families.get(model["family"]).__class__(link=model["link"])


def fit(model, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gt.fit.ConvergenceWarning)
        return gt.glmm(model["formula"], data_of(model), family=family_of(model), reml=bool(model["REML"]), **kwargs)


@pytest.fixture(scope="module")
def fits():
    return {}


def fitted(i, fits):
    if i not in fits:
        fits[i] = fit(MODELS[i])
    return fits[i]


def test_the_generator_covers_what_it_should():
    models = list(MODELS.values())
    assert len(models) >= 60
    pairs = {(m["family"], m["link"]) for m in models}
    assert {("gaussian", "inverse"), ("binomial", "cloglog"), ("poisson", "sqrt"), ("Gamma", "identity"),
            ("beta", "probit"), ("nbinom2", "log")} <= pairs
    non_canonical = [m for m in models if (m["family"], m["link"]) not in
                     {("gaussian", "identity"), ("binomial", "logit"), ("poisson", "log"), ("Gamma", "inverse")}]
    assert {m["structure"] for m in non_canonical} >= {"(1 | g) + (1 | h)", "(1 | g/h)"}
    assert any(m["REML"] for m in models) and not all(m["REML"] for m in models)
    assert any(0 in m["truth"].values() for m in models)
    assert min(m["nobs"] for m in models) <= 100 and max(m["nobs"] for m in models) >= 2000
    assert len(CLEAN) >= 30


def random_sds(model):
    """glmmTMB's SDs in glmmteach's order of terms (glmmTMB names the nested term h:g, as glmmteach)."""
    return {(r["group"], term): sd for r in model["random"] for term, sd in zip(r["terms"], r["sd"])}


@pytest.mark.parametrize("i", CLEAN)
def test_clean_fits_match_glmmtmb(i, fits):
    model, ours = MODELS[i], fitted(i, fits)
    assert ours.loglik == pytest.approx(model["logLik"], abs=1e-3)
    assert ours.converged
    for name, value in model["fixef"].items():
        se = model["se"][name]
        assert abs(ours.fixef[name] - value) <= 1e-3 * max(abs(value), se), (name, ours.fixef[name], value)
        assert ours.se[name] == pytest.approx(se, rel=0.01), (name, ours.se[name], se)
    theirs = random_sds(model)
    for row in ours.varcorr.itertuples():
        term = "(Intercept)" if row.term == "(Intercept)" else row.term
        assert row.sd == pytest.approx(theirs[(row.group, term)], rel=1e-3), (row.group, row.term)
    if model["family"] in ("gaussian", "Gamma", "nbinom2", "beta"):
        assert ours.sigma == pytest.approx(model["sigma"], rel=1e-3)


@pytest.mark.parametrize("i", UNCLEAN)
def test_where_glmmtmb_had_a_problem_glmmteach_is_at_least_as_good(i, fits):
    model, ours = MODELS[i], fitted(i, fits)
    if not isinstance(model["logLik"], (int, float)):          # glmmTMB gave no log-likelihood (NA)
        assert np.isfinite(ours.loglik)
        return
    assert ours.loglik >= model["logLik"] - 1e-3
    assert not (ours.converged and ours.loglik < model["logLik"] - 1e-3)


@pytest.mark.parametrize("i", FAILED)
def test_where_glmmtmb_failed_glmmteach_fits(i, fits):
    ours = fitted(i, fits)
    assert np.isfinite(ours.loglik)


def start_theta(ours, factor):
    """theta with each SD multiplied by ``factor`` and the correlations set to 0; an SD estimated at (nearly) 0
    starts at ``factor`` times 0.1 on the scale of the linear predictor (or of sigma, gaussian identity)."""
    from glmmteach.fit import _sd_scale, _theta_start
    design = ours.design
    unit = _theta_start(design, _sd_scale(ours.objective, ours.psi))
    theta, k = [], 0
    for term, Sigma in zip(design.terms, design.covariances(ours.theta)):
        sd = np.sqrt(np.diag(Sigma))
        unit_sd = np.diag(term.structure.template(unit[k:k + term.n_theta]))
        theta.append(term.structure.start(factor * np.where(sd > 1e-3 * unit_sd, sd, 0.1 * unit_sd)))
        k += term.n_theta
    return np.concatenate(theta)


@pytest.mark.parametrize("factor", [10.0, 0.1])
@pytest.mark.parametrize("i", STARTS)
def test_starts_ten_times_off_reach_the_same_optimum(i, factor, fits):
    model, ours = MODELS[i], fitted(i, fits)
    other = fit(model, start={"theta": start_theta(ours, factor)})
    assert other.loglik == pytest.approx(ours.loglik, abs=1e-3)
    for name in ours.fixef.index:
        se = ours.se[name] if np.isfinite(ours.se[name]) else abs(ours.fixef[name])
        assert abs(other.fixef[name] - ours.fixef[name]) <= 1e-3 * max(abs(ours.fixef[name]), se), name
