"""The data ``benchmarks/make_recordings.py`` writes, as ``sleuth eval recordings`` reads it.

``manifest.json`` (schema ``sleuth.recordings/1``): ``items`` of ``kind``, ``name``, ``mp4``,
``truth``, ``duration_s``, paths relative to the folder; each truth file (schema
``sleuth.recording/1``) beside its MP4. Names and texts come from the data and are not trusted.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

MANIFEST_SCHEMA = "sleuth.recordings/1"
TRUTH_SCHEMA = "sleuth.recording/1"
KINDS = ("meeting", "lecture")


def load_manifest(data: str | Path) -> list[dict]:
    """The manifest's items with their paths resolved under ``data``; ValueError (one line) when
    the manifest is missing, of another schema, or an item lacks a field."""
    data = Path(data)
    path = data / "manifest.json"
    if not path.is_file():
        raise ValueError(f"{path}: no manifest.json (make recordings with benchmarks/make_recordings.py)")
    try:
        man = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(man, dict) or man.get("schema") != MANIFEST_SCHEMA:
        raise ValueError(f"{path}: schema is not {MANIFEST_SCHEMA}")
    items = []
    for n, it in enumerate(man.get("items") or []):
        if not isinstance(it, dict) or any(k not in it for k in ("kind", "name", "mp4", "truth")) or it["kind"] not in KINDS:
            raise ValueError(f"{path}: item {n} lacks kind (meeting or lecture), name, mp4 or truth")
        items.append({**it, "mp4": data / it["mp4"], "truth": data / it["truth"]})
    return items


def cache_name(name: str) -> str:
    """A file name for a recording's record: its name made safe, plus a hash so that two names
    made alike stay apart (names come from the data and are not trusted)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:60] or "item"
    return f"{safe}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"


def load_truth(item: dict) -> dict:
    """A recording's ground truth; ValueError when it is of another schema."""
    truth = json.loads(Path(item["truth"]).read_text(encoding="utf-8"))
    if not isinstance(truth, dict) or truth.get("schema") != TRUTH_SCHEMA:
        raise ValueError(f"{Path(item['truth']).name}: schema is not {TRUTH_SCHEMA}")
    return truth


def slide_deck(item: dict, truth: dict) -> Path | None:
    """A lecture's PDF (``pdf_path``, relative to the truth file unless absolute); None for a meeting."""
    if item["kind"] != "lecture" or not truth.get("pdf_path"):
        return None
    p = Path(truth["pdf_path"])
    if not p.is_absolute():
        p = Path(item["truth"]).parent / p
    if not p.is_file():
        raise ValueError(f"{item['name']}: its slide deck {p.name} is missing")
    return p
