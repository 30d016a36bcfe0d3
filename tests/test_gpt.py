"""attn_tutorial.gpt: GPT-2 exactly (against Hugging Face `transformers`, a test-only dependency, on tiny random
configurations: nothing downloads), generation with and without the key/value cache, sampling, beam search and
an end token (through the book's one decoding loop, `attn_tutorial.search`), one model class for every family,
and errors. The long-run program is tested in test_train_gpt.py."""
from __future__ import annotations

import pytest
import torch

from attn_tutorial.gpt import GPT, GPTConfig, text_batches, windows
from attn_tutorial.multihead import MultiHeadAttention
from attn_tutorial.search import filter_logits, next_token

V, POSITIONS = 50, 32


@pytest.fixture(scope="module")
def hf():
    "A tiny random GPT-2 in float64, with biases and norms made to count (they start at 0 and 1)."
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=2, n_head=2, n_embd=16, vocab_size=V, n_positions=POSITIONS, bos_token_id=None,
        eos_token_id=None, attn_implementation="eager",
    )
    model = transformers.GPT2LMHeadModel(config).to(torch.float64).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.normal_(0.0, 0.3).add_(1.0 if "ln" in name and name.endswith("weight") else 0.0)
    return model


@pytest.fixture(scope="module")
def ours(hf):
    return GPT.from_hf(hf)


def prompts(B=3, T=5, seed=1):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


def test_logits_equal_hugging_face(hf, ours):
    idx = prompts(4, POSITIONS)
    with torch.no_grad():
        theirs = hf(idx).logits
    mine = ours(idx)
    assert mine.dtype == torch.float64 and mine.shape == (4, POSITIONS, V)
    assert (mine - theirs).abs().max().item() < 1e-10
    assert not ours.training and GPT.from_hf(hf.train()).training
    hf.eval()


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_generation_equals_hugging_face(hf, ours, use_cache):
    idx = prompts()
    theirs = hf.generate(idx, attention_mask=torch.ones_like(idx), do_sample=False, max_new_tokens=20)
    mine = ours.generate(idx, 20, use_cache=use_cache)
    assert mine.shape == (3, 25) and torch.equal(mine, theirs)


def test_cached_generation_equals_recompute(ours):
    idx = prompts(2, 1)
    for kw in (dict(), dict(do_sample=True), dict(do_sample=True, temperature=0.7, top_k=5, top_p=0.9)):
        seeded = lambda: torch.Generator().manual_seed(3)
        cached = ours.generate(idx, POSITIONS - 1, generator=seeded(), **kw)
        recomputed = ours.generate(idx, POSITIONS - 1, generator=seeded(), use_cache=False, **kw)
        assert torch.equal(cached, recomputed), kw


def test_sampling_is_reproducible_and_its_limits_are_greedy(ours):
    idx = prompts()
    greedy = ours.generate(idx, 20)
    sample = lambda seed, **kw: ours.generate(
        idx, 20, do_sample=True, generator=torch.Generator().manual_seed(seed), **kw)
    assert torch.equal(sample(0), sample(0)) and not torch.equal(sample(0), sample(1))
    assert torch.equal(sample(0, top_k=1), greedy)
    assert torch.equal(sample(0, top_p=1e-9), greedy)
    assert torch.equal(ours.generate(idx, 0), idx)


def test_filter_logits():
    logits = torch.tensor([[0.5, 0.25, 0.15, 0.07, 0.03]]).log()
    assert filter_logits(logits, top_k=2).isfinite().tolist() == [[True, True, False, False, False]]
    # the fewest tokens whose probabilities reach top_p: 0.5 + 0.25 < 0.8 <= 0.5 + 0.25 + 0.15
    assert filter_logits(logits, top_p=0.8).isfinite().sum() == 3
    assert filter_logits(logits, top_p=0.75).isfinite().sum() == 2
    assert filter_logits(logits, top_p=1.0).isfinite().all()
    shuffled = logits[:, [3, 0, 4, 2, 1]]                   # the order of the vocabulary does not matter
    assert filter_logits(shuffled, top_p=0.8).isfinite().tolist() == [[False, True, False, True, True]]
    assert next_token(logits).item() == 0


def test_causal_and_cached_forward():
    torch.manual_seed(0)
    gpt = GPT(vocab_size=V, n_positions=16, n_embd=16, n_layer=2, n_head=4).eval()
    idx = torch.randint(0, V, (2, 16))
    full = gpt(idx)
    changed = idx.clone()
    changed[:, 8] = (changed[:, 8] + 1) % V
    assert torch.equal(gpt(changed)[:, :8], full[:, :8])
    from attn_tutorial.multihead import KVCache
    caches = [KVCache() for _ in gpt.h]
    pieces = [gpt(idx[:, :5], caches), gpt(idx[:, 5:6], caches), gpt(idx[:, 6:], caches)]
    torch.testing.assert_close(torch.cat(pieces, 1), full)


