"""Speaker turns in the video reader (resemblyzer voice embeddings + agglomerative clustering).

Ground truth comes from outside the code under test: a real single-narrator audiobook clip, and a
clip built here from two espeak-ng voices whose sentence times and voices we chose.
"""

import math
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("resemblyzer")

from sleuth.readers.video import read_video
from sleuth.readers.video import speakers as spk
from sleuth.readers.video.decode import load_audio
from sleuth.readers.video.subtitles import load_subtitles
from sleuth.samples.video import make_text_clip, write_video

SR = 16000
VOICES = {"A": ["-v", "en+m3", "-p", "25", "-s", "155"], "B": ["-v", "en+f4", "-p", "80", "-s", "175"]}
SCRIPT = [
    ("A", "Good morning, and welcome to the quarterly review of the northern region."),
    ("B", "Thank you. Let us start with the sales figures from the spring."),
    ("A", "Revenue rose by eight percent, mostly from the new product line."),
    ("A", "Costs stayed flat, although shipping became more expensive in May."),
    ("B", "What explains the rise in shipping costs this year?"),
    ("A", "Fuel prices went up, and two of our carriers changed their contracts."),
    ("B", "Should we look for other carriers before the autumn season begins?"),
    ("B", "I can prepare a comparison of three offers by next week."),
    ("A", "That would help. Please include the delivery times as well."),
    ("B", "Of course. I will also ask the warehouse for their numbers."),
    ("A", "Then we meet again on Thursday to decide."),
    ("B", "Agreed. Thank you all for joining today."),
]


