"""Peak memory of sleuth on large and hostile inputs, one fresh process per case.

    python benchmarks/bench_memory.py --workdir /tmp/bench_memory [--cases text5mb,page14400,...]

Cases (inputs are generated under --workdir; the text is real: LongBench and LongBench v2
contexts from ../shared/data, repeated to size):

- ``floor``: import the library and create the embedding session (what every index run costs)
- ``floor_cold``: the same with an empty model cache: the first run on a machine prepares the
  embedding model once (index/embed_model.py) and keeps it under $SLEUTH_CACHE
- ``text5mb``, ``text5mb_lines``, ``text5mb_cjkname``, ``text5mb_zh``, ``text5mb_oneline``:
  ``sleuth index`` of a 5 MB plain-text file of each shape (TEXT_SHAPES)
- ``page14400``: ``sleuth index`` of an image-only PDF whose one page is 14,400 x 14,400 pt (the
  PDF maximum), which OCR has to render
- ``show14400``: ``sleuth show NODE --png`` of a node on that page
- ``html50mb``: ``sleuth index`` of a 50 MB page of nested <div>s (refused by the element limit)
- ``pdfbomb``: ``sleuth index`` of a 2 MB PDF whose content stream inflates to 2 GB (refused by
  readers/pdf_guard.py); ``pdfbomb2x``: the same bomb deflated twice (4 KB)

Each case runs in its own process (``sys.executable -c …``) and reports its own peak RSS: the
high-water mark of its own memory map (``VmHWM`` in /proc/self/status; ``ru_maxrss`` where there
is no /proc). ``ru_maxrss`` alone would not do: Linux carries a parent's peak into a child
across exec, so a child of a large process reports the parent's size. Limits checked: text
≤ 300 MB; the 14,400 pt page (index and show) and the bombs ≤ 1 GB. Timings are wall-clock and
noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SLEUTH_SHARED_DATA", HERE.parent / "shared" / "data"))
if not SHARED.exists():
    SHARED = Path("/work/shared/data")
#: the shapes of a 5 MB text (make_text): LongBench multi_news prose; LongBench v2 report text
#: as PDFs extract it (short lines); the same with one Chinese name in it (loads the Chinese
#: word cutter); LongBench Chinese contexts; multi_news as one line with no break at all
TEXT_SHAPES = {"text5mb": "news", "text5mb_lines": "lines", "text5mb_cjkname": "cjkname", "text5mb_zh": "zh",
               "text5mb_oneline": "oneline"}
LIMITS_MB = {**{case: 300 for case in TEXT_SHAPES}, "page14400": 1024, "show14400": 1024, "pdfbomb": 1024, "pdfbomb2x": 1024}

# Runs a command in-process (the CLI's main) and prints this process's peak RSS on exit.
_RUNNER = r"""
import atexit, json, resource, sys, time
t0 = time.perf_counter()
def peak_mb():
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def report():
    print("BENCH_MEMORY " + json.dumps({"peak_mb": peak_mb(), "seconds": time.perf_counter() - t0}), file=sys.stderr)
atexit.register(report)
if sys.argv[1] == "floor":
    from sleuth.library import Library
    from sleuth.index.embed import Embedder
    Embedder().encode(["warm up"])
else:
    sys.argv = ["sleuth"] + sys.argv[1:]
    from sleuth.cli import main
    main()
