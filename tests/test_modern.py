"""attn_tutorial.modern: RoPE's scores depend only on distance and its two layouts are one rotation, ALiBi's
slopes are the paper's, the window is a band of the causal mask, grouped-query attention is multi-head
attention with repeated key/value heads, a Llama is a `GPT` of `LlamaConfig` whose attention is the book's
`MultiHeadAttention`, and `GPT.from_hf` copies transformers' Llama and Mistral (logits within 1e-6 in float64,
since Hugging Face computes RoPE and RMSNorm in float32; greedy tokens equal with and without the cache).
`transformers` is needed only by the tests that take its fixture."""
from __future__ import annotations

import pytest
import torch

from attn_tutorial.gpt import GPT
from attn_tutorial.modern import (
    LlamaAttention, LlamaConfig, RMSNorm, alibi_bias, alibi_slopes, apply_rope,
    apply_rope_interleaved, cache_bytes, rope_angles, window_mask,
)
from attn_tutorial.multihead import KVCache, MultiHeadAttention


@pytest.fixture(scope="module")
def transformers():
    "The reference models' library (a test-only dependency): the tests that need it skip without it."
    return pytest.importorskip("transformers")


def Llama(vocab_size, n_positions=2048, n_embd=128, n_layer=4, n_head=4, **kw):
    "A Llama of these settings (the tests' shorthand): a GPT built from a LlamaConfig."
    return GPT(LlamaConfig(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                           n_head=n_head, **kw))


def attend(layer, x, cache=None):
    "Causal self-attention of `layer` (a LlamaAttention) over `x (B, T, E)`, as a block calls it."
    return layer(x, x, x, need_weights=False, is_causal=True, cache=cache)[0]


def test_rope_score_depends_only_on_distance():
    torch.manual_seed(0)
    q, k = torch.randn(2, 32, dtype=torch.float64)
    pos = torch.tensor([3, 11, 503, 511, 0, 8])
    cos, sin = rope_angles(32, pos)
    r = lambda x, i: apply_rope(x, cos[i], sin[i])
    s1, s2, s3 = (r(q, i) @ r(k, i + 1) for i in (0, 2, 4))  # distance -8 each time
    assert abs(s1 - s2) < 1e-10 and abs(s1 - s3) < 1e-10
    assert abs(r(q, 0) @ r(k, 2) - r(q, 0) @ r(k, 1)) > 1e-3  # another distance differs
    # a rotation: norms kept
    torch.testing.assert_close(r(q, 2).norm(), q.norm(), rtol=0, atol=1e-12)


def test_rope_layouts_differ_by_a_permutation():
    x = torch.randn(2, 3, 7, 16, dtype=torch.float64)
    cos, sin = rope_angles(16, torch.arange(5, 12))
    perm = torch.cat([torch.arange(0, 16, 2), torch.arange(1, 16, 2)])
    torch.testing.assert_close(
        apply_rope(x[..., perm], cos, sin), apply_rope_interleaved(x, cos, sin)[..., perm],
        rtol=0, atol=1e-12,
    )
    with pytest.raises(ValueError, match="head_dim must be even, got 7"):
        rope_angles(7, torch.arange(3))


def test_rope_matches_hugging_face_rotary(transformers):
    from transformers.models.llama import modeling_llama as ml

    config = transformers.LlamaConfig(hidden_size=64, num_attention_heads=4)
    rotary = ml.LlamaRotaryEmbedding(config)
    x = torch.randn(1, 4, 9, 16, dtype=torch.float64)
    pos = torch.arange(100, 109)[None]
    cos_hf, sin_hf = rotary(x, pos)
    q_hf, _ = ml.apply_rotary_pos_emb(x, x, cos_hf, sin_hf)
    cos, sin = rope_angles(16, pos[0])
    # theirs: angles in float32; the positions reach 108, so allow float32's error there
    torch.testing.assert_close(apply_rope(x, cos, sin), q_hf, rtol=0, atol=1e-4)
    torch.testing.assert_close(cos, cos_hf[0], rtol=0, atol=1e-4)


