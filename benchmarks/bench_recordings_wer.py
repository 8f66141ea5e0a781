"""Word error rate of the project's recogniser on a stretch of a made recording: a quick check of
the made speech (``sleuth eval recordings`` measures whole recordings).

    .venv/bin/python benchmarks/bench_recordings_wer.py /work/recordings/meetings/ES2006b.truth.json --start 600 --seconds 180
    .venv/bin/python benchmarks/bench_recordings_wer.py REC/meetings/TS3010d.truth.json --seconds 1e9 [--window-s 1e9]

Cuts the recording at turn (or page) boundaries: from the first turn starting at or after
``--start`` to the last turn ending within ``--seconds`` of it, runs faster-whisper base on that
audio (readers/video/speech.py) and scores it against the words the truth file says were spoken,
with the eval's word error rate (eval/rec_score.py). Prints one line; ``--json`` for the figures.
A stretch longer than ``--window-s`` (default: the reader's, speech.WINDOW_S) is recognised in
windows, as the reader does; ``--window-s 1e9`` gives it to Whisper in one call.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sleuth.eval.rec_score import truth_lines, word_error_rate
from sleuth.readers.video.decode import load_audio
from sleuth.readers.video.speech import transcribe_whisper

SR = 16000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("truth")
    ap.add_argument("--start", type=float, default=0.0)
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--window-s", type=float, default=None, help="most seconds given to Whisper at once")
    args = ap.parse_args(argv)
    truth_path = Path(args.truth)
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    mp4 = truth_path.with_name(truth_path.name[: -len(".truth.json")] + ".mp4")
    lines = [l for l in truth_lines(truth) if l["t0"] >= args.start]
    if not lines:
        print(f"{truth_path.name}: nothing spoken after {args.start} s", file=sys.stderr)
        return 1
    t0 = lines[0]["t0"]
    inside = [l for l in lines if l["t1"] <= t0 + args.seconds] or lines[:1]
    t1 = inside[-1]["t1"]
    audio = load_audio(str(mp4))[int(max(0.0, t0 - 0.2) * SR) : int((t1 + 0.2) * SR)]
    started = time.perf_counter()
    kw = {"window_s": args.window_s} if args.window_s else {}
    hyp = " ".join(l["text"] for l in transcribe_whisper(audio, **kw))
    asr_s = time.perf_counter() - started
    ref = " ".join(l["text"] for l in inside)
    res = word_error_rate(ref, hyp)
    out = {"recording": truth["name"], "start": t0, "end": t1, "seconds": round(t1 - t0, 1), "turns": len(inside),
           **res, "asr_s": round(asr_s, 1)}
    print(f"{truth['name']} {t0:.0f}-{t1:.0f} s ({len(inside)} turns, {res['ref_words']} words): WER {res['wer']:.3f} (asr {asr_s:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
