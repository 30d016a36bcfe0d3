"""Let Jupyter Book read nbdev notebooks: `#|` directives become myst-nb cell tags.

nbdev marks cells with directive comments (`#| export`, `#| hide`, `#| eval: false`, ...), Jupyter Book
with cell tags (`remove-cell`, `skip-execution`, ...). This reader is registered for `.ipynb` through
`nb_custom_formats` in `_config.yml`, so it runs before execution: it strips the directive lines from each
code cell (they are plumbing, not prose) and adds the tags they stand for. The notebooks stay the single
source; nothing in them is duplicated as metadata, which `nbdev_clean` would strip anyway.

The reader also links each chapter to its module in the API reference: a notebook that exports a module
(`#| default_exp name`) gets, under its title, a line with a `{py:mod}` link to `attn_tutorial.name`, which
`nbs/api.md` documents with autodoc. It is generated here, never typed into a notebook.

And it registers the citation styles of the book: citations author-year in round brackets ("Vaswani et al.
(2017)", "(Vaswani et al., 2017)") as `author_year_round` for `bibtex_reference_style`, and a bibliography whose
entries carry the same author-year labels as `author_year` for `bibtex_default_style`.
"""
from __future__ import annotations

import re

import nbformat

_DIRECTIVE = re.compile(r"^\s*#\|\s*(?P<name>[\w-]+)\s*:?\s*(?P<value>.*?)\s*$")

# directive (name, value or None for "any value") -> myst-nb tag
_TAGS = {
    ("hide", None): "remove-cell",
    ("default_exp", None): "remove-cell",
    ("include", "false"): "remove-cell",
    ("echo", "false"): "remove-input",
    ("output", "false"): "remove-output",
    ("eval", "false"): "skip-execution",
    ("code-fold", "true"): "hide-input",          # shown folded, behind a "show code" toggle
    ("fold", None): "hide-input",                 # the same for an export cell: nbdev keeps `name: value`
                                                  # (Quarto) directives in the exported module, not `#| fold`
    ("solution", None): "hide-cell",              # an exercise's solution: code and output behind one toggle
}


def split_directives(source: str, keep_case: bool = False) -> tuple[list[tuple[str, str]], str]:
    """Split the leading `#|` directive lines off a cell's `source`: ([(name, value), ...], rest); values lower-cased
    unless `keep_case`."""
    lines = source.splitlines(keepends=True)
    directives = []
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if m:
            directives.append((m["name"], m["value"] if keep_case else m["value"].lower()))
        elif lines[i].strip():
            break
        i += 1
    return directives, "".join(lines[i:])


def tags_for(directives: list[tuple[str, str]]) -> list[str]:
    """The myst-nb tags that nbdev `directives` stand for."""
    tags = []
    for name, value in directives:
        tag = _TAGS.get((name, None)) or _TAGS.get((name, value.lower()))
        if name in _FOLDS and fold_label(value):                 # `#| code-fold: what it hides` folds too
            tag = "hide-input"
        if tag and tag not in tags:
            tags.append(tag)
    return tags


_FOLDS = ("fold", "code-fold")


def fold_label(value: str) -> str | None:
    """What a fold hides, from its directive's value (`#| fold the plotting code`, `#| code-fold: the checks`), or
    None for a bare fold (`#| fold`, `#| code-fold: true`)."""
    value = value.strip()
    return None if value.lower() in ("", "true", "false") else value


LIB = "attn_tutorial"


def default_exp(nb: nbformat.NotebookNode) -> str | None:
    "The module a notebook exports (`#| default_exp name`, case kept), or None."
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            m = _DIRECTIVE.match(line)
            if m and m["name"] == "default_exp" and m["value"]:
                return m["value"]
            if not m and line.strip():
                break
    return None


def api_line(module: str) -> str:
    "The markdown line, under a chapter's title, that links to the API reference of `attn_tutorial.<module>`."
    return f"*API reference:* {{py:mod}}`{LIB}.{module}`, the library module this chapter exports."


