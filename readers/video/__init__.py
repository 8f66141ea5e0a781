"""The video reader: one video file -> a Tree of scenes and ~10-30 s segments.

    tree = read_video("talk.mp4")                 # subtitles beside it, else Whisper base
    tree.root.meta  -> duration, fps, width, height, has_audio, transcript_source, shots, ...
    scene.meta      -> keyframes, shots
    segment.meta    -> speech [{t0, t1, text, words: [{t0, t1, w}], timing}],
                       screen [{t, t_end, text, bbox (video pixels, x0, top, x1, bottom), score}],
                       keyframes [asset names in tree.assets]

One pass over frames sampled a couple of times a second (decord, PyAV as fallback) feeds the
shot detector, the keyframe store and the OCR tracker together, so the file is decoded once
and memory does not grow with resolution. Speech comes first (subtitles or recognition) so
scenes can use it and segments can be cut at its pauses.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Callable

from ...core import Node, ReaderError, Tree, fmt_time
from .decode import VIDEO_SUFFIXES, FrameSource, VideoInfo, probe
from .entities import extract_entities
from .keyframes import KeyframeStore
from .scenes import merge_shots, split_shots, split_windows
from .shots import ShotDetector, thumb
from .speech import recognise
from .summary import content_words, scene_text, video_text

__all__ = ["VIDEO_SUFFIXES", "read_video"]

AUDIO_SUFFIXES = frozenset({".mp3", ".wav", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus", ".wma"})

Progress = Callable[[str, float], None]


class _Abandoned(Exception):
    """Stops the frame thread once the reading has failed or been stopped."""


def read_video(
    path: str | os.PathLike,
    *,
    asr: str = "auto",
    ocr: bool = True,
    progress: Progress | None = None,
    sample_rate: float = 2.0,
    ocr_interval: float = 2.0,
    keyframe_interval: float = 2.0,
    max_width: int = 640,
    allow_truncated: bool = False,
    speakers: str = "auto",
) -> Tree:
    """Read one video into a Tree; raises ReaderError (one line) for files it cannot index.

    ``asr``: "auto" (subtitle file, else faster-whisper, else pocketsphinx), "subtitles",
    "whisper", "pocketsphinx" or "none". ``ocr``: read on-screen text. ``progress(stage,
    fraction)`` is called as work advances. ``sample_rate`` frames/s feed shot detection and
    OCR; ``max_width`` bounds the decoded frame width. A file whose frames stop well before its
    declared duration is refused unless ``allow_truncated`` (then indexed as far as it decodes).
    ``speakers``: "auto" labels each speech line with its voice (``line["speaker"]``, speaker
    entities, ``root.meta["speakers"]``) when resemblyzer is installed; where the picture shows
    the active speaker's name (a video call), the voices are named after it
    (``line["speaker_name"]``, :mod:`.speaker_names`); "off" skips both.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        raise ReaderError(f"{p.name}: audio-only file, nothing to index as video")
    if suffix not in VIDEO_SUFFIXES:
        raise ReaderError(f"{p.name}: unsupported file type {suffix or '(no suffix)'} for the video reader")
    report = progress or (lambda stage, frac: None)
    if speakers not in ("auto", "off"):
        raise ValueError(f"speakers must be 'auto' or 'off', not {speakers!r}")
    info = probe(p)
    warnings: list[str] = []

    # The frame pass does not need the speech, so it runs beside the recogniser: Whisper keeps
    # both cores busy only while it encodes, and OCR and decoding fill the other core's gaps.
    # The frame thread's progress is passed on from this thread, where the caller's callback
    # may stop the reading; the frame thread then stops at its next report.
    stop = threading.Event()
    seen = {"frames": 0.0}

    def frames_report(stage: str, frac: float) -> None:
        if stop.is_set():
            raise _Abandoned()
        seen[stage] = frac

    with ThreadPoolExecutor(1, thread_name_prefix="sleuth-frames") as pool:
        scan = pool.submit(_scan_frames, info, ocr, sample_rate, ocr_interval, keyframe_interval, max_width, frames_report)
        try:
            report("speech", 0.0)
            lines, source = recognise(str(p), asr, info.has_audio, warnings, progress=lambda f: report("speech", f))
            report("speech", 1.0)
            while True:
                try:
                    frames = scan.result(timeout=1.0)
                    break
                except FutureTimeout:
                    report("frames", seen["frames"])
        finally:
            stop.set()
    report("frames", 1.0)
    duration = frames["duration"]
    if info.duration and duration < info.duration - max(2.0, 0.1 * info.duration):
        msg = f"{p.name}: truncated file, frames decode only up to {duration:.1f} s of {info.duration:.1f} s"
        if not allow_truncated:
            raise ReaderError(msg)
        warnings.append(msg)
    lines = [l for l in lines if l["t0"] < duration]
    # speaker turns (optional feature, readers/video/speakers.py)
    from .speakers import label_speakers, speaker_entities, summary_line

    speaker_summary = label_speakers(str(p), lines, info.has_audio, speakers, progress=report)

    det: ShotDetector = frames["detector"]
    shots = det.shots(duration)
    slide_changes = frames["slide_changes"]
    # a slide change starts a scene even where the shot detector saw one continuous shot
    scene_shots, hard = split_shots(shots, slide_changes)
    scenes_of_shots = merge_shots(scene_shots, lines, hard)
    kf: KeyframeStore = frames["keyframes"]
    screen_items = sorted(frames["screen"], key=lambda s: s["t"])
    if speaker_summary.get("status") == "ok":
        # an active-speaker label on screen (a video call's) names the voices and cuts a cluster
        # that holds several labelled people (readers/video/speaker_names.py)
        from .speaker_names import link_speaker_names

        link_speaker_names(lines, screen_items, speaker_summary)

    # segment windows over the whole video, then speech/screen assigned by time
    seg_spans: list[tuple[int, float, float]] = []
    for si, group in enumerate(scenes_of_shots):
        for a, b in split_windows(group[0].t_start, group[-1].t_end, lines):
            seg_spans.append((si, a, b))
    starts = [a for _, a, _ in seg_spans]

    def seg_index(t: float) -> int:
        return max(0, min(len(seg_spans) - 1, bisect.bisect_right(starts, t) - 1))

    seg_speech: list[list[dict]] = [[] for _ in seg_spans]
    for l in lines:
        seg_speech[seg_index((l["t0"] + min(l["t1"], duration)) / 2)].append(l)
    # on-screen text belongs to every segment during which it is visible (a slide title that
    # stays up for a minute is what each of those segments shows)
    seg_screen: list[list[dict]] = [[] for _ in seg_spans]
    for s in screen_items:
        first, last = seg_index(s["t"]), seg_index(s.get("t_end", s["t"]))
        for k in range(first, last + 1):
            seg_screen[k].append(s)

    # document frequencies over segments for the extractive summaries
    doc_freq: Counter = Counter()
    for sp, sc in zip(seg_speech, seg_screen):
        doc_freq.update(set(content_words(" ".join(x["text"] for x in sp + sc))))

    root = Node(kind="video", title=p.stem, t_start=0.0, t_end=round(duration, 3))
    text_parts: list[str] = []
    pos = 0
    used_assets: set[str] = set()
    segments: list[Node] = []
    for si, group in enumerate(scenes_of_shots):
        t0, t1 = group[0].t_start, group[-1].t_end
        scene = root.add(Node(kind="scene", t_start=round(t0, 3), t_end=round(t1, 3)))
        scene_speech, scene_screen = [], []
        scene_start_char = pos
        for k, (sj, a, b) in enumerate(seg_spans):
            if sj != si:
                continue
            sp, sc = seg_speech[k], seg_screen[k]
            scene_speech += sp
            scene_screen += sc
            kfs = kf.pick(a, b, k=2)
            used_assets.update(kfs)
            body = segment_text(sp, sc)
            seg = scene.add(
                Node(
                    kind="segment",
                    title=f"{fmt_time(a)}–{fmt_time(b)}" + (f" {_headline(sp, sc)}" if (sp or sc) else ""),
                    text=body,
                    t_start=round(a, 3),
                    t_end=round(b, 3),
                    char_start=pos,
                    char_end=pos + len(body),
                    meta={"speech": sp, "screen": sc, "keyframes": kfs},
                )
            )
            segments.append(seg)
            text_parts.append(body)
            pos += len(body) + 2  # segments are joined by a blank line
        scene.char_start, scene.char_end = scene_start_char, max(scene_start_char, pos - 2)
        skf = kf.pick(t0, t1, k=3)
        used_assets.update(skf)
        shown = _screen_title(scene_screen, t0, info.height)
        scene.title = f"Scene {si + 1} {fmt_time(t0)}–{fmt_time(t1)}" + (f": {shown[:60]}" if shown else "")
        scene.text = scene_text(scene_speech, scene_screen, doc_freq, len(seg_spans))
        scene.meta = {"keyframes": skf, "shots": [[round(s.t_start, 3), round(s.t_end, 3)] for s in group]}

    entities = extract_entities(segments)
    root.meta = {
        "duration": round(duration, 3),
        "fps": round(info.fps, 3),
        "width": info.width,
        "height": info.height,
        "has_audio": info.has_audio,
        "transcript_source": source,
        "video_codec": info.video_codec,
        "decoder": frames["backend"],
        "shots": [[round(s.t_start, 3), round(s.t_end, 3)] for s in shots],
        "n_ocr_frames": frames["n_ocr"],
        "n_ocr_recalled": frames["n_recalled"],
        "slide_changes": slide_changes,
        "speakers": speaker_summary,
    }
    root.text = video_text(p.stem, root.meta, len(root.children), len(segments), lines, screen_items, entities)
    # speaker entities join after the root text so "Names:" lists people and terms, not voices
    entities += speaker_entities(segments, p.stem)
    if speaker_summary.get("names"):
        from .speaker_names import join_shown_entities

        entities = join_shown_entities(entities)
    if summary_line(speaker_summary):
        root.text += "\n" + summary_line(speaker_summary)
    full = "\n\n".join(text_parts)
    root.char_start, root.char_end = 0, len(full)
    report("done", 1.0)
    return Tree(root=root, text=full, entities=entities, assets=kf.assets(used_assets), warnings=warnings)


