"""Generators of sample videos with known content, for the video reader's tests and benchmark.

- :func:`make_text_clip`: frames with known text drawn at known times (OCR ground truth).
- :func:`join_clips`: two videos re-encoded back to back (a cut at a known time).
- :func:`make_talk_video`: a long "lecture": slides whose titles change every ~30 s, speech
  synthesised by espeak-ng, and a matching .srt (speed benchmark, ASR ground truth).
- :func:`make_audio_only`, :func:`truncate_copy`: inputs the reader must refuse.

All writing goes through PyAV (H.264 via libx264, AAC audio).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np


def _fmt_srt(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: int, size: tuple[int, int], audio: np.ndarray | None = None, sr: int = 16000, crf: int = 28) -> Path:
    """Encode RGB frames (and optional mono float audio) into an mp4/mkv with PyAV."""
    import av

    path = Path(path)
    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": str(crf), "g": str(fps * 10)}
        a_st = None
        if audio is not None:
            a_st = out.add_stream("aac", rate=sr, layout="mono")
        for f in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            for pkt in vs.encode(vf):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if a_st is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            step = 1024 * 8
            pts = 0
            for i in range(0, len(pcm), step):
                chunk = pcm[i : i + step].reshape(1, -1)
                af = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
                af.sample_rate, af.pts, af.time_base = sr, pts, Fraction(1, sr)
                pts += chunk.shape[1]
                for pkt in a_st.encode(af):
                    out.mux(pkt)
            for pkt in a_st.encode():
                out.mux(pkt)
    return path


def _draw(img: np.ndarray, text: str, org: tuple[int, int], scale: float, color=(0, 0, 0), thick: int = 2) -> None:
    import cv2

    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)


def make_text_clip(path: str | Path, texts: list[tuple[float, float, str]] | None = None, duration: float = 12.0, fps: int = 25, size: tuple[int, int] = (640, 360)) -> list[tuple[float, float, str]]:
    """A clip of a slowly drifting coloured background with each text shown from t0 to t1.

    Returns the ground truth [(t0, t1, text)]. The background drifts so frames are not all
    identical (as in real footage), but slowly enough that nothing looks like a cut.
    """
    if texts is None:
        texts = [(2.0, 5.0, "WORLD HEALTH ORGANIZATION"), (7.0, 10.5, "Budget Review 2024")]
    w, h = size

    def frames() -> Iterator[np.ndarray]:
        yy, xx = np.mgrid[0:h, 0:w]
        for i in range(int(duration * fps)):
            t = i / fps
            shade = (xx + 3 * t * fps) % w / w
            img = np.empty((h, w, 3), np.uint8)
            img[..., 0] = 200 + 40 * shade
            img[..., 1] = 210
            img[..., 2] = 190 + 30 * (yy / h)
            for t0, t1, text in texts:
                if t0 <= t < t1:
                    _draw(img, text, (30, h // 2), 1.1, (10, 10, 60), 2)
            yield img

    write_video(path, frames(), fps, size)
    return texts


def make_slides_clip(path: str | Path, titles: list[str], slide_seconds: float = 10.0, fps: int = 25, size: tuple[int, int] = (640, 360)) -> list[tuple[float, float, str]]:
    """Slides on one template (a blue header band with the title, two body lines), each shown
    ``slide_seconds``, with a progress bar creeping along the bottom as in a screen recording.

    Consecutive slides differ only in their text, so a shot detector sees one shot. Returns the
    ground truth [(t0, t1, title)].
    """
    import cv2

    w, h = size
    truth = [(i * slide_seconds, (i + 1) * slide_seconds, t) for i, t in enumerate(titles)]
    total = len(titles) * slide_seconds

    def slide(i: int, title: str) -> np.ndarray:
        img = np.full((h, w, 3), 245, np.uint8)
        img[: h // 6] = (30, 60, 120)
        _draw(img, title, (int(0.05 * w), int(h / 9)), w / 800, (255, 255, 255), 2)
        _draw(img, f"Point {i + 1}: figures for {title.split()[-1].lower()}", (int(0.08 * w), int(0.45 * h)), w / 1100, (20, 20, 20), 1)
        _draw(img, "Sources and notes", (int(0.08 * w), int(0.62 * h)), w / 1400, (60, 60, 60), 1)
        return img

    def frames() -> Iterator[np.ndarray]:
        pics = [slide(i, t) for i, t in enumerate(titles)]
        for k in range(int(round(total * fps))):
            t = k / fps
            f = pics[min(len(pics) - 1, int(t // slide_seconds))].copy()
            cv2.rectangle(f, (0, h - 6), (int(w * t / total), h), (200, 80, 40), -1)
            yield f

    write_video(path, frames(), fps, size)
    return truth


def _decode_rgb(path: str | Path, size: tuple[int, int]) -> Iterator[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            yield f.to_ndarray(format="rgb24", width=size[0], height=size[1])


def join_clips(paths: list[str | Path], out: str | Path, fps: int = 25, size: tuple[int, int] = (640, 360), max_seconds: float | None = None) -> list[float]:
    """Re-encode videos back to back at a common size and rate; returns the join times (s)."""
    import av

    joins: list[float] = []
    count = [0]

    def frames() -> Iterator[np.ndarray]:
        for k, p in enumerate(paths):
            if k:
                joins.append(count[0] / fps)
            with av.open(str(p)) as c:
                st = c.streams.video[0]
                src_fps = float(st.average_rate or fps)
            n_max = int(max_seconds * fps) if max_seconds else None
            # resample to the common rate by time, so the join time is exact
            n_out, i_src = 0, 0
            for f in _decode_rgb(p, size):
                t_src = i_src / src_fps
                i_src += 1
                while n_out / fps <= t_src + 1e-9 and (n_max is None or n_out < n_max):
                    yield f
                    n_out += 1
                    count[0] += 1
                if n_max is not None and n_out >= n_max:
                    break

    write_video(out, frames(), fps, size)
    return joins


def make_audio_only(path: str | Path, seconds: float = 2.0, sr: int = 16000) -> Path:
    """An .m4a-style file with a tone and no video stream."""
    import av

    path = Path(path)
    t = np.arange(int(seconds * sr)) / sr
    pcm = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    with av.open(str(path), "w", format="mp4") as out:
        st = out.add_stream("aac", rate=sr, layout="mono")
        for i in range(0, len(pcm), 4096):
            af = av.AudioFrame.from_ndarray(pcm[i : i + 4096].reshape(1, -1), format="s16", layout="mono")
            af.sample_rate, af.pts, af.time_base = sr, i, Fraction(1, sr)
            for pkt in st.encode(af):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return path


def truncate_copy(src: str | Path, dst: str | Path, keep_bytes: int) -> Path:
    """The first ``keep_bytes`` of a file (a download cut short)."""
    with open(src, "rb") as f:
        data = f.read(keep_bytes)
    Path(dst).write_bytes(data)
    return Path(dst)


# --- the long talk --------------------------------------------------------------------------

TOPICS = [
    ("Introduction", "World Health Organization", "WHO"),
    ("Vaccine Supply", "Global Alliance for Vaccines", "GAVI"),
    ("Climate Models", "National Oceanic and Atmospheric Administration", "NOAA"),
    ("Space Programs", "European Space Agency", "ESA"),
    ("Energy Markets", "International Energy Agency", "IEA"),
    ("Data Privacy", "Electronic Frontier Foundation", "EFF"),
]
_SENTENCES = [
    "Today we look at {topic} and what the {org} reported this year.",
    "The {acr} published new figures on {topic_l} in March.",
    "Researchers at the {org} compared several regions and found large differences.",
    "Professor Maria Lopez explained why the numbers changed so quickly.",
    "According to the {acr}, the trend will continue for at least five years.",
    "Funding for {topic_l} grew by twelve percent compared with the previous budget.",
    "Critics argue that the {acr} should share more of its raw data.",
    "We will come back to {topic_l} after a short look at the methods.",
]


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def _speak(text: str, wav_path: Path, sr: int = 16000, wpm: int = 165) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(wpm), "-w", str(wav_path), text], check=True, capture_output=True)
    with wave.open(str(wav_path)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0
    if rate != sr:  # espeak-ng writes 22050 Hz: resample linearly (speech band is far below Nyquist)
        n = int(round(len(x) * sr / rate))
        x = np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x).astype(np.float32)
    return x


def make_talk_video(path: str | Path, minutes: float = 10.0, slide_seconds: float = 30.0, fps: int = 25, size: tuple[int, int] = (1280, 720), sr: int = 16000) -> dict:
    """A lecture-like video with espeak-ng speech, slides changing every ~``slide_seconds``,
    and ``<stem>.srt`` beside it. Returns {"video", "srt", "cues": [(t0, t1, text)], "slides": [(t0, t1, title)]}.
    """
    import cv2

    if not espeak_available():
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    path = Path(path)
    total = minutes * 60
    cues, slides, pieces = [], [], []
    t = 0.0
    k = 0
    with tempfile.TemporaryDirectory() as tmp:
        while t < total:
            topic, org, acr = TOPICS[len(slides) % len(TOPICS)]
            title = f"{len(slides) + 1}. {topic}"
            s0 = t
            while t - s0 < slide_seconds and t < total:
                sent = _SENTENCES[k % len(_SENTENCES)].format(topic=topic, topic_l=topic.lower(), org=org, acr=acr)
                k += 1
                x = _speak(sent, Path(tmp) / "s.wav", sr)
                # trim espeak's own leading/trailing silence so cue times are tight
                nz = np.flatnonzero(np.abs(x) > 0.01)
                x = x[nz[0] : nz[-1] + 1] if nz.size else x
                gap = np.zeros(int(0.6 * sr), np.float32)
                cues.append((t, t + len(x) / sr, sent))
                pieces += [x, gap]
                t += (len(x) + len(gap)) / sr
            slides.append((s0, t, title, org))
    audio = np.concatenate(pieces)
    w, h = size
    n_frames = int(round(t * fps))

    def slide_image(title: str, org: str) -> np.ndarray:
        img = np.full((h, w, 3), 245, np.uint8)
        img[: h // 6] = (30, 60, 120)
        _draw(img, title, (int(0.05 * w), int(h / 9)), w / 800, (255, 255, 255), 3)
        _draw(img, org, (int(0.08 * w), int(0.45 * h)), w / 1100, (20, 20, 20), 2)
        _draw(img, "Key figures and sources", (int(0.08 * w), int(0.62 * h)), w / 1400, (60, 60, 60), 2)
        return img

    def frames() -> Iterator[np.ndarray]:
        si, img = -1, None
        for i in range(n_frames):
            ti = i / fps
            j = min(len(slides) - 1, next((q for q, s in enumerate(slides) if s[0] <= ti < s[1]), len(slides) - 1))
            if j != si:
                si, img = j, slide_image(slides[j][2], slides[j][3])
            # a moving progress bar, so frames differ like in a real recording
            f = img.copy()
            cv2.rectangle(f, (0, h - 8), (int(w * ti / t), h), (200, 80, 40), -1)
            yield f

    write_video(path, frames(), fps, size, audio=audio, sr=sr)
    srt = path.with_suffix(".srt")
    srt.write_text("".join(f"{i + 1}\n{_fmt_srt(a)} --> {_fmt_srt(b)}\n{txt}\n\n" for i, (a, b, txt) in enumerate(cues)), encoding="utf-8")
    return {"video": path, "srt": srt, "cues": cues, "slides": [(a, b, title) for a, b, title, _ in slides]}
