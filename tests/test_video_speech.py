"""Speech recognition path: model verification (fast) and word error rate (slow)."""

from __future__ import annotations

import shutil

import pytest

from conftest import SHARED
from sleuth.core import ReaderError
from sleuth.eval.metrics import wer
from sleuth.eval.metrics import wer_words as _norm
from sleuth.readers.video import speech

DATA = SHARED / "video"


def test_wer_function():
    assert wer("a b c d".split(), "a b c d".split()) == 0
    assert wer("a b c d".split(), "a x c".split()) == pytest.approx(0.5)  # one substitution, one deletion
    assert wer("a b".split(), "a b c d".split()) == pytest.approx(1.0)  # two insertions


def test_tampered_model_part_is_refused(tmp_path):
    bad = tmp_path / "model.bin.part1"
    bad.write_bytes(b"not the model")
    with pytest.raises(ReaderError, match="does not match"):
        speech._check(bad, "model.bin.part1")


def test_unknown_asr_mode_is_an_error():
    with pytest.raises(ValueError):
        speech.recognise("x.mp4", "gpt", True, [])


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="shared video data missing")
def test_whisper_transcript_of_manifesto(tmp_path, monkeypatch):
    from sleuth.readers.video import read_video
    from sleuth.readers.video.subtitles import load_subtitles

    monkeypatch.setenv("SLEUTH_CACHE", str(tmp_path / "cache"))  # joins and verifies afresh
    speech._verified.clear()
    speech._whisper = None
    shutil.copy(DATA / "manifesto.mp4", tmp_path / "manifesto.mp4")  # no subtitles beside it
    tree = read_video(tmp_path / "manifesto.mp4", ocr=False)
    assert tree.root.meta["transcript_source"] == "whisper"
    assert (tmp_path / "cache" / "whisper-base" / "model.bin").is_file()
    lines = [l for n in tree.root.walk() if n.kind == "segment" for l in n.meta["speech"]]
    ref = _norm(" ".join(l["text"] for l in load_subtitles(DATA / "manifesto.srt")))
    hyp = _norm(" ".join(l["text"] for l in lines))
    assert wer(ref, hyp) <= 0.35
    # word times are real and ordered
    words = [w for l in lines for w in l["words"]]
    assert len(words) > 100
    assert all(a["t0"] <= b["t0"] + 1e-3 for a, b in zip(words, words[1:]))
    assert words[-1]["t1"] <= tree.root.meta["duration"] + 0.5


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="shared video data missing")
def test_pocketsphinx_last_resort_hears_something(tmp_path):
    from sleuth.readers.video.decode import load_audio

    lines = speech.transcribe_pocketsphinx(load_audio(str(DATA / "manifesto.mp4")))
    hyp = set(_norm(" ".join(l["text"] for l in lines)))
    assert {"public", "domain", "workers", "world"} & hyp
    assert all(l["t0"] < l["t1"] for l in lines)
