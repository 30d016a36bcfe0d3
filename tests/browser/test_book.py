"""The built book, opened in headless Chromium: every chapter in _toc.yml loads cleanly and offline.

For each page: no console errors, no request leaves the local server, the math is typeset by the bundled
MathJax (no raw `\\(`), every image loads and there are as many as the executed notebook has image outputs,
no nbdev `#|` directive is visible, and the code of `#| hide` cells is not on the page. A full-page
screenshot of each page is saved under `_build/screenshots/` to look at.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from .conftest import HTML, ROOT

sys.path.insert(0, str(ROOT / "_ext"))
from nbdev_book import split_directives  # noqa: E402  the same parser the book uses

SHOTS = ROOT / "_build" / "screenshots"


def toc_files() -> list[str]:
    "Every document of _toc.yml, e.g. 'nbs/index', 'nbs/02_qkv'."
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


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
    return hidden - shown


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
    for f in files:
        assert (ROOT / f"{f}.ipynb").exists(), f
        assert (HTML / f"{f}.html").exists(), f"{f}.html was not built"


@pytest.mark.parametrize("doc", toc_files())
def test_page(doc, book_url, browser):
    nb = nbformat.read(ROOT / f"{doc}.ipynb", as_version=4)
    executed = nbformat.read(ROOT / "_build" / "jupyter_execute" / f"{doc}.ipynb", as_version=4)
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

    images = page.eval_on_selector_all(
        "main img", "els => els.map(e => ({src: e.src, ok: e.complete && e.naturalWidth > 0}))")
    assert [i["src"] for i in images if not i["ok"]] == [], "images that did not load"
    assert len(images) == image_outputs(executed) > 0

    assert "#|" not in text, "an nbdev directive is visible"
    leaked = sorted(ln for ln in hidden_only_lines(nb) if ln in text)
    assert leaked == [], f"code of hidden cells is visible: {leaked}"
    page.close()
