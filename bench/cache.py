"""Benchmark: the key/value cache of a windowed model while it generates. A small Mistral (random weights, window
128) generates greedily with `transformers`' `generate` (its sliding-window DynamicCache) and with the same weights
copied into the book's `GPT` (`GPT.from_hf`, a Llama-family configuration), once with the `RollingKVCache` that
`generate` gives a windowed layer and once with a plain `KVCache` that keeps every position, in one run:

- bytes the cache holds after the prompt and N new tokens (N = 128 .. 2048), for all three;
- generation time per token (median of 3), for all three;
- the check that our tokens equal theirs: float64, 200 tokens, and in the float32 timing runs.

Goal: the rolling cache's bytes stay constant in N and equal transformers' sliding-window cache; the full cache
grows linearly. Prints a table, writes bench/results/cache.json.

    .venv/bin/python bench/cache.py [--out bench/results/cache.json] [--max-n 2048]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import transformers

from attn_tutorial.book import provenance
from attn_tutorial.measure import median_time
from attn_tutorial.gpt import GPT
from attn_tutorial.multihead import KVCache

WINDOW, PROMPT = 128, 8


def tiny_mistral(dtype) -> transformers.MistralForCausalLM:
    torch.manual_seed(0)
    config = transformers.MistralConfig(
        vocab_size=512, hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=8,
        num_key_value_heads=2, max_position_embeddings=4096, sliding_window=WINDOW, eos_token_id=None,
    )
    return transformers.MistralForCausalLM(config).to(dtype).eval()


def theirs(hf, prompt, n):
    out = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n, do_sample=False,
                      return_dict_in_generate=True)
    cache = out.cache if "cache" in out else out.past_key_values  # renamed in transformers 5
    held = sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)
    return out.sequences, held


def ours(model, prompt, n, full: bool):
    made = []

    def new_caches():
        made[:] = [KVCache() for _ in model.h] if full else GPT.new_caches(model)
        return made

    model.new_caches = new_caches  # the instance's, so that we can read the caches afterwards
    tokens = model.generate(prompt, n)
    del model.new_caches
    return tokens, sum(c.k.nbytes + c.v.nbytes for c in made)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/cache.json")
    ap.add_argument("--max-n", type=int, default=2048)
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    hf64 = tiny_mistral(torch.float64)
    prompt = torch.randint(512, (1, PROMPT), generator=torch.Generator().manual_seed(0))
    want, _ = theirs(hf64, prompt, 200)
    equal64 = bool(torch.equal(ours(GPT.from_hf(hf64), prompt, 200, full=False)[0], want))
    print(f"float64, window {WINDOW}, 200 tokens: our tokens equal transformers': {equal64}")
    hf = tiny_mistral(torch.float32)
    model = GPT.from_hf(hf)
    runs = {
        "transformers generate (sliding-window cache)": lambda n: theirs(hf, prompt, n),
        "ours, RollingKVCache": lambda n: ours(model, prompt, n, full=False),
        "ours, KVCache (every position)": lambda n: ours(model, prompt, n, full=True),
    }
    rows = []
    for n in [n for n in (128, 512, 1024, 2048) if n <= args.max_n]:
        ref = None
        for name, run in runs.items():
            tokens, held = run(n)
            ref = tokens if ref is None else ref
            seconds = median_time(lambda: run(n), 3)
            same = int((tokens[0, PROMPT:] == ref[0, PROMPT:]).sum())
            rows.append(dict(impl=name, N=n, cache_bytes=held, ms_per_token=1000 * seconds / n,
                             tokens_equal_to_transformers=same))
            print(f"N={n:5d}  {name:46} cache {held / 1024:8.1f} KiB  {1000 * seconds / n:6.2f} ms/token  "
                  f"same tokens as transformers: {same}/{n}", flush=True)
    b = {(r["impl"], r["N"]): r["cache_bytes"] for r in rows}
    Ns = sorted({r["N"] for r in rows})
    rolling = [b["ours, RollingKVCache", n] for n in Ns]
    flat = len(set(rolling)) == 1 and rolling[0] == b["transformers generate (sliding-window cache)", Ns[0]]
    print(f"goal: rolling cache constant ({rolling[0]:,} bytes) and equal to transformers': {flat}")
    prov = provenance("bench.cache", sys.argv[1:] if argv is None else argv)
    prov["command"] = " ".join(["python bench/cache.py", *(sys.argv[1:] if argv is None else argv)])
    result = dict(provenance=prov, window=WINDOW, prompt=PROMPT, tokens_equal_float64=equal64, rows=rows,
                  goal_met=flat)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
