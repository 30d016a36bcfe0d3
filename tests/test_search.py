"""attn_tutorial.search: one decoding loop (greedy or sampled) and one beam search for every model of the book. Each
model (the RNN encoder-decoder, the Transformer, the captioner, listen-attend-spell, and the decoder-only GPTs)
takes part through `start` and `step` (and `encode`, for a source); sampling draws from the model's distribution
as filtered and is reproducible with a generator;
greedy equals teacher forcing on its own outputs; beam 1 is greedy; more beams are never less probable; the beams'
states follow their origin (batched beam search equals one example at a time); the length penalty ranks as it
says."""
from __future__ import annotations

import math

import pytest
import torch

from attn_tutorial.caption import Captioner
from attn_tutorial.data import BOS, EOS, PAD
from attn_tutorial.rnn import Seq2Seq
from attn_tutorial.search import Decoded, beam_search, beams, decode, greedy, next_log_probs, select
from attn_tutorial.speech import ListenAttendSpell
from attn_tutorial.transformer import Transformer


def models():
    torch.manual_seed(0)
    seq = (torch.randint(3, 12, (4, 6)), torch.tensor([6, 5, 3, 1]))
    return {"rnn": (Seq2Seq(12, 8, 16, attention=True), seq),
            "lstm": (Seq2Seq(12, 8, 16, cell="lstm", attention=True), seq),
            "transformer": (Transformer(12, 12, d_model=16, nhead=2, dim_feedforward=32, dropout=0.0), seq),
            "captioner": (Captioner(12, 8, 16), (torch.rand(4, 8, 24), torch.tensor([24, 17, 9, 4]))),
            "speech": (ListenAttendSpell(10, 12, 8, 16, 8), (torch.randn(4, 40, 10), torch.tensor([40, 33, 20, 12])))}


@pytest.mark.parametrize("name", ["rnn", "lstm", "transformer", "captioner", "speech"])
def test_every_model_is_decoded_by_the_same_searches(name):
    model, (src, src_len) = models()[name]
    model.eval()
    with torch.no_grad():                                # sharpen: fewer near-ties between beams
        out = model.decoder.out if hasattr(model.decoder, "out") else model.generator
        out.weight.mul_(8)
    g = greedy(model, src, src_len, 7, need_weights=True)
    assert isinstance(g, Decoded) and g.tokens.shape == (4, 7) and g.log_prob.shape == (4,)
    assert g.weights.shape[:2] == (4, 7)
    torch.testing.assert_close(g.weights.sum(-1), torch.ones(4, 7))
    # greedy = teacher forcing on its own outputs: the log-probabilities of its tokens sum to log_prob
    tgt_in = torch.cat([torch.full((4, 1), BOS), g.tokens[:, :-1].masked_fill(g.tokens[:, :-1] == PAD, PAD)], 1)
    logp = next_log_probs(model(src, src_len, tgt_in)[0])
    live = (g.tokens == EOS).cumsum(1) - (g.tokens == EOS).long() == 0        # up to and including <eos>
    picked = logp.gather(-1, g.tokens.clamp_min(0)[..., None])[..., 0].masked_fill(~live, 0).sum(1)
    torch.testing.assert_close(picked, g.log_prob, rtol=0, atol=1e-4)
    assert torch.equal(logp.argmax(-1)[live], g.tokens[live])
    b1 = beam_search(model, src, src_len, 7, beam_size=1)
    assert torch.equal(b1.tokens, g.tokens)
    b3 = beam_search(model, src, src_len, 7, beam_size=3, need_weights=True)
    assert (b3.log_prob >= g.log_prob - 1e-5).all() and b3.weights.shape == g.weights.shape
    for i in range(4):                                   # batched beams = one example at a time
        one = beam_search(model, src[i:i + 1], src_len[i:i + 1], 7, beam_size=3)
        assert torch.equal(one.tokens[0], b3.tokens[i])
        torch.testing.assert_close(one.log_prob[0], b3.log_prob[i], rtol=0, atol=1e-5)


def test_beam_log_prob_is_the_sum_over_its_tokens():
    model, (src, src_len) = models()["transformer"]
    model.eval()
    b = beam_search(model, src, src_len, 6, beam_size=4)
    tgt_in = torch.cat([torch.full((4, 1), BOS), b.tokens[:, :-1]], 1)
    logp = next_log_probs(model(src, src_len, tgt_in)[0])
    live = (b.tokens == EOS).cumsum(1) - (b.tokens == EOS).long() == 0
    total = logp.gather(-1, b.tokens[..., None])[..., 0].masked_fill(~live, 0).sum(1)
    torch.testing.assert_close(total, b.log_prob, rtol=0, atol=1e-4)
    assert ((b.tokens == PAD) == ~live).all()            # padding exactly after <eos>


