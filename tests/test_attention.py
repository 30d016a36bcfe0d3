"""attn_tutorial.attention: equal to PyTorch, the properties attention must have, and its error cases.

Tolerances: float64 comparisons with PyTorch use atol 1e-10 (the two compute the same sums in a different order,
so they differ by round-off, ~1e-16 relative); "exactly" means bitwise.
"""
from __future__ import annotations

import math

import hypothesis.strategies as st
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given

from attn_tutorial.attention import (attention_weights, causal_mask, combine_masks, length_mask, masked_softmax,
                                     scaled_dot_product_attention)

F64 = torch.float64


def rand(*shape, seed, dtype=F64):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def torch_reference(q, k, v, attn_mask=None, is_causal=False, scale=None):
    "torch's SDPA; it refuses attn_mask with is_causal, so the two are folded into one bool mask."
    if attn_mask is not None and is_causal:
        attn_mask, is_causal = attn_mask & causal_mask(q.shape[-2], k.shape[-2]), False
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale)


def naive(q, k, v, allowed, scale):
    "The two formulas, one query and one key at a time, in plain Python floats: an independent reference."
    L, S, Ev = q.shape[0], k.shape[0], v.shape[1]
    out = torch.zeros(L, Ev, dtype=F64)
    for i in range(L):
        e = [float(q[i] @ k[j]) * scale for j in range(S)]
        ok = [j for j in range(S) if allowed[i, j]]
        if not ok:
            continue
        m = max(e[j] for j in ok)
        z = sum(math.exp(e[j] - m) for j in ok)
        for j in ok:
            out[i] += math.exp(e[j] - m) / z * v[j]
    return out


# ---------------------------------------------------------------------------------------------------------
# equal to PyTorch

shapes = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9),
                   st.integers(1, 16), st.integers(1, 16))
mask_kinds = st.sampled_from(["none", "bool", "bool_bcast", "float", "float_neg_inf", "causal", "bool+causal"])


@given(shape=shapes, kind=mask_kinds, scale=st.one_of(st.none(), st.floats(0.01, 3.0)), seed=st.integers(0, 2**16))
def test_equals_torch(shape, kind, scale, seed):
    B, H, L, S, E, Ev = shape
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, n, e, dtype=F64, generator=g) for n, e in ((L, E), (S, E), (S, Ev)))
    kw = {"scale": scale}
    if kind == "bool":
        kw["attn_mask"] = torch.rand(B, H, L, S, generator=g) > 0.4
    elif kind == "bool_bcast":
        kw["attn_mask"] = torch.rand(B, 1, 1, S, generator=g) > 0.4       # a key padding mask
    elif kind == "float":
        kw["attn_mask"] = torch.randn(L, S, dtype=F64, generator=g)
    elif kind == "float_neg_inf":
        kw["attn_mask"] = torch.where(torch.rand(L, S, generator=g) > 0.3, 0.0, float("-inf")).to(F64)
    elif kind == "causal":
        kw["is_causal"] = True
    elif kind == "bool+causal":
        kw["attn_mask"], kw["is_causal"] = torch.rand(B, 1, L, S, generator=g) > 0.3, True
    out, w = scaled_dot_product_attention(q, k, v, **kw)
    assert out.shape == (B, H, L, Ev) and w.shape == (B, H, L, S)
    ref = torch_reference(q, k, v, **kw)
    assert not torch.isnan(ref).any()  # torch 2.13 gives zeros for rows with no allowed key, as we do
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("is_causal", [False, True])
def test_equals_naive_loops(is_causal):
    q, k, v = rand(5, 3, seed=1), rand(7, 3, seed=2), rand(7, 2, seed=3)
    allowed = torch.rand(5, 7, generator=torch.Generator().manual_seed(4)) > 0.3
    allowed[2] = False                                                   # one row with nothing allowed
    out, _ = scaled_dot_product_attention(q, k, v, attn_mask=allowed, is_causal=is_causal)
    full = allowed & causal_mask(5, 7) if is_causal else allowed
    torch.testing.assert_close(out, naive(q, k, v, full, 1 / math.sqrt(3)), rtol=0, atol=1e-12)


