"""Let Jupyter Book read nbdev notebooks: `#|` directives become myst-nb cell tags.

nbdev marks cells with directive comments (`#| export`, `#| hide`, `#| eval: false`, ...), Jupyter Book
with cell tags (`remove-cell`, `skip-execution`, ...). This reader is registered for `.ipynb` through
`nb_custom_formats` in `_config.yml`, so it runs before execution: it strips the directive lines from each
code cell (they are plumbing, not prose) and adds the tags they stand for. The notebooks stay the single
source; nothing in them is duplicated as metadata, which `nbdev_clean` would strip anyway.
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
}


def split_directives(source: str) -> tuple[list[tuple[str, str]], str]:
    """Split the leading `#|` directive lines off a cell's `source`: ([(name, value), ...], rest)."""
    lines = source.splitlines(keepends=True)
    directives = []
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if m:
            directives.append((m["name"], m["value"].lower()))
        elif lines[i].strip():
            break
        i += 1
    return directives, "".join(lines[i:])


def tags_for(directives: list[tuple[str, str]]) -> list[str]:
    """The myst-nb tags that nbdev `directives` stand for."""
    tags = []
    for name, value in directives:
        tag = _TAGS.get((name, None)) or _TAGS.get((name, value))
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def read_nbdev_notebook(text: str) -> nbformat.NotebookNode:
    """Read an `.ipynb` string, turning nbdev directives into cell tags and removing the directive lines."""
    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        directives, rest = split_directives(cell.source)
        if not directives:
            continue
        cell.source = rest
        tags = cell.metadata.setdefault("tags", [])
        tags.extend(t for t in tags_for(directives) if t not in tags)
    return nb


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


def setup(app):
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
