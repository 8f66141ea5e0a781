"""How well the PDF reader reads real PDFs, measured against poppler's ``pdftotext`` (a benchmark,
not a test).

    PYTHONPATH=.. .venv/bin/python benchmarks/bench_reader.py \
        [--docs ../shared/data/mmlongbench_doc_dev/documents] [--out docs/results/bench_reader.json]

Per document and in total:

- **vocabulary recall** of each text-layer page: the share of the distinct words ``pdftotext``
  finds on the page (lower-cased, at least two characters with a letter) that the reader's nodes
  on that page also hold. Pages where ``pdftotext`` finds fewer than 10 such words are not text
  pages. Running headers and footers, which the reader leaves out by design, are left out of the
  reference too (lines recurring on 30% of the pages). Beside it, the same recall over only the
  reference's English words (in ``wordsegment``'s lexicon): where ``pdftotext`` itself breaks
  words apart (letter-spaced display type), its fragments are no reference. And the same recall
  where such fragments count as found: a reference token that is not an English word (not among
  the judge's 60,000 common words) but lies inside a longer word the reader has on the same page
  ("californ" and "ia" of a rotated "California" that ``pdftotext`` cut in two); a missing token
  that is an English word always counts as missing. Pages the reader OCR'd because their text
  layer is garbled are counted apart: there
  ``pdftotext`` reads the same garbled layer and is no reference.
- **against two references**: the same recall against MuPDF's text (PyMuPDF, an optional second
  extractor independent of both poppler and the PDFium the reader is built on: ``pip install
  'sleuth[bench]'``), and the pages below 0.7 against *both*: where the two references disagree
  (``pdftotext`` cuts rotated or curved display type into fragments that MuPDF reads whole, and
  the other way round), the reader needs to agree with one. MuPDF counts only where it reads at
  least half as many distinct words on the page as ``pdftotext``, so a reference that lost the
  page's text cannot vouch for a reader that lost it too. Without PyMuPDF this column is empty.
- **junk characters**: control characters (other than newline and tab), private-use, unassigned
  and replacement characters as a share of all characters of the indexed nodes; control
  characters are also counted on their own.
- **run-together OCR tokens** on pages the reader OCR'd: the share of word tokens that are not
  English words but split into two or more (judged with ``wordsegment``'s Google-trillion-word
  unigrams, a lexicon other than the one the reader splits with).
- **pages/s** of the reader, beside ``pdftotext``'s own speed in the same process, and pages per
  CPU second (all the reader's threads: comparable between runs on a machine doing other work).
  ``--figures`` reads figure images too (``ocr="figures"``), for the cost of it.

The reference needs poppler-utils (``apt-get install poppler-utils``); without it the benchmark
says so and stops.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

from sleuth.readers.pdf import read_pdf

import os

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not _SHARED.exists():
    _SHARED = Path(os.environ.get("SLEUTH_SHARED_DATA", "/work/shared/data"))
DOCS = _SHARED / "mmlongbench_doc_dev" / "documents"
MIN_REF_WORDS = 10
LOW_RECALL = 0.7
#: judge lexicon: this many of wordsegment's most frequent unigrams count as English words
JUDGE_WORDS = 60_000

_WORD = re.compile(r"\w+")


def vocab(text: str) -> set[str]:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(\w)-\n(?=[a-z])", r"\1", text)  # pdftotext keeps line-end hyphens; the reader joins them
    return {w for w in _WORD.findall(text) if len(w) >= 2 and any(c.isalpha() for c in w)}


def pdftotext_pages(path: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=False).stdout
    pages = out.decode("utf-8", "replace").split("\f")
    if pages and not pages[-1].strip():
        pages.pop()
    return pages


def mupdf_pages(path: Path) -> list[str] | None:
    """Each page's text as MuPDF reads it, or None when PyMuPDF is not installed."""
    try:
        import pymupdf
    except ImportError:
        return None
    with pymupdf.open(str(path)) as doc:
        return [page.get_text() for page in doc]


def drop_running_lines(pages: list[str]) -> list[str]:
    """The reference without running headers and footers, which the reader leaves out by design:
    lines (digits ignored) that recur on at least 30% of the pages of a document of 3+ pages."""
    if len(pages) < 3:
        return pages
    norm = [[re.sub(r"\d+", "#", " ".join(ln.lower().split())) for ln in p.splitlines()] for p in pages]
    seen: dict[str, int] = {}
    for lines in norm:
        for key in set(lines):
            if key:
                seen[key] = seen.get(key, 0) + 1
    need = max(2, int(0.3 * len(pages) + 0.5))
    out = []
    for p, lines in zip(pages, norm):
        out.append("\n".join(ln for ln, key in zip(p.splitlines(), lines) if seen.get(key, 0) < need))
    return out


