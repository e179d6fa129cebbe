"""Calibration of the simulation-based residual tests (glmmteach.diagnostics) on simulated data.

How often does each test reject at 5%

* under correctly specified random-intercept GLMMs (Poisson, binomial): the level, which should be
  5% or below;
* on negative binomial counts fitted as Poisson: the power against overdispersion;

for both ways of simulating (``conditional=False``: new random effects; ``conditional=True``: the
fitted ones), and, as a check of the PIT itself, with simulations from the *true* model (no fitting).
For the fitted models the KS and dispersion tests are run twice: with their own p-values and with
p-values from a parametric bootstrap with refits (``n_boot``, see
``glmmteach.diagnostics.bootstrap_statistics``).

Each data set: 100 observations in 10 groups, eta = b0 + 0.4 x + u_g, u_g ~ N(0, 0.5^2), x ~ N(0, 1);
binomial with 1 to 10 trials; negative binomial with size 1 (variance mu + mu^2).

Usage (about 25 minutes on two cores for the defaults)::

    python benchmarks/calibration.py                  # 500 data sets, 250 simulations, 39 refits each
    python benchmarks/calibration.py --datasets 20    # a quick look

It rewrites the part of benchmarks/CALIBRATION.md between the two ``calibration`` markers.
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
from glmmteach.diagnostics import (ScaledResiduals, simulate_residuals, test_dispersion, test_outliers,
                                   test_quantiles, test_uniformity)
from glmmteach.fit import ConvergenceWarning

N_OBS, N_GROUPS, RE_SD, SLOPE = 100, 10, 0.5, 0.4
INTERCEPT = {"poisson": 0.5, "negbin": 0.5, "binomial": -0.3}
NEGBIN_SIZE = 1.0
FAMILY_CODE = {"poisson": 1, "binomial": 2, "negbin": 3}   # seeds the data sets of each family
MARKERS = ("<!-- calibration:begin -->", "<!-- calibration:end -->")


# ---- data ---------------------------------------------------------------------------------------------
def simulate_truth(family: str, rng: np.random.Generator) -> dict:
    """One data set with everything needed to simulate from the true model."""
    g = np.repeat(np.arange(N_GROUPS), N_OBS // N_GROUPS)
    x = rng.normal(size=N_OBS)
    fixed = INTERCEPT[family] + SLOPE * x
    u = rng.normal(0, RE_SD, N_GROUPS)
    trials = rng.integers(1, 11, N_OBS) if family == "binomial" else np.ones(N_OBS, int)
    y = draw(family, fixed + u[g], trials, rng)
    data = pd.DataFrame({"x": x, "g": [f"g{k}" for k in g], "y": y, "failures": trials - y})
    return {"data": data, "fixed": fixed, "eta": fixed + u[g], "g": g, "trials": trials, "family": family}


def draw(family: str, eta: np.ndarray, trials: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if family == "binomial":
        return rng.binomial(trials, 1 / (1 + np.exp(-eta)))
    mu = np.exp(eta)
    if family == "poisson":
        return rng.poisson(mu)
    return rng.negative_binomial(NEGBIN_SIZE, NEGBIN_SIZE / (NEGBIN_SIZE + mu))


def fit_model(truth: dict):
    """The fitted model: binomial for binomial data, Poisson otherwise (wrong for negbin data)."""
    binomial = truth["family"] == "binomial"
    formula = "cbind(y, failures) ~ x + (1 | g)" if binomial else "y ~ x + (1 | g)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)   # overflow of exp(eta) while the optimiser explores
        return gt.glmm(formula, truth["data"], family="binomial" if binomial else "poisson")


def oracle_residuals(truth: dict, n_sim: int, conditional: bool, seed: int) -> ScaledResiduals:
    """Residuals against simulations from the true model (true parameters, no fitting)."""
    rng = np.random.default_rng([seed, 2])
    if conditional:
        eta = np.repeat(truth["eta"][:, None], n_sim, axis=1)
    else:
        eta = truth["fixed"][:, None] + rng.normal(0, RE_SD, (N_GROUPS, n_sim))[truth["g"]]
    trials = np.repeat(truth["trials"][:, None], n_sim, axis=1)
    simulated = draw(truth["family"], eta, trials, rng)
    return ScaledResiduals.from_simulations(truth["data"]["y"], simulated, seed=seed)


# ---- one data set: all tests ----------------------------------------------------------------------------
def evaluate(res: ScaledResiduals, n_boot: int = 0) -> dict:
    """Every test's p-value; for fitted models also the quantile test and the bootstrap p-values."""
    dispersion = test_dispersion(res)
    row = {"ks": test_uniformity(res).pvalue, "dispersion": dispersion.pvalue,
           "dispersion_ratio": dispersion.statistic, "outliers": test_outliers(res).pvalue,
           "mean": res.scaled.mean(), "var": res.scaled.var()}
    if res.fit is None:
        return row
    if n_boot:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)    # a refit that fails is left out, as it says
            row["ks_boot"] = test_uniformity(res, n_boot=n_boot).pvalue
            row["dispersion_boot"] = test_dispersion(res, n_boot=n_boot).pvalue
    row["quantiles"] = test_quantiles(res).pvalue
    return row


