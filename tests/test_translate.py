"""attn_tutorial.translate: the shipped pairs, the tokenizer, the metrics, decoding; and its long-run script,
attn_tutorial.train_translation (single process, and two DDP processes that must end with bit-identical weights)."""
import json
import os
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from attn_tutorial.data import EOS, PAD, SPECIALS
from attn_tutorial.search import greedy
from attn_tutorial.train import fit, seed_everything, seq2seq_loss
from attn_tutorial.train_translation import _average, _digest, load_run, main
from attn_tutorial.translate import (closest_text, corpus_scores, decode_ids, encode_pairs, load_pairs, make_model,
                                     random_picks, train_tokenizer, translate)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def small():
    "200 training pairs, a tokenizer trained on them, and a Transformer and an RNN trained for a few steps."
    pairs = load_pairs("train")[:200]
    tok = train_tokenizer([s for p in pairs for s in p], vocab_size=500)
    data = encode_pairs(pairs, tok)
    models = {}
    for kind in ("transformer", "rnn"):
        seed_everything(0)
        models[kind] = make_model(kind, tok.get_vocab_size(), d_model=32, layers=1, heads=2)
        fit(models[kind], partial(seq2seq_loss, smoothing=0.1), data.batches(32, shuffle=True), 15, progress=False,
            device="cpu")
    return pairs, tok, models


@pytest.mark.parametrize("corpus, n_train", [("ding", 10_000), ("libreoffice", 20_000)])
def test_splits_are_deterministic_disjoint_and_sized(corpus, n_train):
    splits = {s: load_pairs(s, corpus=corpus) for s in ("train", "valid", "test")}
    assert load_pairs("test", corpus=corpus) == splits["test"]
    assert len(splits["test"]) >= 1000 and len(splits["valid"]) >= 400 and len(splits["train"]) > n_train
    for side in (0, 1):
        train = {p[side] for p in splits["train"]}
        held = {p[side] for p in splits["valid"] + splits["test"]}
        assert not train & held                                  # no held-out sentence is seen in training
    assert not {p[0] for p in splits["valid"]} & {p[0] for p in splits["test"]}
    assert all(d and e and "\t" not in d + e for d, e in splits["train"])


def test_bad_split_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        load_pairs("dev")
    with pytest.raises(FileNotFoundError, match=r"data/ding/extract\.py"):
        load_pairs("test", tmp_path / "nothing.tsv")
    with pytest.raises(FileNotFoundError, match=r"data/libreoffice/extract\.py"):
        load_pairs("test", tmp_path / "nothing.tsv", corpus="libreoffice")
    with pytest.raises(ValueError, match="corpus must be one of"):
        load_pairs("test", corpus="europarl")


def test_libreoffice_pairs_are_translations_the_extraction_kept():
    import importlib.util

    spec = importlib.util.spec_from_file_location("extract", ROOT / "data/libreoffice/extract.py")
    extract = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extract)
    pairs = [p for s in ("train", "valid", "test") for p in load_pairs(s, corpus="libreoffice")]
    assert len(set(pairs)) == len(pairs)                         # each pair once
    assert all(extract.usable(d, e) for d, e in pairs)           # the rules the docstring states
    assert all(d != e for d, e in pairs)                         # nothing left untranslated
    # the parser keeps nested text in reading order and drops code paragraphs
    page = extract.Paragraphs()
    page.feed('<p id="par_id1">Deletes the <span class="emph">Trace</span> arrows.</p>'
              '<p id="par_id2" class="code">Option Explicit</p>'
              '<p id="par_id1">Press <span class="MAC">Command</span><span>Ctrl</span>+C.</p>')
    assert page.found == {("par_id1", 0): "Deletes the Trace arrows.", ("par_id2", 0): "Option Explicit",
                          ("par_id1", 1): "Press Ctrl+C."}
    assert page.skipped == {("par_id2", 0)}


def test_tokenizer_deterministic_specials_and_roundtrip(small):
    pairs, tok, _ = small
    again = train_tokenizer([s for p in pairs for s in p], vocab_size=500)
    assert tok.get_vocab() == again.get_vocab()
    assert [tok.token_to_id(s) for s in SPECIALS] == [0, 1, 2] and tok.token_to_id("<unk>") == 3
    for d, e in pairs[:50]:
        assert decode_ids(tok, tok.encode(d).ids) == d and decode_ids(tok, tok.encode(e).ids) == e
    data = encode_pairs(pairs[:20], tok)
    assert all(t[-1].item() == EOS and EOS not in s.tolist() for s, t in zip(data.src, data.tgt))
    ids = tok.encode("Guten Tag.").ids
    assert decode_ids(tok, ids + [EOS] + ids) == "Guten Tag."           # stops at <eos>
    assert decode_ids(tok, torch.tensor(ids + [PAD, PAD])) == "Guten Tag."


