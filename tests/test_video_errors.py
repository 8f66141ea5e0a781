"""Files the video reader must refuse with a one-line ReaderError."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SHARED
from sleuth.core import ReaderError
from sleuth.readers.video import read_video

DATA = SHARED / "video"


def _refuses(path: Path, *words: str) -> str:
    with pytest.raises(ReaderError) as ei:
        read_video(path, asr="none", ocr=False)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(path.name)
    assert any(w in msg.lower() for w in words), msg
    return msg


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    _refuses(p, "empty")


def test_missing_file(tmp_path):
    _refuses(tmp_path / "nope.mp4", "not found")


@pytest.mark.skipif(not DATA.is_dir(), reason="shared video data missing")
def test_truncated_mp4_without_its_index(tmp_path):
    from sleuth.samples.video import truncate_copy

    # the moov atom of this file sits at its end: a cut-short download has no index at all
    src = DATA / "manifesto.mp4"
    p = truncate_copy(src, tmp_path / "cut.mp4", src.stat().st_size // 2)
    _refuses(p, "cannot open", "truncated")


@pytest.mark.skipif(not DATA.is_dir(), reason="shared video data missing")
def test_truncated_webm_is_refused_or_indexed_when_allowed(tmp_path):
    from sleuth.samples.video import truncate_copy

    src = DATA / "big_buck_bunny_0_30.webm"
    p = truncate_copy(src, tmp_path / "cut.webm", src.stat().st_size // 3)
    _refuses(p, "truncated")
    tree = read_video(p, asr="none", ocr=False, allow_truncated=True)
    assert 3.0 < tree.root.meta["duration"] < 25.0
    assert tree.warnings and "truncated" in tree.warnings[0]


def test_audio_only_files(tmp_path):
    from sleuth.samples.video import make_audio_only

    _refuses(make_audio_only(tmp_path / "tone.m4a"), "audio-only")
    # the same audio in a container with a video suffix
    _refuses(make_audio_only(tmp_path / "tone.mp4"), "audio-only")


def test_unsupported_and_garbage_files(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    _refuses(p, "unsupported")
    g = tmp_path / "garbage.mkv"
    g.write_bytes(b"\x00\x01garbage" * 500)
    _refuses(g, "cannot open", "no video", "decoded")


@pytest.mark.skipif(not DATA.is_dir(), reason="shared video data missing")
def test_video_without_audio_indexes(tmp_path):
    from sleuth.samples.video import make_text_clip

    p = tmp_path / "silent.mp4"
    make_text_clip(p, [], duration=3.0)
    tree = read_video(p, asr="auto", ocr=False)
    assert tree.root.meta["has_audio"] is False
    assert tree.root.meta["transcript_source"] == "none"
    assert tree.root.children and tree.root.children[0].children