def test_unbatched_and_broadcast_batch():
    q, k, v = rand(4, 8, seed=0), rand(6, 8, seed=1), rand(6, 5, seed=2)
    out, w = scaled_dot_product_attention(q, k, v)
    assert out.shape == (4, 5) and w.shape == (4, 6)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), rtol=0, atol=1e-10)
    qb = rand(3, 2, 4, 8, seed=3)                                        # keys shared across the batch
    out_b, _ = scaled_dot_product_attention(qb, k, v)
    assert out_b.shape == (3, 2, 4, 5)
    torch.testing.assert_close(out_b, F.scaled_dot_product_attention(qb, k.expand(3, 2, 6, 8), v.expand(3, 2, 6, 5)),
                               rtol=0, atol=1e-10)


def test_default_scale_is_one_over_sqrt_e():
    q, k, v = rand(2, 3, 16, seed=0), rand(2, 5, 16, seed=1), rand(2, 5, 4, seed=2)
    a, wa = scaled_dot_product_attention(q, k, v)
    b, wb = scaled_dot_product_attention(q, k, v, scale=0.25)
    assert torch.equal(a, b) and torch.equal(wa, wb)


def test_dropout_returns_the_weights_it_applied():
    q, k, v = rand(2, 6, 8, seed=0), rand(2, 9, 8, seed=1), rand(2, 9, 3, seed=2)
    torch.manual_seed(0)
    out, w = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    _, w_clean = scaled_dot_product_attention(q, k, v)
    dropped = w == 0
    assert 0.2 < dropped.double().mean() < 0.8                              # about half the weights are dropped
    torch.testing.assert_close(w[~dropped], 2 * w_clean[~dropped], rtol=0, atol=1e-12)  # the rest scaled 1/(1-p)
    torch.testing.assert_close(out, w @ v, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# properties

@given(L=st.integers(1, 8), S=st.integers(1, 8), seed=st.integers(0, 2**16), causal=st.booleans())
def test_weights_are_a_distribution_over_allowed_keys(L, S, seed, causal):
    g = torch.Generator().manual_seed(seed)
    q, k, v = torch.randn(2, L, 4, dtype=F64, generator=g), torch.randn(2, S, 4, dtype=F64, generator=g), \
        torch.randn(2, S, 3, dtype=F64, generator=g)
    mask = torch.rand(2, L, S, generator=g) > 0.5
    _, w = scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    allowed = mask & causal_mask(L, S) if causal else mask
    assert (w >= 0).all()
    assert (w[~allowed] == 0).all()                                           # masked keys: exactly 0
    has_any = allowed.any(-1)
    torch.testing.assert_close(w.sum(-1)[has_any], torch.ones(int(has_any.sum()), dtype=F64), rtol=0, atol=1e-12)
    assert (w.sum(-1)[~has_any] == 0).all()                                   # nothing allowed: all zero


@given(L=st.integers(1, 8), extra=st.integers(0, 4), i=st.integers(0, 7), seed=st.integers(0, 2**16))
def test_causal_output_ignores_later_keys(L, extra, i, seed):
    i = i % L
    S = L + extra
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(L if n == 0 else S, 5, dtype=F64, generator=g) for n in range(3))
    out, _ = scaled_dot_product_attention(q, k, v, is_causal=True)
    k2, v2 = k.clone(), v.clone()
    k2[i + 1:] = torch.randn(S - i - 1, 5, dtype=F64, generator=g) * 100      # change every key/value after i
    v2[i + 1:] = torch.randn(S - i - 1, 5, dtype=F64, generator=g) * 100
    out2, _ = scaled_dot_product_attention(q, k2, v2, is_causal=True)
    assert torch.equal(out[: i + 1], out2[: i + 1])                            # exactly: their weights are exactly 0


