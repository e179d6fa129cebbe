"""The homework (lessons/homework): otter-grader assignments, their student versions and their grading.

One module-scoped build (``otter assign`` of every assignment into a temporary directory), then the
slow part, run two at a time: ``otter run`` grades the solutions, the untouched student notebook and a
partly solved one, and the untouched student notebook is executed from the top. The rest is quick.
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import types
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import numpy as np
import pytest

HOMEWORK = Path(__file__).resolve().parents[1] / "lessons" / "homework"

_spec = importlib.util.spec_from_file_location("homework", HOMEWORK / "homework.py")
hw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hw)

ASSIGNMENTS = hw.assignments()
# the questions a "partly solved" notebook answers; the others stay blank
PARTLY_SOLVED = ("q1", "q2")
# otter-grader imports nbconvert, whose traitlets warn about their own use of the API
pytestmark = pytest.mark.filterwarnings("ignore:Traits should be given as instances:DeprecationWarning")
CHECK_CELL = re.compile(r'^grader\.check\("(\w+)"\)', re.MULTILINE)


def test_there_are_three_assignments_at_least():
    assert {"webworms", "turnips", "cows"} <= set(ASSIGNMENTS)


# ---- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("homework")
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda name: hw.build(name, out, run_tests=False), ASSIGNMENTS))
    return out


def _answer_cells(notebook, tag):
    """The code cells tagged ``tag``, each with the question whose check follows it."""
    cells, pending = [], []
    for cell in notebook.cells:
        if cell.cell_type == "code" and tag in cell.metadata.get("tags", []):
            pending.append(cell)
        match = CHECK_CELL.search(cell.source) if cell.cell_type == "code" else None
        if match and "check_all" not in cell.source:
            cells.extend((match.group(1), c) for c in pending)
            pending = []
    return cells


def _partly_solved(built, name, path):
    """The student notebook with the solutions of PARTLY_SOLVED pasted into their answer cells."""
    student = nbformat.read(hw.student_notebook(name, built), as_version=4)
    solution = nbformat.read(hw.solution_notebook(name, built), as_version=4)
    answers = _answer_cells(student, "otter_answer_cell")
    solutions = _answer_cells(solution, "otter_assign_solution_cell")
    assert [q for q, _ in answers] == [q for q, _ in solutions], "answer cells do not line up with solutions"
    for (question, answer), (_, solved) in zip(answers, solutions):
        if question in PARTLY_SOLVED:
            answer.source = solved.source
    nbformat.write(student, path)
    return path


def _execute(notebook, out):
    """Run a notebook from the top, in its own directory; fail on the first cell that raises."""
    done = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
                           "--ExecutePreprocessor.timeout=600", str(notebook), "--output", str(out)],
                          capture_output=True, text=True, cwd=notebook.parent)
    assert done.returncode == 0, f"{notebook.name} did not run to the end:\n{done.stderr[-3000:]}"
    return nbformat.read(out, as_version=4)


@pytest.fixture(scope="module")
def runs(built, tmp_path_factory):
    """Everything slow, two at a time: {(name, what): grading scores or the executed notebook}."""
    tmp = tmp_path_factory.mktemp("graded")
    jobs = {}
    for name in ASSIGNMENTS:
        zip_ = hw.autograder_zip(name, built)
        partly = _partly_solved(built, name, tmp / f"{name}-partly.ipynb")
        for what, notebook in [("solution", hw.solution_notebook(name, built)),
                               ("student", hw.student_notebook(name, built)), ("partly", partly)]:
            jobs[name, what] = (hw.grade, notebook, zip_, tmp / f"{name}-{what}", False)
        jobs[name, "executed"] = (_execute, hw.student_notebook(name, built), tmp / f"{name}-executed.ipynb")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {key: pool.submit(*job) for key, job in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


# ---- grading ----------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_solutions_pass_every_check(runs, name):
    scores = runs[name, "solution"]
    assert len(scores) >= 4
    lost = {q: s["output"] for q, s in scores.items() if s["score"] != s["max_score"]}
    assert not lost, f"the solutions of {name} fail checks: {lost}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_untouched_student_notebook_scores_zero(runs, name):
    scores = runs[name, "student"]
    assert set(scores) == set(runs[name, "solution"])
    assert all(s["score"] == 0 for s in scores.values()), scores
    for question, s in scores.items():
        assert "Not yet" in s["output"], f"{question}'s checks do not say what is missing:\n{s['output']}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_a_partly_solved_notebook_gets_a_partial_score(runs, name):
    scores = runs[name, "partly"]
    for question, s in scores.items():
        expected = s["max_score"] if question in PARTLY_SOLVED else 0
        assert s["score"] == expected, f"{question}: {s['score']} of {s['max_score']}\n{s['output']}"
    total = sum(s["score"] for s in scores.values())
    assert 0 < total < sum(s["max_score"] for s in scores.values())


@pytest.mark.slow
def test_grade_command_prints_scores_per_question(runs, built, capsys):
    scores = runs["webworms", "partly"]
    print(hw.report(Path("webworms.ipynb"), scores, built / "results.json"))
    shown = capsys.readouterr().out
    assert re.search(r"q1: 2 / 2", shown) and re.search(r"q3: 0 / 4", shown)
    assert "AssertionError: Not yet:" in shown


# ---- the student notebook ---------------------------------------------------------------------------
def _outputs(cell):
    text = []
    for output in cell.get("outputs", []):
        text.append("".join(output.get("text", "")))
        text.append("".join(output.get("data", {}).get("text/plain", "")))
    return "".join(text)


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_untouched_student_notebook_runs_to_the_end_and_says_not_yet(runs, name):
    executed = runs[name, "executed"]
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code), "some cells did not run"
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    checks = [cell for cell in code if CHECK_CELL.search(cell.source) and "check_all" not in cell.source]
    assert len(checks) >= 4
    for cell in checks:
        shown = _outputs(cell)
        assert "Not yet" in shown and "Test case failed" in shown, f"{cell.source}:\n{shown}"


def _solution_snippets(master: Path) -> list[str]:
    """Every solution in an otter-assign master: each line in a solution block (code or text), and each
    line marked ``# SOLUTION`` (without the marker) with, when it is an assignment, its right-hand side."""
    snippets, in_block = [], False
    for cell in nbformat.read(master, as_version=4).cells:
        head = cell.source.strip().splitlines()[0].strip() if cell.source.strip() else ""
        if cell.cell_type == "raw":
            in_block = {"# BEGIN SOLUTION": True, "# END SOLUTION": False}.get(head.split(" NO PROMPT")[0], in_block)
            continue
        if cell.cell_type == "markdown":
            if in_block:
                snippets += [line.strip() for line in cell.source.splitlines() if len(line.strip()) >= 12]
            continue
        inline = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped.startswith(("# BEGIN SOLUTION", "# END SOLUTION")):
                inline = stripped.startswith("# BEGIN")
                continue
            if inline and stripped:
                snippets.append(stripped)
            marked = re.match(r"\s*(.*?)\s*# ?SOLUTION( NO PROMPT)?\s*$", line)
            if marked and marked.group(1):
                snippets.append(marked.group(1))
                lhs, _, rhs = marked.group(1).partition("=")
                if rhs and re.fullmatch(r"[\w., ]+", lhs.strip()) and len(rhs.strip()) >= 16:
                    snippets.append(rhs.strip())
    return snippets


