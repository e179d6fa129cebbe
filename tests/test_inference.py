"""Marginal means, contrasts, p-value adjustments and joint tests against emmeans 1.8.4 on glmmTMB 1.1.5 fits.

References: tests/reference/inference_reference.json, made by tests/reference/make_inference_reference.R.
Tolerances (the project's standards): estimates and limits 1e-3 relative, SEs 1%, p-values 2e-3 absolute,
df equal; t ratios within 1e-3 absolute where they are near zero.
"""
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmmteach as gt

REFERENCE = json.loads((Path(__file__).parent / "reference" / "inference_reference.json").read_text())


@pytest.fixture(scope="module")
def salmon():
    fish = gt.datasets.load("fish_vaccines")
    fish = fish.assign(vaccine=pd.Categorical(fish.vaccine), day_f=pd.Categorical(fish.day), fish=fish.fish.astype(str))
    return gt.glmm("wt ~ vaccine * day_f + (1 | fish)", fish, family=gt.families.Gamma(link="log"), reml=True)


@pytest.fixture(scope="module")
def jaw():
    fish = gt.datasets.load("fish_vaccines")
    one_per_fish = fish[fish.day == 901].assign(vaccine=lambda d: pd.Categorical(d.vaccine))
    return gt.glmm("jaw ~ vaccine", one_per_fish, family="binomial")


@pytest.fixture(scope="module")
def crowder():
    seeds = gt.datasets.load("crowder_seeds")
    return gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", seeds, family="binomial", reml=True)


def harvest(salmon, type="response"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # emmeans' note on interactions
        return gt.emmeans(salmon, "vaccine", at={"day_f": "901"}, type=type)


def assert_matches(table, ref):
    """Every column of R's summary: labels equal, numbers within the tolerances."""
    assert list(table.columns) == ref["columns"]
    for column in ref["columns"]:
        expected, got = ref["values"][column], table[column]
        expected = expected if isinstance(expected, list) else [expected]     # R's one-row tables
        if isinstance(expected[0], str):
            assert [str(v) for v in got] == expected, column
            continue
        expected, got = np.asarray(expected, float), got.to_numpy(float)
        if column == "df":
            np.testing.assert_array_equal(got, expected)
        elif column == "p.value":
            np.testing.assert_allclose(got, expected, rtol=0, atol=2e-3, err_msg=column)
        elif column == "SE":
            np.testing.assert_allclose(got, expected, rtol=0.01, err_msg=column)
        elif column in ("t.ratio", "F.ratio"):
            np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3, err_msg=column)
        else:   # an estimate near zero: within 1e-3 of its SE
            scale = np.atleast_1d(np.asarray(ref["values"]["SE"], float)) if "SE" in ref["values"] else 0.0
            np.testing.assert_allclose(got, expected, rtol=1e-3, atol=0, err_msg=column) if np.isscalar(scale) \
                else assert_within(got, expected, 1e-3 * np.abs(expected) + 1e-3 * scale, column)


def assert_within(got, expected, tolerance, what):
    assert np.all(np.abs(got - expected) <= tolerance), (what, got, expected)


# ---- the salmon trial: Gamma(log), (1 | fish), REML ------------------------------------------------
def test_salmon_df_is_the_residual_df(salmon):
    assert salmon.df_resid == REFERENCE["salmon"]["df_resid"] == 1998


@pytest.mark.parametrize("key, type", [("emmeans_response", "response"), ("emmeans_link", "link")])
def test_salmon_means_by_day(salmon, key, type):
    emm = gt.emmeans(salmon, "vaccine", by="day_f", type=type)
    assert_matches(emm.table, REFERENCE["salmon"][key])


def test_salmon_means_averaged_over_days(salmon):
    with pytest.warns(UserWarning, match="involvement in interactions"):
        emm = gt.emmeans(salmon, "vaccine")
    assert_matches(emm.table, REFERENCE["salmon"]["emmeans_vaccine"])
    assert emm.averaged == ["day_f"]


def test_salmon_pairs_by_day(salmon):
    assert_matches(gt.emmeans(salmon, "~ vaccine | day_f", type="response").pairs().table,
                   REFERENCE["salmon"]["pairs_by_day"])


@pytest.mark.parametrize("key, method, kwargs", [
    ("harvest_pairs", "pairwise", {}),
    ("harvest_revpairwise", "revpairwise", {}),
    ("harvest_trt_vs_ctrl", "trt.vs.ctrl", {"ref": 0}),
    ("harvest_trt_vs_ctrl3", "trt.vs.ctrl", {"ref": "vaccine3"}),
    ("harvest_consec", "consec", {}),
    ("harvest_trt_vs_ctrl_mvt", "trt.vs.ctrl", {"adjust": "mvt"}),
    ("harvest_custom", {"1 vs 2": [1, -1, 0, 0], "1+2 vs 3+4": [0.5, 0.5, -0.5, -0.5]}, {}),
])
def test_salmon_contrasts_at_harvest(salmon, key, method, kwargs):
    result = gt.contrast(harvest(salmon), method, **kwargs)
    assert_matches(result.table, REFERENCE["salmon"][key])


