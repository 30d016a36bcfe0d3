"""Where a benchmark ran, as every bench/*.py script records it in its JSON (`import provenance` works because
Python puts the script's folder, bench/, on sys.path)."""
from __future__ import annotations

import datetime
import os
import platform
import sys

import torch


def provenance(script: str, **versions) -> dict:
    """The run's `command` (this process's arguments), `date`, `machine`, `torch` and `threads`, any other
    `versions` (triton="3.9.0"), and `source`: all of it in one line, for a page to print."""
    today = datetime.date.today().isoformat()
    machine = f"{os.cpu_count()} CPU cores ({platform.machine()})"
    also = "".join(f", {name} {version}" for name, version in versions.items())
    threads = torch.get_num_threads()
    return dict(
        source=f"{script}, run on {today} (torch {torch.__version__}{also}, {threads} threads, {machine})",
        command=" ".join([".venv/bin/python", script, *sys.argv[1:]]), date=today, machine=machine,
        torch=torch.__version__, threads=threads, **versions)
