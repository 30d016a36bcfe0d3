"""Patterns of prose that a reader caught on the pages (issue 32), checked in every notebook's markdown so that they
do not come back:

- a glued number rounded into a bound: "at least {glue:text}`r:.0f`" says 14 for a ratio of 13.6, a bound the
  rounding made up (the format rounds, the words promise a bound). Say the number, or glue a bound computed and
  asserted as such (with an integer format, or an exact value);
- a phrase said twice in one sentence ("at N = 16384 ... at N = 16384");
- a role whose prefix is lost on the page (`{rfc}`, `{pep}`, `{abbr}` render without it here: write "RFC 4180");
- "In this chapter you will learn" without its colon.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parents[1] / "nbs"
GLUE = r"\{glue:text\}`(?P<name>[^`:]+)(?::(?P<fmt>[^`]*))?`"
BOUND = r"(?:at least|at most|no less than|no more than|or better|or more|or less)"
# a bound phrase, then within three words a glued number whose format rounds it
ROUNDED_BOUND = re.compile(BOUND + r"\W+(?:\w+\W+){0,3}?" + GLUE, re.I)
ROUNDED_AFTER = re.compile(GLUE + r"\s+(?:or better|or more|or less)", re.I)


def markdown(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]


def rounds(fmt: str | None) -> bool:
    "Does this format spec round a real number (a precision, or %/e/g types)?"
    return bool(fmt) and bool(re.search(r"\.\d+[fe%g]?$|[e%g]$", fmt))


NOTEBOOKS = sorted(NBS.glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_glued_number_is_rounded_into_a_bound(path):
    found = [m.group(0) for text in markdown(path) for rx in (ROUNDED_BOUND, ROUNDED_AFTER)
             for m in rx.finditer(text) if rounds(m.group("fmt"))]
    assert not found, f"a rounded glued number stated as a bound: {found}"


def _sentences(text: str) -> list[str]:
    "The prose's sentences, with code, math and roles taken out (a glued value stands as its name's token)."
    text = re.sub(r"```.*?```|\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " ", text)
    text = re.sub(r"\{glue:text\}`([^`:]+)[^`]*`", lambda m: f"GLUED_{m.group(1)}", text)
    text = re.sub(r"\{[\w:]+\}`([^`]*)`", r"\1", text)
    text = re.sub(r"`[^`]*`", " CODE ", text)
    return [s for s in re.split(r"(?<=[.!?:])\s+(?=[A-Z*#-])|;\s+", text.replace("\n", " ")) if s.strip()]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_phrase_is_said_twice_in_one_sentence(path):
    twice = []
    for text in markdown(path):
        for sentence in _sentences(text):
            words = re.findall(r"[\w'=.]+", sentence)
            grams = [tuple(words[i:i + 4]) for i in range(len(words) - 3)]
            # a repeated 4-word phrase that carries a number or a glued value
            seen = {}
            for i, g in enumerate(grams):
                if g in seen and i - seen[g] >= 4 and any(re.search(r"\d|GLUED_", w) for w in g):
                    twice.append(" ".join(g))
                seen.setdefault(g, i)
    assert not twice, f"a phrase said twice in one sentence: {twice}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_role_loses_its_prefix_and_the_opening_has_its_colon(path):
    text = "\n".join(markdown(path))
    assert not re.search(r"\{(?:rfc|pep|abbr)\}`", text), "write 'RFC 4180' in words: the role loses its prefix"
    assert not re.search(r"In this chapter you will learn(?!:)", text), "the opening's colon"