"""


def run_case(args: list[str], env: dict) -> dict:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _RUNNER, *args], capture_output=True, text=True, env=env)
    line = next((l for l in p.stderr.splitlines() if l.startswith("BENCH_MEMORY ")), None)
    out = json.loads(line.split(" ", 1)[1]) if line else {"peak_mb": None}
    out.update(rc=p.returncode, wall=round(time.perf_counter() - t, 1),
               stderr=[l for l in p.stderr.splitlines() if l.startswith(("error:", "warning:"))][:5])
    return out, p.stdout


def _contexts(shape: str):
    """Texts to repeat up to the size, for one shape (see TEXT_SHAPES)."""
    if shape in ("news", "oneline", "zh"):
        names = ["multi_news.jsonl"] if shape != "zh" else ["multifieldqa_zh.jsonl", "passage_retrieval_zh.jsonl"]
        for name in names:
            with open(SHARED / "longbench" / name, encoding="utf-8") as f:
                for line in f:
                    yield json.loads(line)["context"]
    else:
        for f in sorted((SHARED / "longbench_v2" / "md" / "single-document_qa").glob("*_context.txt")):
            yield f.read_text(encoding="utf-8")


def make_text(path: Path, size: int = 5_000_000, shape: str = "news") -> Path:
    """A ``size``-byte UTF-8 text of real words in one of TEXT_SHAPES' shapes."""
    parts, n = [], 0
    contexts = list(_contexts(shape))
    i = 0
    while n < size:
        ctx = contexts[i % len(contexts)]
        if shape == "oneline":
            ctx = " ".join(ctx.split())
        parts.append(ctx)
        n += len(ctx.encode("utf-8")) + 2
        i += 1
    text = (" " if shape == "oneline" else "\n\n").join(parts)
    if shape == "cjkname":
        mid = text.index(". ", len(text) // 2) + 2
        text = text[:mid] + "王小明 said so. " + text[mid:]
    data = text.encode("utf-8")[:size]
    path.write_bytes(data.decode("utf-8", "ignore").encode("utf-8"))
    return path


def make_huge_page(path: Path) -> Path:
    """One image-only page of 14,400 x 14,400 pt: a 2,000 px scan of text at 10 dpi."""
    from PIL import Image, ImageDraw, ImageFont

    from sleuth.samples import find_ttf

    img = Image.new("RGB", (2000, 2000), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(find_ttf(), 40)
    for k in range(30):
        d.text((60, 60 + k * 62), f"Line {k + 1}: the harbour wall was rebuilt with basalt blocks.", fill="black", font=font)
    img.save(path, "PDF", resolution=10.0)  # 2000 px / 10 dpi = 200 in = 14,400 pt
    return path


def make_nested_html(path: Path, size: int = 50_000_000) -> Path:
    n = size // 11
    with open(path, "w") as f:
        f.write("<html><body>")
        f.write("<div>" * n)
        f.write("deep")
        f.write("</div>" * n)
        f.write("</body></html>")
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, default=Path("bench_memory_out"))
    ap.add_argument("--cases", default="floor_cold,floor," + ",".join(TEXT_SHAPES) + ",page14400,show14400,html50mb,pdfbomb,pdfbomb2x")
    ap.add_argument("--json", type=Path, help="write the results here")
    a = ap.parse_args()
    w = a.workdir.resolve()
    w.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cases = a.cases.split(",")
    results = {}
    for case in cases:
        lib = w / f"lib_{case}"
        if case == "floor":
            r, _ = run_case(["floor"], env)
        elif case == "floor_cold":
            import tempfile

            with tempfile.TemporaryDirectory(dir=w) as cold:
                r, _ = run_case(["floor"], {**env, "SLEUTH_CACHE": cold})
        elif case in ("pdfbomb", "pdfbomb2x"):
            from sleuth.samples import make_flate_bomb_pdf

            f = w / f"{case}.pdf"
            if not f.exists():
                make_flate_bomb_pdf(f, 2_000_000_000, layers=2 if case == "pdfbomb2x" else 1)
            r, _ = run_case(["index", str(f), "-L", str(lib), "--force", "--json"], env)
            r["file_kb"] = round(f.stat().st_size / 1024)
        elif case in TEXT_SHAPES:
            f = w / f"{case}.txt"
            if not f.exists():
                make_text(f, shape=TEXT_SHAPES[case])
            r, _ = run_case(["index", str(f), "-L", str(lib), "--force", "--json"], env)
        elif case == "page14400":
            f = w / "page14400.pdf"
            if not f.exists():
                make_huge_page(f)
            r, _ = run_case(["index", str(f), "-L", str(w / "lib_page14400"), "--force", "--json"], env)
        elif case == "show14400":
            hits = subprocess.run([sys.executable, "-m", "sleuth.cli", "search", "harbour basalt", "-L",
                                   str(w / "lib_page14400"), "--json", "-k", "1", "--level", "fine"],
                                  capture_output=True, text=True, env=env)
            try:
                node = json.loads(hits.stdout)[0]["id"]
            except (ValueError, IndexError):
                print("show14400: no node on the page (run page14400 first)", file=sys.stderr)
                continue
            r, _ = run_case(["show", str(node), "-L", str(w / "lib_page14400"), "--png", str(w / "page.png")], env)
            if (w / "page.png").exists():
                from PIL import Image

                r["png_size"] = Image.open(w / "page.png").size
        elif case == "html50mb":
            f = w / "nested50mb.html"
            if not f.exists():
                make_nested_html(f)
            r, _ = run_case(["index", str(f), "-L", str(lib), "--force", "--json"], env)
        else:
            raise SystemExit(f"unknown case {case}")
        if case in LIMITS_MB and r.get("peak_mb"):
            r["limit_mb"] = LIMITS_MB[case]
            r["within"] = r["peak_mb"] <= LIMITS_MB[case]
        results[case] = r
        print(f"{case:16s} peak {r.get('peak_mb') or 0:8.0f} MB  rc {r['rc']}  {r['wall']:7.1f} s"
              + (f"  limit {r['limit_mb']} MB: {'ok' if r['within'] else 'OVER'}" if "limit_mb" in r else "")
              + (f"  png {r['png_size']}" if "png_size" in r else "")
              + (f"  file {r['file_kb']:,} KB" if "file_kb" in r else "")
              + ("  | " + r["stderr"][0] if r["stderr"] else ""), flush=True)
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