@given(S=st.integers(1, 10), seed=st.integers(0, 2**16), masked=st.booleans())
def test_permuting_keys_and_values_together_changes_nothing(S, seed, masked):
    g = torch.Generator().manual_seed(seed)
    q, k, v = torch.randn(4, 6, dtype=F64, generator=g), torch.randn(S, 6, dtype=F64, generator=g), \
        torch.randn(S, 3, dtype=F64, generator=g)
    mask = torch.rand(4, S, generator=g) > 0.3 if masked else None
    perm = torch.randperm(S, generator=g)
    out, w = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out_p, w_p = scaled_dot_product_attention(q, k[perm], v[perm], attn_mask=None if mask is None else mask[:, perm])
    torch.testing.assert_close(out_p, out, rtol=0, atol=1e-12)               # only the order of the sum changes
    torch.testing.assert_close(w_p, w[:, perm], rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# gradients, large scores, fully masked rows

@pytest.mark.parametrize("kw", [{}, {"is_causal": True}, {"scale": 0.3},
                                {"attn_mask": torch.tensor([[True, False, True, True], [False] * 4, [True] * 4])},
                                {"attn_mask": torch.tensor([[0.0, -1.0, 2.0, float("-inf")]], dtype=F64)}])
def test_gradcheck(kw):
    q = rand(2, 3, 5, seed=0).requires_grad_()
    k = rand(2, 4, 5, seed=1).requires_grad_()
    v = rand(2, 4, 3, seed=2).requires_grad_()
    assert torch.autograd.gradcheck(lambda *t: scaled_dot_product_attention(*t, **kw)[0], (q, k, v))
    assert torch.autograd.gradcheck(lambda *t: scaled_dot_product_attention(*t, **kw)[1], (q, k, v))


def test_large_scores_stay_finite_in_float32():
    q = torch.full((1, 2, 4), 100.0)
    k = torch.tensor([[[100.0] * 4, [-100.0] * 4, [99.0] * 4]])                # scores up to 2e4
    v = torch.randn(1, 3, 2)
    out, w = scaled_dot_product_attention(q, k, v, scale=1.0)
    assert torch.isfinite(out).all() and torch.isfinite(w).all()
    torch.testing.assert_close(out, v[:, :1].expand(1, 2, 2))                 # all weight on the largest score
    s = torch.tensor([1e4, -1e4, 0.0, 1e4 - 1])
    torch.testing.assert_close(masked_softmax(s), torch.softmax(s, 0), rtol=0, atol=1e-7)


@pytest.mark.parametrize("mask", ["bool", "float", "causal_and_padding"])
def test_fully_masked_row_gives_zeros_and_finite_gradients(mask):
    q, k, v = (rand(1, 3, 4, seed=s).requires_grad_() for s in range(3))
    if mask == "bool":
        kw = {"attn_mask": torch.tensor([[True] * 3, [False] * 3, [True] * 3])}
    elif mask == "float":
        kw = {"attn_mask": torch.tensor([[0.0] * 3, [float("-inf")] * 3, [0.0] * 3], dtype=F64)}
    else:  # the first key is padding, so query 0 (which may only see key 0) sees nothing
        kw = {"attn_mask": torch.tensor([[False, True, True]]), "is_causal": True}
    blind = 1 if mask != "causal_and_padding" else 0
    out, w = scaled_dot_product_attention(q, k, v, **kw)
    assert torch.equal(w[0, blind], torch.zeros(3, dtype=F64))
    assert torch.equal(out[0, blind], torch.zeros(4, dtype=F64))
    (out.sum() + w.sum()).backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    assert torch.equal(q.grad[0, blind], torch.zeros(4, dtype=F64))          # the blind query influences nothing


def test_masked_softmax():
    s = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=F64)
    m = torch.tensor([[True, True, True], [True, False, True], [False, False, False]])
    w = masked_softmax(s, m)
    torch.testing.assert_close(w[0], torch.softmax(s[0], 0), rtol=0, atol=1e-15)
    torch.testing.assert_close(w[1], torch.tensor([1 / (1 + math.e**2), 0, math.e**2 / (1 + math.e**2)], dtype=F64),
                               rtol=0, atol=1e-15)
    assert torch.equal(w[2], torch.zeros(3, dtype=F64))
    torch.testing.assert_close(masked_softmax(s.T, m.T, dim=0), w.T, rtol=0, atol=1e-16)   # the other dim
    float_mask = torch.zeros(3, 3, dtype=F64).masked_fill(~m, float("-inf"))
    assert torch.equal(masked_softmax(s, float_mask), w)                  # -inf in a float mask = False
    scores = s.clone()
    assert torch.equal(masked_softmax(scores, m, inplace=True), w) and torch.equal(scores, w)   # overwritten
    grad_scores = s.clone().requires_grad_()
    masked_softmax(grad_scores, m, inplace=True)                          # autograd needs them: not overwritten
    assert torch.equal(grad_scores.detach(), s)
    with pytest.raises(TypeError, match="bool"):
        masked_softmax(s, m.int())


