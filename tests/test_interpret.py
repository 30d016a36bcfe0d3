"""attn_tutorial.interpret: rollout is a product of row-stochastic matrices, edits of attention are exact
interventions that leave the model as it was, and gradient x input is the first-order effect of a token."""
from __future__ import annotations

import pytest
import torch

from attn_tutorial.interpret import attention_rollout, edit_attention, grad_times_input
from attn_tutorial.pretrained import load_minilm


def test_rollout_by_hand_and_properties():
    a1 = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])          # (H=1, 2, 2)
    a2 = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    half = lambda a: 0.5 * a[0] + 0.5 * torch.eye(2)
    torch.testing.assert_close(attention_rollout([a1, a2]), half(a2) @ half(a1))
    maps = [torch.softmax(torch.randn(3, 4, 6, 6), -1) for _ in range(5)]
    r = attention_rollout(maps)
    assert r.shape == (3, 6, 6) and (r >= 0).all()
    torch.testing.assert_close(r.sum(-1), torch.ones(3, 6))
    torch.testing.assert_close(attention_rollout(maps[:1], residual=0.0), maps[0].mean(-3))
    with pytest.raises(ValueError, match="at least one layer"):
        attention_rollout([])
    with pytest.raises(ValueError, match=r"\(\.\.\., H, 6, 6\)"):
        attention_rollout([maps[0], torch.ones(3, 4, 5, 5)])


@pytest.fixture(scope="module")
def model():
    return load_minilm()


def test_edit_attention_is_an_exact_intervention(model):
    texts = ["The cat sat on the mat.", "A longer sentence, padded in the batch with the short one above."]
    base = model.encode(texts)
    original = model.layers[1].self_attn
    with edit_attention(model, 1, lambda w: w):
        torch.testing.assert_close(model.encode(texts), base, rtol=0, atol=1e-6)
    with edit_attention(model, 1, lambda w: torch.flip(w, dims=[1])):     # swap heads' weights around
        assert (model.encode(texts) - base).abs().max() > 1e-3
    assert model.layers[1].self_attn is original                         # restored
    torch.testing.assert_close(model.encode(texts), base, rtol=0, atol=0)


def test_interventions_accept_float_masks(model):
    "The edited layer runs the module's own mask handling: a float padding mask is the bool one."
    ids, mask, _ = model.tokenize(["The cat sat on the mat.", "Short one."])
    x = model.embeddings(ids)
    layer = model.layers[0]
    float_pad = torch.zeros(mask.shape).masked_fill(~mask, float("-inf"))
    with torch.no_grad():
        with edit_attention(model, 0, lambda w: w):
            with_bool = model.layers[0](x, src_key_padding_mask=~mask)
            with_float = model.layers[0](x, src_key_padding_mask=float_pad)
        plain = layer(x, src_key_padding_mask=float_pad)
    assert torch.equal(with_float, with_bool)            # adding 0 or -inf is exactly masking
    torch.testing.assert_close(with_float, plain, rtol=0, atol=1e-5)   # float32: the fused kernel vs the explicit one


def test_grad_times_input_is_a_first_order_effect(model):
    text = "Attention lets every position look at every other position."
    tokens, attr = grad_times_input(model, text)
    assert attr.shape == (len(tokens),) and torch.isfinite(attr).all()
    # scaling token j's input embedding by (1 - eps) changes f by about -eps * attr[j]
    ids, mask, _ = model.tokenize([text])
    with torch.no_grad():
        h = model(ids, mask)
    target = torch.nn.functional.normalize(h.mean(1)[0], dim=-1)
    def objective(scale_j, j):
        x = model.embeddings(ids)
        x = x.clone()
        x[0, j] *= scale_j
        h = x
        for layer in model.layers:
            h = layer(h, src_key_padding_mask=~mask)
        return (h.mean(1)[0] @ target).item()
    eps = 1e-3
    with torch.no_grad():
        for j in (2, 5):
            finite = (objective(1.0, j) - objective(1 - eps, j)) / eps
            assert abs(attr[j]) > 1e-3 and abs(finite - attr[j].item()) < 0.05 * abs(attr).max().item()


def _gpt2():
    from attn_tutorial.gpt import GPT

    return GPT(vocab_size=11, n_positions=8, n_embd=8, n_layer=2, n_head=2)


def _llama():
    "A Llama with grouped-query heads, RoPE and a window: edits act after its rotation and its mask."
    from attn_tutorial.gpt import GPT
    from attn_tutorial.modern import LlamaConfig

    return GPT(LlamaConfig(vocab_size=11, n_positions=8, n_embd=8, n_layer=2, n_head=2, n_kv_head=1, window=3))


@pytest.mark.parametrize("make", [_gpt2, _llama])
def test_edit_attention_on_a_gpt_of_every_family_zeroes_a_head_exactly(make):
    "In a GPT (`h[i].attn`): the identity edit changes nothing; zeroing head 1's weights is zeroing its output."
    torch.manual_seed(0)
    gpt = make().double().eval()
    idx = torch.randint(11, (3, 8))
    base, original = gpt(idx), gpt.h[1].attn
    with edit_attention(gpt, 1, lambda w: w):
        torch.testing.assert_close(gpt(idx), base, rtol=0, atol=1e-12)

    def zero_head(w):
        w = w.clone()
        w[:, 1] = 0
        return w

    out_proj_in, seen = [], []
    with edit_attention(gpt, 1, zero_head) as m:
        hook = m.h[1].attn.out_proj.register_forward_pre_hook(lambda mod, a: out_proj_in.append(a[0]))
        with edit_attention(gpt, 1, lambda w: seen.append(w) or w):   # nested: the inner edit, then back
            gpt(idx)
        ablated = m(idx)
        hook.remove()
    assert gpt.h[1].attn is original and (ablated - base).abs().max() > 1e-6
    assert "attend" not in vars(original) and torch.equal(gpt(idx), base)   # the class's own step again
    # what out_proj saw, the heads side by side: head 1's features are 0, head 0's are not
    x = out_proj_in[-1]                                                  # (B, T, E = 2 heads x 4)
    assert x[..., 4:].abs().max() == 0 and x[..., :4].abs().max() > 0
    # the weights the edits see are the layer's own: causal (and within the window, in the Llama)
    w = seen[0]
    assert w.shape == (3, 2, 8, 8) and (w.triu(1) == 0).all()
    window = getattr(original, "window", None)
    if window:
        assert (w.tril(-window) == 0).all()
