"""Benchmark: attn_tutorial.multihead.MultiHeadAttention against torch.nn.MultiheadAttention, in one run.

Time of one call at B=8, L=512, E=512, H=8, self-attention, in inference (no grad, eval) and training (forward +
backward) mode, without and with the weights (averaged over heads, both modules' default). Goal: ours / torch
<= 1.1 in all four. The two modules' calls alternate, so a busy moment of the machine slows both; the median of
`--repeats` calls is kept. Prints a table and writes JSON.

    .venv/bin/python bench/multihead.py [--out bench/results/multihead.json] [--repeats 15]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from attn_tutorial.multihead import MultiHeadAttention

GOAL = 1.1


def call(m: nn.Module, x: torch.Tensor, mode: str, need_weights: bool) -> None:
    if mode == "inference":
        with torch.no_grad():
            m(x, x, x, need_weights=need_weights)
    else:
        xg = x.detach().requires_grad_()
        m(xg, xg, xg, need_weights=need_weights)[0].sum().backward()


def interleaved_medians(fns: dict, repeats: int, warmup: int = 3) -> dict[str, float]:
    "Median seconds of each function, the functions called in turn `repeats` times after `warmup` rounds."
    times = {name: [] for name in fns}
    for i in range(warmup + repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/multihead.json")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--B", type=int, default=8)
    ap.add_argument("--L", type=int, default=512)
    ap.add_argument("--E", type=int, default=512)
    ap.add_argument("--H", type=int, default=8)
    args = ap.parse_args()
    torch.manual_seed(0)
    B, L, E, H = args.B, args.L, args.E, args.H
    ref = nn.MultiheadAttention(E, H, batch_first=True).eval()
    ours = MultiHeadAttention.from_torch(ref).eval()
    x = torch.randn(B, L, E)
    with torch.no_grad():                                          # the two compute the same function
        for need_weights in (False, True):
            (o1, w1), (o2, w2) = ours(x, x, x, need_weights=need_weights), ref(x, x, x, need_weights=need_weights)
            assert torch.allclose(o1, o2, atol=1e-5) and (w1 is None or torch.allclose(w1, w2, atol=1e-6))
    rows = []
    for mode in ("inference", "training"):
        for need_weights in (False, True):
            t = interleaved_medians({"ours": lambda: call(ours, x, mode, need_weights),
                                     "torch": lambda: call(ref, x, mode, need_weights)}, args.repeats)
            rows.append(dict(mode=mode, need_weights=need_weights, ours_ms=1e3 * t["ours"],
                             torch_ms=1e3 * t["torch"], ratio=t["ours"] / t["torch"]))
    print(f"MultiHeadAttention vs torch.nn.MultiheadAttention, B={B} L={L} E={E} H={H}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"{'mode':>10} {'need_weights':>13} {'ours ms':>9} {'torch ms':>9} {'ratio':>6}")
    for r in rows:
        print(f"{r['mode']:>10} {str(r['need_weights']):>13} {r['ours_ms']:9.1f} {r['torch_ms']:9.1f} {r['ratio']:6.2f}")
    worst = max(r["ratio"] for r in rows)
    print(f"goal: every ratio <= {GOAL}: {worst <= GOAL} (largest {worst:.2f})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(benchmark="multihead", shape=dict(B=B, L=L, E=E, H=H), torch=torch.__version__,
                                   threads=torch.get_num_threads(), machine=platform.machine(),
                                   processor=platform.processor(), repeats=args.repeats, rows=rows,
                                   goal=f"ours / torch <= {GOAL} in every row", largest_ratio=worst,
                                   goal_met=worst <= GOAL), indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