@pytest.mark.parametrize("method", ["none", "bonferroni", "holm", "sidak", "tukey", "mvt"])
def test_salmon_pair_adjustments(salmon, method):
    assert_matches(harvest(salmon).pairs(adjust=method).table, REFERENCE["salmon"]["harvest_pairs_adjust"][method])


def test_salmon_pairs_on_the_link_scale(salmon):
    assert_matches(harvest(salmon, "link").pairs().table, REFERENCE["salmon"]["harvest_pairs_link"])


def test_salmon_joint_tests(salmon):
    assert_matches(gt.joint_tests(salmon).table, REFERENCE["salmon"]["joint_tests"])


# ---- jaw deformity: binomial, one row per fish ---------------------------------------------------
def test_jaw_probabilities_pairs_and_joint_test(jaw):
    ref = REFERENCE["jaw"]
    assert jaw.df_resid == ref["df_resid"]
    emm = gt.emmeans(jaw, "vaccine", type="response")
    assert emm.estimate_name == "prob"
    assert_matches(emm.table, ref["emmeans_response"])
    assert_matches(emm.pairs().table, ref["pairs"])
    assert_matches(gt.emmeans(jaw, "vaccine").pairs().table, ref["pairs_link"])
    assert_matches(gt.joint_tests(jaw).table, ref["joint_tests"])


# ---- crowder seeds: binomial, (1 | plate), REML -------------------------------------------------
def test_crowder_means_pairs_and_joint_tests(crowder):
    ref = REFERENCE["crowder"]
    emm = gt.emmeans(crowder, "extract", by="gen", type="response")
    assert_matches(emm.table, ref["emmeans_response"])
    assert_matches(emm.pairs().table, ref["pairs"])
    cells = gt.emmeans(crowder, ["gen", "extract"], type="response")
    assert_matches(cells.table, ref["emmeans_cells"])
    assert_matches(cells.pairs().table, ref["pairs_cells"])
    with pytest.warns(UserWarning, match="interactions"):
        assert_matches(gt.emmeans(crowder, "gen").table, ref["emmeans_gen_link"])
    assert_matches(gt.joint_tests(crowder).table, ref["joint_tests"])


# ---- printing, line by line against R's printout ------------------------------------------------
# Not printed-compared: the mvt tables (R's randomised integration moves the 4th decimal of a p-value) and
# the salmon joint test (an F of 63247.6 printed to 3 decimals, beyond the agreement of the two fits).
@pytest.mark.parametrize("case", ["salmon emmeans_response", "salmon emmeans_link", "salmon emmeans_vaccine",
                                  "salmon pairs_by_day", "salmon harvest_emmeans", "salmon harvest_pairs",
                                  "salmon harvest_pairs_link", "salmon harvest_trt_vs_ctrl",
                                  "salmon harvest_custom", "jaw emmeans_response", "jaw pairs", "jaw pairs_link",
                                  "jaw joint_tests", "crowder emmeans_response", "crowder pairs",
                                  "crowder emmeans_gen_link", "crowder emmeans_cells", "crowder pairs_cells",
                                  "crowder joint_tests"])
def test_printed_like_emmeans(case, salmon, jaw, crowder):
    model, key = case.split()
    fit = {"salmon": salmon, "jaw": jaw, "crowder": crowder}[model]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj = {
            "emmeans_response": lambda: gt.emmeans(fit, "vaccine" if model != "crowder" else "extract",
                                                   by={"salmon": "day_f", "jaw": None, "crowder": "gen"}[model],
                                                   type="response"),
            "emmeans_link": lambda: gt.emmeans(fit, "vaccine", by="day_f"),
            "emmeans_vaccine": lambda: gt.emmeans(fit, "vaccine"),
            "pairs_by_day": lambda: gt.emmeans(fit, "vaccine", by="day_f", type="response").pairs(),
            "harvest_emmeans": lambda: harvest(fit),
            "harvest_pairs": lambda: harvest(fit).pairs(),
            "harvest_pairs_link": lambda: harvest(fit, "link").pairs(),
            "harvest_trt_vs_ctrl": lambda: gt.contrast(harvest(fit), "trt.vs.ctrl", ref=0),
            "harvest_custom": lambda: gt.contrast(harvest(fit), {"1 vs 2": [1, -1, 0, 0],
                                                                 "1+2 vs 3+4": [0.5, 0.5, -0.5, -0.5]}),
            "pairs": lambda: (gt.emmeans(fit, "vaccine", type="response") if model == "jaw" else
                              gt.emmeans(fit, "extract", by="gen", type="response")).pairs(),
            "pairs_link": lambda: gt.emmeans(fit, "vaccine").pairs(),
            "joint_tests": lambda: gt.joint_tests(fit),
            "emmeans_gen_link": lambda: gt.emmeans(fit, "gen"),
            "emmeans_cells": lambda: gt.emmeans(fit, "gen * extract", type="response"),
            "pairs_cells": lambda: gt.emmeans(fit, "gen * extract", type="response").pairs(),
        }[key]()
    assert str(obj).split("\n") == REFERENCE[model][key]["lines"]


