"""Indexing speed of the video reader, as a multiple of real time.

    .venv/bin/python benchmarks/bench_video.py [--minutes 10] [--asr-minutes 2] [--threads 2]

1. Generates (once, cached under --work) a lecture-like video: slides changing every ~30 s,
   espeak-ng speech, a matching .srt (samples.video.make_talk_video).
2. Subtitle path: read_video on the full video with its .srt: seconds of video per second of
   indexing (target >= 10x real time on 2 cores), with OCR on and off.
3. Speech-recognition path, reported separately: read_video(asr="whisper") on a cut of
   --asr-minutes of the same video without subtitles, extrapolated to the full length, plus the
   word error rate of the recognised text against the generated .srt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _cut(src: Path, dst: Path, seconds: float) -> None:
    """Copy the first ``seconds`` of a file with PyAV (stream copy, no re-encode)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        vout = out.add_stream_from_template(vin)
        aout = out.add_stream_from_template(ain)
        for pkt in inp.demux(vin, ain):
            if pkt.dts is None:
                continue
            if pkt.pts is not None and float(pkt.pts * pkt.time_base) > seconds:
                continue
            pkt.stream = vout if pkt.stream.type == "video" else aout
            out.mux(pkt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--asr-minutes", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for decoding/OCR/ASR")
    ap.add_argument("--work", default=os.path.join(os.path.expanduser("~"), ".cache", "sleuth", "bench_video"))
    ap.add_argument("--skip-asr", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    from sleuth.eval.metrics import wer
    from sleuth.eval.metrics import wer_words as _norm
    from sleuth.readers.video import read_video
    from sleuth.samples.video import make_talk_video
    from sleuth.readers.video.subtitles import load_subtitles

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    video = work / f"talk_{args.minutes:g}min.mp4"
    if not (video.is_file() and video.with_suffix(".srt").is_file()):
        t = time.perf_counter()
        make_talk_video(video, minutes=args.minutes)
        print(f"generated {video} in {time.perf_counter() - t:.0f} s", file=sys.stderr)

    results = {"cpu_count": os.cpu_count(), "video": str(video), "load_avg_1m": os.getloadavg()[0]}
    for ocr in (True, False):
        t = time.perf_counter()
        tree = read_video(video, ocr=ocr)
        dt = time.perf_counter() - t
        dur = tree.root.meta["duration"]
        key = "subtitles_ocr" if ocr else "subtitles_no_ocr"
        results[key] = {
            "video_s": round(dur, 1), "index_s": round(dt, 2), "x_realtime": round(dur / dt, 1),
            "scenes": len(tree.root.children), "segments": sum(len(s.children) for s in tree.root.children),
            "ocr_frames": tree.root.meta["n_ocr_frames"], "entities": len(tree.entities),
            "assets_kb": round(sum(map(len, tree.assets.values())) / 1024),
            "transcript_source": tree.root.meta["transcript_source"],
        }
        print(f"[subtitles, ocr={ocr}] {dur:.0f} s of video indexed in {dt:.1f} s = {dur / dt:.1f}x real time", file=sys.stderr)

    # End to end through the library: reading + summaries + embeddings + storage.
    import tempfile

    from sleuth.library import Library

    with tempfile.TemporaryDirectory() as d:
        lib = Library(Path(d) / "lib")
        lib.embedder.encode(["warm up"])
        t = time.perf_counter()
        rep = lib.add([video])
        dt = time.perf_counter() - t
        r = rep.results[0]
        dur = results["subtitles_ocr"]["video_s"]
        results["library_add_subtitles_ocr"] = {"index_s": round(dt, 2), "x_realtime": round(dur / dt, 1),
                                                "status": r.status, "split_s": {k: round(v, 2) for k, v in r.timings.items()}}
        print(f"[library.add, subtitles+ocr] {dur:.0f} s of video in {dt:.1f} s = {dur / dt:.1f}x real time", file=sys.stderr)
        lib.close()

    if not args.skip_asr:
        cut = work / f"talk_cut_{args.asr_minutes:g}min.mp4"  # no .srt beside it: forces ASR
        if not cut.is_file():
            _cut(video, cut, args.asr_minutes * 60)
        from sleuth.readers.video import speech

        t = time.perf_counter()
        speech.whisper_model()  # one-off model load/verify, reported apart
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        tree = read_video(cut, asr="whisper", ocr=True)
        dt = time.perf_counter() - t
        dur = tree.root.meta["duration"]
        ref = _norm(" ".join(l["text"] for l in load_subtitles(video.with_suffix(".srt")) if l["t0"] < dur - 1))
        hyp = _norm(" ".join(l["text"] for n in tree.root.walk() if n.kind == "segment" for l in n.meta["speech"]))
        results["whisper_cut"] = {
            "label": f"ASR path measured on a {dur:.0f} s cut, extrapolated linearly to {args.minutes:g} min",
            "video_s": round(dur, 1), "index_s": round(dt, 2), "x_realtime": round(dur / dt, 2),
            "extrapolated_full_s": round(dt * args.minutes * 60 / dur, 1), "model_load_s": round(load_s, 2),
            "wer_vs_srt": round(wer(ref, hyp), 3), "transcript_source": tree.root.meta["transcript_source"],
        }
        print(f"[whisper, {dur:.0f} s cut] {dt:.1f} s = {dur / dt:.2f}x real time; WER {results['whisper_cut']['wer_vs_srt']}", file=sys.stderr)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
