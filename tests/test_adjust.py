"""The p-value adjustments of glmmteach.adjust against R (ptukey, emmeans' dunnettx, mvtnorm's pmvt) for 2 to 6
means, and the family-wise error rate of Tukey's method on null models.

References: the "adjust_grid" of tests/reference/inference_reference.json (make_inference_reference.R).
"""
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq

import glmmteach as gt
from glmmteach import adjust

REFERENCE = json.loads((Path(__file__).parent / "reference" / "inference_reference.json").read_text())
GRID = pd.DataFrame({k: np.asarray(v, float) for k, v in REFERENCE["adjust_grid"].items()})


def test_tukey_pvalues_for_2_to_6_means():
    got = [adjust.tukey(row.t, row.k, row.df) for row in GRID.itertuples()]
    np.testing.assert_allclose(got, GRID.tukey, rtol=0, atol=1e-6)
    assert set(GRID.k) == {2, 3, 4, 5, 6}


def test_dunnettx_pvalues_for_1_to_5_comparisons():
    got = [adjust.dunnettx(row.t, int(row.k) - 1, row.df) for row in GRID.itertuples()]
    np.testing.assert_allclose(got, GRID.dunnettx, rtol=0, atol=1e-6)


def test_mvt_gives_the_exact_dunnett_pvalues():
    """The multivariate t with correlation 1/2 is Dunnett's test; R's pmvt to 1e-6."""
    rows = GRID[GRID.t.isin([1.5, 2.2]) & GRID.df.isin([8, np.inf])]
    for row in rows.itertuples():
        m = int(row.k) - 1
        corr = np.full((m, m), 0.5) + 0.5 * np.eye(m)
        assert abs(adjust.mvt([row.t], corr, row.df)[0] - row.dunnett_mvt) < 2e-4


def test_holm_and_bonferroni_by_hand():
    p = adjust.unadjusted(np.array([3.0, 1.0, 2.0]), 10)
    np.testing.assert_allclose(adjust.adjust([3.0, 1.0, 2.0], 10, "bonferroni"), np.minimum(1, 3 * p))
    order = np.argsort(p)
    expected = np.maximum.accumulate(p[order] * [3, 2, 1])
    np.testing.assert_allclose(adjust.adjust([3.0, 1.0, 2.0], 10, "holm")[order], np.minimum(expected, 1))


def tukey_family_error(corr_means, df, n_sim, seed, method="tukey"):
    """Share of null data sets in which some Tukey-adjusted pairwise p-value is below 0.05.

    The t ratios of a null model are simulated directly: the k estimated means as N(0, C) (C their
    covariance), the SE scale as sqrt(chi2_df / df); the t ratios of all pairs follow. A family rejects
    when its largest |t| passes the |t| at which the Tukey p-value is 0.05 (p is decreasing in |t|),
    which the test finds from ``adjust.tukey`` itself (``method="none"``: from unadjusted p-values).
    """
    rng = np.random.default_rng(seed)
    k = len(corr_means)
    means = rng.multivariate_normal(np.zeros(k), corr_means, size=n_sim)
    scale = np.sqrt(rng.chisquare(df, n_sim) / df) if np.isfinite(df) else np.ones(n_sim)
    i, j = np.triu_indices(k, 1)
    se = np.sqrt(corr_means[i, i] + corr_means[j, j] - 2 * corr_means[i, j])
    t = (means[:, i] - means[:, j]) / (se * scale[:, None])
    pvalue = (lambda c: adjust.tukey(c, k, df)) if method == "tukey" else (lambda c: adjust.unadjusted(c, df))
    critical = brentq(lambda c: pvalue(c) - 0.05, 0.5, 10)
    return np.mean(np.abs(t).max(axis=1) > critical)


def test_tukey_family_wise_error_is_five_percent_balanced():
    rate = tukey_family_error(np.eye(4), df=20, n_sim=20000, seed=1)
    assert abs(rate - 0.05) < 0.015
    # the same six comparisons without adjustment reject far more often: the check can fail
    assert tukey_family_error(np.eye(4), df=20, n_sim=20000, seed=1, method="none") > 0.15


def test_tukey_family_wise_error_on_the_salmon_harvest_means():
    """The four harvest means of the salmon fit, with their own (nearly equal, correlated) covariance."""
    fish = gt.datasets.load("fish_vaccines")
    fish = fish.assign(vaccine=pd.Categorical(fish.vaccine), day_f=pd.Categorical(fish.day), fish=fish.fish.astype(str))
    salmon = gt.glmm("wt ~ vaccine * day_f + (1 | fish)", fish, family=gt.families.Gamma(link="log"), reml=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emm = gt.emmeans(salmon, "vaccine", at={"day_f": "901"})
    rate = tukey_family_error(emm.covariance, df=salmon.df_resid, n_sim=20000, seed=2)
    assert abs(rate - 0.05) < 0.015
