"""The course data, loaded from the installed package.

The CSV files live in the top-level folder ``datasets/`` of the repository (its ``README.md`` gives each
file's source, license and columns). They are installed inside the package as ``glmmteach._data``,
so that ``load`` works from any directory once the package is installed.

Examples
--------
>>> import glmmteach as gt
>>> gt.datasets.names()
['beall_webworms', 'crowder_seeds', 'diggle_cow', 'fecal_egg_counts', 'fish_vaccines', 'mcconway_turnip']
>>> seeds = gt.datasets.load("crowder_seeds")
>>> seeds["gen"].cat.categories.tolist()
['O73', 'O75']
"""
from __future__ import annotations

import importlib.resources
from importlib.resources.abc import Traversable
from pathlib import Path

import pandas as pd

__all__ = ["names", "load"]


def _data_dir() -> Traversable:
    """The folder that holds the CSV files.

    Installed (editable or not), that is the package ``glmmteach._data``. In a source checkout that
    was never installed, it is the repository's own ``datasets/`` folder beside ``glmmteach/``.
    """
    try:
        return importlib.resources.files("glmmteach._data")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "datasets"


def names() -> list[str]:
    """The names of the data sets that ship with glmmteach.

    Returns
    -------
    list of str
        Sorted names, each one a valid argument of `load`.

    Examples
    --------
    >>> import glmmteach as gt
    >>> "crowder_seeds" in gt.datasets.names()
    True
    """
    return sorted(
        entry.name.removesuffix(".csv")
        for entry in _data_dir().iterdir()
        if entry.name.endswith(".csv")
    )


def load(name: str) -> pd.DataFrame:
    """Load one of the course data sets as a pandas DataFrame.

    Text columns become pandas categoricals whose categories are sorted, as R's ``factor()`` does
    (sorted as plain strings), so the first category is the reference level of treatment contrasts.
    Numeric columns stay numeric, even where they code a factor (``vaccine`` or ``fish`` in
    ``fish_vaccines``): turn them into factors in the model formula, ``factor(vaccine)``, or with
    ``df[col].astype("category")``.

    Parameters
    ----------
    name : str
        One of `names()`, e.g. ``"crowder_seeds"`` or ``"fish_vaccines"``.

    Returns
    -------
    pandas.DataFrame
        A fresh copy; changing it does not change what the next call returns.

    Raises
    ------
    ValueError
        If `name` is not one of `names()`; the message lists the allowed names.

    Examples
    --------
    >>> import glmmteach as gt
    >>> seeds = gt.datasets.load("crowder_seeds")
    >>> seeds.shape
    (21, 5)
    >>> str(seeds["extract"].dtype)
    'category'
    """
    allowed = names()
    if name not in allowed:
        raise ValueError(
            f"unknown data set {name!r}; glmmteach has these: {', '.join(allowed)}"
        )
    with (_data_dir() / f"{name}.csv").open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle)
    return _text_to_factors(frame)


def _text_to_factors(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn every text column into a categorical with sorted categories (R's ``factor()``)."""
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            levels = sorted(values.dropna().unique())
            frame[column] = pd.Categorical(values, categories=levels)
    return frame
