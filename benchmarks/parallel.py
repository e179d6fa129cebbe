"""Refit loops on one and on two processes: wall time and identical results.

The bootstraps take ``n_jobs`` (glmmteach.parallel.map_items, on joblib): each refit draws from its own
seed, so the result must be the same for any ``n_jobs``, and on a 2-core machine two processes should take
about half the time of one. Timed here, each once, on the course's crowder GLMM
(``cbind(germ, n - germ) ~ gen * extract + (1 | plate)``, binomial, ML), with 199 refits each:

* ``test_pearson_dispersion(fit, n_boot=199)``, the dispersion test with refits;
* ``confint(method="boot", nsim=199)``, percentile intervals from refits;
* ``bootstrap_lrt(null, fit, nsim=199)``, the parametric bootstrap likelihood-ratio test of the plates'
  variance (the null: the GLM without ``(1 | plate)``), 398 refits;
* ``confint(method="profile")``, the profile-likelihood intervals of the five parameters, one per task.

The table goes into benchmarks/README.md. Command: ``.venv/bin/python benchmarks/parallel.py``.
"""
from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pandas as pd

import glmmteach as gt
from run import markdown, write_section   # benchmarks/run.py: the same Markdown table and README writers

B = 199
TASKS = {
    "test_pearson_dispersion(fit, n_boot=199)":
        lambda fit, n_jobs: gt.test_pearson_dispersion(fit, n_boot=B, seed=1, n_jobs=n_jobs).pvalue,
    'confint(method="boot", nsim=199)':
        lambda fit, n_jobs: fit.confint(method="boot", nsim=B, seed=1, n_jobs=n_jobs).to_numpy(),
    "bootstrap_lrt(null, fit, nsim=199)":
        lambda fit, n_jobs: gt.bootstrap_lrt(_null(fit), fit, nsim=B, seed=1, n_jobs=n_jobs).lrt_star,
    'confint(method="profile")':
        lambda fit, n_jobs: fit.confint(method="profile", n_jobs=n_jobs).to_numpy(),
}


def _null(fit):
    """The crowder model without the plates' random effect (a GLM), fitted to the same rows."""
    return gt.glmm("cbind(germ, n - germ) ~ gen * extract", fit.data, family="binomial")


def timed(task, fit, n_jobs: int):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = task(fit, n_jobs)
    return time.perf_counter() - start, value


def main() -> None:
    seeds = gt.datasets.load("crowder_seeds")
    fit = gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", seeds, family="binomial")
    timed(TASKS["test_pearson_dispersion(fit, n_boot=199)"], fit, 2)   # joblib's worker processes start once
    rows = []
    for name, task in TASKS.items():
        (one, value_1), (two, value_2) = timed(task, fit, 1), timed(task, fit, 2)
        rows.append({"task": name, "n_jobs=1 (s)": round(one, 2), "n_jobs=2 (s)": round(two, 2),
                     "n_jobs=1 / n_jobs=2": round(one / two, 2),
                     "same result": bool(np.array_equal(value_1, value_2, equal_nan=True))})
    result = pd.DataFrame(rows)
    print(result.to_string(index=False))
    load = os.getloadavg()[0]
    write_section(["<!-- parallel table: written by benchmarks/parallel.py -->",
                   f"Made by `python benchmarks/parallel.py` on {time.strftime('%Y-%m-%d')} (glmmteach "
                   f"{gt.__version__}, {os.cpu_count()} cores, load average {load:.2f} at the end): the crowder "
                   "GLMM's bootstraps with 199 replicates each (the likelihood-ratio test refits both "
                   "models: 398 refits) and its profile intervals, timed once on one process and once on two (joblib's worker "
                   "processes started before the timings). \"same result\": the p-value, every interval limit, "
                   "or every replicate's statistic, identical to the last digit.", "", markdown(result),
                   "<!-- end of parallel table -->"])


if __name__ == "__main__":
    main()
