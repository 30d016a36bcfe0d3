"""Extract German-English sentence pairs from the Ding dictionary into data/ding/pairs.tsv.

Needs the Debian package `trans-de-en` (`apt-get install trans-de-en`), which installs /usr/share/trans/de-en.
The book and the tests read only the committed pairs.tsv; run this to regenerate it:

    python data/ding/extract.py

A dictionary line is `German :: English`; both sides hold sub-entries separated by ` | ` that correspond one to
one (headword, plural, phrases, example sentences). We keep the sub-entries that are whole sentences on both
sides: a capital first letter, ending in . ! or ?, no editorial marks ({f}, [Am.], (sth.), a/b alternatives, ...).
Where both sides list the same number of `; `-separated variants, each variant pair is kept. Typographic
apostrophes become ASCII ones. Exact duplicates are dropped.

Split: the distinct German sentences are shuffled with a fixed seed; the first 1000 are the test set, the next
500 the validation set. Every pair whose German OR English sentence occurs in the test set is held out from
validation and training, and likewise for validation against training, so no held-out sentence (on either side)
is ever seen in training.
"""
import hashlib
import random
import re
from pathlib import Path

SOURCE = Path("/usr/share/trans/de-en")
OUT = Path(__file__).resolve().parent / "pairs.tsv"
N_TEST, N_VALID, SEED = 1000, 500, 0
MARKS = re.compile(r"[{}\[\]/~<>=+()\t]|\.\.\.|…")


def is_sentence(s: str) -> bool:
    return s[:1].isupper() and s[-1:] in ".!?" and not MARKS.search(s)


def pairs_from(line: str):
    de, en = line.rstrip("\n").split(" :: ", 1)
    ds, es = de.split(" | "), en.split(" | ")
    if len(ds) != len(es):                      # sub-entries must correspond one to one
        return
    for d, e in zip(ds, es):
        d, e = d.strip().replace("’", "'"), e.strip().replace("’", "'")
        dv, ev = d.split("; "), e.split("; ")
        if len(dv) != len(ev):
            continue
        for a, b in zip(dv, ev):
            a, b = a.strip(), b.strip()
            if is_sentence(a) and is_sentence(b) and ";" not in a + b:
                yield a, b


def main():
    if not SOURCE.exists():
        raise SystemExit(f"{SOURCE} not found: install the Debian package trans-de-en")
    pairs = []
    for line in SOURCE.open(encoding="utf-8"):
        if not line.startswith("#") and " :: " in line:
            pairs.extend(pairs_from(line))
    pairs = list(dict.fromkeys(pairs))
    germans = sorted({d for d, _ in pairs})
    random.Random(SEED).shuffle(germans)
    test_de, valid_de = set(germans[:N_TEST]), set(germans[N_TEST:N_TEST + N_VALID])
    test = [p for p in pairs if p[0] in test_de]
    test_en = {e for _, e in test}
    valid = [p for p in pairs if p[0] in valid_de and p[1] not in test_en]
    held_de = test_de | {d for d, _ in valid}
    held_en = test_en | {e for _, e in valid}
    train = [p for p in pairs if p[0] not in held_de and p[1] not in held_en]
    with OUT.open("w", encoding="utf-8") as f:
        f.write("split\tde\ten\n")
        for split, rows in (("train", train), ("valid", valid), ("test", test)):
            for d, e in rows:
                f.write(f"{split}\t{d}\t{e}\n")
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()[:16]
    print(f"{OUT}: train {len(train)}, valid {len(valid)}, test {len(test)} pairs (sha256 {digest})")


if __name__ == "__main__":
    main()
