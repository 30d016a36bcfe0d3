"""The executed notebooks behind the built book (`_build/jupyter_execute`): what the static pages show.

Progress bars end as one clean line (no carriage returns, no stacked updates), no page shows warnings, and every
figure is an opaque PNG with a light background, so it stays readable when the reader switches the book to dark mode,
and narrow enough to be shown near its own size in the text column.
"""
from __future__ import annotations

import base64
import io
import re

import nbformat
import numpy as np
import pytest
from matplotlib import image as mpimg

from ..toc import chapters
from .conftest import BUILD, ROOT
from .test_book import toc_files

EXECUTED = BUILD / "jupyter_execute"
# attn_tutorial.train.Progress draws "desc [#####...............] 12/50 3.1s info"
PROGRESS = re.compile(r"\[[#.]{20}\] \d+/\d+")
NOTEBOOKS = [f for f in toc_files() if (ROOT / f"{f}.ipynb").exists()]


def outputs(doc):
    path = EXECUTED / f"{doc}.ipynb"
    if not path.exists():
        pytest.fail(f"{path} is missing: build the book first (`make book`)")
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                yield i, out


@pytest.mark.parametrize("doc", NOTEBOOKS)
def test_outputs_are_clean(doc):
    for i, out in outputs(doc):
        text = out.get("text", "") if out.output_type == "stream" else out.get("data", {}).get("text/plain", "")
        assert "\r" not in text, f"cell {i}: a carriage return (a progress bar's updates) reached the page"
        if out.output_type == "stream" and out.name == "stderr":
            assert "Warning" not in text and "warn(" not in text, f"cell {i} shows a warning: {text[:300]}"
        bars = PROGRESS.findall(text)
        assert bars == [], f"cell {i}: progress-bar lines reached the page (a run's summary should): {bars[:3]}"


@pytest.mark.parametrize("doc", NOTEBOOKS)
def test_figures_are_opaque_with_a_light_background(doc):
    for i, out in outputs(doc):
        png = out.get("data", {}).get("image/png")
        if not png:
            continue
        img = mpimg.imread(io.BytesIO(base64.b64decode(png)), format="png")
        if img.shape[-1] == 4:                       # an alpha channel: it must be fully opaque
            assert img[..., 3].min() == 1.0, f"cell {i}: a transparent figure is unreadable on a dark page"
        corners = np.stack([img[0, 0, :3], img[0, -1, :3], img[-1, 0, :3], img[-1, -1, :3]])
        assert corners.mean() > 0.9, f"cell {i}: the figure's background is not light"
        h, w = img.shape[:2]
        assert w >= 200 and h >= 100 and w / h < 8, f"cell {i}: a figure of {w} x {h} pixels is badly sized"
        # the text column is ~690 px: a figure much wider is shrunk until its text cannot be read (at 100 dpi,
        # 10 inches at most; the chapters keep to 7.5)
        assert w <= 1000, f"cell {i}: a figure {w} px wide is shrunk to {690 / w:.0%} in the page; narrow it or stack it"


def test_conclusion_shows_every_recorded_result_in_a_table(book_url, browser):
    "The conclusion's table is a real table on the page, one row per result the chapters recorded."
    import json
    # what the chapters of _toc.yml's numbered parts recorded, the conclusion's own part excepted
    results = ROOT / "_build" / "results"
    expected = sum(len(json.loads((results / f"{p.stem}.json").read_text())) for p in chapters(conclusion=False))
    page = browser.new_page()
    page.goto(f"{book_url}/nbs/18_conclusion.html", wait_until="networkidle")
    table = page.locator("table.results-table")
    assert table.count() == 1
    assert table.locator("tbody tr").count() == expected > 14
    assert "| chapter |" not in page.inner_text("main")          # no Markdown table left as raw text
    page.close()