def test_alibi_slopes_and_bias():
    torch.testing.assert_close(alibi_slopes(8), 2.0 ** -torch.arange(1.0, 9.0))
    torch.testing.assert_close(alibi_slopes(4), 2.0 ** -torch.arange(2.0, 9.0, 2.0))
    # 6 heads: the 4-head slopes, then every other slope of the 8-head sequence
    torch.testing.assert_close(alibi_slopes(6)[4:], 2.0 ** -torch.tensor([1.0, 3.0]))
    b = alibi_bias(2, 3, 5, offset=2)  # queries at 2, 3, 4 over keys 0..4
    torch.testing.assert_close(b[0, 0], -0.0625 * torch.tensor([2.0, 1, 0, 0, 0]))


def test_window_mask_is_a_band_of_the_causal_mask():
    m = window_mask(6, 6, window=3)
    i, j = torch.meshgrid(torch.arange(6), torch.arange(6), indexing="ij")
    assert torch.equal(m, (j <= i) & (i - j < 3))
    m = window_mask(2, 7, window=4, offset=5)  # two new queries after 5 cached keys
    assert m.tolist() == [[False, False, True, True, True, True, False],
                          [False, False, False, True, True, True, True]]
    assert torch.equal(window_mask(4, 4), torch.ones(4, 4).tril().bool())


def test_rmsnorm_against_torch_and_in_half_precision():
    norm = RMSNorm(8, eps=1e-6).double()
    with torch.no_grad():
        norm.weight.uniform_()
    x = torch.randn(4, 8, dtype=torch.float64)
    theirs = torch.nn.RMSNorm(8, eps=1e-6).double()
    theirs.load_state_dict(norm.state_dict())
    torch.testing.assert_close(norm(x), theirs(x), rtol=0, atol=1e-12)
    half = RMSNorm(8).half()(torch.full((2, 8), 3e4, dtype=torch.half))
    assert half.dtype == torch.half and torch.isfinite(half).all()


def test_grouped_query_attention_is_mha_with_repeated_kv_heads():
    torch.manual_seed(0)
    gqa = LlamaAttention(48, 6, num_kv_heads=2).double()
    mha = LlamaAttention(48, 6).double()
    assert isinstance(gqa, MultiHeadAttention) and gqa.k_proj_weight.shape == (16, 48)
    with torch.no_grad():
        k, v = (w.view(2, 8, 48).repeat_interleave(3, 0).reshape(48, 48)
                for w in (gqa.k_proj_weight, gqa.v_proj_weight))
        mha.in_proj_weight.copy_(torch.cat([gqa.q_proj_weight, k, v]))
        mha.out_proj.weight.copy_(gqa.out_proj.weight)
    x = torch.randn(3, 10, 48, dtype=torch.float64)
    torch.testing.assert_close(attend(gqa, x), attend(mha, x), rtol=0, atol=1e-12)
    # the weights path (the book's own attention) and the fused path agree
    out_w, w = gqa(x, x, x, is_causal=True, average_attn_weights=False)
    torch.testing.assert_close(out_w, attend(gqa, x), rtol=0, atol=1e-12)
    assert w.shape == (3, 6, 10, 10) and (w.triu(1) == 0).all()
    # the cache, one position at a time, gives the full-sequence outputs
    cache = KVCache()
    steps = torch.cat([attend(gqa, x[:, t : t + 1], cache) for t in range(10)], 1)
    torch.testing.assert_close(steps, attend(gqa, x), rtol=0, atol=1e-12)
    assert cache.k.shape == (3, 2, 10, 8)
    assert cache.k.nbytes + cache.v.nbytes == cache_bytes(1, 2, 8, 10, 8) * 3  # batch 3
    with pytest.raises(ValueError, match="num_heads=6 must be a multiple of num_kv_heads=4"):
        LlamaAttention(48, 6, num_kv_heads=4)


