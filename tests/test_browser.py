"""The book's pages in a real browser, as a student meets them.

Checked on the front page, the chapters (lessons 01-09), the API reference and the homework, at a desktop
width of 1400 px: the math is typeset by MathJax and every figure loads, with a description as its alt text
(not a file path); on the chapters no code or output block is wider than its column, and every figure is drawn
sharp (SVG, or a bitmap with >= 1.5 image pixels per displayed pixel); the homework pages have a heading per
question and show no failed-check report. At 1400 px and at a phone width of
400 px the page has one search box and no empty bar across its top; at 400 px the menu button opens the
chapter list, and a click beside the list closes it. The API reference has an entry for every public attribute
and method of the fitted model, of the residuals and of a test's result.

Headless Chromium (Debian's ``chromium`` package) opens the built book from a local HTTP server on
127.0.0.1. One small checking page, served beside the book, loads each page in an iframe (same
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
PAGES = ("lessons/intro.html", "lessons/[01][0-9]_*.html", "lessons/api.html", "lessons/api/*.html",
         "lessons/homework/*.html")
# The chapters: their code and figures are held to the width and sharpness rules.
LESSONS = "lessons/[01][0-9]_*.html"
# The chapters from diagnosis to answers (10 onwards): their numbers come from glue references and their
# figures are numbered and cited.
ANSWERS = "lessons/1[0-9]_*.html"
DESKTOP, PHONE = 1400, 400
# A figure on a lesson page has at least this many image pixels per CSS pixel it is displayed at.
SHARPNESS = 1.5
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
function load(page, width, height) {
  const frame = document.createElement("iframe");
  frame.style.width = width + "px";
  frame.style.height = height + "px";
  const loaded = new Promise(resolve => { frame.onload = resolve; });
  frame.src = page;
  document.body.appendChild(frame);
  return loaded.then(() => frame);
}
const settle = () => new Promise(resolve => setTimeout(resolve, 300));

// A code or output block is too wide when its content scrolls sideways or it sticks out of the column.
function wideBlocks(doc) {
  const article = doc.querySelector("article.bd-article") || doc.body;
  const column = article.getBoundingClientRect();
  const blocks = article.querySelectorAll(
    "div.highlight pre, div.cell_output > div.output, div.cell_output table, div.cell_output pre");
  return Array.from(blocks).filter(el => el.getBoundingClientRect().width > 0).map(el => ({
    kind: el.tagName.toLowerCase() + "." + (el.className || "").split(" ")[0],
    scroll: el.scrollWidth, client: el.clientWidth,
    right: Math.round(el.getBoundingClientRect().right), column: Math.round(column.right),
    text: (el.textContent || "").trim().slice(0, 80),
  })).map(b => Object.assign(b, {wide: b.scroll > b.client + 1 || b.right > b.column + 1}));
}

// Is this element what the reader sees at its centre (not hidden, covered or off screen)?
function seen(win, el) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) return false;
  const x = r.left + Math.min(r.width / 2, 20), y = r.top + r.height / 2;
  if (x < 0 || y < 0 || x > win.innerWidth || y > win.innerHeight) return false;
  const top = win.document.elementFromPoint(x, y);
  return !!top && (top === el || el.contains(top) || top.contains(el));
}

// Laid out and not hidden (on screen or a scroll away).
function shown(win, el) {
  const r = el.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && win.getComputedStyle(el).visibility !== "hidden";
}

// The search boxes and buttons a reader can see, and the height of a top bar above the page (0: none).
function chrome(win, doc) {
  const searches = Array.from(doc.querySelectorAll(".search-button-field, .search-button, form.bd-search"))
    .filter(el => shown(win, el)).length;
  const bar = Array.from(doc.querySelectorAll("header.bd-header, #pst-header")).filter(el => shown(win, el));
  return {searches: searches, top_bar: bar.length ? Math.round(bar[0].getBoundingClientRect().height) : 0};
}

async function inspect(page) {
  const frame = await load(page, %(desktop)d, 1024);
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
  const article = doc.querySelector("article.bd-article");
  const blocks = wideBlocks(doc);
  const result = {
    page: page,
    mathjax: mathjax,
    math_sources: doc.querySelectorAll(".math").length,
    math_rendered: doc.querySelectorAll("mjx-container").length,
    math_errors: doc.querySelectorAll("mjx-merror").length,
    images: images.map(img => ({src: img.getAttribute("src"), width: img.naturalWidth,
                                alt: img.getAttribute("alt") || "",
                                shown: img.getBoundingClientRect().width,
                                in_article: !!(article && article.contains(img))})),
    blocks: blocks.length,
    tables: article ? article.querySelectorAll("div.cell_output table").length : 0,
    wide: blocks.filter(b => b.wide),
    ids: Array.from(doc.querySelectorAll("dt[id]")).map(dt => dt.id),
    chrome: chrome(win, doc),
    headings: Array.from(doc.querySelectorAll("article h2")).map(h => h.textContent.trim()),
    check_failures: article ? (article.textContent.match(/❌|AssertionError|Test case failed/g) || []).length : 0,
    // MyST roles left as text (a glue reference or a cross-reference that did not resolve)
    raw_roles: article ? (article.textContent.match(/\\{(glue|numref|doc|ref)[^}]*\\}`/g) || []).length : 0,
    captions: doc.querySelectorAll("article figure .caption-number").length,
    figure_links: doc.querySelectorAll('article a.reference.internal[href^="#fig-"]').length,
    // The numbered figures (their ids), the figures the text links to, and the HTML tables in the outputs.
    figure_ids: Array.from(doc.querySelectorAll("article figure[id]")).map(f => f.id),
    figure_hrefs: Array.from(doc.querySelectorAll('article a.reference.internal[href^="#"]'))
      .map(a => a.getAttribute("href").slice(1)),
    html_tables: article ? article.querySelectorAll("div.cell_output table").length : 0,
  };
  frame.remove();
  return result;
}

// At a phone width: the menu button shows the chapter list; a click beside the list closes it.
async function menu(page) {
  const frame = await load(page, %(phone)d, 800);
  const win = frame.contentWindow, doc = frame.contentDocument;
  // The sidebar slides in; headless Chromium's virtual clock does not run CSS transitions, so they are
  // switched off and the test sees the state the slide ends in.
  const still = doc.createElement("style");
  still.textContent = "*, *::before, *::after { transition: none !important; animation: none !important; }";
  doc.head.appendChild(still);
  await settle();
  const chapters = () => Array.from(doc.querySelectorAll(".bd-sidebar-primary a.reference, dialog a.reference"))
    .filter(a => /lessons\\/[01][0-9]_/.test(a.getAttribute("href") || "") || /^[01][0-9]_/.test(a.getAttribute("href") || ""));
  const buttons = Array.from(doc.querySelectorAll(".primary-toggle")).filter(b => seen(win, b));
  const result = {page: page, buttons: buttons.length,
                  before: chapters().filter(a => seen(win, a)).length, chrome: chrome(win, doc)};
  if (buttons.length) {
    buttons[0].click();
    await settle();
    result.open = chapters().filter(a => seen(win, a)).length;
    result.chapters = chapters().length;
    // A click beside the list (on the backdrop, where the page shows through), as a reader closes it.
    const list = chapters().filter(a => seen(win, a)).map(a => a.getBoundingClientRect().right);
    const x = Math.min(win.innerWidth - 2, Math.max(0, ...list) + 30), y = win.innerHeight / 2;
    const beside = doc.elementFromPoint(x, y) || doc.body;
    beside.dispatchEvent(new win.MouseEvent(
      "click", {bubbles: true, cancelable: true, clientX: x, clientY: y, view: win}));
    await settle();
    result.closed = chapters().filter(a => seen(win, a)).length;
  }
  frame.remove();
  return result;
}

(async () => {
  const jobs = JSON.parse(decodeURIComponent(location.hash.slice(1)));
  const results = [];
  for (const page of jobs.pages) {
    try { results.push(await inspect(page)); }
    catch (error) { results.push({page: page, error: String(error)}); }
  }
  const menus = [];
  for (const page of jobs.menu) {
    try { menus.push(await menu(page)); }
    catch (error) { menus.push({page: page, error: String(error)}); }
  }
  const out = document.createElement("pre");
  out.id = "results";
  out.textContent = JSON.stringify({pages: results, menus: menus});
  document.body.appendChild(out);
})();
""" % {"desktop": DESKTOP, "phone": PHONE}


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


