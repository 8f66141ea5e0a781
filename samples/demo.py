"""The README's demo: generate a sample corpus, index it, search it, ask it questions.

The corpus (PDFs with an outline, a two-column paper, a scanned memo, Markdown, text, HTML and a
short video with subtitles) is generated here, so the demo needs no network and no data files.
Each question has a known answer; the demo prints whether the answer text contains it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


VIDEO_CUES = [
    (1.0, 5.0, "welcome to the marrow bay site tour on the north pier"),
    (5.5, 10.0, "the harbour master told us the spring storm dragged the marker buoy forty metres"),
    (10.5, 15.0, "after the storm the divers reset the buoy on a heavier chain"),
    (15.5, 19.5, "next stop is the control room where the grid meter sits"),
]
VIDEO_TEXT = [(0.5, 9.0, "NORTH PIER SITE TOUR"), (10.0, 19.5, "Kessel Array Control Room")]

VIDEO_FACT = {"question": "What did the harbour master say about the spring storm?",
              "answer": "forty metres", "source": "site_tour.mp4"}
TWO_PART = {"question": "Who chairs the Marrow Bay Energy Trust, and which bird nests on the breakwater lighthouse?",
            "answer": ["Oona Falk", "guillemots"]}


def _srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def make_demo_video(corpus: Path) -> Path:
    from .video import make_text_clip

    path = corpus / "site_tour.mp4"
    if not path.exists():
        make_text_clip(path, texts=VIDEO_TEXT, duration=20.0)
        srt = "\n".join(f"{i}\n{_srt_time(a)} --> {_srt_time(b)}\n{text}\n" for i, (a, b, text) in enumerate(VIDEO_CUES, 1))
        path.with_suffix(".srt").write_text(srt, encoding="utf-8")
    return path


def run_demo(workdir: Path, *, as_json: bool = False, say=None, llm: str | None = None) -> int:
    """Index a generated corpus and answer its questions; ``llm`` (default ``$SLEUTH_LLM`` or ``auto``:
    the embedded local model when installed, else the heuristic planner). ``say(*parts)`` prints plain
    strings verbatim and ``(text, style)`` pairs styled (:func:`sleuth.commands.terminal.say`); answers and
    snippets are never read as markup."""
    from ..library import Library
    from .documents import DEMO_FACTS, make_demo_corpus

    workdir = Path(workdir)
    corpus = workdir / "corpus"
    files = make_demo_corpus(corpus)
    (corpus / "demo_facts.json").unlink(missing_ok=True)  # ground truth stays out of the corpus
    files.append(make_demo_video(corpus))
    lib = Library(workdir / ".sleuth")
    t0 = time.perf_counter()
    report = lib.add([corpus])
    out = {"corpus": [str(f) for f in files], "index": report.to_dict()["counts"],
           "index_seconds": round(time.perf_counter() - t0, 2), "search": [], "answers": []}
    if as_json or say is None:
        say = lambda *a: None  # noqa: E731
    say(("indexed", "bold"), f" {len(files)} files in {out['index_seconds']}s: "
        + ", ".join(f"{v} {k}" for k, v in out["index"].items() if v))
    for r in report.failed:
        say(("failed:", "red"), " ", r.reason)
    say("\n", ("sleuth search", "bold"), ' "marine growth on the blades" --level fine')
    for h in lib.search("marine growth on the blades", level="fine", k=3):
        out["search"].append(h)
        say(f"  {h['label']}  ", (h["snippet"][:110], "dim"))
    questions = [(f["question"], [f["answer"]]) for f in DEMO_FACTS]
    questions += [(VIDEO_FACT["question"], [VIDEO_FACT["answer"]]), (TWO_PART["question"], TWO_PART["answer"])]
    from ..agent.llm import make_llm

    llm = llm or os.environ.get("SLEUTH_LLM", "auto")
    backend = make_llm(llm) if llm != "none" else None  # loaded once for every question
    out["llm"] = getattr(backend, "name", "none (heuristic planner)")
    threads = getattr(backend, "threads", None)
    out["llm_threads"] = threads
    say("\n", ("answering with", "bold"), f" {out['llm']}"
        + (f" on {threads} of {os.cpu_count()} cores (the ones other processes left free)" if threads else ""))
    found = 0
    for q, expected in questions:
        t_q = time.perf_counter()
        # a demo question reads for 25 s (the evidence the model can take in that time at its
        # measured speed), not `sleuth ask`'s 60: a first look should answer within ~30 s
        ans = lib.ask(q, llm=backend if backend is not None else "none", budget={"seconds": 300}, answer_seconds=25)
        ok = all(e.lower() in ans.text.lower() for e in expected)
        found += ok
        out["answers"].append({"question": q, "expected": expected, "found": ok, "answer": ans.to_dict()})
        say("\n", ("Q:", "bold"), f" {q}")
        say(ans.render())
        say((f"expected {' + '.join(expected)}: {'found' if ok else 'not found'}", "green" if ok else "red"),
            (f" ({time.perf_counter() - t_q:.1f} s)", "dim"))
    out["found"] = f"{found}/{len(questions)}"
    say("\n", (f"{found}/{len(questions)}", "bold"), " answers contain the known fact.")
    if as_json:
        print(json.dumps(out, ensure_ascii=False, indent=2, default=str))
    lib.close()
    return 1 if report.failed else 0