# ---- input checks and the plot ------------------------------------------------------------------
def test_clear_errors(crowder):
    with pytest.raises(ValueError, match="'genotype' is not a predictor.*gen, extract"):
        gt.emmeans(crowder, "genotype")
    with pytest.raises(ValueError, match="level 'O99'.*O73, O75"):
        gt.emmeans(crowder, "extract", at={"gen": "O99"})
    emm = gt.emmeans(crowder, "extract", by="gen")
    with pytest.raises(ValueError, match="method must be"):
        gt.contrast(emm, "all")
    with pytest.raises(ValueError, match="adjust must be one of"):
        emm.pairs(adjust="scheffe")
    with pytest.raises(ValueError, match="2 numbers, one per mean"):
        gt.contrast(emm, {"c": [1, -1, 0]})
    with pytest.raises(ValueError, match="ref=5 is out of range"):
        gt.contrast(emm, "trt.vs.ctrl", ref=5)
    with pytest.raises(ValueError, match="type must be"):
        gt.emmeans(crowder, "gen", type="prob")


def test_tukey_on_non_pairs_becomes_sidak_as_emmeans(salmon):
    with pytest.warns(UserWarning, match='changed to "sidak"'):
        result = gt.contrast(harvest(salmon), "consec", adjust="tukey")
    assert result.adjust == "sidak"
    assert "P value adjustment: sidak method for 3 tests " in str(result).split("\n")


def test_plot_draws_one_panel_per_by_group(crowder):
    import matplotlib
    matplotlib.use("Agg")
    emm = gt.emmeans(crowder, "extract", by="gen", type="response")
    fig = emm.plot()
    assert len(fig.axes) == 2
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(np.asarray(line.get_xdata(), float), emm.table.prob[:2])


# ---- a covariate, an offset, the inverse link -------------------------------------------------------
@pytest.fixture(scope="module")
def turnip():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gt.glmm("yield ~ gen * date + log(density) + (1 | block)", gt.datasets.load("mcconway_turnip"),
                       family="Gamma")


def test_inverse_link_with_a_covariate_at_its_mean(turnip):
    ref = REFERENCE["turnip"]
    emm = gt.emmeans(turnip, "gen", by="date", type="response")
    assert_matches(emm.table, ref["emmeans_response"])
    pairs = emm.pairs()                   # contrasts of inverse means stay on the inverse scale
    assert_matches(pairs.table, ref["pairs"])
    assert str(pairs).split("\n") == ref["pairs"]["lines"]
    assert str(emm).split("\n") == ref["emmeans_response"]["lines"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        at_density = gt.emmeans(turnip, "density", at={"density": [1, 8]}, type="response")
    assert_matches(at_density.table, ref["emmeans_density"])
    assert str(at_density).split("\n") == ref["emmeans_density"]["lines"]
    assert_matches(gt.joint_tests(turnip).table, ref["joint_tests"])


def test_poisson_rates_with_an_offset_at_covariate_values():
    ref = REFERENCE["poisson_offset"]
    data = pd.read_csv(Path(__file__).parent.parent / ref["data_file"])
    fit = gt.glmm(ref["formula"], data, family="poisson")
    emm = gt.emmeans(fit, "x", at={"x": [-1, 0, 1]}, type="response")
    assert emm.estimate_name == "rate"
    assert_matches(emm.table, ref["emmeans_response"])
    assert str(emm).split("\n") == ref["emmeans_response"]["lines"]
    assert_matches(gt.contrast(emm, "consec").table, ref["consec"])
    link_pairs = gt.emmeans(fit, "x", at={"x": [-1, 0, 1]}).pairs()
    assert_matches(link_pairs.table, ref["pairs_link"])
    assert str(link_pairs).split("\n") == ref["pairs_link"]["lines"]


# ---- a custom contrast on a zero-inflated fit (tests/reference/make_zi_inference_reference.R) -------------------
ZI_REFERENCE = json.loads((Path(__file__).parent / "reference" / "zi_inference_reference.json").read_text())


@pytest.fixture(scope="module")
def egg_fits():
    data = gt.datasets.load("fecal_egg_counts")
    for column in ["tx", "lact", "manure", "province", "herd"]:
        data[column] = pd.Categorical(data[column])
    formula = "fec ~ tx + lact + manure + province + (1 | province:herd)"
    return {case: gt.glmm(formula, data, family=family, ziformula="~ 1")
            for case, family in [("zip", "poisson"), ("zinb1", "nbinom1")]}


@pytest.mark.parametrize("case", ["zip", "zinb1"])
def test_custom_contrast_on_a_zero_inflated_fit(case, egg_fits):
    """emmeans(m, ~ tx, type = "response", contr = list(c(1, -1))): the conditional model's mean counts of
    untreated and treated cows, and their ratio, as emmeans gives them for a glmmTMB fit (its default component
    "cond"); the tables and their printouts."""
    ref, fit = ZI_REFERENCE[case], egg_fits[case]
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3) and fit.df_resid == ref["df_resid"]
    emm = gt.emmeans(fit, "tx", type="response")
    ratio = gt.contrast(emm, {"c(1, -1)": [1, -1]})
    assert_matches(emm.table, ref["emmeans"])
    assert_matches(ratio.table, ref["contrasts"])
    assert_matches(gt.emmeans(fit, "tx").table, ref["emmeans_link"])
    assert str(emm).split("\n") == ref["emmeans"]["lines"]
    assert str(ratio).split("\n") == ref["contrasts"]["lines"]


