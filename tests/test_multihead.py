"""attn_tutorial.multihead: a drop-in for torch.nn.MultiheadAttention. The same constructor arguments, the same
parameters (same seed, same weights; state dicts load both ways), the same masks (bool True = NOT allowed, float
added, 2-D and 3-D attn_mask, bool or float key_padding_mask), the same results for the same tensors in float64
(atol 1e-10: the same sums in another order), batch first or not, unbatched, averaged or per-head weights. Where
it differs on purpose: a query with nothing to attend gets zeros, not NaN; `is_causal` alone applies the mask."""
from __future__ import annotations

import math
import warnings

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given, settings
from torch import nn

from attn_tutorial.attention import causal_mask
from attn_tutorial.multihead import KVCache, MultiHeadAttention, merge_heads, split_heads

F64 = torch.float64


def build(E, H, seed, **kw):
    "torch's module (biases made non-zero so they count) and ours, copied from it."
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(E, H, **kw).double()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return ref, MultiHeadAttention.from_torch(ref)


@pytest.mark.parametrize("kw", [{}, {"bias": False}, {"kdim": 5, "vdim": 3}, {"add_bias_kv": True},
                                {"add_zero_attn": True, "batch_first": True}])
def test_same_seed_gives_the_same_parameters_as_torch(kw):
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(12, 3, **kw)
    torch.manual_seed(0)
    ours = MultiHeadAttention(12, 3, **kw)
    assert list(ours.state_dict()) == list(ref.state_dict())
    for (name, a), b in zip(ours.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), name


MASKS = ["none", "bool2d", "bool3d", "float2d", "float3d", "pad", "float_pad", "bool2d+pad", "float2d+float_pad",
         "causal", "causal+pad"]


@settings(max_examples=150, deadline=None)
@given(H=st.integers(1, 4), D=st.integers(1, 5), B=st.integers(1, 3), L=st.integers(1, 6), S=st.integers(1, 6),
       bias=st.booleans(), other_dims=st.booleans(), batch_first=st.booleans(), bias_kv=st.booleans(),
       zero_attn=st.booleans(), mask=st.sampled_from(MASKS), need_weights=st.booleans(), average=st.booleans(),
       seed=st.integers(0, 2**16))
def test_same_tensors_give_the_same_results_as_torch(H, D, B, L, S, bias, other_dims, batch_first, bias_kv,
                                                     zero_attn, mask, need_weights, average, seed):
    E = H * D
    kdim, vdim = (E + 3, E + 1) if other_dims else (None, None)
    ref, ours = build(E, H, seed, bias=bias, kdim=kdim, vdim=vdim, batch_first=batch_first, add_bias_kv=bias_kv,
                      add_zero_attn=zero_attn)
    g = torch.Generator().manual_seed(seed)
    if mask.startswith("causal"):
        S = L
    shape = (lambda n, d: (B, n, d)) if batch_first else (lambda n, d: (n, B, d))
    q = torch.randn(shape(L, E), dtype=F64, generator=g)
    k = torch.randn(shape(S, kdim or E), dtype=F64, generator=g)
    v = torch.randn(shape(S, vdim or E), dtype=F64, generator=g)
    pad = torch.rand(B, S, generator=g) < 0.3
    pad[:, 0] = False                                      # torch gives NaN where every key is masked
    masked = torch.rand(B * H, L, S, generator=g) < 0.3
    masked[..., 0] = False
    kw = {}
    if mask.startswith("bool2d"):
        kw["attn_mask"] = masked[0]
    elif mask.startswith("bool3d"):
        kw["attn_mask"] = masked
    elif mask.startswith("float2d"):
        kw["attn_mask"] = torch.randn(L, S, dtype=F64, generator=g)
    elif mask.startswith("float3d"):
        kw["attn_mask"] = torch.randn(B * H, L, S, dtype=F64, generator=g)
    elif mask.startswith("causal"):
        kw["attn_mask"] = ~causal_mask(L)
        # torch needs the mask and takes the flag as a hint, which it applies wrongly to the extra keys of
        # add_bias_kv / add_zero_attn (see the next test); there both get the mask alone
        kw["is_causal"] = not (bias_kv or zero_attn)
    if mask.endswith("float_pad"):
        kw["key_padding_mask"] = torch.zeros(B, S, dtype=F64).masked_fill(pad, -math.inf)
    elif mask.endswith("pad"):
        kw["key_padding_mask"] = pad
    kw.update(need_weights=need_weights, average_attn_weights=average)
    o_ref, w_ref = ref(q, k, v, **kw)
    o, w = ours(q, k, v, **kw)
    torch.testing.assert_close(o, o_ref, rtol=0, atol=1e-10)
    if need_weights:
        assert w.shape == w_ref.shape == ((B, L, w.shape[-1]) if average else (B, H, L, w.shape[-1]))
        torch.testing.assert_close(w, w_ref, rtol=0, atol=1e-10)
    else:
        assert w is None and w_ref is None