def _scan_frames(info: VideoInfo, ocr: bool, rate: float, ocr_interval: float, kf_interval: float, max_width: int, report: Progress) -> dict:
    """The single decoding pass: shots, keyframe candidates and on-screen text together."""
    src = FrameSource(info, max_width=max_width)
    det = ShotDetector(rate)
    kf = KeyframeStore(kf_interval)
    tracker = None
    if ocr:
        from .onscreen import ScreenTextTracker

        tracker = ScreenTextTracker(interval=ocr_interval, scale=info.width / src.size[0])
    last_t, n = None, 0
    for t, _i, frame in src.sample(rate):
        cut = det.push(t, thumb(frame))
        kf.offer(t, frame, force=cut or n == 0)
        if tracker is not None:
            tracker.offer(t, frame, force=cut)
        last_t, n = t, n + 1
        if info.duration and n % 20 == 0:
            report("frames", min(1.0, t / info.duration))
    if last_t is None:
        raise ReaderError(f"{Path(info.path).name}: no video frame could be decoded (truncated or corrupt file)")
    frame_dur = 1.0 / info.fps if info.fps else 0.04
    decoded_end = max(last_t, src.last_time()) + frame_dur
    # the container's duration holds unless the frames run out well before it (truncation)
    duration = info.duration if info.duration and decoded_end >= info.duration - 1.0 else decoded_end
    det.refine(src)
    return {
        "detector": det,
        "keyframes": kf,
        "screen": tracker.items if tracker else [],
        "n_ocr": tracker.n_ocr if tracker else 0,
        "n_recalled": tracker.n_recalled if tracker else 0,
        "slide_changes": tracker.slide_changes if tracker else [],
        "duration": duration,
        "backend": src.backend,
    }


