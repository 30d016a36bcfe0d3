"""attn_tutorial.viz.plot_attention: draws what it is given, labels it, refuses what it cannot draw."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from attn_tutorial.viz import plot_attention


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_draws_the_weights_with_labels_and_numbers():
    w = torch.tensor([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]])
    ax = plot_attention(w, ["a", "b"], ["x", "y", "zz"], title="t")
    np.testing.assert_array_equal(ax.images[0].get_array(), w.numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "zz"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert [t.get_text() for t in ax.texts] == ["0.70", "0.20", "0.10", "0.05", "0.05", "0.90"]
    assert ax.get_title() == "t" and ax.get_xlabel() == "key" and ax.get_ylabel() == "query"
    assert ax.images[0].get_clim() == (0.0, pytest.approx(0.9))
    assert len(ax.figure.axes) == 2                                     # the map and its colour bar


def test_accepts_numpy_grad_tensors_and_singleton_batch_dims():
    w = torch.softmax(torch.randn(1, 1, 4, 5), -1).requires_grad_()
    ax = plot_attention(w)
    assert ax.images[0].get_array().shape == (4, 5)
    ax2 = plot_attention(np.eye(3))
    assert ax2.images[0].get_array().shape == (3, 3)


def test_large_maps_are_not_annotated_and_draw_into_given_axes():
    fig, ax = plt.subplots()
    out = plot_attention(np.full((13, 13), 1 / 13), ax=ax, colorbar=False)
    assert out is ax and len(ax.texts) == 0 and len(fig.axes) == 1
    assert len(plot_attention(np.full((13, 13), 1 / 13), annotate=True).texts) == 169


def test_all_zero_map_has_a_valid_colour_scale():
    lo, hi = plot_attention(np.zeros((2, 2))).images[0].get_clim()
    assert hi > lo


@pytest.mark.parametrize("weights, kw, message", [
    (np.zeros((2, 3, 4)), {}, r"one map \(L, S\), got shape \(2, 3, 4\)"),
    (np.zeros(4), {}, r"got shape \(4,\)"),
    (np.zeros((2, 3)), {"query_labels": ["a"]}, r"query_labels has 1 labels but .* need 2"),
    (np.zeros((2, 3)), {"key_labels": ["a", "b"]}, r"key_labels has 2 labels but .* need 3"),
])
def test_bad_input_raises(weights, kw, message):
    with pytest.raises(ValueError, match=message):
        plot_attention(weights, **kw)


# ---- AttentionView: the interactive explorer (its behaviour in a browser: tests/browser/test_explorer.py) ----
import json
import re

from attn_tutorial.viz import AttentionView, attention_view

TOKENS = ["the", "cat", "sat", "on", "the", "mat"]


def _layers(n_layers=2, heads=3, L=6, S=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.softmax(2 * torch.randn(n_layers, heads, L, S, generator=gen), dim=-1)


def _embedded(html: str) -> dict:
    "The JSON the view's script draws from."
    return json.loads(re.search(r'<script type="application/json" class="attn-data">(.*?)</script>', html, re.S)[1]
                      .replace("<\\/", "</"))


@pytest.mark.parametrize("make, shape", [
    (lambda w: w[0, 0], (1, 1, 6, 6)),                       # one map (L, S)
    (lambda w: w[0], (1, 3, 6, 6)),                          # the heads of one layer (H, L, S)
    (lambda w: w, (2, 3, 6, 6)),                             # (layers, H, L, S)
    (lambda w: [x[None] for x in w], (2, 3, 6, 6)),          # a list of (1, H, L, S), as attention_maps returns
    (lambda w: list(w.numpy()), (2, 3, 6, 6)),               # a list of numpy (H, L, S)
    (lambda w: w[:, None], (2, 3, 6, 6)),                    # stacked (layers, 1, H, L, S)
])
def test_view_accepts_every_layout_of_weights(make, shape):
    w = _layers()
    view = attention_view(make(w), TOKENS)
    assert view.entries[0]["weights"].shape == shape
    data = _embedded(view.html())["entries"][0]
    assert data["shape"] == list(shape)
    expected = w.numpy().reshape(-1, 6, 6)[: shape[0] * shape[1]].reshape(shape)
    # weights travel as integers in thousandths: rounding error at most half of one
    assert np.abs(np.array(data["w"]).reshape(shape) / 1000 - expected).max() <= 5e-4 + 1e-12


def test_view_html_is_self_contained_and_escapes_tokens():
    tokens = ["</script><script>alert(1)</script>", "b", "c"]
    html = attention_view(torch.full((3, 3), 1 / 3), tokens).html()
    assert html.count("</script>") == 2                      # the data's and the code's: the token cannot close them
    assert _embedded(html)["entries"][0]["queries"] == tokens
    assert not any(s in html for s in ("src=", "href=", "@import", "url(", "fetch(", "XMLHttpRequest", "require"))
    # the same data renders the same id prefix; two renders on one page still get distinct ids
    v = attention_view(_layers(), TOKENS)
    ids = [re.search(r'id="(attn-view-[0-9a-f]+)-(\d+)"', v.html()).groups() for _ in range(2)]
    assert ids[0][0] == ids[1][0] and ids[0][1] != ids[1][1]


def test_view_kinds_layers_heads_and_names():
    view = (AttentionView("t").add(_layers(), TOKENS, name="self", layer=0)
            .add(_layers(2, 3, 4, 6), ["a", "b", "c", "d"], TOKENS, name="cross", head_names=["x", "y", "z"]))
    data = _embedded(view.html())
    assert [e["name"] for e in data["entries"]] == ["self", "cross"]
    assert [e["layer"] for e in data["entries"]] == [0, 1]                      # layer=-1 (default) is the last
    assert data["entries"][1]["head_names"] == ["x", "y", "z"]
    assert data["entries"][1]["keys"] == TOKENS and data["entries"][1]["queries"] == ["a", "b", "c", "d"]
    assert data["title"] == "t" and repr(view) == "AttentionView(self (2, 3, 6, 6), cross (2, 3, 4, 6))"


@pytest.mark.parametrize("call, message", [
    (lambda: attention_view(torch.rand(2, 2, 3, 4, 5), TOKENS), r"got shape \(2, 2, 3, 4, 5\)"),
    (lambda: attention_view(_layers(), TOKENS[:5]), r"\(2, 3, 6, 6\) = \(layers, H, L, S\) need 6 query tokens, 6 key tokens"),
    (lambda: attention_view(_layers(L=4), ["a"] * 4, TOKENS[:5]), r"need 4 query tokens, 6 key tokens, 2 layer names and 3 head names, got 4, 5, 2, 3"),
    (lambda: attention_view([torch.rand(3, 6, 6), torch.rand(2, 6, 6)], TOKENS), r"\[\(3, 6, 6\), \(2, 6, 6\)\]"),
    (lambda: attention_view([], TOKENS), "empty list"),
    (lambda: attention_view(torch.full((6, 6), float("nan")), TOKENS), "NaN or inf"),
    (lambda: attention_view(_layers(), TOKENS, head_names=["a"]), r"2 layer names and 3 head names, got 6, 6, 2, 1$"),
    (lambda: attention_view(_layers(), TOKENS, layer=2), "layer 2 is out of range for 2 layers"),
    (lambda: AttentionView().html(), "the view is empty"),
    (lambda: attention_view(_layers(), TOKENS).save("x.txt"), r"cannot save a view as '.txt'"),
    (lambda: attention_view(_layers(), TOKENS).figure(query=0, key=0), "not both"),
])
def test_view_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_view_saves_standalone_html_and_static_figures(tmp_path):
    view = attention_view(_layers(), TOKENS, title="toy")
    page = view.save(tmp_path / "v.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "default-src 'none'" in page and "<title>toy</title>" in page
    svg = view.save(tmp_path / "v.svg", query=1).read_text()
    assert "mat" in svg and "toy: attention, layer 2, all heads" in svg
    assert view.save(tmp_path / "v.png").read_bytes()[:4] == b"\x89PNG"
    assert view.save(tmp_path / "v.pdf").read_bytes()[:4] == b"%PDF"


def test_a_view_of_one_map_names_it_instead_of_all_heads(tmp_path):
    "A mean saved in place of the heads is one map: the figure and the page's script show its name."
    view = attention_view(_layers(heads=1), TOKENS, head_names=["mean of the heads"])
    assert view.figure().axes[0].get_title() == "attention, layer 2, mean of the heads"
    assert attention_view(_layers(), TOKENS).figure().axes[0].get_title() == "attention, layer 2, all heads"
    assert "H.length === e.head_names.length && H.length > 1" in view.html()


def test_view_figure_draws_one_line_per_weight_above_the_threshold():
    w = _layers()
    view = attention_view(w, TOKENS)
    ax = view.figure(layer=0, heads=[1], query=2).axes[0]
    expected = w[0, 1, 2] >= 0.01
    segments = ax.collections[0].get_segments()
    assert len(segments) == int(expected.sum())
    assert sorted(-s[1][1] for s in segments) == [j for j in range(6) if expected[j]]      # ends at those keys
    alphas = ax.collections[0].get_colors()[:, 3]
    np.testing.assert_allclose(sorted(alphas), sorted(w[0, 1, 2][expected].numpy()), rtol=0, atol=1e-7)
    assert ax.get_title() == "attention, layer 1, head 2"
    full = view.figure().axes[0]                                                 # all heads, all tokens
    assert len(full.collections[0].get_segments()) == int((w[1] >= 0.01).sum())
