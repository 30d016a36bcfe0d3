"""The book's notebook reader: nbdev directives become myst-nb tags and are not shown."""
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_ext"))
from nbdev_book import read_nbdev_notebook, split_directives  # noqa: E402


def test_split_directives():
    assert split_directives("#| export\n#|hide\n\nx = 1\n#| not a directive here\n") == (
        [("export", ""), ("hide", "")], "x = 1\n#| not a directive here\n")
    assert split_directives("#| eval: false\nrun()") == ([("eval", "false")], "run()")
    assert split_directives("x = 1") == ([], "x = 1")


def test_reader_maps_directives_to_tags():
    cells = ["#| hide\nimport os", "#| export\ndef f(): pass", "#| echo: false\nplot()", "#| eval: false\nslow()",
             "#| output: false\nprint(1)", "#| default_exp attention", "#| eval: true\nok()", "plain()"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]
                                  + [nbformat.v4.new_markdown_cell("#| stays: prose is untouched")])
    out = read_nbdev_notebook(nbformat.writes(nb))
    tags = [c.metadata.get("tags", []) for c in out.cells]
    assert tags == [["remove-cell"], [], ["remove-input"], ["skip-execution"], ["remove-output"], ["remove-cell"],
                    [], [], []]
    assert [c.source for c in out.cells[:2]] == ["import os", "def f(): pass"]
    assert out.cells[-1].source == "#| stays: prose is untouched"


