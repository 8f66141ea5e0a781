"""Loaders for the official benchmark file formats.

- LongBench v1: one JSON-lines file per task, records with exactly
  ``input, context, answers, length, dataset, language, all_classes, _id``.
- LongBench v2: the official ``data.json`` (a JSON list with ``context``), or a JSON-lines file
  with the official fields where ``context`` may instead be given as ``context_file``, a path
  relative to the file's folder (the layout of ``shared/data/longbench_v2``).
- MMLongBench-Doc: ``samples.json`` (or ``samples_dev.json``), a JSON list of records
  ``doc_id, doc_type, question, answer, evidence_pages, evidence_sources, answer_format`` whose
  ``evidence_pages``/``evidence_sources`` are Python-literal strings; PDFs in ``documents/``.
- LVBench: ``video_info.meta.jsonl``, one video per line with its ``qa`` list; videos are found
  in a folder by ``key`` with any common video extension.

Every problem with a file is a :class:`LoaderError` whose message is one line naming the file
(and line) and the reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

LONGBENCH_KEYS = frozenset(
    {"input", "context", "answers", "length", "dataset", "language", "all_classes", "_id"}
)
V2_KEYS = (
    "_id", "domain", "sub_domain", "difficulty", "length", "question",
    "choice_A", "choice_B", "choice_C", "choice_D", "answer",
)  # fmt: skip
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v", ".flv")


class LoaderError(ValueError):
    """A benchmark file that cannot be read; the message is one line: ``path[:line]: reason``."""


@dataclass
class LongBenchItem:
    id: str
    dataset: str
    input: str
    context: str
    answers: list[str]
    length: int
    language: str
    all_classes: list[str] | None

    def to_record(self) -> dict[str, Any]:
        """The official record (field names as in the file)."""
        return {
            "input": self.input, "context": self.context, "answers": self.answers,
            "length": self.length, "dataset": self.dataset, "language": self.language,
            "all_classes": self.all_classes, "_id": self.id,
        }  # fmt: skip


@dataclass
class LongBenchV2Item:
    id: str
    domain: str
    sub_domain: str
    difficulty: str  # easy | hard
    length: str  # short | medium | long
    question: str
    choices: dict[str, str]  # {"A": ..., "D": ...}
    answer: str
    context: str | None
    context_file: str | None = None

    @property
    def language(self) -> str:
        return "zh" if self.context and _cjk_share(self.context[:4000]) > 0.3 else "en"


@dataclass
class LVBenchQuestion:
    uid: str
    video_key: str
    question: str  # the stem, without the inline options
    options: dict[str, str]  # {"A": "1636", ...}
    answer: str
    question_type: list[str]
    time_reference: str
    span: tuple[float, float] | None  # time_reference in seconds, None when it does not parse
    raw_question: str  # the question as in the file, options inline

    def to_record(self) -> dict[str, Any]:
        return {
            "uid": self.uid, "video_key": self.video_key, "question": self.raw_question,
            "answer": self.answer, "question_type": self.question_type,
            "time_reference": self.time_reference,
        }  # fmt: skip


@dataclass
class LVBenchVideo:
    key: str
    type: str
    video_info: dict[str, Any]
    questions: list[LVBenchQuestion] = field(default_factory=list)
    path: Path | None = None  # the local video file, None when not found


# ---------------------------------------------------------------- helpers


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        fh = open(path, encoding="utf-8")
    except OSError as e:
        raise LoaderError(f"{path}: cannot open ({e.strerror})") from None
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise LoaderError(f"{path}:{n}: not JSON ({e.msg})") from None
            if not isinstance(rec, dict):
                raise LoaderError(f"{path}:{n}: expected a JSON object, got {type(rec).__name__}")
            yield n, rec


def _cjk_share(text: str) -> float:
    if not text:
        return 0.0
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    return cjk / max(1, sum(1 for ch in text if not ch.isspace()))


# ---------------------------------------------------------------- LongBench v1


def longbench_files(data: str | Path) -> dict[str, Path]:
    """Task name → file for a LongBench folder (``<task>.jsonl``) or a single task file."""
    data = Path(data)
    if data.is_file():
        return {data.stem: data}
    if not data.is_dir():
        raise LoaderError(f"{data}: no such file or folder")
    files = {p.stem: p for p in sorted(data.glob("*.jsonl"))}
    if not files:
        raise LoaderError(f"{data}: no LongBench *.jsonl files in this folder")
    return files


def load_longbench_file(path: str | Path, limit: int | None = None) -> list[LongBenchItem]:
    """Items of one LongBench v1 task file, in file order (the first ``limit`` if given)."""
    path = Path(path)
    items: list[LongBenchItem] = []
    for n, rec in _jsonl(path):
        missing = LONGBENCH_KEYS - rec.keys()
        if missing:
            raise LoaderError(f"{path}:{n}: missing LongBench field(s) {', '.join(sorted(missing))}")
        answers = rec["answers"]
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise LoaderError(f"{path}:{n}: 'answers' must be a list of strings")
        items.append(
            LongBenchItem(
                id=str(rec["_id"]), dataset=str(rec["dataset"]), input=str(rec["input"]),
                context=str(rec["context"]), answers=answers, length=int(rec["length"]),
                language=str(rec["language"]), all_classes=rec["all_classes"],
            )  # fmt: skip
        )
        if limit is not None and len(items) >= limit:
            break
    return items


def load_longbench(
    data: str | Path, subsets: list[str] | None = None, limit: int | None = None
) -> dict[str, list[LongBenchItem]]:
    """Task → items for the requested tasks (all files in the folder when ``subsets`` is None)."""
    files = longbench_files(data)
    names = subsets or list(files)
    unknown = [s for s in names if s not in files]
    if unknown:
        raise LoaderError(
            f"{data}: no file for task(s) {', '.join(unknown)} (have: {', '.join(files)})"
        )
    return {s: load_longbench_file(files[s], limit) for s in names}


# ---------------------------------------------------------------- LongBench v2


def _v2_file(data: Path) -> Path:
    if data.is_file():
        return data
    for name in ("questions_all.jsonl", "data.json", "data.jsonl"):
        if (data / name).is_file():
            return data / name
    raise LoaderError(f"{data}: no LongBench v2 file (questions_all.jsonl or data.json) here")


def _v2_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise LoaderError(f"{path}: not JSON ({e.msg})") from None
        if not isinstance(data, list):
            raise LoaderError(f"{path}: expected a JSON list of LongBench v2 items")
        yield from enumerate(data, 1)
    else:
        yield from _jsonl(path)


def load_longbench_v2(
    data: str | Path,
    lengths: list[str] | None = None,
    require_context: bool = True,
    limit: int | None = None,
) -> tuple[list[LongBenchV2Item], list[str]]:
    """(items, skipped ids). Items whose context is neither inline nor in a readable
    ``context_file`` are skipped (and their ids returned) when ``require_context``; otherwise
    they are kept with ``context=None``. ``lengths`` filters on short/medium/long; ``limit``
    caps the number of returned items."""
    path = _v2_file(Path(data))
    items: list[LongBenchV2Item] = []
    skipped: list[str] = []
    for n, rec in _v2_records(path):
        missing = [k for k in V2_KEYS if k not in rec]
        if missing:
            raise LoaderError(f"{path}:{n}: missing LongBench v2 field(s) {', '.join(missing)}")
        if rec["answer"] not in ("A", "B", "C", "D"):
            raise LoaderError(f"{path}:{n}: answer {rec['answer']!r} is not a letter A-D")
        if lengths and rec["length"] not in lengths:
            continue
        context = rec.get("context")
        cfile = rec.get("context_file")
        if context is None and cfile:
            cpath = path.parent / cfile
            try:
                context = cpath.read_text(encoding="utf-8")
            except OSError:
                context = None  # listed but absent: treated like an item without context
        if context is None and require_context:
            skipped.append(str(rec["_id"]))
            continue
        items.append(
            LongBenchV2Item(
                id=str(rec["_id"]), domain=rec["domain"], sub_domain=rec["sub_domain"],
                difficulty=rec["difficulty"], length=rec["length"], question=rec["question"],
                choices={L: rec[f"choice_{L}"] for L in "ABCD"}, answer=rec["answer"],
                context=context, context_file=cfile,
            )  # fmt: skip
        )
        if limit is not None and len(items) >= limit:
            break
    return items, skipped


# ---------------------------------------------------------------- LVBench

_OPTION_RE = re.compile(r"\n\(([A-D])\)\s?")


def split_lvbench_question(question: str) -> tuple[str, dict[str, str]]:
    """("stem", {"A": ..., ...}) from a question with options inline as ``\\n(A) ...``."""
    parts = _OPTION_RE.split(question)
    stem = parts[0].strip()
    options = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    return stem, options


def parse_time_reference(ref: str) -> tuple[float, float] | None:
    """``"MM:SS-MM:SS"`` or ``"HH:MM:SS-HH:MM:SS"`` (or mixed) → (start, end) seconds."""

    def secs(t: str) -> float | None:
        fields = t.strip().split(":")
        if not 1 <= len(fields) <= 3:
            return None
        try:
            vals = [float(f) for f in fields]
        except ValueError:
            return None
        s = 0.0
        for v in vals:
            s = s * 60 + v
        return s

    if not isinstance(ref, str) or "-" not in ref:
        return None
    a, _, b = ref.partition("-")
    sa, sb = secs(a), secs(b)
    if sa is None or sb is None:
        return None
    return (min(sa, sb), max(sa, sb))


def find_video(folder: Path | None, key: str) -> Path | None:
    """``folder/key.<ext>`` for the first common video extension present."""
    if folder is None:
        return None
    for ext in VIDEO_EXTENSIONS:
        p = folder / f"{key}{ext}"
        if p.is_file():
            return p
    return None


def load_lvbench(
    meta: str | Path, video_dir: str | Path | None = None, limit: int | None = None
) -> list[LVBenchVideo]:
    """Videos of ``video_info.meta.jsonl`` (or a folder holding it) with their questions.

    ``video_dir`` defaults to the meta file's folder; ``path`` is None for videos not found
    there. ``limit`` caps the number of videos.
    """
    meta = Path(meta)
    if meta.is_dir():
        cands = [meta / "video_info.meta.jsonl", *sorted(meta.glob("*.meta.jsonl"))]
        found = next((c for c in cands if c.is_file()), None)
        if found is None:
            raise LoaderError(f"{meta}: no video_info.meta.jsonl in this folder")
        meta = found
    vdir = Path(video_dir) if video_dir is not None else meta.parent
    videos: list[LVBenchVideo] = []
    seen: set[str] = set()
    for n, rec in _jsonl(meta):
        for k in ("key", "qa"):
            if k not in rec:
                raise LoaderError(f"{meta}:{n}: missing LVBench field {k!r}")
        key = str(rec["key"])
        video = LVBenchVideo(
            key=key, type=str(rec.get("type", "")), video_info=rec.get("video_info") or {},
            path=find_video(vdir, key),
        )  # fmt: skip
        for j, qa in enumerate(rec["qa"]):
            for k in ("uid", "question", "answer"):
                if k not in qa:
                    raise LoaderError(f"{meta}:{n}: qa[{j}] missing field {k!r}")
            uid = str(qa["uid"])
            if uid in seen:
                raise LoaderError(f"{meta}:{n}: duplicate question uid {uid}")
            seen.add(uid)
            qtype = qa.get("question_type") or []
            if isinstance(qtype, str):
                qtype = [qtype]
            stem, options = split_lvbench_question(qa["question"])
            ref = str(qa.get("time_reference") or "")
            video.questions.append(
                LVBenchQuestion(
                    uid=uid, video_key=key, question=stem, options=options,
                    answer=str(qa["answer"]).strip(), question_type=list(qtype),
                    time_reference=ref, span=parse_time_reference(ref),
                    raw_question=qa["question"],
                )  # fmt: skip
            )
        videos.append(video)
        if limit is not None and len(videos) >= limit:
            break
    return videos


def lvbench_questions(videos: list[LVBenchVideo]) -> list[LVBenchQuestion]:
    return [q for v in videos for q in v.questions]


# -- MMLongBench-Doc -------------------------------------------------------------------------

MMLB_KEYS = ("doc_id", "doc_type", "question", "answer", "evidence_pages", "evidence_sources", "answer_format")
NOT_ANSWERABLE = "Not answerable"


@dataclass
class MMLongBenchItem:
    id: str  # "<doc_id>#<index in the file>": stable while the file is unchanged
    doc_id: str
    doc_type: str
    question: str
    answer: str
    #: 1-based page numbers as given (label noise kept: pages outside the PDF stay, counted as misses)
    evidence_pages: list[int]
    evidence_sources: list[str]
    answer_format: str  # Int, Float, Str, List or None
    document: Path

    @property
    def answerable(self) -> bool:
        return self.answer.strip() != NOT_ANSWERABLE


def _literal_list(value: Any, path: Path, i: int, key: str) -> list:
    import ast

    if isinstance(value, list):
        return value
    try:
        out = ast.literal_eval(str(value)) if str(value).strip() else []
    except (ValueError, SyntaxError):
        raise LoaderError(f"{path}: record {i}: {key} is not a list literal: {str(value)[:60]!r}") from None
    if not isinstance(out, (list, tuple)):
        raise LoaderError(f"{path}: record {i}: {key} is not a list: {str(value)[:60]!r}")
    return list(out)


def mmlongbench_file(data: str | Path) -> Path:
    data = Path(data)
    if data.is_file():
        return data
    for name in ("samples.json", "samples_dev.json"):
        if (data / name).is_file():
            return data / name
    raise LoaderError(f"{data}: no samples.json or samples_dev.json")


def load_mmlongbench(data: str | Path, limit: int | None = None, doc_types: list[str] | None = None,
                     documents: str | Path | None = None) -> list[MMLongBenchItem]:
    """MMLongBench-Doc questions in file order; ``documents`` defaults to ``<data>/documents``.

    A record whose PDF is missing is an error (the benchmark is about reading that file)."""
    path = mmlongbench_file(data)
    docs = Path(documents) if documents else path.parent / "documents"
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LoaderError(f"{path}: {' '.join(str(e).split())}") from None
    if not isinstance(records, list):
        raise LoaderError(f"{path}: expected a JSON list of records")
    items: list[MMLongBenchItem] = []
    for i, r in enumerate(records):
        if not isinstance(r, dict) or any(k not in r for k in MMLB_KEYS):
            missing = [k for k in MMLB_KEYS if not isinstance(r, dict) or k not in r]
            raise LoaderError(f"{path}: record {i}: missing {', '.join(missing)}")
        if doc_types and r["doc_type"] not in doc_types:
            continue
        doc = docs / str(r["doc_id"])
        if not doc.is_file():
            raise LoaderError(f"{path}: record {i}: document {doc} not found")
        pages = [int(p) for p in _literal_list(r["evidence_pages"], path, i, "evidence_pages")]
        sources = [str(s) for s in _literal_list(r["evidence_sources"], path, i, "evidence_sources")]
        items.append(MMLongBenchItem(id=f"{r['doc_id']}#{i}", doc_id=str(r["doc_id"]), doc_type=str(r["doc_type"]),
                                     question=str(r["question"]), answer=str(r["answer"]), evidence_pages=pages,
                                     evidence_sources=sources, answer_format=str(r["answer_format"]), document=doc))
        if limit and len(items) >= limit:
            break
    return items
