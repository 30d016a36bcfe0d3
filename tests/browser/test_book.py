"""The built book, opened in headless Chromium: every chapter in _toc.yml loads cleanly and offline.

For each page: no console errors, no request leaves the local server, the math is typeset by the bundled
MathJax (no raw `\\(`), every image loads and there are as many as the executed notebook has image outputs,
no nbdev `#|` directive is visible, code fits the column (no horizontal scrolling), and the code of `#| hide`
cells is not on the page. With BOOK_SCREENSHOTS=1 a full-page screenshot of each page is saved under
`_build/screenshots/` to look at (off by default: they took a fifth of the test's time). The markdown pages of the book
(references, glossary, API reference) get the same checks, with no executed notebook and no images.

Then the book's furniture: citations link to entries of the references page, glossary terms to entries of the
glossary, each chapter to its module's section of the API reference; the download button offers the chapter's
`.ipynb`, which the build copies; the launch buttons are plain links; the sidebar numbers the chapters.
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import nbformat
import pytest

from ..toc import appendices, toc_parts
from .conftest import BUILD, HTML, ROOT

sys.path.insert(0, str(ROOT / "_ext"))
from nbdev_book import default_exp, split_directives  # noqa: E402  the same parsers the book uses

SHOTS = BUILD / "screenshots"


def toc_files() -> list[str]:
    "Every document of _toc.yml, e.g. 'nbs/index', 'nbs/02_qkv', 'nbs/references' (a .md page)."
    return [f for part in toc_parts() for f in part["files"]]


def source(doc: str) -> Path:
    "The file a document is built from: `<doc>.ipynb`, or `<doc>.md` for the markdown pages."
    ipynb = ROOT / f"{doc}.ipynb"
    return ipynb if ipynb.exists() else ROOT / f"{doc}.md"


def read_doc(doc: str) -> nbformat.NotebookNode:
    "A document as a notebook: a .md page becomes one markdown cell, so that one set of checks serves both."
    path = source(doc)
    if path.suffix == ".ipynb":
        return nbformat.read(path, as_version=4)
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(path.read_text())])


def chapters() -> list[str]:
    "The documents that are notebooks exporting a module (`#| default_exp`): they link to the API reference."
    return [d for d in toc_files() if source(d).suffix == ".ipynb" and default_exp(read_doc(d))]


@functools.cache
def _anchors(url: str, browser) -> frozenset[str]:
    page = browser.new_page()
    page.goto(url, wait_until="domcontentloaded")
    ids = frozenset(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
    page.close()
    return ids


def anchors(page, url: str) -> frozenset[str]:
    "Every element id on the page at `url` (read once per session: the pages do not change)."
    return _anchors(url, page.context)


def hidden_only_lines(nb) -> set[str]:
    "Code lines of `#| hide` cells that appear nowhere else in the notebook: they must not be on the page."
    hidden, shown = set(), set()
    for cell in nb.cells:
        if cell.cell_type != "code":  # prose may quote code (a usage example): those lines are shown
            shown.update(ln.strip() for ln in cell.source.splitlines())
            continue
        directives, rest = split_directives(cell.source)
        lines = {ln.strip() for ln in rest.splitlines() if ln.strip()}
        (hidden if any(name in ("hide", "default_exp") for name, _ in directives) else shown).update(lines)
    # a short line ("(", "):", "lr=LR,") is a fragment of a wrapped call that any page contains
    return {ln for ln in hidden - shown if len(ln) >= 16}


def image_outputs(executed) -> int:
    "Image outputs of the executed notebook in cells the book shows."
    n = 0
    for cell in executed.cells:
        if cell.cell_type == "code" and "remove-cell" not in cell.metadata.get("tags", []) \
                and "remove-output" not in cell.metadata.get("tags", []):
            n += sum(1 for o in cell.get("outputs", []) if any(k.startswith("image/") for k in o.get("data", {})))
    return n


def test_toc_lists_chapters():
    files = toc_files()
    assert files[0] == "nbs/index" and "nbs/02_qkv" in files
    assert {"nbs/references", "nbs/glossary", "nbs/api"} <= set(files)
    for f in files:
        assert source(f).exists(), f
        assert (HTML / f"{f}.html").exists(), f"{f}.html was not built"


@pytest.mark.parametrize("doc", toc_files())
def test_page(doc, book_url, browser):
    nb = read_doc(doc)
    is_notebook = source(doc).suffix == ".ipynb"
    executed = nbformat.read(BUILD / "jupyter_execute" / f"{doc}.ipynb", as_version=4) if is_notebook else None
    page = browser.new_page()
    errors, requests, failed = [], [], []
    page.on("console", lambda m: errors.append(f"{m.text} ({m.location.get('url')})") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    page.goto(f"{book_url}/{doc}.html", wait_until="networkidle")
    has_math = any("$" in c.source for c in nb.cells if c.cell_type == "markdown")
    if has_math:
        page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("MathJax.startup.promise")
    page.wait_for_load_state("networkidle")
    if os.environ.get("BOOK_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{Path(doc).name}.png"), full_page=True)

    text = page.inner_text("main")
    title = next(c.source.splitlines()[0].lstrip("# ") for c in nb.cells if c.cell_type == "markdown")
    # Sphinx renders straight quotes as typographic ones ("smartquotes")
    smart = page.title().replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    assert title in smart, (title, page.title())
    assert failed == [], f"failed requests: {failed}"
    assert errors == [], f"console errors: {errors}"
    external = [u for u in requests if not u.startswith((book_url, "data:", "blob:"))]
    assert external == [], f"requests leaving the local server: {external}"

    if has_math:
        assert page.locator("mjx-container").count() > 0, "math was not typeset"
    assert "\\(" not in text and "\\[" not in text, "raw TeX delimiters are visible"

    loaded = "els => els.map(e => ({src: e.src, ok: e.complete && e.naturalWidth > 0}))"
    everywhere = page.eval_on_selector_all("img", loaded)               # the logo and the launch buttons' icons too
    assert [i["src"] for i in everywhere if not i["ok"]] == [], "images that did not load"
    images = page.eval_on_selector_all("article.bd-article img", loaded)  # the page's own content
    if is_notebook:
        assert len(images) == image_outputs(executed)
        # every chapter and toolbox page shows figures; an appendix of "Long runs" (a program) may show none
        assert images or source(doc) in appendices(), "a notebook page with no images"
    else:
        assert images == [], "a markdown page has no images"

    # the 88 columns of code and of printed output fit the article's column in a 1280-pixel window
    # (_static/attn_tutorial.css); folded cells are not laid out and measure 0
    longest = "e => e.textContent.split('\\n').reduce((a, b) => (a.length >= b.length ? a : b))"
    for part, what in (("input", "code"), ("output", "printed output")):     # expect_error and Progress wrap theirs
        wide = page.eval_on_selector_all(
            f"div.cell_{part} pre", f"els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map({longest})")
        assert wide == [], f"{what} wider than the column: {wide}"
    assert "#|" not in text, "an nbdev directive is visible"
    leaked = sorted(ln for ln in hidden_only_lines(nb) if ln in text)
    assert leaked == [], f"code of hidden cells is visible: {leaked}"
    page.close()


@pytest.mark.parametrize("doc", chapters())
def test_chapter_links(doc, book_url, browser):
    """On a chapter page: every citation points at an entry of the references page, every glossary link at a term
    of the glossary, and the line under the title at the section of the chapter's module in the API reference;
    the download button offers the chapter's .ipynb (copied into the build), the launch buttons open it."""
    page = browser.new_page()
    page.goto(f"{book_url}/{doc}.html", wait_until="domcontentloaded")
    links = page.eval_on_selector_all("main a[href]", "els => els.map(e => e.getAttribute('href'))")
    buttons = page.eval_on_selector_all(".article-header-buttons a[href]", "els => els.map(e => e.getAttribute('href'))")
    text = page.inner_text("main")
    md = "\n".join(c.source for c in read_doc(doc).cells if c.cell_type == "markdown")

    def targets(page_name: str) -> list[str]:
        return [h.split("#", 1)[1] for h in links if h.split("#")[0] == page_name and "#" in h]

    cites = targets("references.html")
    if "{cite" in md:
        assert cites, "the chapter cites, but no link goes to the references page"
    assert "{cite" not in text and "{term}" not in text, "a role was not rendered"
    if cites:
        ids = anchors(page, f"{book_url}/nbs/references.html")
        assert [c for c in cites if c not in ids] == [], "citation links to missing entries"
    terms = targets("glossary.html")
    if "{term}" in md:
        assert terms and all(t.startswith("term-") for t in terms), terms
        ids = anchors(page, f"{book_url}/nbs/glossary.html")
        assert [t for t in terms if t not in ids] == [], "glossary links to missing terms"

    module = f"attn_tutorial.{default_exp(read_doc(doc))}"
    api = [t for t in targets("api.html") if t == f"module-{module}"]
    assert api, f"no link to the API reference of {module}"
    assert api[0] in anchors(page, f"{book_url}/nbs/api.html"), f"api.html has no section for {module}"

    name = Path(doc).name
    downloads = [b for b in buttons if b.endswith(f"_sources/{doc}.ipynb")]
    assert downloads, f"no download button for {name}.ipynb: {buttons}"
    assert (HTML / "_sources" / f"{doc}.ipynb").exists(), f"_sources/{doc}.ipynb was not copied into the build"
    assert any(b.startswith("https://mybinder.org/") and b.endswith(f"{doc}.ipynb") for b in buttons), buttons
    assert any(b.startswith("https://colab.research.google.com/") and b.endswith(f"{doc}.ipynb") for b in buttons)
    page.close()


def test_sidebar_numbers_the_chapters(book_url, browser):
    """The sidebar numbers the documents of the numbered parts 1, 2, ... straight across the parts, and not the
    others (the front page, the toolbox, the API reference)."""
    page = browser.new_page()
    page.goto(f"{book_url}/nbs/index.html", wait_until="domcontentloaded")
    entries = page.eval_on_selector_all(
        ".bd-sidebar-primary li.toctree-l1 > a",
        "els => els.map(e => [e.getAttribute('href'), e.innerText.trim()])")
    shown = {Path(href.split("#")[0]).stem: label for href, label in entries}
    n = 0
    for part in toc_parts()[1:]:
        for doc in part["files"]:
            label = shown.get(Path(doc).name)
            assert label is not None, f"{doc} is not in the sidebar"
            if part["numbered"]:
                n += 1
                assert label.startswith(f"{n}. "), (doc, label, n)
            else:
                assert not label[:1].isdigit(), (doc, label)
    assert n >= 15
    page.close()