def test_window_attention_equals_the_masked_attention_and_caches():
    torch.manual_seed(0)
    from attn_tutorial.modern import RollingKVCache

    att = LlamaAttention(32, 4, num_kv_heads=2, window=5).double()
    full = LlamaAttention(32, 4, num_kv_heads=2).double()
    full.load_state_dict(att.state_dict())
    x = torch.randn(2, 12, 32, dtype=torch.float64)
    # positions < window see everything before them: the same as no window
    torch.testing.assert_close(attend(att, x)[:, :5], attend(full, x)[:, :5], rtol=0, atol=1e-12)
    assert (attend(att, x)[:, 5:] - attend(full, x)[:, 5:]).abs().max() > 1e-3
    # the last query with the window = full attention over its last 5 positions
    last = attend(full, x[:, -5:])[:, -1]
    # (RoPE depends on distances only, so shifting the five positions changes nothing)
    torch.testing.assert_close(attend(att, x)[:, -1], last, rtol=0, atol=1e-12)
    for cache in (KVCache(), att.new_cache()):
        steps = torch.cat([attend(att, x[:, t : t + 1], cache) for t in range(12)], 1)
        torch.testing.assert_close(steps, attend(att, x), rtol=0, atol=1e-12)
    assert isinstance(att.new_cache(), RollingKVCache) and type(full.new_cache()) is KVCache


def _tiny(transformers, kind: str, n_kv_head: int, **extra):
    config = getattr(transformers, f"{kind}Config")(
        vocab_size=101, hidden_size=32, intermediate_size=40, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=n_kv_head, max_position_embeddings=64,
        eos_token_id=None, attn_implementation="eager", **extra,
    )
    torch.manual_seed(0)
    return getattr(transformers, f"{kind}ForCausalLM")(config).double().eval()