def _all_text(notebook) -> str:
    """Sources, outputs and every string in the metadata (the public checks live there)."""
    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)
    parts = [cell.source + "\n" + _outputs(cell) + "\n" + "\n".join(strings(cell.metadata)) for cell in notebook.cells]
    return "\n".join(parts + list(strings(notebook.metadata)))


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_no_solution_appears_in_the_student_versions(built, name):
    snippets = _solution_snippets(hw.SOURCE / f"{name}.ipynb")
    assert len(snippets) >= 10, snippets
    solution = _all_text(nbformat.read(hw.solution_notebook(name, built), as_version=4))
    assert [s for s in snippets if s not in solution] == [], "the scan looks for text the solutions do not have"
    for student in (hw.student_notebook(name, built), hw.book_notebook(name)):
        text = _all_text(nbformat.read(student, as_version=4))
        leaked = [s for s in snippets if s in text]
        assert not leaked, f"{student} shows solutions: {leaked}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_book_shows_the_current_student_version(built, name):
    fresh = nbformat.read(hw.student_notebook(name, built), as_version=4)
    shown = nbformat.read(hw.book_notebook(name), as_version=4)
    assert [(c.cell_type, c.source) for c in shown.cells] == [(c.cell_type, c.source) for c in fresh.cells], (
        f"lessons/homework/{name}.ipynb is out of date: run `python lessons/homework/homework.py publish {name}`")
    assert shown.metadata["otter"]["tests"] == fresh.metadata["otter"]["tests"]
    assert all(c.outputs for c in shown.cells if c.cell_type == "code" and CHECK_CELL.search(c.source)), \
        "the book's copy is stored without outputs: publish it again"


