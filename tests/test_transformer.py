"""attn_tutorial.transformer: layers that are drop-ins for torch.nn.TransformerEncoderLayer / DecoderLayer (the same
arguments, parameters, masks and results for the same tensors; float64, atol 1e-10: the same sums in another order,
~1e-15 relative), positional encodings, the model's masks and maps, and decoding: cached == recomputed, beam 1 ==
greedy, beam k never less probable than greedy, no steps, never a <pad> or <bos>, and input checks."""
from __future__ import annotations

import math
from functools import partial

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given, settings
from torch import nn

from attn_tutorial.attention import causal_mask
from attn_tutorial.data import BOS, EOS, PAD
from attn_tutorial.search import beam_search, greedy
from attn_tutorial.transformer import (LearnedPositions, SinusoidalPositions, Transformer, TransformerDecoderLayer,
                                       TransformerEncoderLayer, sinusoidal_positions)

F64 = torch.float64


def torch_layers(d, H, ff, norm_first, activation, bias, seed, batch_first=True):
    torch.manual_seed(seed)
    kw = dict(d_model=d, nhead=H, dim_feedforward=ff, dropout=0.0, activation=activation, norm_first=norm_first,
              batch_first=batch_first, bias=bias)
    enc, dec = nn.TransformerEncoderLayer(**kw).double(), nn.TransformerDecoderLayer(**kw).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():                                 # torch starts biases and norms at 0 and 1: make them count
        for p in list(enc.parameters()) + list(dec.parameters()):
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return enc, dec


def test_same_seed_gives_the_same_parameters_as_torch():
    for ours_cls, torch_cls in ((TransformerEncoderLayer, nn.TransformerEncoderLayer),
                                (TransformerDecoderLayer, nn.TransformerDecoderLayer)):
        torch.manual_seed(0)
        ref = torch_cls(16, 4, 32, norm_first=True)
        torch.manual_seed(0)
        ours = ours_cls(16, 4, 32, norm_first=True)
        assert list(ours.state_dict()) == list(ref.state_dict())
        assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), ref.state_dict().values()))


@settings(max_examples=60, deadline=None)
@given(H=st.integers(1, 4), D=st.integers(1, 5), B=st.integers(1, 3), S=st.integers(1, 6), T=st.integers(1, 6),
       norm_first=st.booleans(), activation=st.sampled_from(["relu", "gelu"]), bias=st.booleans(),
       batch_first=st.booleans(), masks=st.sampled_from(["none", "pad", "float_pad", "attn", "float_attn", "causal"]),
       seed=st.integers(0, 2**16))
def test_same_tensors_give_the_same_results_as_torch(H, D, B, S, T, norm_first, activation, bias, batch_first,
                                                     masks, seed):
    d = H * D
    t_enc, t_dec = torch_layers(d, H, 2 * d + 1, norm_first, activation, bias, seed, batch_first)
    enc, dec = TransformerEncoderLayer.from_torch(t_enc), TransformerDecoderLayer.from_torch(t_dec)
    g = torch.Generator().manual_seed(seed + 1)
    shape = (lambda n: (B, n, d)) if batch_first else (lambda n: (n, B, d))
    src, tgt = torch.randn(shape(S), dtype=F64, generator=g), torch.randn(shape(T), dtype=F64, generator=g)
    pad = torch.rand(B, S, generator=g) < 0.3
    pad[:, 0] = False                                     # torch gives NaN where every key is masked
    not_allowed = torch.rand(S, S, generator=g) < 0.3
    not_allowed[:, 0] = False
    mem_not_allowed = torch.rand(T, S, generator=g) < 0.3
    mem_not_allowed[:, 0] = False
    kw_e, kw_d = {}, {}
    if masks == "pad":
        kw_e["src_key_padding_mask"] = kw_d["memory_key_padding_mask"] = pad
    elif masks == "float_pad":
        kw_e["src_key_padding_mask"] = kw_d["memory_key_padding_mask"] = torch.zeros(B, S, dtype=F64).masked_fill(
            pad, -math.inf)
    elif masks == "attn":
        kw_e["src_mask"], kw_d["memory_mask"] = not_allowed, mem_not_allowed
    elif masks == "float_attn":
        kw_e["src_mask"], kw_d["tgt_mask"] = torch.randn(S, S, dtype=F64, generator=g), torch.randn(T, T, dtype=F64)
    elif masks == "causal":
        kw_e.update(src_mask=~causal_mask(S), is_causal=True)
        kw_d.update(tgt_mask=~causal_mask(T), tgt_is_causal=True)
    torch.testing.assert_close(enc(src, **kw_e), t_enc(src, **kw_e), rtol=0, atol=1e-10)
    torch.testing.assert_close(dec(tgt, src, **kw_d), t_dec(tgt, src, **kw_d), rtol=0, atol=1e-10)


