"""OCR of rendered pages and frames: RapidOCR (PP-OCR ONNX models shipped in the wheel) by default,
PaddleOCR when asked for and installed.

Loading the ONNX sessions takes about a second, so each backend is created once per process
(lazily, behind a lock) and reused. onnxruntime is limited to a couple of threads because
ingestion runs beside embedding on small machines; ``SLEUTH_OCR_THREADS`` overrides it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core import ReaderError

BACKENDS = ("rapid", "paddle")

_ENGINES: dict[str, Any] = {}
_LOCK = threading.Lock()
# onnxruntime sessions are thread-safe for run(), but RapidOCR keeps per-call state on the object
_RUN_LOCK = threading.Lock()


@dataclass
class OcrBox:
    """One recognised text line; the box is axis-aligned, in pixels of the image given."""

    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    score: float


def _threads() -> int:
    env = os.environ.get("SLEUTH_OCR_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(2, os.cpu_count() or 1))


def get_engine(backend: str = "rapid"):
    """The process-wide OCR engine for ``backend`` (created on first use)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown OCR backend {backend!r}; expected one of {BACKENDS}")
    eng = _ENGINES.get(backend)
    if eng is not None:
        return eng
    with _LOCK:
        eng = _ENGINES.get(backend)
        if eng is None:
            eng = _make_rapid() if backend == "rapid" else _make_paddle()
            _ENGINES[backend] = eng
    return eng


def _make_rapid():
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ReaderError(f"OCR unavailable: rapidocr_onnxruntime cannot be imported ({e})") from None
    n = _threads()
    return RapidOCR(intra_op_num_threads=n, inter_op_num_threads=1, print_verbose=False)


def _make_paddle():
    try:
        import paddleocr  # noqa: F401
    except Exception as e:
        raise ReaderError(
            f"OCR backend 'paddle' unavailable: cannot import paddleocr ({type(e).__name__}); "
            "install paddleocr and paddlepaddle, or use ocr='auto'"
        ) from None
    from paddleocr import PaddleOCR

    try:
        return PaddleOCR(use_angle_cls=True, lang="en", show_log=False)
    except TypeError:  # PaddleOCR 3.x dropped show_log / use_angle_cls
        return PaddleOCR(lang="en")
    except Exception as e:
        raise ReaderError(f"OCR backend 'paddle' failed to start: {type(e).__name__}: {e}".splitlines()[0]) from None


def _to_array(image) -> np.ndarray:
    if isinstance(image, np.ndarray):
        arr = image
    else:  # PIL image
        arr = np.asarray(image.convert("RGB"))
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return np.ascontiguousarray(arr[..., :3])


def _quad_box(pts) -> tuple[float, float, float, float]:
    xs = [float(p[0]) for p in pts]
    ys = [float(p[1]) for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def ocr_image(image, backend: str = "rapid", min_score: float = 0.5) -> list[OcrBox]:
    """Text lines of an image (PIL image or HxWx3 RGB array), top to bottom."""
    arr = _to_array(image)
    eng = get_engine(backend)
    if backend == "rapid":
        # RapidOCR's LoadImage treats arrays as BGR (OpenCV order)
        bgr = arr[..., ::-1].copy()
        with _RUN_LOCK:
            result, _ = eng(bgr)
        raw = [(box, text, score) for box, text, score in (result or [])]
    else:
        raw = _paddle_run(eng, arr)
    out = []
    for box, text, score in raw:
        text = " ".join(str(text).split())
        if not text or float(score) < min_score:
            continue
        x0, y0, x1, y1 = _quad_box(box)
        out.append(OcrBox(text, x0, y0, x1, y1, float(score)))
    out.sort(key=lambda b: (b.top, b.x0))
    return out


def _paddle_run(eng, arr: np.ndarray) -> list[tuple[Any, str, float]]:
    bgr = arr[..., ::-1].copy()
    if hasattr(eng, "predict"):  # PaddleOCR 3.x
        res = eng.predict(bgr)
        out = []
        for page in res or []:
            d = page if isinstance(page, dict) else getattr(page, "json", {}).get("res", {})
            for poly, text, score in zip(d.get("rec_polys", []), d.get("rec_texts", []), d.get("rec_scores", [])):
                out.append((poly, text, score))
        return out
    res = eng.ocr(bgr, cls=True)  # PaddleOCR 2.x: [[ [box, (text, score)], ... ]]
    out = []
    for page in res or []:
        for box, (text, score) in page or []:
            out.append((box, text, score))
    return out
