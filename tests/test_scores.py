"""attn_tutorial.scores: every score has the documented shape, matches a hand computation, drives attention with
the masking rules of attn_tutorial.attention, and names the shapes when they do not fit.

"Exactly" means bitwise; float64 hand computations use atol 1e-15 (one or two roundings of numbers of size ~1).
"""
from __future__ import annotations

import math

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given

from attn_tutorial.attention import attention_weights, causal_mask, scaled_dot_product_attention
from attn_tutorial.scores import (SCORES, AdditiveScore, BilinearScore, CosineScore, DotScore, LookupModel,
                                  ScoreAttention, cosine_scores, dot_scores, make_score, scaled_dot_scores)

F64 = torch.float64


def rand(*shape, seed):
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed))


@given(B=st.integers(1, 3), L=st.integers(1, 6), S=st.integers(1, 6), E=st.integers(1, 9), seed=st.integers(0, 999))
def test_every_score_has_the_documented_shape(B, L, S, E, seed):
    q, k = rand(B, 2, L, E, seed=seed), rand(1, S, E, seed=seed + 1)            # batch dims broadcast
    torch.manual_seed(seed)
    for name in SCORES:
        assert make_score(name, E, E, hidden=4).double()(q, k).shape == (B, 2, L, S), name
    for fn in (dot_scores, scaled_dot_scores, cosine_scores):
        assert fn(q, k).shape == (B, 2, L, S)


def test_hand_computations():
    q = torch.tensor([[1.0, 2.0]], dtype=F64)
    k = torch.tensor([[3.0, 0.0], [0.0, 1.0], [-2.0, 1.0]], dtype=F64)
    assert dot_scores(q, k).tolist() == [[3.0, 2.0, 0.0]]
    r5 = math.sqrt(5)
    torch.testing.assert_close(cosine_scores(q, k), torch.tensor([[1 / r5, 2 / r5, 0.0]], dtype=F64), rtol=0, atol=1e-15)
    bil = BilinearScore(2, 2).double()
    with torch.no_grad():
        bil.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
    assert bil(torch.tensor([[1.0, 1.0]], dtype=F64), torch.tensor([[2.0, 3.0]], dtype=F64)).item() == 11.0
    add = AdditiveScore(2, 3, hidden=2).double()
    with torch.no_grad():
        add.w_q.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        add.w_k.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]))
        add.w_k.bias.copy_(torch.tensor([0.5, 0.0]))
        add.v.weight.copy_(torch.tensor([[2.0, -1.0]]))
    # q = (1, 1): W_q q = (1, 2); k = (1, 0, 3): W_k k + b = (1.5, -3); e = 2 tanh(2.5) - tanh(-1)
    e = add(torch.tensor([[1.0, 1.0]], dtype=F64), torch.tensor([[1.0, 0.0, 3.0]], dtype=F64))
    assert abs(e.item() - (2 * math.tanh(2.5) - math.tanh(-1.0))) < 1e-15


@given(L=st.integers(1, 6), S=st.integers(1, 6), E=st.integers(1, 12), seed=st.integers(0, 999))
def test_scaled_is_dot_over_sqrt_d_and_matches_a_loop(L, S, E, seed):
    q, k = rand(L, E, seed=seed), rand(S, E, seed=seed + 1)
    torch.testing.assert_close(scaled_dot_scores(q, k), dot_scores(q, k) / math.sqrt(E), rtol=0, atol=1e-13)
    loop = torch.tensor([[sum(float(q[i, m]) * float(k[j, m]) for m in range(E)) for j in range(S)] for i in range(L)],
                        dtype=F64)
    torch.testing.assert_close(dot_scores(q, k), loop, rtol=0, atol=1e-12)
    assert torch.equal(DotScore(scaled=True)(q, k), scaled_dot_scores(q, k))
    assert torch.equal(DotScore(scaled=False)(q, k), dot_scores(q, k))


@given(tau=st.floats(0.01, 10.0), scale=st.floats(1e-3, 1e3), seed=st.integers(0, 999))
def test_cosine_lies_in_the_temperature_bounds_and_ignores_lengths(tau, scale, seed):
    q, k = rand(7, 5, seed=seed), rand(9, 5, seed=seed + 1)
    c = cosine_scores(q, k, temperature=tau)
    assert (c.abs() <= 1 / tau * (1 + 1e-12)).all()
    torch.testing.assert_close(cosine_scores(q * scale, k, temperature=tau), c, rtol=1e-12, atol=1e-12)
    # the bound is reached: a key equal to the query scores exactly 1/tau, its negative -1/tau
    reach = cosine_scores(q[:1], torch.cat([q[:1], -q[:1]]), temperature=tau)
    torch.testing.assert_close(reach, torch.tensor([[1 / tau, -1 / tau]], dtype=F64), rtol=1e-12, atol=0)


def test_cosine_score_module_and_learned_temperature():
    fixed, learned = CosineScore(0.5), CosineScore(0.5, learn_temperature=True)
    assert [n for n, _ in fixed.named_parameters()] == [] and [n for n, _ in learned.named_parameters()] == ["log_temperature"]
    q, k = torch.randn(3, 4), torch.randn(5, 4)
    torch.testing.assert_close(fixed(q, k), cosine_scores(q, k, 0.5))
    learned(q, k).sum().backward()
    assert learned.log_temperature.grad is not None and learned.log_temperature.grad != 0
    with pytest.raises(ValueError, match="temperature must be > 0"):
        CosineScore(0.0)