def test_torch_applies_its_causal_hint_to_the_extra_keys_ours_follows_the_mask():
    "With add_bias_kv, torch's fast path (no weights) masks the extra key causally; its weights path does not."
    ref, ours = build(8, 2, seed=7, add_bias_kv=True, batch_first=True)
    x = torch.randn(2, 5, 8, dtype=F64)
    mask = ~causal_mask(5)
    with_weights = ref(x, x, x, attn_mask=mask, is_causal=True)[0]
    hinted = ref(x, x, x, attn_mask=mask, is_causal=True, need_weights=False)[0]
    assert (with_weights - hinted).abs().max() > 0.1                    # torch disagrees with itself
    for kw in ({"attn_mask": mask}, {"attn_mask": mask, "is_causal": True}, {"is_causal": True}):
        for need_weights in (True, False):
            torch.testing.assert_close(ours(x, x, x, need_weights=need_weights, **kw)[0], with_weights,
                                       rtol=0, atol=1e-10)


def test_unbatched_inputs_as_torch():
    ref, ours = build(8, 2, seed=1)
    q, k = torch.randn(4, 8, dtype=F64), torch.randn(6, 8, dtype=F64)
    pad = torch.tensor([False] * 5 + [True])
    for average in (True, False):
        o_ref, w_ref = ref(q, k, k, key_padding_mask=pad, average_attn_weights=average)
        o, w = ours(q, k, k, key_padding_mask=pad, average_attn_weights=average)
        assert o.shape == (4, 8) and w.shape == ((4, 6) if average else (2, 4, 6))
        torch.testing.assert_close(o, o_ref, rtol=0, atol=1e-10)
        torch.testing.assert_close(w, w_ref, rtol=0, atol=1e-10)


def test_state_dicts_load_both_ways_and_from_torch_keeps_the_mode():
    ref, _ = build(12, 3, seed=2, kdim=7, vdim=5, batch_first=True)
    ours = MultiHeadAttention(12, 3, kdim=7, vdim=5, batch_first=True).double()
    ours.load_state_dict(ref.state_dict())                 # strict: the same names and shapes
    q, k, v = torch.randn(2, 3, 12, dtype=F64), torch.randn(2, 4, 7, dtype=F64), torch.randn(2, 4, 5, dtype=F64)
    torch.testing.assert_close(ours(q, k, v)[0], ref(q, k, v)[0], rtol=0, atol=1e-10)
    back = nn.MultiheadAttention(12, 3, kdim=7, vdim=5, batch_first=True).double()
    back.load_state_dict(ours.state_dict())
    torch.testing.assert_close(back(q, k, v)[0], ref(q, k, v)[0], rtol=0, atol=0)
    assert MultiHeadAttention.from_torch(ref.train()).training
    assert not MultiHeadAttention.from_torch(ref.eval()).training
    assert MultiHeadAttention.from_torch(ours).state_dict().keys() == ours.state_dict().keys()


def test_gradients_equal_torch():
    ref, ours = build(12, 3, seed=1, batch_first=True)
    x = torch.randn(2, 6, 12, dtype=F64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    ref(x, x, x)[0].pow(2).sum().backward()
    ours(x2, x2, x2)[0].pow(2).sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=0, atol=1e-10)
    for (name, p), p_ref in zip(ours.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=0, atol=1e-10, msg=name)


