"""Build, grade and publish the course homework with otter-grader.

Each assignment is one instructor notebook in ``source/``, in otter-grader's assign format: an
``ASSIGNMENT CONFIG`` raw cell, then questions between ``# BEGIN QUESTION`` / ``# END QUESTION`` raw
cells, each with its solution (lines ending in ``# SOLUTION``, or cells between ``# BEGIN SOLUTION`` /
``# END SOLUTION``) and its checks (test functions between ``# BEGIN TESTS`` / ``# END TESTS``) whose
failures tell the student what is still missing. From it, ``otter assign`` writes

* the student notebook: each solution replaced by ``...``, written answers by a prompt, and the
  public checks stored in the notebook's metadata, so that this one file is all a student needs
  (with glmmteach and otter-grader installed);
* the autograder: the notebook with its solutions, and a zip of every check, which ``otter run``
  uses to grade a submitted notebook question by question, with neither Docker nor a network.

From the repository's root, with the project's Python (``make homework`` runs ``build``):

    python lessons/homework/homework.py build [NAME ...] [--out DIR] [--no-run-tests]
    python lessons/homework/homework.py grade NOTEBOOK [NOTEBOOK ...] [--autograder ZIP] [--out DIR]
    python lessons/homework/homework.py publish [NAME ...]

``build`` writes ``_build/homework/NAME/student/NAME.ipynb`` (to hand out) and
``_build/homework/NAME/autograder/`` (``NAME.ipynb`` with the solutions, ``NAME-autograder.zip``);
it runs the solutions against every check first, unless ``--no-run-tests``.
``grade`` runs a submitted notebook from the top and prints its score per question, and the reason
for each point lost; the full results go to ``_build/homework/graded/<notebook>/results.json``.
``publish`` refreshes the executed student notebooks that the book shows (``lessons/homework/NAME.ipynb``);
run it after changing an assignment (``tests/test_homework.py`` fails while they are out of date).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "source"
ROOT = HERE.parents[1]
OUT = ROOT / "_build" / "homework"
# A cell that runs checks: grader.check("q1"), grader.check_all().
CHECK_CALL = re.compile(r"^\s*grader\.check(_all)?\(", re.MULTILINE)


# ---- where things are ------------------------------------------------------------------------------
def assignments() -> list[str]:
    """The assignments: one instructor notebook ``source/NAME.ipynb`` each."""
    return sorted(path.stem for path in SOURCE.glob("*.ipynb"))


def student_notebook(name: str, out: Path = OUT) -> Path:
    return Path(out) / name / "student" / f"{name}.ipynb"


def solution_notebook(name: str, out: Path = OUT) -> Path:
    return Path(out) / name / "autograder" / f"{name}.ipynb"


def autograder_zip(name: str, out: Path = OUT) -> Path:
    return Path(out) / name / "autograder" / f"{name}-autograder.zip"


def book_notebook(name: str) -> Path:
    """The executed student notebook that the book shows (and nbval checks)."""
    return HERE / f"{name}.ipynb"


def _otter(args: list[str]) -> str:
    """Run otter-grader's command line with this Python; its output, or an error that shows it."""
    done = subprocess.run([sys.executable, "-m", "otter", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"otter {' '.join(args)} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


# ---- build -----------------------------------------------------------------------------------------
def build(name: str, out: Path = OUT, run_tests: bool = True) -> Path:
    """``otter assign`` one assignment into ``out/NAME``; the autograder zip gets a fixed name."""
    source = SOURCE / f"{name}.ipynb"
    if not source.is_file():
        raise SystemExit(f"no assignment {name!r}; the assignments are: {', '.join(assignments())}")
    dest = Path(out).resolve() / name
    shutil.rmtree(dest, ignore_errors=True)
    _otter(["assign", *([] if run_tests else ["--no-run-tests"]), str(source), str(dest)])
    # otter names the zip NAME-autograder_<timestamp>.zip; one fixed name is easier to grade with
    (made,) = (dest / "autograder").glob(f"{name}-autograder_*.zip")
    made.rename(autograder_zip(name, dest.parent))
    return dest


# ---- grade -----------------------------------------------------------------------------------------
def assignment_of(notebook: Path) -> str:
    """The assignment a notebook belongs to: otter's ``assignment_name`` in its metadata."""
    metadata = json.loads(Path(notebook).read_text(encoding="utf-8")).get("metadata", {})
    name = metadata.get("otter", {}).get("assignment_name")
    if name not in assignments():
        raise SystemExit(f"{notebook}: not a notebook of one of the assignments ({', '.join(assignments())}); "
                         "give the autograder zip with --autograder")
    return name


def grade(notebook: Path, autograder: Path | None = None, out: Path | None = None,
          show: bool = True) -> dict[str, dict]:
    """Grade one submitted notebook with ``otter run``: ``{question: {"score", "max_score", "output"}}``."""
    notebook = Path(notebook).resolve()
    if autograder is None:
        name = assignment_of(notebook)
        autograder = autograder_zip(name)
        if not autograder.is_file():
            build(name, run_tests=False)
    out = Path(out) if out is not None else OUT / "graded" / notebook.stem
    out.mkdir(parents=True, exist_ok=True)
    _otter(["run", "--no-logo", "-a", str(Path(autograder).resolve()), "-o", str(out.resolve()), str(notebook)])
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    scores = {test["name"]: {"score": float(test["score"]), "max_score": float(test["max_score"]),
                             "output": test.get("output", "")}
              for test in results["tests"] if "max_score" in test}
    if show:
        print(report(notebook, scores, out / "results.json"))
    return scores


def report(notebook: Path, scores: dict[str, dict], results: Path) -> str:
    """Score per question, and for each point lost the checks' own words."""
    total, possible = (sum(s[key] for s in scores.values()) for key in ("score", "max_score"))
    lines = [f"{_shown(notebook)}: {total:g} / {possible:g}"]
    for question, s in scores.items():
        lines.append(f"  {question}: {s['score']:g} / {s['max_score']:g}")
        if s["score"] < s["max_score"]:
            # otter's output ends each failed check with the exception, e.g. "AssertionError: Not yet: ..."
            reasons = [line.strip() for line in s["output"].splitlines()
                       if re.match(r"\w*(Error|Exception):", line.strip())]
            lines.extend(f"      {reason}" for reason in dict.fromkeys(reasons))
    lines.append(f"  (results: {_shown(results)})")
    return "\n".join(lines)


# ---- publish ---------------------------------------------------------------------------------------
def publish(name: str) -> Path:
    """Execute the fresh student notebook and store it, with its outputs, where the book shows it."""
    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as tmp:
        build(name, Path(tmp), run_tests=False)
        path = student_notebook(name, Path(tmp))
        notebook = nbformat.read(path, as_version=4)
        # run where the notebook is: otter.Notebook() reads the checks from it, and writes its log there
        NotebookClient(notebook, timeout=600, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    # The book's page shows the questions as handed out; the checks' "Not yet" reports of a blank notebook
    # stay in the file (nbval compares them) but not on the page.
    for cell in notebook.cells:
        if cell.cell_type == "code" and CHECK_CALL.search(cell.source):
            tags = cell.metadata.setdefault("tags", [])
            if "remove-output" not in tags:
                tags.append("remove-output")
    nbformat.write(notebook, book_notebook(name))
    return book_notebook(name)


def _shown(path: Path) -> str:
    """A path as short as it can be said from the current directory."""
    path = Path(os.path.abspath(path))
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


# ---- command line ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="homework.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="student notebooks and autograders into _build/homework")
    build_cmd.add_argument("names", nargs="*", metavar="NAME", help="assignments (default: all)")
    build_cmd.add_argument("--out", type=Path, default=OUT, help="output directory (default: _build/homework)")
    build_cmd.add_argument("--no-run-tests", action="store_true", help="skip running the solutions against the checks")
    grade_cmd = commands.add_parser("grade", help="score submitted notebooks, per question")
    grade_cmd.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    grade_cmd.add_argument("--autograder", type=Path, help="the autograder zip (default: the assignment's, built if missing)")
    grade_cmd.add_argument("--out", type=Path, help="directory for results.json (default: _build/homework/graded/<notebook>)")
    publish_cmd = commands.add_parser("publish", help="refresh the executed student notebooks the book shows")
    publish_cmd.add_argument("names", nargs="*", metavar="NAME", help="assignments (default: all)")
    args = parser.parse_args(argv)

    if args.command == "build":
        for name in args.names or assignments():
            dest = build(name, args.out, run_tests=not args.no_run_tests)
            checked = "" if args.no_run_tests else " (the solutions pass every check)"
            print(f"{name}{checked}\n  student notebook: {_shown(student_notebook(name, dest.parent))}\n"
                  f"  autograder:       {_shown(autograder_zip(name, dest.parent))}\n"
                  f"  solutions:        {_shown(solution_notebook(name, dest.parent))}")
        print(f"Grade a submission: {_shown(Path(sys.executable))} {_shown(Path(__file__))} grade NOTEBOOK")
    elif args.command == "grade":
        if args.out is not None and len(args.notebooks) > 1:
            parser.error("--out takes one notebook at a time")
        for notebook in args.notebooks:
            grade(notebook, args.autograder, args.out)
    else:
        for name in args.names or assignments():
            print(f"{name}: {publish(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
