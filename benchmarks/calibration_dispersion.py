"""Level and power of the dispersion tests (glmmteach.diagnostics) on simulated random-intercept GLMMs.

Which dispersion test finds overdispersion in a Poisson GLMM, and which of them keeps its level when
the model is right? Each data set is fitted once and given every candidate, all with
``alternative="greater"`` (the question is overdispersion) and, for the calibrated ones, also two-sided:

* ``DHARMa``: :func:`~glmmteach.diagnostics.test_dispersion`, the variance of the raw residuals
  against that of 250 simulations, with new random effects (``conditional=False``, the default of
  :func:`~glmmteach.diagnostics.simulate_residuals`) or the fitted ones (``conditional=True``); each
  with its own p-value and with the parametric-bootstrap p-value (``n_boot`` refits);
* ``Pearson``: :func:`~glmmteach.diagnostics.test_pearson_dispersion`, Pearson's X^2 with the fitted
  random effects, against chi-squared on ``df_resid`` (``n_boot = 0``) and against refits
  (``n_boot``).

Each data set: eta = b0 + 0.4 x + u_g, u_g ~ N(0, 0.5^2), x ~ N(0, 1), b0 = 0.5 (counts) or -0.3
(binomial, 1 to 10 trials), in G groups of 10 observations:

* Poisson and binomial GLMMs fitted by the right model (the level), 40 groups and 10 groups;
* Poisson counts whose mean is multiplied by a Gamma(shape 1.5, mean 1) draw per observation,
  fitted as Poisson, 40 groups (a negative binomial with size 1.5: variance mu + mu^2 / 1.5); also
  with a random-intercept SD of 1 instead of 0.5;
* negative binomial counts with size 1 fitted as Poisson, 10 groups (the case of calibration.py).

Usage::

    python benchmarks/calibration_dispersion.py --tests all --datasets 40       # every candidate, seven cases
    python benchmarks/calibration_dispersion.py --datasets 100                  # the Pearson test, five cases
    python benchmarks/calibration_dispersion.py --datasets 10 --out /tmp/x.md   # a quick look

A data set of 400 observations costs about 8 s of one core with every candidate (three bootstraps
of 39 refits) and 2 s with the Pearson test alone.

Each run rewrites its table in benchmarks/CALIBRATION.md, between the markers ``dispersion-candidates``
(``--tests all``) or ``dispersion`` (``--tests pearson``).
"""
from __future__ import annotations

import argparse
import multiprocessing
import pathlib
import platform
import time
import warnings

import numpy as np
import pandas as pd
from scipy import stats

import glmmteach as gt
from glmmteach.diagnostics import (_bootstrap_pvalue, bootstrap_pearson_chisq, simulate_residuals, test_dispersion,
                                   test_pearson_dispersion)
from glmmteach.fit import ConvergenceWarning

from calibration import write

PER_GROUP, RE_SD, SLOPE, N_SIM = 10, 0.5, 0.4, 250
#: the cases of the Pearson test's own table: a correct Poisson and binomial GLMM, and two overdispersed ones
DEFAULT_CASES = ["poisson40", "binomial40", "gamma40", "gamma40sd1", "negbin10"]
#: the table of each ``--tests`` choice goes between its own pair of markers
MARKERS = {"all": ("<!-- dispersion-candidates:begin -->", "<!-- dispersion-candidates:end -->"),
           "pearson": ("<!-- dispersion:begin -->", "<!-- dispersion:end -->")}
