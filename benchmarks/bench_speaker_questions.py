"""Questions that name a speaker, over made meetings already indexed by ``sleuth eval recordings``.

    nice -n 10 .venv/bin/python benchmarks/bench_speaker_questions.py --data REC --library OUT/library [--json F]

For every meeting of ``REC/manifest.json`` and every speaker in its truth: up to three words the
speaker says that another speaker says too (so the word alone does not tell who), each asked as
"what did the <speaker> say about <word>?" (the speaker as the truth names them, lower case).
Segment search within that recording, top 5. A returned segment is right when it overlaps a true
turn of that speaker containing the word. Reported: hit@1, hit@5 (a right segment first / among
the five) and precision@5 (the share of the five that are right), means over questions x100.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

K = 5
STOP = frozenset("that this with have about there their would which could should think those these really maybe "
                 "because going actually something".split())


def questions(truth: dict, per_speaker: int = 3) -> list[tuple[str, list[tuple[float, float]]]]:
    """(question, gold spans) for a meeting's truth, chosen by word counts alone."""
    words_by: dict[str, Counter] = defaultdict(Counter)
    for t in truth["turns"]:
        for w in set(re.findall(r"[a-z]{6,}", t["text"].lower())) - STOP:
            words_by[t["speaker"]][w] += 1
    out = []
    for who, cnt in sorted(words_by.items()):
        ranked = sorted(cnt, key=lambda w: (-cnt[w], w))  # ties by the word: the same questions every run
        shared = [w for w in ranked if any(w in words_by[o] for o in words_by if o != who)][:per_speaker]
        for w in shared:
            gold = [(t["start"], t["end"]) for t in truth["turns"] if t["speaker"] == who and w in t["text"].lower()]
            out.append((f"what did the {who.lower()} say about {w}?", gold))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="what benchmarks/make_recordings.py wrote")
    ap.add_argument("--library", required=True, help="the library sleuth eval recordings indexed them into")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    from sleuth import Library

    data = Path(a.data)
    items = [it for it in json.loads((data / "manifest.json").read_text())["items"] if it["kind"] == "meeting"]
    rows = []
    with Library(a.library) as lib:
        for it in items:
            truth = json.loads((data / it["truth"]).read_text())
            for q, gold in questions(truth):
                hits = lib.search(q, level="segment", within=Path(it["mp4"]).name, k=K)
                ok = [any(h["locator"]["t_start"] < e and s < h["locator"]["t_end"] for s, e in gold) for h in hits]
                rows.append({"meeting": it["name"], "question": q, "right": ok})
    n = len(rows) or 1
    out = {"questions": len(rows), "hit@1": round(100 * sum(bool(r["right"][:1] and r["right"][0]) for r in rows) / n, 1),
           f"hit@{K}": round(100 * sum(any(r["right"]) for r in rows) / n, 1),
           f"precision@{K}": round(100 * sum(sum(r["right"]) / K for r in rows) / n, 1)}
    print(json.dumps(out))
    if a.json:
        Path(a.json).write_text(json.dumps(out | {"rows": rows}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
