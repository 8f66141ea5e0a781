"""OCR of rendered pages and frames: RapidOCR (PP-OCR ONNX models shipped in the wheel) by default,
PaddleOCR when asked for and installed.

Two ways of running RapidOCR's det/cls/rec models:

- ``mode="thorough"``: RapidOCR as it comes (detector input upscaled so the short side is at
  least 736 px, the 0/180 degree classifier on every line, lines recognised in padded batches
  of 6, onnxruntime's default thread pool). This is the reference the fast mode is tested against.
- ``mode="fast"`` (default): the same models, run the way a page of print needs them. Recognition
  is ~80% of the thorough cost, so most of the saving is there: each line is recognised on its
  own (batches of wide line images cost ~40% more per line than single lines: the activations no
  longer fit in cache), sessions run single-threaded (spinning pool threads burn CPU while they
  wait) and lines are spread over worker threads instead; line images are narrowed to 70% of their
  width, which PP-OCR's recogniser is trained for (it squeezes long lines into 320 px) and which
  reads print as well as full width (a line that still reads below :data:`RECHECK` is read again
  at full width). The detector sees the image with its long side at most 960 px; its boxes, looser
  at that size, are shrunk onto the ink of each line. The orientation classifier is skipped:
  when most lines of a page read with low confidence the page is read again turned half a turn
  and the better reading kept (upside-down text reads at ~0.5 confidence against ~0.95 upright, a
  clearer signal than the classifier, which at its 0.9 threshold turns few upside-down lines).

For PDF pages :func:`ocr_page` also picks the render scale from the text: a coarse render finds
the lines, then the page is rendered so that a typical line is ~36 px tall (small print gets
more pixels, large print fewer) and the lines are cut from that.

The recogniser (PP-OCRv4, Chinese+English) often drops the narrow gaps between English words;
every recognised line goes through :func:`.ocr_words.split_run_together`, which splits tokens
that run English words together.

Loading the ONNX sessions takes about a second, so each engine is created once per process
(lazily, behind a lock) and reused. ``SLEUTH_OCR_THREADS`` sets the number of fast-mode workers.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..core import ReaderError
from .ocr_words import split_run_together

BACKENDS = ("rapid", "paddle")
MODES = ("fast", "thorough")

#: fast mode: longest side of the detector's input
DET_SIDE = 960
#: fast mode: line images are narrowed to this fraction of their width before recognition
SQUEEZE = 0.7
#: fast mode: a page whose median line confidence is lower is read turned; a line, at full width
RECHECK = 0.9
#: the recogniser's input height (PP-OCRv4 rec is trained on 48 px lines)
REC_H = 48
#: ocr_page: a typical detected line box is rendered this many pixels tall
LINE_PX = 36.0
#: ocr_page: render scale bounds (pixels per point)
MIN_SCALE, MAX_SCALE = 1.25, 4.0
#: ocr_page: below this median line height (detector pixels) the coarse detection is redone finer
MIN_DET_LINE_PX = 14.0
#: scale the thorough mode renders PDF pages at (144 dpi), as the reader always did before
REFERENCE_SCALE = 2.0

_ENGINES: dict[str, Any] = {}
_LOCK = threading.Lock()
# onnxruntime sessions are thread-safe for run(), but RapidOCR keeps per-call state on the object
# (the detector's resize op, the post-processing thresholds)
RUN_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None


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


def get_engine(backend: str = "rapid", mode: str = "fast"):
    """The process-wide OCR engine for ``backend`` (created on first use). ``mode`` picks the
    RapidOCR configuration (the fast one has single-threaded sessions and a smaller detector)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown OCR backend {backend!r}; expected one of {BACKENDS}")
    if mode not in MODES:
        raise ValueError(f"unknown OCR mode {mode!r}; expected one of {MODES}")
    key = "paddle" if backend == "paddle" else f"rapid-{mode}"
    eng = _ENGINES.get(key)
    if eng is not None:
        return eng
    with _LOCK:
        eng = _ENGINES.get(key)
        if eng is None:
            if backend == "paddle":
                eng = _make_paddle()
            else:
                eng = _make_rapid_fast() if mode == "fast" else _make_rapid()
            _ENGINES[key] = eng
    return eng


