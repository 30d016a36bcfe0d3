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