def _menu_pages() -> list[str]:
    """The front page and the first chapter: the phone menu is checked on both."""
    chapters = sorted(HTML.glob(LESSONS))
    return ["lessons/intro.html"] + [str(p.relative_to(HTML)) for p in chapters[:1]]


@pytest.fixture(scope="module")
def browser(server):
    pages = ["/" + page for page in _pages()]
    assert any("lessons/0" in page for page in pages), f"no chapters (lessons/0*.html) in {HTML}"
    jobs = {"pages": pages, "menu": ["/" + page for page in _menu_pages()]}
    url = f"{server}{CHECK_PAGE}#{quote(json.dumps(jobs))}"
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-extensions",
             "--hide-scrollbars", f"--user-data-dir={profile}", "--virtual-time-budget=60000",
             "--dump-dom", url],
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    found = re.search(r'<pre id="results">(.*?)</pre>', run.stdout, re.DOTALL)
    assert found, (f"Chromium did not finish checking the pages (exit code {run.returncode}).\n"
                   f"stderr: {run.stderr[-2000:]}\nDOM: {run.stdout[-2000:]}")
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def rendered(browser):
    return {r["page"].lstrip("/"): r for r in browser["pages"]}


@pytest.fixture(scope="module")
def menus(browser):
    return {r["page"].lstrip("/"): r for r in browser["menus"]}