# ---- confidence intervals of contrasts: emmeans' confint(), each conf-level adjustment ------------
# References: tests/reference/contrast_intervals.json (tests/reference/make_contrast_intervals_reference.R).
INTERVALS = json.loads((Path(__file__).parent / "reference" / "contrast_intervals.json").read_text())


@pytest.mark.parametrize("key, make", [
    ("harvest_pairs", lambda s: harvest(s).pairs().confint()),
    ("harvest_pairs_level90", lambda s: harvest(s).pairs(adjust="none").confint(level=0.9)),
    ("harvest_pairs_link", lambda s: harvest(s, "link").pairs().confint()),
    ("harvest_trt_vs_ctrl", lambda s: gt.contrast(harvest(s), "trt.vs.ctrl").confint()),
    ("harvest_trt_vs_ctrl_mvt", lambda s: gt.contrast(harvest(s), "trt.vs.ctrl").confint(adjust="mvt")),
    ("harvest_custom", lambda s: gt.contrast(harvest(s), {"1 vs 2": [1, -1, 0, 0]}).confint()),
    ("pairs_by_day", lambda s: gt.emmeans(s, "vaccine", by="day_f", type="response").pairs().confint()),
])
def test_salmon_contrast_intervals(salmon, key, make):
    intervals = make(salmon)
    assert_matches(intervals.table, INTERVALS["salmon"][key])
    if "mvt" not in key:         # R's randomised qmvt moves the last printed digit
        assert str(intervals).split("\n") == INTERVALS["salmon"][key]["lines"]


@pytest.mark.parametrize("method", ["none", "bonferroni", "sidak", "holm"])
def test_salmon_interval_adjustments(salmon, method):
    intervals = harvest(salmon).pairs().confint(adjust=method)
    ref = INTERVALS["salmon"]["harvest_pairs_adjust"][method]
    assert_matches(intervals.table, ref)
    assert str(intervals).split("\n") == ref["lines"]       # holm: emmeans' Bonferroni intervals


def test_jaw_odds_ratio_intervals(jaw):
    intervals = gt.emmeans(jaw, "vaccine", type="response").pairs().confint()
    assert_matches(intervals.table, INTERVALS["jaw"]["pairs"])
    assert str(intervals).split("\n") == INTERVALS["jaw"]["pairs"]["lines"]


def test_intervals_cover_as_their_p_values_reject(salmon):
    """An interval excludes 1 (a ratio) exactly when its adjusted p-value is below 1 - level."""
    for adjust in ["tukey", "sidak", "bonferroni", "none"]:
        pairs = harvest(salmon).pairs(adjust=adjust)
        table = pairs.confint().table
        excludes = (table["lower.CL"] > 1) | (table["upper.CL"] < 1)
        np.testing.assert_array_equal(excludes, pairs.table["p.value"] < 0.05)
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        harvest(salmon).pairs().confint(level=95)
    with pytest.raises(ValueError, match="adjust must be one of"):
        harvest(salmon).pairs().confint(adjust="scheffe")
