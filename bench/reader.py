"""What a reader sees, per chapter page of the built book (_build/html), measured in headless Chromium: the share of
the page's height taken by visible code (a folded cell shows only its "show code" bar, measured apart as
"toggles"), the widest visible code line, the progress-bar lines left in outputs, whether the page opens with what
it teaches and ends with a summary and exercises, and the time it takes to read: its visible prose at 180 words a
minute, 2.5 s per visible code line, 45 s per figure (the estimate of issue 32). Goals: code <= 30% of the height,
lines <= 88 characters, no progress lines, every part present, at most 30 minutes to read. Prints a table and
writes JSON; the front page's reading path reads its minutes from the JSON.

    .venv/bin/python bench/reader.py [--out bench/results/reader.json] [--only 06_transformer ...] [--html DIR]
"""
from __future__ import annotations

import argparse
import datetime
import functools
import http.server
import json
import re
import threading
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CODE_SHARE, WIDTH, MINUTES = 0.30, 88, 30
WORDS_PER_MINUTE, SECONDS_PER_CODE_LINE, SECONDS_PER_FIGURE = 180, 2.5, 45
PROGRESS = re.compile(r"\[[#.]{20}\] \d+/\d+")

MEASURE = """() => {
  const main = document.querySelector("article.bd-article");
  // a closed toggle's content keeps its layout box in Chromium but is not shown: skip it
  // (a closed toggle's own summary is shown)
  const shown = e => {
    for (let d = e.closest("details"); d; d = d.parentElement && d.parentElement.closest("details"))
      if (!d.open && !(e.tagName === "SUMMARY" && e.parentElement === d)) return false;
    return e.getClientRects().length > 0;
  };
  const height = e => e.getBoundingClientRect().height;
  const inputs = [...main.querySelectorAll("div.cell div.cell_input")].filter(shown);
  // a folded cell shows only its "Show code cell source" bar: measured apart
  const toggles = [...main.querySelectorAll("details > summary")].filter(e => !e.parentElement.open && shown(e));
  const sum = els => els.reduce((h, e) => h + height(e), 0);
  const code = sum(inputs), bars = sum(toggles);
  const lines = inputs.flatMap(e => e.innerText.split("\\n"));
  const outputs = [...main.querySelectorAll("div.cell_output")].filter(shown).map(e => e.innerText);
  const heads = [...main.querySelectorAll("h1, h2, h3")].map(h => h.innerText.replace(/[#¶]/g, "").trim());
  // the prose a reader reads: the article's text outside code cells and outputs, as shown
  const prose = [...main.querySelectorAll("p, li, h1, h2, h3, td, th, dt, dd")]
    .filter(e => shown(e) && !e.closest("div.cell") && !e.querySelector("p, li"))
    .map(e => e.innerText).join(" ");
  const figures = [...main.querySelectorAll("img")].filter(shown).length;
  return {height: height(main), code, bars, lines, outputs, heads, inputs: inputs.length, toggles: toggles.length,
          words: (prose.match(/[A-Za-z0-9][\\w'’-]*/g) || []).length, figures,
          first: [...main.querySelectorAll("section p")].slice(0, 4).map(p => p.innerText).join(" ")};
}"""


def chapters() -> list[str]:
    "The numbered chapters of _toc.yml (not the toolbox, not the back matter)."
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] if part.get("numbered") for c in part["chapters"]]


def serve(folder: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):   # one line per request would bury the table
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def measure(page, url: str) -> dict:
    response = page.goto(url, wait_until="networkidle")
    if response is None or not response.ok:
        raise SystemExit(f"{url}: not in the build (run `make book` first)")
    m = page.evaluate(MEASURE)
    heads = [h.lower() for h in m["heads"]]
    page_height = max(m["height"], 1)
    code_lines = sum(1 for line in m["lines"] if line.strip())
    minutes = (m["words"] / WORDS_PER_MINUTE + code_lines * SECONDS_PER_CODE_LINE / 60
               + m["figures"] * SECONDS_PER_FIGURE / 60)
    return dict(code_share=round(m["code"] / page_height, 3), toggle_share=round(m["bars"] / page_height, 3),
                words=m["words"], code_lines=code_lines, figures=m["figures"], reading_minutes=round(minutes, 1),
                code_cells=m["inputs"], folded_cells=m["toggles"],
                widest_line=max((len(line.rstrip()) for line in m["lines"]), default=0),
                progress_lines=sum(len(PROGRESS.findall(o)) for o in m["outputs"]),
                learn="in this chapter you will learn" in m["first"].lower(),
                summary=any("summary" in h for h in heads), exercises=any("exercises" in h for h in heads))


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench/results/reader.json"))
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--html", default=str(HTML), help="the built book (default: _build/html)")
    args = ap.parse_args()
    docs = [d for d in chapters() if not args.only or Path(d).name in args.only]
    server = serve(Path(args.html))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        browser_version = browser.version
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for doc in docs:
            r = dict(page=Path(doc).name, **measure(page, f"{base}/{doc}.html"))
            r["ok"] = (r["code_share"] <= CODE_SHARE and r["widest_line"] <= WIDTH and r["progress_lines"] == 0
                       and r["learn"] and r["summary"] and r["exercises"] and r["reading_minutes"] <= MINUTES)
            rows.append(r)
        browser.close()
    server.shutdown()
    print(f"{'page':<22} {'code':>6} {'toggles':>7} {'widest':>6} {'progress':>8} {'learn':>5} {'summary':>7} "
          f"{'exercises':>9} {'minutes':>7}")
    for r in rows:
        print(f"{r['page']:<22} {r['code_share']:6.0%} {r['toggle_share']:7.0%} {r['widest_line']:6d} "
              f"{r['progress_lines']:8d} "
              f"{'yes' if r['learn'] else 'NO':>5} {'yes' if r['summary'] else 'NO':>7} "
              f"{'yes' if r['exercises'] else 'NO':>9} {r['reading_minutes']:7.1f}")
    print(f"goals (code <= {CODE_SHARE:.0%}, lines <= {WIDTH}, no progress lines, all parts, at most {MINUTES} "
          f"minutes to read): {sum(r['ok'] for r in rows)} of {len(rows)} pages meet them")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    source = dict(command="bench/reader.py", date=when, chromium=browser_version)
    goals = dict(code_share=CODE_SHARE, widest_line=WIDTH, reading_minutes=MINUTES,
                 reading=dict(words_per_minute=WORDS_PER_MINUTE, seconds_per_code_line=SECONDS_PER_CODE_LINE,
                              seconds_per_figure=SECONDS_PER_FIGURE))
    out.write_text(json.dumps(dict(benchmark="reader", goals=goals, source=source,
                                   rows=rows, all_met=all(r["ok"] for r in rows)), indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
