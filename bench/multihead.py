"""Benchmark: attn_tutorial.multihead.MultiHeadAttention against torch.nn.MultiheadAttention, in one run.

Forward time at B=8, L=512, E=512, H=8 (goal: ours / torch <= 1.1 with need_weights=False), with and without the
weights, in inference (no grad) and training (forward + backward) mode. Prints a table and writes JSON.

    .venv/bin/python bench/multihead.py [--out bench/results/multihead.json] [--repeats 20]
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
from torch import nn

from attn_tutorial.multihead import MultiHeadAttention
from attn_tutorial.train import median_time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/multihead.json")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--B", type=int, default=8)
    ap.add_argument("--L", type=int, default=512)
    ap.add_argument("--E", type=int, default=512)
    ap.add_argument("--H", type=int, default=8)
    args = ap.parse_args()
    torch.manual_seed(0)
    B, L, E, H = args.B, args.L, args.E, args.H
    ref = nn.MultiheadAttention(E, H, batch_first=True)
    ours = MultiHeadAttention.from_torch(ref)
    x = torch.randn(B, L, E)
    with torch.no_grad():                                          # the two compute the same function
        assert torch.allclose(ours(x, x, x)[0], ref(x, x, x)[0], atol=1e-5)
    rows = []
    for mode in ("inference", "training"):
        for need_weights in (False, True):
            def run(m, is_ours):
                kw = {} if is_ours else {"average_attn_weights": False}
                if mode == "inference":
                    with torch.no_grad():
                        m(x, x, x, need_weights=need_weights, **kw)
                else:
                    xg = x.detach().requires_grad_()
                    m(xg, xg, xg, need_weights=need_weights, **kw)[0].sum().backward()
            ref.eval(), ours.eval()
            t_ours = median_time(lambda: run(ours, True), args.repeats, warmup=3)
            t_torch = median_time(lambda: run(ref, False), args.repeats, warmup=3)
            rows.append(dict(mode=mode, need_weights=need_weights, ours_ms=1e3 * t_ours, torch_ms=1e3 * t_torch,
                             ratio=t_ours / t_torch))
    print(f"MultiHeadAttention vs torch.nn.MultiheadAttention, B={B} L={L} E={E} H={H}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'mode':>10} {'need_weights':>13} {'ours ms':>9} {'torch ms':>9} {'ratio':>6}")
    for r in rows:
        print(f"{r['mode']:>10} {str(r['need_weights']):>13} {r['ours_ms']:9.1f} {r['torch_ms']:9.1f} {r['ratio']:6.2f}")
    goal = next(r for r in rows if r["mode"] == "inference" and not r["need_weights"])
    print(f"goal (inference, need_weights=False): ratio {goal['ratio']:.2f} <= 1.1: {goal['ratio'] <= 1.1}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(benchmark="multihead", shape=dict(B=B, L=L, E=E, H=H), torch=torch.__version__,
                                   threads=torch.get_num_threads(), machine=platform.machine(),
                                   processor=platform.processor(), rows=rows,
                                   goal_ratio=goal["ratio"], goal_met=goal["ratio"] <= 1.1), indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