def _screen_title(screen: list[dict], t0: float, height: int) -> str:
    """What names a stretch on screen: the headline that came up in it, else the first line that
    came up in it, else the first line shown (a line carried over from before comes last)."""
    from .onscreen import headline

    screen = list({id(s): s for s in screen}.values())  # an item shown in several segments
    fresh = [s for s in screen if s["t"] >= t0 - 0.5]
    for pool in (fresh, screen):
        head = headline(pool, height) if height else None
        if head is not None:
            # a title OCR read as several pieces along one row ("Audible" "Socialism")
            top, bottom = head["bbox"][1], head["bbox"][3]
            row = [s for s in pool if min(bottom, s["bbox"][3]) - max(top, s["bbox"][1]) >= 0.5 * (bottom - top)]
            return " ".join(s["text"] for s in sorted(row, key=lambda s: s["bbox"][0]))
    return (fresh or screen)[0]["text"] if screen else ""


def _headline(speech: list[dict], screen: list[dict]) -> str:
    if screen:
        return screen[0]["text"][:60]
    words = " ".join(l["text"] for l in speech).split()
    return " ".join(words[:8]) + ("…" if len(words) > 8 else "")


def segment_text(speech: list[dict], screen: list[dict]) -> str:
    """Time-ordered transcript and on-screen lines: "[00:00:12] words", "[screen 00:00:14] text";
    a line whose voice has a name (``speaker_name``) starts with it where the name changes
    ("[00:00:12] Marketing: words"), so a search naming the speaker finds their turns."""
    rows, prev = [], None
    for l in speech:
        name = l.get("speaker_name")
        who = f"{name}: " if name and name != prev else ""
        prev = name
        rows.append((l["t0"], 0, f"[{fmt_time(l['t0'])}] {who}{l['text']}"))
    rows += [(s["t"], 1, f"[screen {fmt_time(s['t'])}] {s['text']}") for s in screen]
    return "\n".join(r for _, _, r in sorted(rows))
