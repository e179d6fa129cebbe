"""Tests of glmmteach.datasets: the course data, and that they ship inside the installed package."""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pandas as pd
import pytest

import glmmteach as gt

REPO = Path(__file__).resolve().parent.parent
COURSE_DATA = ["beall_webworms", "crowder_seeds", "diggle_cow", "fecal_egg_counts", "fish_vaccines",
               "mcconway_turnip"]


def test_names_lists_the_course_data_sorted():
    assert gt.datasets.names() == COURSE_DATA


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("crowder_seeds", (21, 5)),
        ("fish_vaccines", (2000, 6)),
        ("beall_webworms", (1300, 7)),
        ("mcconway_turnip", (64, 5)),
        ("fecal_egg_counts", (191, 9)),
        ("diggle_cow", (597, 5)),
    ],
)
def test_load_gives_the_whole_file_with_no_missing_values(name, shape):
    frame = gt.datasets.load(name)
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape == shape
    assert not frame.isna().any().any()


@pytest.mark.parametrize("name", COURSE_DATA)
def test_text_columns_are_categoricals_with_sorted_levels(name):
    frame = gt.datasets.load(name)
    for column in frame.columns:
        values = frame[column]
        assert not pd.api.types.is_object_dtype(values), column
        if isinstance(values.dtype, pd.CategoricalDtype):
            levels = list(values.cat.categories)
            assert levels == sorted(levels), column
            assert not values.cat.ordered, column
            assert set(levels) == set(values.unique()), column
        else:
            assert pd.api.types.is_numeric_dtype(values), column


def test_crowder_seeds_reference_levels_are_the_first_in_sorted_order():
    seeds = gt.datasets.load("crowder_seeds")
    assert list(seeds["gen"].cat.categories) == ["O73", "O75"]
    assert list(seeds["extract"].cat.categories) == ["bean", "cucumber"]
    # Sorted as strings, as R's factor(): P10 comes before P2.
    assert list(seeds["plate"].cat.categories[:3]) == ["P1", "P10", "P11"]
    assert seeds["germ"].dtype.kind == "i" and seeds["n"].dtype.kind == "i"
    assert (seeds["germ"] <= seeds["n"]).all()


def test_fish_vaccines_quoted_numbers_stay_numeric():
    fish = gt.datasets.load("fish_vaccines")
    for column in ["sample", "day", "vaccine", "fish", "jaw", "wt"]:
        assert fish[column].dtype.kind == "i", column
    assert sorted(fish["day"].unique()) == [0, 82, 246, 505, 901]
    assert sorted(fish["vaccine"].unique()) == [1, 2, 3, 4]
    assert fish["fish"].nunique() == 400
    assert (fish.groupby("fish")["jaw"].nunique() == 1).all()


def test_diggle_cow_is_the_agridat_file_less_its_missing_weight():
    """26 animals in a 2 x 2 of iron by infection, each weighed on the same 23 days; the source's one NA
    (A04 on day 445) is the only weighing left out."""
    cows = gt.datasets.load("diggle_cow")
    assert cows["animal"].nunique() == 26 and cows["day"].nunique() == 23
    assert cows["weight"].dtype.kind == "i" and cows["day"].dtype.kind == "i"
    assert list(cows["iron"].cat.categories) == ["Iron", "NoIron"]
    assert list(cows["infect"].cat.categories) == ["Infected", "NonInfected"]
    per_animal = cows.groupby("animal", observed=True)
    assert (per_animal[["iron", "infect"]].nunique() == 1).all().all(), "treatment constant within animal"
    counts = per_animal.size()
    assert counts.drop("A04").eq(23).all() and counts["A04"] == 22
    assert 445 not in cows.loc[cows["animal"] == "A04", "day"].to_list()
    groups = per_animal[["iron", "infect"]].first().value_counts()
    assert groups[("Iron", "Infected")] == 10 and groups[("Iron", "NonInfected")] == 3
    assert groups[("NoIron", "Infected")] == 9 and groups[("NoIron", "NonInfected")] == 4


def test_load_returns_a_fresh_copy():
    first = gt.datasets.load("crowder_seeds")
    first.loc[0, "germ"] = -1
    assert gt.datasets.load("crowder_seeds").loc[0, "germ"] != -1


@pytest.mark.parametrize("bad", ["crowder", "crowder_seeds.csv", "", "../pyproject"])
def test_unknown_name_raises_a_value_error_listing_the_names(bad):
    with pytest.raises(ValueError) as info:
        gt.datasets.load(bad)
    message = str(info.value)
    assert repr(bad) in message
    for name in COURSE_DATA:
        assert name in message


def test_the_data_readme_describes_every_file():
    readme = (REPO / "datasets" / "README.md").read_text(encoding="utf-8")
    for name in COURSE_DATA:
        assert f"`{name}.csv`" in readme
        for column in pd.read_csv(REPO / "datasets" / f"{name}.csv", nrows=0).columns:
            assert f"`{column}`" in readme, (name, column)


# --- the data ship with a real (non-editable) install -----------------------------------------

# What a wheel is built from: the files pyproject.toml names. Building from a copy keeps build/ and
# *.egg-info out of the repository.
_SOURCES = ["pyproject.toml", "README.md", "LICENSE", "glmmteach", "datasets"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # No PYTHONPATH from the caller, so that only the install under test can provide glmmteach.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{args}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_loads_the_data(tmp_path):
    """Build a wheel, install it (offline, no dependencies) into a new virtual environment, and load
    the data from a directory that is not the repository.

    The new environment borrows this interpreter's site-packages (numpy, pandas, ...) through a
    ``.pth`` file, so nothing is downloaded; ``.pth`` files inside that borrowed folder, such as the
    hook of an editable install of glmmteach, are not run, so the wheel's copy is the one imported.
    """
    source = tmp_path / "source"
    source.mkdir()
    for item in _SOURCES:
        if (REPO / item).is_dir():
            shutil.copytree(REPO / item, source / item,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / item, source / item)

    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "--no-build-isolation",
          "--wheel-dir", str(wheels), str(source)], cwd=tmp_path)
    (wheel,) = wheels.glob("glmmteach-*.whl")

    env_dir = tmp_path / "fresh-venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", str(wheel)], cwd=tmp_path)

    fresh_site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                      cwd=tmp_path).stdout.strip()
    borrowed = [p for p in [*site.getsitepackages(), site.getusersitepackages()] if Path(p).is_dir()]
    Path(fresh_site, "borrowed_site_packages.pth").write_text("\n".join(borrowed) + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import glmmteach as gt; print(gt.__file__); print(gt.datasets.names()); "
        "seeds = gt.datasets.load('crowder_seeds'); print(seeds.shape, seeds['gen'].dtype)"
    )
    out = _run([str(python), "-c", script], cwd=elsewhere).stdout.splitlines()
    assert Path(out[0]).is_relative_to(env_dir), f"imported glmmteach from {out[0]}, not the wheel"
    assert out[1] == str(COURSE_DATA)
    assert out[2] == "(21, 5) category"