def _lessons(rendered) -> dict:
    return {page: r for page, r in rendered.items() if Path(page).match(LESSONS)}


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


def test_the_chapters_have_math_and_figures(rendered):
    chapters = [r for page, r in rendered.items() if page.startswith("lessons/0")]
    assert sum(r["math_rendered"] for r in chapters) > 0, "no equation typeset in any Day 5 chapter"
    assert sum(len(r["images"]) for r in chapters) > 0, "no figure in any Day 5 chapter"


def test_the_repeated_measures_correlation_chapter(rendered):
    """The chapter on cs() and ar1(): its equations are typeset, its heat maps load (one numbered figure with nine
    panels, drawn sharp by the test below), and its AIC and harvest tables are HTML tables, not text."""
    page = "lessons/11_repeated_correlation.html"
    assert page in rendered, f"{page} was not built"
    r = rendered[page]
    assert r["mathjax"] == "typeset" and r["math_rendered"] >= max(r["math_sources"], 10) and not r["math_errors"]
    figures = [img for img in r["images"] if img["in_article"]]
    assert len(figures) == 1 and figures[0]["width"] > 0 and "heat maps" in figures[0]["alt"]
    assert r["tables"] >= 5, f"{page}: {r['tables']} HTML tables (AIC, ranef_corr, distances, ratios, p-values)"


def test_code_and_output_fit_their_column(rendered):
    """At 1400 px no code or output block of a lesson scrolls sideways or sticks out of the text column."""
    lessons = _lessons(rendered)
    assert lessons and sum(r["blocks"] for r in lessons.values()) > 0, "no code blocks found on the lessons"
    wide = {page: [f"{b['kind']} ({b['scroll']} px of content in {b['client']} px): {b['text']!r}"
                   for b in r["wide"]] for page, r in lessons.items() if r["wide"]}
    total = sum(len(v) for v in wide.values())
    assert not wide, f"{total} code/output blocks wider than their column at {DESKTOP} px: {wide}"


def test_lesson_figures_are_sharp(rendered):
    """Each figure on a lesson page is an SVG, or a bitmap with >= 1.5 image pixels per displayed pixel."""
    blurry, count = {}, 0
    for page, r in _lessons(rendered).items():
        for img in r["images"]:
            if not img["in_article"] or img["shown"] == 0:
                continue
            count += 1
            svg = img["src"].split("?")[0].lower().endswith(".svg")
            if not svg and img["width"] < SHARPNESS * img["shown"]:
                blurry.setdefault(page, []).append(
                    f"{img['src']}: {img['width']} px drawn at {img['shown']:.0f} px")
    assert count > 0, "no figure found on the lesson pages"
    assert not blurry, f"figures below {SHARPNESS}x their displayed width: {blurry}"


@pytest.mark.parametrize("page", _pages() if (HTML / "index.html").exists() else [])
def test_alt_text_describes_the_figure(rendered, page):
    """Alt text is a description, not a file name or a path."""
    path_like = re.compile(r"(^|[/\\])[\w.-]+\.(png|svg|jpe?g|gif|pdf)$|^[\w./-]*/[\w./-]*$", re.IGNORECASE)
    bad = [(img["src"], img["alt"]) for img in rendered[page]["images"]
           if img["in_article"] and (not img["alt"].strip() or path_like.search(img["alt"].strip()))]
    assert not bad, f"{page}: figures whose alt text is empty or a file path: {bad}"


@pytest.mark.parametrize("page", [p for p in _pages() if p.startswith("lessons/homework/") and
                                  not p.endswith("index.html")] if (HTML / "index.html").exists() else [])
def test_homework_pages_show_questions_not_failed_checks(rendered, page):
    """A homework page is the notebook as handed out: one heading per question, and none of the red reports
    that its checks give on a blank notebook."""
    r = rendered[page]
    questions = [h for h in r["headings"] if h.startswith("Question")]
    assert len(questions) >= 3, f"{page}: questions are not headings (h2): {r['headings']}"
    assert r["check_failures"] == 0, f"{page}: {r['check_failures']} failed-check reports are shown"


