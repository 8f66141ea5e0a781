"""Keyframe candidates kept as small JPEGs while frames stream past.

Frames are offered every few seconds and at shot starts; each accepted one is encoded at once
(max 320 px wide, quality 70, about 10 KB) so the raw frame can be dropped. After the structure
is known the reader picks the candidates each segment and scene refers to; the rest are
discarded, so memory stays at a few KB per sampled second whatever the video's resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MAX_WIDTH = 320
QUALITY = 70


def encode_jpeg(rgb: np.ndarray, max_width: int = MAX_WIDTH, quality: int = QUALITY) -> bytes:
    h, w = rgb.shape[:2]
    if w > max_width:
        rgb = cv2.resize(rgb, (max_width, max(1, round(h * max_width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def asset_name(t: float) -> str:
    """Name by time in milliseconds, e.g. kf_0012340.jpg for 12.34 s: unique and sortable."""
    return f"kf_{int(round(t * 1000)):07d}.jpg"


@dataclass
class Candidate:
    t: float
    name: str
    jpeg: bytes
    shot_start: bool = False


class KeyframeStore:
    def __init__(self, interval: float = 2.0):
        self.interval = interval
        self.cands: list[Candidate] = []
        self._last = -1e9

    def offer(self, t: float, rgb: np.ndarray, force: bool = False) -> bool:
        if not force and t - self._last < self.interval - 1e-6:
            return False
        name = asset_name(t)
        if self.cands and self.cands[-1].name == name:
            return False
        self.cands.append(Candidate(t, name, encode_jpeg(rgb), force))
        self._last = t
        return True

    def pick(self, t0: float, t1: float, k: int = 3) -> list[str]:
        """Up to k candidates inside [t0, t1): shot starts first, then spread evenly by time."""
        inside = [c for c in self.cands if t0 - 1e-6 <= c.t < t1]
        if not inside:
            if not self.cands:
                return []
            mid = (t0 + t1) / 2
            return [min(self.cands, key=lambda c: abs(c.t - mid)).name]
        chosen = [c for c in inside if c.shot_start][:k]
        rest = [c for c in inside if c not in chosen]
        need = k - len(chosen)
        if need > 0 and rest:
            step = len(rest) / need
            chosen += [rest[int(i * step + step / 2)] for i in range(min(need, len(rest)))]
        return [c.name for c in sorted(chosen, key=lambda c: c.t)]

    def assets(self, names: set[str]) -> dict[str, bytes]:
        return {c.name: c.jpeg for c in self.cands if c.name in names}
