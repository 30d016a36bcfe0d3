"""attn_tutorial.summarize: sentence splitting, attention centrality (a stationary distribution), ROUGE against
hand-computed values, and the library-page loader."""
from __future__ import annotations

import pytest
import torch

from attn_tutorial.summarize import attention_centrality, load_python_library, rouge, split_sentences


def test_split_sentences():
    assert split_sentences("One. Two! Three? 4 is a number. (Five.) 'Six.'") == \
        ["One.", "Two!", "Three?", "4 is a number.", "(Five.) 'Six.'"]     # only after . ! ? is a sentence split
    assert split_sentences("See e.g. the docs. Version 3.11 is out.") == ["See e.g. the docs.", "Version 3.11 is out."]
    assert split_sentences("  ") == []


def test_attention_centrality_is_the_stationary_distribution():
    g = torch.Generator().manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(7, 5, dtype=torch.float64, generator=g), dim=-1)
    p = attention_centrality(emb, temperature=0.5)
    attn = torch.softmax((emb @ emb.T / 0.5).masked_fill(torch.eye(7, dtype=torch.bool), float("-inf")), -1)
    torch.testing.assert_close(p @ attn, p, rtol=0, atol=1e-10)          # stationary
    assert abs(p.sum().item() - 1) < 1e-12 and (p > 0).all()
    assert attention_centrality(emb[:1]).tolist() == [1.0]
    with pytest.raises(ValueError, match=r"emb must be \(n, d\)"):
        attention_centrality(torch.zeros(0, 5))


def test_rouge_by_hand():
    r = rouge("the cat sat on the mat", "the cat lay on the mat")
    assert abs(r["rouge1"] - 5 / 6) < 1e-12 and abs(r["rouge2"] - 3 / 5) < 1e-12 and abs(r["rougeL"] - 5 / 6) < 1e-12
    assert rouge("completely different words", "the cat lay on the mat") == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


def test_library_pages_load_deterministically(tmp_path):
    a, b = load_python_library(), load_python_library()
    assert a == b and len(a) > 200 and all(p["synopsis"] and p["text"] for p in a)
    assert len({p["module"] for p in a}) == len(a)
    with pytest.raises(FileNotFoundError, match="python data/python_docs/extract.py"):
        load_python_library(tmp_path / "library.jsonl")
