"""The library's floors, read from the code: the toolbox (the notebooks of the toc's "Toolbox" part) imports only
`attention` and itself; a chapter's module imports only the toolbox, the mechanism's core (the attention function,
`attention`, and the score functions, `scores`, which the motivation chapter's RNN already scores with) and
earlier chapters' modules; no chapter's module imports `argparse` (command-line programs live in the modules of
the long-run appendices)."""
from __future__ import annotations

import ast
import sys

import nbformat
import pytest

from tests.toc import ROOT, toc_parts

sys.path.insert(0, str(ROOT / "_ext"))
from nbdev_book import default_exp  # noqa: E402  (the book's own Sphinx extension)

LIB = ROOT / "attn_tutorial"


def _module_of(doc: str) -> str | None:
    path = ROOT / f"{doc}.ipynb"
    if not path.exists():                                              # a markdown page
        return None
    return default_exp(nbformat.read(path, as_version=4))


def _floors() -> dict[str, list[str]]:
    "The toc's parts -> the modules their notebooks export, in reading order."
    return {p["caption"]: [m for m in map(_module_of, p["files"]) if m] for p in toc_parts() if p["caption"]}


def _imports(module: str) -> set[str]:
    "The top-level names this module imports: `attn_tutorial.x` -> 'x', other packages by their first name."
    tree = ast.parse((LIB / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:                                             # from .x import y
                found.add(f"attn_tutorial.{node.module}" if node.module else "attn_tutorial")
            else:
                found.add(node.module)
    return found


def _ours(names: set[str]) -> set[str]:
    return {n.split(".")[1] for n in names if n.startswith("attn_tutorial.") and n.count(".") == 1}


FLOORS = _floors()
CORE = {"attention", "scores"}
TOOLBOX = set(FLOORS["Toolbox"])
CHAPTERS = [m for caption, mods in FLOORS.items() if caption not in ("Toolbox", "Long runs") for m in mods]


def test_the_floors_are_found():
    assert {"viz", "data", "train", "search", "measure", "book"} <= TOOLBOX
    assert CHAPTERS[0] == "rnn" and {"attention", "multihead", "gpt", "modern", "translate"} <= set(CHAPTERS)
    assert {"train_gpt", "train_translation"} <= set(FLOORS["Long runs"])


@pytest.mark.parametrize("module", sorted(TOOLBOX))
def test_the_toolbox_imports_only_attention_and_itself(module):
    above = _ours(_imports(module)) - TOOLBOX - {"attention"}
    assert not above, f"toolbox module {module} imports chapter modules {sorted(above)}"


@pytest.mark.parametrize("module", CHAPTERS)
def test_a_chapter_imports_the_toolbox_and_earlier_chapters_only_and_no_command_line(module):
    imported = _imports(module)
    assert "argparse" not in imported, f"{module} imports argparse: a program belongs in a module of its own"
    earlier = set(CHAPTERS[: CHAPTERS.index(module)])
    later = _ours(imported) - TOOLBOX - earlier - CORE - {module}
    assert not later, f"chapter module {module} imports later modules {sorted(later)}"


def test_every_module_sits_on_a_floor():
    modules = {p.stem for p in LIB.glob("*.py") if not p.stem.startswith("_")}
    assert modules == TOOLBOX | set(CHAPTERS) | set(FLOORS["Long runs"])
