"""The summary of ``sleuth eval recordings``: one JSON object and the same figures as Markdown.

Recall figures are means over queries (×100) pooled across recordings of a kind; comparisons are
paired on the same queries, with a 95% bootstrap interval of the mean difference (resampling
queries). Word error rate is pooled (all errors over all reference words). Speed is the
library's indexing seconds per hour of video and its inverse, x real time; memory is the highest
peak resident set of any one recording's indexing process.
"""

from __future__ import annotations

import statistics
from typing import Any

from .mmlongbench import bootstrap_ci
from .rec_score import BUDGET_S

KS = (1, 5, 10)
BUDGET = f"r@{BUDGET_S}s"


def _pct(xs: list[float]) -> float | None:
    return round(100 * statistics.fmean(xs), 1) if xs else None


def _span_len(sys_rec: dict, k: int = 5) -> float | None:
    spans = sys_rec.get("spans")
    if not spans:
        return None
    top = spans[:k]
    return statistics.fmean(b - a for a, b in top)


def retrieval_table(records: list[dict]) -> dict[str, dict]:
    """Per system: r@1/5/10 and r@300s (×100) over the queries it could be scored on, n, and the
    mean length in seconds of its top-5 items (wide items hit more easily)."""
    by: dict[str, dict[str, list]] = {}
    for rec in records:
        for q in rec.get("queries", []):
            for name, s in q["systems"].items():
                row = by.setdefault(name, {f"r@{k}": [] for k in KS} | {BUDGET: [], "span": []})
                if s.get("r@1") is None:
                    continue
                for k in KS:
                    row[f"r@{k}"].append(s[f"r@{k}"])
                if s.get(BUDGET) is not None:
                    row[BUDGET].append(s[BUDGET])
                ln = _span_len(s)
                if ln is not None:
                    row["span"].append(ln)
    out = {}
    for name, row in sorted(by.items()):
        out[name] = {**{f"r@{k}": _pct(row[f"r@{k}"]) for k in KS}, BUDGET: _pct(row[BUDGET]), "n": len(row["r@1"]),
                     "mean_top5_span_s": round(statistics.fmean(row["span"]), 1) if row["span"] else None}
    return out


def paired(records: list[dict], a: str, b: str, measure: str = "r@5") -> dict | None:
    """Mean ``measure`` of ``a`` minus ``b`` (×100) on the queries both were scored on, with its interval."""
    diffs = []
    for rec in records:
        for q in rec.get("queries", []):
            sa, sb = q["systems"].get(a), q["systems"].get(b)
            if sa and sb and sa.get(measure) is not None and sb.get(measure) is not None:
                diffs.append(100 * (sa[measure] - sb[measure]))
    if not diffs:
        return None
    lo, hi = bootstrap_ci(diffs)
    return {"a": a, "b": b, "measure": measure, "diff": round(statistics.fmean(diffs), 1),
            "ci95": [round(lo, 1), round(hi, 1)], "n": len(diffs)}


def comparisons(records: list[dict], table: dict[str, dict]) -> list[dict]:
    """On r@5 and on r@300s: each sleuth level against the best ASR-window baseline and the best
    truth-window baseline (best on that measure over these records); for lectures, r@5 of the
    video's best level against the PDF's best."""
    def best(prefix: str, suffix: str = "", measure: str = "r@5") -> str | None:
        names = [n for n in table if n.startswith(prefix) and n.endswith(suffix) and table[n].get(measure) is not None]
        return max(names, key=lambda n: table[n][measure], default=None)

    out = []
    for measure in ("r@5", BUDGET):
        for ref in [n for n in (best("baseline_", "_asr", measure), best("baseline_", "_truth", measure)) if n]:
            for level in (n for n in table if n.startswith("sleuth_")):
                c = paired(records, level, ref, measure)
                if c:
                    out.append(c)
    pdf, vid = best("pdf_"), best("sleuth_")
    if pdf and vid:
        c = paired(records, vid, pdf)
        if c:
            out.append(c)
    return out


