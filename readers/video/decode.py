"""Probing and bounded-memory decoding of video frames and audio.

Frames come from decord (fast, scales inside its decoder) and, for what decord cannot open or
decode (AV1, odd containers, broken indexes), from PyAV. Both paths decode at a reduced size and
yield frames in small batches, so a 4K or three-hour file costs the same memory as a short one.
:func:`reference_frames` is the plain PyAV implementation the fast path is tested against.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ...core import ReaderError
from ..kinds import VIDEO_SUFFIXES  # noqa: F401  (re-exported: the video reader's suffixes)

log = logging.getLogger(__name__)

#: frames per batch asked of the decoder: bounds memory (32 x 640x360 RGB is about 22 MB)
BATCH = 32


@dataclass
class VideoInfo:
    path: str
    duration: float
    fps: float
    width: int
    height: int
    n_frames: int
    has_audio: bool
    video_codec: str = ""
    audio_codec: str = ""


def _fail(path: str | os.PathLike, reason: str) -> ReaderError:
    reason = " ".join(str(reason).split())  # one line, whatever the library said
    return ReaderError(f"{Path(path).name}: {reason}")


def probe(path: str | os.PathLike) -> VideoInfo:
    """Container facts via PyAV; raises ReaderError for empty, unreadable or audio-only files."""
    import av

    p = Path(path)
    if not p.exists():
        raise _fail(p, "file not found")
    if p.stat().st_size == 0:
        raise _fail(p, "empty file (0 bytes)")
    try:
        with av.open(str(p)) as c:
            vstreams = [s for s in c.streams.video if s.codec_context is not None]
            astreams = list(c.streams.audio)
            if not vstreams:
                what = "audio-only file" if astreams else "no video stream"
                raise _fail(p, f"{what}, nothing to index as video")
            vs = vstreams[0]
            fps = float(vs.average_rate or vs.guessed_rate or vs.base_rate or 0) or 25.0
            duration = 0.0
            if vs.duration is not None and vs.time_base is not None:
                duration = float(vs.duration * vs.time_base)
            if duration <= 0 and c.duration:
                duration = c.duration / 1_000_000
            n = int(vs.frames or 0) or int(round(duration * fps))
            w, h = vs.codec_context.width, vs.codec_context.height
            if not w or not h:
                raise _fail(p, "video stream has no frame size (corrupt header?)")
            return VideoInfo(
                path=str(p), duration=duration, fps=fps, width=w, height=h, n_frames=n,
                has_audio=bool(astreams), video_codec=vs.codec_context.name or "",
                audio_codec=(astreams[0].codec_context.name or "") if astreams else "",
            )
    except ReaderError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as e:
        why = getattr(e, "strerror", None) or str(e).replace(str(p), "").strip(" :'")
        raise _fail(p, f"cannot open as video ({why})") from None


def target_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """Downscaled (w, h), aspect kept, both even (decoders and JPEG want even sizes)."""
    if width <= max_width:
        w, h = width, height
    else:
        w, h = max_width, round(height * max_width / width)
    return max(2, w - w % 2), max(2, h - h % 2)


class FrameSource:
    """Frames at a reduced size, sampled at a fixed rate, from decord or PyAV.

    ``backend`` is "decord" or "pyav" after construction; ``n_valid`` is the number of frames
    that really decode (decord's count can exceed it for truncated files).
    """

    def __init__(self, info: VideoInfo, max_width: int = 640, prefer: str = "decord"):
        self.info = info
        self.size = target_size(info.width, info.height, max_width)
        self.backend = "pyav"
        self._vr = None
        self._times: np.ndarray | None = None
        self.n_valid = info.n_frames
        self._pyav_last_t = 0.0
        if prefer == "decord":
            try:
                self._open_decord()
                self.backend = "decord"
            except Exception as e:  # decord raises its own DECORDError and RuntimeErrors
                log.info("decord cannot open %s (%s); using PyAV", info.path, e)
                self._vr = None

    # -- decord ---------------------------------------------------------------------------
    def _open_decord(self) -> None:
        import decord
        import decord.logging

        # decord's bundled FFmpeg logs to stderr by itself ("[mov,mp4…] partial file"): the
        # reader reports a damaged file in its own one line, so FFmpeg is kept quiet.
        decord.logging.set_level(decord.logging.QUIET)

        w, h = self.size
        vr = decord.VideoReader(self.info.path, ctx=decord.cpu(0), width=w, height=h, num_threads=0)
        n = len(vr)
        if n <= 0:
            raise RuntimeError("no frames")
        # decord needs the first frame to decode; AV1 and friends fail here, not at open
        vr.get_batch([0]).asnumpy()
        self._times = vr.get_frame_timestamp(list(range(n)))[:, 0].astype(np.float64)
        self._vr = vr
        self.n_valid = n

    def _decord_batch(self, idx: list[int]) -> list[np.ndarray]:
        """Frames for sorted indices; on a decode failure, clamps n_valid to what decodes."""
        try:
            return list(self._vr.get_batch(idx).asnumpy())
        except Exception:
            out = []
            for i in idx:
                try:
                    out.append(self._vr.get_batch([i]).asnumpy()[0])
                except Exception:
                    self.n_valid = min(self.n_valid, i)
                    break
            return out

    def last_time(self) -> float:
        """Time of the last frame that decoded (after a full :meth:`sample` pass)."""
        if self._times is not None:
            return float(self._times[max(0, min(self.n_valid, len(self._times)) - 1)])
        return self._pyav_last_t

    # -- public ---------------------------------------------------------------------------
    def sample(self, rate: float) -> Iterator[tuple[float, int, np.ndarray]]:
        """Yield (t seconds, frame index, RGB frame at self.size) about ``rate`` times a second."""
        if self.backend == "decord":
            yield from self._sample_decord(rate)
        else:
            yield from self._sample_pyav(rate)

    def _sample_decord(self, rate: float) -> Iterator[tuple[float, int, np.ndarray]]:
        times = self._times
        picks, nxt = [], 0.0
        for i, t in enumerate(times):
            if t + 1e-6 >= nxt:
                picks.append(i)
                nxt = (np.floor(t * rate + 1e-6) + 1) / rate  # stay on the k/rate grid
        for b in range(0, len(picks), BATCH):
            idx = [i for i in picks[b : b + BATCH] if i < self.n_valid]
            if not idx:
                break
            frames = self._decord_batch(idx)
            for i, f in zip(idx, frames):
                yield float(times[i]), i, f
            if len(frames) < len(idx):
                break

    def _sample_pyav(self, rate: float) -> Iterator[tuple[float, int, np.ndarray]]:
        import av

        w, h = self.size
        nxt, i = 0.0, -1
        try:
            with av.open(self.info.path) as c:
                vs = c.streams.video[0]
                vs.thread_type = "AUTO"
                for frame in c.decode(vs):
                    i += 1
                    t = float(frame.time) if frame.time is not None else i / self.info.fps
                    self._pyav_last_t = t
                    if t + 1e-6 < nxt:
                        continue
                    nxt = (np.floor(t * rate + 1e-6) + 1) / rate
                    yield t, i, frame.to_ndarray(format="rgb24", width=w, height=h)
        except av.error.FFmpegError as e:
            # a truncated tail: keep what decoded, the reader warns about the shortfall
            log.info("PyAV stopped decoding %s at frame %d: %s", self.info.path, i, e)
        self.n_valid = i + 1

    def frames_between(self, t0: float, t1: float) -> list[tuple[float, np.ndarray]]:
        """Every frame with t0 <= t <= t1 (used to place a cut on its exact frame)."""
        if self.backend == "decord":
            lo = int(np.searchsorted(self._times, t0 - 1e-6))
            hi = int(np.searchsorted(self._times, t1 + 1e-6))
            idx = [i for i in range(lo, min(hi, self.n_valid))]
            if not idx:
                return []
            return list(zip((float(self._times[i]) for i in idx), self._decord_batch(idx)))
        return reference_frames(self.info.path, t0, t1, self.size)


def reference_frames(path: str, t0: float, t1: float, size: tuple[int, int]) -> list[tuple[float, np.ndarray]]:
    """Plain PyAV decode of every frame in [t0, t1] at ``size``: the reference for FrameSource."""
    import av

    out = []
    with av.open(path) as c:
        vs = c.streams.video[0]
        if t0 > 1.0 and vs.time_base:
            c.seek(int(max(0.0, t0 - 1.0) / vs.time_base), stream=vs, backward=True)
        try:
            for frame in c.decode(vs):
                t = float(frame.time)
                if t > t1 + 1e-6:
                    break
                if t >= t0 - 1e-6:
                    out.append((t, frame.to_ndarray(format="rgb24", width=size[0], height=size[1])))
        except av.error.FFmpegError:
            pass
    return out


def load_audio(path: str, sr: int = 16000) -> np.ndarray:
    """Mono float32 PCM at ``sr`` Hz (empty array when there is no audio stream)."""
    chunks = _pcm16_chunks(path, sr)
    if not chunks:
        return np.zeros(0, np.float32)
    # filled piece by piece, each int16 piece dropped once copied: a concatenate, astype and
    # divide would hold 12 bytes a sample at once (1 GB for 90 minutes), this holds at most 6
    out = np.empty(sum(len(c) for c in chunks), np.float32)
    pos = 0
    chunks.reverse()
    while chunks:
        c = chunks.pop()
        np.divide(c, np.float32(32768.0), out=out[pos : pos + len(c)], dtype=np.float32)
        pos += len(c)
    return out


def load_pcm16(path: str, sr: int = 16000) -> np.ndarray:
    """Mono int16 PCM at ``sr`` Hz: half the memory of :func:`load_audio` for a long recording,
    and :func:`pcm_to_float` of any stretch of it is bit for bit that stretch of ``load_audio``."""
    chunks = _pcm16_chunks(path, sr)
    return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def pcm_to_float(pcm: np.ndarray) -> np.ndarray:
    """float32 samples in [-1, 1) from int16 ones, as :func:`load_audio` makes them."""
    if pcm.dtype == np.float32:
        return pcm
    return np.divide(pcm, np.float32(32768.0), dtype=np.float32)


def _pcm16_chunks(path: str, sr: int) -> list[np.ndarray]:
    import av

    chunks: list[np.ndarray] = []
    try:
        with av.open(path) as c:
            if not c.streams.audio:
                return []
            st = c.streams.audio[0]
            res = av.AudioResampler(format="s16", layout="mono", rate=sr)
            try:
                for frame in c.decode(st):
                    for rf in res.resample(frame):
                        chunks.append(rf.to_ndarray().reshape(-1))
            except av.error.FFmpegError as e:
                log.info("audio of %s truncated: %s", path, e)
            for rf in res.resample(None):
                chunks.append(rf.to_ndarray().reshape(-1))
    except av.error.FFmpegError as e:
        raise _fail(path, f"cannot decode audio ({e})") from None
    return chunks
