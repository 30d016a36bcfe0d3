"""The book on paper (print, or "Save as PDF"), with print media emulated in headless Chromium.

Each page of _toc.yml, printed: every fold prints open (what a reader would open on screen is on the paper, and no
"Show code cell source" bar is left), a numbered chapter's title keeps its number ("5. Multi-head attention"), and
code and printed output are set at 9 pt or more. The print stylesheet is _static/print.css; the numbered title is
the theme's printed title, numbered by _ext/nbdev_book.py.
"""
from __future__ import annotations

import pytest

from ..toc import toc_parts
from .test_book import toc_files

MIN_CODE_PT = 9


def chapter_numbers() -> dict[str, int]:
    "The number of each document of the numbered parts of _toc.yml ('nbs/05_multihead': 5), counted across parts."
    numbers, n = {}, 0
    for part in toc_parts()[1:]:
        for doc in part["files"]:
            if part["numbered"]:
                n += 1
                numbers[doc] = n
    return numbers


NUMBERS = chapter_numbers()

_PRINTED = """() => {
  const shown = e => e.checkVisibility({contentVisibilityAuto: true, opacityProperty: true, visibilityProperty: true});
  const folds = [...document.querySelectorAll('article.bd-article details.hide')];
  return {
    folds: folds.length,
    closed: folds.filter(d => [...d.children].some(c => c.tagName !== 'SUMMARY' && !shown(c)))
                 .map(d => d.querySelector('summary').textContent.trim().split('\\n')[0]),
    buttons: [...document.querySelectorAll('article.bd-article details.hide > summary p.collapsed')]
               .filter(shown).map(p => p.textContent.trim()),
    titles: [...document.querySelectorAll('h1')].filter(shown).map(h => h.textContent.replace('#', '').trim()),
    code: [...document.querySelectorAll('article.bd-article pre')]
            .map(p => parseFloat(getComputedStyle(p).fontSize) * 0.75),   // px to pt
  };
}"""


def printed(page, url: str) -> dict:
    "What the page at `url` prints: its folds, their buttons, its titles, its code's sizes in pt (see _PRINTED)."
    page.goto(url, wait_until="load")
    page.emulate_media(media="print")
    # two frames: measured at once, a fold's content sometimes still counted as hidden (a closed fold's
    # content-visibility, re-styled for print, reaches checkVisibility after a rendering update)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return page.evaluate(_PRINTED)


@pytest.mark.parametrize("doc", toc_files())
def test_printed_page(doc, book_url, browser):
    page = browser.new_page()
    result = printed(page, f"{book_url}/{doc}.html")
    page.close()

    assert result["closed"] == [], f"folds that print closed (their content is not on the paper): {result['closed']}"
    assert result["buttons"] == [], f"fold buttons printed as bars: {result['buttons'][:3]}"
    assert result["titles"], "no title is printed"
    if doc in NUMBERS:
        assert result["titles"][0].startswith(f"{NUMBERS[doc]}. "), (
            f"the printed title lost the chapter's number {NUMBERS[doc]}: {result['titles']}")
    small = sorted({round(pt, 1) for pt in result["code"] if pt < MIN_CODE_PT})
    assert small == [], f"code printed at {small} pt (at least {MIN_CODE_PT} pt reads on paper)"


def test_print_checks_have_folds_to_open(book_url, browser):
    "The chapters fold code (so the fold check above checks something): the multi-head chapter has several."
    page = browser.new_page()
    assert printed(page, f"{book_url}/nbs/05_multihead.html")["folds"] >= 3
    page.close()


def test_a_folds_paper_label_stays_off_the_screen(book_url, browser):
    """A named fold's line for paper ("The check of the heads' settings") is not shown on screen, where the fold's
    button says it ("Show the check ..."), and is shown in print, where the button is not."""
    page = browser.new_page()
    page.goto(f"{book_url}/nbs/05_multihead.html", wait_until="load")
    labels = page.locator("article.bd-article details.hide > summary > p.print-title")
    assert labels.count() >= 1, "the chapter has no named fold"
    shown = "els => els.filter(e => e.checkVisibility()).length"
    assert labels.evaluate_all(shown) == 0
    page.emulate_media(media="print")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    assert labels.evaluate_all(shown) == labels.count()
    page.close()
