"""Benchmark: FlashAttention as a kernel (nbs/07b_flash.ipynb reads bench/results/flash.json).

On the CPU, every run:
- peak extra memory of one forward + backward pass (`fn(q, k, v).sum().backward()`), one head of width 64,
  N = 1024 .. 16384, each in a fresh process, for the book's plain attention (its N x N weights stored),
  attn_tutorial.efficient.chunked_attention (blocks, recomputed in the backward pass) and PyTorch's
  F.scaled_dot_product_attention (on a CPU its own blocked kernel); plain attention is skipped where its N x N
  matrices would not fit (the row says so); with the bytes autograd saves for the backward pass;
- attn_tutorial.flash.flash_attention in Triton's interpreter at N = 256 and 1024: a timing of the interpreter
  (numpy, one program at a time), which says nothing about a GPU.

On a CUDA GPU only (torch.cuda.is_available()): TFLOP/s of flash_attention's Triton kernels against PyTorch's
FlashAttention backend (SDPBackend.FLASH_ATTENTION) and plain attention (matmul, softmax, matmul), N = 1024 ..
16384, d = 64 and 128, float16 and bfloat16, forward and forward + backward, timed by triton.testing.do_bench.
Goal (issue 35): the forward at N = 4096, d = 64, float16 at least 0.6x SDPA's FlashAttention backend.
Without a GPU the JSON says "gpu": "not measured: no CUDA device".

    .venv/bin/python bench/flash.py [--out bench/results/flash.json] [--max-n 16384]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from provenance import provenance

D = 64
MEMORY_IMPLS = ["plain (weights stored)", "blocks (chunked_attention)", "torch SDPA"]
# fwd+bwd peak of plain attention, measured at N = 4096 and 8192: about 3 N x N float32 matrices
PLAIN_MATRICES = 3.1

MEMORY_CHILD = """
import sys, torch, torch.nn.functional as F
from attn_tutorial.attention import scaled_dot_product_attention
from attn_tutorial.efficient import chunked_attention
from attn_tutorial.measure import measure_peak_mib, saved_tensor_bytes
fns = {"plain (weights stored)": lambda q, k, v: scaled_dot_product_attention(q, k, v)[0],
       "blocks (chunked_attention)": chunked_attention, "torch SDPA": F.scaled_dot_product_attention}
