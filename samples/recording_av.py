"""Pictures and the streaming MP4 writer behind :mod:`.recordings`.

:class:`StreamWriter` takes speech a piece at a time and writes the picture that goes with it at
a low, constant frame rate, so an hour of recording costs the memory of one turn's audio and one
frame, never the hour. Frames are drawn with Pillow's built-in font (no system font needed, the
same glyphs on every machine); the text drawn is only ever text, whatever it contains.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np

#: background and accent colours of the call window; avatar colours cycle by speaker order
BG, BAR, FG, DIM, ACTIVE = (32, 34, 38), (20, 21, 24), (240, 240, 240), (170, 172, 178), (46, 204, 113)
AVATARS = ((66, 133, 244), (219, 68, 55), (244, 180, 0), (15, 157, 88), (171, 71, 188), (0, 172, 193), (255, 112, 67), (124, 179, 66))


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _fit(draw, text: str, max_w: int, size: int, min_size: int = 12):
    """(text, font) at the largest size <= ``size`` that fits ``max_w`` px, cut with '…' if none does."""
    text = " ".join(text.split())
    while size > min_size and draw.textlength(text, font=_font(size)) > max_w:
        size -= 2
    font = _font(size)
    if draw.textlength(text, font=font) > max_w:
        while text and draw.textlength(text + "…", font=font) > max_w:
            text = text[:-1]
        text += "…"
    return text, font


def initials(name: str) -> str:
    words = [w for w in name.replace("(", " ").split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "?"


def call_frame(size: tuple[int, int], speaker: str | None, k: int, topic: str | None, title: str, n_people: int) -> np.ndarray:
    """A video call in speaker view: the active speaker's avatar and name, the agenda topic on top."""
    from PIL import Image, ImageDraw

    w, h = size
    img = Image.new("RGB", size, BG)
    d = ImageDraw.Draw(img)
    bar = max(24, h // 9)
    d.rectangle((0, 0, w, bar), fill=BAR)
    head = f"Agenda: {topic}" if topic else title
    text, font = _fit(d, head, w - 24, int(bar * 0.55))
    d.text((12, bar // 2), text, fill=FG, font=font, anchor="lm")
    if speaker is not None:
        r = h // 5
        cx, cy = w // 2, int(h * 0.45)
        d.ellipse((cx - r - 5, cy - r - 5, cx + r + 5, cy + r + 5), outline=ACTIVE, width=4)
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=AVATARS[k % len(AVATARS)])
        d.text((cx, cy), initials(speaker), fill=FG, font=_font(int(r * 0.8)), anchor="mm")
        text, font = _fit(d, speaker, w - 40, h // 12)
        d.text((cx, cy + r + h // 10), text, fill=FG, font=font, anchor="mm")
        # the name tag in the corner, as call software puts it on the speaker's tile
        tag, tfont = _fit(d, speaker, w // 2, h // 22)
        tw = int(d.textlength(tag, font=tfont))
        d.rectangle((8, h - bar - 8, 24 + tw, h - 8), fill=BAR)
        d.text((16, h - 8 - bar // 2), tag, fill=FG, font=tfont, anchor="lm")
    d.text((w - 12, h - 8 - bar // 2), f"{n_people} participants", fill=DIM, font=_font(max(10, h // 28)), anchor="rm")
    return np.asarray(img)


def page_frame(page, size: tuple[int, int]) -> np.ndarray:
    """A pypdfium2 page rendered to fit ``size``, centred on white (letterboxed)."""
    from PIL import Image

    w, h = size
    pw, ph = page.get_size()
    scale = min(w / pw, h / ph) if pw > 0 and ph > 0 else 1.0
    pic = page.render(scale=scale).to_pil().convert("RGB")
    pic.thumbnail(size)
    canvas = Image.new("RGB", size, (255, 255, 255))
    canvas.paste(pic, ((w - pic.width) // 2, (h - pic.height) // 2))
    return np.asarray(canvas)


class StreamWriter:
    """H.264 + AAC MP4 written as speech arrives: :meth:`add` a piece of audio (with the picture
    that starts with it), frames follow the audio clock at ``fps``. Single-threaded x264 and the
    native AAC encoder: the same input gives the same bytes."""

    #: audio is fed in pieces of this many seconds, so audio and video packets stay interleaved
    CHUNK_S = 1.0

    def __init__(self, path: str | Path, size: tuple[int, int], fps: int, sr: int):
        import av

        self.fps, self.sr, self.size = fps, sr, size
        self._out = av.open(str(path), "w", format="mp4")
        vs = self._out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "28", "g": str(fps * 10), "threads": "1"}
        vs.thread_count = 1
        self._vs = vs
        self._as = self._out.add_stream("aac", rate=sr, layout="mono")
        # 96 kb/s: at 48 the recogniser's word error rate on made meetings was 1.2 points higher
        self._as.bit_rate = 96000
        self.samples = 0  # audio written so far; the clock of the recording
        self.frames = 0
        self._picture: np.ndarray | None = None
        self._vframe = None

    @property
    def t(self) -> float:
        return self.samples / self.sr

    def set_picture(self, picture: np.ndarray) -> None:
        """The picture from now on (from the next frame at or after the audio clock)."""
        import av

        if self._picture is None or not np.array_equal(picture, self._picture):
            self._picture = picture
            self._vframe = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")

    def add(self, pcm: np.ndarray, picture: np.ndarray | None = None) -> tuple[float, float]:
        """Append int16 mono ``pcm``; returns its (start, end) seconds on the recording's clock."""
        if picture is not None:
            self.set_picture(picture)
        start = self.t
        step = int(self.CHUNK_S * self.sr)
        for i in range(0, len(pcm), step):
            self._audio(pcm[i : i + step])
            self._video_until(self.t)
        return start, self.t

    def silence(self, seconds: float) -> tuple[float, float]:
        return self.add(np.zeros(int(round(seconds * self.sr)), np.int16))

    def _audio(self, chunk: np.ndarray) -> None:
        import av

        af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk, dtype=np.int16).reshape(1, -1), format="s16", layout="mono")
        af.sample_rate, af.pts, af.time_base = self.sr, self.samples, Fraction(1, self.sr)
        self.samples += len(chunk)
        for pkt in self._as.encode(af):
            self._out.mux(pkt)

    def _video_until(self, t: float) -> None:
        if self._vframe is None:
            return
        while self.frames / self.fps < t - 1e-9:
            self._vframe.pts, self._vframe.time_base = self.frames, Fraction(1, self.fps)
            for pkt in self._vs.encode(self._vframe):
                self._out.mux(pkt)
            self.frames += 1

    def close(self) -> float:
        """Flushes both encoders; returns the duration (s) covered by the frames."""
        self._video_until(max(self.t, 1.0 / self.fps))
        for pkt in self._vs.encode():
            self._out.mux(pkt)
        for pkt in self._as.encode():
            self._out.mux(pkt)
        self._out.close()
        return self.frames / self.fps

    def abort(self) -> None:
        try:
            self._out.close()
        except Exception:  # a half-written file is removed by the caller either way
            pass