def test_masks():
    assert torch.equal(causal_mask(2, 3), torch.tensor([[True, False, False], [True, True, False]]))
    assert torch.equal(causal_mask(2, 4, offset=2), torch.tensor([[True, True, True, False], [True] * 4]))
    assert torch.equal(causal_mask(3), causal_mask(3, 3))
    assert torch.equal(length_mask(torch.tensor([2, 0, 3])),
                       torch.tensor([[True, True, False], [False, False, False], [True, True, True]]))
    assert length_mask([1, 2], S=4).shape == (2, 4)
    with pytest.raises(ValueError, match=r"\(2, 1\)"):
        length_mask(torch.tensor([[1], [2]]))


# ---------------------------------------------------------------------------------------------------------
# bad input

@pytest.mark.parametrize("shapes, mask, message", [
    (((2, 5, 8), (2, 7, 6), (2, 7, 4)), None, r"same E: query \(2, 5, 8\), key \(2, 7, 6\)"),
    (((2, 5, 8), (2, 7, 8), (2, 6, 4)), None, r"same S: query \(2, 5, 8\), key \(2, 7, 8\), value \(2, 6, 4\)"),
    (((2, 5, 8), (3, 7, 8), (3, 7, 4)), None, r"batch dims .* query \(2, 5, 8\), key \(3, 7, 8\)"),
    (((8,), (7, 8), (7, 4)), None, r"query must be \(\.\.\., length, features\), got shape \(8,\)"),
    (((2, 5, 8), (2, 7, 8), (2, 7, 4)), (5, 6), r"attn_mask \(5, 6\) does not broadcast .* \(2, 5, 7\)"),
    (((2, 5, 8), (2, 7, 8), (2, 7, 4)), (3, 5, 7), r"attn_mask \(3, 5, 7\) does not broadcast"),
    (((2, 5, 8), (2, 7, 8), (2, 7, 4)), (4, 2, 5, 7), r"attn_mask \(4, 2, 5, 7\) does not broadcast"),
])
def test_bad_shapes_raise_value_error_naming_them(shapes, mask, message):
    q, k, v = (torch.zeros(s) for s in shapes)
    attn_mask = None if mask is None else torch.ones(mask, dtype=torch.bool)
    with pytest.raises(ValueError, match=message):
        scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)


def test_bad_dtypes_raise_type_error():
    q, k, v = torch.zeros(2, 3, 4), torch.zeros(2, 5, 4), torch.zeros(2, 5, 2)
    with pytest.raises(TypeError, match="attn_mask must be bool .* or float"):
        scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(3, 5, dtype=torch.int64))
    with pytest.raises(TypeError, match="share a dtype"):
        scaled_dot_product_attention(q, k.double(), v)