@pytest.mark.parametrize("norm_first", [False, True])
def test_layer_gradients_equal_torch(norm_first):
    t_enc, t_dec = torch_layers(8, 2, 16, norm_first, "gelu", True, seed=3)
    enc, dec = TransformerEncoderLayer.from_torch(t_enc), TransformerDecoderLayer.from_torch(t_dec)
    src, tgt = torch.randn(2, 5, 8, dtype=F64), torch.randn(2, 4, 8, dtype=F64)
    for ours, theirs, args in ((enc, t_enc, (src,)), (dec, t_dec, (tgt, src))):
        ours(*args).pow(2).sum().backward()
        theirs(*args).pow(2).sum().backward()
        for (name, p), p_ref in zip(ours.named_parameters(), theirs.parameters(), strict=True):
            torch.testing.assert_close(p.grad, p_ref.grad, rtol=0, atol=1e-10, msg=name)


def test_from_torch_copies_any_activation_the_layout_and_the_mode():
    for activation in (torch.tanh, nn.GELU("tanh"), "gelu"):
        t_enc, t_dec = torch_layers(8, 2, 16, False, activation, True, seed=4, batch_first=False)
        enc, dec = TransformerEncoderLayer.from_torch(t_enc), TransformerDecoderLayer.from_torch(t_dec)
        src, tgt = torch.randn(5, 2, 8, dtype=F64), torch.randn(4, 2, 8, dtype=F64)   # (length, batch, d)
        torch.testing.assert_close(enc(src), t_enc(src), rtol=0, atol=1e-10)
        torch.testing.assert_close(dec(tgt, src), t_dec(tgt, src), rtol=0, atol=1e-10)
        assert enc.training == t_enc.training
    assert not TransformerEncoderLayer.from_torch(t_enc.eval()).training


def test_is_causal_alone_applies_the_causal_mask():
    t_enc, t_dec = torch_layers(8, 2, 16, True, "relu", True, seed=5)
    enc, dec = TransformerEncoderLayer.from_torch(t_enc), TransformerDecoderLayer.from_torch(t_dec)
    src, tgt = torch.randn(2, 5, 8, dtype=F64), torch.randn(2, 4, 8, dtype=F64)
    torch.testing.assert_close(enc(src, is_causal=True), t_enc(src, src_mask=~causal_mask(5), is_causal=True),
                               rtol=0, atol=1e-10)
    torch.testing.assert_close(dec(tgt, src, tgt_is_causal=True),
                               t_dec(tgt, src, tgt_mask=~causal_mask(4), tgt_is_causal=True), rtol=0, atol=1e-10)


def test_layer_weights_and_errors():
    enc = TransformerEncoderLayer(8, 2, 16, batch_first=True)
    out, w = enc(torch.randn(3, 5, 8), need_weights=True)
    assert out.shape == (3, 5, 8) and w.shape == (3, 2, 5, 5)
    dec = TransformerDecoderLayer(8, 2, 16, batch_first=True)
    out, (ws, wc) = dec(torch.randn(3, 4, 8), torch.randn(3, 5, 8), tgt_is_causal=True, need_weights=True)
    assert ws.shape == (3, 2, 4, 4) and wc.shape == (3, 2, 4, 5) and (ws.triu(1) == 0).all()
    with pytest.raises(ValueError, match=r"src must be \(length, batch, d_model=8\).* got \(3, 5, 6\)"):
        enc(torch.randn(3, 5, 6))
    with pytest.raises(ValueError, match=r"agree on the batch size"):
        dec(torch.randn(3, 4, 8), torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="activation must be"):
        TransformerEncoderLayer(8, 2, activation="tanh")
    with pytest.raises(ValueError, match="multiple of num_heads"):
        TransformerEncoderLayer(10, 3)


