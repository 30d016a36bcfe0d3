"""attn_tutorial.measure: the median of timed runs, interleaved timing, saved-for-backward bytes counted exactly,
and the peak memory of a call (measured in a fresh process)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from attn_tutorial.measure import interleaved_times


def test_interleaved_times_alternates_and_takes_medians():
    calls = []
    out = interleaved_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b"] * 4 and set(out) == {"a", "b"} and min(out.values()) >= 0
    with pytest.raises(ValueError, match="repeats"):
        interleaved_times({"a": lambda: None}, repeats=0)


def test_saved_tensor_bytes_counts_distinct_saved_storages():
    from attn_tutorial.measure import saved_tensor_bytes
    x = torch.randn(30, 40, requires_grad=True)
    w = torch.randn(40, 20, requires_grad=True)
    n, y = saved_tensor_bytes(lambda a, b: (a @ b).relu(), x, w)
    # matmul saves both inputs, relu its output: (30*40 + 40*20 + 30*20) float32 entries
    assert n == (30 * 40 + 40 * 20 + 30 * 20) * 4 and y.shape == (30, 20)
    assert saved_tensor_bytes(lambda a: a.double().exp(), x)[0] == 30 * 40 * 8
    assert saved_tensor_bytes(lambda a: a + 1, x)[0] == 0             # addition saves nothing


def test_median_time_and_first_step():
    import math
    from attn_tutorial.train import History
    from attn_tutorial.measure import median_time
    calls = []
    assert median_time(lambda: calls.append(1), repeats=4, warmup=2) >= 0 and len(calls) == 6
    with pytest.raises(ValueError, match="repeats"):
        median_time(lambda: None, repeats=0)
    h = History(eval_steps=[25, 50], evals=[{"acc": 0.94}, {"acc": 0.95}])
    assert h.first_step("acc", 0.95) == 50 and h.first_step("acc", 0.96) == math.inf


def test_measure_peak_mib_sees_a_temporary():
    probe = ("import torch\nfrom attn_tutorial.measure import measure_peak_mib\n"
             "mib, result = measure_peak_mib(lambda: torch.ones(1024, 1024 * 8).sum().item())\n"
             "print(mib, result)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    mib, result = float(out[0]), float(out[1])                       # a 32 MiB temporary, in a fresh process
    assert result == 1024 * 1024 * 8 and 28 < mib < 40


