"""Shot boundaries: PySceneDetect's ContentDetector on sparsely sampled frames, then each cut is
moved onto its exact frame by a full-rate look at the short gap where it was seen.

Feeding the detector a few frames a second (instead of every frame) is what keeps long videos
cheap; the refinement restores frame accuracy. :func:`reference_cuts` runs PySceneDetect the
plain way (its own PyAV decoding, every frame) and is what the fast path is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

#: size of the frames the detector compares: enough for colour/edge change, cheap to compute
THUMB = (128, 72)


def thumb(rgb: np.ndarray) -> np.ndarray:
    """Small BGR frame (the colour order PySceneDetect expects)."""
    return cv2.cvtColor(cv2.resize(rgb, THUMB, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)


def hsv_hist(bgr: np.ndarray) -> np.ndarray:
    """Normalised 2-D hue/saturation histogram: the colour signature of a frame."""
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
    h = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256]).astype(np.float32)
    return (h / max(float(h.sum()), 1.0)).reshape(-1)


def hist_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """1 - Bhattacharyya distance: 1.0 for identical colour distributions, 0.0 for disjoint."""
    return float(1.0 - cv2.compareHist(a.astype(np.float32), b.astype(np.float32), cv2.HISTCMP_BHATTACHARYYA))


@dataclass
class Shot:
    t_start: float
    t_end: float
    hist: np.ndarray | None = None  # mean colour histogram of its sampled frames
    n: int = 0
    meta: dict = field(default_factory=dict)


class ShotDetector:
    """Streaming detector: push sampled frames in time order, then :meth:`shots`."""

    def __init__(self, rate: float, threshold: float = 27.0, min_shot_s: float = 0.6):
        from scenedetect.detectors import ContentDetector

        self.rate = rate
        self._det = ContentDetector(threshold=threshold, min_scene_len=max(1, round(min_shot_s * rate)))
        self._k = 0
        self.samples: list[float] = []  # times of pushed frames
        self.cuts: list[tuple[float, float]] = []  # (time of last frame before, first frame after)
        self._hist_sum: list[np.ndarray] = [np.zeros(128, np.float32)]
        self._hist_n: list[int] = [0]

    def push(self, t: float, small_bgr: np.ndarray) -> bool:
        """Feed one frame; True when a cut was detected at (or just before) this frame."""
        from scenedetect import FrameTimecode

        self.samples.append(t)
        # the detector counts in its own sample clock, so min_scene_len is in samples
        found = self._det.process_frame(FrameTimecode(self._k, fps=float(self.rate)), small_bgr)
        self._k += 1
        is_cut = False
        for tc in found:
            k = tc.frame_num
            if 0 < k < len(self.samples):
                self.cuts.append((self.samples[k - 1], self.samples[k]))
                self._hist_sum.append(np.zeros(128, np.float32))
                self._hist_n.append(0)
                is_cut = True
        self._hist_sum[-1] += hsv_hist(small_bgr)
        self._hist_n[-1] += 1
        return is_cut

    def refine(self, source, abrupt: float = 0.5) -> list[float]:
        """Exact cut times: the frame after the largest change inside each sampled gap.

        A gap whose change is spread over many frames (a fade, fast motion seen a few times a
        second) is no cut: a real cut puts at least ``abrupt`` of the gap's whole change into one
        frame step. Dropped cuts merge their shots' colour statistics.
        """
        kept: list[float] = []
        hs, hn = [self._hist_sum[0]], [self._hist_n[0]]
        for j, (before, after) in enumerate(self.cuts):
            frames = source.frames_between(before, after)
            t_cut: float | None = after
            if len(frames) >= 3:
                th = [thumb(f).astype(np.int16) for _, f in frames]
                steps = [float(np.abs(th[i + 1] - th[i]).mean()) for i in range(len(th) - 1)]
                whole = float(np.abs(th[-1] - th[0]).mean())
                k = int(np.argmax(steps))
                t_cut = frames[k + 1][0] if steps[k] >= abrupt * max(whole, 1e-6) else None
            if t_cut is None:
                hs[-1] = hs[-1] + self._hist_sum[j + 1]
                hn[-1] += self._hist_n[j + 1]
            else:
                kept.append(t_cut)
                hs.append(self._hist_sum[j + 1])
                hn.append(self._hist_n[j + 1])
        self._hist_sum, self._hist_n = hs, hn
        self.refined = kept
        return kept

    def shots(self, duration: float, cut_times: list[float] | None = None) -> list[Shot]:
        """Shots between cuts (the refined ones when :meth:`refine` ran)."""
        if cut_times is None:
            cut_times = getattr(self, "refined", None)
            if cut_times is None:
                cut_times = [a for _, a in self.cuts]
        bounds = [0.0, *cut_times, duration]
        shots = []
        for i in range(len(bounds) - 1):
            n = self._hist_n[i] if i < len(self._hist_n) else 0
            h = self._hist_sum[i] / n if n else None
            shots.append(Shot(bounds[i], max(bounds[i + 1], bounds[i]), h, n))
        return shots


def reference_cuts(path: str, threshold: float = 27.0) -> list[float]:
    """PySceneDetect end to end on every frame (slow, exact): the reference for ShotDetector."""
    from scenedetect import ContentDetector, SceneManager, open_video

    video = open_video(path, backend="pyav")
    sm = SceneManager()
    sm.add_detector(ContentDetector(threshold=threshold))
    sm.auto_downscale = True
    sm.detect_scenes(video)
    return [float(s.seconds) for s, _ in sm.get_scene_list()[1:]]
