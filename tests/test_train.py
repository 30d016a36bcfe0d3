"""attn_tutorial.train: the loop learns, stops at its target, is reproducible, and refuses bad arguments."""
import pytest
import torch
from torch import nn

from attn_tutorial.train import cycle_batches, fit, History, Progress, seed_everything, to_device


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
    # the bar updates in place on one line ...
    assert err.count("\n") == 1 and "demo [####################] 20/20" in err.split("\r")[-2]
    # ... and the run ends by overwriting it with a summary, so a log keeps what the run did, not a bar
    last = err.split("\r")[-1]
    assert last.startswith("demo: done in ") and "20 steps" in last and "[" not in last


def test_progress_summary_is_wrapped_to_the_column_and_hides_the_bar(capsys):
    bar = Progress(10, "a run with a long description")
    bar.update(10, "loss 0.123 " * 6)
    bar.close(10, "metric 0.5 " * 12)
    err = capsys.readouterr().err
    bar_line, summary = err.split("\r")[1:]
    lines = summary.rstrip("\n").split("\n")
    # the first line covers the whole bar; the summary's words are wrapped at 88 columns
    assert len(lines) > 1 and len(lines[0]) >= len(bar_line.rstrip())
    assert all(len(line.rstrip()) <= 88 for line in lines)
    assert " ".join(line.strip() for line in lines).startswith(
        "a run with a long description: done in 0 s, metric 0.5 metric 0.5"
    )


def test_bad_arguments():
    model, loss_fn, batches, acc = _task(3)
    with pytest.raises(ValueError, match="steps must be >= 1 and seconds > 0"):
        fit(model, loss_fn, batches, 0, progress=False)
    with pytest.raises(ValueError, match="need an eval_fn"):
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


def test_time_limit_best_weights_and_schedule():
    from attn_tutorial.train import warmup_rsqrt
    model, loss_fn, batches, acc = _task(4)
    hist = fit(model, loss_fn, batches, seconds=0.2, eval_fn=acc, eval_every=10**9, progress=False, device="cpu")
    assert hist.seconds >= 0.2 and hist.eval_steps == [hist.steps[-1]] and not hist.stopped_early
    scores = iter([0.3, 0.7, 0.1])
    snapshots = []
    def peaked(m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return {"s": next(scores)}
    model, *_ = _task(5)
    hist = fit(model, loss_fn, batches, 30, eval_fn=peaked, eval_every=10, keep_best="s", progress=False,
               device="cpu", schedule=warmup_rsqrt(5))
    assert hist.best_step == 20 and all(torch.equal(v, snapshots[1][k]) for k, v in model.state_dict().items())
    assert not torch.equal(hist.final_state["weight"], model.weight)     # the last step's weights, kept aside
    with pytest.raises(ValueError, match="steps or seconds"):
        fit(model, loss_fn, batches, progress=False)
    with pytest.raises(ValueError, match="need an eval_fn"):
        fit(model, loss_fn, batches, 5, keep_best="s", progress=False)


def test_weight_decay_is_adamw_on_matrices_and_equals_its_own_update():
    from attn_tutorial.train import _optimizer

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), nn.LayerNorm(4), nn.Linear(4, 3))
    assert type(_optimizer(model, 1e-3, (0.9, 0.999), 0.0)) is torch.optim.Adam   # 0: the old runs, unchanged
    decayed, free = _optimizer(model, 1e-3, (0.9, 0.999), 0.1).param_groups
    assert [p.shape for p in decayed["params"]] == [(4, 6), (3, 4)] and decayed["weight_decay"] == 0.1
    assert len(free["params"]) == 4 and free["weight_decay"] == 0.0      # the biases and the LayerNorm gain/shift
    # one step by hand, in float64: w <- w (1 - lr wd) - lr m / (sqrt(v) + eps), with Adam's bias-corrected m, v
    model = model.double()
    x, y = torch.randn(5, 6, dtype=torch.float64), torch.randint(0, 3, (5,))
    loss_fn = lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1])
    w0 = model[0].weight.detach().clone()
    g = torch.autograd.grad(loss_fn(model, (x, y)), model[0].weight)[0]
    fit(model, loss_fn, [(x, y)], 1, lr=0.01, weight_decay=0.3, clip=None, device="cpu", progress=False)
    expected = w0 * (1 - 0.01 * 0.3) - 0.01 * g / (g.abs() + 1e-8)  # m / sqrt(v) = g / |g| after one step
    torch.testing.assert_close(model[0].weight.detach(), expected, rtol=0, atol=1e-10)
