"""attn_tutorial.train_gpt: the GPT chapter's long-run program (its command line, results, weights, clock
schedule and torch.distributed behaviour)."""
from __future__ import annotations

import json
import math
import random
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from attn_tutorial.gpt import GPT, GPTConfig

TINY = "--context 48 --n-embd 16 --layers 1 --heads 2 --batch-size 4 --no-progress".split()


def test_the_long_run_script_writes_results_samples_and_weights(tmp_path):
    from attn_tutorial.data import SPECIALS, Vocab
    from attn_tutorial.train_gpt import main

    results = tmp_path / "new" / "run.json"                            # the folder is made
    r = main(TINY + ["--steps", "7", "--eval-every", "3", "--results", str(results), "--out", str(tmp_path / "w")])
    saved = json.loads(results.read_text())
    assert saved["steps"] == 7 and [c["step"] for c in saved["curve"]] == [3, 6, 7]
    assert saved["final_valid_loss"] == saved["curve"][-1]["valid_loss"] == r["final_valid_loss"]
    assert saved["provenance"]["command"].startswith("python -m attn_tutorial.train_gpt --context 48")
    assert set(saved["samples"]) == {"greedy", "temperature 0.8", "top-k 10", "top-p 0.9"}
    kept = torch.load(tmp_path / "w" / "gpt.pt")
    vocab = Vocab(kept["vocab"][len(SPECIALS):])
    # the held-out play's first words, continued to the context's end (or an <eos>)
    assert all(t.startswith("If music be the food of love, ") and len(t) <= 48 for t in saved["samples"].values())
    # 7 steps of a tiny model already beat a uniform guess over the characters
    assert r["final_valid_loss"] < math.log(len(vocab))
    model = GPT(GPTConfig(vocab_size=len(kept["vocab"]), n_positions=48, n_embd=16, n_layer=1, n_head=2))
    model.load_state_dict(kept["state"])                               # the weights are the whole model


def test_a_timed_run_stops_on_time_and_its_schedule_follows_the_clock(tmp_path):
    from attn_tutorial.train import clock_schedule
    from attn_tutorial.train_gpt import main

    r = main(TINY + ["--minutes", "0.04", "--eval-every", "1000", "--results", str(tmp_path / "r.json"),
                     "--out", str(tmp_path)])
    # it stops at the first step past the time (then measures the final weights once); how many
    # steps fit in 2.4 s depends on the machine's load, so only that it took more than one
    assert r["steps"] >= 2 and 2.4 <= r["train_seconds"] < 2.4 + 10
    fresh = clock_schedule(60.0, warmup=4, device="cpu")
    assert fresh(0) == pytest.approx(0.25, abs=1e-3) and fresh(9) == pytest.approx(1.0, abs=1e-3)
    over = clock_schedule(0.05, warmup=4, device="cpu")
    time.sleep(0.06)
    assert over(9) == 0.0                                              # the end of the time is the end of the cosine


def _clock_on_two_processes(rank, init, out):
    import attn_tutorial.train as train

    class Clock:                                                       # the second process's clock runs 30 s ahead
        perf_counter = staticmethod(lambda: time.perf_counter() + 30.0 * rank)

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    factor = train.clock_schedule(60.0, warmup=1, device="cpu")
    train.time = Clock                                                   # from the first call on
    torch.save(factor(5), f"{out}.{rank}")
    dist.destroy_process_group()


def test_under_torch_distributed_every_process_takes_the_first_process_clock(tmp_path):
    mp.spawn(_clock_on_two_processes, args=(f"file://{tmp_path / 'init'}", str(tmp_path / "f")), nprocs=2)
    first, second = (torch.load(tmp_path / f"f.{r}") for r in (0, 1))
    # one factor for both: the first process's, near the start of the 60-s run (about 1), not the second's own,
    # half-way (0.5); only a first process 15 s late could bring it down to the threshold
    assert first == second > 0.5 * (1 + math.cos(math.pi * 0.25))


def test_more_plays_hold_the_validation_and_test_plays_out_and_weight_decay_reaches_the_optimizer(
        tmp_path, monkeypatch):
    import attn_tutorial.gpt as gpt
    import attn_tutorial.train as train
    from attn_tutorial.train_gpt import main

    train_text, more, valid, test = (gpt.load_text(s) for s in ("train", "more_plays", "valid", "test"))
    assert len(more) > 3 * len(train_text)                             # the long run's extra text
    seen = train_text + more
    rng = random.Random(0)
    for held in (valid, test):
        starts = [rng.randrange(len(held) - 80) for _ in range(200)]
        # no stretch of 80 characters of a held-out play occurs in any training text
        assert not [s for s in starts if held[s:s + 80] in seen]
    assert not [s for s in starts if test[s:s + 80] in valid]          # and the two held-out plays differ
    made = []
    monkeypatch.setattr(train, "_optimizer", lambda *a: made.append(a) or torch.optim.Adam(a[0].parameters()))
    r = main(TINY + ["--steps", "2", "--more-plays", "--weight-decay", "0.1",
                         "--results", str(tmp_path / "r.json"), "--out", str(tmp_path)])
    assert r["train_chars"] == len(train_text) + 1 + len(more) and made[0][3] == 0.1
    assert "test_loss" not in r                                        # the test play is scored only when asked
    with pytest.raises(ValueError, match="no split 'tests'"):
        gpt.load_text("tests")


def test_the_test_play_is_scored_once_with_the_final_weights(tmp_path):
    import attn_tutorial.gpt as gpt
    from attn_tutorial.train_gpt import main

    r = main(TINY + ["--steps", "3", "--test", "--results", str(tmp_path / "r.json"), "--out", str(tmp_path)])
    from attn_tutorial.data import SPECIALS, Vocab

    kept = torch.load(tmp_path / "gpt.pt")
    model = GPT(GPTConfig(vocab_size=len(kept["vocab"]), n_positions=48, n_embd=16, n_layer=1, n_head=2))
    model.load_state_dict(kept["state"])
    test_ids = gpt.encode_text(gpt.load_text("test"), Vocab(kept["vocab"][len(SPECIALS):]))
    with torch.no_grad():
        again = gpt.held_out_loss(model.eval(), test_ids, 48)
    # the saved weights score the test play as the run reported (float32 sums: 1e-6)
    assert r["test_loss"] == pytest.approx(again, rel=1e-6)
    assert json.loads((tmp_path / "r.json").read_text())["test_loss"] == r["test_loss"]