@pytest.mark.parametrize("page", _menu_pages() if (HTML / "index.html").exists() else [])
def test_phone_menu_opens_and_closes(menus, page):
    """At 400 px the chapter list is hidden; the menu button shows it, a click beside it hides it again."""
    r = menus[page]
    assert "error" not in r, f"{page}: {r.get('error')}"
    assert r["buttons"] >= 1, f"{page}: no menu button visible at {PHONE} px"
    assert r["before"] == 0, f"{page}: the chapter list is already on screen before the menu is opened"
    assert r["open"] >= 5, (f"{page}: after a click on the menu button only {r['open']} of "
                            f"{r['chapters']} chapter links are visible")
    assert r["closed"] == 0, f"{page}: the chapter list stays open after a click beside it"


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_one_search_box_and_no_empty_top_bar(rendered, menus, width):
    """The page has one way to search, and no bar across its top that holds nothing but a second one."""
    seen = ({page: r["chrome"] for page, r in rendered.items()} if width == DESKTOP
            else {page: r["chrome"] for page, r in menus.items()})
    doubled = {page: c["searches"] for page, c in seen.items() if c["searches"] != 1}
    assert not doubled, f"pages at {width} px without exactly one visible search box or button: {doubled}"
    bars = {page: c["top_bar"] for page, c in seen.items() if c["top_bar"]}
    assert not bars, f"pages at {width} px with a top bar (height in px): {bars}"


# The attributes and methods that the lessons use, from the issue that asked for the reference;
# every other public name of these classes is checked too (from the classes themselves).
NAMED = {
    "GlmmFit": ["fixef", "se", "vcov", "varcorr", "ranef", "ranef_corr", "sigma", "loglik", "aic", "bic",
                "nobs", "predict", "residuals", "simulate", "summary"],
    "ScaledResiduals": ["scaled", "observed", "simulated", "fitted", "plot", "recalculate"],
    "TestResult": ["statistic", "pvalue", "method", "alternative"],
}


def _public_names(cls) -> set[str]:
    import dataclasses
    names = {n for n in dir(cls) if not n.startswith("_")}
    if dataclasses.is_dataclass(cls):
        names |= {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")}
    return names


@pytest.mark.parametrize("cls", sorted(NAMED))
def test_the_api_reference_has_every_public_attribute(rendered, cls):
    import glmmteach.diagnostics
    import glmmteach.results
    klass = getattr(glmmteach.results, cls, None) or getattr(glmmteach.diagnostics, cls)
    public = _public_names(klass)
    assert set(NAMED[cls]) <= public, f"{cls} lacks {set(NAMED[cls]) - public}"
    entries = {i.rsplit(".", 1)[1] for r in rendered.values() if r["page"].lstrip("/").startswith("lessons/api")
               for i in r["ids"] if i.rsplit(".", 2)[-2:-1] == [cls]}
    missing = sorted(public - entries)
    assert not missing, f"the API reference has no entry for {cls}.{', '.join(missing)}"


@pytest.mark.parametrize("page", [p for p in _pages() if Path(p).match(ANSWERS)]
                         if (HTML / "index.html").exists() else [])
def test_answer_chapters_resolve_their_numbers_and_number_their_figures(rendered, page):
    """Every number quoted in the text of these chapters is a glue reference to a cell's value: none may be left as
    raw text. Their figures load, each with a numbered caption, and the text links to them."""
    r = rendered[page]
    assert r["raw_roles"] == 0, f"{page}: {r['raw_roles']} glue or cross-reference roles left unresolved"
    figures = [img for img in r["images"] if img["in_article"]]
    assert figures and all(img["width"] > 0 for img in figures), f"{page}: figures missing or not loaded"
    assert r["captions"] == len(figures), f"{page}: {len(figures)} figures, {r['captions']} numbered captions"
    assert r["figure_links"] > 0, f"{page}: the text links to none of its figures"
    assert r["math_rendered"] > 0 and r["math_errors"] == 0, f"{page}: its math is not typeset"


ZERO_INFLATION = "lessons/12_zero_inflated_counts.html"


def test_the_zero_inflation_chapter(rendered):
    """The chapter on zero-inflated counts: its equations are typeset; its five figures load, each numbered, sharp
    enough (the test above) and linked from the text; every glue number and cross-reference resolved; its tables
    (the data, the diagnostics as each model is added (three), the AICs, the ratios) are HTML tables, not text."""
    assert ZERO_INFLATION in rendered, f"{ZERO_INFLATION} was not built"
    r = rendered[ZERO_INFLATION]
    assert r["mathjax"] == "typeset" and r["math_rendered"] >= max(r["math_sources"], 8) and not r["math_errors"]
    figures = [img for img in r["images"] if img["in_article"]]
    assert len(figures) == 5 and all(img["width"] > 0 for img in figures), figures
    assert len(r["figure_ids"]) == 5, f"numbered figures: {r['figure_ids']}"
    unlinked = set(r["figure_ids"]) - set(r["figure_hrefs"])
    assert not unlinked, f"figures the text does not link to: {sorted(unlinked)}"
    assert r["raw_roles"] == 0, f"{r['raw_roles']} glue or cross-reference roles left as text"
    assert r["html_tables"] >= 6, f"{r['html_tables']} HTML tables"