def node_texts_by_page(tree) -> dict[int, list[str]]:
    by: dict[int, list[str]] = {}
    for n in tree.root.walk():
        if n.page is None or n.kind == "document":
            continue
        t = n.title if n.kind == "section" else (n.title + "\n" + n.text if n.title else n.text)
        if n.kind == "section" and n.meta.get("synthetic"):
            continue
        by.setdefault(n.page, []).append(t)
    return by


def junk_counts(texts: list[str]) -> tuple[int, int, int]:
    total = junk = control = 0
    for t in texts:
        for ch in t:
            total += 1
            cat = unicodedata.category(ch)
            if cat == "Cc" and ch not in "\n\t":
                junk += 1
                control += 1
            elif cat in ("Co", "Cn", "Cs") or ch == "\ufffd":
                junk += 1
    return total, junk, control


class Judge:
    def __init__(self) -> None:
        import wordsegment

        wordsegment.load()
        self.ws = wordsegment
        top = sorted(wordsegment.UNIGRAMS.items(), key=lambda kv: -kv[1])[:JUDGE_WORDS]
        self.words = {w for w, _ in top}
        self.top = {w for w, _ in top[:1000]}
        self.lexicon = set(wordsegment.UNIGRAMS)

    def fragment(self, token: str, have: set[str]) -> bool:
        """A piece of a word the reference broke apart: no common English word itself, but inside
        a longer word of ``have``."""
        return token not in self.words and any(len(h) > len(token) and token in h for h in have)

    def run_together(self, token: str) -> bool:
        """Not an English word, but English words run together: every part among the common
        words, one of four letters or more, and any part of one or two letters among the 1,000
        most common ("of", "in", "a"), so OCR noise ("Snges" -> "sn ges") is not counted."""
        w = token.lower()
        if len(w) < 5 or w in self.words:
            return False
        parts = self.ws.segment(w)
        return (len(parts) >= 2 and all(p in self.words for p in parts) and any(len(p) >= 4 for p in parts)
                and all(len(p) >= 3 or (p in self.top and (len(p) == 2 or p in ("a", "i"))) for p in parts))


def read_doc(path: Path, figures: bool = False) -> dict:
    """What the reader makes of one PDF: node texts by page, OCR'd and garbled pages, seconds
    (wall clock, and CPU seconds of all the process's threads: the work, whatever else runs)."""
    t, c = time.perf_counter(), time.process_time()
    tree = read_pdf(path, ocr="figures" if figures else "auto")
    t_read, c_read = time.perf_counter() - t, time.process_time() - c
    texts = [n.text for n in tree.root.walk()] + [n.title for n in tree.root.walk()]
    return {
        "pages": tree.root.meta["pages"],
        "by_page": {str(k): v for k, v in node_texts_by_page(tree).items()},
        "ocr_pages": sorted(tree.root.meta.get("ocr_pages") or []),
        "garbled": tree.root.meta.get("garbled_pages") or {},
        "junk": junk_counts(texts),
        "read_s": t_read,
        "read_cpu_s": c_read,
        "figure_nodes_ocr": sum(1 for n in tree.root.walk() if n.meta.get("figure_ocr")),
    }