fn, N, d = fns[sys.argv[1]], int(sys.argv[2]), int(sys.argv[3])
small = torch.randn(1, 1, 64, d, requires_grad=True)
fn(small, small, small).sum().backward()                 # load the kernels, small: no large block kept
torch.manual_seed(0)
q, k, v = (torch.randn(1, 1, N, d, requires_grad=True) for _ in range(3))
peak = measure_peak_mib(lambda: fn(q, k, v).sum().backward())[0]
saved = saved_tensor_bytes(fn, q, k, v)[0] / 2**20
print(peak, saved)
"""


def mem_available_gib() -> float:
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("inf")


def memory_rows(lengths: list[int], cap_gib: float) -> list[dict]:
    rows = []
    for N in lengths:
        for impl in MEMORY_IMPLS:
            need = PLAIN_MATRICES * N * N * 4 / 2**30
            limit = min(cap_gib, mem_available_gib() / 2)
            if impl.startswith("plain") and need > limit:
                rows.append(dict(impl=impl, N=N, d=D, peak_mib=None, saved_mib=None,
                                 note=f"not run: its N x N matrices need about {need:.1f} GiB, over "
                                      f"{limit:.1f} GiB (--naive-cap-gib or half the available memory)"))
                print(f"N={N:6d} {impl:>28}: skipped ({need:.1f} GiB > {limit:.1f})", flush=True)
                continue
            out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, impl, str(N), str(D)],
                                 capture_output=True, text=True, check=True)
            peak, saved = map(float, out.stdout.split()[-2:])
            rows.append(dict(impl=impl, N=N, d=D, peak_mib=peak, saved_mib=saved))
            print(f"N={N:6d} {impl:>28}: peak {peak:9.1f} MiB, saved for backward {saved:9.2f} MiB", flush=True)
    return rows


def interpreter_rows() -> list[dict]:
    "flash_attention in Triton's interpreter on the CPU: forward, forward + backward, one run each after a warm-up."
    from attn_tutorial.flash import flash_attention
    from attn_tutorial.measure import median_time
    rows = []
    for N in (256, 1024):
        q, k, v = (torch.randn(1, 1, N, D) for _ in range(3))
        with torch.no_grad():
            fwd = median_time(lambda: flash_attention(q, k, v), repeats=1)
        qg, kg, vg = (t.clone().requires_grad_() for t in (q, k, v))
        fb = median_time(lambda: flash_attention(qg, kg, vg).sum().backward(), repeats=1)
        rows.append(dict(impl="flash_attention (Triton interpreter, CPU)", N=N, d=D, BH=1, forward_s=fwd,
                         forward_backward_s=fb, note="numpy, one program at a time: says nothing about a GPU"))
        print(f"interpreter N={N}: forward {fwd:.2f} s, forward+backward {fb:.2f} s", flush=True)
    return rows


def gpu_rows(lengths: list[int], device: str = "cuda", bench=None, shape=(4, 16)) -> dict:
    """TFLOP/s on the CUDA device: ours, SDPA's FlashAttention backend, plain attention; B = 4 sequences of
    H = 16 heads (d = 64) or 8 (d = 128). `device`, `bench` (a do_bench) and `shape` (B, H for d = 64) are for
    a dry run of this code on the CPU."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from attn_tutorial.flash import flash_attention
    if bench is None:
        from triton.testing import do_bench as bench

    def sdpa_flash(q, k, v):
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return F.scaled_dot_product_attention(q, k, v)

    def plain(q, k, v):
        return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v

    impls = {"flash_attention (ours, Triton)": flash_attention, "torch SDPA (flash backend)": sdpa_flash,
             "plain (matmul, softmax, matmul)": plain}
    rows = []
    for d in (64, 128):
        B, H = shape[0], shape[1] if d == 64 else shape[1] // 2
        for dtype in (torch.float16, torch.bfloat16):
            for N in lengths:
                flops = 4 * B * H * N * N * d
                for name, fn in impls.items():
                    row = dict(impl=name, N=N, d=d, B=B, H=H, dtype=str(dtype).split(".")[-1])
                    try:
                        q, k, v = (torch.randn(B, H, N, d, device=device, dtype=dtype, requires_grad=True)
                                   for _ in range(3))
                        do = torch.randn_like(q)
                        if name.startswith("flash"):                  # correctness first, on the device
                            with torch.no_grad():
                                row["max_abs_diff_vs_sdpa"] = (fn(q, k, v) - sdpa_flash(q, k, v)).abs().max().item()
                        with torch.no_grad():
                            ms = bench(lambda: fn(q, k, v), return_mode="median")
                        row["forward_ms"], row["forward_tflops"] = ms, flops / ms / 1e9
                        ms = bench(lambda: fn(q, k, v).backward(do), grad_to_none=[q, k, v], return_mode="median")
                        # the backward pass does 2.5 times the forward's products (5 against 2)
                        row["forward_backward_ms"], row["forward_backward_tflops"] = ms, 3.5 * flops / ms / 1e9
                    except torch.cuda.OutOfMemoryError:
                        row["note"] = "out of memory"
                    except Exception as err:  # a kernel that fails to compile or launch: recorded, not fatal
                        row["note"] = f"failed: {type(err).__name__}: {str(err)[:300]}"
                    finally:
                        q = k = v = do = None
                        torch.cuda.empty_cache()
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    t = {(r["impl"], r["N"], r["d"], r["dtype"]): r.get("forward_tflops") for r in rows}
    ours, ref = t.get(("flash_attention (ours, Triton)", 4096, 64, "float16")), \
        t.get(("torch SDPA (flash backend)", 4096, 64, "float16"))
    ratio = ours / ref if ours and ref else None
    print(f"goal: forward N=4096 d=64 float16, ours / SDPA flash = {ratio} (>= 0.6)")
    name = torch.cuda.get_device_name() if device == "cuda" else device
    return dict(device=name, triton_version=__import__("triton").__version__,
                flops="forward 4 B H N^2 d, forward + backward 3.5 times that; not causal", rows=rows,
                goal_forward_ratio_4096_fp16_d64=ratio)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/flash.json")
    ap.add_argument("--max-n", type=int, default=16384)
    ap.add_argument("--naive-cap-gib", type=float, default=6.0,
                    help="skip plain attention where its N x N matrices would need more than this")
    args = ap.parse_args()
    lengths = [n for n in (1024, 2048, 4096, 8192, 16384) if n <= args.max_n]
    t0 = time.time()
    memory = memory_rows(lengths, args.naive_cap_gib)
    interp = interpreter_rows()
    gpu = gpu_rows(lengths) if torch.cuda.is_available() else "not measured: no CUDA device"
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    probe = torch.randn(1, 1, 64, D)
    sdpa_backend = str(torch._fused_sdp_choice(probe, probe, probe))
    result = dict(
        **provenance("bench/flash.py", triton=triton_version),
        cpu_sdpa_backend=f"torch._fused_sdp_choice on the CPU: {sdpa_backend} (1 = its flash kernel, 0 = math)",
        memory_note="peak extra resident memory of fn(q, k, v).sum().backward(), B = H = 1, d = 64, float32, "
                    "each in a fresh process (attn_tutorial.measure.measure_peak_mib); saved_mib: what autograd "
                    "keeps for the backward pass (saved_tensor_bytes)",
        memory=memory, interpreter=interp, gpu=gpu, seconds=round(time.time() - t0, 1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