def summarise(records: list[dict], failed: list[dict] | None = None, answers: dict | None = None) -> dict[str, Any]:
    kinds = sorted({r["kind"] for r in records})
    retrieval, paired_ = {}, {}
    for kind in kinds + (["all"] if len(kinds) > 1 else []):
        recs = [r for r in records if kind == "all" or r["kind"] == kind]
        retrieval[kind] = retrieval_table(recs)
        paired_[kind] = comparisons(recs, retrieval[kind])
    ref = sum(r["asr"]["ref_words"] for r in records)
    errors = sum(r["asr"]["wer"] * r["asr"]["ref_words"] for r in records if r["asr"]["ref_words"])
    hours = sum(r["duration_s"] for r in records) / 3600
    secs = sum(r["index"].get("seconds") or 0 for r in records)
    spk = [r["speakers"] for r in records if r.get("speakers")]
    items = [{"name": r["name"], "kind": r["kind"], "minutes": round(r["duration_s"] / 60, 1),
              "queries": len(r.get("queries", [])),
              "wer": round(100 * r["asr"]["wer"], 2) if r["asr"]["ref_words"] else None, "asr_words": r["asr"]["hyp_words"],
              "transcript_source": r.get("transcript_source"),
              "index_seconds": r["index"].get("seconds"),
              "x_real_time": round(r["duration_s"] / r["index"]["seconds"], 1) if r["index"].get("seconds") else None,
              "peak_rss_mb": r["index"].get("peak_rss_mb"),
              **({"speakers_found": r["speakers"]["speakers_found"], "speakers_true": r["speakers"]["speakers_true"],
                  "boundary_f1": round(100 * r["speakers"]["boundary_f1"], 1),
                  "speaker_purity": None if r["speakers"]["purity"] is None else round(100 * r["speakers"]["purity"], 1)}
                 if r.get("speakers") else {})} for r in records]
    out: dict[str, Any] = {
        "schema": "sleuth.eval.recordings/1",
        "recordings": len(records), "queries": sum(len(r.get("queries", [])) for r in records),
        "hours": round(hours, 2),
        "retrieval": retrieval, "paired": paired_,
        "asr": {"wer": round(100 * errors / ref, 2) if ref else None, "ref_words": ref},
        "speakers": {"boundary_f1": _pct([s["boundary_f1"] for s in spk]),
                     "speaker_purity": _pct([s["purity"] for s in spk if s["purity"] is not None]),
                     "recordings": len(spk)} if spk else None,
        "speed": {"index_seconds": round(secs, 1),
                  "index_s_per_hour": round(secs / hours, 1) if hours else None,
                  "x_real_time": round(hours * 3600 / secs, 1) if secs else None,
                  "peak_rss_mb": max((r["index"].get("peak_rss_mb") or 0 for r in records), default=None)},
        "items": items, "failed": failed or [],
    }
    if answers:
        out["answers"] = answers
    return out


def _cell(v) -> str:
    return "" if v is None else str(v)


def markdown(summary: dict, command: str = "") -> str:
    lines = [f"# Recordings: {summary['recordings']} videos, {summary['hours']} h, {summary['queries']} queries", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    for kind, table in summary["retrieval"].items():
        lines += [f"## Temporal recall ({kind})", "", f"| system | r@1 | r@5 | r@10 | {BUDGET} | n | mean top-5 span s |",
                  "|---|---|---|---|---|---|---|"]
        for name, row in table.items():
            lines.append(f"| {name} | {_cell(row['r@1'])} | {_cell(row['r@5'])} | {_cell(row['r@10'])} | {_cell(row.get(BUDGET))} | "
                         f"{row['n']} | {_cell(row['mean_top5_span_s'])} |")
        if summary["paired"].get(kind):
            lines.append("")
        for c in summary["paired"].get(kind, []):
            lines.append(f"- {c['a']} − {c['b']} ({c['measure']}, {c['n']} queries): {c['diff']:+.1f} "
                         f"[95% CI {c['ci95'][0]:+.1f}, {c['ci95'][1]:+.1f}]")
        lines.append("")
    sp = summary["speed"]
    lines += ["## Speech, speakers, speed", "",
              f"Word error rate (pooled): {_cell(summary['asr']['wer'])}% of {summary['asr']['ref_words']} words. "
              f"Indexing: {_cell(sp['index_s_per_hour'])} s per hour of video ({_cell(sp['x_real_time'])}x real time); "
              f"peak memory {_cell(sp['peak_rss_mb'])} MB.", ""]
    cols = ["name", "kind", "minutes", "queries", "wer", "asr_words", "x_real_time", "peak_rss_mb", "speakers_found", "speakers_true",
            "boundary_f1", "speaker_purity"]
    lines += ["| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    for it in summary["items"]:
        lines.append("| " + " | ".join(_cell(it.get(c)) for c in cols) + " |")
    for kind, ans in (summary.get("answers") or {}).items():
        lines += ["", f"## Answers ({kind})", "", "| system | n | rouge_l | rouge_l_f1 | cited_gold | p50_seconds | errors |",
                  "|---|---|---|---|---|---|---|"]
        for name, row in ans.get("systems", {}).items():
            lines.append(f"| {name} | {row['n']} | {_cell(row['rouge_l'])} | {_cell(row['rouge_l_f1'])} | "
                         f"{_cell(row['cited_gold'])} | {_cell(row['p50_seconds'])} | {row['errors']} |")
        lines += [""] if ans.get("paired") else []
        for c in ans.get("paired", []):
            lines.append(f"- {c['a']} − {c['b']} (ROUGE-L ×100, {c['n']} questions): {c['diff']:+.1f} "
                         f"[95% CI {c['ci95'][0]:+.1f}, {c['ci95'][1]:+.1f}]")
    if summary["failed"]:
        lines += ["", "## Failed", ""] + [f"- {f['name']}: {f['reason']}" for f in summary["failed"]]
    lines += ["", "r@k: share of a query's gold time spans overlapped by at least one of the top k items, "
              "mean over queries ×100 (lectures' pdf_*: share of gold evidence pages among the top k pages). "
              f"{BUDGET}: the same for the items read in rank order until {BUDGET_S} s of video are spent. "
              "baseline_*_asr: 60 s windows of the transcript sleuth recognised; *_truth: of the true transcript "
              "(perfect recognition, the upper bound)."]
    return "\n".join(lines) + "\n"
