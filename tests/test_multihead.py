"""attn_tutorial.multihead: equal to torch.nn.MultiheadAttention (float64, atol 1e-10: the same sums in another
order), per-head weights, masks, the fused path, fully masked rows and error messages."""
from __future__ import annotations

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given
from torch import nn

from attn_tutorial.attention import causal_mask
from attn_tutorial.multihead import MultiHeadAttention, merge_heads, split_heads

F64 = torch.float64


def build(E, H, bias, kdim, vdim, seed):
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim, batch_first=True).double()
    with torch.no_grad():                                  # torch zero-initialises biases: make them count
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return ref, MultiHeadAttention.from_torch(ref)


@given(H=st.integers(1, 4), D=st.integers(1, 6), B=st.integers(1, 3), L=st.integers(1, 7), S=st.integers(1, 7),
       bias=st.booleans(), other_dims=st.booleans(), mask=st.sampled_from(["none", "bool", "float", "pad", "bool+pad",
                                                                          "float+pad", "causal", "causal+pad"]),
       seed=st.integers(0, 2**16))
def test_equals_torch_outputs_and_per_head_weights(H, D, B, L, S, bias, other_dims, mask, seed):
    E = H * D
    kdim, vdim = (E + 3, E + 1) if other_dims else (None, None)
    ref, ours = build(E, H, bias, kdim, vdim, seed)
    g = torch.Generator().manual_seed(seed)
    if mask.startswith("causal"):
        S = L
    q = torch.randn(B, L, E, dtype=F64, generator=g)
    k = torch.randn(B, S, kdim or E, dtype=F64, generator=g)
    v = torch.randn(B, S, vdim or E, dtype=F64, generator=g)
    pad = torch.rand(B, S, generator=g) < 0.3
    pad[:, 0] = False                                      # torch gives NaN for fully padded rows; we give zeros
    allowed = torch.rand(L, S, generator=g) > 0.3
    allowed[:, 0] = True
    fmask = torch.randn(L, S, dtype=F64, generator=g)
    ours_kw, torch_kw = {}, {}
    if "pad" in mask:
        ours_kw["key_padding_mask"] = torch_kw["key_padding_mask"] = pad
    if mask.startswith("bool"):
        ours_kw["attn_mask"], torch_kw["attn_mask"] = allowed, ~allowed       # torch: True = masked out
    if mask.startswith("float"):
        ours_kw["attn_mask"] = torch_kw["attn_mask"] = fmask
        if "pad" in mask:                                  # torch wants both masks of one type
            torch_kw["key_padding_mask"] = torch.zeros(B, S, dtype=F64).masked_fill(pad, float("-inf"))
    if mask.startswith("causal"):
        ours_kw["is_causal"] = True
        torch_kw.update(attn_mask=~causal_mask(L), is_causal=True)
    o_ref, w_ref = ref(q, k, v, average_attn_weights=False, **torch_kw)
    o, w = ours(q, k, v, **ours_kw)
    o_fast, none = ours(q, k, v, need_weights=False, **ours_kw)
    assert w.shape == (B, H, L, S) and none is None
    torch.testing.assert_close(o, o_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(w, w_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(o_fast, o_ref, rtol=0, atol=1e-10)


def test_self_attention_path_and_gradients_equal_torch():
    ref, ours = build(12, 3, True, None, None, seed=1)
    x = torch.randn(2, 6, 12, dtype=F64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    ref(x, x, x)[0].pow(2).sum().backward()
    ours(x2, x2, x2)[0].pow(2).sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=0, atol=1e-10)
    g_ref = torch.cat([ref.in_proj_weight.grad, ref.out_proj.weight.grad])
    g_ours = torch.cat([ours.q_proj.weight.grad, ours.k_proj.weight.grad, ours.v_proj.weight.grad,
                        ours.out_proj.weight.grad])
    torch.testing.assert_close(g_ours, g_ref, rtol=0, atol=1e-10)


def test_fully_masked_rows_give_zero_weights_not_nan():
    ref, ours = build(8, 2, True, None, None, seed=2)
    q, k = torch.randn(2, 3, 8, dtype=F64), torch.randn(2, 4, 8, dtype=F64, requires_grad=True)
    pad = torch.zeros(2, 4, dtype=torch.bool)
    pad[1] = True                                          # every key of the second sequence is padding
    assert torch.isnan(ref(q, k, k, key_padding_mask=pad)[0][1]).all()
    for need_weights in (True, False):
        out, w = ours(q, k, k, key_padding_mask=pad, need_weights=need_weights)
        torch.testing.assert_close(out[1], ours.out_proj.bias.expand(3, 8), rtol=0, atol=0)
        if need_weights:
            assert (w[1] == 0).all()
        out.sum().backward()
        assert torch.isfinite(k.grad).all()
        k.grad = None


def test_split_merge_and_masks_combine():
    x = torch.randn(3, 5, 12)
    assert torch.equal(merge_heads(split_heads(x, 4)), x)
    assert torch.equal(split_heads(x, 4)[:, 2], x[..., 6:9])
    m = MultiHeadAttention(12, 4)
    pad = torch.tensor([[False] * 4 + [True]] * 3)
    _, w = m(x, x, x, key_padding_mask=pad, is_causal=True)
    assert (w[..., 4] == 0).all() and (w.triu(1) == 0).all()


def test_dropout_only_in_training():
    m = MultiHeadAttention(8, 2, dropout=0.5)
    x = torch.randn(2, 5, 8)
    m.eval()
    assert torch.equal(m(x, x, x)[0], m(x, x, x)[0])
    m.train()
    torch.manual_seed(0)
    _, w = m(x, x, x)
    assert (w == 0).float().mean() > 0.2                 # about half the weights dropped, the rest scaled by 2


@pytest.mark.parametrize("call, message", [
    (lambda m, x: MultiHeadAttention(10, 3), "embed_dim=10 must be divisible by num_heads=3"),
    (lambda m, x: m(x, torch.randn(3, 7, 16), torch.randn(3, 7, 16)), r"agree on B and S: query \(2, 5, 16\)"),
    (lambda m, x: m(torch.randn(2, 5, 12), x, x), r"query must be \(B, length, 16\), got \(2, 5, 12\)"),
    (lambda m, x: m(x, x, x, key_padding_mask=torch.zeros(2, 4, dtype=torch.bool)), r"must be \(B, S\) = \(2, 5\), got \(2, 4\)"),
    (lambda m, x: m(x, x, x, attn_mask=torch.ones(5, 4, dtype=torch.bool)), r"attn_mask \(5, 4\) does not broadcast"),
    (lambda m, x: MultiHeadAttention.from_torch(nn.MultiheadAttention(16, 4)), "batch_first=True"),
    (lambda m, x: MultiHeadAttention.from_torch(nn.MultiheadAttention(16, 4, add_bias_kv=True, batch_first=True)), "add_bias_kv"),
])
def test_bad_inputs_raise_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(MultiHeadAttention(16, 4), torch.randn(2, 5, 16))


def test_float_key_padding_mask_is_refused():
    m = MultiHeadAttention(8, 2)
    x = torch.randn(1, 3, 8)
    with pytest.raises(TypeError, match="bool"):
        m(x, x, x, key_padding_mask=torch.zeros(1, 3))
