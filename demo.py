"""The README's demo: generate a sample corpus, index it, search it, ask it questions."""

from __future__ import annotations

import json
import time
from pathlib import Path

DEMO_QUESTIONS = [
    "When was the Halvorsen tidal barrage commissioned and what did it cost?",
    "Compare the output of the north turbine hall and the south turbine hall.",
    "What did the harbour master say about the spring storm?",
]


def run_demo(workdir: Path, *, as_json: bool = False, console=None) -> int:
    from .library import Library
    from .samples import make_demo_corpus

    workdir = Path(workdir)
    corpus = workdir / "corpus"
    files = make_demo_corpus(corpus)
    lib = Library(workdir / ".sleuth")
    t0 = time.perf_counter()
    report = lib.add([corpus])
    out = {"corpus": [str(f) for f in files], "index": report.to_dict()["counts"],
           "index_seconds": round(time.perf_counter() - t0, 2), "search": [], "answers": []}
    say = (lambda *a, **k: None) if as_json or console is None else console.print
    say(f"[bold]indexed[/] {len(files)} files in {out['index_seconds']}s: {out['index']}")
    for r in report.failed:
        say(f"[red]failed:[/] {r.reason}")
    hits = lib.search("tidal barrage cost", k=3)
    out["search"] = hits
    say("\n[bold]search:[/] tidal barrage cost")
    for h in hits:
        say(f"  {h['label']}  [dim]{h['snippet'][:100]}[/]", highlight=False)
    for q in DEMO_QUESTIONS:
        ans = lib.ask(q)
        out["answers"].append(ans.to_dict())
        say(f"\n[bold]Q:[/] {q}")
        say(ans.render(), highlight=False)
    if as_json:
        print(json.dumps(out, ensure_ascii=False, indent=2, default=str))
    lib.close()
    return 1 if report.failed else 0
