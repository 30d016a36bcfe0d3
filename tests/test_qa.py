"""attn_tutorial.qa: retrieval metrics by hand, the FAQ loader (deterministic, clear error when missing), BM25 and
dense ranking on tiny hand-made cases."""
from __future__ import annotations

import pytest
import torch

from attn_tutorial.qa import bm25_scores, dense_scores, load_python_faq, topk_accuracy, words


def test_topk_accuracy_by_hand():
    s = torch.tensor([[0.9, 0.1, 0.0, 0.2], [0.5, 0.4, 0.1, 0.0], [0.9, 0.8, 0.7, 0.6]])
    assert topk_accuracy(s, torch.tensor([0, 1, 3]), ks=(1, 2, 3, 4)) == {1: 1 / 3, 2: 2 / 3, 3: 2 / 3, 4: 1.0}
    ties = torch.tensor([[0.5, 0.5, 0.1]])                            # a tie with the gold doc counts as found
    assert topk_accuracy(ties, torch.tensor([1]), ks=(1,)) == {1: 1.0}
    with pytest.raises(ValueError, match=r"scores must be \(Q, D\) and gold \(Q,\)"):
        topk_accuracy(s, torch.tensor([0, 1]))


def test_faq_loader_is_deterministic_and_complete():
    a, b = load_python_faq(), load_python_faq()
    assert a == b and len(a) > 150
    assert all(set(r) == {"file", "section", "question", "answer"} and r["answer"] for r in a)
    assert len({r["question"] for r in a}) == len(a)                  # no question twice
    assert all(r["question"].endswith("?") and r["question"] not in r["answer"][:len(r["question"])] for r in a)


def test_missing_faq_says_how_to_regenerate(tmp_path):
    with pytest.raises(FileNotFoundError, match="python data/python_docs/extract.py"):
        load_python_faq(tmp_path / "faq.jsonl")


def test_bm25_and_dense_rank_the_obvious_answer_first():
    docs = ["Use int() to turn a string of digits into an integer.", "Cats sleep most of the day.",
            "The list method sort() sorts a list in place."]
    queries = ["How do I convert a string into an integer?", "How can I sort a list?"]
    assert words("Hello, World_2!") == ["hello", "world_2"]
    lexical = bm25_scores(queries, docs)
    assert lexical.shape == (2, 3) and lexical.argmax(1).tolist() == [0, 2]
    from attn_tutorial.pretrained import load_minilm
    dense = dense_scores(load_minilm(), queries, docs)
    assert dense.argmax(1).tolist() == [0, 2] and (dense <= 1 + 1e-6).all()