def add_api_link(nb: nbformat.NotebookNode) -> None:
    "Insert `api_line` after the `# title` line of the first markdown cell of a notebook that exports a module."
    module = default_exp(nb)
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if module is None or first is None:
        return
    lines = first.source.splitlines()
    i = next((k for k, line in enumerate(lines) if line.startswith("# ")), None)
    if i is None:
        return
    rest = lines[i + 1:]
    first.source = "\n".join(lines[:i + 1] + ["", api_line(module)] + ([""] if rest and rest[0].strip() else []) + rest)


def read_nbdev_notebook(text: str) -> nbformat.NotebookNode:
    """Read an `.ipynb` string, turning nbdev directives into cell tags and removing the directive lines, and
    linking the chapter to its module's API reference."""
    nb = nbformat.reads(text, as_version=4)
    add_api_link(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        directives, rest = split_directives(cell.source, keep_case=True)
        if not directives:
            continue
        cell.source = rest
        tags = cell.metadata.setdefault("tags", [])
        tags.extend(t for t in tags_for(directives) if t not in tags)
        label = next((fold_label(v) for n, v in directives if n in _FOLDS and fold_label(v)), None)
        if any(n == "solution" for n, _ in directives):
            label = "the solution"
        if label:                                                # the fold's button says what it hides
            cell.metadata.setdefault("mystnb", {}).update(
                code_prompt_show=f"Show {label}", code_prompt_hide=f"Hide {label}")
    return nb


def _print_label(prompt_show: str) -> str | None:
    """The label a fold keeps on paper, where it prints open: "Show the solution" -> "The solution"; None for
    myst-nb's generic prompts ("Show code cell source"), whose code needs no label."""
    if prompt_show.startswith("Show code cell "):
        return None
    what = prompt_show[len("Show "):] if prompt_show.startswith("Show ") else prompt_show
    return what[:1].upper() + what[1:]


def visit_fold(self, node) -> None:
    """myst-nb's fold (`HideCodeCellNode`) as a `<details>` whose toggle is named by the words it shows.

    myst-nb labels every `<summary>` `aria-label="Toggle hidden content"` beside visible text that says something
    else ("Show the solution"): a screen reader announces one name, speech input needs the other (axe's
    `label-content-name-mismatch`). Without the aria-label the name is the visible line itself. A third line,
    `hidden` on screen (and so out of the button's name) and shown only in print (`_static/print.css`, where the fold
    prints open), says what the fold holds.
    """
    from html import escape
    classes = " ".join(node["classes"])
    self.body.append(f'<details class="admonition hide {classes}">\n<summary>\n')
    self.body.append(f'<p class="collapsed admonition-title">{escape(node["prompt_show"])}</p>\n')
    self.body.append(f'<p class="expanded admonition-title">{escape(node["prompt_hide"])}</p>\n')
    label = _print_label(node["prompt_show"])
    if label:
        self.body.append(f'<p class="print-title admonition-title" hidden>{escape(label)}</p>\n')
    self.body.append("</summary>\n")


def depart_fold(self, node) -> None:
    self.body.append("</details>\n")


def visit_citation(self, node) -> None:
    """A bibliography entry as a `listitem` of its `list` (docutils writes `doc-biblioentry`, a role ARIA has
    deprecated, which leaves the list with no allowed children: axe's `aria-required-children`, critical)."""
    if not isinstance(node.previous_sibling(), type(node)):
        self.body.append('<div role="list" class="citation-list">\n')
    self.body.append(self.starttag(node, "div", classes=[node.tagname], role="listitem"))


def depart_citation(self, node) -> None:
    self.body.append("</div>\n")
    if not isinstance(node.next_node(descend=False, siblings=True), type(node)):
        self.body.append("</div>\n")


def number_print_title(app, pagename, templatename, context, doctree) -> None:
    """html-page-context: the title the theme prints at the top of a page (`pagetitle`, in `#jb-print-docs-body`,
    which replaces the article's own heading on paper) carries the chapter's number, as the screen's heading does."""
    number = app.env.toc_secnumbers.get(pagename, {}).get("")
    if number and context.get("pagetitle"):
        context["pagetitle"] = ".".join(map(str, number)) + ". " + context["pagetitle"]


def dedupe_scripts(app, pagename, templatename, context, doctree):
    """Drop repeated `<script>` entries from a page.

    Under Jupyter Book 1, sphinx-thebe and sphinx-togglebutton add their inline scripts twice (once with
    filename None, once with ""); the second `const THEBE_JS_URL` declaration is a console error on every page.
    """
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        # the copies differ only in how "no file" is spelled (None or ""), so compare what reaches the HTML
        key = (getattr(js, "filename", js) or "", tuple(sorted((getattr(js, "attributes", None) or {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


# A `code` span of the library's docstrings, which are written in markdown's style.
_CODE_SPAN = re.compile(r"(?<![`\\])`((?:[^`\n]|\n(?!\s*\n))+)`(?!`)")  # may wrap a line, as in markdown
_RST_BEFORE = set(" \t\n-:/'\"<([{")        # what may precede reST inline markup
_RST_AFTER = set(" \t\n-.,:;!?\\/'\")]}>")  # what may follow it


def rst_literals(text: str) -> str:
    """Turn markdown code spans (`x`) into reST inline literals (``x``), escaping them from a word they touch.

    The docstrings mark code with single backticks, as markdown does; in reST those are the default role, and
    `Batch`es or 0..`n` are not markup at all there. A reST literal needs a space or punctuation on either side,
    so where a word touches it an escaped space (`\\ `, which renders as nothing) is put between.
    """
    def literal(m: re.Match) -> str:
        before = "" if m.start() == 0 or text[m.start() - 1] in _RST_BEFORE else "\\ "
        after = "" if m.end() == len(text) or text[m.end()] in _RST_AFTER else "\\ "
        return f"{before}``{m[1]}``{after}"
    return _CODE_SPAN.sub(literal, text)


def docstring_to_rst(app, what, name, obj, options, lines: list[str]) -> None:
    "autodoc-process-docstring: markdown code spans in a docstring become reST literals (see `rst_literals`)."
    lines[:] = rst_literals("\n".join(lines)).split("\n")


def skip_tuple_fields(app, what, name, obj, skip, options):
    "autodoc-skip-member: leave out the `Alias for field number N` entries of a NamedTuple's fields."
    if (getattr(obj, "__doc__", None) or "").startswith("Alias for field number"):
        return True
    return None


def _register_citation_style() -> None:
    """Author-year citations in round brackets, registered as the `author_year_round` reference style.

    sphinxcontrib-bibtex's `author_year` puts both kinds of citation in square brackets; books in the field use
    round ones. This is the plugin recipe of its documentation, done here so that `_config.yml` can name it.
    """
    from dataclasses import dataclass, field

    import sphinxcontrib.bibtex.plugin
    from sphinxcontrib.bibtex.style.referencing import BracketStyle
    from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

    def round_brackets() -> BracketStyle:
        return BracketStyle(left="(", right=")", sep="; ")

    @dataclass
    class RoundAuthorYearReferenceStyle(AuthorYearReferenceStyle):
        bracket_parenthetical: BracketStyle = field(default_factory=round_brackets)
        bracket_textual: BracketStyle = field(default_factory=round_brackets)
        bracket_author: BracketStyle = field(default_factory=round_brackets)
        bracket_label: BracketStyle = field(default_factory=round_brackets)
        bracket_year: BracketStyle = field(default_factory=round_brackets)

    sphinxcontrib.bibtex.plugin.register_plugin(
        "sphinxcontrib.bibtex.style.referencing", "author_year_round", RoundAuthorYearReferenceStyle, force=True)


def _register_bibliography_style() -> None:
    """The bibliography's entries labelled like the citations that point at them ("Vaswani et al., 2017"), sorted
    by author, year and title: pybtex's `unsrt` entries with author-year labels, registered as `author_year`."""
    import pybtex.plugin
    from pybtex.style.formatting.unsrt import Style as UnsrtStyle
    from pybtex.style.labels import BaseLabelStyle
    from pybtex.style.sorting.author_year_title import SortingStyle

    class AuthorYearLabelStyle(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            labels = []
            for entry in sorted_entries:
                last = [" ".join(p.last_names) for p in entry.persons.get("author", [])] or [entry.key]
                names = last[0] if len(last) == 1 else " and ".join(last) if len(last) == 2 else f"{last[0]} et al."
                labels.append(f"{names}, {entry.fields.get('year', 'n.d.')}")
            for i, label in enumerate(labels):  # two works with the same label: 2019a, 2019b
                same = [j for j, other in enumerate(labels) if other == label]
                yield label + ("abcdefghijklmnopqrstuvwxyz"[same.index(i)] if len(same) > 1 else "")

    class AuthorYearStyle(UnsrtStyle):
        default_label_style = AuthorYearLabelStyle
        default_sorting_style = SortingStyle

    pybtex.plugin.register_plugin("pybtex.style.formatting", "author_year", AuthorYearStyle, force=True)


def write_execution_times(app, exception) -> None:
    """build-finished: `<outdir>/../notebook_times.json`, each executed notebook's seconds, as myst-nb measured
    them in this build (each notebook runs once, in the build; `make test` prints them against the budget)."""
    if exception is not None:
        return
    import json
    from pathlib import Path

    from myst_nb.sphinx_ import NbMetadataCollector

    times = {}
    for docname in sorted(app.env.found_docs):
        data = NbMetadataCollector.get_exec_data(app.env, docname) if docname in NbMetadataCollector.get_doc_data(
            app.env) else None
        if data and data.get("runtime") is not None:
            times[docname] = {"seconds": round(data["runtime"], 1), "succeeded": data.get("succeeded")}
    Path(app.outdir).parent.joinpath("notebook_times.json").write_text(json.dumps(times, indent=1) + "\n")


# Extensions that do not say whether Sphinx may read in parallel, and why they may: multitoc numbering numbers the
# sections from the assembled toctree after reading, in the main process; mathjax-offline only points MathJax at its
# bundled copy (a config value and static files); jupyterbook-latex acts only in a LaTeX build.
PARALLEL_SAFE = ("sphinx_multitoc_numbering", "sphinx-mathjax-offline", "sphinx_jupyterbook_latex")


def allow_parallel_read(app) -> None:
    """builder-inited: without a declaration Sphinx would read (and execute) the notebooks one at a time; declare the
    extensions in `PARALLEL_SAFE` safe, so that `make book` executes two notebooks at a time (sphinx's -j 2)."""
    for name in PARALLEL_SAFE:
        ext = app.extensions.get(name)
        if ext is not None and ext.parallel_read_safe is None:
            ext.parallel_read_safe = True


def mark_executed(app, doctree) -> None:
    """doctree-read: mark an executed notebook `_build/results/<name>.executed`, so that a page that reads what the
    chapters recorded (the conclusion) waits for them while the build executes two notebooks at a time
    (`attn_tutorial.book.read_results`)."""
    from pathlib import Path

    if str(app.env.doc2path(app.env.docname)).endswith(".ipynb") and app.config.nb_execution_mode != "off":
        marks = Path(app.outdir).parent / "results"
        marks.mkdir(parents=True, exist_ok=True)
        (marks / f"{Path(app.env.docname).name}.executed").touch()


def setup(app):
    from docutils import nodes
    from myst_nb.sphinx_ import HideCodeCellNode

    app.setup_extension("myst_nb")                  # first, so that its fold's HTML is the one replaced here
    app.add_node(HideCodeCellNode, override=True, html=(visit_fold, depart_fold))
    app.add_node(nodes.citation, override=True, html=(visit_citation, depart_citation))
    app.connect("html-page-context", number_print_title, priority=900)   # after the theme sets pagetitle (500)
    _register_citation_style()
    _register_bibliography_style()
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.connect("autodoc-process-docstring", docstring_to_rst)
    app.connect("autodoc-skip-member", skip_tuple_fields)
    app.connect("build-finished", write_execution_times)
    app.connect("builder-inited", allow_parallel_read)
    app.connect("doctree-read", mark_executed)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