def test_bleu_and_chrf_against_hand_values():
    # unigrams 5/5, bigrams 3/4, trigrams 2/3, 4-grams 1/2, hypothesis one word short of 6
    by_hand = 100 * np.exp(1 - 6 / 5) * np.exp(np.mean(np.log([1, 3 / 4, 2 / 3, 1 / 2])))
    assert corpus_scores(["the cat sat on mat"], ["the cat sat on the mat"])["bleu"] == pytest.approx(by_hand, abs=1e-9)
    # corpus BLEU pools the counts: two sentences, one perfect, one with no 4-gram match at all
    perfect = corpus_scores(["a b c d", "w x y z"], ["a b c d", "w x y z"])
    assert perfect["bleu"] == pytest.approx(100) and perfect["chrf"] == pytest.approx(100)
    assert corpus_scores(["q r s t"], ["a b c d"]) == {"bleu": 0.0, "chrf": 0.0}
    with pytest.raises(ValueError, match="one hypothesis per reference"):
        corpus_scores(["a"], ["a", "b"])


def test_decoding_a_tiny_model_gives_valid_tokens(small):
    pairs, tok, models = small
    V = tok.get_vocab_size()
    for kind, model in models.items():
        model.eval()
        src = encode_pairs(pairs[:8], tok)
        from attn_tutorial.data import pad
        s, s_len = pad(src.src)
        tokens = greedy(model, s, s_len, 12).tokens
        assert tokens.shape == (8, 12) and ((tokens >= 0) & (tokens < V)).all()
        for row in tokens.tolist():                              # after <eos> only padding
            if EOS in row:
                assert all(t == PAD for t in row[row.index(EOS) + 1:])
        out = translate(model, tok, [d for d, _ in pairs[:8]])
        assert len(out) == 8 and all(isinstance(o, str) for o in out)
    for model in models.values():                                    # beam search decodes either model
        beam = translate(model, tok, [d for d, _ in pairs[:4]], beam_size=3)
        assert len(beam) == 4 and all(isinstance(o, str) for o in beam)


TINY = ["--limit", "300", "--eval-limit", "12", "--steps", "8", "--eval-every", "4", "--d-model", "32",
        "--layers", "1", "--heads", "2", "--vocab-size", "400", "--beam", "2", "--no-progress"]


