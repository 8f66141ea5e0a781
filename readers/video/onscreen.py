"""On-screen text: PP-OCR (rapidocr_onnxruntime, models inside the package) on sparse frames.

OCR is the costly step (about 0.3 s a frame on one core), so a frame is read only when it is
worth it: at shot starts, every ``interval`` seconds while the picture moves, and soon after a
local sharp change on an otherwise still picture (a caption or slide text appearing). Frames
that look the same as the last one read are skipped and extend what is already on screen; a
picture read before that comes back (a call's speaker tiles taking turns) reuses its lines.
Lines seen on neighbouring reads are one item (same text up to OCR noise, overlapping box).

Slide changes: a lecture's slides share one template, so the picture barely changes when the
title does and the shot detector sees no cut. The tracker notes a slide change when a read finds
the headline (the tallest line in the top part of the picture) replaced by a different one, the
picture under the two headlines has changed, and the new headline stays up for a while. A
caption that comes and goes over footage has no headline it replaces, subtitles sit low in the
picture, and a static title card never changes, so none of those count.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

import cv2
import numpy as np

MIN_SCORE = 0.6
#: a headline starts in the top HEAD_TOP of the picture and is at least HEAD_MIN_H of its height
HEAD_TOP, HEAD_MIN_H = 0.4, 0.035
#: a new headline must stay up this long (s) for its arrival to count as a slide change
MIN_SLIDE_S = 3.0
#: share of the thumbnail pixels under the headlines that must change sharply (not OCR noise)
HEAD_CHANGED = 0.05
#: pictures read before whose lines are reused when the same picture comes back (a call's speaker
#: tiles take turns, a talk returns to a slide): compared at half size, where a changed digit of
#: small print still changes more than RECALL_PIXELS pixels by RECALL_LEVEL grey levels
RECALL_MAX, RECALL_SIZE, RECALL_LEVEL, RECALL_PIXELS = 64, (320, 180), 48, 4


def engine():
    """The process-wide RapidOCR engine with the fast sessions of :mod:`sleuth.readers.ocr`
    (single-threaded, no spinning pool threads, lines recognised one at a time), whose detector
    keeps frames at their size: RapidOCR's default "min" limit would upscale the short side of a
    16:9 frame to 736 px, which costs 2-3x."""
    from ..ocr import get_engine

    return get_engine("rapid", "fast")


def ocr_frame(rgb: np.ndarray, scale: float = 1.0) -> list[dict]:
    """Text lines of one frame: ``{"text", "bbox": (x0, top, x1, bottom), "score"}``.

    ``scale`` maps the frame's pixels back to the video's own size (boxes are in video pixels).
    """
    from ..ocr import RUN_LOCK

    eng = engine()
    with RUN_LOCK:  # RapidOCR keeps per-call state on the engine
        result, _ = eng(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), use_cls=False)
    out = []
    for box, text, score in result or []:
        text = unglue(" ".join(str(text).split()))
        if float(score) < MIN_SCORE or len(re.sub(r"\W", "", text)) < 2:
            continue
        xs, ys = [p[0] for p in box], [p[1] for p in box]
        bbox = tuple(round(float(v) * scale, 1) for v in (min(xs), min(ys), max(xs), max(ys)))
        out.append({"text": text, "bbox": bbox, "score": round(float(score), 3)})
    return out


def unglue(text: str) -> str:
    """Re-space words PP-OCR ran together: "WorldHealthOrganization", "Review2024".

    Only tokens of three or more run-together capitalised words are split, so brand names
    written in camel case ("YouTube", "PowerPoint") stay whole.
    """
    out = []
    for tok in text.split(" "):
        if len(re.findall(r"[a-z][A-Z]", tok)) >= 2:
            tok = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", tok)
        tok = re.sub(r"(?<=[a-z]{3})(?=\d{2,})", " ", tok)
        out.append(tok)
    return " ".join(out)


def norm_text(s: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", s.lower())


def same_text(a: str, b: str, ratio: float = 0.8) -> bool:
    """Equal up to OCR noise (dropped spaces, a misread character or two)."""
    na, nb = norm_text(a), norm_text(b)
    if not na or not nb:
        return False
    if na == nb:
        return True
    m = SequenceMatcher(None, na, nb)
    # the two quick ratios are upper bounds of ratio(): same answers, most pairs decided cheaply
    return m.real_quick_ratio() >= ratio and m.quick_ratio() >= ratio and m.ratio() >= ratio


def _overlap(a, b) -> bool:
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


def headline(items: list[dict], frame_h: float) -> dict | None:
    """The tallest line starting in the top part of the picture, if one is big enough."""
    cands = [it for it in items if it["bbox"][1] < HEAD_TOP * frame_h and it["bbox"][3] - it["bbox"][1] >= HEAD_MIN_H * frame_h]
    return max(cands, key=lambda it: it["bbox"][3] - it["bbox"][1], default=None)


class ScreenTextTracker:
    """Streaming: :meth:`offer` frames in time order; :attr:`items` are the deduplicated lines,
    :attr:`slide_changes` the times at which a new slide came up."""

    def __init__(self, interval: float = 2.0, min_gap: float = 1.0, scale: float = 1.0):
        self.interval, self.min_gap, self.scale = interval, min_gap, scale
        self.items: list[dict] = []
        self._active: list[dict] = []
        self._last_t = -1e9
        self._last_thumb: np.ndarray | None = None
        self._prev_thumb: np.ndarray | None = None
        self.n_ocr = 0
        self.n_recalled = 0
        self._read: list[tuple[np.ndarray, list[dict]]] = []  # (half-size grey picture, its lines)
        # (time, share of sharply changed thumbnail pixels against the sample before) since the last read
        self._steps: list[tuple[float, float]] = []
        self._head: dict | None = None
        self._changes: list[tuple[float, dict]] = []  # (onset, the new headline item)

    def _should_read(self, t: float, thumb: np.ndarray, force: bool) -> bool | None:
        """True: read; False: skip; None: same picture as last read (extend what is shown)."""
        prev, self._prev_thumb = self._prev_thumb, thumb
        if prev is not None:
            self._steps.append((t, float((np.abs(thumb.astype(np.int16) - prev) >= 40).mean())))
        if self._last_thumb is None or force:
            return True
        d = np.abs(thumb.astype(np.int16) - self._last_thumb)
        if float(d.mean()) < 1.0 and float((d >= 40).mean()) < 0.002:
            return None  # under ~30 thumbnail pixels changed: a cursor, a progress bar, noise
        since = t - self._last_t
        if since >= self.interval - 1e-6:
            return True
        if since < self.min_gap - 1e-6 or prev is None:
            return False
        # against the previous sample (half a second ago, so slow drift has not added up):
        # a still picture with a small patch of sharp change is text appearing or going away
        dp = np.abs(thumb.astype(np.int16) - prev)
        sharp = float((dp >= 40).mean())
        return float(np.median(dp)) < 2.0 and 0.002 <= sharp < 0.2

    def offer(self, t: float, rgb: np.ndarray, force: bool = False) -> bool:
        thumb = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (160, 90), interpolation=cv2.INTER_AREA)
        decision = self._should_read(t, thumb, force)
        if decision is None:
            for it in self._active:
                it["t_end"] = round(t, 3)
            return False
        if not decision:
            return False
        before = self._last_thumb
        # the picture changed at the sharpest step since the last read (the sample rate's precision)
        onset = max(self._steps, key=lambda s: s[1])[0] if self._steps else t
        self._steps = []
        self._last_t, self._last_thumb = t, thumb
        self._update(t, self._lines(rgb))
        self._note_slide(onset, before, thumb, rgb.shape[:2])
        return True

    def _lines(self, rgb: np.ndarray) -> list[dict]:
        """OCR of the frame, or the lines of an earlier read of the same picture."""
        grey = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), RECALL_SIZE, interpolation=cv2.INTER_AREA)
        for k, (seen, lines) in enumerate(self._read):
            d = np.abs(grey.astype(np.int16) - seen)
            if int((d >= RECALL_LEVEL).sum()) <= RECALL_PIXELS and float(d.mean()) < 1.0:
                self._read.append(self._read.pop(k))  # most recently seen last, dropped last
                self.n_recalled += 1
                return lines
        lines = ocr_frame(rgb, self.scale)
        self.n_ocr += 1
        self._read.append((grey, lines))
        if len(self._read) > RECALL_MAX:
            self._read.pop(0)
        return lines

    def _note_slide(self, onset: float, before: np.ndarray | None, now: np.ndarray, frame_hw: tuple[int, int]) -> None:
        fh, fw = frame_hw[0] * self.scale, frame_hw[1] * self.scale  # video pixels
        head = headline(self._active, fh)
        old, self._head = self._head, head
        if head is None or old is None or head is old or before is None or any(it is old for it in self._active):
            return
        if same_text(old["text"], head["text"]):
            return
        # the picture under both headlines changed: a new title, not a new reading of the old one
        x0 = min(old["bbox"][0], head["bbox"][0]) / fw * now.shape[1]
        x1 = max(old["bbox"][2], head["bbox"][2]) / fw * now.shape[1]
        y0 = min(old["bbox"][1], head["bbox"][1]) / fh * now.shape[0]
        y1 = max(old["bbox"][3], head["bbox"][3]) / fh * now.shape[0]
        sl = (slice(int(y0), max(int(y0) + 1, int(np.ceil(y1)))), slice(int(x0), max(int(x0) + 1, int(np.ceil(x1)))))
        d = np.abs(now[sl].astype(np.int16) - before[sl])
        if d.size and float((d >= 40).mean()) >= HEAD_CHANGED:
            self._changes.append((onset, head))

    @property
    def slide_changes(self) -> list[float]:
        """Onsets of slides whose headline stayed up at least :data:`MIN_SLIDE_S` seconds."""
        return [round(t, 3) for t, head in self._changes if head["t_end"] - t >= MIN_SLIDE_S]

    def _update(self, t: float, lines: list[dict]) -> None:
        still = []
        for ln in lines:
            match = next(
                (it for it in self._active if it not in still and same_text(it["text"], ln["text"]) and _overlap(it["bbox"], ln["bbox"])),
                None,
            )
            if match is None:
                match = {"t": round(t, 3), "t_end": round(t, 3), "text": ln["text"], "bbox": ln["bbox"], "score": ln["score"]}
                self.items.append(match)
            else:
                match["t_end"] = round(t, 3)
                if ln["score"] > match["score"]:  # keep the cleanest reading of the line
                    match.update(text=ln["text"], score=ln["score"], bbox=ln["bbox"])
            still.append(match)
        self._active = still