def _fmt(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _speak(text: str, voice: list[str], tmp: Path) -> np.ndarray:
    wav = tmp / "say.wav"
    subprocess.run(["espeak-ng", *voice, "-w", str(wav), text], check=True, capture_output=True)
    with wave.open(str(wav)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0
    x = np.interp(np.linspace(0, len(x) - 1, int(round(len(x) * SR / rate))), np.arange(len(x)), x).astype(np.float32)
    nz = np.flatnonzero(np.abs(x) > 0.01)  # espeak pads with silence; cue times should be tight
    return x[nz[0] : nz[-1] + 1]


@pytest.fixture(scope="module")
def dialogue(tmp_path_factory) -> dict:
    """An mp4 of two alternating espeak-ng voices over a blank picture, with an .srt beside it."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    tmp = tmp_path_factory.mktemp("dialogue")
    pieces, cues, t = [np.zeros(int(0.5 * SR), np.float32)], [], 0.5
    for who, text in SCRIPT:
        x = _speak(text, VOICES[who], tmp)
        cues.append((t, t + len(x) / SR, text, who))
        pieces += [x, np.zeros(int(0.6 * SR), np.float32)]
        t += len(x) / SR + 0.6
    audio = np.concatenate(pieces)
    fps, size = 5, (160, 96)
    n = math.ceil(len(audio) / SR * fps)
    frames = (np.full((size[1], size[0], 3), 40, np.uint8) for _ in range(n))
    video = write_video(tmp / "dialogue.mp4", frames, fps, size, audio=audio, sr=SR)
    video.with_suffix(".srt").write_text(
        "".join(f"{i + 1}\n{_fmt(a)} --> {_fmt(b)}\n{txt}\n\n" for i, (a, b, txt, _) in enumerate(cues)), encoding="utf-8"
    )
    return {"video": video, "cues": cues}


@pytest.fixture(scope="module")
def dialogue_tree(dialogue):
    return read_video(dialogue["video"], ocr=False)


def _lines(tree) -> list[dict]:
    return sorted((l for seg in tree.root.walk() if seg.kind == "segment" for l in seg.meta["speech"]), key=lambda l: l["t0"])


def test_two_voices_are_told_apart(dialogue, dialogue_tree):
    meta = dialogue_tree.root.meta["speakers"]
    assert meta["status"] == "ok"
    assert meta["n"] == 2
    lines = _lines(dialogue_tree)
    assert len(lines) == len(SCRIPT)
    truth = [who for *_, who in dialogue["cues"]]
    got = [l["speaker"] for l in lines]
    # best of the two label permutations
    agree = max(sum((g == "S1") == (w == a) for g, w in zip(got, truth)) for a in ("A", "B"))
    assert agree / len(truth) >= 0.8, list(zip(got, truth))

    ents = [e for e in dialogue_tree.entities if e.kind == "speaker"]
    assert len(ents) == 2
    segs = {id(n) for n in dialogue_tree.root.walk() if n.kind == "segment"}
    for e in ents:
        assert e.mentions and all(id(m.node) in segs and m.modality == "speech" for m in e.mentions)
        label = e.meta["label"]
        own = [l for l in lines if l["speaker"] == label]
        # every turn starts on one of this voice's lines, with that line's first words
        starts = {(round(l["t0"], 3), l["text"].split()[0]) for l in own}
        assert {(m.t, m.surface.split()[0]) for m in e.mentions} <= starts
        assert e.meta["seconds"] == pytest.approx(sum(l["t1"] - l["t0"] for l in own), abs=0.05)
    assert sum(meta["seconds"].values()) == pytest.approx(sum(c[1] - c[0] for c in dialogue["cues"]), abs=0.1)


def test_off_and_on_agree_on_everything_but_voices(dialogue, dialogue_tree):
    off = read_video(dialogue["video"], ocr=False, speakers="off")
    assert off.root.meta["speakers"] == {"status": "off"}
    assert not [e for e in off.entities if e.kind == "speaker"]
    assert all("speaker" not in l for l in _lines(off))
    assert off.text == dialogue_tree.text
    assert [e.name for e in off.entities] == [e.name for e in dialogue_tree.entities if e.kind != "speaker"]
    assert dialogue_tree.root.text.startswith(off.root.text)


def test_missing_package_leaves_the_reader_as_before(dialogue, monkeypatch):
    monkeypatch.setattr(spk, "unavailable_reason", lambda: "resemblyzer not installed (test)")
    tree = read_video(dialogue["video"], ocr=False)
    assert tree.root.meta["speakers"]["status"] == "unavailable"
    assert not [e for e in tree.entities if e.kind == "speaker"]
    assert len(_lines(tree)) == len(SCRIPT)


def test_single_narrator_is_one_speaker(shared_data):
    tree = read_video(shared_data / "video" / "manifesto.mp4", ocr=False)
    meta = tree.root.meta["speakers"]
    assert meta["status"] == "ok" and meta["n"] == 1, meta
    lines = _lines(tree)
    assert lines and all(l["speaker"] == "S1" for l in lines)
    ents = [e for e in tree.entities if e.kind == "speaker"]
    assert len(ents) == 1 and ents[0].name.startswith("Speaker 1")


def test_video_without_audio_has_no_speakers(tmp_path):
    video = tmp_path / "silent.mp4"
    make_text_clip(video, duration=4.0, size=(160, 96))
    video.with_suffix(".srt").write_text("1\n00:00:00,500 --> 00:00:03,000\nnobody is speaking here\n\n", encoding="utf-8")
    tree = read_video(video, ocr=False)
    assert tree.root.meta["speakers"] == {"status": "no audio"}
    assert not [e for e in tree.entities if e.kind == "speaker"]
    assert _lines(tree) and all("speaker" not in l for l in _lines(tree))


def test_bad_mode_is_refused_before_decoding(tmp_path):
    with pytest.raises(ValueError, match="speakers"):
        read_video(tmp_path / "does-not-matter.mp4", speakers="yes")


# -- the parts against their references -----------------------------------------------------


def test_batched_embeddings_match_embed_utterance(dialogue):
    spans = [(a, b) for a, b, *_ in dialogue["cues"][:5]]
    wavs = [spk.preprocess(w) for w in spk.read_spans(str(dialogue["video"]), spans)]
    fast = spk.embed_units(wavs, batch=7)  # a batch size that splits lines across batches
    ref = spk.embed_units_reference(wavs)
    assert np.all(np.sum(fast * ref, axis=1) > 0.9999)


def test_read_spans_matches_whole_file_decode(dialogue):
    path = str(dialogue["video"])
    whole = load_audio(path)
    import av

    with av.open(path) as c:
        start = next(c.decode(audio=0)).time or 0.0
    # overlapping, out of order, and one running past the end of the audio
    spans = [(1.0, 2.5), (2.0, 3.0), (10.0, 10.2), (len(whole) / SR - 0.5, len(whole) / SR + 3.0), (0.2, 0.6)]
    got = spk.read_spans(path, spans)
    for (a, b), g in zip(spans, got):
        i0, i1 = int(round((a - start) * SR)), min(len(whole), int(round((b - start) * SR)))
        ref = whole[i0:i1]
        assert abs(len(g) - len(ref)) <= 1
        m = min(len(g), len(ref))
        assert np.allclose(g[:m], ref[:m], atol=1e-4)


def test_window_budget_caps_the_work(dialogue):
    lines = load_subtitles(dialogue["video"].with_suffix(".srt"))
    speech_min = sum(l["t1"] - l["t0"] for l in lines) / 60
    out = spk.label_speakers(str(dialogue["video"]), lines, True, max_windows_per_minute=6)
    assert out["status"] == "ok"
    assert 1 <= out["windows"] <= math.ceil(6 * speech_min)
    assert out["lines_embedded"] <= out["windows"] < len(lines)
    assert all(l["speaker"] in out["seconds"] for l in lines)


def test_cluster_counts_groups():
    rng = np.random.default_rng(0)

    def group(n, centre, spread):
        v = centre + spread * rng.standard_normal((n, 256))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    # two non-negative centres (the encoder's outputs are ReLU'd) sharing a quarter of their support
    c1, c2 = np.zeros(256), np.zeros(256)
    c1[:160], c2[96:] = np.abs(rng.standard_normal(160)), np.abs(rng.standard_normal(160))
    c1, c2 = c1 / np.linalg.norm(c1), c2 / np.linalg.norm(c2)
    one = group(12, c1, 0.02)
    assert set(spk.cluster(one)) == {0}
    two = np.concatenate([group(6, c1, 0.02), group(6, c2, 0.02)])[[0, 6, 1, 7, 8, 2, 3, 9, 10, 4, 5, 11]]
    lab = spk.cluster(two)
    truth = np.array([0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1])
    assert np.array_equal(lab, truth)
    # clustering a spread-out subset and placing the rest by centroid gives the same answer
    assert np.array_equal(spk.cluster_many(two, np.ones(12), max_rows=5), truth)
    # a stray second voice holding under 1% of the speech is folded into the main one
    stray = np.concatenate([group(11, c1, 0.02), group(1, c2, 0.02)])
    ws = np.array([10.0] * 11 + [1.0])
    assert set(spk.cluster(stray, ws, min_share=0.03)) == {0}
    assert set(spk.cluster(stray, ws, min_share=0.0)) == {0, 1}


def test_fast_preprocess_and_mel_match_resemblyzer(dialogue):
    from resemblyzer import wav_to_mel_spectrogram

    spans = [(a - 0.4, b + 0.4) for a, b, *_ in dialogue["cues"][:4]]  # with silence around the speech
    for raw in spk.read_spans(str(dialogue["video"]), spans):
        fast, ref = spk.preprocess(raw), spk.preprocess_reference(raw)
        assert 0 < len(fast) < len(raw)  # the silence was trimmed
        assert np.array_equal(fast, ref)
        m, mr = spk.mel_frames(fast), wav_to_mel_spectrogram(fast)
        assert m.shape == mr.shape
        assert np.allclose(m, mr, rtol=1e-4, atol=1e-6 * float(mr.max()))
