"""The notebooks as a reader meets them (static checks; the built pages are measured by bench/reader.py):
code fits the column, export cells are short, and every chapter has its opening, summary and exercises, each
exercise with a folded solution that the build executes."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .toc import appendices, chapters

NBS = Path(__file__).resolve().parents[1] / "nbs"
NOTEBOOKS = sorted(NBS.glob("*.ipynb"))
CHAPTERS = chapters()  # the numbered parts of _toc.yml
WIDTH, EXPORT_LINES = 88, 60


def cells(path: Path, kind: str) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == kind]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_fits_the_column_and_export_cells_are_short(path):
    wide = [(i, line) for i, src in enumerate(cells(path, "code")) for line in src.split("\n")
            if len(line) > WIDTH]
    assert not wide, f"{len(wide)} code lines wider than {WIDTH} characters, e.g. {wide[0]}"
    long = [src.split("\n")[1][:50] for src in cells(path, "code")
            if src.startswith("#| export") and len(src.split("\n")) > EXPORT_LINES]
    assert not long, f"export cells over {EXPORT_LINES} lines, starting: {long}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_a_chapter_opens_sums_up_and_sets_exercises(path):
    md = cells(path, "markdown")
    assert re.search(r"In this chapter you will learn", md[0] + (md[1] if len(md) > 1 else "")), \
        "the opening says what the chapter teaches"
    assert re.search(r"\*\*You need:?\*\*", "\n".join(md[:2])), "the opening says what the reader needs"
    heads = [line for m in md for line in m.split("\n") if line.startswith("#")]
    assert not [h for h in heads if re.match(r"#+\s+\d+(\.\d+)*\.?\s", h)], "headings numbered by hand"
    assert "## Summary" in heads and "## Exercises" in heads
    assert heads.index("## Summary") < heads.index("## Exercises")
    solutions = [s for s in cells(path, "code") if re.search(r"(?m)^# Solution to exercise \d+", s)]
    assert 3 <= len(solutions) <= 5, f"{len(solutions)} solutions (3 to 5 exercises, each with one)"
    assert all(s.startswith("#| solution") for s in solutions), "solutions (code and output) behind a toggle"
    numbers = [int(re.search(r"(?m)^# Solution to exercise (\d+)", s).group(1)) for s in solutions]
    assert numbers == list(range(1, len(solutions) + 1)), f"solutions numbered {numbers}"


@pytest.mark.parametrize("path", appendices(), ids=lambda p: p.stem)
def test_an_appendix_owns_its_program_and_a_chapter_links_to_it(path):
    """An appendix of "Long runs" exports its program's module (`#| default_exp`), names the command in its opening,
    shows `--help`, ends with a run of the program, and a chapter links to it."""
    code = cells(path, "code")
    module = next((m[1] for src in code for m in [re.match(r"#\| default_exp (\w+)", src)] if m), None)
    assert module, "the appendix exports no module (#| default_exp)"
    assert f"python -m attn_tutorial.{module}" in cells(path, "markdown")[0], "the opening names the command"
    assert any('"--help"' in src for src in code), "--help is not shown"
    assert "main(" in code[-1] and "assert" in code[-1], "the last cell runs the program and checks what it wrote"
    assert any(f"{{doc}}`{path.stem}`" in "\n".join(cells(c, "markdown")) for c in chapters()), \
        "no chapter links to the appendix"



@pytest.mark.parametrize("path", sorted(NBS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_notebook_installs_the_library_where_it_is_missing(path):
    """The first code cell installs the package where it is missing (a chapter downloaded into Colab or a bare
    Jupyter), made from settings.ini's repository and package name (tests/install_cell.py writes it)."""
    from tests.install_cell import expected
    nb = json.loads(path.read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert "".join(first["source"]) == expected(nb), "run `python -m tests.install_cell`"


def test_one_repository_address_for_the_package_the_launch_buttons_and_binder():
    import configparser
    import yaml
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(NBS.parent / "settings.ini")
    url = cfg["DEFAULT"]["git_url"]
    assert yaml.safe_load((NBS.parent / "_config.yml").read_text())["repository"]["url"] == url
    binder = (NBS.parent / "binder" / "requirements.txt").read_text()
    assert "download.pytorch.org/whl/cpu" in binder and ".[apps]" in binder   # the CPU torch, then the package