def bench_doc(path: Path, judge: Judge, got: dict, running_heads: bool = False) -> dict:
    t = time.perf_counter()
    ref = pdftotext_pages(path)
    if not running_heads:
        ref = drop_running_lines(ref)
    t_ref = time.perf_counter() - t
    second = mupdf_pages(path)
    if second is not None and not running_heads:
        second = drop_running_lines(second)
    n_pages = got["pages"]
    t_read = got["read_s"]
    ocr_pages = set(got["ocr_pages"])
    garbled = {int(k) for k in got["garbled"]}
    by_page = {int(k): v for k, v in got["by_page"].items()}
    recalls: dict[int, float] = {}
    lex_recalls: dict[int, float] = {}
    frag_recalls: dict[int, float] = {}
    both_recalls: dict[int, float] = {}
    garbled_recall: dict[int, float] = {}
    for i, ref_text in enumerate(ref, start=1):
        rv = vocab(ref_text)
        if len(rv) < MIN_REF_WORDS:
            continue
        have = vocab("\n".join(by_page.get(i, [])))
        r = len(rv & have) / len(rv)
        if i in garbled:
            garbled_recall[i] = r
        elif i not in ocr_pages:
            recalls[i] = r
            lv = {w for w in rv if w in judge.lexicon}
            lex_recalls[i] = len(lv & have) / len(lv) if lv else 1.0
            frag_recalls[i] = r + sum(1 for w in rv - have if judge.fragment(w, have)) / len(rv)
            if second is not None:
                mv = vocab(second[i - 1]) if i - 1 < len(second) else set()
                both_recalls[i] = max(r, len(mv & have) / len(mv)) if len(mv) >= max(MIN_REF_WORDS, len(rv) / 2) else r
    total, junk, control = got["junk"]
    ocr_tokens = glued = 0
    examples: list[str] = []
    image_only = ocr_pages - garbled
    for p in image_only:
        for t in by_page.get(p, []):
            for tok in re.findall(r"[A-Za-z]+", t):
                if len(tok) < 2:
                    continue
                ocr_tokens += 1
                if judge.run_together(tok):
                    glued += 1
                    if len(examples) < 8:
                        examples.append(tok)
    low = sorted(p for p, r in recalls.items() if r < LOW_RECALL)
    low_lex = sorted(p for p, r in lex_recalls.items() if r < LOW_RECALL)
    low_frag = sorted(p for p, r in frag_recalls.items() if r < LOW_RECALL)
    low_both = sorted(p for p, r in both_recalls.items() if r < LOW_RECALL) if second is not None else None
    return {
        "doc": path.name,
        "pages": n_pages,
        "text_pages": len(recalls),
        "ocr_pages": len(ocr_pages),
        "garbled_pages": sorted(garbled),
        "recall_mean": round(sum(recalls.values()) / len(recalls), 4) if recalls else None,
        "recall_min": round(min(recalls.values()), 4) if recalls else None,
        "low_recall_pages": low,
        "low_recall_pages_english_words": low_lex,
        "low_recall_pages_reference_fragments_found": low_frag,
        "low_recall_pages_both_references": low_both,
        "garbled_page_recall_vs_pdftotext": {p: round(r, 3) for p, r in sorted(garbled_recall.items())},
        "chars": total,
        "junk_chars": junk,
        "control_chars": control,
        "ocr_tokens": ocr_tokens,
        "run_together_tokens": glued,
        "run_together_examples": examples,
        "read_s": round(t_read, 2),
        "read_cpu_s": round(got.get("read_cpu_s", 0.0), 2),
        "figure_nodes_ocr": got.get("figure_nodes_ocr", 0),
        "pdftotext_s": round(t_ref, 2),
        "pages_per_s": round(n_pages / t_read, 2) if t_read else None,
    }


def _n(v, share: int | None = None) -> str:
    if v is None:
        return "–"
    n = v if isinstance(v, int) else len(v)
    return f"{n} ({100 * n / share:.2f}%)" if share else str(n)


