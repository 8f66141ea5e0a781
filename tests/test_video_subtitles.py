"""Subtitle parsing and the subtitle transcript path of the video reader."""

from __future__ import annotations

import re
import shutil

import pytest

from conftest import SHARED
from sleuth.readers.video.subtitles import find_subtitles, load_subtitles, parse_srt, parse_vtt

DATA = SHARED / "video"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared video data missing")


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def _srt_words() -> list[str]:
    # plain reading of the .srt, independent of the parser: every line that is not an index,
    # a timing line or blank
    out = []
    for line in (DATA / "manifesto.srt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.strip().isdigit() or "-->" in line:
            continue
        out += _words(line)
    return out


def test_srt_and_youtube_vtt_give_the_same_words():
    srt = load_subtitles(DATA / "manifesto.srt")
    vtt = load_subtitles(DATA / "manifesto.vtt")
    expected = _srt_words()
    assert _words(" ".join(l["text"] for l in srt)) == expected
    # the rolling YouTube captions repeat every line; de-duplicated they read like the .srt
    assert _words(" ".join(l["text"] for l in vtt)) == expected


def test_vtt_keeps_word_times_in_order_inside_lines():
    vtt = load_subtitles(DATA / "manifesto.vtt")
    assert all(l["timing"] == "word" for l in vtt)
    prev = 0.0
    for l in vtt:
        assert l["t0"] <= l["t1"]
        for w in l["words"]:
            assert prev - 1e-3 <= w["t0"] <= w["t1"] + 1e-3
            assert l["t0"] - 1e-3 <= w["t0"] and w["t1"] <= l["t1"] + 0.02
            prev = w["t0"]
    # a word time taken from the file itself: "audiobook" is tagged at 00:00:01.920
    first = vtt[0]["words"]
    assert [w["w"] for w in first[:2]] == ["this", "audiobook"]
    assert first[1]["t0"] == pytest.approx(1.92, abs=1e-3)


def test_srt_line_times_match_the_file():
    text = "1\n00:00:01,500 --> 00:00:04,000\nHello <i>there</i>\nfriend\n\n2\n00:01:02,250 --> 00:01:03,000\nBye\n"
    lines = parse_srt(text)
    assert [(l["t0"], l["t1"], l["text"]) for l in lines] == [(1.5, 4.0, "Hello there friend"), (62.25, 63.0, "Bye")]
    words = lines[0]["words"]
    assert words[0]["t0"] == 1.5 and words[-1]["t1"] == pytest.approx(4.0)
    assert all(a["t1"] == pytest.approx(b["t0"]) for a, b in zip(words, words[1:]))


def test_plain_vtt_with_identifiers_and_settings():
    text = "WEBVTT\n\nintro\n00:00.000 --> 00:02.000 align:start\nFirst cue\n\n00:02.000 --> 00:03.500\nSecond\ncue\n"
    lines = parse_vtt(text)
    assert [(l["t0"], l["t1"], l["text"]) for l in lines] == [(0.0, 2.0, "First cue"), (2.0, 3.5, "Second cue")]


def test_find_subtitles_prefers_vtt_and_language_variants(tmp_path):
    v = tmp_path / "talk.mp4"
    v.write_bytes(b"x")
    assert find_subtitles(v) is None
    (tmp_path / "talk.en.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    assert find_subtitles(v).name == "talk.en.srt"
    (tmp_path / "talk.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n")
    assert find_subtitles(v).name == "talk.vtt"


def test_reader_uses_subtitles_beside_the_video(tmp_path):
    from sleuth.readers.video import read_video

    shutil.copy(DATA / "manifesto.mp4", tmp_path / "manifesto.mp4")
    shutil.copy(DATA / "manifesto.srt", tmp_path / "manifesto.srt")
    tree = read_video(tmp_path / "manifesto.mp4", asr="subtitles", ocr=False)
    assert tree.root.meta["transcript_source"] == "subtitles"
    segs = [n for n in tree.root.walk() if n.kind == "segment"]
    heard = [w for s in segs for l in s.meta["speech"] for w in _words(l["text"])]
    assert heard == _srt_words()
    # every segment's text carries its lines with their time stamps
    for s in segs:
        for l in s.meta["speech"]:
            assert l["text"] in s.text
            assert s.t_start - 1.0 <= (l["t0"] + l["t1"]) / 2 <= s.t_end + 1.0
    # and segments are the 10-30 s windows the index expects
    assert len(segs) >= 3
    assert all(5.0 <= s.t_end - s.t_start <= 30.0 + 1e-6 for s in segs)


def test_no_subtitles_and_no_asr_gives_no_transcript(tmp_path):
    from sleuth.readers.video import read_video

    shutil.copy(DATA / "manifesto.mp4", tmp_path / "m.mp4")
    tree = read_video(tmp_path / "m.mp4", asr="subtitles", ocr=False)
    assert tree.root.meta["transcript_source"] == "none"
    assert not any(n.meta.get("speech") for n in tree.root.walk() if n.kind == "segment")
