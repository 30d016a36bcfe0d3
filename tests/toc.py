"""The book's table of contents, read from `_toc.yml`: the tests that check every chapter take the chapters from
here, not from file names or a count, so that adding, removing or renumbering a chapter needs no test edit."""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONCLUSION = "Conclusion"  # the caption of the numbered part that reads the other chapters' results
LONG_RUNS = "Long runs"  # the caption of the unnumbered part of the long-run programs, one appendix each


def toc_parts() -> list[dict]:
    "The parts of _toc.yml, each `{caption, numbered, files}`; the root document first, as a part of its own."
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [{"caption": None, "numbered": False, "files": [toc["root"]]}] + [
        {"caption": p.get("caption"), "numbered": bool(p.get("numbered")), "files": [c["file"] for c in p["chapters"]]}
        for p in toc.get("parts", [])]


def chapters(conclusion: bool = True) -> list[Path]:
    """The notebooks of the numbered parts of _toc.yml in reading order (`nbs/01_motivation.ipynb`, ...): the
    chapters, not the toolbox or the back matter; without the conclusion when `conclusion` is False."""
    return [ROOT / f"{f}.ipynb" for p in toc_parts() if p["numbered"] and (conclusion or p["caption"] != CONCLUSION)
            for f in p["files"]]


def appendices() -> list[Path]:
    """The notebooks of the part "Long runs" of _toc.yml (`nbs/80_gpt_run.ipynb`, ...): each a chapter's long-run
    program, in a notebook that owns its module. Not numbered, not chapters (no opening, summary or exercises); the
    book build executes them and the browser tests check their pages like every other."""
    return [ROOT / f"{f}.ipynb" for p in toc_parts() if p["caption"] == LONG_RUNS for f in p["files"]]