def test_is_causal_alone_applies_the_causal_mask():
    ref, ours = build(8, 2, seed=3, batch_first=True)
    x = torch.randn(2, 5, 8, dtype=F64)
    with pytest.raises(RuntimeError, match="Need attn_mask"):      # torch takes the flag only as a hint
        ref(x, x, x, is_causal=True)
    o_ref, w_ref = ref(x, x, x, attn_mask=~causal_mask(5), is_causal=True)
    for need_weights in (True, False):
        o, w = ours(x, x, x, is_causal=True, need_weights=need_weights)
        torch.testing.assert_close(o, o_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(ours(x, x, x, is_causal=True)[1], w_ref, rtol=0, atol=1e-10)


def test_fully_masked_rows_give_zero_weights_not_nan():
    ref, ours = build(8, 2, seed=2, batch_first=True)
    q, k = torch.randn(2, 3, 8, dtype=F64), torch.randn(2, 4, 8, dtype=F64, requires_grad=True)
    pad = torch.zeros(2, 4, dtype=torch.bool)
    pad[1] = True                                          # every key of the second sequence is padding
    assert torch.isnan(ref(q, k, k, key_padding_mask=pad)[0][1]).all()
    for need_weights in (True, False):
        out, w = ours(q, k, k, key_padding_mask=pad, need_weights=need_weights)
        torch.testing.assert_close(out[1], ours.out_proj.bias.expand(3, 8), rtol=0, atol=0)
        torch.testing.assert_close(out[0], ref(q, k, k, key_padding_mask=pad)[0][0], rtol=0, atol=1e-10)
        if need_weights:
            assert (w[1] == 0).all()
        out.sum().backward()
        assert torch.isfinite(k.grad).all()
        k.grad = None


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_with_large_logits_gives_no_nan_and_the_same_output_with_or_without_weights(dtype):
    torch.manual_seed(0)
    m = MultiHeadAttention(64, 4, batch_first=True)
    x = torch.randn(2, 16, 64) * 50      # QKᵀ up to 1.5e5, past float16 (6.5e4) unless scaled before the product
    ref = m(x, x, x, need_weights=False)[0]                # float32
    m = m.to(dtype)
    xh = x.to(dtype)
    out_w, w = m(xh, xh, xh)
    out_f, _ = m(xh, xh, xh, need_weights=False)
    assert torch.isfinite(out_w).all() and torch.isfinite(out_f).all() and torch.isfinite(w).all()
    tol = dict(float16=0.05, bfloat16=0.3)[str(dtype).split(".")[1]]   # a few units of the format's last digit
    scale = ref.abs().max().item()
    assert (out_w.float() - out_f.float()).abs().max() < tol * scale
    assert (out_w.float() - ref).abs().max() < tol * scale


def test_no_keys_and_no_queries_as_torch():
    ref, ours = build(8, 2, seed=4, batch_first=True)
    q, none = torch.randn(2, 3, 8, dtype=F64), torch.randn(2, 0, 8, dtype=F64)
    for args in ((q, none, none), (none, q, q)):
        o_ref, w_ref = ref(*args)
        o, w = ours(*args)
        assert o.shape == o_ref.shape and w.shape == w_ref.shape
        torch.testing.assert_close(o, o_ref, rtol=0, atol=1e-10)   # no keys: the output is out_proj's bias
    with pytest.raises(ValueError, match="embed_dim=0"):
        MultiHeadAttention(0, 1)


def test_cache_gives_the_outputs_of_the_full_causal_pass():
    _, ours = build(8, 2, seed=5, batch_first=True)
    x, memory = torch.randn(2, 6, 8, dtype=F64), torch.randn(2, 4, 8, dtype=F64)
    pad = torch.tensor([[False] * 4, [False, False, True, True]])
    full = ours(x, x, x, is_causal=True, need_weights=False)[0]
    cross = ours(x, memory, memory, key_padding_mask=pad)[0]
    cache, static = KVCache(), KVCache(static=True)
    steps, cross_steps = [], []
    for t in range(6):
        xt = x[:, t:t + 1]
        steps.append(ours(xt, xt, xt, is_causal=True, cache=cache)[0])
        cross_steps.append(ours(xt, memory, memory, key_padding_mask=pad, cache=static)[0])
    assert len(cache) == 6 and len(static) == 4              # the memory is projected once
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.cat(cross_steps, 1), cross, rtol=0, atol=1e-12)
    cache = KVCache()                                      # a prefix at once, then one position at a time
    a = ours(x[:, :4], x[:, :4], x[:, :4], is_causal=True, cache=cache)[0]
    b = ours(x[:, 4:], x[:, 4:], x[:, 4:], is_causal=True, cache=cache)[0]
    torch.testing.assert_close(torch.cat([a, b], 1), full, rtol=0, atol=1e-12)
    cache.reorder(torch.tensor([1, 1]))
    assert torch.equal(cache.k[0], cache.k[1])
    with pytest.raises(ValueError, match="add_bias_kv"):
        MultiHeadAttention(8, 2, add_bias_kv=True)(x[:, :1], x[:, :1], x[:, :1], cache=KVCache())


