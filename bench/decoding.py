"""Benchmark: greedy decoding of 256 tokens with the key/value cache against recomputing every prefix
(attn_tutorial.search.greedy on a Transformer, use_cache=True/False), in one run. Goal: cached >= 5x faster.
Both must produce the same tokens. Prints a table and writes JSON.

    .venv/bin/python bench/decoding.py [--out bench/results/decoding.json] [--steps 256]
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from attn_tutorial.measure import median_time
from attn_tutorial.search import greedy
from attn_tutorial.transformer import Transformer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/decoding.json")
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = Transformer(1000, 1000, d_model=args.d_model, nhead=8, num_encoder_layers=args.layers,
                        num_decoder_layers=args.layers, dim_feedforward=4 * args.d_model, dropout=0.0).eval()
    src = torch.randint(3, 1000, (args.batch, 64))
    src_len = torch.full((args.batch,), 64)
    rows, outputs = [], {}
    for use_cache in (True, False):
        def run():
            # eos=None: no sequence stops early, every run decodes all the steps
            outputs[use_cache] = greedy(model, src, src_len, args.steps, use_cache=use_cache, eos=None).tokens
        sec = median_time(run, args.repeats, warmup=0)
        rows.append(dict(use_cache=use_cache, seconds=sec, tokens_per_s=args.batch * args.steps / sec))
    same = torch.equal(outputs[True], outputs[False])
    speedup = rows[1]["seconds"] / rows[0]["seconds"]
    print(f"greedy decoding of {args.steps} tokens, batch {args.batch}, d_model {args.d_model}, "
          f"{args.layers} decoder layers, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'':>16} {'seconds':>8} {'tokens/s':>9}")
    for r in rows:
        print(f"{'cached' if r['use_cache'] else 'recomputed':>16} {r['seconds']:8.2f} {r['tokens_per_s']:9.0f}")
    print(f"speed-up {speedup:.1f}x (goal >= 5x: {speedup >= 5}); identical tokens: {same}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(benchmark="decoding", steps=args.steps, batch=args.batch, d_model=args.d_model,
                                   layers=args.layers, torch=torch.__version__, threads=torch.get_num_threads(),
                                   machine=platform.machine(), rows=rows, speedup=speedup, goal_met=speedup >= 5,
                                   identical_tokens=same), indent=2))
    print(f"wrote {out}")
    if not same:
        raise SystemExit("cached and recomputed decoding produced different tokens")


if __name__ == "__main__":
    main()
