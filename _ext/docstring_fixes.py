"""Sphinx extension: repair, for the API pages only, library docstrings that Sphinx cannot read cleanly.

The book builds with warnings as errors, and the API pages are generated from the docstrings of
``glmmteach``. Two docstrings of ``glmmteach/families.py`` make docutils warn:

* the module docstring lists ``y``, ``mu``, ``phi``, ``n`` as an aligned plain-text table, which
  reStructuredText reads as a broken block quote ("Unexpected indentation");
* ``Family``'s docstring has a free paragraph after its ``Parameters`` section, which napoleon reads
  as more parameters ("Field list ends without a blank line").

Each entry below rewrites exactly that text before napoleon sees it (a definition list; a ``Notes``
heading, where numpydoc wants free text after the sections). The words are unchanged. This is a
stopgap reported to the library's authors: once the docstrings are fixed at the source, the old
text no longer matches, the entry does nothing, and this file can be deleted.
"""
from __future__ import annotations

_FAMILIES_TABLE = """\
``y``    the observed response (for the binomial: the number of successes),
``mu``   the mean (for the binomial: the success probability),
``phi``  the dispersion parameter, which always means exactly what glmmTMB's ``sigma()``
         returns for that family (see each class and ``sigma_meaning``),
``n``    the number of binomial trials (other families accept and ignore it)."""

_FAMILIES_DEFINITIONS = """\
``y``
    the observed response (for the binomial: the number of successes),
``mu``
    the mean (for the binomial: the success probability),
``phi``
    the dispersion parameter, which always means exactly what glmmTMB's ``sigma()``
    returns for that family (see each class and ``sigma_meaning``),
``n``
    the number of binomial trials (other families accept and ignore it)."""

#: (what, full name) -> [(old text, new text)]
FIXES = {
    ("module", "glmmteach.families"): [(_FAMILIES_TABLE, _FAMILIES_DEFINITIONS)],
    ("class", "glmmteach.families.Family"): [("\n\nSubclasses implement ",
                                              "\n\nNotes\n-----\nSubclasses implement ")],
}


def _repair(app, what, name, obj, options, lines) -> None:
    fixes = FIXES.get((what, name))
    if not fixes:
        return
    text = "\n".join(lines)
    for old, new in fixes:
        text = text.replace(old, new)
    lines[:] = text.split("\n")


def setup(app):
    # Before napoleon (priority 500) turns the numpydoc sections into reST fields.
    app.connect("autodoc-process-docstring", _repair, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