def test_split_merge():
    x = torch.randn(3, 5, 12)
    assert torch.equal(merge_heads(split_heads(x, 4)), x)
    assert torch.equal(split_heads(x, 4)[:, 2], x[..., 6:9])
    with pytest.raises(ValueError, match=r"cannot split 12 features into 5 heads: x \(3, 5, 12\)"):
        split_heads(x, 5)


def test_dropout_only_in_training():
    m = MultiHeadAttention(8, 2, dropout=0.5, batch_first=True)
    x = torch.randn(2, 5, 8)
    m.eval()
    assert torch.equal(m(x, x, x)[0], m(x, x, x)[0])
    m.train()
    torch.manual_seed(0)
    _, w = m(x, x, x, average_attn_weights=False)
    assert 0.3 < (w == 0).float().mean() < 0.7             # about half the weights dropped, the rest scaled by 2


@pytest.mark.parametrize("call, error, message", [
    (lambda m, x: MultiHeadAttention(10, 3), ValueError, "embed_dim=10 must be a positive multiple of num_heads=3"),
    (lambda m, x: m(x, torch.randn(3, 7, 16), torch.randn(3, 7, 16)), ValueError,
     r"agree on the batch size.*query \(2, 5, 16\), key \(3, 7, 16\)"),
    (lambda m, x: m(torch.randn(2, 5, 12), x, x), ValueError, r"query must have 16 features .* query \(2, 5, 12\)"),
    (lambda m, x: m(x, x[0], x[0]), ValueError, "all be batched .* or all unbatched"),
    (lambda m, x: m(x, x, x, key_padding_mask=torch.zeros(2, 4, dtype=torch.bool)), ValueError,
     r"key_padding_mask must be \(B, S\) = \(2, 5\).*got \(2, 4\)"),
    (lambda m, x: m(x, x, x, attn_mask=torch.ones(5, 4, dtype=torch.bool)), ValueError,
     r"attn_mask must be \(L, S\) = \(5, 5\) or \(B\*num_heads, L, S\) = \(8, 5, 5\), got \(5, 4\)"),
    (lambda m, x: m(x, x, x, attn_mask=torch.ones(5, 5, dtype=torch.long)), TypeError, "attn_mask must be bool"),
    (lambda m, x: m(x, x, x, key_padding_mask=torch.ones(2, 5, dtype=torch.long)), TypeError,
     "key_padding_mask must be bool"),
])
def test_bad_inputs_raise_errors_that_name_the_shapes(call, error, message):
    with pytest.raises(error, match=message):
        call(MultiHeadAttention(16, 4, batch_first=True), torch.randn(2, 5, 16))


def test_mixed_mask_types_need_no_warning():
    "torch warns when a bool padding mask meets a float attn_mask; both are the same masks to us."
    ref, ours = build(8, 2, seed=6, batch_first=True)
    x = torch.randn(2, 4, 8, dtype=F64)
    pad = torch.tensor([[False] * 4, [False, False, False, True]])
    fmask = torch.randn(4, 4, dtype=F64)
    o_ref = ref(x, x, x, attn_mask=fmask, key_padding_mask=torch.zeros(2, 4, dtype=F64).masked_fill(pad, -math.inf))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        o = ours(x, x, x, attn_mask=fmask, key_padding_mask=pad)[0]
    torch.testing.assert_close(o, o_ref, rtol=0, atol=1e-10)