def test_dropout_where_gpt2_has_it():
    "GPT-2's two rates: `attn_pdrop` on the attention weights, `resid_pdrop` on what each sublayer adds."
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=V, n_positions=POSITIONS,
                                     attn_pdrop=0.3, resid_pdrop=0.1, embd_pdrop=0.1)
    copy = GPT.from_hf(transformers.GPT2LMHeadModel(config))
    block = copy.h[0]
    assert block.attn.dropout == 0.3 and block.drop.p == block.mlp.drop.p == copy.drop.p == 0.1
    same = GPT(vocab_size=V, n_positions=16, n_embd=16, n_layer=1, n_head=2, dropout=0.2).h[0]
    assert same.attn.dropout == same.drop.p == 0.2                  # one rate for both unless told
    apart = GPT(GPTConfig(vocab_size=V, n_positions=16, n_embd=16, n_layer=1, n_head=2, dropout=0.2,
                           attn_dropout=0.0))
    assert apart.h[0].attn.dropout == 0.0 and apart.h[0].drop.p == 0.2
    # in training, residual dropout alone makes two passes differ; in eval mode they agree
    idx = prompts(2, 8)
    assert not torch.equal(apart(idx), apart(idx))
    apart.eval()
    assert torch.equal(apart(idx), apart(idx))


def test_ladder_switches():
    plain = GPT(vocab_size=V, n_positions=16, n_embd=16, n_layer=1, n_head=2, mlp=False, residual=False)
    assert plain.ln_f is None and plain.h[0].ln_1 is None and plain.h[0].mlp is None
    assert not any("ln_" in name for name, _ in plain.named_parameters())
    assert plain(torch.zeros(1, 4, dtype=torch.long)).shape == (1, 4, V)


def test_errors_name_the_shapes():
    gpt = GPT(vocab_size=V, n_positions=8, n_embd=16, n_layer=1, n_head=2)
    with pytest.raises(ValueError, match=r"idx \(1, 9\) needs 9 positions.*n_positions=8"):
        gpt(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"needs 10 positions"):
        gpt.generate(torch.zeros(1, 4, dtype=torch.long), 6)
    with pytest.raises(ValueError, match=r"\(B, T\).*got shape \(5,\)"):
        gpt(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"must be in \[0, 50\).*to 50"):
        gpt(torch.full((1, 3), V))
    with pytest.raises(ValueError, match="temperature > 0"):
        gpt.generate(torch.zeros(1, 2, dtype=torch.long), 2, do_sample=True, temperature=0)
    with pytest.raises(ValueError, match="top_p"):
        gpt.generate(torch.zeros(1, 2, dtype=torch.long), 2, do_sample=True, top_p=0)
    with pytest.raises(ValueError, match="one KVCache per layer"):
        gpt(torch.zeros(1, 2, dtype=torch.long), [])
    with pytest.raises(ValueError, match="copies a causal language model.*GPT2LMHeadModel.*got Linear"):
        GPT.from_hf(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"takes a configuration.*GPT\(vocab_size=65"):
        GPT(V)                                                         # a size where a configuration goes
    with pytest.raises(ValueError, match="takes a configuration"):
        GPT(GPTConfig(vocab_size=V), n_layer=2)                        # a configuration and settings besides
    with pytest.raises(ValueError, match="beam_size must be >= 1"):
        gpt.generate(torch.zeros(1, 2, dtype=torch.long), 2, num_beams=0)
    with pytest.raises(ValueError, match="too short"):
        text_batches(torch.zeros(4, dtype=torch.long), 4, 2)


def test_windows_shift_by_one():
    ids = torch.arange(20)
    x, y = windows(ids, [0, 7], 5)
    assert x.tolist() == [[0, 1, 2, 3, 4], [7, 8, 9, 10, 11]] and torch.equal(y, x + 1)
    batch = next(iter(text_batches(ids, 5, 3)))
    assert batch[0].shape == batch[1].shape == (3, 5) and torch.equal(batch[1], batch[0] + 1)


def test_the_library_does_not_import_transformers():
    import subprocess
    import sys
    code = "import sys, attn_tutorial.gpt; assert 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)



@pytest.mark.parametrize("num_beams", [2, 4])
def test_beam_search_equals_hugging_face(hf, ours, num_beams):
    "The book's one beam search, used by a decoder-only model: Hugging Face's beams, token for token."
    idx = prompts(2, 4)
    theirs = hf.generate(idx, attention_mask=torch.ones_like(idx), do_sample=False, num_beams=num_beams,
                         max_new_tokens=12, early_stopping=True)
    assert torch.equal(ours.generate(idx, 12, num_beams=num_beams), theirs)
    assert torch.equal(ours.generate(idx, 12, num_beams=1), ours.generate(idx, 12))


def test_generation_ends_at_the_end_token_as_hugging_face(hf, ours):
    idx = prompts(3, 4)
    free = ours.generate(idx, 20)
    eos = int(free[0, 7])                                              # a token the first row writes
    theirs = hf.generate(idx, attention_mask=torch.ones_like(idx), do_sample=False, max_new_tokens=20,
                         eos_token_id=eos, pad_token_id=eos)
    mine = ours.generate(idx, 20, eos_token_id=eos)
    # Hugging Face stops when every row has ended; after its end a row holds only the end token
    assert torch.equal(mine[:, : theirs.shape[1]], theirs) and (mine[:, theirs.shape[1]:] == eos).all()
    first = (mine[0, 4:] == eos).nonzero()[0].item() + 4
    assert first <= 7 and (mine[0, first:] == eos).all() and torch.equal(mine[0, :first], free[0, :first])


def test_one_model_class_for_every_family(hf, ours):
    "GPT-2 is a GPT of GPTConfig; every attention in it is the book's MultiHeadAttention."
    assert isinstance(ours.config, GPTConfig) and ours.config.n_layer == 2
    attentions = [m for m in ours.modules() if "attention" in type(m).__name__.lower()]
    assert attentions == [block.attn for block in ours.h]
    assert all(type(a) is MultiHeadAttention for a in attentions)
    assert GPT(GPTConfig(vocab_size=V)).config == GPT(vocab_size=V).config
