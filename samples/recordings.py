"""Hour-long recordings with known truth, made from real transcripts and slide decks.

- :func:`render_meeting`: a QMSum meeting as a video call: every turn read by the TTS engine
  (:func:`.tts.engine`: flite, or espeak-ng without it) in its speaker's voice
  (:func:`.tts.voice`, by order of appearance), pauses between turns, the active speaker's name
  and the agenda topic on screen.
- :func:`render_lecture`: a PDF as a narrated slide show: each page on screen while its text
  layer is read aloud (at most :data:`MAX_PAGE_WORDS` words), a page without text shown silent
  for :data:`SILENT_PAGE_S` seconds.

Each writes ``NAME.mp4`` and ``NAME.truth.json`` (schema ``sleuth.recording/1``: what was said
when, the topics or pages, and the benchmark's queries with their gold spans in seconds; beside
them ``voices``, the engine's voice each speaker got) under
temporary names, renamed only when complete, so an interrupted run leaves nothing half made.
Audio and frames are streamed (:class:`.recording_av.StreamWriter`): memory does not grow with
the length of the recording.
"""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import tts
from .recording_av import StreamWriter, call_frame, page_frame

SCHEMA = "sleuth.recording/1"
#: bump when a change alters what is rendered, so cached recordings are made again
RENDER_VERSION = 3  # 3: flite's voices (16 kHz audio) when flite is installed
#: a page's narration stops after this many words (about a minute at 150 words a minute)
MAX_PAGE_WORDS = 150
#: how long a page without a text layer stays on screen
SILENT_PAGE_S = 5.0

Progress = Callable[[int, int], None]


def _r(t: float) -> float:
    return round(t, 3)


def _pause(i: int, same_speaker: bool) -> float:
    """Seconds of silence before turn ``i``: 0.35–0.9 s between speakers (a fixed pseudo-random
    spread, so the rhythm is not mechanical), 0.25 s when the same speaker goes on."""
    if same_speaker:
        return 0.25
    return 0.35 + 0.55 * (((i + 1) * 2654435761) % 1000) / 1000


def _parse_spans(spans) -> list[tuple[int, int]]:
    out = []
    for s in spans or []:
        try:
            a, b = int(s[0]), int(s[1])
        except (TypeError, ValueError, IndexError):
            continue
        out.append((min(a, b), max(a, b)))
    return out


def span_seconds(turns: list[dict], first: int, last: int) -> list[float] | None:
    """Seconds from the start of the first spoken turn in [first, last] to the end of the last;
    a span whose turns were all silent (only markup) is the instant where they would have been."""
    inside = [t for t in turns if first <= t["i"] <= last]
    if inside:
        return [inside[0]["start"], inside[-1]["end"]]
    after = [t for t in turns if t["i"] > last]
    before = [t for t in turns if t["i"] < first]
    if not before and not after:
        return None
    at = after[0]["start"] if after else before[-1]["end"]
    return [at, at]


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it only when the block succeeds."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def dumps(obj: dict) -> str:
    """JSON with one list item a line: small, diffable, and the same bytes for the same truth."""
    def item(v) -> str:
        if isinstance(v, list) and v:
            return "[\n" + ",\n".join(" " + json.dumps(x, ensure_ascii=False) for x in v) + "\n]"
        return json.dumps(v, ensure_ascii=False)

    return "{\n" + ",\n".join(f"{json.dumps(k)}: {item(v)}" for k, v in obj.items()) + "\n}\n"


def _write_json(path: Path, obj: dict) -> None:
    with _atomic(path) as tmp:
        tmp.write_text(dumps(obj), encoding="utf-8")


