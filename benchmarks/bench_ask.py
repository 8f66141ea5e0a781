"""Latency of `sleuth ask` without an LLM (the heuristic planner) — a benchmark, not a test.

    .venv/bin/python benchmarks/bench_ask.py                  # 300-page PDF, all its facts
    .venv/bin/python benchmarks/bench_ask.py --pages 60 --keep /tmp/askbench

Corpus: ``sleuth.samples.make_long_pdf`` (a generated logbook with a findable fact about every
10 pages: "Inspection MB-1037 found 12.3 millimetres of marine growth on blade 2."), plus a
Markdown file of distractors when the samples module is missing. Questions: one per fact
("How much marine growth did inspection MB-1037 find?"), and two-part questions joining two
facts. Each question goes through the full agent (graph, parallel tool rounds, extractive
answer) exactly as the CLI runs it. Reported: p50/p95 seconds per question in one process
after one warm-up question (the cold first question is shown apart: it loads the embedding
model; the sentence-vector cache is cleared before every question, as in a fresh process),
rounds and tool calls per question, whether the answer holds the fact and cites its page, and
p50/p95 of whole `sleuth ask` processes (imports and model load included).
Target: p50 <= 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sleuth.agent import ask, extract
from sleuth.library import Library


def _corpus(folder: Path, pages: int) -> tuple[list[Path], list[dict]]:
    try:
        from sleuth.samples import make_long_pdf
    except ImportError:
        make_long_pdf = None
    if make_long_pdf is not None:
        info = make_long_pdf(folder / "logbook.pdf", pages=pages, seed=0)
        return [Path(info["path"])], info["facts"]
    # fallback: a long Markdown logbook with the same kind of facts
    facts, lines = [], ["# Marrow Bay logbook", ""]
    for k in range(1, pages // 10 + 1):
        code, val = f"MB-{1000 + 37 * k}", f"{(k * 7.3) % 50 + 5:.1f}"
        fact = f"Inspection {code} found {val} millimetres of marine growth on blade {k % 3 + 1}."
        lines += [f"## {k} Maintenance week {k}", "", "The crew checked turbines and logged sea state. " * 20, "", fact, ""]
        facts.append({"text": fact, "answer": f"{val} millimetres", "page": None, "section": f"{k} Maintenance week {k}"})
    p = folder / "logbook.md"
    p.write_text("\n".join(lines), encoding="utf-8")
    return [p], facts


def _code(fact: dict) -> str:
    return fact["text"].split("Inspection ", 1)[1].split(" ", 1)[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--keep", type=Path, default=None, help="library folder to reuse between runs")
    ap.add_argument("--pairs", type=int, default=10, help="two-part questions to add")
    ap.add_argument("--json", type=Path, default=None, help="write the results here too")
    ap.add_argument("--cli", type=int, default=5, help="also time this many whole `sleuth ask` processes (0: skip)")
    args = ap.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_ask_"))
    root.mkdir(parents=True, exist_ok=True)
    facts_file = root / "facts.json"
    lib = Library(root / ".sleuth")
    if not lib.sources() or not facts_file.exists():
        files, facts = _corpus(root, args.pages)
        t0 = time.perf_counter()
        rep = lib.add(files)
        print(f"indexed {len(files)} file(s), {args.pages} pages in {time.perf_counter() - t0:.1f} s "
              f"({rep.count('added')} added)", file=sys.stderr)
        facts_file.write_text(json.dumps(facts))
    facts = json.loads(facts_file.read_text())
    st = lib.status()
    print(f"library: {st['kinds']}", file=sys.stderr)

    questions = [{"q": f"How much marine growth did inspection {_code(f)} find?", "facts": [f]} for f in facts]
    for i in range(min(args.pairs, len(facts) // 2)):
        a, b = facts[i], facts[-1 - i]
        questions.append({"q": f"What did inspection {_code(a)} find, and what did inspection {_code(b)} find?",
                          "facts": [a, b]})

    t0 = time.perf_counter()
    ask(lib, "Which vessel movements were logged?")
    cold = time.perf_counter() - t0

    rows = []
    for item in questions:
        # a CLI process answers one question: no sentence vectors carried over from the last one
        extract._VEC_CACHE.clear()
        t0 = time.perf_counter()
        ans = ask(lib, item["q"])
        dt = time.perf_counter() - t0
        found = all(f["answer"] in ans.text for f in item["facts"])
        pages = {c.locator.get("page") for c in ans.citations}
        cited = all(f["page"] is None or f["page"] in pages for f in item["facts"])
        rows.append({"q": item["q"], "seconds": dt, "rounds": ans.cost.rounds, "calls": ans.cost.tool_calls,
                     "found": found, "cited_page": cited, "parts": len(item["facts"])})

    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

    out = {"pages": args.pages, "questions": len(rows), "cold_first_s": round(cold, 3)}
    for label, sel in (("all", rows), ("single", [r for r in rows if r["parts"] == 1]),
                       ("two-part", [r for r in rows if r["parts"] == 2])):
        if not sel:
            continue
        secs = [r["seconds"] for r in sel]
        out[label] = {"n": len(sel), "p50_s": round(statistics.median(secs), 3), "p95_s": round(pct(secs, 95), 3),
                      "max_s": round(max(secs), 3), "mean_rounds": round(statistics.mean(r["rounds"] for r in sel), 2),
                      "mean_calls": round(statistics.mean(r["calls"] for r in sel), 2),
                      "answer_has_fact": round(sum(r["found"] for r in sel) / len(sel), 3),
                      "cites_fact_page": round(sum(r["cited_page"] for r in sel) / len(sel), 3)}
    if args.cli:
        # the whole `sleuth ask` process: interpreter start, imports, model load, one question
        exe = Path(sys.executable).parent / "sleuth"
        cli = [str(exe)] if exe.exists() else [shutil.which("sleuth") or "sleuth"]
        secs = []
        for item in questions[: args.cli]:
            t0 = time.perf_counter()
            r = subprocess.run([*cli, "ask", item["q"], "--library", str(root / ".sleuth"), "--json"],
                               capture_output=True, text=True)
            secs.append(time.perf_counter() - t0)
            if r.returncode != 0:
                print(f"sleuth ask failed: {r.stderr.strip()[-300:]}", file=sys.stderr)
                break
        if secs:
            out["cli_process"] = {"n": len(secs), "p50_s": round(statistics.median(secs), 3),
                                  "p95_s": round(pct(secs, 95), 3)}
    print(json.dumps(out, indent=2))
    p50 = out["all"]["p50_s"]
    print(f"p50 {p50:.3f} s (target <= 1.5 s: {'met' if p50 <= 1.5 else 'MISSED'}), p95 {out['all']['p95_s']:.3f} s")
    if args.json:
        args.json.write_text(json.dumps({"summary": out, "rows": rows}, indent=2))
    lib.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