# ---- the checks' messages ---------------------------------------------------------------------------
def _public_checks(built, name, question):
    """The test cases of one question, as a student's notebook runs them."""
    from otter.test_files.exception_test import test_case

    source = nbformat.read(hw.student_notebook(name, built), as_version=4).metadata["otter"]["tests"][question]
    namespace = {}
    exec(compile(source, f"{name}/{question}", "exec"), namespace)
    return [value for value in namespace.values() if isinstance(value, test_case)]


def _failure(built, name, question, **env):
    """The first failing check's message for an answer, or None when every check passes."""
    for case in _public_checks(built, name, question):
        try:
            case.call_func(env)
        except AssertionError as error:
            return str(error)
    return None


@pytest.fixture(scope="module")
def webworm_fits():
    import glmmteach as gt
    data = gt.datasets.load("beall_webworms")
    return {family: gt.glmm(formula, data=data, family=family)
            for formula, family in [("y ~ trt + (1 | block)", "poisson"), ("y ~ trt + (1 | block)", "nbinom2")]} | {
        "no block": gt.glmm("y ~ trt", data=data, family="poisson")}


def test_checks_say_what_is_wrong_with_a_poisson_model(built, webworm_fits):
    assert _failure(built, "webworms", "q2", poisson_fit=webworm_fits["poisson"]) is None
    assert "no block effect: add" in _failure(built, "webworms", "q2", poisson_fit=webworm_fits["no block"])
    assert "family is 'nbinom2'" in _failure(built, "webworms", "q2", poisson_fit=webworm_fits["nbinom2"])
    assert "Not yet: fill in poisson_formula" in _failure(built, "webworms", "q2", poisson_fit=None)


def test_checks_say_what_is_wrong_with_the_residuals(built, webworm_fits):
    from glmmteach.diagnostics import simulate_residuals, test_dispersion, test_zero_inflation

    fit = webworm_fits["poisson"]
    marginal = simulate_residuals(fit, n=250, seed=123, conditional=False)
    assert "use conditional=True" in _failure(built, "webworms", "q3", poisson_res=marginal, poisson_fit=fit)
    assert "use n=250" in _failure(built, "webworms", "q3", poisson_fit=fit,
                                   poisson_res=simulate_residuals(fit, n=50, seed=123, conditional=True))
    res = simulate_residuals(fit, n=250, seed=123, conditional=True)
    answer = dict(poisson_res=res, poisson_fit=fit, poisson_dispersion=test_dispersion(res),
                  poisson_zeros=test_zero_inflation(res))
    assert "look again at the dispersion test" in _failure(built, "webworms", "q3", **answer,
                                                           poisson_overdispersed=False)
    assert _failure(built, "webworms", "q3", **answer, poisson_overdispersed=True) is None


def test_checks_say_what_is_wrong_with_a_turnip_family(built):
    import glmmteach as gt

    turnips = gt.datasets.load("mcconway_turnip").rename(columns={"yield": "yld"})
    formula = "yld ~ gen * date + log(density) + (1 | block)"
    gaussian = gt.glmm(formula, data=turnips, family="gaussian")
    assert "Gaussian model gives every cell the same" in _failure(built, "turnips", "q2", turnip_fit=gaussian)
    inverse = types.SimpleNamespace(family=types.SimpleNamespace(name="Gamma", link="inverse"))
    assert "the link is 'inverse'" in _failure(built, "turnips", "q2", turnip_fit=inverse)
    by_genotype = turnips.groupby("gen", observed=True)["yld"].agg(["mean", "std"])
    assert "(16 rows); it has 2" in _failure(built, "turnips", "q1", cell_stats=by_genotype)


# ---- homework 5c: the cattle ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cattle():
    import glmmteach as gt
    return gt.datasets.load("diggle_cow")