def _make_rapid():
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ReaderError(f"OCR unavailable: rapidocr_onnxruntime cannot be imported ({e})") from None
    n = _threads()
    # RapidOCR 1.4.4 keeps these in its Global section only, so the sessions get onnxruntime's
    # default pool; kept as is: this is the reference configuration
    return RapidOCR(intra_op_num_threads=n, inter_op_num_threads=1, print_verbose=False)


def _make_rapid_fast():
    try:
        import onnxruntime as ort
        import rapidocr_onnxruntime
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ReaderError(f"OCR unavailable: rapidocr_onnxruntime cannot be imported ({e})") from None
    eng = RapidOCR(det_limit_type="max", det_limit_side_len=DET_SIDE, rec_batch_num=1, print_verbose=False)
    # one thread per session and no spinning: parallelism comes from recognising lines on
    # separate workers, which keeps every core busy with work rather than with waiting
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 4
    so.enable_cpu_mem_arena = False
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    models = Path(rapidocr_onnxruntime.__file__).parent / "models"
    for holder, name in (
        (eng.text_det.infer, "ch_PP-OCRv4_det_infer.onnx"),
        (eng.text_cls.infer, "ch_ppocr_mobile_v2.0_cls_infer.onnx"),
        (eng.text_rec.session, "ch_PP-OCRv4_rec_infer.onnx"),
    ):
        holder.session = ort.InferenceSession(str(models / name), sess_options=so, providers=["CPUExecutionProvider"])
    return eng


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


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        with _LOCK:
            if _POOL is None:
                _POOL = ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="sleuth-ocr")
    return _POOL


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


def _boxes(raw, min_score: float, scale: float = 1.0) -> list[OcrBox]:
    out = []
    for box, text, score in raw:
        text = split_run_together(" ".join(str(text).split()))
        if not text or float(score) < min_score:
            continue
        x0, y0, x1, y1 = (v / scale for v in _quad_box(box))
        out.append(OcrBox(text, x0, y0, x1, y1, float(score)))
    out.sort(key=lambda b: (b.top, b.x0))
    return out


def ocr_image(image, backend: str = "rapid", min_score: float = 0.5, mode: str = "fast") -> list[OcrBox]:
    """Text lines of an image (PIL image or HxWx3 RGB array), top to bottom."""
    if mode not in MODES:
        raise ValueError(f"unknown OCR mode {mode!r}; expected one of {MODES}")
    arr = _to_array(image)
    eng = get_engine(backend, mode)
    # RapidOCR and PaddleOCR treat arrays as BGR (OpenCV order)
    bgr = arr[..., ::-1].copy()
    if backend == "paddle":
        raw = _paddle_run(eng, bgr)
    elif mode == "thorough":
        with RUN_LOCK:
            result, _ = eng(bgr)
        raw = [(box, text, score) for box, text, score in (result or [])]
    else:
        raw = _fast_image(eng, bgr)
    return _boxes(raw, min_score)


