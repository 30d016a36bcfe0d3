"""Benchmark: sliding-window attention. attn_tutorial.efficient.chunked_attention with a window (the banded
tiles skip the key blocks outside the window) against PyTorch's fused F.scaled_dot_product_attention over the
full causal sequence, in one run:

- forward time for N = 1024 .. 16384 (1 sequence, 8 heads of width 64), window 512 (and --windows);
- peak extra memory of one forward call (one head), each measured in a fresh process;
- the check that the banded result equals torch's attention with the window as a mask (N = 2048, float64).

Goal: at window 512 and N = 16384, the banded forward takes at most 0.2x the time of full causal SDPA.
Prints a table, writes bench/results/window.json (which nbs/12_modern.ipynb reads).

    .venv/bin/python bench/window.py [--out bench/results/window.json] [--max-n 16384]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from attn_tutorial.book import provenance
from attn_tutorial.efficient import chunked_attention
from attn_tutorial.measure import median_time
from attn_tutorial.modern import window_mask

MEMORY_CHILD = """
import torch, torch.nn.functional as F
from attn_tutorial.efficient import chunked_attention
from attn_tutorial.measure import measure_peak_mib
N, window = {N}, {window}
fn = (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)) if window is None else (
    lambda q, k, v: chunked_attention(q, k, v, window=window))
torch.manual_seed(0)
with torch.no_grad():
    fn(*(torch.randn(1, 1, 64, 64) for _ in range(3)))
    q, k, v = (torch.randn(1, 1, N, 64) for _ in range(3))
    print(measure_peak_mib(fn, q, k, v)[0])
"""


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/window.json")
    ap.add_argument("--max-n", type=int, default=16384)
    ap.add_argument("--windows", type=int, nargs="+", default=[128, 512])
    args = ap.parse_args(argv)
    H, d = 8, 64
    Ns = [n for n in (1024, 2048, 4096, 8192, 16384) if n <= args.max_n]
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 2048, 16, dtype=torch.float64, generator=g) for _ in range(3))
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=window_mask(2048, window=512))
    gap = (chunked_attention(q, k, v, window=512) - want).abs().max().item()
    print(f"banded (window 512) against torch with the window as a mask, N=2048, float64: {gap:.1e}")
    rows = []
    with torch.no_grad():
        for N in Ns:
            q, k, v = (torch.randn(1, H, N, d, generator=g) for _ in range(3))
            repeats = 3 if N <= 4096 else 2
            full = median_time(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), repeats)
            rows.append(dict(impl="torch SDPA, causal, full", N=N, window=None, forward_s=full))
            for w in args.windows:
                t = median_time(lambda: chunked_attention(q, k, v, window=w), repeats)
                rows.append(dict(impl=f"banded (ours), window {w}", N=N, window=w, forward_s=t))
            print(f"N={N:6d}  full SDPA {1000 * full:8.1f} ms  " + "  ".join(
                f"window {r['window']}: {1000 * r['forward_s']:8.1f} ms ({r['forward_s'] / full:.2f}x)"
                for r in rows[-len(args.windows):]), flush=True)
    memory = []
    for N in Ns:
        for w in (None, 512):
            code = MEMORY_CHILD.format(N=N, window=w)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            memory.append(dict(N=N, window=w, peak_mib=float(out.stdout.split()[-1])))
        print(f"N={N:6d}  peak extra memory: full SDPA {memory[-2]['peak_mib']:7.1f} MiB, "
              f"banded window 512 {memory[-1]['peak_mib']:7.1f} MiB", flush=True)
    t = {(r["window"], r["N"]): r["forward_s"] for r in rows}
    ratio = t[512, Ns[-1]] / t[None, Ns[-1]] if 512 in args.windows else None
    if ratio is not None:
        print(f"goal: banded (window 512) / full SDPA at N={Ns[-1]} = {ratio:.3f} (<= 0.2: {ratio <= 0.2})")
    prov = provenance("bench.window", sys.argv[1:] if argv is None else argv)
    prov["command"] = " ".join(["python bench/window.py", *(sys.argv[1:] if argv is None else argv)])
    result = dict(provenance=prov, H=H, d=d, equal_to_masked=gap, time=rows, memory=memory, goal_ratio=ratio)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