def one_dataset(task: tuple) -> list[dict]:
    """All rows of data set k of a family."""
    family, k, n_sim, n_boot = task
    truth = simulate_truth(family, np.random.default_rng([k, FAMILY_CODE[family]]))
    fit = fit_model(truth)
    rows = []
    for conditional in (False, True):
        res = simulate_residuals(fit, n=n_sim, seed=k, conditional=conditional)
        rows.append({"family": family, "simulation": "fitted", "conditional": conditional,
                     **evaluate(res, n_boot)})
        if family != "negbin":
            oracle = oracle_residuals(truth, n_sim, conditional, seed=k)
            rows.append({"family": family, "simulation": "true model", "conditional": conditional,
                         **evaluate(oracle)})
    return rows


def run(n_datasets: int, n_sim: int, n_boot: int, jobs: int) -> pd.DataFrame:
    tasks = [(family, k, n_sim, n_boot) for family in ("poisson", "binomial", "negbin") for k in range(n_datasets)]
    with multiprocessing.Pool(jobs) as pool:
        chunks = pool.map(one_dataset, tasks, chunksize=4)
    return pd.DataFrame([row for chunk in chunks for row in chunk])


# ---- report ----------------------------------------------------------------------------------------------
def rate(p: pd.Series) -> str:
    """Share of p-values at or below 0.05 (a bootstrap p-value with B = 39 is k/40: p <= 0.05 is 5%)."""
    return f"{np.mean(p <= 0.05):.3f}" if p.notna().any() else ""


def summarise(results: pd.DataFrame, n_datasets: int) -> pd.DataFrame:
    table = []
    for (family, simulation, conditional), group in results.groupby(["family", "simulation", "conditional"],
                                                                     sort=False):
        ratio = group["dispersion_ratio"]
        table.append({
            "data (fitted as)": {"poisson": "Poisson GLMM (Poisson)", "binomial": "binomial GLMM (binomial)",
                                 "negbin": "neg. binomial, size 1 (Poisson)"}[family],
            "simulations from": simulation, "conditional": conditional,
            "KS": rate(group["ks"]),
            "KS, bootstrap": rate(group["ks_boot"]) if "ks_boot" in group else "",
            "dispersion": rate(group["dispersion"]),
            "disp., bootstrap": rate(group["dispersion_boot"]) if "dispersion_boot" in group else "",
            "disp. under / over": f"{np.mean((group['dispersion'] <= 0.05) & (ratio < 1)):.3f} / "
                                  f"{np.mean((group['dispersion'] <= 0.05) & (ratio > 1)):.3f}",
            "outliers": rate(group["outliers"]),
            "quantiles": rate(group["quantiles"]) if "quantiles" in group else "",
            "mean r": f"{group['mean'].mean():.4f}", "var r": f"{group['var'].mean():.4f}",
        })
    return pd.DataFrame(table)


def markdown(table: pd.DataFrame, n_datasets: int, n_sim: int, n_boot: int, seconds: float) -> str:
    lower, upper = stats.binom.ppf([0.005, 0.995], n_datasets, 0.05) / n_datasets
    header = "| " + " | ".join(table.columns) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([
        f"Rejection rates at the 5% level over {n_datasets} data sets per row, {n_sim} simulations each "
        f"(99% binomial interval around 0.05 for {n_datasets} data sets: {lower:.3f} to {upper:.3f}). "
        f"`bootstrap`: p-value from {n_boot} refits to data simulated from the fitted model "
        "(`n_boot`). "
        "`disp. under / over`: rejections with a dispersion ratio below / above 1. `mean r`, `var r`: "
        "average mean and variance of the scaled residuals (uniform: 0.5 and 0.0833).",
        "", header, rule, *body, "",
        f"Run by `python benchmarks/calibration.py --datasets {n_datasets} --nsim {n_sim} --boot {n_boot}` "
        f"in {seconds / 60:.1f} minutes (Python {platform.python_version()}, glmmteach {gt.__version__}).",
    ])


def write(section: str, path: pathlib.Path, markers: tuple[str, str] = MARKERS) -> None:
    """Put ``section`` between the two markers of the file (added at its end if missing)."""
    text = path.read_text() if path.exists() else "# Calibration\n"
    if markers[0] not in text:
        text = text.rstrip("\n") + f"\n\n{markers[0]}\n{markers[1]}\n"
    begin, end = text.index(markers[0]) + len(markers[0]), text.index(markers[1])
    path.write_text(text[:begin] + "\n" + section + "\n" + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=500)
    parser.add_argument("--nsim", type=int, default=250)
    parser.add_argument("--boot", type=int, default=39, help="refits of the parametric bootstrap")
    parser.add_argument("--jobs", type=int, default=2, help="processes")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).with_name("CALIBRATION.md"))
    args = parser.parse_args()
    start = time.perf_counter()
    results = run(args.datasets, args.nsim, args.boot, args.jobs)
    table = summarise(results, args.datasets)
    section = markdown(table, args.datasets, args.nsim, args.boot, time.perf_counter() - start)
    print(section)
    write(section, args.out)


if __name__ == "__main__":
    main()
