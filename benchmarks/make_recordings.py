"""Make hour-long recordings with known truth: QMSum meetings as video calls, slide decks as
narrated slide shows (samples/recordings.py), for ``sleuth eval recordings``.

    nice -n 10 .venv/bin/python benchmarks/make_recordings.py meetings --data ../shared/data/qmsum_dev --out /work/recordings
    nice -n 10 .venv/bin/python benchmarks/make_recordings.py lectures --data ../shared/data/mmlongbench_doc_dev --out /work/recordings

Writes ``OUT/meetings/NAME.mp4`` + ``NAME.truth.json`` (or ``OUT/lectures/…``) and rewrites
``OUT/manifest.json`` over everything made so far, of both kinds. Cached and resumable: an item is
skipped when its MP4 and truth exist and its ``NAME.key`` (a hash of the input file, the queries,
the render options, the renderer's version and the TTS engine's) matches; an interrupted item leaves
only hidden ``.part`` files. A failed item prints one line and the others are still made (exit
status 1 then).

Default selection, by rules that know nothing of any meeting or deck:

- meetings: ``DIR/meetings/*.json`` sorted by length (words, then name); evenly spaced picks
  across that order (short to long, so every source and size is represented), as many as it
  takes to reach ``--min-items`` and ``--hours`` of estimated speech.
- lectures: the PDFs of ``DIR/samples_dev.json`` whose pages are mostly landscape (the shape of
  a slide; the benchmark's decks and tutorials), in name order, all of them unless ``--limit``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import time
from pathlib import Path

from tqdm import tqdm

import sleuth.samples.recordings as rec
import sleuth.samples.tts as tts

#: spoken words a minute of a made meeting per engine, pauses included, at --wpm 150. espeak-ng:
#: 134-146 measured on two AMI meetings; the top of that and a little more, since committees' long
#: turns pause less, so the estimate that picks meetings for --hours errs on the long side. flite
#: speaks 11% faster than espeak-ng's voices on the same three stretches (183 against 165 words a
#: minute, pauses included), so its figure is espeak-ng's scaled by that, rounded up
EST_WPM = {"espeak-ng": 150.0, "flite": 170.0}


def _words(meeting: dict) -> int:
    """Words that will be spoken (markup and fillers out): what the length estimate counts."""
    return sum(len(tts.speakable(str(t.get("content", ""))).split()) for t in meeting.get("meeting_transcripts") or [])


def pick_meetings(sizes: dict[str, int], hours: float, min_items: int, wpm: float = EST_WPM["espeak-ng"]) -> list[str]:
    """Evenly spaced picks over the meetings sorted by size, the fewest that reach both targets
    (``sizes`` in spoken words, ``wpm`` the engine's words a minute, :data:`EST_WPM`)."""
    order = sorted(sizes, key=lambda n: (sizes[n], n))
    n = len(order)
    for m in range(min(min_items, n), n + 1):
        idx = sorted({round(j * (n - 1) / (m - 1)) for j in range(m)}) if m > 1 else [n - 1]
        chosen = [order[i] for i in idx]
        if len(chosen) >= min(min_items, n) and sum(sizes[c] for c in chosen) / wpm / 60 >= hours:
            return chosen
    return order


def landscape_share(pdf: Path) -> float | None:
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(pdf))
    except Exception:
        return None
    try:
        sizes = [doc.get_page_size(i) for i in range(len(doc))]
    finally:
        doc.close()
    return sum(1 for w, h in sizes if w > h) / len(sizes) if sizes else None


