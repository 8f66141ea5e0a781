"""samples/recordings.py and benchmarks/make_recordings.py on tiny inputs: a four-turn meeting
and a two-page deck render to MP4s whose truth files follow the schema and the audio."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from sleuth.readers.video.decode import load_audio, probe
import sleuth.samples.recordings as rec
import sleuth.samples.tts as tts

pytestmark = pytest.mark.skipif(tts.engine() is None, reason="no TTS engine (flite, espeak-ng) is installed")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "make_recordings.py"

MEETING = {
    "meeting_transcripts": [
        {"speaker": "Project Manager", "content": "Okay , let 's start . {vocalsound} The budget is twelve euros ."},
        {"speaker": "Marketing", "content": "{disfmarker} Um , I think the L_C_D_ screen matters most ."},
        {"speaker": "Marketing", "content": "{vocalsound} {gap}"},
        {"speaker": "Project Manager", "content": "Right , the batteries cost too much . [Laughter.]"},
    ],
    "topic_list": [{"topic": "Opening", "relevant_text_span": [["0", "0"]]},
                   {"topic": "Screen and batteries", "relevant_text_span": [["1", "3"]]}],
    "specific_query_list": [{"query": "What about the screen?", "answer": "It matters.", "relevant_text_span": [["1", "2"]]},
                            {"query": "Only markup?", "answer": "-", "relevant_text_span": [["2", "2"]]}],
    "general_query_list": [],
}


def _bench():
    spec = importlib.util.spec_from_file_location("make_recordings", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _two_page_pdf(path: Path) -> str:
    from reportlab.pdfgen import canvas

    words = "Quarterly tide readings rose at both stations after the storm."
    c = canvas.Canvas(str(path), pagesize=(720, 405), invariant=1)
    c.setFont("Helvetica", 24)
    c.drawString(40, 300, words)
    c.showPage()
    c.setFillColorRGB(0.2, 0.4, 0.8)
    c.rect(100, 100, 300, 150, fill=1)  # a picture, no text layer
    c.showPage()
    c.save()
    return words


def _rms(audio: np.ndarray, a: float, b: float, sr: int = 16000) -> float:
    x = audio[int(a * sr) : int(b * sr)]
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0


def test_speakable_strips_markup_and_disfluencies():
    assert tts.speakable("{vocalsound} {disfmarker}") == ""
    assert tts.speakable("I 'm sure the L_C_D_s don 't , um , work .") == "I'm sure the LCDs don't, work."
    assert tts.speakable("Uh - huh . Could be .", fluent=False) == "Uh-huh. Could be."
    assert tts.speakable("the the cou could be an answer [Inaudible.]") == "the could be an answer"
    assert tts.speakable("Mm - hmm .") == ""


def test_voices_are_distinct_by_order():
    n = len(tts.VARIANTS) * len(tts.PITCHES) * len(tts.SPEED_OFFSETS)
    voices = [tts.voice(k, engine_name="espeak-ng") for k in range(n)]
    assert len(set(voices)) == n >= 100 and tts.voice(n, engine_name="espeak-ng") == voices[0]
    assert tts.voice(3, engine_name="espeak-ng") == voices[3] and voices[0] != voices[1]
    # flite: its speakers' own voices first, then other pitches, then other paces; enough for the
    # largest committee of the benchmark (84 speakers)
    n = len(tts._FLITE)
    voices = [tts.voice(k, engine_name="flite") for k in range(n)]
    assert len(set(voices)) == n >= 90 and tts.voice(n, engine_name="flite") == voices[0]
    assert [(v.variant, v.f0, v.stretch) for v in voices[: len(tts.FLITE_VOICES)]] == [(name, None, 1.0) for name in tts.FLITE_VOICES]
    assert all(v.f0 is None for v in voices if v.variant == "rms")  # it ignores int_f0_target_mean
    assert tts.voice(0, wpm=120, engine_name="flite").stretch == 1.25  # slower speech, longer sounds
    assert all(v.rate == tts.FLITE_RATE for v in voices) and tts.voice(0, engine_name="espeak-ng").rate == tts.SAMPLE_RATE


def test_engine_prefers_flite_and_falls_back_to_espeak(monkeypatch):
    installed = {"flite", "espeak-ng"}
    monkeypatch.setattr(tts.shutil, "which", lambda name: f"/usr/bin/{name}" if name in installed else None)
    assert tts.engine() == "flite" and isinstance(tts.voice(0), tts.FliteVoice)
    installed.discard("flite")
    assert tts.engine() == "espeak-ng" and isinstance(tts.voice(0), tts.Voice)
    installed.clear()
    assert tts.engine() is None and tts.engine_version() == "none"
    with pytest.raises(RuntimeError, match="no TTS engine"):
        rec._check_tts(None)


def test_synthesis_text_never_reaches_argv(monkeypatch):
    calls = []

    def run(cmd, input=None, **kw):
        calls.append((cmd, input))
        raise RuntimeError("stop")

    monkeypatch.setattr(tts.subprocess, "run", run)
    text = "-o /tmp/x; $(rm -rf ~) -voice"
    for v in (tts.voice(5, engine_name="flite"), tts.voice(5, engine_name="espeak-ng")):
        with pytest.raises(RuntimeError):
            tts.synthesize(text, v)
    (flite, fin), (espeak, ein) = calls
    assert fin == ein == (text + "\n").encode() and not any(text in a or "rm -rf" in a for a in flite + espeak)
    v = tts.voice(5, engine_name="flite")
    assert flite[:3] == ["flite", "-voice", v.variant] and f"int_f0_target_mean={v.f0}" in flite and "/dev/stdin" in flite


def test_meeting_renders_with_truth_matching_the_audio(tmp_path):
    mp4 = rec.render_meeting(MEETING, tmp_path, "tiny", source="tiny.json")
    truth = json.loads((tmp_path / "tiny.truth.json").read_text())
    assert mp4 == tmp_path / "tiny.mp4" and not list(tmp_path.glob("*.part"))
    assert list(truth)[:8] == ["schema", "kind", "name", "source", "duration_s", "turns", "topics", "queries"]
    assert (truth["schema"], truth["kind"], truth["name"], truth["source"]) == ("sleuth.recording/1", "meeting", "tiny", "tiny.json")
    turns = truth["turns"]
    assert [t["i"] for t in turns] == [0, 1, 3]  # turn 2 is markup only: not spoken
    assert all(set(t) == {"i", "start", "end", "speaker", "text"} for t in turns)
    assert [t["text"] for t in turns] == ["Okay, let's start. The budget is twelve euros.",
                                          "I think the LCD screen matters most.", "Right, the batteries cost too much."]
    for a, b in zip(turns, turns[1:]):
        assert a["start"] < a["end"] < b["start"] < b["end"]
    info, audio = probe(str(mp4)), load_audio(str(mp4))
    assert info.has_audio and abs(info.duration - truth["duration_s"]) < 0.6
    assert abs(audio.size / 16000 - truth["duration_s"]) < 0.6
    assert turns[-1]["end"] < truth["duration_s"] < turns[-1]["end"] + 2
    speech = sum(t["end"] - t["start"] for t in turns)
    assert speech > 0.7 * (turns[-1]["end"] - turns[0]["start"])
    for t in turns:  # sound where a turn is said, quiet in the pause after it
        assert _rms(audio, t["start"] + 0.1, t["end"] - 0.1) > 0.01
    assert _rms(audio, turns[0]["end"] + 0.05, turns[1]["start"] - 0.05) < 0.2 * _rms(audio, turns[0]["start"], turns[0]["end"])
    assert truth["voices"]["Project Manager"] != truth["voices"]["Marketing"]
    assert {v["engine"] for v in truth["voices"].values()} == {tts.engine()}
    assert [t["topic"] for t in truth["topics"]] == ["Opening", "Screen and batteries"]
    assert truth["topics"][1]["start"] == turns[1]["start"] and truth["topics"][1]["end"] == turns[2]["end"]
    q0, q1 = truth["queries"]
    assert q0["id"] == "tiny:s0" and q0["turn_spans"] == [[1, 2]] and q0["spans"] == [[turns[1]["start"], turns[1]["end"]]]
    assert q1["spans"] == [[turns[2]["start"], turns[2]["start"]]]  # a silent span: the instant after it
    # same input, same truth (and the same MP4 bytes: single-threaded encoders)
    rec.render_meeting(MEETING, tmp_path / "again", "tiny", source="tiny.json")
    assert (tmp_path / "again" / "tiny.truth.json").read_bytes() == (tmp_path / "tiny.truth.json").read_bytes()
    assert (tmp_path / "again" / "tiny.mp4").read_bytes() == mp4.read_bytes()
    if tts.engine() != "espeak-ng" and tts.espeak_available():  # the fallback engine speaks the same words
        rec.render_meeting(MEETING, tmp_path / "espeak", "tiny", engine="espeak-ng")
        other = json.loads((tmp_path / "espeak" / "tiny.truth.json").read_text())
        assert [t["text"] for t in other["turns"]] == [t["text"] for t in turns]
        assert {v["engine"] for v in other["voices"].values()} == {"espeak-ng"}
        assert probe(str(tmp_path / "espeak" / "tiny.mp4")).has_audio


def test_picture_follows_the_active_speaker(tmp_path):
    import av

    mp4 = rec.render_meeting(MEETING, tmp_path, "tiny")
    truth = json.loads((tmp_path / "tiny.truth.json").read_text())
    frames = {}
    with av.open(str(mp4)) as c:
        for f in c.decode(video=0):
            frames[round(float(f.time), 2)] = f.to_ndarray(format="rgb24")
    times = sorted(frames)
    mid = [min(times, key=lambda x: abs(x - (t["start"] + t["end"]) / 2)) for t in truth["turns"]]
    a, b, c_ = (frames[m] for m in mid)
    assert np.abs(a.astype(int) - b).mean() > 1 and np.abs(b.astype(int) - c_).mean() > 1
    assert np.abs(a.astype(int) - c_).mean() < np.abs(a.astype(int) - b).mean()  # same speaker, other topic bar


def test_lecture_renders_pages_and_a_silent_page(tmp_path):
    pdf = tmp_path / "deck.pdf"
    words = _two_page_pdf(pdf)
    queries = [{"id": "deck:q0", "query": "What rose?", "answer": "tide readings", "evidence_pages": [1]},
               {"id": "deck:q1", "query": "Which picture?", "answer": "blue", "evidence_pages": [2, 9]}]
    mp4 = rec.render_lecture(pdf, queries, tmp_path / "out", "deck", size=(640, 360))
    truth = json.loads((tmp_path / "out" / "deck.truth.json").read_text())
    assert list(truth)[:8] == ["schema", "kind", "name", "source", "pdf_path", "duration_s", "pages", "queries"]
    assert truth["kind"] == "lecture" and truth["pdf_path"] == str(pdf.resolve())
    p1, p2 = truth["pages"]
    assert p1["text"] == words and not p1["silent"] and p1["end"] - p1["start"] > 2
    assert p2["silent"] and p2["text"] == "" and p2["start"] == p1["end"]
    assert p2["end"] - p2["start"] == pytest.approx(rec.SILENT_PAGE_S, abs=0.01)
    assert truth["duration_s"] == pytest.approx(p2["end"], abs=1.0)
    assert truth["queries"][0]["spans"] == [[p1["start"], p1["end"]]]
    assert truth["queries"][1]["spans"] == [[p2["start"], p2["end"]]]  # page 9 is not in the PDF
    audio = load_audio(str(mp4))
    assert _rms(audio, p1["start"] + 0.6, p1["end"] - 0.8) > 0.01 and _rms(audio, p2["start"] + 0.2, p2["end"] - 0.2) < 1e-3


def test_page_narration_is_capped_at_a_sentence():
    text = " ".join(f"Sentence {i} has five words." for i in range(100))
    said = rec.page_narration(text, max_words=22)
    assert said.endswith(".") and len(said.split()) <= 22 and text.startswith(said)


def test_pick_meetings_spans_sizes_and_reaches_targets():
    m = _bench()
    sizes = {f"m{i:02d}": 1000 * (i + 1) for i in range(30)}
    chosen = m.pick_meetings(sizes, hours=3.0, min_items=8)
    assert len(chosen) >= 8 and sum(sizes[c] for c in chosen) / m.EST_WPM["espeak-ng"] / 60 >= 3.0
    assert "m00" in chosen and "m29" in chosen  # both ends of the size order
    assert m.pick_meetings(sizes, hours=3.0, min_items=8) == chosen
    slower = m.pick_meetings(sizes, hours=20.0, min_items=8)
    faster = m.pick_meetings(sizes, hours=20.0, min_items=8, wpm=m.EST_WPM["flite"])  # a faster voice: more meetings
    assert len(faster) > len(slower) and sum(sizes[c] for c in faster) / m.EST_WPM["flite"] / 60 >= 20.0


def test_make_meetings_then_rerun_is_cached(tmp_path, capsys):
    m = _bench()
    data, out = tmp_path / "data", tmp_path / "out"
    (data / "meetings").mkdir(parents=True)
    (data / "meetings" / "tiny.json").write_text(json.dumps(MEETING))
    assert m.main(["meetings", "--data", str(data), "--out", str(out), "--min-items", "1", "--hours", "0"]) == 0
    mp4 = out / "meetings" / "tiny.mp4"
    stamp = mp4.stat().st_mtime_ns
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema"] == "sleuth.recordings/1"
    assert [(i["kind"], i["name"], i["mp4"], i["truth"]) for i in manifest["items"]] == [
        ("meeting", "tiny", "meetings/tiny.mp4", "meetings/tiny.truth.json")]
    capsys.readouterr()
    assert m.main(["meetings", "--data", str(data), "--out", str(out), "--min-items", "1", "--hours", "0"]) == 0
    assert "0 made" in capsys.readouterr().out and mp4.stat().st_mtime_ns == stamp
    # a changed input is made again, and what a killed run left of it is cleared
    (data / "meetings" / "tiny.json").write_text(json.dumps(dict(MEETING, topic_list=[])))
    stale = out / "meetings" / ".tiny.mp4.x1y2.part"
    stale.write_bytes(b"half")
    assert m.main(["meetings", "--data", str(data), "--out", str(out), "--names", "tiny"]) == 0
    assert not stale.exists()
    assert "1 made" in capsys.readouterr().out and json.loads((out / "meetings" / "tiny.truth.json").read_text())["topics"] == []


def test_make_lectures_reports_a_broken_pdf_in_one_line(tmp_path, capsys):
    m = _bench()
    data, out = tmp_path / "data", tmp_path / "out"
    (data / "documents").mkdir(parents=True)
    _two_page_pdf(data / "documents" / "good.pdf")
    (data / "documents" / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a pdf\n")
    records = [{"doc_id": d, "doc_type": "Tutorial/Workshop", "question": "q?", "answer": "a", "evidence_pages": "[1]",
                "evidence_sources": "[]", "answer_format": "Str"} for d in ("broken.pdf", "good.pdf")]
    records.append({"doc_id": "good.pdf", "doc_type": "Tutorial/Workshop", "question": "none?", "answer": "Not answerable",
                    "evidence_pages": "[]", "evidence_sources": "[]", "answer_format": "None"})
    (data / "samples_dev.json").write_text(json.dumps(records))
    assert m.main(["lectures", "--data", str(data), "--out", str(out)]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "FAILED" in line]
    assert len(err) == 1 and "broken" in err[0] and "broken.pdf" in err[0].split(":", 2)[-1]
    truth = json.loads((out / "lectures" / "good.truth.json").read_text())
    assert [q["id"] for q in truth["queries"]] == ["good:q0"]  # the one without evidence pages is left out
    assert not (out / "lectures" / "broken.mp4").exists() and not list((out / "lectures").glob(".*part"))
    assert [i["name"] for i in json.loads((out / "manifest.json").read_text())["items"]] == ["good"]