def test_every_glue_role_names_a_glued_value_and_a_valid_format():
    "A `{glue:text}` role in the prose must refer to a name that a code cell glues, with a format Python accepts."
    import json
    import re
    from pathlib import Path
    role = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]*))?`")
    glued = re.compile(r"""glue\(\s*f?["']([^"']+)["']""")
    for path in sorted(Path(__file__).parent.parent.joinpath("nbs").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        md = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        names = set(glued.findall(code))
        for name, fmt in role.findall(md):
            assert name in names or any("{" in n and re.fullmatch(re.sub(r"\{[^}]*\}", ".+", n), name) for n in names), \
                f"{path.name}: {{glue:text}}`{name}` is never glued"
            if fmt:
                format(1.5, fmt)                                       # raises ValueError on a bad format spec


# ---- the book's furniture: citations, glossary, API reference --------------------------------------------------

import json  # noqa: E402
import re  # noqa: E402

NBS = Path(__file__).resolve().parents[1] / "nbs"
ROLE = re.compile(r"\{(?P<role>[\w:]+)\}`(?P<content>[^`]*)`")


def prose() -> dict[str, str]:
    "The markdown of every notebook (markdown cells only) and of every .md page in nbs/, by file name."
    texts = {p.name: "\n".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"]
                               if c["cell_type"] == "markdown") for p in sorted(NBS.glob("*.ipynb"))}
    texts.update({p.name: p.read_text() for p in sorted(NBS.glob("*.md"))})
    return texts


def roles(text: str, prefix: str) -> list[str]:
    "The contents of every `{role}`content`` whose role starts with `prefix` (`cite` matches `cite:p`, `cite:t`)."
    return [m["content"] for m in ROLE.finditer(text) if m["role"].split(":")[0] == prefix]


def cited_keys(content: str) -> list[str]:
    "The keys of one citation role's content, pre- and post-text in braces dropped: `{see}a{p. 3},b` -> [a, b]."
    from sphinxcontrib.bibtex.citation_target import parse_citation_targets
    return [t.key for t in parse_citation_targets(content)]


def bib_keys() -> set[str]:
    from pybtex.database import parse_file
    return set(parse_file(str(NBS / "references.bib")).entries.keys())


def glossary_terms() -> set[str]:
    "The terms of the ```{glossary} block of nbs/glossary.md, lower-cased (Sphinx matches terms that way)."
    text = (NBS / "glossary.md").read_text()
    block = re.search(r"```\{glossary\}\n(.*?)\n```", text, re.S)
    assert block, "nbs/glossary.md has no ```{glossary} block"
    return {ln.strip().lower() for ln in block[1].splitlines()
            if ln.strip() and not ln[0].isspace() and not ln.startswith(":")}


def term_target(content: str) -> str:
    "`{term}`text <target>`` -> target; `{term}`target`` -> target."
    m = re.fullmatch(r"(?s).*?<(?P<target>[^<>]+)>\s*", content)
    return (m["target"] if m else content).strip().lower()


def test_every_citation_is_in_the_bibliography():
    keys, cited = bib_keys(), set()
    for name, text in prose().items():
        for content in roles(text, "cite"):
            for key in cited_keys(content):
                assert key in keys, f"{name}: {{cite}}`{content}` cites {key!r}, which nbs/references.bib lacks"
                cited.add(key)
    assert cited, "no chapter cites anything"


def test_every_bibliography_entry_is_cited_by_a_chapter():
    cited = {key for name, text in prose().items() if name.endswith(".ipynb")
             for content in roles(text, "cite") for key in cited_keys(content)}
    assert sorted(bib_keys() - cited) == [], "entries of nbs/references.bib that no chapter cites"


def test_the_bibliography_is_one_page():
    pages = [name for name, text in prose().items() if "{bibliography}" in text]
    assert pages == ["references.md"], pages


def test_every_term_is_in_the_glossary():
    terms, used = glossary_terms(), 0
    for name, text in prose().items():
        for content in roles(text, "term"):
            assert term_target(content) in terms, f"{name}: {{term}}`{content}` is not defined in nbs/glossary.md"
            used += 1
    assert used > 0 and len(terms) >= 30


def test_every_doc_link_names_a_page():
    for name, text in prose().items():
        for content in roles(text, "doc"):
            target = term_target(content)  # `{doc}`text <target>`` has the same form
            assert any((NBS / f"{target}{ext}").exists() for ext in (".ipynb", ".md")), f"{name}: {{doc}}`{content}`"


def test_api_reference_documents_every_module():
    lib = NBS.parent / "attn_tutorial"
    modules = sorted(p.stem for p in lib.glob("*.py") if not p.stem.startswith("_"))
    documented = re.findall(r"^\.\. automodule:: attn_tutorial\.(\w+)$", (NBS / "api.md").read_text(), re.M)
    assert sorted(documented) == modules and len(set(documented)) == len(documented), (documented, modules)
    assert "_modidx" not in (NBS / "api.md").read_text()
    from nbdev_book import default_exp
    exported = {default_exp(nbformat.read(p, as_version=4)) for p in NBS.glob("*.ipynb")} - {None}
    assert exported <= set(documented), exported - set(documented)


def test_every_exported_cell_goes_to_its_notebooks_own_module():
    """No `#| export <module>` that names a module: a notebook's exported cells all go to its own `#| default_exp`.
    nbdev 2 appends cells exported to a module by name to that module's file as it finds it, so exporting one
    notebook alone (`nbdev_export --path ...`) would write them a second time. A program that needs a module of its
    own gets a notebook of its own (the appendices of _toc.yml's part "Long runs")."""
    from nbdev_book import default_exp
    for path in sorted(NBS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        exports = [(i, value) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
                   for name, value in split_directives(cell.source)[0] if name in ("export", "exporti", "exports")]
        named = [(i, module) for i, module in exports if module]
        assert named == [], f"{path.name} exports cells (index, module) to a module by name: {named}"
        assert not exports or default_exp(nb), f"{path.name} exports cells but has no #| default_exp"


def test_reader_links_a_chapter_to_its_api_section():
    from nbdev_book import api_line
    cells = [nbformat.v4.new_markdown_cell("# Title\n\nProse."), nbformat.v4.new_code_cell("#| default_exp scores"),
             nbformat.v4.new_code_cell("x = 1")]
    out = read_nbdev_notebook(nbformat.writes(nbformat.v4.new_notebook(cells=cells)))
    assert out.cells[0].source == f"# Title\n\n{api_line('scores')}\n\nProse."
    assert "{py:mod}`attn_tutorial.scores`" in api_line("scores")
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("1")])
    assert read_nbdev_notebook(nbformat.writes(plain)).cells[0].source == "# Title"   # no module, no link


