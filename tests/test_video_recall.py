"""A picture read before is not OCR'd again when it comes back; a changed digit of small print is."""

from __future__ import annotations

import cv2
import numpy as np

from sleuth.readers.video import onscreen


def _frame(name: str, small: str = "4 participants") -> np.ndarray:
    img = np.full((360, 640, 3), 32, np.uint8)
    cv2.putText(img, name, (180, 280), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (230, 230, 230), 2)
    cv2.putText(img, small, (540, 335), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (160, 160, 160), 1)
    return img


def test_a_picture_that_comes_back_reuses_its_lines(monkeypatch):
    calls = []

    def fake_ocr(rgb, scale=1.0):
        calls.append(rgb)
        return [{"text": ["Alpha", "Bravo", "Charlie", "Delta", "Echo"][len(calls) - 1], "bbox": (10.0, 10.0, 100.0, 30.0), "score": 0.9}]

    monkeypatch.setattr(onscreen, "ocr_frame", fake_ocr)
    tr = onscreen.ScreenTextTracker(interval=2.0)
    pm, me = _frame("Project Manager"), _frame("Marketing Expert")
    noisy = np.clip(pm.astype(np.int16) + np.random.default_rng(0).integers(-3, 4, pm.shape), 0, 255).astype(np.uint8)
    for t, f in [(0, pm), (4, me), (8, noisy), (12, me), (16, _frame("Project Manager", "5 participants"))]:
        assert tr.offer(t, f, force=True)
    assert len(calls) == 3 and tr.n_ocr == 3 and tr.n_recalled == 2
    # the third read is the first picture again (with compression-like noise): its lines, not a new OCR
    texts = [(it["text"], it["t"]) for it in tr.items]
    assert texts == [("Alpha", 0), ("Bravo", 4), ("Alpha", 8), ("Bravo", 12), ("Charlie", 16)]
