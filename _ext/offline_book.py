"""Sphinx extension: keep the built book free of anything fetched from the internet.

Jupyter Book 1 always loads sphinx-thebe, which writes the address of thebe's JavaScript on a CDN into
every page, to fetch it when a reader presses a "launch" button. The book has no such button
(``launch_buttons.thebe: false``), so this drops thebe's scripts, stylesheet and (inert) settings
block from the pages.

Any other script or stylesheet that would come from another host is reported as a warning, which
``make book`` (``--warningiserror``) turns into a failed build, so that it is fixed at its source
(for example by a local copy, as MathJax is) rather than found later in the browser.
"""
from __future__ import annotations

import os
import re

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

_EXTERNAL = re.compile(r"^(?:https?:)?//", re.IGNORECASE)


def _is_thebe(asset) -> bool:
    filename = os.fspath(asset.filename or "")
    body = str(asset.attributes.get("body", ""))
    return "sphinx-thebe" in filename or "THEBE_JS_URL" in body


def _thebe_wanted(app) -> bool:
    return bool(app.config.html_theme_options.get("launch_buttons", {}).get("thebe"))


def _drop_thebe_settings(app, doctree, docname) -> None:
    if _thebe_wanted(app):
        return
    for node in list(doctree.findall(nodes.raw)):
        if "text/x-thebe-config" in node.astext():
            node.parent.remove(node)


def _keep_local(app, pagename, templatename, context, doctree) -> None:
    if _thebe_wanted(app):
        return
    for key in ("script_files", "css_files"):
        assets = context.get(key)
        if assets is None:
            continue
        assets[:] = [asset for asset in assets if not _is_thebe(asset)]
        for asset in assets:
            if _EXTERNAL.match(os.fspath(asset.filename or "")):
                logger.warning(
                    "page %s loads %s from the internet; the book must work offline",
                    pagename, asset.filename, type="offline_book",
                )


def setup(app):
    # After sphinx-thebe's own handler (default priority 500) has added its block.
    app.connect("doctree-resolved", _drop_thebe_settings, priority=900)
    app.connect("html-page-context", _keep_local)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
