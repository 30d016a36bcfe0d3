"""Benchmark: how long each chapter takes to execute, as the book build runs it (a fresh kernel per notebook, in
nbs/, in _toc.yml order), against the budgets: each notebook < 2 minutes, the whole book < 15 minutes. Prints a
table and writes JSON.

    .venv/bin/python bench/notebooks.py [--out bench/results/notebooks.json] [--only 06_transformer ...]
    .venv/bin/python bench/notebooks.py --from-build     # the times of the last book build; prints, writes nothing
    .venv/bin/python bench/notebooks.py --from-build --save   # ... and writes them (the front page reads them)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import nbformat
import torch
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_BUDGET, BOOK_BUDGET = 120.0, 15 * 60.0


def toc_notebooks() -> list[Path]:
    "The notebooks of _toc.yml, in reading order."
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def run(path: Path) -> tuple[float, str | None]:
    "Execute one notebook like the book does; (seconds, the error or None)."
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
        error = None
    except Exception as e:  # a failing chapter is reported in the table, not hidden
        error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return time.perf_counter() - start, error


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench/results/notebooks.json"))
    ap.add_argument("--only", nargs="*", help="notebook names (without .ipynb) to time; default: every chapter")
    ap.add_argument("--save", action="store_true", help="with --from-build: write the build's times to --out")
    ap.add_argument("--from-build", action="store_true", help="report _build/notebook_times.json (written by the "
                    "book build, which executes every notebook once) instead of running the notebooks")
    args = ap.parse_args()
    if args.from_build:
        return report_build(Path(args.out) if args.save else None)
    notebooks = [p for p in toc_notebooks() if not args.only or p.stem in args.only]
    rows = []
    for path in notebooks:
        seconds, error = run(path)
        rows.append(dict(notebook=path.stem, seconds=round(seconds, 1), within_budget=seconds < NOTEBOOK_BUDGET,
                         error=error))
        print(f"{path.stem:<22} {seconds:7.1f} s{'' if seconds < NOTEBOOK_BUDGET else '  OVER 2 MIN'}"
              f"{'  ERROR ' + error if error else ''}", flush=True)
    total = sum(r["seconds"] for r in rows)
    print(f"{'total':<22} {total:7.1f} s = {total / 60:.1f} min (budget {BOOK_BUDGET / 60:.0f} min: "
          f"{'met' if total < BOOK_BUDGET else 'MISSED'}); slowest {max(rows, key=lambda r: r['seconds'])['notebook']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write(out, rows, "bench/notebooks.py (a fresh kernel per notebook)")
    if any(r["error"] for r in rows):
        raise SystemExit("some notebooks failed")


def write(out: Path, rows: list[dict], command: str) -> None:
    "The JSON the front page reads: the rows, the budgets, and where the times were measured."
    import datetime
    total = sum(r["seconds"] for r in rows)
    source = dict(command=command, date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  machine=f"{os.cpu_count()} CPU cores ({platform.machine()})", torch=torch.__version__,
                  threads=torch.get_num_threads())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(
        benchmark="notebooks", rows=rows, total_seconds=round(total, 1), notebook_budget_s=NOTEBOOK_BUDGET,
        book_budget_s=BOOK_BUDGET, all_within_budget=all(r["within_budget"] and not r["error"] for r in rows),
        book_within_budget=total < BOOK_BUDGET, source=source), indent=2) + "\n")
    print(f"wrote {out}")


def report_build(out: Path | None = None) -> None:
    "The seconds each notebook took in the last book build, against the budgets (a report: load can slow them)."
    times = json.loads((ROOT / "_build" / "notebook_times.json").read_text())
    if out is not None:
        rows = [dict(notebook=Path(doc).name, seconds=round(t["seconds"], 1),
                     within_budget=t["seconds"] < NOTEBOOK_BUDGET, error=None) for doc, t in times.items()]
        write(out, rows, "make book (two notebooks at a time, one thread each), then bench/notebooks.py --from-build --save")
    for doc, t in sorted(times.items(), key=lambda kv: -kv[1]["seconds"]):
        print(f"{Path(doc).name:<22} {t['seconds']:7.1f} s{'' if t['seconds'] < NOTEBOOK_BUDGET else '  OVER 2 MIN'}")
    total = sum(t["seconds"] for t in times.values())
    print(f"{'total':<22} {total:7.1f} s = {total / 60:.1f} min in the book build (budget {BOOK_BUDGET / 60:.0f} min)")


if __name__ == "__main__":
    main()
