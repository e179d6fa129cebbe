"""Scale: large crossed and nested designs, a GLM, and how fit time grows with the data, against R.

Usage, from the project root (R with lme4, glmmTMB, mlmRev and jsonlite; Debian: r-base-core r-cran-lme4
r-cran-glmmtmb r-cran-mlmrev r-cran-jsonlite)::

    .venv/bin/python benchmarks/scale.py            # every row, R and Python in the same run
    .venv/bin/python benchmarks/scale.py --rows chem97 fish_gamma_glm

Every fit runs in a process of its own (``Rscript benchmarks/r_scale.R ROW ENGINE``, and this script with
``--one ROW``), R's and Python's one after the other for each row, so that both meet the same load and each
process's peak memory (VmHWM) is that fit's. Times are in-process, with the data already read; the small
GLM row is the median of 101 fits, the others of one. The tables go into benchmarks/README.md between the
markers, the cost-growth figure into benchmarks/scaling.svg.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from run import markdown, write_section   # benchmarks/run.py: the same Markdown table and README writers

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
DATA = HERE / "data"
REFERENCE_DATA = ROOT / "tests" / "reference" / "data"     # InstEval and Chem97, with their lmer references
GROWTH = [1_000, 10_000, 100_000, 1_000_000]

#: row -> (formula, family, link, REML, R engines, runs)
ROWS = {
    "insteval_gaussian": ("y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", "gaussian", "identity", True,
                          ["lmer", "glmmTMB"], 1),
    "insteval_binary": ("good ~ service + (1 | s) + (1 | d)", "binomial", "logit", False, ["glmer", "glmmTMB"], 1),
    "chem97": ("score ~ 1 + (1 | lea/school)", "gaussian", "identity", True, ["lmer", "glmmTMB"], 3),
    "fish_gamma_glm": ("wt ~ vaccine * day_f", "Gamma", "log", False, ["glm", "glmmTMB"], 101),
    **{f"growth_{n}": ("y ~ x + (1 | g)", "binomial", "logit", False, ["glmer", "glmmTMB"], 1) for n in GROWTH},
}


def load(row: str) -> pd.DataFrame:
    """The row's data, read as r_scale.R reads it (grouping columns as text)."""
    if row.startswith("insteval"):
        d = pd.read_csv(REFERENCE_DATA / "insteval.csv.gz", dtype={"s": str, "d": str, "dept": str, "service": str})
        return d.assign(good=(d.y > 3).astype(int))
    if row == "chem97":
        return pd.read_csv(REFERENCE_DATA / "chem97.csv.gz", dtype={"lea": str, "school": str})
    if row == "fish_gamma_glm":
        d = pd.read_csv(ROOT / "datasets" / "fish_vaccines.csv")
        return d.assign(vaccine=pd.Categorical(d.vaccine), day_f=pd.Categorical(d.day))
    return pd.read_csv(DATA / f"{row}.csv.gz", dtype={"g": str})


def one(row: str) -> dict:
    """Fit one row in this process; the median time of its runs, the fit's numbers and the peak memory."""
    import glmmteach as gt
    formula, family, link, reml, _, runs = ROWS[row]
    data, seconds = load(row), []
    for _ in range(runs):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = gt.glmm(formula, data, family=gt.families.get(family).__class__(link=link), reml=reml)
        seconds.append(time.perf_counter() - start)
    sd = dict(zip(fit.varcorr.group, fit.varcorr.sd)) if len(fit.varcorr) else {}
    return {"row": row, "engine": "glmmteach", "seconds": float(np.median(seconds)), "runs": runs,
            "logLik": fit.loglik, "fixef": fit.fixef.to_dict(), "se": fit.se.to_dict(), "sd": sd,
            "sigma": fit.sigma, "converged": fit.converged, "peak_mb": peak_mb()}


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(command: list[str]) -> dict:
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(rows: list[str]) -> list[dict]:
    """Each row's fits (R's engines, then glmmteach's), each result marked with the day and the load
    average (1 minute) when its row started."""
    results = []
    for row in rows:
        when = {"date": time.strftime("%Y-%m-%d"), "load": Path("/proc/loadavg").read_text().split()[0]}
        for engine in ROWS[row][4]:
            results.append({**run(["Rscript", "benchmarks/r_scale.R", row, engine, str(ROWS[row][5])]), **when})
            print(json.dumps({k: results[-1][k] for k in ("row", "engine", "seconds", "logLik", "peak_mb")}))
        results.append({**run([sys.executable, str(HERE / "scale.py"), "--one", row]), **when})
        print(json.dumps({k: results[-1][k] for k in ("row", "engine", "seconds", "logLik", "peak_mb")}))
    return results


