"""A true drop-in where people deploy (issue 31): each numbered item of the issue against PyTorch or Hugging Face doing
the same thing. 1: PyTorch's own Transformer layers take their inference fast path with our attention inside; 2:
export, fullgraph compile and the meta device trace the attention with masks (no Python branch on values); 3: vmap
and jit.trace; 4: half precision as accurate as PyTorch's; 5: gradients into float masks; 6: padded generation and
an end token, as `transformers`' generate; 8: errors that name the argument."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attn_tutorial.attention import causal_mask, length_mask, scaled_dot_product_attention
from attn_tutorial.efficient import chunked_attention
from attn_tutorial.gpt import GPT
from attn_tutorial.multihead import KVCache, MultiHeadAttention


def _masks(B=2, L=6, S=6, H=4):
    "A padding mask (the second row's last two keys) and an attention mask, torch's module convention."
    pad = torch.zeros(B, S, dtype=torch.bool)
    pad[1, -2:] = True
    blocked = torch.zeros(L, S, dtype=torch.bool)
    blocked[0, 3] = True
    return pad, blocked


# 1. PyTorch's fast path --------------------------------------------------------------------------------------

@pytest.mark.parametrize("masks", ["none", "padding", "attn_mask", "both"])
def test_torch_encoder_layer_fast_path_with_our_attention(masks, monkeypatch):
    torch.manual_seed(0)
    theirs = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True).eval()
    ours = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True).eval()
    ours.load_state_dict(theirs.state_dict())
    ours.self_attn = MultiHeadAttention.from_torch(theirs.self_attn)
    calls = []
    fused = torch._transformer_encoder_layer_fwd
    monkeypatch.setattr(torch, "_transformer_encoder_layer_fwd", lambda *a: calls.append(1) or fused(*a))
    x = torch.randn(2, 6, 16)
    pad, blocked = _masks()
    kw = {"none": {}, "padding": {"src_key_padding_mask": pad}, "attn_mask": {"src_mask": blocked},
          "both": {"src_key_padding_mask": pad, "src_mask": blocked}}[masks]
    with torch.inference_mode():
        want, got = theirs(x, **kw), ours(x, **kw)
    assert len(calls) == 2                                             # both took the fused kernel
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_merge_masks_is_torchs():
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(16, 4, batch_first=True)
    ours = MultiHeadAttention.from_torch(theirs)
    x = torch.randn(2, 6, 16)
    pad, blocked = _masks()
    for a, p in [(None, None), (None, pad), (blocked, None), (blocked, pad),
                 (torch.zeros(8, 6, 6).masked_fill(torch.rand(8, 6, 6) < 0.2, -math.inf), pad.float())]:
        m1, t1 = ours.merge_masks(a, p, x)
        m2, t2 = theirs.merge_masks(a, p, x)
        assert t1 == t2 and (m1 is None) == (m2 is None)
        if m1 is not None:
            assert m1.shape == m2.shape and torch.equal(m1, m2)


def test_torch_transformer_encoder_with_our_attention_in_inference():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
    theirs = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    ours = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    ours.load_state_dict(theirs.state_dict())
    for block, source in zip(ours.layers, theirs.layers):
        block.self_attn = MultiHeadAttention.from_torch(source.self_attn)
    x, (pad, _) = torch.randn(2, 6, 16), _masks()
    with torch.no_grad():
        torch.testing.assert_close(ours(x, src_key_padding_mask=pad), theirs(x, src_key_padding_mask=pad),
                                   rtol=0, atol=0)
    # and in training (no fast path), the module's own forward: the same function
    ours.train(), theirs.train()
    torch.testing.assert_close(ours(x, src_key_padding_mask=pad), theirs(x, src_key_padding_mask=pad),
                               rtol=0, atol=1e-6)


# 2. export, fullgraph compile, meta ---------------------------------------------------------------------------

class _Attend(nn.Module):
    "The module called as a user calls it, with both masks."
    def __init__(self, mha, need_weights):
        super().__init__()
        self.mha, self.need_weights = mha, need_weights

    def forward(self, x, pad, blocked):
        return self.mha(x, x, x, key_padding_mask=pad, attn_mask=blocked, need_weights=self.need_weights)


@pytest.mark.parametrize("need_weights", [True, False])
def test_export_compile_and_meta_with_masks(need_weights):
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, batch_first=True).eval()
    model = _Attend(mha, need_weights)
    x, (pad, blocked) = torch.randn(2, 6, 16), _masks()
    want = model(x, pad, blocked)
    exported = torch.export.export(model, (x, pad, blocked))
    got = exported.module()(x, pad, blocked)
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=1e-6)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")   # a graph break would raise
    torch.testing.assert_close(compiled(x, pad, blocked)[0], want[0], rtol=0, atol=1e-6)
    meta = _Attend(MultiHeadAttention(16, 4, batch_first=True, device="meta").eval(), need_weights)
    out, w = meta(x.to("meta"), pad.to("meta"), blocked.to("meta"))
    assert out.device.type == "meta" and out.shape == (2, 6, 16)
    assert (w is None) != need_weights


def test_the_attention_function_exports_with_a_mask():
    class F_(nn.Module):
        def forward(self, q, k, v, m):
            return scaled_dot_product_attention(q, k, v, m, is_causal=True)
    q = torch.randn(2, 3, 5, 8)
    m = torch.rand(5, 5) < 0.7
    want = F_()(q, q, q, m)
    got = torch.export.export(F_(), (q, q, q, m)).module()(q, q, q, m)
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(got[1], want[1], rtol=0, atol=1e-6)


# 3. vmap and jit.trace -------------------------------------------------------------------------------------------

def test_vmap_over_the_function_and_the_module():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 5, 8), torch.randn(3, 2, 7, 8), torch.randn(3, 2, 7, 8)
    masks = torch.rand(3, 5, 7) < 0.7
    out, w = torch.func.vmap(scaled_dot_product_attention)(q, k, v, masks)
    for i in range(3):
        o, wi = scaled_dot_product_attention(q[i], k[i], v[i], masks[i])
        torch.testing.assert_close(out[i], o, rtol=0, atol=1e-6)
        torch.testing.assert_close(w[i], wi, rtol=0, atol=1e-6)
    mha = MultiHeadAttention(8, 2, batch_first=True)
    x = torch.randn(3, 2, 5, 8)
    for need_weights in (True, False):
        per = torch.func.vmap(lambda t: mha(t, t, t, need_weights=need_weights)[0])(x)
        for i in range(3):
            torch.testing.assert_close(per[i], mha(x[i], x[i], x[i])[0], rtol=0, atol=1e-6)


def test_jit_trace_passes_its_own_check():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, batch_first=True).eval()
    x = torch.randn(2, 6, 16)
    traced = torch.jit.trace(mha, (x, x, x), check_trace=True)
    torch.testing.assert_close(traced(x, x, x)[0], mha(x, x, x)[0], rtol=0, atol=1e-6)


# 4. half precision -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_as_accurate_as_torchs(dtype):
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 1024, 32, dtype=torch.float64) for _ in range(3))
    mask = torch.rand(1024, 1024) < 0.9
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    half = [t.to(dtype) for t in (q, k, v)]
    err = lambda out: (out.double() - ref).abs().max().item()
    theirs = err(F.scaled_dot_product_attention(*half, attn_mask=mask))
    ours = err(scaled_dot_product_attention(*half, mask)[0])
    chunked = err(chunked_attention(*half, mask, block_size=128))
    assert ours <= 2 * theirs and chunked <= 2 * theirs, (ours, chunked, theirs)
    out, w = scaled_dot_product_attention(*half, mask)
    assert out.dtype == w.dtype == dtype and torch.isfinite(out).all()


# 5. gradients into float masks -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(6, 7), (2, 1, 1, 7), (2, 3, 6, 7)])
def test_a_learned_float_mask_gets_torchs_gradient(shape):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 6, 8, dtype=torch.float64), *torch.randn(2, 2, 3, 7, 8, dtype=torch.float64)
    bias = torch.randn(shape, dtype=torch.float64, requires_grad=True)   # q, k, v frozen: only the bias learns
    g = torch.randn(2, 3, 6, 8, dtype=torch.float64)
    want, = torch.autograd.grad((F.scaled_dot_product_attention(q, k, v, attn_mask=bias) * g).sum(), bias)
    for attend in (lambda: scaled_dot_product_attention(q, k, v, bias)[0],
                   lambda: chunked_attention(q, k, v, bias, block_size=3, query_block_size=2)):
        got, = torch.autograd.grad((attend() * g).sum(), bias)
        assert got.shape == bias.shape
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


def test_a_learned_mask_in_the_module_and_with_causal_blocks():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, batch_first=True).double().requires_grad_(False)
    bias = torch.zeros(6, 6, dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    mha(x, x, x, attn_mask=bias, need_weights=False)[0].sum().backward()
    assert bias.grad is not None and bias.grad.abs().sum() > 0
    q, k, v = torch.randn(3, 1, 2, 9, 4, dtype=torch.float64)
    b = torch.randn(9, 9, dtype=torch.float64, requires_grad=True)
    want, = torch.autograd.grad(scaled_dot_product_attention(q, k, v, b, is_causal=True)[0].sum(), b)
    got, = torch.autograd.grad(chunked_attention(q, k, v, b, is_causal=True, block_size=4).sum(), b)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    assert (got.triu(1) == 0).all()                                    # above the diagonal: masked, no gradient


# 6. padded generation and an end token ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers")


def _hf_models(transformers):
    torch.manual_seed(0)
    common = dict(vocab_size=61, bos_token_id=None, eos_token_id=None, pad_token_id=0)
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=2, n_head=2, n_embd=16, n_positions=40, attn_implementation="eager", **common))
    # (Llama's eager attention gives NaN for the padding rows of a left-padded batch in float64, which then
    # decide its next tokens; its "sdpa" attention does not)
    llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=40, attn_implementation="sdpa", **common))
    return {"gpt2": gpt2.double().eval(), "llama": llama.double().eval()}


def _left_padded():
    "Three prompts of 5, 3 and 4 tokens, padded on the left with 0, and their attention mask."
    prompts = [[5, 9, 13, 2, 7], [11, 4, 30], [8, 8, 21, 3]]
    idx = torch.zeros(3, 5, dtype=torch.long)
    mask = torch.zeros(3, 5, dtype=torch.long)
    for i, p in enumerate(prompts):
        idx[i, 5 - len(p):], mask[i, 5 - len(p):] = torch.tensor(p), 1
    return prompts, idx, mask


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_left_padded_generation_equals_each_prompt_alone_and_hugging_face(transformers, family):
    hf = _hf_models(transformers)[family]
    ours = GPT.from_hf(hf)
    prompts, idx, mask = _left_padded()
    theirs = hf.generate(idx, attention_mask=mask, max_new_tokens=12, do_sample=False)
    for use_cache in (True, False):
        batch = ours.generate(idx, 12, attention_mask=mask, use_cache=use_cache)
        assert torch.equal(batch, theirs)
    for i, p in enumerate(prompts):                                    # each row: the tokens it gets alone
        alone = ours.generate(torch.tensor([p]), 12)
        assert torch.equal(batch[i, 5:], alone[0, len(p):])
    # the same with beams: each row's beams follow its own positions and padding
    beams = ours.generate(idx, 8, attention_mask=mask, num_beams=3)
    for i, p in enumerate(prompts):
        assert torch.equal(beams[i, 5:], ours.generate(torch.tensor([p]), 8, num_beams=3)[0, len(p):])


def test_generation_stops_at_the_end_token(transformers):
    hf = _hf_models(transformers)["gpt2"]
    ours = GPT.from_hf(hf)
    _, idx, mask = _left_padded()
    free = ours.generate(idx, 12, attention_mask=mask)
    eos = int(free[1, 8])
    theirs = hf.generate(idx, attention_mask=mask, max_new_tokens=12, do_sample=False, eos_token_id=eos,
                         pad_token_id=0)
    mine = ours.generate(idx, 12, attention_mask=mask, eos_token_id=eos, pad_token_id=0)
    assert torch.equal(mine[:, :theirs.shape[1]], theirs) and (mine[:, theirs.shape[1]:] == 0).all()


# 8. errors that name the argument ------------------------------------------------------------------------------------

def test_errors_name_the_argument():
    gpt = GPT(vocab_size=20, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    with pytest.raises(ValueError, match=r"idx must be token ids \(B, T\) with B, T >= 1, got shape \(0, 4\)"):
        gpt(torch.zeros(0, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"attention_mask must be \(B, cached \+ T\) = \(1, 4\)"):
        gpt(torch.zeros(1, 4, dtype=torch.long), attention_mask=torch.ones(1, 3))
    mha = MultiHeadAttention(8, 2, batch_first=True)
    cache, x = KVCache(), torch.randn(2, 3, 8)
    mha(x, x, x, cache=cache)
    with pytest.raises(ValueError, match=r"this KVCache holds \(B, H\) = \(2, 2\).*one batch"):
        mha(x[:1], x[:1], x[:1], cache=cache)
    with pytest.raises(ValueError, match="causal_mask needs L >= 0"):
        causal_mask(-1)
    with pytest.raises(ValueError, match=r"lengths must be in \[0, S=3\], got \[2, 5\]"):
        length_mask(torch.tensor([2, 5]), 3)
    # Hugging Face's polarity (True = token) as torch's key_padding_mask hides every key: said, not NaN or zeros
    with pytest.raises(ValueError, match="hide every key from every query: key_padding_mask is True where a key is"):
        mha(x, x, x, key_padding_mask=torch.ones(2, 3, dtype=torch.bool))
    # one row with nothing to attend is allowed (zeros, as documented); the others attend
    pad = torch.zeros(2, 3, dtype=torch.bool)
    pad[0] = True
    out, w = mha(x, x, x, key_padding_mask=pad)
    assert (w[0] == 0).all() and torch.isfinite(out).all()
