"""Benchmark: attn_tutorial.gpt.GPT against Hugging Face `transformers`' GPT2LMHeadModel at the same
configuration and the same weights (`GPT.from_hf`), in one run: training tokens/s (forward, backward, Adam step)
and cached greedy generation tokens/s of one sequence (`generate` against `model.generate`), both goals >= 1.0x
the peer; and our key/value cache's speed-up at 512 generated tokens against recomputing every prefix, for one
sequence and for a batch of 4 (goal >= 10x; one sequence at a time is bound by reading every weight once per
token, which the cache cannot save). Greedy tokens must agree with the peer's and between cached and recomputed.
Prints a table and writes JSON.

    .venv/bin/python bench/gpt.py [--out bench/results/gpt.json] [--new-tokens 512]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from attn_tutorial.book import provenance
from attn_tutorial.gpt import GPT
from attn_tutorial.measure import interleaved_times


def peer(args):
    "A random GPT2LMHeadModel of the benchmark's size (no download) and our copy of it."
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=args.vocab, n_positions=args.positions, n_embd=args.n_embd, n_layer=args.layers,
        n_head=args.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, activation_function="gelu_new",
        bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(config)
    return hf, GPT.from_hf(hf)


def train_step(model, opt, x, y, logits_of):
    loss = F.cross_entropy(logits_of(model, x).flatten(0, 1), y.flatten())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/gpt.json")
    ap.add_argument("--vocab", type=int, default=65)            # the chapter's characters
    ap.add_argument("--positions", type=int, default=640)
    ap.add_argument("--n-embd", type=int, default=192)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=512)
    ap.add_argument("--cache-batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    hf, ours = peer(args)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(args.vocab, (args.batch, args.context + 1), generator=g)
    x, y = x[:, :-1], x[:, 1:]
    logits = dict(ours=lambda m, t: m(t), transformers=lambda m, t: m(t).logits)
    models = dict(ours=ours.train(), transformers=hf.train())
    opts = {k: torch.optim.Adam(m.parameters(), lr=1e-4) for k, m in models.items()}
    train = interleaved_times(
        {k: (lambda k=k: train_step(models[k], opts[k], x, y, logits[k])) for k in models}, args.repeats
    )
    # generation from the same (untrained, copied) weights: both start from the peer's
    hf, ours = peer(args)
    hf.eval(), ours.eval()
    prompt = torch.randint(args.vocab, (1, 1), generator=g)
    n = args.new_tokens
    out = {}

    def gen(name, prompt=prompt):
        with torch.no_grad():
            if name.startswith("ours"):
                out[name] = ours.generate(prompt, n, use_cache="recomputed" not in name)
            else:
                out[name] = hf.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                        use_cache=True, attention_mask=torch.ones_like(prompt))
    generate = interleaved_times({k: (lambda k=k: gen(k)) for k in ("ours", "transformers")}, args.repeats)
    # the cache's speed-up, for one sequence and for a batch: recomputing costs one run each (it is slow)
    batch = torch.randint(args.vocab, (args.cache_batch, 1), generator=g)
    recompute = {
        1: interleaved_times({"r": lambda: gen("ours, recomputed")}, 1, warmup=0)["r"],
        args.cache_batch: interleaved_times({"r": lambda: gen("ours, recomputed b", batch)}, 1, warmup=0)["r"],
    }
    cached = {1: generate["ours"], args.cache_batch: interleaved_times(
        {"c": lambda: gen("ours b", batch)}, args.repeats)["c"]}
    tokens = args.batch * args.context
    rows = [dict(task="training step", model=k, seconds=s, tokens_per_s=tokens / s) for k, s in train.items()]
    rows += [dict(task=f"generate {n} x 1 (cached)", model=k, seconds=s, tokens_per_s=n / s)
             for k, s in generate.items() if k != "ours"]
    for b in cached:
        rows += [dict(task=f"generate {n} x {b} (cached)", model="ours", seconds=cached[b],
                      tokens_per_s=b * n / cached[b]),
                 dict(task=f"generate {n} x {b} (recomputed)", model="ours", seconds=recompute[b],
                      tokens_per_s=b * n / recompute[b])]
    ratio_train = train["transformers"] / train["ours"]
    ratio_generate = generate["transformers"] / generate["ours"]
    speedups = {b: recompute[b] / cached[b] for b in cached}
    speedup = speedups[args.cache_batch]
    same_as_peer = torch.equal(out["ours"], out["transformers"])
    same_cached = torch.equal(out["ours"], out["ours, recomputed"]) and torch.equal(
        out["ours b"], out["ours, recomputed b"])
    print(f"GPT n_embd {args.n_embd}, {args.layers} layers, {args.heads} heads, vocab {args.vocab}; training batch "
          f"{args.batch} x {args.context}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'':<32} {'model':<14} {'seconds':>8} {'tokens/s':>9}")
    for r in rows:
        print(f"{r['task']:<32} {r['model']:<14} {r['seconds']:8.3f} {r['tokens_per_s']:9.0f}")
    goals = dict(training=ratio_train >= 1.0, generation=ratio_generate >= 1.0, cache_speedup=speedup >= 10)
    print(f"ours / transformers: training {ratio_train:.2f}x, cached generation {ratio_generate:.2f}x (goals >= 1.0); "
          f"cache speed-up at {n} tokens: {speedups[1]:.1f}x for one sequence, {speedup:.1f}x for "
          f"{args.cache_batch} (goal >= 10x)")
    print(f"greedy tokens equal to transformers': {same_as_peer}; cached equal to recomputed: {same_cached}")
    import transformers

    prov = provenance("bench.gpt", sys.argv[1:])
    prov["command"] = " ".join(["python bench/gpt.py", *sys.argv[1:]])
    result = dict(benchmark="gpt", args=vars(args), provenance=prov,
                  transformers=transformers.__version__, rows=rows, training_ratio=ratio_train,
                  generation_ratio=ratio_generate, cache_speedup=speedup, cache_speedup_by_batch=speedups, goals=goals,
                  identical_to_transformers=same_as_peer, cached_equals_recomputed=same_cached)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    if not same_cached:
        raise SystemExit("cached and recomputed generation produced different tokens")


if __name__ == "__main__":
    main()