class Fixed:
    "A model whose next-token log-probabilities depend only on the prefix length: short vs long endings."
    def __init__(self, table):
        self.table = torch.tensor(table).log()
    def encode(self, src, src_len):
        return src
    def start(self, memory, use_cache=True):
        return None
    def step(self, prefix, state, memory, need_weights=False):
        return self.table[prefix.shape[1] - 1].expand(prefix.shape[0], -1), state, None


def test_length_penalty_lets_a_longer_sequence_win():
    # tokens: <pad> <bos> <eos> a. Step 0: <eos> 0.35, a 0.65; then <eos> 0.4 or a 0.6 ... ; last step: <eos>
    table = [[1e-9, 1e-9, 0.35, 0.65], [1e-9, 1e-9, 0.5, 0.5], [1e-9, 1e-9, 0.95, 0.05], [1e-9, 1e-9, 1.0, 1e-9]]
    m, src = Fixed(table), torch.zeros(1, 1, dtype=torch.long)
    short = beam_search(m, src, None, 4, beam_size=4)                 # plain log-probability: <eos> at once
    assert short.tokens[0].tolist() == [EOS, PAD, PAD, PAD] and math.isclose(short.log_prob.item(), math.log(0.35),
                                                                           rel_tol=1e-4)
    long = beam_search(m, src, None, 4, beam_size=4, length_penalty=1.0)  # per-token average: a <eos> (or a a <eos>)
    p = long.log_prob.exp().item()
    n = int((long.tokens[0] != PAD).sum())
    assert n > 1 and math.log(p) / n > math.log(0.35) / 1


def test_no_steps_and_errors():
    model, (src, src_len) = models()["rnn"]
    for search in (greedy, beam_search):
        d = search(model, src, src_len, 0)
        assert d.tokens.shape == (4, 0) and torch.equal(d.log_prob, torch.zeros(4))
    with pytest.raises(ValueError, match="beam_size must be >= 1"):
        beam_search(model, src, src_len, 3, beam_size=0)


def test_sampling_is_the_same_loop_and_scores_what_it_drew():
    "decode with do_sample: reproducible, top_k=1 is greedy, and log_prob sums the model's own log-probabilities."
    model, (src, src_len) = models()["transformer"]
    model.eval()
    memory, bos = model.encode(src, src_len), torch.full((4, 1), BOS)
    draw = lambda seed, **kw: decode(model, bos, 6, memory, eos=EOS, never=(PAD, BOS), do_sample=True,
                                     generator=torch.Generator().manual_seed(seed), **kw)
    a, b = draw(0, temperature=1.5), draw(0, temperature=1.5)
    assert torch.equal(a.tokens, b.tokens) and not torch.equal(a.tokens, draw(1, temperature=1.5).tokens)
    assert torch.equal(draw(0, top_k=1).tokens, greedy(model, src, src_len, 6).tokens)
    assert not ((a.tokens == BOS).any() or (a.tokens[:, 0] == PAD).any())     # never generated
    tgt_in = torch.cat([bos, a.tokens[:, :-1]], 1)
    logp = next_log_probs(model(src, src_len, tgt_in)[0])
    live = (a.tokens == EOS).cumsum(1) - (a.tokens == EOS).long() == 0
    total = logp.gather(-1, a.tokens[..., None])[..., 0].masked_fill(~live, 0).sum(1)
    torch.testing.assert_close(total, a.log_prob, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="temperature > 0"):
        draw(0, temperature=0.0)


class Counter:
    "A decoder-only toy (no source): the next token is the last one plus one, mod 5, for certain."
    def start(self, memory, use_cache=True):
        return None
    def step(self, prefix, state, memory, need_weights=False):
        logits = torch.full((prefix.shape[0], 5), -30.0)
        logits[torch.arange(prefix.shape[0]), (prefix[:, -1] + 1) % 5] = 0.0
        return logits, state, None


def test_a_decoder_only_model_continues_its_prompt():
    prompt = torch.tensor([[0, 1], [3, 3]])
    d = decode(Counter(), prompt, 4)                                   # no source, no <bos>, nothing excluded
    assert d.tokens.tolist() == [[2, 3, 4, 0], [4, 0, 1, 2]]
    ended = decode(Counter(), prompt, 4, eos=0, pad=0)
    assert ended.tokens.tolist() == [[2, 3, 4, 0], [4, 0, 0, 0]]
    assert torch.equal(beams(Counter(), prompt, 4, beam_size=3).tokens, d.tokens)


def test_select_reorders_anything_that_says_how():
    class Cache:
        def __init__(self):
            self.order = None
        def reorder(self, index):
            self.order = index.tolist()
    c, t = Cache(), torch.arange(3) * 10
    out = select({"cache": c, "t": t, "n": 7, "pair": (t, [c])}, torch.tensor([2, 0, 0]))
    assert out["t"].tolist() == [20, 0, 0] and out["n"] == 7 and c.order == [2, 0, 0]
    assert out["cache"] is c and out["pair"][1][0] is c