def test_dot_is_not_cosine_when_key_lengths_differ():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[0.5, 0.0], [1.5, 1.5 * math.sqrt(3)]])        # aligned short key; long key at 60 degrees
    assert dot_scores(q, k).argmax().item() == 1 and cosine_scores(q, k).argmax().item() == 0


def test_score_attention_with_scaled_dot_is_sdpa_exactly_with_masks():
    q, k, v = rand(2, 3, 5, 8, seed=0), rand(2, 3, 7, 8, seed=1), rand(2, 3, 7, 4, seed=2)
    mask = torch.rand(2, 1, 5, 7, generator=torch.Generator().manual_seed(3)) > 0.4
    float_mask = rand(5, 7, seed=4)
    for kw in ({}, {"attn_mask": mask}, {"attn_mask": float_mask}, {"is_causal": True},
               {"attn_mask": mask, "is_causal": True}):
        ours, ref = ScoreAttention(DotScore())(q, k, v, **kw), scaled_dot_product_attention(q, k, v, **kw)
        assert torch.equal(ours[0], ref[0]) and torch.equal(ours[1], ref[1])


@pytest.mark.parametrize("name", SCORES)
def test_every_score_obeys_masks(name):
    torch.manual_seed(0)
    attn = ScoreAttention(make_score(name, 8, 8, hidden=6)).double()
    q, k, v = rand(2, 5, 8, seed=0), rand(2, 7, 8, seed=1), rand(2, 7, 3, seed=2)
    allowed = torch.rand(2, 5, 7, generator=torch.Generator().manual_seed(5)) > 0.5
    allowed[0, 1] = False                                            # a query that may attend nothing
    out, w = attn(q, k, v, attn_mask=allowed, is_causal=True)
    ok = allowed & causal_mask(5, 7)
    assert (w[~ok] == 0).all() and torch.isfinite(out).all()
    assert (w[0, 1] == 0).all() and (out[0, 1] == 0).all()
    rows = ok.any(-1)
    torch.testing.assert_close(w.sum(-1)[rows], torch.ones_like(w.sum(-1)[rows]), rtol=0, atol=1e-14)
    torch.testing.assert_close(w, attention_weights(attn.score(q, k), allowed, is_causal=True), rtol=0, atol=0)


def test_additive_memory_is_hidden_times_pairs():
    from attn_tutorial.measure import saved_tensor_bytes
    L, S, h = 32, 48, 10
    x, y = torch.randn(1, L, 8, requires_grad=True), torch.randn(1, S, 8, requires_grad=True)
    dot_b = saved_tensor_bytes(DotScore(), x, y)[0]
    add_b = saved_tensor_bytes(AdditiveScore(8, 8, h), x, y)[0]
    assert add_b - dot_b >= L * S * h * 4                            # the (L, S, h) float32 tensor is kept


@pytest.mark.parametrize("call, message", [
    (lambda: dot_scores(torch.randn(2, 5, 8), torch.randn(2, 7, 6)), r"same E: query \(2, 5, 8\), key \(2, 7, 6\)"),
    (lambda: cosine_scores(torch.randn(8), torch.randn(7, 8)), r"query must be \(\.\.\., length, features\), got shape \(8,\)"),
    (lambda: scaled_dot_scores(torch.randn(2, 5, 8), torch.randn(3, 7, 8)), r"batch dims .* \(2, 5, 8\) and key \(3, 7, 8\)"),
    (lambda: BilinearScore(4, 3)(torch.randn(5, 4), torch.randn(7, 4)), r"built for query \(\.\.\., L, 4\) and key \(\.\.\., S, 3\)"),
    (lambda: AdditiveScore(8, 8, 4)(torch.randn(5, 8), torch.randn(7, 6)), r"got query \(5, 8\), key \(7, 6\)"),
    (lambda: ScoreAttention(DotScore())(torch.randn(5, 8), torch.randn(7, 8), torch.randn(6, 8)), r"key \(7, 8\), value \(6, 8\)"),
    (lambda: ScoreAttention(DotScore())(torch.randn(5, 8), torch.randn(7, 8), torch.randn(7, 8), attn_mask=torch.ones(5, 6, dtype=torch.bool)), r"attn_mask \(5, 6\)"),
    (lambda: make_score("dot", 8, 6), "query_dim == key_dim"),
    (lambda: make_score("nope", 8, 8), "unknown score"),
])
def test_bad_inputs_raise_value_errors_naming_shapes(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_lookup_model_shapes_and_learns():
    from attn_tutorial.data import lookup_task
    from attn_tutorial.train import fit, seed_everything
    import torch.nn.functional as F
    seed_everything(0)
    train, test = lookup_task(4000, 4, n_keys=8, n_values=8, seed=0), lookup_task(500, 4, n_keys=8, n_values=8, seed=1)
    m = LookupModel(DotScore(), n_keys=8, n_values=8, dim=16)
    logits, w = m(test.keys, test.values, test.query)
    assert logits.shape == (500, 8) and w.shape == (500, 1, 4)
    fit(m, lambda m, b: F.cross_entropy(m(b.keys, b.values, b.query)[0], b.target), train.batches(64, shuffle=True),
        300, device="cpu", progress=False)
    with torch.no_grad():
        logits, w = m(test.keys, test.values, test.query)
    assert (logits.argmax(-1) == test.target).float().mean() > 0.95
    assert (w[:, 0].argmax(-1) == test.position).float().mean() > 0.95   # it attends the pair that holds the answer
