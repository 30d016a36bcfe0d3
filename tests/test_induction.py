"""attn_tutorial.induction: the repeated rows repeat what they say, the copy losses average the right
tokens, the recorded maps are the attention's own weights, the scores read the right entries, and switching a
head off is exactly removing its output (and leaves the model as it was)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from attn_tutorial import induction
from attn_tutorial.gpt import GPT
from attn_tutorial.induction import (
    attention_maps, doubled_segments, head_scores, repeat_losses, repeat_segment,
    repeated_tokens, token_losses, zero_heads,
)
from attn_tutorial.multihead import merge_heads, split_heads


def test_repeat_segment_copies_one_segment_and_keeps_the_rest():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(40).repeat(200, 1)  # every id distinct within a row
    y, start, seg = repeat_segment(x, 3, 9, generator=g)
    assert y.shape == x.shape and not torch.equal(y, x)
    assert set(seg.tolist()) == set(range(3, 10))  # every length is drawn
    for row, old, a, m in zip(y, x, start.tolist(), seg.tolist()):
        assert 0 <= a and a + 2 * m <= 40
        assert torch.equal(row[a + m : a + 2 * m], old[a : a + m])
        assert torch.equal(row[: a + m], old[: a + m])
        assert torch.equal(row[a + 2 * m :], old[a + 2 * m :])
    x2, s2, m2 = repeated_tokens(5, 30, 7, 4, 6, generator=torch.Generator().manual_seed(3))
    assert x2.shape == (5, 30) and 0 <= x2.min() and x2.max() < 7
    again = repeated_tokens(5, 30, 7, 4, 6, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip((x2, s2, m2), again))


def test_doubled_segments_say_every_segment_twice():
    x = doubled_segments(50, 37, 11, 4, 4, generator=torch.Generator().manual_seed(0))
    assert x.shape == (50, 37) and x.max() < 11
    for t in range(0, 37, 8):  # segments of exactly 4: pairs start every 8
        n = min(4, 37 - t - 4)
        if n > 0:
            assert torch.equal(x[:, t + 4 : t + 4 + n], x[:, t : t + n])
    # random lengths: the rows differ from the fixed-length ones and stay in range
    y = doubled_segments(50, 37, 11, 2, 6, generator=torch.Generator().manual_seed(0))
    assert y.shape == (50, 37) and not torch.equal(x, y)


def test_bad_segment_lengths_are_refused():
    with pytest.raises(ValueError, match="max_len=20, length=30"):
        repeated_tokens(2, 30, 5, 8, 20)
    with pytest.raises(ValueError, match="min_len=5, max_len=4"):
        doubled_segments(2, 30, 5, 5, 4)


class Oracle(nn.Module):
    """Logits for rows it was given: certain of the true next token where `where` is True,
    uniform elsewhere."""

    def __init__(self, x, where, vocab_size):
        super().__init__()
        self.x, self.where, self.V = x, where, vocab_size

    def forward(self, idx):
        logits = torch.zeros(*idx.shape, self.V, dtype=torch.float64)
        sure = torch.full_like(logits, -1e4).scatter(-1, self.x[:, 1:, None], 0.0)
        return torch.where(self.where[..., None], sure, logits)


def test_repeat_losses_average_exactly_the_copies():
    V = 13
    x, start, seg = repeated_tokens(40, 32, V, 3, 8, generator=torch.Generator().manual_seed(0))
    t = torch.arange(31)
    second = (t >= start[:, None] + seg[:, None]) & (t < start[:, None] + 2 * seg[:, None] - 1)
    first_loss, second_loss = repeat_losses(Oracle(x, second, V), x, start, seg)
    assert abs(first_loss - math.log(V)) < 1e-10 and second_loss < 1e-10
    # the first token of the second copy is not counted: being certain of it changes nothing
    at_start = t == (start + seg - 1)[:, None]
    f2, s2 = repeat_losses(Oracle(x, at_start, V), x, start, seg)
    assert abs(f2 - math.log(V)) < 1e-10 and abs(s2 - math.log(V)) < 1e-10
    nll = token_losses(Oracle(x, second, V), x)
    assert nll.shape == (40, 31) and (nll[second] < 1e-10).all()


@pytest.fixture
def gpt():
    torch.manual_seed(0)
    return GPT(vocab_size=17, n_positions=24, n_embd=16, n_layer=2, n_head=4, mlp=False).double().eval()


def test_attention_maps_are_the_layers_own_weights(gpt):
    x = torch.randint(17, (3, 20))
    maps = attention_maps(gpt, x)
    assert maps.shape == (2, 3, 4, 20, 20)
    h = gpt.h[0].ln_1(gpt.wpe(gpt.wte(x), 0))
    _, w = gpt.h[0].attn(
        h, h, h, need_weights=True, average_attn_weights=False, is_causal=True,
        attn_mask=torch.ones(20, 20).triu(1).bool(),
    )
    torch.testing.assert_close(maps[0], w, rtol=0, atol=1e-12)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 3, 4, 20, dtype=maps.dtype))
    assert (maps.triu(1) == 0).all()  # causal


def test_head_scores_read_the_right_entries(gpt, monkeypatch):
    x, start, seg = repeated_tokens(6, 25, 17, 4, 8, generator=torch.Generator().manual_seed(1))
    T = 24
    prev_map = torch.eye(T).roll(-1, 1).tril()  # query t on key t - 1
    prev_map[0, 0] = 1.0
    induction_map = torch.eye(T).expand(6, T, T).clone()
    for i, (a, m) in enumerate(zip(start.tolist(), seg.tolist())):
        for t in range(a + m, a + 2 * m - 1):
            induction_map[i, t] = 0.0
            induction_map[i, t, t - m + 1] = 1.0
    fake = torch.stack([
        torch.stack([prev_map.expand(6, T, T), torch.eye(T).expand(6, T, T)], 1),
        torch.stack([induction_map, prev_map.expand(6, T, T)], 1),
    ])  # (layers 2, n 6, heads 2, T, T)
    monkeypatch.setattr(induction, "attention_maps", lambda model, x_: fake)
    s = head_scores(gpt, x, start, seg)
    torch.testing.assert_close(s["previous token"][0], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(s["current token"][0], torch.tensor([1 / T, 1.0]))
    torch.testing.assert_close(s["induction"][1], torch.tensor([1.0, 0.0]))
    assert s["induction"].shape == (2, 2)


def test_zero_heads_removes_exactly_those_heads_and_restores(gpt):
    x = torch.randint(17, (2, 12))
    before = gpt(x)
    with zero_heads(gpt, [(0, 1), (0, 3)]):
        edited = gpt(x)
    torch.testing.assert_close(gpt(x), before, rtol=0, atol=0)  # as it was
    # by hand: layer 0's attention with heads 1 and 3 contributing nothing
    attn = gpt.h[0].attn
    e = gpt.wpe(gpt.wte(x), 0)
    q, k, v = (split_heads(t, 4) for t in attn.in_projection(*(gpt.h[0].ln_1(e),) * 3))
    w = torch.softmax((q @ k.transpose(-2, -1)) / 2.0 + torch.full((12, 12), -torch.inf).triu(1), -1)
    w[:, [1, 3]] = 0.0
    h1 = e + attn.out_proj(merge_heads(w @ v))
    x1 = gpt.h[1](h1)
    torch.testing.assert_close(edited, nn.functional.linear(gpt.ln_f(x1), gpt.wte.weight),
                               rtol=0, atol=1e-12)
    assert (edited - before).abs().max() > 1e-3