def _synth_stream(texts: list[tuple[str, tts.Voice | tts.FliteVoice]], jobs: int) -> Iterator[np.ndarray]:
    """Synthesised turns in order, by ``jobs`` processes at most ``2 * jobs`` turns ahead (bounded:
    memory stays flat while the writer encodes)."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        ahead = 2 * max(1, jobs)
        futs = [pool.submit(tts.synthesize, t, v) for t, v in texts[:ahead]]
        for k in range(len(texts)):
            pcm = futs[k].result()
            futs[k] = None  # release it once written
            if k + ahead < len(texts):
                t, v = texts[k + ahead]
                futs.append(pool.submit(tts.synthesize, t, v))
            yield pcm


def _check_tts(engine: str | None) -> str:
    """The engine to speak with: ``engine`` if installed, else the best installed one."""
    import shutil

    if engine is not None:
        if engine not in tts.ENGINES:
            raise ValueError(f"unknown TTS engine {engine!r} (one of {', '.join(tts.ENGINES)})")
        if not shutil.which(engine):
            raise RuntimeError(f"{engine} is not installed (apt-get install {engine}, or scripts/system_deps.sh)")
        return engine
    found = tts.engine()
    if found is None:
        raise RuntimeError("no TTS engine is installed (apt-get install flite or espeak-ng, or scripts/system_deps.sh)")
    return found


# ----------------------------------------------------------------------------- meetings


def _topic_spans(meeting: dict) -> list[tuple[str, int, int]]:
    out = []
    for t in meeting.get("topic_list") or []:
        for a, b in _parse_spans(t.get("relevant_text_span")):
            out.append((str(t.get("topic", "")).strip(), a, b))
    return sorted(out, key=lambda x: (x[1], x[2]))


def _topic_at(spans: list[tuple[str, int, int]], i: int) -> str | None:
    """The topic whose span holds turn ``i`` and opened last (a sub-topic inside a topic wins)."""
    best = None
    for topic, a, b in spans:
        if a <= i <= b:
            best = topic
    return best


def render_meeting(
    meeting: dict, out_dir: Path, name: str, *, source: str | None = None, fps: int = 2,
    size: tuple[int, int] = (640, 360), wpm: int = tts.BASE_WPM, language: str = "en-us",
    fluent: bool = True, lead_in: float = 0.5, tail: float = 1.0, jobs: int = 2,
    engine: str | None = None, progress: Progress | None = None,
) -> Path:
    """``out_dir/name.mp4`` (the meeting as a video call) and ``name.truth.json`` beside it.

    Turns with nothing speakable (only markup) are not spoken and not listed; query spans over
    them fall on the nearest spoken turns (:func:`span_seconds`). ``fluent`` drops fillers and
    restarts (:func:`.tts.speakable`); the truth holds exactly the words spoken either way.
    ``engine``: a name of :data:`.tts.ENGINES`, default the best installed.
    """
    engine = _check_tts(engine)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = meeting.get("meeting_transcripts") or []
    order: dict[str, int] = {}
    todo = []  # (turn index, speaker, spoken text)
    for i, turn in enumerate(raw):
        speaker = " ".join(str(turn.get("speaker", "")).split()) or "Unknown"
        text = tts.speakable(str(turn.get("content", "")), fluent=fluent)
        if text:
            order.setdefault(speaker, len(order))
            todo.append((i, speaker, text))
    if not todo:
        raise ValueError(f"{name}: no speakable turns")
    voices = {s: tts.voice(k, language, wpm, engine_name=engine) for s, k in order.items()}
    rate = voices[todo[0][1]].rate  # one engine, one rate
    topics = _topic_spans(meeting)
    turns: list[dict] = []
    mp4, truth_path = out_dir / f"{name}.mp4", out_dir / f"{name}.truth.json"
    pictures: dict[tuple, np.ndarray] = {}

    def picture(speaker: str | None, topic: str | None) -> np.ndarray:
        key = (speaker, topic)
        if key not in pictures:
            if len(pictures) >= 32:  # a committee of many speakers: 32 frames, about 22 MB
                pictures.clear()
            pictures[key] = call_frame(size, speaker, order.get(speaker, 0), topic, name, len(order))
        return pictures[key]

    with _atomic(mp4) as tmp:
        w = StreamWriter(tmp, size, fps, rate)
        try:
            w.set_picture(picture(None, _topic_at(topics, todo[0][0])))
            w.silence(lead_in)
            prev = None
            stream = _synth_stream([(text, voices[sp]) for _, sp, text in todo], jobs)
            for n, ((i, speaker, text), pcm) in enumerate(zip(todo, stream)):
                if pcm.size == 0:
                    continue
                if prev is not None:
                    w.silence(_pause(i, speaker == prev))
                start, end = w.add(pcm, picture(speaker, _topic_at(topics, i)))
                turns.append({"i": i, "start": _r(start), "end": _r(end), "speaker": speaker, "text": text})
                prev = speaker
                if progress:
                    progress(n + 1, len(todo))
            w.silence(tail)
            duration = max(w.close(), w.t)
        except BaseException:
            w.abort()
            raise
    truth = {
        "schema": SCHEMA, "kind": "meeting", "name": name, "source": source or f"{name}.json",
        "duration_s": _r(duration), "turns": turns,
        "topics": [{"topic": t, "start": s[0], "end": s[1]} for t, a, b in topics if (s := span_seconds(turns, a, b))],
        "queries": meeting_queries(meeting, turns, name),
        "voices": {s: voices[s].to_dict() for s in order},
    }
    _write_json(truth_path, truth)
    return mp4


def meeting_queries(meeting: dict, turns: list[dict], name: str) -> list[dict]:
    """QMSum's specific queries with their gold turn spans and those spans in seconds."""
    out = []
    for k, q in enumerate(meeting.get("specific_query_list") or []):
        spans = _parse_spans(q.get("relevant_text_span"))
        secs = [s for a, b in spans if (s := span_seconds(turns, a, b))]
        out.append({"id": f"{name}:s{k}", "query": str(q.get("query", "")), "answer": str(q.get("answer", "")),
                    "turn_spans": [[a, b] for a, b in spans], "spans": secs})
    return out