def markdown(rows: list[dict], tot: dict) -> str:
    out = ["| document | pages | text pages | recall (mean / min) | pages < 0.7 (all words / English words / fragments found / both references) | OCR'd (garbled) "
           "| junk chars | run-together OCR tokens | pages/s |",
           "|---|---:|---:|---|---|---|---:|---|---:|"]
    for r in rows:
        rec = f"{r['recall_mean']:.3f} / {r['recall_min']:.3f}" if r["recall_mean"] is not None else "–"
        glued = f"{r['run_together_tokens']}/{r['ocr_tokens']}" if r["ocr_tokens"] else "–"
        out.append(f"| {r['doc']} | {r['pages']} | {r['text_pages']} | {rec} | {len(r['low_recall_pages'])} / "
                   f"{len(r['low_recall_pages_english_words'])} / {len(r['low_recall_pages_reference_fragments_found'])} / "
                   f"{_n(r['low_recall_pages_both_references'])} | {r['ocr_pages']} ({len(r['garbled_pages'])}) | "
                   f"{r['junk_chars']} | {glued} | {r['pages_per_s']} |")
    out.append(f"| **total** | {tot['pages']} | {tot['text_pages']} | {tot['recall_mean']} | {tot['low_recall_pages']} "
               f"({100 * (tot['low_recall_share'] or 0):.2f}%) / {tot['low_recall_pages_english_words']} / "
               f"{tot['low_recall_pages_reference_fragments_found']} / {_n(tot['low_recall_pages_both_references'], share=tot['text_pages'])} "
               f"| {tot['ocr_pages']} "
               f"({tot['garbled_pages']}) | {tot['junk_share']:.6f} | {100 * tot['run_together_share_image_only_docs']:.1f}% "
               f"(image-only decks) | {tot['pages_per_s']} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=Path, default=DOCS)
    ap.add_argument("--out", type=Path, default=None, help="write the raw results here (JSON)")
    ap.add_argument("--only", nargs="*", default=None, help="document file names to run (default: all)")
    ap.add_argument("--markdown", type=Path, default=None, help="write a per-document table here")
    ap.add_argument("--with-running-heads", action="store_true", help="keep running heads in the reference")
    ap.add_argument("--dump", type=Path, default=None, help="keep what the reader read here (JSON) ...")
    ap.add_argument("--from-dump", type=Path, default=None, help="... and score it again from there without reading")
    ap.add_argument("--figures", action="store_true", help="read figure images too (ocr='figures')")
    args = ap.parse_args(argv)
    if shutil.which("pdftotext") is None:
        print("bench_reader: the reference is missing: pdftotext (poppler-utils) is not installed; "
              "install it (apt-get install poppler-utils, or scripts/make_env.sh) and run again", file=sys.stderr)
        return 2
    if not args.docs.is_dir():
        print(f"bench_reader: {args.docs}: no such folder of PDFs", file=sys.stderr)
        return 2
    try:
        judge = Judge()
    except ImportError:
        print("bench_reader: wordsegment is not installed (pip install 'sleuth[test]'); it judges run-together OCR tokens",
              file=sys.stderr)
        return 2
    files = sorted(p for p in args.docs.glob("*.pdf") if not args.only or p.name in args.only)
    rows = []
    dump = json.loads(args.from_dump.read_text()) if args.from_dump else {}
    for k, p in enumerate(files, 1):
        if p.name not in dump:
            dump[p.name] = read_doc(p, figures=args.figures)
            if args.dump:
                args.dump.write_text(json.dumps(dump))
        r = bench_doc(p, judge, dump[p.name], args.with_running_heads)
        rows.append(r)
        print(f"[{k}/{len(files)}] {p.name}: {r['pages']} p, recall {r['recall_mean']} (min {r['recall_min']}), "
              f"low {len(r['low_recall_pages'])}/{r['text_pages']}, ocr {r['ocr_pages']}, garbled {len(r['garbled_pages'])}, "
              f"junk {r['junk_chars']}/{r['chars']}, glued {r['run_together_tokens']}/{r['ocr_tokens']}, "
              f"{r['pages_per_s']} p/s", flush=True)
    text_pages = sum(r["text_pages"] for r in rows)
    low = sum(len(r["low_recall_pages"]) for r in rows)
    rec = [r["recall_mean"] * r["text_pages"] for r in rows if r["recall_mean"] is not None]
    image_only_docs = [r for r in rows if r["text_pages"] == 0 and r["ocr_pages"] > 0]
    tot = {
        "documents": len(rows),
        "pages": sum(r["pages"] for r in rows),
        "text_pages": text_pages,
        "low_recall_pages": low,
        "low_recall_share": round(low / text_pages, 4) if text_pages else None,
        "low_recall_pages_english_words": sum(len(r["low_recall_pages_english_words"]) for r in rows),
        "low_recall_pages_reference_fragments_found": sum(len(r["low_recall_pages_reference_fragments_found"]) for r in rows),
        "low_recall_pages_both_references": (sum(len(r["low_recall_pages_both_references"]) for r in rows)
                                             if all(r["low_recall_pages_both_references"] is not None for r in rows) else None),
        "recall_mean": round(sum(rec) / text_pages, 4) if text_pages else None,
        "ocr_pages": sum(r["ocr_pages"] for r in rows),
        "garbled_pages": sum(len(r["garbled_pages"]) for r in rows),
        "chars": sum(r["chars"] for r in rows),
        "junk_share": round(sum(r["junk_chars"] for r in rows) / max(1, sum(r["chars"] for r in rows)), 6),
        "control_chars": sum(r["control_chars"] for r in rows),
        "run_together_share_all_ocr": round(sum(r["run_together_tokens"] for r in rows) / max(1, sum(r["ocr_tokens"] for r in rows)), 4),
        "image_only_docs": len(image_only_docs),
        "run_together_share_image_only_docs": round(
            sum(r["run_together_tokens"] for r in image_only_docs) / max(1, sum(r["ocr_tokens"] for r in image_only_docs)), 4),
        "read_s": round(sum(r["read_s"] for r in rows), 1),
        "read_cpu_s": round(sum(r.get("read_cpu_s", 0.0) for r in rows), 1),
        "figure_nodes_ocr": sum(r.get("figure_nodes_ocr", 0) for r in rows),
        "pdftotext_s": round(sum(r["pdftotext_s"] for r in rows), 1),
    }
    tot["pages_per_s"] = round(tot["pages"] / tot["read_s"], 2) if tot["read_s"] else None
    tot["pages_per_cpu_s"] = round(tot["pages"] / tot["read_cpu_s"], 2) if tot["read_cpu_s"] else None
    tot["pdftotext_pages_per_s"] = round(tot["pages"] / tot["pdftotext_s"], 2) if tot["pdftotext_s"] else None
    print(json.dumps(tot, indent=1))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(rows, tot))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": " ".join(["benchmarks/bench_reader.py"] + (argv or sys.argv[1:])),
                                        "total": tot, "documents": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
