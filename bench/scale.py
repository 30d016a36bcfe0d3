"""Benchmark: exact attention at scale. The book's plain attention (attn_tutorial.attention), PyTorch's fused
F.scaled_dot_product_attention and attn_tutorial.efficient.chunked_attention, in one run:

- forward and forward+backward time for N = 256 .. 16384 (1 sequence, 8 heads of width 64; the plain version only
  while its weights fit under --naive-cap-gib);
- peak extra memory of one forward call, one head of width 64, each measured in a fresh process;
- the rate of a 2048 x 2048 matrix product, the machine's practical ceiling.

Goals: chunked forward <= 2.0x SDPA at N=4096; chunked peak extra memory at N=16384 <= 64 MiB.
Prints tables, writes bench/results/scale.json (which nbs/07_scale.ipynb reads).

    .venv/bin/python bench/scale.py [--out bench/results/scale.json] [--max-n 16384]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from attn_tutorial.attention import scaled_dot_product_attention
from attn_tutorial.efficient import chunked_attention
from attn_tutorial.measure import median_time
from provenance import provenance

IMPLS = {"book (naive)": lambda q, k, v: scaled_dot_product_attention(q, k, v)[0],
         "torch SDPA": F.scaled_dot_product_attention,
         "chunked (ours)": chunked_attention}

MEMORY_CHILD = """
import sys, torch
from attn_tutorial.measure import measure_peak_mib
sys.path.insert(0, {bench!r})
from scale import IMPLS
fn, N = IMPLS[{impl!r}], {N}
torch.manual_seed(0)
small = [torch.randn(1, 1, 64, 64) for _ in range(3)]
with torch.no_grad():
    fn(*small)                                    # load kernels, small: leaves no large block in the allocator
    q, k, v = (torch.randn(1, 1, N, 64) for _ in range(3))
    print(measure_peak_mib(fn, q, k, v)[0])
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/scale.json")
    ap.add_argument("--max-n", type=int, default=16384)
    ap.add_argument("--naive-cap-gib", type=float, default=4.0, help="skip the plain version above this many GiB of weights")
    args = ap.parse_args()
    H, d = 8, 64
    Ns = [n for n in (256, 512, 1024, 2048, 4096, 8192, 16384) if n <= args.max_n]
    torch.manual_seed(0)
    rows = []
    for N in Ns:
        q, k, v = (torch.randn(1, H, N, d) for _ in range(3))
        repeats = 3 if N <= 4096 else 1
        for name, fn in IMPLS.items():
            if name == "book (naive)" and H * N * N * 4 / 2**30 > args.naive_cap_gib:
                continue
            with torch.no_grad():
                fwd = median_time(lambda: fn(q, k, v), repeats)
            qg, kg, vg = (t.clone().requires_grad_() for t in (q, k, v))
            fb = median_time(lambda: fn(qg, kg, vg).sum().backward(), repeats)
            rows.append(dict(impl=name, N=N, forward_s=fwd, forward_backward_s=fb))
            print(f"N={N:6d} {name:>15}: forward {1000 * fwd:9.1f} ms, forward+backward {1000 * fb:9.1f} ms", flush=True)
    memory = []
    bench_dir = str(Path(__file__).resolve().parent)
    for N in Ns:
        for name in IMPLS:
            code = MEMORY_CHILD.format(bench=bench_dir, impl=name, N=N)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            memory.append(dict(impl=name, N=N, peak_mib=float(out.stdout.split()[-1])))
            print(f"N={N:6d} {name:>15}: peak extra memory {memory[-1]['peak_mib']:9.1f} MiB", flush=True)
    a = torch.randn(2048, 2048)
    matmul = 2 * 2048**3 / median_time(lambda: a @ a, 10) / 1e9
    t = {(r["impl"], r["N"]): r["forward_s"] for r in rows}
    m = {(r["impl"], r["N"]): r["peak_mib"] for r in memory}
    ratio = t["chunked (ours)", 4096] / t["torch SDPA", 4096] if 4096 in Ns else None
    mem_top = m["chunked (ours)", Ns[-1]]
    print(f"matrix product 2048^2: {matmul:.0f} GFLOP/s")
    if ratio is not None:
        print(f"goal: chunked forward / SDPA at N=4096 = {ratio:.2f} (<= 2.0: {ratio <= 2.0})")
    print(f"goal: chunked peak extra memory at N={Ns[-1]} = {mem_top:.1f} MiB (<= 64: {mem_top <= 64})")
    result = dict(**provenance("bench/scale.py"), H=H, d=d, time=rows, memory=memory,
                  matmul_gflops=matmul, goal_ratio_4096=ratio, goal_memory_mib=mem_top)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
