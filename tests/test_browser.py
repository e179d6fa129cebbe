"""The Day 5 pages in a real browser: the math is typeset by MathJax and every figure loads.

Checked: the front page, the Day 5 chapters (lessons 01-08) and the API reference, whose docstrings carry formulas.

Headless Chromium (Debian's ``chromium`` package) opens the built book from a local HTTP server on
127.0.0.1. One small checking page, served beside the book, loads each Day 5 page in an iframe (same
origin, so its script may look inside), waits for MathJax's first typesetting and for the images, and
writes what it found into its own DOM as JSON; ``--dump-dom`` prints that DOM once the scripts have run.

Skipped, with a message, when Chromium is not installed or the book is not built (`make book`).
`.ci/run` installs Chromium with apt and builds the book first, so CI runs this test.
"""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

HTML = Path(__file__).resolve().parent.parent / "_build" / "html"
PAGES = ("lessons/intro.html", "lessons/0[1-8]_*.html", "lessons/api.html", "lessons/api/*.html")
CHECK_PAGE = "/__browser_check__.html"
CHROMIUM = next((path for path in map(shutil.which, ("chromium", "chromium-browser")) if path), None)

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium); "
                                                "the browser test of the book is skipped"),
    pytest.mark.skipif(not (HTML / "index.html").exists(),
                       reason="the book is not built (run `make book`); the browser test is skipped"),
]

# For each page: load it, wait for MathJax's startup promise (it resolves after the first typesetting),
# make every image load now (not lazily) and wait for it, then record what the reader would see.
CHECK_SCRIPT = """
async function inspect(page) {
  const frame = document.createElement("iframe");
  frame.style.width = "1280px";
  frame.style.height = "1024px";
  const loaded = new Promise(resolve => { frame.onload = resolve; });
  frame.src = page;
  document.body.appendChild(frame);
  await loaded;
  const win = frame.contentWindow, doc = frame.contentDocument;
  let mathjax = "absent";
  if (win.MathJax && win.MathJax.startup && win.MathJax.startup.promise) {
    await win.MathJax.startup.promise;
    mathjax = "typeset";
  }
  const images = Array.from(doc.images);
  await Promise.all(images.map(img => {
    img.loading = "eager";
    return img.complete ? null : new Promise(resolve => { img.onload = img.onerror = resolve; });
  }));
  const result = {
    page: page,
    mathjax: mathjax,
    math_sources: doc.querySelectorAll(".math").length,
    math_rendered: doc.querySelectorAll("mjx-container").length,
    math_errors: doc.querySelectorAll("mjx-merror").length,
    images: images.map(img => ({src: img.getAttribute("src"), width: img.naturalWidth,
                                alt: img.getAttribute("alt") || ""})),
  };
  frame.remove();
  return result;
}
(async () => {
  const pages = JSON.parse(decodeURIComponent(location.hash.slice(1)));
  const results = [];
  for (const page of pages) {
    try { results.push(await inspect(page)); }
    catch (error) { results.push({page: page, error: String(error)}); }
  }
  const out = document.createElement("pre");
  out.id = "results";
  out.textContent = JSON.stringify(results);
  document.body.appendChild(out);
})();
"""


class _BookHandler(SimpleHTTPRequestHandler):
    """Serves the built book, plus the checking page at CHECK_PAGE."""

    def do_GET(self):
        if self.path.split("#")[0].split("?")[0] == CHECK_PAGE:
            body = f"<!DOCTYPE html><html><body><script>{CHECK_SCRIPT}</script></body></html>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_BookHandler, directory=str(HTML)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _pages() -> list[str]:
    return [str(p.relative_to(HTML)) for pattern in PAGES for p in sorted(HTML.glob(pattern))]


@pytest.fixture(scope="module")
def rendered(server):
    pages = ["/" + page for page in _pages()]
    assert any("lessons/0" in page for page in pages), f"no Day 5 chapters (lessons/0*.html) in {HTML}"
    url = f"{server}{CHECK_PAGE}#{quote(json.dumps(pages))}"
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-extensions",
             f"--user-data-dir={profile}", "--virtual-time-budget=30000", "--dump-dom", url],
            capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    found = re.search(r'<pre id="results">(.*?)</pre>', run.stdout, re.DOTALL)
    assert found, (f"Chromium did not finish checking the pages (exit code {run.returncode}).\n"
                   f"stderr: {run.stderr[-2000:]}\nDOM: {run.stdout[-2000:]}")
    results = json.loads(html.unescape(found.group(1)))
    return {r["page"].lstrip("/"): r for r in results}


def test_every_page_was_checked(rendered):
    assert sorted(rendered) == sorted(_pages())
    errors = {page: r["error"] for page, r in rendered.items() if "error" in r}
    assert not errors, f"pages the browser could not inspect: {errors}"


@pytest.mark.parametrize("page", _pages() if (HTML / "index.html").exists() else [])
def test_math_is_rendered(rendered, page):
    r = rendered[page]
    if r["math_sources"] == 0:
        return   # a page without equations (a placeholder, say) has nothing to typeset
    assert r["mathjax"] == "typeset", f"{page}: MathJax did not load"
    assert r["math_rendered"] >= r["math_sources"], (
        f"{page}: {r['math_sources']} equations, only {r['math_rendered']} typeset by MathJax")
    assert r["math_errors"] == 0, f"{page}: {r['math_errors']} equations with TeX errors"


@pytest.mark.parametrize("page", _pages() if (HTML / "index.html").exists() else [])
def test_figures_load(rendered, page):
    r = rendered[page]
    broken = [img["src"] for img in r["images"] if img["width"] == 0]
    assert not broken, f"{page}: images that did not load: {broken}"


def test_the_day5_chapters_have_math_and_figures(rendered):
    chapters = [r for page, r in rendered.items() if page.startswith("lessons/0")]
    assert sum(r["math_rendered"] for r in chapters) > 0, "no equation typeset in any Day 5 chapter"
    assert sum(len(r["images"]) for r in chapters) > 0, "no figure in any Day 5 chapter"
