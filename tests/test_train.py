"""attn_tutorial.train: the loop learns, stops at its target, is reproducible, and refuses bad arguments."""
import pytest
import torch
from torch import nn

from attn_tutorial.train import History, cycle_batches, fit, seed_everything, to_device


def _task(seed):
    seed_everything(seed)
    X = torch.randn(256, 6)
    y = (X @ torch.randn(6, 3)).argmax(-1)
    batches = [(X[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32)]
    loss_fn = lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1])
    acc = lambda m: {"acc": (m(X).argmax(-1) == y).float().mean().item()}
    return nn.Linear(6, 3), loss_fn, batches, acc


def test_reaches_target_and_stops_early():
    model, loss_fn, batches, acc = _task(0)
    h = fit(model, loss_fn, batches, 3000, lr=1e-2, eval_fn=acc, eval_every=20, target=("acc", 0.95),
            device="cpu", progress=False)
    assert isinstance(h, History) and h.stopped_early
    assert h.metric("acc")[-1] >= 0.95 and h.steps[-1] < 3000 and h.steps[-1] % 20 == 0
    assert h.losses[-1] < 0.5 * h.losses[0] and h.seconds > 0
    assert acc(model)["acc"] >= 0.95                           # the model returned is the trained one


def test_same_seed_same_run_and_no_target_runs_all_steps():
    runs = []
    for _ in range(2):
        model, loss_fn, batches, acc = _task(1)
        runs.append(fit(model, loss_fn, batches, 50, eval_fn=acc, eval_every=10, device="cpu", progress=False))
    assert runs[0].losses == runs[1].losses and len(runs[0].steps) == 50 and not runs[0].stopped_early
    assert runs[0].eval_steps == [10, 20, 30, 40, 50]


def test_progress_line_on_a_terminal(capsys):
    model, loss_fn, batches, _ = _task(2)
    fit(model, loss_fn, batches, 20, device="cpu", desc="demo")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "demo [####################] 20/20" in err.split("\r")[-1]


def test_bad_arguments():
    model, loss_fn, batches, acc = _task(3)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        fit(model, loss_fn, batches, 0, progress=False)
    with pytest.raises(ValueError, match="needs an eval_fn"):
        fit(model, loss_fn, batches, 5, target=("acc", 0.9), progress=False)
    with pytest.raises(ValueError, match="batches is empty"):
        fit(model, loss_fn, [], 5, progress=False, device="cpu")
    with pytest.raises(FloatingPointError, match="step 1"):
        fit(model, lambda m, b: m(b[0]).sum() * float("nan"), batches, 5, progress=False, device="cpu")


def test_helpers():
    it = cycle_batches([1, 2])
    assert [next(it) for _ in range(5)] == [1, 2, 1, 2, 1]
    moved = to_device({"a": (torch.ones(1), [torch.zeros(2)]), "n": 3}, "cpu")
    assert moved["n"] == 3 and moved["a"][1][0].shape == (2,)


def test_saved_tensor_bytes_counts_distinct_saved_storages():
    from attn_tutorial.train import saved_tensor_bytes
    x = torch.randn(30, 40, requires_grad=True)
    w = torch.randn(40, 20, requires_grad=True)
    n, y = saved_tensor_bytes(lambda a, b: (a @ b).relu(), x, w)
    # matmul saves both inputs, relu its output: (30*40 + 40*20 + 30*20) float32 entries
    assert n == (30 * 40 + 40 * 20 + 30 * 20) * 4 and y.shape == (30, 20)
    assert saved_tensor_bytes(lambda a: a.double().exp(), x)[0] == 30 * 40 * 8
    assert saved_tensor_bytes(lambda a: a + 1, x)[0] == 0             # addition saves nothing


def test_median_time_and_first_step():
    import math
    from attn_tutorial.train import History, median_time
    calls = []
    assert median_time(lambda: calls.append(1), repeats=4, warmup=2) >= 0 and len(calls) == 6
    with pytest.raises(ValueError, match="repeats"):
        median_time(lambda: None, repeats=0)
    h = History(eval_steps=[25, 50], evals=[{"acc": 0.94}, {"acc": 0.95}])
    assert h.first_step("acc", 0.95) == 50 and h.first_step("acc", 0.96) == math.inf


def test_record_writes_a_fresh_file_per_process_then_merges(tmp_path, monkeypatch):
    import json
    import numpy as np
    from attn_tutorial import train
    monkeypatch.setattr(train, "_recorded", set())
    (tmp_path / "ch.json").write_text(json.dumps({"stale": {"value": 1.0, "format": ".1f"}}))
    assert train.record("ch", "a", np.float32(0.5), ".1%", folder=tmp_path) == 0.5
    train.record("ch", "b", torch.tensor(3.25), folder=tmp_path)
    train.record("ch", "a", 0.75, ".1%", folder=tmp_path)                 # the same name again: replaced
    saved = json.loads((tmp_path / "ch.json").read_text())
    assert saved == {"a": {"value": 0.75, "format": ".1%"}, "b": {"value": 3.25, "format": ".3f"}}
    assert list(saved) == ["a", "b"]                                       # the order of first recording
    train.record("other", "tiny", 2.2204460492503131e-16, ".1e", folder=tmp_path)
    assert json.loads((tmp_path / "other.json").read_text())["tiny"]["value"] == 2.22045e-16
    with pytest.raises(ValueError):
        train.record("ch", "c", 1.0, "not a spec", folder=tmp_path)


def test_every_chapter_records_its_results_under_its_own_name():
    "The conclusion reads nbs/results/<chapter>.json: each chapter must write its own file, and it must be there."
    import re
    from pathlib import Path
    import nbformat
    nbs = Path(__file__).resolve().parents[1] / "nbs"
    chapters = sorted(p for p in nbs.glob("[01][0-9]_*.ipynb") if p.stem != "15_conclusion")
    assert len(chapters) == 14
    for path in chapters:
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        names = set(re.findall(r'record\("([^"]+)"', code))
        assert names == {path.stem}, (path.name, names)
        assert (nbs / "results" / f"{path.stem}.json").exists(), f"{path.stem}: run it to write its results"