def test_sinusoidal_positions_formula_and_rotation():
    pe = sinusoidal_positions(50, 16).double()
    p, i = 7, 3
    assert abs(pe[p, 2 * i] - math.sin(p / 10000 ** (2 * i / 16))) < 1e-7
    assert abs(pe[p, 2 * i + 1] - math.cos(p / 10000 ** (2 * i / 16))) < 1e-7
    gram = pe @ pe.T                                               # depends on the distance only
    for k in (1, 4, 9):
        assert torch.allclose(gram.diagonal(k), gram[0, k].expand(50 - k), atol=1e-5)
    x = torch.zeros(2, 6, 16)
    assert torch.equal(SinusoidalPositions(16, 50)(x, offset=3)[0], pe[3:9].float())
    assert LearnedPositions(16, 50)(x).shape == (2, 6, 16)
    with pytest.raises(ValueError, match="exceed max_len=50"):
        SinusoidalPositions(16, 50)(torch.zeros(1, 51, 16))
    with pytest.raises(ValueError, match="even d_model"):
        sinusoidal_positions(4, 7)


def small(seed=0, **kw):
    torch.manual_seed(seed)
    return Transformer(13, 11, d_model=16, nhead=2, dim_feedforward=32, dropout=0.0, **kw).eval()


@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_decoding_gives_exactly_the_tokens_of_recomputation(norm_first):
    model = small(norm_first=norm_first)
    with torch.no_grad():                                          # sharpen the untrained model: fewer near-ties
        model.generator.weight.mul_(20)
    src = torch.randint(3, 13, (8, 10), generator=torch.Generator().manual_seed(1))
    src_len = torch.tensor([10, 9, 8, 7, 6, 5, 4, 3])
    cached, lp_c, _ = greedy(model, src, src_len, 15, use_cache=True)
    full, lp_f, _ = greedy(model, src, src_len, 15, use_cache=False)
    assert torch.equal(cached, full)
    torch.testing.assert_close(lp_c, lp_f, rtol=0, atol=1e-4)
    # and each cached step's logits are the full decoder's at that position (float64: to round-off)
    model.double()
    memory, pad, _ = model.encode(src, src_len)
    caches = [layer.decoder_cache() for layer in model.decoder]
    tokens = torch.cat([torch.ones(8, 1, dtype=torch.long), cached[:, :4]], 1)
    steps = [model.decode(tokens[:, t:t + 1], memory, pad, caches=caches, offset=t)[0] for t in range(5)]
    torch.testing.assert_close(torch.cat(steps, 1), model.decode(tokens, memory, pad)[0], rtol=0, atol=1e-10)


def test_padding_does_not_change_the_result():
    model = small()
    src = torch.randint(3, 13, (1, 6))
    padded = torch.cat([src, torch.zeros(1, 4, dtype=torch.long)], 1)
    tgt = torch.randint(3, 11, (1, 5))
    a = model(src, torch.tensor([6]), tgt)[0]
    b = model(padded, torch.tensor([6]), tgt)[0]
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_beam_search_one_beam_is_greedy_and_more_beams_are_never_worse():
    for seed in range(4):
        model = small(seed=seed)
        src = torch.randint(3, 13, (5, 7), generator=torch.Generator().manual_seed(seed))
        src_len = torch.tensor([7, 6, 5, 4, 3])
        g_tokens, g_lp, _ = greedy(model, src, src_len, 9)
        b1_tokens, b1_lp, _ = beam_search(model, src, src_len, 9, beam_size=1)
        assert torch.equal(b1_tokens, g_tokens)
        torch.testing.assert_close(b1_lp, g_lp, rtol=0, atol=1e-5)
        for k in (2, 5):
            _, lp, _ = beam_search(model, src, src_len, 9, beam_size=k)
            assert (lp >= g_lp - 1e-5).all()


