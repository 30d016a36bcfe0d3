"""The attention explorer (`attn_tutorial.viz.AttentionView`) in headless Chromium.

A standalone page saved by `AttentionView.save`: it draws exactly the lines its weights call for, hovering and
clicking a token or a head changes what is highlighted (checked against the weights computed here), the selectors
switch layer and kind, and the page logs no error and makes no request. Then the built book: the chapters that
use the view show it working.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attn_tutorial.viz import AttentionView

TOKENS = ["the", "cat", "sat", "on", "the", "mat"]
TARGET = ["le", "chat", "assis", "<eos>"]


@pytest.fixture(scope="module")
def weights():
    gen = torch.Generator().manual_seed(0)
    enc = torch.softmax(2 * torch.randn(2, 3, 6, 6, generator=gen), dim=-1).numpy()
    cross = torch.softmax(3 * torch.randn(2, 3, 4, 6, generator=gen), dim=-1).numpy()
    return enc, cross


@pytest.fixture()
def page(browser, tmp_path, weights):
    "The saved view opened from disk, with its console errors and requests recorded on the page object."
    enc, cross = weights
    path = (AttentionView("test").add(enc, TOKENS, name="encoder self-attention")
            .add(cross, TARGET, TOKENS, name="cross-attention").save(tmp_path / "view.html"))
    p = browser.new_page()
    p.errors, p.requests = [], []
    p.on("console", lambda m: p.errors.append(m.text) if m.type in ("error", "warning") else None)
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    p.on("request", lambda r: p.requests.append(r.url))
    p.goto(path.as_uri())
    yield p
    assert p.errors == [], p.errors
    assert p.requests == [path.as_uri()], f"the page requested more than itself: {p.requests}"
    p.close()


def drawn(page) -> set[tuple[int, int, int]]:
    "The (head, query, key) of every line on the page."
    return {tuple(int(x) for x in t) for t in page.eval_on_selector_all(
        ".attn-line", "ls => ls.map(l => [l.dataset.head, l.dataset.q, l.dataset.k])")}


def expected(w, heads=None, q=None, k=None) -> set[tuple[int, int, int]]:
    "The lines the view must draw for weights `w (H, L, S)`: weights of at least 0.01, in thousandths."
    heads = range(w.shape[0]) if heads is None else heads
    return {(h, i, j) for h in heads for i in range(w.shape[1]) for j in range(w.shape[2])
            if np.rint(w[h, i, j] * 1000) >= 10 and q in (None, i) and k in (None, j)}


def shades(page, side: str) -> list[float]:
    return [float(x) for x in page.eval_on_selector_all(
        f".attn-token[data-side={side}]", "gs => gs.map(g => g.dataset.shade)")]


def test_draws_the_last_layer_of_all_heads(page, weights):
    enc, _ = weights
    assert page.locator(".attn-view[data-ready]").count() == 1
    assert page.locator(".attn-token[data-side=q] text").all_text_contents() == TOKENS
    assert drawn(page) == expected(enc[1])
    assert page.input_value("select.attn-layer") == "1"


def test_hover_and_click_a_query_highlight_its_weights(page, weights):
    enc, _ = weights
    page.hover(".attn-token[data-side=q][data-index='2']")
    assert drawn(page) == expected(enc[1], q=2)
    np.testing.assert_allclose(shades(page, "k"), np.rint(enc[1, :, 2] * 1000).mean(0) / 1000, atol=1e-3)
    page.mouse.move(0, 0)                                        # leaving the token clears the selection
    assert drawn(page) == expected(enc[1])
    page.click(".attn-token[data-side=q][data-index='2']")       # clicking keeps it
    page.mouse.move(0, 0)
    assert drawn(page) == expected(enc[1], q=2)
    assert "Query \u201csat\u201d attends to" in page.inner_text(".attn-status")
    assert page.locator(".attn-token.attn-selected").count() == 1
    page.click(".attn-token[data-side=q][data-index='2']")       # and clicking again releases it
    page.mouse.move(0, 0)
    assert drawn(page) == expected(enc[1])


def test_click_a_key_highlights_the_queries_that_attend_to_it(page, weights):
    enc, _ = weights
    page.click(".attn-token[data-side=k][data-index='5']")
    assert drawn(page) == expected(enc[1], k=5)
    np.testing.assert_allclose(shades(page, "q"), np.rint(enc[1, :, :, 5] * 1000).mean(0) / 1000, atol=1e-3)
    assert "Key \u201cmat\u201d is attended by" in page.inner_text(".attn-status")


def test_heads_layers_and_kinds(page, weights):
    enc, cross = weights
    page.click("button.attn-head[data-head='1']")                # one head alone
    assert drawn(page) == expected(enc[1], heads=[1])
    assert page.get_attribute("button.attn-head[data-head='1']", "aria-pressed") == "true"
    assert page.get_attribute("button.attn-head[data-head='0']", "aria-pressed") == "false"
    page.click("button.attn-head[data-head='2']", modifiers=["Control"])    # ctrl-click adds one
    assert drawn(page) == expected(enc[1], heads=[1, 2])
    page.click("button.attn-all")
    assert drawn(page) == expected(enc[1])
    page.select_option("select.attn-layer", "0")
    assert drawn(page) == expected(enc[0])
    page.select_option("select.attn-kind", "1")                  # the cross-attention: other tokens on the left
    assert page.locator(".attn-token[data-side=q] text").all_text_contents() == TARGET
    assert page.locator(".attn-token[data-side=k] text").all_text_contents() == TOKENS
    assert drawn(page) == expected(cross[1])
    page.click(".attn-token[data-side=q][data-index='1']")
    assert drawn(page) == expected(cross[1], q=1)


def test_text_is_readable_in_dark_mode(browser, tmp_path, weights):
    "The view draws its text in the page's colour: a dark page with light text keeps light tokens."
    path = AttentionView().add(weights[0], TOKENS).save(tmp_path / "dark.html")
    p = browser.new_page()
    p.emulate_media(color_scheme="dark")
    p.goto(path.as_uri())
    p.evaluate("document.body.style.background = 'rgb(18, 18, 18)'; document.body.style.color = 'rgb(220, 220, 220)'")
    fills = p.eval_on_selector_all(".attn-token text", "ts => ts.map(t => getComputedStyle(t).fill)")
    assert set(fills) == {"rgb(220, 220, 220)"}
    p.close()


@pytest.mark.parametrize("doc", ["nbs/06_transformer", "nbs/08_pretrained", "nbs/13_translation", "nbs/90_viz"])
def test_the_book_chapters_show_a_working_view(doc, book_url, browser):
    p = browser.new_page()
    errors = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.goto(f"{book_url}/{doc}.html", wait_until="networkidle")
    views = p.locator(".attn-view[data-ready]")
    assert views.count() >= 1, f"{doc} shows no attention view"
    view = views.first
    view.scroll_into_view_if_needed()
    before = view.locator(".attn-line").count()
    token = view.locator(".attn-token[data-side=q]").nth(1)
    token.click()
    lines = view.locator(".attn-line").evaluate_all("ls => ls.map(l => l.dataset.q)")
    assert 0 < len(lines) < before and set(lines) == {"1"}, (before, lines)
    assert view.locator(".attn-token.attn-selected").count() == 1
    assert errors == []
    p.close()