#: case -> (data, groups, overdispersion, seed code, label, SD of the random intercept)
CASES = {
    "poisson40": ("poisson", 40, None, 11, "Poisson GLMM (Poisson), 40 groups", RE_SD),
    "binomial40": ("binomial", 40, None, 12, "binomial GLMM (binomial), 40 groups", RE_SD),
    "poisson10": ("poisson", 10, None, 13, "Poisson GLMM (Poisson), 10 groups", RE_SD),
    "binomial10": ("binomial", 10, None, 14, "binomial GLMM (binomial), 10 groups", RE_SD),
    "gamma40": ("poisson", 40, 1.5, 15, "Poisson x Gamma(shape 1.5) (Poisson), 40 groups", RE_SD),
    "negbin10": ("poisson", 10, 1.0, 16, "neg. binomial, size 1 (Poisson), 10 groups", RE_SD),
    "gamma40sd1": ("poisson", 40, 1.5, 17, "Poisson x Gamma(shape 1.5) (Poisson), 40 groups, RE SD 1", 1.0),
}


# ---- data ---------------------------------------------------------------------------------------------
def simulate_data(case: str, rng: np.random.Generator) -> pd.DataFrame:
    """One data set of a case (see the module docstring)."""
    family, groups, shape, _, _, sd = CASES[case]
    g = np.repeat(np.arange(groups), PER_GROUP)
    x = rng.normal(size=len(g))
    eta = (-0.3 if family == "binomial" else 0.5) + SLOPE * x + rng.normal(0, sd, groups)[g]
    data = pd.DataFrame({"x": x, "g": [f"g{k}" for k in g]})
    if family == "binomial":
        trials = rng.integers(1, 11, len(g))
        data["y"] = rng.binomial(trials, 1 / (1 + np.exp(-eta)))
        data["failures"] = trials - data["y"]
        return data
    mu = np.exp(eta)
    if shape is not None:   # a Gamma multiplier of mean 1 and variance 1/shape: negative binomial counts
        mu = mu * rng.gamma(shape, 1 / shape, len(g))
    data["y"] = rng.poisson(mu)
    return data


def fit_model(case: str, data: pd.DataFrame):
    binomial = CASES[case][0] == "binomial"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)   # overflow of exp(eta) while the optimiser explores
        return gt.glmm("cbind(y, failures) ~ x + (1 | g)" if binomial else "y ~ x + (1 | g)", data,
                       family="binomial" if binomial else "poisson")


# ---- one data set: every candidate ----------------------------------------------------------------------
def one_dataset(task: tuple) -> dict:
    """The p-values on data set k of a case; the tests of one kind share one bootstrap. ``tests``:
    "all" (every candidate) or "pearson" (only the Pearson test, the one the lessons recommend)."""
    case, k, n_boot, tests = task
    fit = fit_model(case, simulate_data(case, np.random.default_rng([k, CASES[case][3]])))
    pearson = test_pearson_dispersion(fit)
    row = {"case": case, "k": k, "ratio": pearson.statistic, ("Pearson chi2", "greater"): pearson.pvalue}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # a refit that fails is left out, as the tests say
        null = bootstrap_pearson_chisq(fit, n_boot, seed=k)
        row["failed"] = int(np.sum(~np.isfinite(null)))
        for alternative in ("greater", "two-sided"):
            row[("Pearson, bootstrap", alternative)] = _bootstrap_pvalue(null, pearson.details["chisq"],
                                                                         alternative)
        for conditional, name in ((False, "DHARMa"), (True, "DHARMa cond.")) if tests == "all" else ():
            res = simulate_residuals(fit, n=N_SIM, seed=k, conditional=conditional)
            row[(name, "greater")] = test_dispersion(res, alternative="greater").pvalue
            for alternative in ("greater", "two-sided"):   # the second call reuses the refits of the first
                row[(f"{name}, bootstrap", alternative)] = test_dispersion(res, alternative, n_boot=n_boot).pvalue
    return row


def run(cases: list[str], n_datasets: int, n_boot: int, tests: str, jobs: int) -> pd.DataFrame:
    tasks = [(case, k, n_boot, tests) for case in cases for k in range(n_datasets)]
    rows = []
    with multiprocessing.Pool(jobs) as pool:
        for row in pool.imap(one_dataset, tasks, chunksize=2):
            rows.append(row)
            if len(rows) % 20 == 0:
                print(f"{len(rows)} of {len(tasks)} data sets", flush=True)
    return pd.DataFrame(rows)


