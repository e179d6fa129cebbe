"""The API reference documents every public attribute and method of the objects students use most.

The fitted model (GlmmFit), the scaled residuals (ScaledResiduals), a test's result (TestResult) and a bootstrap
likelihood-ratio test's (BootstrapLRT): each public name has a docstring (``#:`` comments for dataclass fields,
which Sphinx autodoc reads), and each docstring names the R equivalent in a line "R: ...". For attributes and
properties the first line has no colon outside backticks: Sphinx's napoleon would read "words: more" there as a
type ("Type: words").
The built page (tests/test_browser.py) is checked for an entry per name too.
"""
from __future__ import annotations

import dataclasses
import inspect
import re

import pytest

import glmmteach
from glmmteach.comparison import BootstrapLRT
from glmmteach.diagnostics import ScaledResiduals, TestResult
from glmmteach.results import GlmmFit

pycode = pytest.importorskip("sphinx.pycode", reason="Sphinx (the book's extra) reads the #: comments")

CLASSES = [GlmmFit, ScaledResiduals, TestResult, BootstrapLRT]
# Named in the course as the ones students use most; every other public name is checked as well.
NAMED = ["fixef", "se", "vcov", "varcorr", "ranef", "ranef_corr", "sigma", "loglik", "aic", "bic", "nobs",
         "predict", "residuals", "simulate", "summary"]


def public_names(cls) -> list[str]:
    names = {n for n in dir(cls) if not n.startswith("_")}
    if dataclasses.is_dataclass(cls):
        names |= {f.name for f in dataclasses.fields(cls)}
    return sorted(names)


def docstring(cls, name: str) -> str:
    comments = pycode.ModuleAnalyzer.for_module(cls.__module__).find_attr_docs()
    if (cls.__name__, name) in comments:
        return "\n".join(comments[(cls.__name__, name)]).strip()
    member = inspect.getattr_static(cls, name)
    if isinstance(member, (classmethod, staticmethod)):
        member = member.__func__
    if inspect.isfunction(member) or isinstance(member, property):
        return inspect.cleandoc(member.__doc__ or "")
    return ""


def is_attribute(cls, name: str) -> bool:
    member = inspect.getattr_static(cls, name, None)
    return not (inspect.isfunction(member) or isinstance(member, (classmethod, staticmethod)))


def test_the_named_attributes_exist():
    assert set(NAMED) <= set(public_names(GlmmFit))


@pytest.mark.parametrize("cls, name", [(c, n) for c in CLASSES for n in public_names(c)],
                         ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_documented_with_its_r_equivalent(cls, name):
    doc = docstring(cls, name)
    assert doc, f"{cls.__name__}.{name} has no docstring (a dataclass field needs a #: comment above it)"
    assert re.search(r"(^|\n)\s*R: |\(R: ", doc), f"{cls.__name__}.{name} does not name its R equivalent (R: ...)"
    if is_attribute(cls, name):
        first = re.sub(r"(:\w+:)?`[^`]*`", "code", doc.splitlines()[0])
        assert ":" not in first, (f"{cls.__name__}.{name}: a colon in the first line would render as a "
                                  f"'Type:' field: {doc.splitlines()[0]!r}")


def test_glmm_is_the_documented_function():
    assert glmmteach.glmm is glmmteach.fit.glmm   # the book documents it once, as glmmteach.glmm
