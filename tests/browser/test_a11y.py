"""Every page of the built book for every reader: axe-core finds no serious or critical violation, and no page is
wider than a phone.

Each page of _toc.yml is loaded once, at a phone's width (390 px, an iPhone held upright): its width is measured
(`document.documentElement.scrollWidth`, which grows when anything makes the page scroll sideways), then axe-core
(`node_modules/axe-core/axe.min.js`, installed by `make test-browser` from npm) is run on it at that width and again
at the desktop's 1280 px (the theme shows other buttons there), after MathJax has typeset the math. A failure lists
each rule with its impact, the number of elements, an example element and axe's advice; a page too wide names the
elements that stick out.

What the book's own markup and the theme did wrong is mended in _ext/nbdev_book.py (folds, bibliography, the
printed title), _templates/ (the theme's search and colour-mode buttons), _static/narrow.css (phones) and
attn_tutorial/assets/view.js (the attention view).
"""
from __future__ import annotations

import pytest

from .conftest import ROOT
from .test_book import toc_files

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
SEVERE = ("serious", "critical")

# the elements that stick out of a page wider than the screen: the outermost ones, not clipped by a scrolling box
_STICKING_OUT = """() => {
  const W = document.documentElement.clientWidth, out = [];
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.right <= W + 1 || r.width === 0 || e.parentElement.getBoundingClientRect().right > W + 1) continue;
    let p = e.parentElement, clipped = false;
    for (; p && p !== document.body; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (s.overflowX !== 'visible' || s.position === 'fixed') { clipped = true; break; }
    }
    if (!clipped) out.push(`${e.tagName.toLowerCase()}.${[...e.classList].join('.')} to ${Math.round(r.right)} px: `
                           + e.textContent.trim().slice(0, 60));
  }
  return out.slice(0, 5);
}"""

_AXE_RUN = """() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({
  id: v.id, impact: v.impact, help: v.help, count: v.nodes.length,
  target: v.nodes[0].target.join(' '), html: v.nodes[0].html.slice(0, 160)})))"""

_audits: dict[str, dict] = {}


def audit(doc: str, book_url: str, browser) -> dict:
    """The page `doc` loaded once: {'width': its scrollWidth at 390 px, 'wide': what sticks out, 'violations':
    axe's serious and critical violations at 390 and at 1280 px}. Kept for the session (the pages do not change)."""
    if doc in _audits:
        return _audits[doc]
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make test-browser` installs axe-core from npm")
    page = browser.new_page()
    page.set_viewport_size(PHONE)
    page.goto(f"{book_url}/{doc}.html", wait_until="load")
    page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise.then(() => true) : true")
    result = {"width": page.evaluate("document.documentElement.scrollWidth"), "violations": []}
    result["wide"] = page.evaluate(_STICKING_OUT) if result["width"] > PHONE["width"] else []
    page.add_script_tag(path=str(AXE))
    for size in (PHONE, DESKTOP):
        page.set_viewport_size(size)
        result["violations"] += [dict(v, width=size["width"]) for v in page.evaluate(_AXE_RUN)
                                 if v["impact"] in SEVERE]
    page.close()
    _audits[doc] = result
    return result


def describe(violations: list[dict]) -> str:
    return "\n".join(f"  {v['id']} ({v['impact']}) at {v['width']} px: {v['count']} element(s), e.g. {v['target']}: "
                     f"{v['html']!r}; {v['help']}" for v in violations)


@pytest.mark.parametrize("doc", toc_files())
def test_no_serious_accessibility_violations(doc, book_url, browser):
    "axe-core 4.14 on the page, at a phone's width and a desktop's: no violation of impact serious or critical."
    violations = audit(doc, book_url, browser)["violations"]
    assert violations == [], f"axe-core finds {len(violations)} serious or critical rule(s):\n{describe(violations)}"


@pytest.mark.parametrize("doc", toc_files())
def test_fits_a_phone(doc, book_url, browser):
    "At 390 px nothing makes the page scroll sideways: wide equations, tables and code scroll in their own box."
    result = audit(doc, book_url, browser)
    assert result["width"] <= PHONE["width"], (
        f"the page is {result['width']} px wide at {PHONE['width']} px; sticking out: {result['wide']}")


def test_axe_is_the_pinned_version(book_url, browser):
    "The rules the book is held to are axe-core 4.14's (the Makefile pins it)."
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make test-browser` installs axe-core from npm")
    page = browser.new_page()
    page.goto(f"{book_url}/nbs/index.html", wait_until="domcontentloaded")
    page.add_script_tag(path=str(AXE))
    assert page.evaluate("axe.version").startswith("4.14.")
    page.close()