# ----------------------------------------------------------------------------- lectures


def page_narration(text: str, max_words: int = MAX_PAGE_WORDS) -> str:
    """A page's text layer as read aloud: one line, hyphenated line ends joined, at most
    ``max_words`` words, cut at the last sentence end inside the cap when there is one."""
    import re

    s = re.sub(r"(\w)-\s*\n\s*(\w)", r"\1\2", text.replace("\r", "\n"))
    s = re.sub(r"[\u2022\u25aa\u25cf\u2023\u2043\u00b7]", ",", s)  # bullets: a short pause
    s = tts.speakable(s, fluent=False)
    words = s.split()
    if len(words) <= max_words:
        return s
    cut = " ".join(words[:max_words])
    end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
    return cut[: end + 1] if end > len(cut) // 2 else cut


def lecture_queries(samples: list[dict], doc_id: str) -> list[dict]:
    """MMLongBench-Doc records of one PDF as ``{"id", "query", "answer", "evidence_pages"}``,
    only those with evidence pages; ids count the PDF's records in file order."""
    import ast

    out = []
    mine = [s for s in samples if s.get("doc_id") == doc_id]
    for k, s in enumerate(mine):
        ev = s.get("evidence_pages")
        try:
            pages = ast.literal_eval(ev) if isinstance(ev, str) else list(ev or [])
        except (ValueError, SyntaxError):
            pages = []
        pages = sorted({int(p) for p in pages if isinstance(p, (int, float)) or str(p).isdigit()})
        if pages:
            out.append({"id": f"{Path(doc_id).stem}:q{k}", "query": str(s.get("question", "")),
                        "answer": str(s.get("answer", "")), "evidence_pages": pages})
    return out


def render_lecture(
    pdf: Path, queries: list[dict], out_dir: Path, name: str, *, fps: int = 1,
    size: tuple[int, int] = (1280, 720), wpm: int = tts.BASE_WPM, language: str = "en-us",
    max_words: int = MAX_PAGE_WORDS, silent_s: float = SILENT_PAGE_S, lead: float = 0.5,
    tail: float = 0.75, engine: str | None = None, progress: Progress | None = None,
) -> Path:
    """``out_dir/name.mp4`` (the PDF as a narrated slide show) and ``name.truth.json`` beside it.

    ``queries``: ``{"id", "query", "answer", "evidence_pages"}`` (:func:`lecture_queries`); a
    query's spans are its evidence pages' time on screen (pages outside the PDF have none).
    ``engine``: as for :func:`render_meeting`; the narrator is the engine's first voice.
    """
    import pypdfium2 as pdfium

    engine = _check_tts(engine)
    pdf, out_dir = Path(pdf), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        doc = pdfium.PdfDocument(str(pdf))
    except pdfium.PdfiumError as e:
        raise ValueError(f"{pdf.name}: cannot open as PDF ({e})") from None
    v = tts.voice(0, language, wpm, engine_name=engine)
    pages: list[dict] = []
    mp4 = out_dir / f"{name}.mp4"
    try:
        n = len(doc)
        if n == 0:
            raise ValueError(f"{pdf.name}: the PDF has no pages")
        with _atomic(mp4) as tmp:
            w = StreamWriter(tmp, size, fps, v.rate)
            try:
                for k in range(n):
                    page = doc[k]
                    tp = page.get_textpage()
                    text = page_narration(tp.get_text_range(), max_words)
                    tp.close()
                    w.set_picture(page_frame(page, size))
                    page.close()
                    pcm = tts.synthesize(text, v) if text else np.zeros(0, np.int16)
                    start = w.t
                    if pcm.size:
                        w.silence(lead)
                        w.add(pcm)
                        w.silence(tail)
                    else:
                        text = ""
                        w.silence(silent_s)
                    pages.append({"page": k + 1, "start": _r(start), "end": _r(w.t), "text": text, "silent": not pcm.size})
                    if progress:
                        progress(k + 1, n)
                duration = max(w.close(), w.t)
            except BaseException:
                w.abort()
                raise
    finally:
        doc.close()
    by_page = {p["page"]: p for p in pages}
    truth = {
        "schema": SCHEMA, "kind": "lecture", "name": name, "source": pdf.name, "pdf_path": str(pdf.resolve()),
        "duration_s": _r(duration), "pages": pages,
        "queries": [dict(q, evidence_pages=list(q["evidence_pages"]),
                         spans=[[by_page[p]["start"], by_page[p]["end"]] for p in q["evidence_pages"] if p in by_page])
                    for q in queries],
        "voices": {"narrator": v.to_dict()},
    }
    _write_json(out_dir / f"{name}.truth.json", truth)
    return mp4