def test_attention_weights_is_the_second_formula_of_sdpa():
    q, k, v = rand(2, 5, 8, seed=10), rand(2, 7, 8, seed=11), rand(2, 7, 3, seed=12)
    mask = torch.rand(2, 5, 7, generator=torch.Generator().manual_seed(13)) > 0.4
    scores = (q * (1 / math.sqrt(8))) @ k.mT                        # the same rounding as the function
    for kw in ({}, {"attn_mask": mask}, {"attn_mask": rand(5, 7, seed=14)}, {"is_causal": True},
               {"attn_mask": mask, "is_causal": True}):
        assert torch.equal(attention_weights(scores, **kw), scaled_dot_product_attention(q, k, v, **kw)[1])
    with pytest.raises(ValueError, match=r"attn_mask \(5, 6\) does not broadcast to the scores' shape \(2, 5, 7\)"):
        attention_weights(scores, torch.ones(5, 6, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool .* or float"):
        attention_weights(scores, torch.ones(5, 7, dtype=torch.long))


# ---------------------------------------------------------------------------------------------------------
# the one place masks meet, grouped-query attention, empty and half-precision inputs

def test_combine_masks():
    allowed = torch.tensor([[True, False, True], [True, True, False]])
    pad = torch.tensor([[True, True, False]])                              # (1, S): broadcasts over queries
    assert combine_masks(2, 3) is None
    assert torch.equal(combine_masks(2, 3, allowed, None, pad), allowed & pad)
    assert torch.equal(combine_masks(2, 3, allowed, is_causal=True), allowed & causal_mask(2, 3))
    assert torch.equal(combine_masks(2, 3, is_causal=True, offset=1), causal_mask(2, 3, offset=1))
    bias = torch.tensor([[0.5, -1.0, 2.0]], dtype=F64)
    mixed = combine_masks(2, 3, bias, allowed, bias)
    assert mixed.dtype == F64 and mixed.shape == (2, 3)
    torch.testing.assert_close(mixed, torch.where(allowed, 2 * bias, float("-inf")), rtol=0, atol=0)
    w = attention_weights(torch.zeros(2, 3, dtype=F64), mixed)
    torch.testing.assert_close(w, attention_weights(torch.zeros(2, 3, dtype=F64) + 2 * bias, allowed), rtol=0, atol=0)


@given(B=st.integers(1, 2), groups=st.integers(1, 3), kv_heads=st.integers(1, 3), L=st.integers(1, 6),
       S=st.integers(1, 6), kind=st.sampled_from(["none", "bool", "causal"]), seed=st.integers(0, 2**16))
def test_enable_gqa_equals_torch(B, groups, kv_heads, L, S, kind, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, kv_heads * groups, L, 4, dtype=F64, generator=g)
    k, v = torch.randn(B, kv_heads, S, 4, dtype=F64, generator=g), torch.randn(B, kv_heads, S, 3, dtype=F64, generator=g)
    kw = {"attn_mask": torch.rand(L, S, generator=g) > 0.3} if kind == "bool" else {"is_causal": kind == "causal"}
    out, w = scaled_dot_product_attention(q, k, v, enable_gqa=True, **kw)
    ref = F.scaled_dot_product_attention(q, k, v, enable_gqa=True, **kw)
    assert w.shape == (B, kv_heads * groups, L, S)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)
    # query head h reads key/value head h // groups
    h = kv_heads * groups - 1
    alone, _ = scaled_dot_product_attention(q[:, h], k[:, h // groups], v[:, h // groups], **kw)
    torch.testing.assert_close(out[:, h], alone, rtol=0, atol=0)


def test_enable_gqa_errors_name_the_shapes():
    q, k = torch.zeros(1, 6, 2, 4), torch.zeros(1, 4, 3, 4)
    with pytest.raises(ValueError, match=r"Hq a multiple of Hkv: query \(1, 6, 2, 4\), key \(1, 4, 3, 4\)"):
        scaled_dot_product_attention(q, k, k, enable_gqa=True)


def test_empty_inputs_as_torch():
    q, k, v = rand(2, 3, 4, seed=0), rand(2, 5, 4, seed=1), rand(2, 5, 6, seed=2)
    cases = [(q, k[:, :0], v[:, :0]),                  # no keys: zeros
             (q[:, :0], k, v),                         # no queries
             (q[..., :0], k[..., :0], v)]              # E = 0: every score is 0, the output is the mean value
    for a, b, c in cases:
        out, w = scaled_dot_product_attention(a, b, c)
        ref = F.scaled_dot_product_attention(a, b, c)
        assert out.shape == ref.shape and w.shape == (2, a.shape[1], b.shape[1])
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    assert (scaled_dot_product_attention(*cases[0])[0] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_large_scores_stay_finite(dtype):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 8, 64, generator=g) * 30 for _ in range(3))   # q·k up to ~6e4 * 2: past float16
    ref = scaled_dot_product_attention(q, k, v)[0]
    out, w = scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype))
    assert torch.isfinite(out).all() and torch.isfinite(w).all()
    assert (out.float() - ref).abs().max() < 0.1 * ref.abs().max()
