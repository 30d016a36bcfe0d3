"""Extract the question/answer pairs of the Python FAQ into faq.jsonl (one JSON object per line:
{"file", "section", "question", "answer"}), from the reStructuredText sources that Debian's `python3.11-doc`
package installs. Needs that package (`apt-get install python3.11-doc`); the book and the tests only read faq.jsonl.

    python data/python_faq/extract.py [SOURCE_DIR]
"""
import json
import re
import sys
from pathlib import Path

SOURCE = Path("/usr/share/doc/python3.11/html/_sources/faq")
UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")


def clean(text: str) -> str:
    "reStructuredText markup -> plain text: roles, links, literals and directives."
    text = re.sub(r":[a-z:]+:`~?!?([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", text)        # :func:`name` -> name
    text = re.sub(r"`([^`<]+?)\s*<[^>]+>`_+", r"\1", text)                        # `text <url>`_ -> text
    text = re.sub(r"``([^`]+)``", r"\1", text)                                      # ``code`` -> code
    text = re.sub(r"`([^`]+)`_*", r"\1", text)
    lines = [l for l in text.splitlines() if not l.strip().startswith(".. ")]      # directives and labels
    text = "\n".join(lines)
    text = re.sub(r"::\s*$", ":", text, flags=re.M)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def pairs(path: Path):
    lines = path.read_text(encoding="utf-8").splitlines()
    headings = [i for i in range(len(lines) - 1)
                if lines[i].strip() and UNDERLINE.match(lines[i + 1]) and len(lines[i + 1].strip()) >= len(lines[i].strip())
                and not UNDERLINE.match(lines[i])]
    section = ""
    for n, i in enumerate(headings):
        title = lines[i].strip()
        end = headings[n + 1] if n + 1 < len(headings) else len(lines)
        if not title.endswith("?"):
            section = title
            continue
        answer = clean("\n".join(lines[i + 2:end]))
        if answer:
            yield dict(file=path.name.removesuffix(".rst.txt"), section=section, question=clean(title), answer=answer)


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    if not source.is_dir():
        raise SystemExit(f"{source} not found: install Debian's python3.11-doc (apt-get install python3.11-doc)")
    rows = [p for f in sorted(source.glob("*.rst.txt")) for p in pairs(f)]
    seen, unique = set(), []
    for r in rows:                                     # a question asked twice keeps its first answer
        if r["question"].lower() not in seen:
            seen.add(r["question"].lower())
            unique.append(r)
    out = Path(__file__).with_name("faq.jsonl")
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in unique), encoding="utf-8")
    print(f"wrote {out}: {len(unique)} question/answer pairs from {source}")


if __name__ == "__main__":
    main()