def test_docstring_code_spans_become_rst_literals():
    from nbdev_book import rst_literals
    assert rst_literals("mask `(B, S)`, True = `pad`.") == "mask ``(B, S)``, True = ``pad``."
    assert rst_literals("over `Batch`es") == "over ``Batch``\\ es"                  # a word touching the span
    assert rst_literals("`lo`..`hi` and `\\r`") == "``lo``..\\ ``hi`` and ``\\r``"
    assert rst_literals("`a\nb` then\n\n`c`") == "``a\nb`` then\n\n``c``"           # wraps a line, not a paragraph
    assert rst_literals("``kept``") == "``kept``"


# "Vaswani et al. 2017", "Xiong et al. (2020)", "Erkan & Radev 2004", "(Popović, 2015)": a work cited by hand
HAND_CITATION = re.compile(r"\b[A-Z][\w\-]+ (?:et al\.|(?:&|and) [A-Z][\w\-]+),? \(?(?:19|20)\d\d\b"
                           r"|\([A-Z][\w\-]+,? (?:19|20)\d\d\)")


def test_hand_citation_pattern():
    for typed in ("Vaswani et al. 2017", "Xiong et al. (2020)", "Erkan & Radev 2004", "(Popović, 2015)",
                  "Press and Wolf 2017", "(Papineni et al., 2002)"):
        assert HAND_CITATION.search(typed), typed
    for fine in ("{cite:t}`xiong2020layer`", "Python 3.11", "sentence-transformers 2.7.0", "WMT 2014 data"):
        assert not HAND_CITATION.search(fine), fine


def test_no_work_is_cited_by_hand():
    "Every work the prose names goes through the bibliography ({cite:p} / {cite:t}), so it is listed and linked."
    for name, text in prose().items():
        text = ROLE.sub("", re.sub(r"`[^`]*`", "", ROLE.sub("", text)))    # roles and code spans are not prose
        found = [m[0] for m in HAND_CITATION.finditer(text)]
        assert not found, f"{name}: cite these through nbs/references.bib: {found}"


def test_a_fold_says_what_it_hides():
    "`#| fold what` (an export cell) or `#| code-fold: what` folds the cell behind a button named for what it hides."
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("#| exporti\n#| fold torch's masks and the cache\ndef f(): pass"),
        nbformat.v4.new_code_cell("#| code-fold: the plotting code\nplot()"),
        nbformat.v4.new_code_cell("#| code-fold: true\nplain()"),
    ])
    cells = read_nbdev_notebook(nbformat.writes(nb)).cells
    assert [c.source for c in cells] == ["def f(): pass", "plot()", "plain()"]
    assert all("hide-input" in c.metadata.tags for c in cells)
    assert cells[0].metadata.mystnb == {"code_prompt_show": "Show torch's masks and the cache",
                                        "code_prompt_hide": "Hide torch's masks and the cache"}
    assert cells[1].metadata.mystnb["code_prompt_show"] == "Show the plotting code"
    assert "mystnb" not in cells[2].metadata                            # a bare fold keeps the theme's words


def test_a_solution_hides_its_code_and_output_behind_one_toggle():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("#| solution\n# Solution to exercise 1\nprint(2)")])
    (c,) = read_nbdev_notebook(nbformat.writes(nb)).cells
    assert c.source == "# Solution to exercise 1\nprint(2)" and c.metadata.tags == ["hide-cell"]
    assert c.metadata.mystnb["code_prompt_show"] == "Show the solution"


def test_a_fold_is_named_by_its_visible_words_and_prints_with_a_label():
    """The fold's `<summary>` carries no aria-label (its name is the line it shows, not "Toggle hidden content":
    axe's label-content-name-mismatch), and a fold that says what it holds keeps those words on paper."""
    from types import SimpleNamespace

    from nbdev_book import _print_label, depart_fold, visit_fold
    assert _print_label("Show the solution") == "The solution"
    assert _print_label("Show torch's masks and the cache") == "Torch's masks and the cache"
    assert _print_label("Show code cell source") is None
    writer = SimpleNamespace(body=[])
    node = {"classes": ["above-input"], "prompt_show": "Show the solution", "prompt_hide": "Hide the solution"}
    visit_fold(writer, node)
    depart_fold(writer, node)
    html = "".join(writer.body)
    assert "aria-label" not in html and "<summary>" in html
    assert '<p class="collapsed admonition-title">Show the solution</p>' in html
    assert '<p class="print-title admonition-title" hidden>The solution</p>' in html and html.endswith("</details>\n")