def ocr_page(
    render: Callable[[float], Any],
    width_pt: float,
    height_pt: float,
    backend: str = "rapid",
    min_score: float = 0.5,
    mode: str = "fast",
) -> list[OcrBox]:
    """Text lines of a page, boxes in points. ``render(scale)`` draws the page at ``scale``
    pixels per point (a PIL image or RGB array).

    The thorough mode and PaddleOCR read one render at 144 dpi; the fast mode renders at a scale
    matched to the size of the print (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"unknown OCR mode {mode!r}; expected one of {MODES}")
    from .render import max_scale

    cap = max_scale(width_pt, height_pt)  # bounded pixels on any page size (readers.render)
    if backend == "paddle" or mode == "thorough":
        s = min(REFERENCE_SCALE, cap)
        return _boxes_scaled(ocr_image(render(s), backend, min_score, mode), s)
    eng = get_engine(backend, "fast")
    long_side = max(width_pt, height_pt, 1.0)
    det_scale = min(cap, DET_SIDE / long_side)
    det_img = _to_array(render(det_scale))[..., ::-1].copy()
    quads = _detect(eng, det_img)
    if not quads:
        return []
    line_px = float(np.median([_quad_height(q) for q in quads]))
    if line_px < MIN_DET_LINE_PX:
        # print too small for a 960 px detector: find the lines again at a finer scale
        det_scale = min(MAX_SCALE, cap, det_scale * MIN_DET_LINE_PX * 1.25 / line_px)
        det_img = _to_array(render(det_scale))[..., ::-1].copy()
        quads = _detect(eng, det_img, limit=max(det_img.shape[:2]))
        if not quads:
            return []
        line_px = float(np.median([_quad_height(q) for q in quads]))
    rec_scale = min(MAX_SCALE, cap, max(MIN_SCALE, LINE_PX * det_scale / line_px))
    if abs(rec_scale / det_scale - 1.0) < 0.1:
        rec_scale, rec_img = det_scale, det_img
    else:
        rec_img = _to_array(render(rec_scale))[..., ::-1].copy()
        k = rec_scale / det_scale
        quads = [(q * k).astype(np.float32) for q in quads]
    raw = _recognise(eng, rec_img, quads)
    return _boxes(raw, min_score, rec_scale)


def _boxes_scaled(boxes: list[OcrBox], scale: float) -> list[OcrBox]:
    for b in boxes:
        b.x0, b.top, b.x1, b.bottom = b.x0 / scale, b.top / scale, b.x1 / scale, b.bottom / scale
    return boxes


def _quad_height(q: np.ndarray) -> float:
    return float(min(np.linalg.norm(q[0] - q[3]), np.linalg.norm(q[0] - q[1])))


def _detect(eng, bgr: np.ndarray, limit: int = DET_SIDE) -> list[np.ndarray]:
    """Line quadrilaterals in ``bgr``'s pixels, in reading order; the detector sees the image
    shrunk to ``limit`` pixels on its long side (RapidOCR's own "max" limit never goes below
    2000 px for a page)."""
    import cv2

    h, w = bgr.shape[:2]
    f = min(1.0, limit / max(h, w))
    small = bgr if f >= 1.0 else cv2.resize(bgr, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    with RUN_LOCK:
        boxes, _ = eng.auto_text_det(small)
    if boxes is None:
        return []
    return [(np.asarray(b, np.float32) / np.float32(f)) for b in boxes]


def _fast_image(eng, bgr: np.ndarray) -> list[tuple[Any, str, float]]:
    """RapidOCR's own pre-processing (bounds on the image size, padding of very flat images),
    then the fast detection and recognition."""
    raw_h, raw_w = bgr.shape[:2]
    img, ratio_h, ratio_w = eng.preprocess(bgr)
    img, op_record = eng.maybe_add_letterbox(img, {"preprocess": {"ratio_h": ratio_h, "ratio_w": ratio_w}})
    quads = _detect(eng, img)
    if not quads:
        return []
    raw = _recognise(eng, img, quads)
    if not raw:
        return []
    pts = eng._get_origin_points([q for q, _, _ in raw], op_record, raw_h, raw_w)
    return [(p, text, score) for p, (_, text, score) in zip(pts, raw)]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of the runs of True in a 1-D mask."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _tighten(gray: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """An axis-aligned detector box shrunk onto the ink of its line, plus a margin of 10% of the
    ink's height, never larger than it was.

    The detector's boxes carry a margin that grows, in points, as its input shrinks: at 960 px a
    page's body lines come out ~25% taller than at 144 dpi while large headings do not, which
    would blur the size difference headings are found by. The ink is a resolution-free measure.
    Skewed boxes are left as they are."""
    xs, ys = quad[:, 0], quad[:, 1]
    x0, x1 = int(np.floor(xs.min())), int(np.ceil(xs.max()))
    y0, y1 = int(np.floor(ys.min())), int(np.ceil(ys.max()))
    w, h = x1 - x0, y1 - y0
    if w < 4 or h < 4 or np.ptp(ys[:2]) > 2 or np.ptp(xs[[0, 3]]) > 2:
        return quad
    region = gray[y0:y1, x0:x1]
    if region.size == 0:
        return quad
    vertical = h >= 1.5 * w  # a line running down the page (a quarter-turned scan)
    if vertical:
        region = region.T
    bg = float(np.median(region))
    ink = region < bg - 60 if bg >= 128 else region > bg + 60
    across = ink.sum(axis=1)
    if across.max() == 0:
        return quad
    # the band of rows that holds most ink is the line; a separate band is a neighbour's edge
    band = max(_runs(across > 0), key=lambda r: int(across[r[0] : r[1]].sum()))
    along = np.flatnonzero(ink[band[0] : band[1]].any(axis=0))
    pad = max(1, round(0.1 * (band[1] - band[0])))
    a0, a1 = max(0, band[0] - pad), min(region.shape[0], band[1] + pad)
    b0, b1 = max(0, int(along[0]) - pad), min(region.shape[1], int(along[-1]) + 1 + pad)
    if vertical:
        a0, a1, b0, b1 = b0, b1, a0, a1
    return np.array([[x0 + b0, y0 + a0], [x0 + b1, y0 + a0], [x0 + b1, y0 + a1], [x0 + b0, y0 + a1]], np.float32)


def _line_input(crop: np.ndarray, squeeze: float) -> np.ndarray:
    """The crop resized to the recogniser's height and ``squeeze`` of its proportional width,
    in one resampling (the recogniser's own resize is then a no-op)."""
    import cv2

    h, w = crop.shape[:2]
    out_w = max(REC_H // 4, int(round(REC_H * w / max(h, 1) * squeeze)))
    interp = cv2.INTER_AREA if h > REC_H else cv2.INTER_LINEAR
    return cv2.resize(crop, (out_w, REC_H), interpolation=interp)


def _rec(eng, img: np.ndarray) -> tuple[str, float]:
    text, score = eng.text_rec([img])[0][0][:2]
    return text, float(score)


def _map(fn, items: list) -> list:
    if _threads() > 1 and len(items) > 1:
        return list(_pool().map(fn, items))
    return [fn(x) for x in items]


def _recognise(eng, bgr: np.ndarray, quads: list[np.ndarray]) -> list[tuple[np.ndarray, str, float]]:
    """Read each quad's line: narrowed first; a page that reads poorly throughout is tried
    turned half a turn; lines still under :data:`RECHECK` are read again at full width."""
    import cv2

    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    quads = [_tighten(gray, q) for q in quads]
    crops = eng.get_crop_img_list(bgr, [q.copy() for q in quads])
    read = _map(lambda c: _rec(eng, _line_input(c, SQUEEZE)), crops)
    if float(np.median([s for _, s in read])) < RECHECK:
        # most lines unreadable: the crops are probably upside down (a scan fed in turned,
        # or a page turned a quarter the other way, which the crop's own quarter turn makes a half)
        turned_crops = [cv2.rotate(c, cv2.ROTATE_180) for c in crops]
        turned = _map(lambda c: _rec(eng, _line_input(c, SQUEEZE)), turned_crops)
        if np.median([s for _, s in turned]) > np.median([s for _, s in read]):
            crops, read = turned_crops, turned
    low = [i for i, (_, s) in enumerate(read) if s < RECHECK]
    for i, again in zip(low, _map(lambda i: _rec(eng, _line_input(crops[i], 1.0)), low)):
        if again[1] > read[i][1]:
            read[i] = again
    return [(q, t, s) for q, (t, s) in zip(quads, read)]


def _paddle_run(eng, bgr: np.ndarray) -> list[tuple[Any, str, float]]:
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
