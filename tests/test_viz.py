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
