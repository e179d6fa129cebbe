"""A Gaussian model on its cells' pseudo-rows (glmmteach.cells) has the same likelihood as on its rows.

The optimiser of a Gaussian model with the identity link runs on pseudo-rows with the cross-products of
each cell (rows with the same levels of every grouping factor). The (REML) log-likelihood, its gradient
and the conditional modes must be those of the data's rows to rounding, at any parameters; the fitted
model must be the one fitted on the rows; and models whose likelihood is not a function of
cross-products keep their rows.
"""
import warnings

import numpy as np
import pandas as pd
import pytest

import glmmteach as gt
from glmmteach import cells
from glmmteach.design import build
from glmmteach.fit import Objective


def nested_data(seed=11, outer=6, inner=5):
    """Schools (2 to 30 pupils) nested in areas, a covariate x with a random slope per school, prior
    weights and an offset; y drawn from that model."""
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(outer):
        for s in range(inner):
            size = int(rng.integers(2, 31))
            rows.append(pd.DataFrame({"area": f"a{a}", "school": f"s{s}", "x": rng.uniform(0, 2, size),
                                      "z": rng.normal(size=size)}))
    d = pd.concat(rows, ignore_index=True)
    area, school = pd.factorize(d.area)[0], pd.factorize(d.area + d.school)[0]
    u_area, u0, u1 = rng.normal(0, 0.5, area.max() + 1), rng.normal(0, 0.8, school.max() + 1), rng.normal(
        0, 0.3, school.max() + 1)
    d["o"] = rng.uniform(-0.2, 0.2, len(d))
    d["w"] = rng.integers(1, 4, len(d)).astype(float)
    eta = 50 + 0.4 * d.x - 0.3 * d.z + u_area[area] + u0[school] + u1[school] * d.x + d.o
    d["y"] = eta + rng.normal(0, 0.7, len(d)) / np.sqrt(d.w)
    return d


FORMULAS = ["y ~ x + z + (1 | area/school)", "y ~ x + z + (1 + x | area:school) + (1 | area)",
            "y ~ x + offset(o) + (1 + x | area:school)"]


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("reml", [True, False])
def test_pseudo_rows_give_the_likelihood_gradient_and_modes_of_the_rows(formula, reml):
    design = build(formula, nested_data(), gt.families.get("gaussian"), weights=nested_data().w.to_numpy())
    small = cells.compressed(design)
    assert small is not None and small.nobs <= cells.WORTHWHILE * design.nobs
    assert (small.terms_layout is None) == (design.terms_layout is None)       # the same factorisation
    full, fewer = Objective(design, reml), Objective(small, reml)
    psi0 = np.concatenate([[] if reml else [50, 0.4, -0.3][:design.X.shape[1]],
                           0.6 * np.ones(design.n_theta), [np.log(0.7)]])
    rng = np.random.default_rng(1)
    for psi in [psi0, psi0 + rng.normal(0, 0.3, len(psi0)), psi0 + rng.normal(0, 0.3, len(psi0))]:
        psi[len(psi) - 1 - design.n_theta:len(psi) - 1] = np.abs(psi[len(psi) - 1 - design.n_theta:len(psi) - 1])
        value = full(psi)
        assert fewer(psi) == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(fewer.gradient(psi), full.gradient(psi), rtol=1e-7,
                                   atol=1e-8 * np.max(np.abs(full.gradient(psi))))
        np.testing.assert_allclose(fewer.laplace(psi).v, full.laplace(psi).v, rtol=1e-8, atol=1e-10)


def test_the_fit_on_pseudo_rows_is_the_fit_on_the_rows(monkeypatch):
    data = nested_data()
    fits = []
    for share in (cells.WORTHWHILE, 0.0):                 # 0: the pseudo-rows are never worthwhile
        monkeypatch.setattr(cells, "WORTHWHILE", share)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fits.append(gt.glmm("y ~ x + z + (1 | area/school)", data, reml=True, weights="w"))
    compressed, rows = fits
    assert compressed.loglik == pytest.approx(rows.loglik, abs=1e-7)
    np.testing.assert_allclose(compressed.fixef, rows.fixef, rtol=1e-6)
    np.testing.assert_allclose(compressed.se, rows.se, rtol=1e-5)
    np.testing.assert_allclose(compressed.varcorr.sd, rows.varcorr.sd, rtol=1e-5)
    assert compressed.sigma == pytest.approx(rows.sigma, rel=1e-6)
    assert compressed.design.nobs == rows.design.nobs == len(data)          # the fit keeps the data's rows
    np.testing.assert_allclose(compressed.fitted(), rows.fitted(), rtol=1e-6)


def test_a_refit_runs_on_pseudo_rows_and_matches_the_fit_on_the_rows(monkeypatch):
    fit = gt.glmm("y ~ x + z + (1 | area/school)", nested_data(), reml=True)
    y = fit.simulate(nsim=1, seed=3).iloc[:, 0].to_numpy()
    refits = []
    for share in (cells.WORTHWHILE, 0.0):
        monkeypatch.setattr(cells, "WORTHWHILE", share)
        refits.append(fit.refit(y))
    assert refits[0].loglik == pytest.approx(refits[1].loglik, abs=1e-7)
    np.testing.assert_allclose(refits[0].fixef, refits[1].fixef, rtol=1e-6)


@pytest.mark.parametrize("family, options", [("gaussian", {"dispformula": "~ x"}), ("Gamma", {})])
def test_models_whose_likelihood_is_not_a_sum_of_squares_keep_their_rows(family, options):
    data = nested_data().assign(y=lambda d: d.y - 40)
    design = build("y ~ x + (1 | area/school)", data, gt.families.get(family), **options)
    assert not cells.applies(design) and cells.compressed(design) is None


def test_quadrature_and_glms_keep_their_rows():
    design = build("y ~ x + (1 | area:school)", nested_data(), gt.families.get("gaussian"))
    assert cells.applies(design) and not cells.applies(design, nagq=5)
    assert not cells.applies(build("y ~ x", nested_data(), gt.families.get("gaussian")))


def test_the_log_link_keeps_its_rows():
    design = build("y ~ x + (1 | area/school)", nested_data(), gt.families.Gaussian(link="log"))
    assert cells.compressed(design) is None


def test_rows_in_cells_of_their_own_are_kept():
    data = nested_data()
    data["school"] = [f"p{i}" for i in range(len(data))]                     # one row per cell
    design = build("y ~ x + (1 | area/school)", data, gt.families.get("gaussian"))
    assert cells.compressed(design) is None
