"""Extract German-English paragraph pairs from LibreOffice's help into data/libreoffice/pairs.tsv.

Needs only the two Debian packages of the help pages (MPL-2.0), not LibreOffice itself:

    apt-get download libreoffice-help-de libreoffice-help-en-us
    python data/libreoffice/extract.py libreoffice-help-de_*.deb libreoffice-help-en-us_*.deb

(`dpkg-deb -x` unpacks them into a temporary folder). The book and the tests read only the committed pairs.tsv.

Each help page exists in both languages under the same path, `usr/share/libreoffice/help/{de,en-US}/text/`, and
its paragraphs, headings, list items and table cells carry the same `id="par_id..."` / `id="hd_id..."` attributes
in both. A pair is the text of the same id on the same page in the two languages. Dropped: code (`class` with
"code", "bas", "example", "acronym" or similar), pairs identical in both languages (names, numbers, menu paths
left untranslated), text with markup or file/URL residue, and pairs outside 2-40 words per side or whose lengths
differ by more than a factor of 3 (misaligned). Exact duplicates are kept once.

Split as for the Ding pairs: the distinct German texts are shuffled with a fixed seed; the first 1000 are the
test set, the next 500 the validation set; every pair whose German OR English text occurs in the test set is held
out of validation and training, and likewise validation against training.
"""
from __future__ import annotations

import hashlib
import html.parser
import random
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

OUT = Path(__file__).resolve().parent / "pairs.tsv"
N_TEST, N_VALID, SEED = 1000, 500, 0
MIN_WORDS, MAX_WORDS, MAX_RATIO = 2, 40, 3.0
ID = re.compile(r"^(par_id|hd_id)")
CODE_CLASS = re.compile(r"code|bas|example|acronym|literal|input|tablecontent_code")
RESIDUE = re.compile(r"[<>{}\\|_@#$~^`]|https?:|www\.|\.html|\.xhp|\S+\.\S+\(|%[A-Z]")
VOID = {"br", "img", "hr", "input", "meta", "link", "wbr", "source", "col"}


class Paragraphs(html.parser.HTMLParser):
    "Collects {(id, occurrence): text} of the elements whose id is a help paragraph's."

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.found, self.skipped = [], {}, set()

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            if tag == "br" and self.stack:
                self.stack[-1][3].append(" ")
            return
        a = dict(attrs)
        pid = a.get("id") or ""
        self.stack.append([tag, pid if ID.match(pid) else None, a.get("class") or "", []])

    def handle_endtag(self, tag):
        if tag in VOID or not self.stack:
            return
        while self.stack:
            t, pid, cls, texts = self.stack.pop()
            text = "".join(texts)
            if pid:  # a page may embed another's paragraphs: ids repeat, so count them
                key = (pid, sum(k[0] == pid for k in self.found))
                self.found[key] = " ".join(text.split())
                if CODE_CLASS.search(cls):
                    self.skipped.add(key)
            elif self.stack and "MAC" not in cls.split():  # keep the other systems' keys
                self.stack[-1][3].append(text)
                if CODE_CLASS.search(cls):
                    self.stack[-1][2] += " code"  # its paragraph is code
            if t == tag:
                break

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][3].append(data)


def paragraphs(path: Path) -> dict[str, str]:
    p = Paragraphs()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return {k: v for k, v in p.found.items() if k not in p.skipped and v}


def usable(de: str, en: str) -> bool:
    nd, ne = len(de.split()), len(en.split())
    return (
        de != en and MIN_WORDS <= min(nd, ne) and max(nd, ne) <= MAX_WORDS
        and max(nd, ne) <= MAX_RATIO * min(nd, ne)
        and not RESIDUE.search(de + " " + en)
        and any(c.isalpha() for c in de) and any(c.isalpha() for c in en)
    )


def aligned(root: Path):
    "(German, English) pairs of every page that exists in both languages; counts."
    de_root, en_root = root / "de" / "text", root / "en-US" / "text"
    counts = Counter()
    pairs = []
    for de_page in sorted(de_root.rglob("*.html")):
        en_page = en_root / de_page.relative_to(de_root)
        if not en_page.is_file():
            counts["German pages without an English page"] += 1
            continue
        counts["page pairs"] += 1
        de, en = paragraphs(de_page), paragraphs(en_page)
        both = [k for k in de if k in en]
        counts["aligned paragraphs"] += len(both)
        for k in both:
            if de[k] == en[k]:
                counts["identical in both languages"] += 1
            elif usable(de[k], en[k]):
                pairs.append((de[k], en[k]))
            else:
                counts["dropped: residue, length or ratio"] += 1
    return pairs, counts


def split(pairs):
    germans = sorted({d for d, _ in pairs})
    random.Random(SEED).shuffle(germans)
    test_de, valid_de = set(germans[:N_TEST]), set(germans[N_TEST:N_TEST + N_VALID])
    test = [p for p in pairs if p[0] in test_de]
    test_en = {e for _, e in test}
    valid = [p for p in pairs if p[0] in valid_de and p[1] not in test_en]
    held_de, held_en = test_de | {d for d, _ in valid}, test_en | {e for _, e in valid}
    train = [p for p in pairs if p[0] not in held_de and p[1] not in held_en]
    return train, valid, test


def main(debs: list[str]):
    if len(debs) != 2:
        raise SystemExit(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", deb, tmp], check=True)
        pairs, counts = aligned(Path(tmp) / "usr/share/libreoffice/help")
    pairs = list(dict.fromkeys(pairs))
    counts["distinct usable pairs"] = len(pairs)
    train, valid, test = split(pairs)
    with OUT.open("w", encoding="utf-8") as f:
        f.write("split\tde\ten\n")
        for name, rows in (("train", train), ("valid", valid), ("test", test)):
            for d, e in rows:
                f.write(f"{name}\t{d}\t{e}\n")
    for k, v in counts.items():
        print(f"{k}: {v:,}")
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()[:16]
    print(f"{OUT}: train {len(train):,}, valid {len(valid):,}, test {len(test):,} pairs "
          f"(sha256 {digest})")


if __name__ == "__main__":
    main(sys.argv[1:])
