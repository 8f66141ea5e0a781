"""OCR cost per image-only PDF page: the fast settings against the stock RapidOCR ones (a benchmark,
not a test).

    .venv/bin/python benchmarks/bench_ocr.py            # 3 dense 30-line pages
    .venv/bin/python benchmarks/bench_ocr.py --pages 5 --font-pt 11

Both modes run in this one process on the same generated scans (samples.make_scanned_pdf), page by
page and alternating, so a busy shared machine slows both alike. CPU seconds (time.process_time,
all threads of the process) are the main figure: wall time on a shared machine says more about
the neighbours than about the code. Each page is also scored against the drawn text (lines read
with similarity >= 0.9), so a speed-up that loses text shows.
"""

from __future__ import annotations

import argparse
import difflib
import json
import tempfile
import time
from pathlib import Path

from sleuth import samples
from sleuth.readers import ocr as ocr_mod
from sleuth.readers import pdf_extract as px

MODES = ("fast", "thorough")


def dense_page(i: int, n_lines: int = 30) -> list[str]:
    """A 30-line page like the ingestion benchmark's, with prose so pages differ."""
    pr = samples.Prose(100 + i)
    lines = [f"Line {k}: the survey of the northern estuary recorded {k * 7 + i} herons." for k in range(0, n_lines, 2)]
    prose = " ".join(pr.sentence() for _ in range(12)).split()
    out, cur = [], []
    for w in prose:
        if len(" ".join(cur + [w])) > 60:
            out.append(" ".join(cur))
            cur = []
        cur.append(w)
    mixed = []
    for a, b in zip(lines, out):
        mixed += [a, b]
    return mixed[:n_lines]


def similar(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()


def read_page(pdf, index: int, mode: str) -> tuple[list, float, float]:
    pd = px.page_data(pdf, index)
    c0, w0 = time.process_time(), time.perf_counter()
    boxes = ocr_mod.ocr_page(lambda s: px.render_page(pdf, index, scale=s), pd.width, pd.height, mode=mode)
    return boxes, time.process_time() - c0, time.perf_counter() - w0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=3)
    ap.add_argument("--font-pt", type=float, default=14.0)
    args = ap.parse_args()
    pages = [dense_page(i) for i in range(args.pages)]
    with tempfile.TemporaryDirectory() as tmp:
        gt = samples.make_scanned_pdf(Path(tmp) / "scan.pdf", pages, font_pt=args.font_pt)
        pdf = px.open_pdf(gt["path"])
        try:
            for mode in MODES:  # load the models (about a second each) outside the timing
                read_page(pdf, 0, mode)
            res = {m: {"cpu_s": 0.0, "wall_s": 0.0, "lines_read": 0} for m in MODES}
            n_lines = 0
            for i, page in enumerate(gt["pages"]):
                truth = [ln["text"] for ln in page["lines"]]
                n_lines += len(truth)
                for mode in MODES if i % 2 == 0 else MODES[::-1]:
                    boxes, cpu, wall = read_page(pdf, i, mode)
                    r = res[mode]
                    r["cpu_s"] += cpu
                    r["wall_s"] += wall
                    r["lines_read"] += sum(max((similar(t, b.text) for b in boxes), default=0.0) >= 0.9 for t in truth)
                    print(json.dumps({"page": i + 1, "mode": mode, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2)}), flush=True)
        finally:
            pdf.close()
    n = len(pages)
    out = {
        "pages": n,
        "font_pt": args.font_pt,
        "lines": n_lines,
        "ocr_threads": ocr_mod._threads(),
        **{
            m: {
                "cpu_s_per_page": round(res[m]["cpu_s"] / n, 2),
                "wall_s_per_page": round(res[m]["wall_s"] / n, 2),
                "lines_read": f"{res[m]['lines_read']}/{n_lines}",
            }
            for m in MODES
        },
        "cpu_ratio_thorough_over_fast": round(res["thorough"]["cpu_s"] / max(res["fast"]["cpu_s"], 1e-9), 2),
        "wall_ratio_thorough_over_fast": round(res["thorough"]["wall_s"] / max(res["fast"]["wall_s"], 1e-9), 2),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
