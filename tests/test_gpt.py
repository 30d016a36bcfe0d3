"""attn_tutorial.gpt: GPT-2 exactly (against Hugging Face `transformers`, a test-only dependency, on tiny random
configurations: nothing downloads), generation with and without the key/value cache, sampling, and errors."""
from __future__ import annotations

import json
import math
import random
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from attn_tutorial.gpt import GPT, filter_logits, next_token, text_batches, windows

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
    gpt = GPT(V, n_positions=16, n_embd=16, n_layer=2, n_head=4).eval()
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
    same = GPT(V, 16, 16, 1, 2, dropout=0.2).h[0]
    assert same.attn.dropout == same.drop.p == 0.2                  # one rate for both unless told
    apart = GPT(V, 16, 16, 1, 2, dropout=0.2, attn_dropout=0.0)
    assert apart.h[0].attn.dropout == 0.0 and apart.h[0].drop.p == 0.2
    # in training, residual dropout alone makes two passes differ; in eval mode they agree
    idx = prompts(2, 8)
    assert not torch.equal(apart(idx), apart(idx))
    apart.eval()
    assert torch.equal(apart(idx), apart(idx))


def test_ladder_switches():
    plain = GPT(V, 16, 16, 1, 2, mlp=False, residual=False)
    assert plain.ln_f is None and plain.h[0].ln_1 is None and plain.h[0].mlp is None
    assert not any("ln_" in name for name, _ in plain.named_parameters())
    assert plain(torch.zeros(1, 4, dtype=torch.long)).shape == (1, 4, V)


def test_errors_name_the_shapes():
    gpt = GPT(V, n_positions=8, n_embd=16, n_layer=1, n_head=2)
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
    with pytest.raises(ValueError, match="copies a GPT2LMHeadModel"):
        GPT.from_hf(torch.nn.Linear(2, 2))
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


TINY = "--context 48 --n-embd 16 --layers 1 --heads 2 --batch-size 4 --no-progress".split()


def test_the_long_run_script_writes_results_samples_and_weights(tmp_path):
    from attn_tutorial.gpt import Vocab, SPECIALS, main

    results = tmp_path / "new" / "run.json"                            # the folder is made
    r = main(TINY + ["--steps", "7", "--eval-every", "3", "--results", str(results), "--out", str(tmp_path / "w")])
    saved = json.loads(results.read_text())
    assert saved["steps"] == 7 and [c["step"] for c in saved["curve"]] == [3, 6, 7]
    assert saved["final_valid_loss"] == saved["curve"][-1]["valid_loss"] == r["final_valid_loss"]
    assert saved["provenance"]["command"].startswith("python -m attn_tutorial.gpt --context 48")
    assert set(saved["samples"]) == {"greedy", "temperature 0.8", "top-k 10", "top-p 0.9"}
    kept = torch.load(tmp_path / "w" / "gpt.pt")
    vocab = Vocab(kept["vocab"][len(SPECIALS):])
    # the held-out play's first words, continued to the context's end (or an <eos>)
    assert all(t.startswith("If music be the food of love, ") and len(t) <= 48 for t in saved["samples"].values())
    # 7 steps of a tiny model already beat a uniform guess over the characters
    assert r["final_valid_loss"] < math.log(len(vocab))
    model = GPT(len(kept["vocab"]), 48, 16, 1, 2)
    model.load_state_dict(kept["state"])                               # the weights are the whole model


def test_a_timed_run_stops_on_time_and_its_schedule_follows_the_clock(tmp_path):
    from attn_tutorial.gpt import _clock_schedule, main

    r = main(TINY + ["--minutes", "0.04", "--eval-every", "1000", "--results", str(tmp_path / "r.json"),
                     "--out", str(tmp_path)])
    # it stops at the first step past the time (then measures the final weights once)
    assert r["steps"] > 10 and 2.4 <= r["train_seconds"] < 2.4 + 10
    fresh = _clock_schedule(60.0, warmup=4, device="cpu")
    assert fresh(0) == pytest.approx(0.25, abs=1e-3) and fresh(9) == pytest.approx(1.0, abs=1e-3)
    over = _clock_schedule(0.05, warmup=4, device="cpu")
    time.sleep(0.06)
    assert over(9) == 0.0                                              # the end of the time is the end of the cosine


def _clock_on_two_processes(rank, init, out):
    import attn_tutorial.gpt as gpt

    class Clock:                                                       # the second process's clock runs 30 s ahead
        perf_counter = staticmethod(lambda: time.perf_counter() + 30.0 * rank)

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    factor = gpt._clock_schedule(60.0, warmup=1, device="cpu")
    gpt.time = Clock                                                   # from the first call on
    torch.save(factor(5), f"{out}.{rank}")
    dist.destroy_process_group()


def test_under_torch_distributed_every_process_takes_the_first_process_clock(tmp_path):
    mp.spawn(_clock_on_two_processes, args=(f"file://{tmp_path / 'init'}", str(tmp_path / "f")), nprocs=2)
    first, second = (torch.load(tmp_path / f"f.{r}") for r in (0, 1))
    # one factor for both: the first process's, near the start of the 60-s run (about 1), not the second's own,
    # half-way (0.5); only a first process 15 s late could bring it down to the threshold
    assert first == second > 0.5 * (1 + math.cos(math.pi * 0.25))


def test_more_plays_hold_twelfth_night_out_and_weight_decay_reaches_the_optimizer(tmp_path, monkeypatch):
    import attn_tutorial.gpt as gpt
    import attn_tutorial.train as train

    train_text, more, valid = (gpt.load_text(s) for s in ("train", "more_plays", "valid"))
    assert len(more) > 3 * len(train_text)                             # the long run's extra text
    seen = train_text + more
    rng = random.Random(0)
    starts = [rng.randrange(len(valid) - 80) for _ in range(200)]
    # no stretch of 80 characters of the held-out play occurs in any training text
    assert not [s for s in starts if valid[s:s + 80] in seen]
    made = []
    monkeypatch.setattr(train, "_optimizer", lambda *a: made.append(a) or torch.optim.Adam(a[0].parameters()))
    r = gpt.main(TINY + ["--steps", "2", "--more-plays", "--weight-decay", "0.1",
                         "--results", str(tmp_path / "r.json"), "--out", str(tmp_path)])
    assert r["train_chars"] == len(train_text) + 1 + len(more) and made[0][3] == 0.1
    with pytest.raises(ValueError, match="no split 'test'"):
        gpt.load_text("test")