# ---- report ----------------------------------------------------------------------------------------------
#: the columns of the table, in this order where present: (test, alternative)
COLUMNS = [(f"{name}{boot}", alternative) for name in ("DHARMa", "DHARMa cond.") for boot, alternative in
           (("", "greater"), (", bootstrap", "greater"), (", bootstrap", "two-sided"))] + \
          [("Pearson chi2", "greater"), ("Pearson, bootstrap", "greater"), ("Pearson, bootstrap", "two-sided")]


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    table = []
    for case, group in results.groupby("case", sort=False):
        row = {"data (fitted as)": CASES[case][4], "mean X2/df": f"{group['ratio'].mean():.3f}"}
        for name, alternative in (column for column in COLUMNS if column in results):
            label = name if alternative == "greater" else f"{name}, two-sided"
            row[label] = f"{np.mean(group[(name, alternative)] <= 0.05):.3f}"
        table.append(row)
    return pd.DataFrame(table)


def markdown(table: pd.DataFrame, n_datasets: int, n_boot: int, tests: str, failed: int, seconds: float,
             cases: str = "") -> str:
    n_refits = len(table) * n_datasets * n_boot
    lower, upper = stats.binom.ppf([0.005, 0.995], n_datasets, 0.05) / n_datasets
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([
        f"Rejection rates at the 5% level over {n_datasets} data sets per row, `alternative=\"greater\"` "
        f"unless the column says two-sided (99% binomial interval around 0.05 for {n_datasets} data sets: "
        f"{lower:.3f} to {upper:.3f}; a rejection rate of 0.90 is measured to within "
        f"±{2.576 * np.sqrt(0.9 * 0.1 / n_datasets):.3f}, 99%). "
        f"`DHARMa`: `test_dispersion` on {N_SIM} simulations with new random effects, `cond.` with the "
        f"fitted ones; `Pearson`: `test_pearson_dispersion`; `bootstrap`: p-value from {n_boot} refits "
        f"(`n_boot={n_boot}`; {int(failed)} of the {n_refits} refits of the Pearson bootstrap failed and "
        "were left out). `mean X2/df`: the average dispersion ratio of Pearson's statistic.",
        "", "| " + " | ".join(table.columns) + " |", "| " + " | ".join("---" for _ in table.columns) + " |",
        *rows, "",
        f"Run by `python benchmarks/calibration_dispersion.py --datasets {n_datasets} --boot {n_boot} "
        f"--tests {tests}{cases}` in "
        f"{seconds / 60:.1f} minutes (Python {platform.python_version()}, glmmteach {gt.__version__}).",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--boot", type=int, default=39, help="refits of the parametric bootstraps")
    parser.add_argument("--jobs", type=int, default=2, help="processes")
    parser.add_argument("--cases", nargs="*", choices=list(CASES),
                        help="default: all six with --tests all, the five of DEFAULT_CASES with --tests pearson")
    parser.add_argument("--tests", default="pearson", choices=list(MARKERS),
                        help="every candidate, or the Pearson test alone")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).with_name("CALIBRATION.md"))
    parser.add_argument("--csv", type=pathlib.Path, help="also write every p-value here")
    args = parser.parse_args()
    args.cases = args.cases or (list(CASES) if args.tests == "all" else DEFAULT_CASES)
    start = time.perf_counter()
    results = run(args.cases, args.datasets, args.boot, args.tests, args.jobs)
    if args.csv:
        results.to_csv(args.csv, index=False)
    default = list(CASES) if args.tests == "all" else DEFAULT_CASES
    section = markdown(summarise(results), args.datasets, args.boot, args.tests, results["failed"].sum(),
                       time.perf_counter() - start, "" if args.cases == default else " --cases " + " ".join(args.cases))
    print(section)
    write(section, args.out, MARKERS[args.tests])


if __name__ == "__main__":
    main()
