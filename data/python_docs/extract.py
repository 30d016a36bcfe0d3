"""Extract real text from the Python 3.11 documentation sources that Debian's `python3.11-doc` package installs
(`/usr/share/doc/python3.11/html/_sources/`), into two JSON-lines files beside this script:

- faq.jsonl: the FAQ's question/answer pairs, {"file", "section", "question", "answer"} (question answering);
- library.jsonl: the library reference's module pages with their one-line `:synopsis:`, {"module", "synopsis",
  "text"}, where text is the page's prose before its first section heading (summarization).

Needs that package (`apt-get install python3.11-doc`); the book and the tests only read the .jsonl files.

    python data/python_docs/extract.py [SOURCES_DIR]
"""
import json
import re
import sys
from pathlib import Path

SOURCES = Path("/usr/share/doc/python3.11/html/_sources")
UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")


def clean(text: str) -> str:
    "reStructuredText markup -> plain text: roles, links, literals and directives."
    text = re.sub(r":(rfc|pep):`(\d+)(?:#[^`]*)?`", lambda m: f"{m[1].upper()} {m[2]}", text,
                  flags=re.I)                                                    # :rfc:`4180` -> RFC 4180
    text = re.sub(r":[a-z:]+:`~?!?([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", text)        # :func:`name` -> name
    text = re.sub(r"`([^`<]+?)\s*<[^>]+>`_+", r"\1", text)                        # `text <url>`_ -> text
    text = re.sub(r"(?<=[\w-])\\ (?=[-.'\w])", "", text)                          # gzip\ -format -> gzip-format
    text = re.sub(r"``([^`]+)``", r"\1", text)                                      # ``code`` -> code
    text = re.sub(r"`([^`]+)`_*", r"\1", text)
    lines = [l for l in text.splitlines() if not l.strip().startswith(".. ")]      # directives and labels
    text = "\n".join(lines)
    text = re.sub(r"::\s*$", ":", text, flags=re.M)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def headings(lines: list[str]) -> list[int]:
    "Indices of section titles (a line underlined by a run of one punctuation character)."
    return [i for i in range(len(lines) - 1)
            if lines[i].strip() and UNDERLINE.match(lines[i + 1]) and not UNDERLINE.match(lines[i])
            and len(lines[i + 1].strip()) >= len(lines[i].strip())]


def faq_pairs(path: Path):
    lines = path.read_text(encoding="utf-8").splitlines()
    heads = headings(lines)
    section = ""
    for n, i in enumerate(heads):
        title = lines[i].strip()
        end = heads[n + 1] if n + 1 < len(heads) else len(lines)
        if not title.endswith("?"):
            section = title
            continue
        answer = clean("\n".join(lines[i + 2:end]))
        if answer:
            yield dict(file=path.name.removesuffix(".rst.txt"), section=section, question=clean(title), answer=answer)


def library_page(path: Path):
    "The module page's name, synopsis and prose before its first section, or None."
    raw = path.read_text(encoding="utf-8")
    module = re.search(r"^\.\. module:: ([\w.]+)", raw, re.M)
    synopsis = re.search(r"^\s+:synopsis: (.+)$", raw, re.M)
    if not (module and synopsis):
        return None
    lines = raw.splitlines()
    heads = headings(lines)
    start = heads[0] + 2 if heads else 0
    end = heads[1] if len(heads) > 1 else len(lines)
    body = [l for l in lines[start:end] if not re.match(r"^\s+:\w+:", l)]           # directive options
    body = [l for l in body if not l.startswith(" ")]                                # code, notes, directive bodies
    body = [l for l in body if not (UNDERLINE.match(l) or l.startswith(("+", "|", "**Source code:**")))]  # rules, tables
    text = re.sub(r"\s+", " ", clean("\n".join(body))).strip()
    return dict(module=module.group(1), synopsis=clean(synopsis.group(1)), text=text) if text else None


def main() -> None:
    sources = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCES
    if not (sources / "faq").is_dir():
        raise SystemExit(f"{sources} not found: install Debian's python3.11-doc (apt-get install python3.11-doc)")
    here = Path(__file__).parent
    seen, faq = set(), []
    for row in (p for f in sorted((sources / "faq").glob("*.rst.txt")) for p in faq_pairs(f)):
        if row["question"].lower() not in seen:                  # a question asked twice keeps its first answer
            seen.add(row["question"].lower())
            faq.append(row)
    pages, modules = [], set()
    for f in sorted((sources / "library").glob("*.rst.txt")):
        page = library_page(f)
        if page and page["module"] not in modules:             # a module documented on two pages: the first
            modules.add(page["module"])
            pages.append(page)
    for name, rows in (("faq.jsonl", faq), ("library.jsonl", pages)):
        (here / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"wrote {here / name}: {len(rows)} rows")


if __name__ == "__main__":
    main()