def safe_name(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "item"


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(source: Path, opts: dict, extra: object = None) -> str:
    """``opts`` names the engine; its version is in the key too (a new synthesiser, new speech)."""
    blob = json.dumps({"input": _sha(source), "opts": opts, "extra": extra, "render": rec.RENDER_VERSION,
                       "tts": tts.engine_version(opts.get("engine"))}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def is_cached(out_dir: Path, name: str, key: str) -> bool:
    files = [out_dir / f"{name}.mp4", out_dir / f"{name}.truth.json", out_dir / f"{name}.key"]
    return all(f.is_file() for f in files) and files[2].read_text().strip() == key


def _jobs(args) -> list[dict]:
    """[{"name", "source", "make": callable(out_dir, progress), "key"}] for the chosen items."""
    data = Path(args.data)
    names = [n.strip() for n in args.names.split(",")] if args.names else None
    opts = {"wpm": args.wpm, "engine": args.engine}
    jobs = []
    if args.kind == "meetings":
        files = {p.stem: p for p in sorted((data / "meetings").glob("*.json"))}
        if names:
            missing = [n for n in names if n not in files]
            if missing:
                raise SystemExit(f"make_recordings: no such meeting in {data / 'meetings'}: {', '.join(missing)}")
            chosen = names
        else:
            sizes = {}
            for stem, p in files.items():
                try:
                    sizes[stem] = _words(json.loads(p.read_text(encoding="utf-8")))
                except (ValueError, OSError):
                    sizes[stem] = 0  # still picked by name order at the short end; its failure is reported
            chosen = pick_meetings(sizes, args.hours, args.min_items, EST_WPM[args.engine] * args.wpm / tts.BASE_WPM)
        for stem in chosen[: args.limit]:
            p = files[stem]

            def make(out_dir, progress, p=p, stem=stem):
                try:
                    meeting = json.loads(p.read_text(encoding="utf-8"))
                except ValueError as e:
                    raise ValueError(f"{p.name}: not JSON ({e})") from None
                return rec.render_meeting(meeting, out_dir, safe_name(stem), source=p.name, jobs=args.jobs,
                                          progress=progress, **opts)

            jobs.append({"name": safe_name(stem), "source": p, "make": make, "key": cache_key(p, opts)})
    else:
        samples = json.loads((data / "samples_dev.json").read_text(encoding="utf-8"))
        docs = sorted({s["doc_id"] for s in samples if s.get("doc_id")})
        if names:
            chosen = [d for d in docs if d in names or Path(d).stem in names]
            missing = [n for n in names if n not in docs and n not in {Path(d).stem for d in docs}]
            if missing:
                raise SystemExit(f"make_recordings: no such document in {data / 'samples_dev.json'}: {', '.join(missing)}")
        else:
            # an unreadable PDF stays in (share None) so its failure is reported, not hidden
            chosen = [d for d in docs if (s := landscape_share(data / "documents" / d)) is None or s >= 0.8]
        for doc in chosen[: args.limit]:
            pdf = data / "documents" / doc
            queries = rec.lecture_queries(samples, doc)

            def make(out_dir, progress, pdf=pdf, queries=queries):
                if not pdf.is_file():
                    raise FileNotFoundError(f"{pdf.name}: file not found")
                return rec.render_lecture(pdf, queries, out_dir, safe_name(pdf.stem), progress=progress, **opts)

            key = cache_key(pdf, opts, queries) if pdf.is_file() else ""
            jobs.append({"name": safe_name(pdf.stem), "source": pdf, "make": make, "key": key})
    return jobs


def write_manifest(out: Path) -> dict:
    """``OUT/manifest.json`` over every complete recording under OUT (both kinds)."""
    items = []
    for kind, sub in (("meeting", "meetings"), ("lecture", "lectures")):
        for truth in sorted((out / sub).glob("*.truth.json")):
            name = truth.name[: -len(".truth.json")]
            mp4 = truth.with_name(f"{name}.mp4")
            if not mp4.is_file():
                continue
            try:
                duration = float(json.loads(truth.read_text(encoding="utf-8"))["duration_s"])
            except (ValueError, KeyError, OSError):
                continue
            items.append({"kind": kind, "name": name, "mp4": f"{sub}/{mp4.name}", "truth": f"{sub}/{truth.name}",
                          "duration_s": duration})
    manifest = {"schema": "sleuth.recordings/1", "items": items}
    rec._write_json(out / "manifest.json", manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["meetings", "lectures"])
    ap.add_argument("--data", required=True, help="qmsum_dev (meetings) or mmlongbench_doc_dev (lectures)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=None, help="at most N items of the selection")
    ap.add_argument("--names", default=None, help="comma-separated meeting or PDF names instead of the default selection")
    ap.add_argument("--hours", type=float, default=10.0, help="meetings: estimated hours the default selection reaches")
    ap.add_argument("--min-items", type=int, default=8, help="meetings: at least this many in the default selection")
    ap.add_argument("--wpm", type=int, default=tts.BASE_WPM, help="base speaking rate of the voices")
    ap.add_argument("--jobs", type=int, default=2, help="TTS processes speaking ahead")
    ap.add_argument("--engine", choices=tts.ENGINES, default=None,
                    help="TTS engine (default: the first of these that is installed)")
    ap.add_argument("--json", default=None, help="write the run's summary here")
    args = ap.parse_args(argv)

    args.engine = args.engine or tts.engine()
    if args.engine is None or not shutil.which(args.engine):
        print(f"make_recordings: {args.engine or 'no TTS engine (flite, espeak-ng)'} is not installed"
              " (scripts/system_deps.sh installs it)", file=sys.stderr)
        return 2
    out = Path(args.out)
    sub = out / args.kind
    sub.mkdir(parents=True, exist_ok=True)
    jobs = _jobs(args)
    t0 = time.perf_counter()
    made, cached, failed, seconds_made = [], [], [], 0.0
    bar = tqdm(jobs, desc=args.kind, unit="item", file=sys.stderr, dynamic_ncols=True)
    for job in bar:
        name = job["name"]
        bar.set_postfix_str(name[:24])
        if job["key"] and is_cached(sub, name, job["key"]):
            cached.append(name)
            continue
        (sub / f"{name}.key").unlink(missing_ok=True)
        for stale in sub.glob(f".{name}.*.part"):  # left by a run that was killed outright
            stale.unlink(missing_ok=True)
        started = time.perf_counter()

        def progress(done: int, total: int, name=name) -> None:
            if done == total or done % 50 == 0:
                bar.set_postfix_str(f"{name[:24]} {done}/{total}")

        try:
            job["make"](sub, progress)
        except Exception as e:  # one line per failed item; the rest are still made
            reason = " ".join(str(e).split()) or type(e).__name__
            tqdm.write(f"make_recordings: FAILED {args.kind[:-1]} {name}: {reason}", file=sys.stderr)
            failed.append({"name": name, "error": reason})
            continue
        (sub / f"{name}.key").write_text(job["key"] + "\n")
        duration = json.loads((sub / f"{name}.truth.json").read_text(encoding="utf-8"))["duration_s"]
        seconds_made += duration
        made.append({"name": name, "duration_s": duration, "wall_s": round(time.perf_counter() - started, 2)})
    wall = time.perf_counter() - t0
    manifest = write_manifest(out)
    mine = [i for i in manifest["items"] if i["kind"] == args.kind[:-1]]
    summary = {
        "kind": args.kind, "made": made, "cached": cached, "failed": failed,
        "hours_made": round(seconds_made / 3600, 3), "wall_s": round(wall, 1),
        "x_real_time": round(seconds_made / wall, 1) if made and wall > 0 else None,
        "items_in_out": len(mine), "hours_in_out": round(sum(i["duration_s"] for i in mine) / 3600, 3),
    }
    print(f"{args.kind}: {len(made)} made ({summary['hours_made']} h in {summary['wall_s']} s"
          + (f", {summary['x_real_time']}x real time" if summary["x_real_time"] else "")
          + f"), {len(cached)} cached, {len(failed)} failed; {len(mine)} in {sub} ({summary['hours_in_out']} h)")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