def test_beam_search_finds_the_best_sequence_when_the_beam_covers_everything():
    model = small(seed=5)
    src, src_len = torch.randint(3, 13, (1, 4)), torch.tensor([4])
    V, steps = 11, 2
    # exhaustive: every 2-token sequence without <pad> (0) or <bos> (1), scored with the full decoder over the
    # tokens that may be generated
    memory, pad, _ = model.encode(src, src_len)
    best = -math.inf
    for a in range(2, V):
        for b in range(2, V):
            tgt = torch.tensor([[1, a, b]])
            logits = model.decode(tgt[:, :2], memory, pad)[0]
            logp = torch.log_softmax(logits.index_fill(-1, torch.tensor([0, 1]), -math.inf), -1)[0]
            score = logp[0, a].item() + (0.0 if a == 2 else logp[1, b].item())   # a sequence ends at <eos> (2)
            best = max(best, score)
    _, lp, _ = beam_search(model, src, src_len, steps, beam_size=V * V)
    assert abs(lp.item() - best) < 1e-5


def test_tied_embeddings_and_model_errors():
    tied = Transformer(13, 13, d_model=16, nhead=2, dim_feedforward=32, tie_embeddings=True)
    untied = Transformer(13, 13, d_model=16, nhead=2, dim_feedforward=32)
    n = lambda m: sum(p.numel() for p in m.parameters())
    assert tied.generator.weight is tied.tgt_emb.weight and n(untied) - n(tied) == 13 * 16
    ones = lambda *shape: torch.ones(*shape, dtype=torch.long)
    with pytest.raises(ValueError, match=r"src must be \(B, S\) and src_len \(B,\)"):
        untied(ones(2, 5), torch.tensor([5, 5, 5]), ones(2, 3))
    with pytest.raises(ValueError, match=r"tgt_in must be \(B, T\) with the batch of src"):
        untied(ones(2, 5), torch.tensor([5, 5]), ones(3, 3))
    for bad in ([0, 5], [6, 5]):
        with pytest.raises(ValueError, match=r"src_len must be in \[1, S=5\], got lengths from"):
            untied(ones(2, 5), torch.tensor(bad), ones(2, 3))
    with pytest.raises(ValueError, match=r"src token ids must be in \[0, 13\) .*got ids from 1 to 13"):
        untied(torch.tensor([[1, 13]]), torch.tensor([2]), ones(1, 3))
    with pytest.raises(ValueError, match=r"tgt token ids must be in \[0, 13\) .*from -1 to 1"):
        untied(ones(1, 2), torch.tensor([2]), torch.tensor([[1, -1]]))
    with pytest.raises(ValueError, match="positions must be"):
        Transformer(5, 5, positions="rotary")
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(untied, ones(1, 3), torch.tensor([3]), 4, beam_size=0)


def test_zero_steps_and_specials_never_generated():
    model = small(seed=6)
    src, src_len = torch.randint(3, 13, (3, 5)), torch.tensor([5, 4, 3])
    for decode in (partial(greedy, model), partial(beam_search, model, beam_size=3)):
        tokens, lp, _ = decode(src, src_len, 0)
        assert tokens.shape == (3, 0) and torch.equal(lp, torch.zeros(3))
    with torch.no_grad():                                  # make <pad> and <bos> by far the likeliest tokens
        model.generator.bias[[PAD, BOS]] = 50.0
    for decode in (partial(greedy, model), partial(beam_search, model, beam_size=3)):
        tokens, lp, _ = decode(src, src_len, 6)
        assert tokens.shape == (3, 6) and torch.isfinite(lp).all()
        ended = (tokens == EOS).cumsum(1) - (tokens == EOS).long() > 0    # positions after a sequence's <eos>
        assert not (tokens == BOS).any() and not (tokens[~ended] == PAD).any()


def test_learns_to_copy():
    from attn_tutorial.data import copy_task
    from attn_tutorial.train import fit, seed_everything, seq2seq_accuracy, seq2seq_loss
    seed_everything(0)
    train, test = copy_task(4000, 3, 8, seed=0), copy_task(200, 8, seed=1)
    model = Transformer(len(train.vocab), len(train.vocab), d_model=32, nhead=4, dim_feedforward=64, dropout=0.0)
    fit(model, seq2seq_loss, train.batches(64, shuffle=True), 300, lr=3e-3, device="cpu", progress=False)
    model.eval()
    assert seq2seq_accuracy(model, test) > 0.95