@pytest.mark.parametrize(
    "kind, n_kv_head, extra",
    [
        ("Llama", 1, {}),
        ("Llama", 2, {}),
        ("Llama", 4, {"tie_word_embeddings": True}),
        ("Llama", 2, {"head_dim": 16, "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}}),
        ("Mistral", 2, {"sliding_window": 6}),
        ("Mistral", 1, {"sliding_window": None}),
    ],
)
def test_from_hf_logits_and_greedy_tokens(transformers, kind, n_kv_head, extra):
    hf = _tiny(transformers, kind, n_kv_head, **extra)
    ours = GPT.from_hf(hf)
    assert not ours.training and isinstance(ours.config, LlamaConfig)
    # every attention module inside is the book's one multi-head attention (Llama's steps filled in)
    attentions = [m for m in ours.modules() if "attention" in type(m).__name__.lower()]
    assert attentions == [block.attn for block in ours.h]
    assert all(type(a) is LlamaAttention and isinstance(a, MultiHeadAttention) for a in attentions)
    assert ours.config.window == extra.get("sliding_window")
    assert (ours.lm_head is None) == bool(extra.get("tie_word_embeddings"))
    idx = torch.randint(101, (3, 25), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs = hf(idx).logits
    assert theirs.abs().max() > 0.05  # not a trivially small output
    torch.testing.assert_close(ours(idx), theirs, rtol=0, atol=1e-6)
    prompt = idx[:2, :4]
    want = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=30,
                       do_sample=False)
    for use_cache in (True, False):
        assert torch.equal(ours.generate(prompt, 30, use_cache=use_cache), want)


def test_from_hf_refuses_what_it_cannot_copy(transformers):
    with pytest.raises(ValueError, match="LlamaForCausalLM, MistralForCausalLM.*got Linear"):
        GPT.from_hf(torch.nn.Linear(2, 2))
    hf = _tiny(transformers, "Llama", 2, hidden_act="gelu")
    with pytest.raises(ValueError, match="'silu': False"):
        GPT.from_hf(hf)
    # a Llama without its output layer: a clear error, not a missing key
    with pytest.raises(ValueError, match="got LlamaModel"):
        GPT.from_hf(hf.model)


def test_rolling_cache_keeps_the_window_and_gives_the_same_tokens():
    from attn_tutorial.modern import RollingKVCache

    torch.manual_seed(0)
    model = Llama(40, n_positions=200, n_embd=16, n_layer=2, n_head=2, window=5).double().eval()
    caches = model.new_caches()
    assert all(isinstance(c, RollingKVCache) for c in caches)
    prompt = torch.randint(40, (2, 7))
    with torch.no_grad():
        out = [model(prompt, caches)[:, -1]]
        sizes = []
        for t in range(60):
            out.append(model(torch.full((2, 1), t % 40), caches)[:, -1])
            sizes.append(caches[0].k.untyped_storage().nbytes())
    assert len(caches[0]) == 67 and caches[0].k.shape == (2, 2, 4, 8)
    assert len(set(sizes)) == 1  # constant memory: 4 positions' keys, however long
    # the same logits as the whole sequence at once
    full = torch.cat([prompt, torch.arange(60)[None].expand(2, 60) % 40], 1)
    with torch.no_grad():
        want = model(full)[:, 6:]
    torch.testing.assert_close(torch.stack(out, 1), want, rtol=0, atol=1e-12)
    assert torch.equal(model.generate(prompt, 50), model.generate(prompt, 50, use_cache=False))


def test_alibi_attention_adds_the_distance_penalty_to_the_scores():
    torch.manual_seed(0)
    attn = LlamaAttention(32, 4, num_kv_heads=2, positions="alibi").double()
    x = torch.randn(2, 9, 32, dtype=torch.float64)
    q = (x @ attn.q_proj_weight.T).view(2, 9, 4, 8).transpose(1, 2)
    k, v = ((x @ w.T).view(2, 9, 2, 8).transpose(1, 2).repeat_interleave(2, 1)
            for w in (attn.k_proj_weight, attn.v_proj_weight))
    scores = q @ k.transpose(-2, -1) / 8**0.5 + alibi_bias(4, 9).double()
    scores = scores.masked_fill(~window_mask(9), float("-inf"))
    expected = attn.out_proj((scores.softmax(-1) @ v).transpose(1, 2).flatten(2))
    torch.testing.assert_close(attend(attn, x), expected, rtol=0, atol=1e-12)
    # no rotation: the queries and keys are the projections themselves
    assert LlamaAttention(32, 4, positions="none").positions == "none"
    with pytest.raises(ValueError, match="positions"):
        LlamaAttention(32, 4, positions="learned")


@pytest.mark.parametrize("positions", ["rope", "alibi", "none", "learned", "sinusoidal"])
def test_every_kind_of_positions_caches_exactly(positions):
    torch.manual_seed(0)
    model = Llama(40, 64, 32, 2, 4, n_kv_head=2, positions=positions).double().eval()
    ids = torch.randint(40, (2, 21))
    with torch.no_grad():
        full = model(ids)
        caches = model.new_caches()
        parts = [model(ids[:, a:b], caches) for a, b in [(0, 8), (8, 9), (9, 21)]]
    torch.testing.assert_close(torch.cat(parts, 1), full, rtol=0, atol=1e-12)
    assert model.generate(ids[:1, :4], 10).shape == (1, 14)


def test_without_positions_one_causal_layer_ignores_the_order_before_a_token():
    # (with two layers the earlier positions' own outputs depend on their order)
    torch.manual_seed(0)
    model = Llama(40, 64, 32, 1, 4, positions="none").double().eval()
    ids = torch.randint(40, (1, 12))
    shuffled = torch.cat([ids[:, :11][:, torch.randperm(11)], ids[:, 11:]], 1)
    with torch.no_grad():
        last, last_shuffled = model(ids)[0, -1], model(shuffled)[0, -1]
        rope = Llama(40, 64, 32, 1, 4).double().eval()
        moved = (rope(ids)[0, -1] - rope(shuffled)[0, -1]).abs().max()
    torch.testing.assert_close(last, last_shuffled, rtol=0, atol=1e-12)
    assert moved > 1e-6  # with RoPE the order matters


def test_added_positions_are_the_transformers_tables():
    from attn_tutorial.transformer import sinusoidal_positions

    torch.manual_seed(0)
    ids = torch.randint(40, (2, 10))
    sin = Llama(40, 64, 32, 1, 4, positions="sinusoidal").double()
    x = sin.wte(ids) * 32**0.5 + sinusoidal_positions(10, 32).double()
    torch.testing.assert_close(sin.wpe(sin.wte(ids)), x, rtol=0, atol=1e-12)
    learned = Llama(40, 64, 32, 1, 4, positions="learned")
    assert learned.wpe.weight.shape == (64, 32)
    assert all(b.attn.positions == "none" for b in [*learned.h, *sin.h])
    with pytest.raises(ValueError, match="positions must be one of"):
        Llama(40, positions="relative")
