"""Every figure of the book says in words what it shows (issue 33): its alt text, read by a screen reader in place
of the image, names what is drawn and its key number.

EXPECTED TO FAIL until the notebooks give their figures alt texts (per cell, `mystnb: {image: {alt: ...}}` in the
cell's metadata, or the figure's own markdown). Without one, myst-nb writes the image's file name
("../_images/3f2a....png") as its alt, which axe-core accepts but which tells a reader nothing. This test is kept in
its own file so that its failures are seen apart from the rest of the browser suite; it is not skipped.

A meaningful alt text: not empty, not a file name or path, not a placeholder ("png", "image", "figure"), at least
five words, and at least one digit (the figure's key number: an accuracy, a size, a count).
"""
from __future__ import annotations

import re

import pytest

from .test_book import toc_files

MIN_WORDS = 5
_FILE = re.compile(r"\.(png|svg|jpe?g|gif|webp)$", re.IGNORECASE)
_PATH = re.compile(r"^(_build|\.{0,2}/)|^\S*/\S*$")          # a path: _build/..., ../_images/x, or one token with '/'
_PLACEHOLDERS = {"png", "svg", "jpg", "jpeg", "image", "img", "figure", "fig", "plot", "output", "chart", "graph"}


def alt_problem(alt: str | None) -> str | None:
    "What is wrong with an image's `alt` text, or None if it is meaningful."
    alt = (alt or "").strip()
    if not alt:
        return "no alt text"
    if _FILE.search(alt) or _PATH.search(alt):
        return "a file name, not a description"
    if alt.lower() in _PLACEHOLDERS:
        return "a placeholder"
    if len(alt.split()) < MIN_WORDS:
        return f"fewer than {MIN_WORDS} words"
    if not re.search(r"\d", alt):
        return "no number (say the figure's key number)"
    return None


def test_alt_problem():
    assert alt_problem("../_images/3f2a9c.png") == "a file name, not a description"
    assert alt_problem("_build/jupyter_execute/x") == "a file name, not a description"
    assert alt_problem("png") == "a placeholder"
    assert alt_problem("") == "no alt text"
    assert alt_problem("Attention weights of one head") == "no number (say the figure's key number)"
    assert alt_problem("Loss curve") == f"fewer than {MIN_WORDS} words"
    assert alt_problem("Validation loss falls from 2.3 to 0.4 over 50 steps, the two runs within 0.01") is None
    assert alt_problem("Heat map of Q/K scores: the diagonal holds 0.9 of each row") is None   # '/' within words


@pytest.mark.parametrize("doc", toc_files())
def test_every_figure_has_a_meaningful_alt_text(doc, book_url, browser):
    page = browser.new_page()
    page.goto(f"{book_url}/{doc}.html", wait_until="domcontentloaded")
    images = page.eval_on_selector_all(
        "article.bd-article img", "els => els.map(e => [e.getAttribute('alt'), e.getAttribute('src')])")
    page.close()
    bad = [f"figure {i + 1}: {problem} ({alt!r})" for i, (alt, _) in enumerate(images)
           if (problem := alt_problem(alt))]
    assert bad == [], f"{len(bad)} of {len(images)} figures lack a meaningful alt text:\n  " + "\n  ".join(bad)