def table(results: list[dict]) -> pd.DataFrame:
    """One line per row: glmmteach's time and peak memory, each R engine's, the ratio to the faster R engine,
    and the log-likelihood differences that show the engines fitted the same model."""
    out = []
    for row in dict.fromkeys(r["row"] for r in results):
        fits = {r["engine"]: r for r in results if r["row"] == row}
        ours = fits.pop("glmmteach")
        best = min(fits.values(), key=lambda r: r["seconds"])
        formula, family, link, reml, _, runs = ROWS[row]
        out.append({"row": row, "model": f"`{formula}`, {family}({link}), {'REML' if reml else 'ML'}",
                    "glmmteach: s (peak MB)": f"{ours['seconds']:.3g} ({ours['peak_mb']:.0f})",
                    "R: s (peak MB)": "; ".join(f"{e} {r['seconds']:.3g} ({r['peak_mb']:.0f})" for e, r in fits.items()),
                    "faster R / glmmteach": round(best["seconds"] / ours["seconds"], 2),
                    "logLik glmmteach − R": "; ".join(f"{e} {ours['logLik'] - r['logLik']:+.1e}"
                                                      for e, r in fits.items()),
                    "R warnings": "; ".join(w for r in fits.values() for w in r["warnings"]),
                    "run (load)": f"{ours['date']} ({ours['load']})"})
    return pd.DataFrame(out)


def figure(results: list[dict], path: Path) -> None:
    """Fit time against rows, log-log, one line per engine, for the growth rows."""
    import matplotlib
    matplotlib.use("svg")
    import matplotlib.pyplot as plt
    growth = pd.DataFrame([r for r in results if r["row"].startswith("growth_")])
    if growth.empty:
        return
    growth["rows"] = growth.row.str.replace("growth_", "").astype(int)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for engine, part in growth.groupby("engine"):
        part = part.sort_values("rows")
        ax.plot(part.rows, part.seconds, marker="o", label=engine)
    ax.set(xscale="log", yscale="log", xlabel="rows (50 per group)", ylabel="fit time (s)",
           title="Binary GLMM y ~ x + (1 | g): fit time against size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def merged(results: list[dict], saved: list[dict], load: list) -> list[dict]:
    """The new results, and the saved ones of the rows not run again (in the order of ROWS); a saved result
    without its day and load gets those of the saved run (``load``: its load at the start)."""
    rerun = {r["row"] for r in results}
    kept = [{"date": "2026-12-01", "load": load[0], **r} for r in saved if r["row"] not in rerun]
    return sorted(kept + results, key=lambda r: list(ROWS).index(r["row"]))


def write_readme(result: pd.DataFrame) -> None:
    start, end = "<!-- scale table: written by benchmarks/scale.py -->", "<!-- end of scale table -->"
    import glmmteach as gt
    lines = [start, f"Made by `python benchmarks/scale.py` on {time.strftime('%Y-%m-%d')} (glmmteach "
             f"{gt.__version__}; R engines in the same run as glmmteach, each fit in a process of its own, R's and "
             "glmmteach's one after the other for each row, on 2 cores; `--rows` reruns some rows, so the last "
             "column gives the day each row ran and the 1-minute load average then: where other work shared the "
             "machine, read the ratios rather than the seconds). Peak MB is the "
             "fitting process's peak resident memory, data and libraries included. The fish GLM row is the median of "
             "101 fits, chem97 of 3, the others one fit each.", "", markdown(result), "",
             "Cost growth (the `growth_*` rows): ![fit time against rows](scaling.svg)", end]
    write_section(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--rows", nargs="*", default=list(ROWS))
    parser.add_argument("--tables-only", action="store_true",
                        help="rewrite the tables and the figure from benchmarks/scale_results.json")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    path = HERE / "scale_results.json"
    saved = json.loads(path.read_text()) if path.exists() else {"results": []}
    results = merged([], saved["results"], saved.get("load", [None]))
    if not args.tables_only:
        subprocess.run(["Rscript", "benchmarks/r_scale.R", "export"], cwd=ROOT, check=True)
        results = merged(measure(args.rows), results, saved.get("load", [None]))
        path.write_text(json.dumps({"results": results}, indent=1))
    result = table(results)
    print(result.to_string(index=False))
    figure(results, HERE / "scaling.svg")
    write_readme(result)


if __name__ == "__main__":
    main()
