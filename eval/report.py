"""Reports: per-item JSON lines, a Markdown table (method × budget) and a PNG plot.

A retrieval-mode record is one (task, item, method, budget) with at least ``task``, ``id``,
``method``, ``budget`` and ``recall`` (None for an item that cannot be scored; such records are
left out of means and counted apart). End-to-end records carry ``task``, ``id``, ``score``.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

# Order methods are shown in: the system first, then the baselines.
METHOD_ORDER = ("agent", "search", "bm25", "dense", "head")


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]], append: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Records of a JSON-lines file; a torn last line (an interrupted run) is skipped."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def repair_jsonl(path: str | Path) -> int:
    """Drop torn or unparsable lines (an interrupted write) so appends start on a fresh line;
    returns how many lines were dropped."""
    path = Path(path)
    if not path.exists():
        return 0
    raw = path.read_text(encoding="utf-8")
    lines = raw.splitlines()
    good = []
    for line in lines:
        try:
            json.loads(line)
            good.append(line)
        except json.JSONDecodeError:
            continue
    dropped = sum(1 for line in lines if line.strip()) - len(good)
    if dropped or (raw and not raw.endswith("\n")):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text("".join(g + "\n" for g in good), encoding="utf-8")
        tmp.replace(path)
    return dropped


def _methods(present: Iterable[str]) -> list[str]:
    present = set(present)
    return [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))


def recall_summary(
    records: Iterable[dict[str, Any]], key: str = "recall"
) -> dict[str, dict[str, dict[int, dict[str, float | int]]]]:
    """task → method → budget → {"mean": percent, "n": scored items, "unscored": n}."""
    acc: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    unscored: dict[tuple[str, str, int], int] = defaultdict(int)
    for r in records:
        k = (r["task"], r["method"], int(r["budget"]))
        v = r.get(key)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            unscored[k] += 1
        else:
            acc[k].append(float(v))
    out: dict[str, dict[str, dict[int, dict[str, float | int]]]] = defaultdict(lambda: defaultdict(dict))
    for k in set(acc) | set(unscored):
        vals = acc.get(k, [])
        out[k[0]][k[1]][k[2]] = {
            "mean": round(100 * sum(vals) / len(vals), 2) if vals else float("nan"),
            "n": len(vals),
            "unscored": unscored.get(k, 0),
        }
    return {t: dict(m) for t, m in out.items()}


def markdown_table(
    records: Sequence[dict[str, Any]], key: str = "recall", title: str | None = None
) -> str:
    """One Markdown table per task: rows are methods, columns budgets, cells mean ``key`` × 100."""
    summary = recall_summary(records, key)
    lines: list[str] = []
    if title:
        lines += [f"### {title}", ""]
    for task in sorted(summary):
        methods = summary[task]
        budgets = sorted({b for m in methods.values() for b in m})
        n = max((c["n"] for m in methods.values() for c in m.values()), default=0)
        lines.append(f"**{task}** — {key} × 100, n = {n} items")
        lines.append("")
        lines.append("| method | " + " | ".join(f"{b} tok" for b in budgets) + " |")
        lines.append("|---|" + "---:|" * len(budgets))
        for m in _methods(methods):
            cells = []
            for b in budgets:
                c = methods[m].get(b)
                cells.append("—" if c is None or math.isnan(c["mean"]) else f"{c['mean']:.1f}")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_recall(records: Sequence[dict[str, Any]], path: str | Path, key: str = "recall") -> Path:
    """PNG: mean ``key`` against token budget, one line per method, one panel per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = recall_summary(records, key)
    tasks = sorted(summary)
    if not tasks:
        raise ValueError(f"{path}: no records to plot")
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for m in _methods(summary[task]):
            pts = sorted((b, c["mean"]) for b, c in summary[task][m].items() if not math.isnan(c["mean"]))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=m)
        ax.set_xscale("log", base=2)
        budgets = sorted({b for m in summary[task].values() for b in m})
        ax.set_xticks(budgets)
        ax.set_xticklabels([str(b) for b in budgets])
        ax.minorticks_off()
        ax.set_title(task)
        ax.set_xlabel("token budget")
        ax.set_ylabel(f"{key} (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def e2e_summary(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, float | int]]:
    """task → {"score": 100 × mean item score, "n"} (LongBench eval.py's averaging)."""
    acc: dict[str, list[float]] = defaultdict(list)
    for r in records:
        acc[r["task"]].append(float(r["score"]))
    return {t: {"score": round(100 * sum(v) / len(v), 2), "n": len(v)} for t, v in acc.items()}


def write_reports(records: Sequence[dict[str, Any]], out: str | Path, stem: str = "retrieval") -> dict[str, Path]:
    """``<stem>.md`` (tables for recall and, where present, pick_score) and ``<stem>.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = [markdown_table(records, "recall", "Evidence recall")]
    if any(r.get("pick_score") is not None for r in records):
        md.append(markdown_table([r for r in records if "pick_score" in r], "pick_score", "Paragraph pick (official retrieval score)"))
    md_path = out / f"{stem}.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    png = plot_recall(records, out / f"{stem}.png")
    return {"markdown": md_path, "plot": png}