def test_the_script_is_a_module_of_its_own():
    "The chapter's module holds the ideas; the command line, training and saving are the script's."
    import ast
    from attn_tutorial.train_translation import _parse

    tree = ast.parse((ROOT / "attn_tutorial" / "translate.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"argparse", "sys", "book", "train"}         # "from .book import ..." has module "book"
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert "main" not in defined and defined[-1] == "closest_text"      # no entry point, nothing after one
    done = subprocess.run([sys.executable, "-m", "attn_tutorial.train_translation", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("usage: python -m attn_tutorial.train_translation")
    flags = {"--corpus", "--model", "--minutes", "--steps", "--average", "--evaluate-only", "--length-penalties",
             "--limit", "--eval-limit", "--out", "--results", "--no-progress"}
    assert flags <= set(done.stdout.replace("[", " ").replace("]", " ").split())
    assert _parse(TINY).steps == 8 and _parse(["--evaluate-only"]).evaluate_only


def test_script_trains_saves_and_reloads(tmp_path):
    from safetensors.torch import load_model
    from tokenizers import Tokenizer

    r = main(TINY + ["--average", "2", "--out", str(tmp_path)])
    assert r["steps"] == 8 and r["world_size"] == 1 and [c["step"] for c in r["curve"]] == [4, 8]
    assert r["average"]["checkpoints"] == 2 and r["average"]["kept"] in ("average", "best")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["test"]["beam1"] == pytest.approx(r["test"]["beam1"]) and set(saved["test"]) == {"beam1", "beam2"}
    tok = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    model = make_model("transformer", tok.get_vocab_size(), d_model=32, layers=1, heads=2)
    load_model(model, str(tmp_path / "model.safetensors"))        # strict: every key present, shapes equal
    src = [d for d, _ in load_pairs("test")[:12]]
    assert translate(model, tok, src) == r["translations"]["beam1"]


def test_evaluate_only_reloads_the_saved_run_and_reproduces_its_test_scores(tmp_path):
    r = main(TINY + ["--out", str(tmp_path)])
    model, tok, config = load_run(tmp_path)
    assert not model.training and config["d_model"] == 32 and config["corpus"] == "ding"
    e = main(["--evaluate-only", "--out", str(tmp_path), "--eval-limit", "12", "--beam", "2",
              "--length-penalties", "0", "1.0", "--results", str(tmp_path / "new" / "e.json")])
    # the results' folder is made if missing, as a training run makes it
    assert json.loads((tmp_path / "new" / "e.json").read_text())["test"] == e["test"]
    assert e["digest"] == _digest(model) and set(e["test"]) == {"0.0", "1.0"}
    # the same weights and decoding as the training run's beam search: the same scores, exactly
    assert e["test"]["0.0"]["bleu"] == r["test"]["beam2"]["bleu"]
    assert e["test"]["0.0"]["chrf"] == r["test"]["beam2"]["chrf"]
    assert all(v["length_ratio"] > 0 for v in e["test"].values())
    # both map the same six test texts, drawn at random with the run's seed
    src = [d for d, _ in load_pairs("test")[:12]]
    picks = random_picks(12, 6, 0)
    assert len(set(picks)) == 6 and picks != list(range(6))
    for run in (r, e):
        assert [x["index"] for x in run["examples"]] == picks
        assert [x["source"] for x in run["examples"]] == [src[j] for j in picks]
    assert e["examples"] == r["examples"]


def test_a_shorter_run_is_the_start_of_a_longer_one(tmp_path):
    "The schedule depends on the step alone: a 4-step run is the first 4 steps of an 8-step run."
    long = main(TINY + ["--out", str(tmp_path / "long")])
    short = main(TINY + ["--steps", "4", "--out", str(tmp_path / "short")])
    same = lambda c: (c["step"], c["train_loss"], c["valid_bleu"])
    assert short["steps"] == 4 and [same(c) for c in short["curve"]] == [same(long["curve"][0])]
    assert long["curve"][1]["train_loss"] != long["curve"][0]["train_loss"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ddp_processes_end_with_identical_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "attn_tutorial.train_translation", *TINY, "--out", str(tmp_path)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads((tmp_path / "results.json").read_text())
    assert r["world_size"] == 2 and r["steps"] == 8
    assert len(r["rank_digests"]) == 2 and r["rank_digests"][0] == r["rank_digests"][1]
    # and training changed them: the same seed and tokenizer give the initial weights
    seed_everything(0)
    pairs = load_pairs("train")[:300]
    tok = train_tokenizer([s for p in pairs for s in p], vocab_size=400)
    initial = make_model("transformer", tok.get_vocab_size(), d_model=32, layers=1, heads=2)
    assert _digest(initial) != r["final_digest"]


def test_checkpoint_averaging_takes_the_mean_only_when_it_scores_higher(small):
    from argparse import Namespace

    pairs, tok, models = small
    model = models["transformer"]
    first = {k: t.clone() for k, t in model.state_dict().items()}
    second = {k: t + 1.0 if t.is_floating_point() else t for k, t in first.items()}
    a = Namespace(average=2)
    kept = _average(a, model, tok, pairs[:5], [first, second], best=101.0)   # no BLEU beats 101
    assert kept["kept"] == "best" and all(torch.equal(t, first[k]) for k, t in model.state_dict().items())
    kept = _average(a, model, tok, pairs[:5], [first, second], best=-1.0)    # any BLEU beats -1
    assert kept["kept"] == "average" and kept["checkpoints"] == 2
    for k, t in model.state_dict().items():
        torch.testing.assert_close(t, (first[k] + second[k]) / 2 if t.is_floating_point() else first[k],
                                   rtol=0, atol=1e-6)
    assert _average(a, model, tok, pairs[:5], [first], best=0.0) is None
    model.load_state_dict(first)


def test_closest_text_is_the_jaccard_nearest_of_the_sets():
    rng = np.random.default_rng(0)
    # a small alphabet, so that texts share many 5-grams and ties happen
    texts = ["".join(rng.choice(list("abc "), rng.integers(1, 12))) for _ in range(300)]
    queries = texts[:40] + ["".join(rng.choice(list("abcd"), rng.integers(1, 12))) for _ in range(40)] + ["zzzzzz"]

    def grams(s):
        return {s[i:i + 5] for i in range(max(len(s) - 4, 1))}

    sim, index = closest_text(queries, texts[40:])
    for q, s, j in zip(queries, sim, index):
        by_sets = [len(grams(q) & grams(t)) / len(grams(q) | grams(t)) for t in texts[40:]]
        assert s == max(by_sets) and j == by_sets.index(max(by_sets))   # exact, and the first of ties
    assert sim[-1] == 0 and index[-1] == 0                              # shares nothing
    sim, index = closest_text(texts[:40], texts)                        # each text finds itself
    assert (sim == 1).all() and all(texts[j] == t for j, t in zip(index, texts[:40]))
    assert closest_text(["abcdefg"], ["abcdefgh", "xabcdefg"], n=3)[1].tolist() == [0]   # a tie: the first
    with pytest.raises(ValueError, match="n must be >= 1"):
        closest_text(["a"], ["a"], n=0)