@pytest.fixture(scope="module")
def cows(cattle):
    """The weighings the assignment models: every second day, with its factor, its time and log residuals."""
    import pandas as pd
    import glmmteach as gt

    data = cattle[cattle["day"].isin(np.sort(cattle["day"].unique())[::2])].reset_index(drop=True)
    data["day_f"] = pd.Categorical(data["day"])
    data["t"] = (data["day"] - 122) / 365.25
    independent = gt.glmm("weight ~ iron * infect * day_f", data=data, family=gt.families.Gamma(link="log"))
    data["log_residual"] = np.log(data["weight"]) - independent.predict()
    return data


def _check_says(built, name, question, check, **env):
    """The message of one named check of a question for an answer, or None when it passes."""
    from otter.test_files.exception_test import test_case

    source = nbformat.read(hw.student_notebook(name, built), as_version=4).metadata["otter"]["tests"][question]
    namespace = {}
    exec(compile(source, f"{name}/{question}", "exec"), namespace)
    assert isinstance(namespace.get(check), test_case), f"{question} has no check {check}"
    try:
        namespace[check].call_func(env)
    except AssertionError as error:
        return str(error)
    return None


def _cow_fit(cows, random, **options):
    import glmmteach as gt
    return gt.glmm(f"weight ~ iron * infect * day_f + {random}", data=cows, family=gt.families.Gamma(link="log"),
                   **options)


def test_checks_say_what_is_wrong_with_the_design(built, cattle):
    def says(**changes):
        design = dict(unit="animal", n_units=26, n_days=23,
                      group_sizes=cattle.groupby(["iron", "infect"], observed=True)["animal"].nunique())
        return _failure(built, "cows", "q1", **design | changes)

    assert says() is None
    assert "no treatment was given to a day" in says(unit="day")
    assert "iron is a treatment factor" in says(unit="iron")
    assert "597 is the number of rows" in says(n_units=597)
    assert "numbers of weighings (rows)" in says(group_sizes=cattle.groupby(["iron", "infect"], observed=True).size())
    assert "Group by iron and infect together" in says(
        group_sizes=cattle.groupby("iron", observed=True)["animal"].nunique())
    assert "number of different days" in says(n_days=12)


@pytest.mark.filterwarnings("ignore:singular fit")     # (1 | day_f): the days are fixed effects already
def test_checks_say_what_is_wrong_with_a_first_cow_model(built, cows):
    assert _failure(built, "cows", "q2", animal_fit=_cow_fit(cows, "(1 | animal)")) is None
    by_day = _cow_fit(cows, "(1 | day_f)")
    assert "belong to the experimental units" in _failure(built, "cows", "q2", animal_fit=by_day)
    reml = _cow_fit(cows, "(1 | animal)", reml=True)
    assert "must be fitted by ML" in _failure(built, "cows", "q2", animal_fit=reml)
    assert "Not yet: fill in animal_formula" in _failure(built, "cows", "q2", animal_fit=None)


def test_checks_say_what_is_wrong_with_the_observed_correlations(built, cows):
    def says(observed_corr):
        return _check_says(built, "cows", "q4", "test_observed_corr", observed_corr=observed_corr, cows=cows)

    wide = cows.pivot(index="animal", columns="day", values="log_residual")
    assert says(wide.corr()) is None
    assert "correlations between animals" in says(wide.T.corr())
    assert "not covariances" in says(wide.cov())
    assert "Use the column log_residual" in says(cows.pivot(index="animal", columns="day", values="weight").corr())


def test_checks_say_what_is_wrong_with_the_treatment_means(built, cows):
    import glmmteach as gt

    fits = {"intercept": _cow_fit(cows, "(1 | animal)")}
    fit = fits["intercept"]

    def says(means):
        return _check_says(built, "cows", "q5", "test_last_means", last_means={"intercept": means}, fits=fits)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # the note that day_f interacts with the treatments
        at_781 = gt.emmeans(fit, ["iron", "infect"], at={"day_f": "781"}, type="response")
        on_link = gt.emmeans(fit, ["iron", "infect"], at={"day_f": "781"})
        averaged = gt.emmeans(fit, ["iron", "infect"], type="response")
    assert says(at_781) is None
    assert "ask for type='response'" in says(on_link)
    assert "not those at day 781" in says(averaged)
