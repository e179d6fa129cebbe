"""Time glmmteach against glmmTMB and glmer on the same data, in one run, and write the table of ratios.

Usage, from the project root::

    .venv/bin/python benchmarks/run.py            # runs R too when Rscript is on the PATH
    .venv/bin/python benchmarks/run.py --no-r     # reuse benchmarks/r_timings.json from an earlier R run

R is optional (Debian: r-base-core r-cran-lme4 r-cran-glmmtmb r-cran-jsonlite). Each fit is timed as the
median of 3 runs with the data already in memory, as benchmarks/r_bench.R times R. The table goes into
benchmarks/README.md between the markers, with the log-likelihood difference that shows each pair of
engines fitted the same model.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import time
import warnings
from pathlib import Path

import pandas as pd

import glmmteach as gt

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
RUNS = 3


def datasets() -> dict[str, pd.DataFrame]:
    fish = gt.datasets.load("fish_vaccines")
    fish = fish.assign(vaccine=pd.Categorical(fish.vaccine), day_f=pd.Categorical(fish.day),
                       fish=fish.fish.astype(str))
    egg = gt.datasets.load("fecal_egg_counts")
    for column in ["tx", "lact", "manure", "province", "herd"]:
        egg[column] = pd.Categorical(egg[column])
    seeds = gt.datasets.load("crowder_seeds")
    return {"crowder": seeds, "crowder_betabinomial": seeds, "fish_gamma": fish, "fish_gamma_ar1": fish,
            "egg_zinb1": egg,
            "verbagg": pd.read_csv(HERE / "data" / "verbagg.csv"),
            "sim_binomial_100k": pd.read_csv(HERE / "data" / "sim_binomial_100k.csv.gz")}


def family(name: str, link: str):
    return gt.families.get(name).__class__(link=link)


def time_fit(row: dict, data: pd.DataFrame, reml: bool) -> tuple[float, object]:
    seconds, fit = [], None
    for _ in range(RUNS):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = gt.glmm(row["formula"], data, family=family(row["family"], row["link"]), reml=reml,
                          ziformula=row.get("ziformula"))
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), fit


def table(r_timings: dict) -> pd.DataFrame:
    data = datasets()
    out = []
    for row in r_timings["rows"]:
        by_method: dict[str, dict] = {}
        for fit in row["fits"]:
            by_method.setdefault("REML" if fit["method"] == "REML" else "ML", {})[fit["engine"]] = fit
        for method, r_fits in by_method.items():
            seconds, fit = time_fit(row, data[row["name"]], reml=(method == "REML"))
            r_best = min(f["seconds"] for f in r_fits.values())
            out.append({
                "model": row["name"], "n": row["nobs"], "method": method,
                "glmmteach (s)": round(seconds, 3),
                "glmmTMB (s)": r_fits.get("glmmTMB", {}).get("seconds"),
                "glmer (s)": r_fits.get("lme4::glmer", {}).get("seconds"),
                "faster R / glmmteach": round(r_best / seconds, 2),
                # glmer's Gamma log-likelihood uses another dispersion estimate: compare with glmmTMB where it ran
                "logLik glmmteach − glmmTMB (glmer)": f"{fit.loglik - r_fits.get('glmmTMB', r_fits.get('lme4::glmer'))['logLik']:+.1e}",
                "R warnings": "; ".join(w for f in r_fits.values() for w in f.get("warnings", [])) or "",
            })
    return pd.DataFrame(out)


def refit_table(r_timings: dict) -> pd.DataFrame:
    """The inner loop of a parametric bootstrap: the crowder model (ML) refitted to the 100 responses that
    r_bench.R simulated and wrote, timed once per loop as in R, with and without standard errors."""
    row = r_timings["refits"]
    sims = pd.read_csv(ROOT / row["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")              # singular refits are expected
        fit = gt.glmm(row["formula"], datasets()["crowder"], family="binomial")
        seconds, logliks = {}, {}
        for standard_errors in (True, False):
            start = time.perf_counter()
            logliks[standard_errors] = [fit.refit(sims[column], standard_errors=standard_errors).loglik
                                        for column in sims]
            seconds[standard_errors] = time.perf_counter() - start
    r_fits = {f["engine"]: f for f in row["fits"]}
    r_best = min(f["seconds"] for f in r_fits.values())
    tmb = pd.Series(r_fits["glmmTMB"]["logLik"])
    return pd.DataFrame([{
        "task": row["name"], "glmmteach (s)": round(seconds[True], 2),
        "glmmteach, standard_errors=False (s)": round(seconds[False], 2),
        "glmmTMB update() (s)": round(r_fits["glmmTMB"]["seconds"], 2),
        "glmer refit() (s)": round(r_fits["lme4::glmer"]["seconds"], 2),
        "faster R / glmmteach": round(r_best / seconds[True], 2),
        "largest logLik glmmteach − glmmTMB": f"{(pd.Series(logliks[True]) - tmb).abs().max():.1e}",
    }])


def markdown(frame: pd.DataFrame) -> str:
    cell = lambda v: "" if pd.isna(v) else str(v).replace("|", "\\|")
    rows = [list(map(str, frame.columns))] + [[cell(v) for v in r] for r in frame.itertuples(index=False)]
    return "\n".join("| " + " | ".join(r) + " |" for r in rows[:1] + [["---"] * len(rows[0])] + rows[1:])


def write_readme(result: pd.DataFrame, refits: pd.DataFrame, r_timings: dict, ran_r: bool) -> None:
    engines = r_timings["engines"]
    lines = ["<!-- benchmark table: written by benchmarks/run.py -->",
             f"Made by `{'python benchmarks/run.py' if ran_r else 'python benchmarks/run.py --no-r'}` on "
             f"{time.strftime('%Y-%m-%d')}: Python {platform.python_version()}, glmmteach {gt.__version__}; "
             f"R timings from `Rscript benchmarks/r_bench.R` ({'in the same run' if ran_r else 'an earlier run, ' + r_timings['date']}): "
             f"glmmTMB {engines['glmmTMB']}, lme4 {engines['lme4']}. Median of {RUNS} fits each, "
             "2 cores. A ratio above 1 means glmmteach is faster than the faster of the R engines fitting the same "
             "criterion (REML rows: glmmTMB only, as glmer has no REML for GLMMs).", "",
             markdown(result), "",
             "Refits, the inner loop of a parametric bootstrap (`fit.refit`): the crowder model refitted by ML to the "
             "same 100 simulated responses in both languages, each loop timed once. The ratio uses glmmteach with "
             "standard errors, as both R engines compute them.", "",
             markdown(refits), "<!-- end of benchmark table -->"]
    write_section(lines)


def write_section(lines: list[str]) -> None:
    """Put ``lines`` into benchmarks/README.md in place of the section between the same first and last
    lines (its markers), or at the end if the README has no such section yet."""
    readme = HERE / "README.md"
    text = readme.read_text() if readme.exists() else "# Benchmarks\n\n"
    start, end = lines[0], lines[-1]
    if start in text:
        text = text[:text.index(start)] + "\n".join(lines) + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + "\n".join(lines) + "\n"
    readme.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-r", action="store_true", help="reuse benchmarks/r_timings.json")
    args = parser.parse_args()
    ran_r = False
    if not args.no_r and shutil.which("Rscript"):
        subprocess.run(["Rscript", str(HERE / "r_bench.R")], cwd=ROOT, check=True)
        ran_r = True
    r_timings = json.loads((HERE / "r_timings.json").read_text())
    result, refits = table(r_timings), refit_table(r_timings)
    print(result.to_string(index=False))
    print(refits.to_string(index=False))
    write_readme(result, refits, r_timings, ran_r)


if __name__ == "__main__":
    main()
