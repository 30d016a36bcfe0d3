"""attn_tutorial.book: `record` keeps one file per chapter, and every chapter of _toc.yml records its key results
under its own name, which the conclusion reads."""
import json
import re

import nbformat
import numpy as np
import pytest
import torch

from attn_tutorial import book

from .toc import chapters


def test_record_writes_a_fresh_file_per_process_then_merges(tmp_path, monkeypatch):
    monkeypatch.setattr(book, "_recorded", set())
    (tmp_path / "ch.json").write_text(json.dumps({"stale": {"value": 1.0, "format": ".1f"}}))
    assert book.record("ch", "a", np.float32(0.5), ".1%", folder=tmp_path) == 0.5
    book.record("ch", "b", torch.tensor(3.25), folder=tmp_path)
    book.record("ch", "a", 0.75, ".1%", folder=tmp_path)                  # the same name again: replaced
    saved = json.loads((tmp_path / "ch.json").read_text())
    assert saved == {"a": {"value": 0.75, "format": ".1%"}, "b": {"value": 3.25, "format": ".3f"}}
    assert list(saved) == ["a", "b"]                                       # the order of first recording
    book.record("other", "tiny", 2.2204460492503131e-16, ".1e", folder=tmp_path)
    assert json.loads((tmp_path / "other.json").read_text())["tiny"]["value"] == 2.22045e-16
    with pytest.raises(ValueError):
        book.record("ch", "c", 1.0, "not a spec", folder=tmp_path)


def test_every_chapter_records_its_results_under_its_own_name():
    "The conclusion reads <RESULTS>/<chapter>.json (a build output): each chapter must write its own file."
    found = chapters(conclusion=False)
    assert found and all(path.exists() for path in found), found
    for path in found:
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        names = set(re.findall(r'record\(\s*"([^"]+)"', code))
        assert names == {path.stem}, (path.name, names)
