"""The built book loads nothing from the internet: no script, stylesheet, font or iframe from another host.

Skipped until `make book` has written _build/html. A cheap check of the HTML text, not a browser.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

HTML = Path(__file__).resolve().parent.parent / "_build" / "html"

pytestmark = pytest.mark.skipif(
    not (HTML / "index.html").exists(), reason="the book is not built (run `make book`)"
)

# Tags whose URL the browser fetches as the page loads, and the attribute that holds it.
_FETCHED = re.compile(
    r"<(?:script|link|img|iframe|source|audio|video|embed)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']",
    re.IGNORECASE,
)
_SCRIPT_BODY = re.compile(r"<script\b[^>]*>(.*?)</script>", re.IGNORECASE | re.DOTALL)
# CSS url(...) and @import of another host, in <style> blocks or in the site's own stylesheets.
_CSS_URL = re.compile(r"(?:url\(\s*[\"']?|@import\s+[\"'])((?:https?:)?//[^\"')\s]+)", re.IGNORECASE)
_EXTERNAL = re.compile(r"^(?:https?:)?//", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s\"'<>)]+", re.IGNORECASE)
# XML namespaces are names, not addresses a browser fetches.
_NAMESPACE = re.compile(r"^https?://www\.w3\.org/", re.IGNORECASE)


def _pages() -> list[Path]:
    return sorted(HTML.rglob("*.html"))


def _external_urls(text: str) -> set[str]:
    urls = {u for u in _FETCHED.findall(text) if _EXTERNAL.match(u)}
    urls |= set(_CSS_URL.findall(text))
    for body in _SCRIPT_BODY.findall(text):
        urls |= {u for u in _URL.findall(body) if not _NAMESPACE.match(u)}
    return urls


def test_the_book_has_pages():
    assert _pages()


def test_no_page_fetches_from_another_host():
    external = {}
    for page in _pages():
        urls = _external_urls(page.read_text(encoding="utf-8", errors="replace"))
        if urls:
            external[str(page.relative_to(HTML))] = sorted(urls)
    assert not external, f"pages that load from the internet: {external}"


def test_no_stylesheet_imports_from_another_host():
    external = {}
    for sheet in sorted((HTML / "_static").rglob("*.css")):
        urls = _CSS_URL.findall(sheet.read_text(encoding="utf-8", errors="replace"))
        if urls:
            external[str(sheet.relative_to(HTML))] = sorted(set(urls))
    assert not external, f"stylesheets that load from the internet: {external}"


def test_mathjax_is_served_from_the_build():
    checked = 0
    for page in _pages():
        text = page.read_text(encoding="utf-8", errors="replace")
        for src in re.findall(r"<script\b[^>]*\bsrc=[\"']([^\"']*mathjax[^\"']*)[\"']", text, re.I):
            assert "_static/mathjax/" in src, (page, src)
            assert (page.parent / src.split("?")[0]).resolve().is_file(), (page, src)
            checked += 1
    assert checked, "no page loads MathJax, yet the front page has equations"
