"""Subtitle files beside a video: SubRip (.srt) and WebVTT (.vtt), YouTube rolling captions included.

Every parser returns speech *lines*: ``{"t0", "t1", "text", "words": [{"t0", "t1", "w"}],
"timing": "word" | "estimated"}``. Word times come from VTT ``<00:00:01.920><c> word</c>``
tags when present; otherwise they are spread over the cue in proportion to word length
(``timing: "estimated"``) so every consumer can rely on words having times.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

_TS = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_CUE = re.compile(rf"^\s*{_TS}\s*-->\s*{_TS}")
_INLINE_TS = re.compile(r"<(\d+:)?\d{1,2}:\d{2}[.,]\d{1,3}>")
_TAG = re.compile(r"</?[^>]+>")


def _secs(h, m, s, ms) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def _ts(text: str) -> float:
    m = re.match(_TS, text.strip("<>"))
    return _secs(*m.groups())


def find_subtitles(video: str | Path) -> Path | None:
    """The subtitle file for ``video``: same stem .vtt/.srt, also ``stem.<lang>.vtt`` (yt-dlp style).

    A .vtt wins over an .srt because it may carry word times.
    """
    v = Path(video)
    cands = []
    for ext in (".vtt", ".srt"):
        exact = v.with_suffix(ext)
        if exact.is_file():
            cands.append(exact)
        cands.extend(sorted(p for p in v.parent.glob(f"{v.stem}.*{ext}") if p.is_file() and p != exact))
    cands = [p for p in cands if p.stat().st_size > 0]
    return cands[0] if cands else None


def clean(text: str) -> str:
    text = html.unescape(_TAG.sub("", text))
    text = re.sub(r"\{\\[^}]*\}", "", text)  # SSA overrides some .srt files carry
    return " ".join(text.split())


def estimate_words(t0: float, t1: float, text: str) -> list[dict]:
    """Word times spread over [t0, t1] by character count (used when the file has none)."""
    words = text.split()
    if not words:
        return []
    total = sum(len(w) + 1 for w in words)
    out, t = [], t0
    for w in words:
        d = (t1 - t0) * (len(w) + 1) / total
        out.append({"t0": round(t, 3), "t1": round(t + d, 3), "w": w})
        t += d
    return out


def _blocks(text: str) -> list[tuple[float, float, list[str]]]:
    """(start, end, raw lines) of every cue, for both formats.

    A cue's body runs to the next truly empty line: YouTube writes a single space as a
    placeholder line inside cues, so whitespace-only lines cannot end a cue.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    out: list[tuple[float, float, list[str]]] = []
    body: list[str] | None = None
    for line in text.split("\n"):
        m = _CUE.match(line)
        if m:
            g = m.groups()
            body = []
            out.append((_secs(*g[:4]), _secs(*g[4:]), body))
        elif body is not None:
            if line == "":
                body = None
            else:
                body.append(line)
    return out


def parse_srt(text: str) -> list[dict]:
    lines = []
    for t0, t1, raw in _blocks(text):
        body = clean(" ".join(raw))
        if body:
            lines.append({"t0": t0, "t1": t1, "text": body, "words": estimate_words(t0, t1, body), "timing": "estimated"})
    return lines


def _timed_words(line: str, t0: float, t1: float) -> list[dict]:
    """Words of a VTT line with inline timestamps: each tag starts the word after it."""
    parts = re.split(r"(<(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3}>)", line)
    starts, texts = [t0], [parts[0]]
    for k in range(1, len(parts), 2):
        starts.append(_ts(parts[k]))
        texts.append(parts[k + 1])
    words = []
    for i, (s, chunk) in enumerate(zip(starts, texts)):
        end = starts[i + 1] if i + 1 < len(starts) else t1
        ws = clean(chunk).split()
        for j, w in enumerate(ws):  # rarely more than one word between two tags
            a = s + (end - s) * j / len(ws)
            b = s + (end - s) * (j + 1) / len(ws)
            words.append({"t0": round(a, 3), "t1": round(b, 3), "w": w})
    return words


def parse_vtt(text: str) -> list[dict]:
    """WebVTT cues; YouTube's rolling captions reduced to each line once, with word times.

    YouTube auto-captions repeat the previous line above the new one and add 10 ms "snapshot"
    cues; the new words of a cue are the lines that carry inline timestamps, so when any cue
    has them only those lines are kept, and plain lines that repeat the last emitted one are
    dropped.
    """
    blocks = _blocks(text)
    rolling = any(_INLINE_TS.search(l) for _, _, raw in blocks for l in raw)
    out: list[dict] = []
    recent: list[str] = []
    for t0, t1, raw in blocks:
        raw = [l for l in raw if l.strip()]
        if rolling:
            timed = [l for l in raw if _INLINE_TS.search(l)]
            if timed:
                for l in timed:
                    words = _timed_words(l, t0, t1)
                    if words:
                        body = " ".join(w["w"] for w in words)
                        out.append({"t0": words[0]["t0"], "t1": t1, "text": body, "words": words, "timing": "word"})
                        recent = (recent + [body])[-3:]
                continue
            for l in raw:  # an untimed line in a rolling file: keep only if genuinely new
                body = clean(l)
                if body and body not in recent and (t1 - t0) > 0.05:
                    # YouTube writes a one-word line without tags: the cue times are that word's
                    timing = "word" if len(body.split()) == 1 else "estimated"
                    out.append({"t0": t0, "t1": t1, "text": body, "words": estimate_words(t0, t1, body), "timing": timing})
                    recent = (recent + [body])[-3:]
            continue
        body = clean(" ".join(raw))
        if body and not (out and out[-1]["text"] == body and abs(out[-1]["t1"] - t0) < 0.05):
            out.append({"t0": t0, "t1": t1, "text": body, "words": estimate_words(t0, t1, body), "timing": "estimated"})
        elif body:
            out[-1]["t1"] = t1  # the same caption split over touching cues
    # a line ends when the next one starts at the latest (rolling cues overlap)
    for a, b in zip(out, out[1:]):
        if a["t1"] > b["t0"] > a["t0"]:
            a["t1"] = b["t0"]
            if a["words"] and a["words"][-1]["t1"] > a["t1"]:
                a["words"][-1]["t1"] = round(a["t1"], 3)
    return out


def load_subtitles(path: str | Path) -> list[dict]:
    p = Path(path)
    text = p.read_text(encoding="utf-8", errors="replace")
    if p.suffix.lower() == ".vtt" or text.lstrip("\ufeff").startswith("WEBVTT"):
        lines = parse_vtt(text)
    else:
        lines = parse_srt(text)
    return sorted(lines, key=lambda l: l["t0"])
