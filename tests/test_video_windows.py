"""Speech is recognised in windows of bounded length, cut in pauses, with times put back in place.

faster-whisper computes the log-mel features of all the audio it is given at once (~10 KB per
10 ms frame), so one call over a recording made memory grow with its length (3.6 GB at 52 min).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from conftest import SHARED
from sleuth.readers.video import speech

SR = 16000
DATA = SHARED / "video"


def _probs_with_pauses(n_frames: int, seed: int = 0) -> np.ndarray:
    """Speech-like probabilities: 3-20 s of speech, then a 0.3-2 s pause, over and over."""
    rng = np.random.default_rng(seed)
    p = np.full(n_frames, 0.9, np.float32)
    i = 0
    while i < n_frames:
        i += int(rng.uniform(3, 20) * SR / speech.VAD_FRAME)
        k = int(rng.uniform(0.3, 2.0) * SR / speech.VAD_FRAME)
        p[i : i + k] = 0.05
        i += k
    return p


@pytest.mark.parametrize("minutes", [4.9, 5.1, 17, 92])
def test_windows_cover_the_audio_bounded_and_cut_in_pauses(minutes):
    n = int(minutes * 60 * SR)
    probs = _probs_with_pauses(-(-n // speech.VAD_FRAME))
    wins = speech.plan_windows(probs, n)
    assert wins[0][0] == 0 and wins[-1][1] == n
    assert all(b == c for (_, b), (c, _) in zip(wins, wins[1:]))  # contiguous, nothing dropped
    assert all(0 < b - a <= speech.WINDOW_S * SR for a, b in wins)
    for _, cut in wins[:-1]:
        assert probs[cut // speech.VAD_FRAME] < speech.QUIET  # in a pause, not inside a word
    if len(wins) > 1:
        assert min(b - a for a, b in wins[:-1]) >= speech.WINDOW_S * SR / 2


def test_windows_without_any_pause_are_still_bounded():
    n = int(12 * 60 * SR)
    wins = speech.plan_windows(np.full(-(-n // speech.VAD_FRAME), 0.99, np.float32), n)
    assert wins[-1][1] == n and all(0 < b - a <= speech.WINDOW_S * SR for a, b in wins)


class _Recorder:
    """A WhisperModel double: one line half a second into whatever audio it is given."""

    def __init__(self):
        self.calls = []

    def transcribe(self, audio, language=None, **kw):
        self.calls.append((len(audio), language, kw))
        word = SimpleNamespace(start=0.5, end=1.25, word=" hello")
        seg = SimpleNamespace(start=0.5, end=1.25, text=" hello", words=[word])
        return iter([seg]), SimpleNamespace(language=language or "en")


class _BatchedRecorder:
    """faster-whisper's BatchedInferencePipeline double, around a :class:`_Recorder`."""

    def __init__(self, model):
        self.model = model

    def transcribe(self, audio, batch_size=8, **kw):
        return self.model.transcribe(audio, batch_size=batch_size, **kw)


@pytest.mark.parametrize("batch", [1, 4])
def test_long_audio_reaches_whisper_in_bounded_windows_with_times_offset(monkeypatch, batch):
    import faster_whisper

    rec = _Recorder()
    monkeypatch.setattr(speech, "whisper_model", lambda: rec)
    monkeypatch.setattr(faster_whisper, "BatchedInferencePipeline", _BatchedRecorder)
    n = int(11.5 * 60 * SR)  # longer than two windows
    audio = np.zeros(n, np.float32)
    lines = speech.transcribe_whisper(audio, batch_size=batch)
    sizes = [c[0] for c in rec.calls]
    assert len(sizes) >= 3 and sum(sizes) == n
    assert max(sizes) <= speech.WINDOW_S * SR
    starts = np.cumsum([0] + sizes[:-1]) / SR
    assert [l["t0"] for l in lines] == [round(s + 0.5, 3) for s in starts]
    assert [l["words"][0]["t1"] for l in lines] == [round(s + 1.25, 3) for s in starts]
    # the language is detected once, on the first window, then held
    assert [c[1] for c in rec.calls] == [None] + ["en"] * (len(sizes) - 1)
    assert all(c[2]["vad_filter"] and c[2]["word_timestamps"] for c in rec.calls)
    # batch 1 (the default) is the plain, one-at-a-time reference; more goes through the pipeline
    assert all(c[2].get("batch_size") == (batch if batch > 1 else None) for c in rec.calls)


def test_short_audio_is_one_call_as_before(monkeypatch):
    rec = _Recorder()
    monkeypatch.setattr(speech, "whisper_model", lambda: rec)
    speech.transcribe_whisper(np.zeros(3 * 60 * SR, np.float32), batch_size=1)
    assert [c[0] for c in rec.calls] == [3 * 60 * SR]


def _w(t0, t1, w):
    return {"t0": t0, "t1": t1, "w": w}


def test_a_batched_chunk_is_cut_into_lines_at_pauses_and_sentence_ends():
    words = [_w(0.0, 0.4, "Right,"), _w(0.5, 0.9, "so"), _w(1.0, 1.3, "that's"), _w(1.4, 1.8, "agreed."),
             _w(1.9, 2.2, "Next"), _w(2.3, 2.6, "item"), _w(3.4, 3.7, "Budget"), _w(3.8, 4.1, "please")]
    lines = speech.split_words(words)
    assert [[w["w"] for w in l] for l in lines] == [["Right,", "so", "that's", "agreed."], ["Next", "item"],
                                                     ["Budget", "please"]]
    assert [w for l in lines for w in l] == words  # every word once, in order


def test_a_pause_the_vad_hears_cuts_a_line_where_word_times_run_over_it():
    # "turn" is stretched over the pause after it (Whisper's word times often are); the VAD's
    # quiet frames between the two words' middles still show it
    words = [_w(0.0, 0.4, "end"), _w(0.5, 1.9, "turn"), _w(1.95, 2.3, "Next"), _w(2.35, 2.7, "speaker")]
    quiet = np.zeros(200, bool)
    assert [len(l) for l in speech.split_words(words, quiet=quiet)] == [4]
    quiet[int(1.4 * SR / speech.VAD_FRAME) : int(1.8 * SR / speech.VAD_FRAME)] = True  # 0.4 s
    assert [[w["w"] for w in l] for l in speech.split_words(words, quiet=quiet)] == [["end", "turn"], ["Next", "speaker"]]
    assert speech.quiet_between(quiet, 1.2, 2.1) == pytest.approx(0.384, abs=0.04)
    assert speech.quiet_between(None, 0, 10) == 0.0


def test_a_batched_chunk_that_loops_is_recognised_again_on_its_own():
    class Again:
        def __init__(self):
            self.calls = []

        def transcribe(self, audio, **kw):
            self.calls.append((len(audio), kw))
            w = SimpleNamespace(start=0.25, end=0.75, word=" Christopher")
            return iter([SimpleNamespace(start=0.25, end=0.75, text=" Christopher", words=[w])]), None

    fine = SimpleNamespace(start=1.0, end=3.0, text=" So the whiteboard is working.", words=[])
    loop = SimpleNamespace(start=10.0, end=20.0, text=" Christopher." * 30, words=[])
    model = Again()
    out = speech._redo_loops(model, np.zeros(30 * SR, np.int16), [fine, loop], {"beam_size": 1, "vad_filter": True})
    assert out[0] is fine
    assert len(model.calls) == 1 and model.calls[0][0] == 10 * SR + 1  # the looping stretch only
    assert model.calls[0][1]["no_repeat_ngram_size"] == 3 and model.calls[0][1]["vad_filter"] is False
    assert out[1].redone and out[1].start == 10.25 and out[1].words[0].end == 10.75


def test_a_line_without_pauses_is_cut_at_its_longest_gap_under_the_cap():
    words, t = [], 0.0
    for i in range(60):  # 60 words, ~24 s, gaps of 0.1 s except one of 0.35 s after word 40
        words.append(_w(round(t, 2), round(t + 0.3, 2), f"w{i}"))
        t += 0.3 + (0.35 if i == 40 else 0.1)
    lines = speech.split_words(words, max_s=12.0)
    assert [w for l in lines for w in l] == words
    assert all(l[-1]["t1"] - l[0]["t0"] <= 12.0 for l in lines)
    assert any(l[-1]["w"] == "w40" for l in lines)  # the longest gap is a cut


def test_speech_probs_leave_the_audio_untouched_and_match_the_library():
    from faster_whisper.vad import get_vad_model

    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(SR * 7 + 123) * 0.05).astype(np.float32)
    before = audio.copy()
    probs = speech.speech_probs(audio)
    assert np.array_equal(audio, before)
    assert len(probs) == -(-len(audio) // speech.VAD_FRAME)
    lib = np.asarray(get_vad_model()(np.pad(audio, (0, speech.VAD_FRAME - len(audio) % speech.VAD_FRAME)))).reshape(-1)
    assert np.allclose(probs, lib[: len(probs)], atol=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="shared video data missing")
def test_windowed_words_land_where_one_call_puts_them():
    from sleuth.readers.video.decode import load_audio

    audio = load_audio(str(DATA / "manifesto.mp4"))[: 40 * SR]
    whole = speech.transcribe_whisper(audio, window_s=60)
    parts = speech.transcribe_whisper(audio, window_s=15)
    w_whole = [w for l in whole for w in l["words"]]
    w_parts = [w for l in parts for w in l["words"]]
    assert len(w_parts) > 40
    # each windowed word is found at about the same time in the one-call transcript
    matched = 0
    for w in w_parts:
        near = [v for v in w_whole if abs(v["t0"] - w["t0"]) < 0.6]
        matched += any(v["w"].lower().strip(".,") == w["w"].lower().strip(".,") for v in near)
    assert matched >= 0.85 * len(w_parts)
    assert all(a["t0"] <= b["t0"] + 1e-3 for a, b in zip(w_parts, w_parts[1:]))


@pytest.mark.skipif(not DATA.is_dir(), reason="shared video data missing")
def test_int16_audio_held_while_recognising_is_the_float_audio_bit_for_bit():
    from sleuth.readers.video.decode import load_audio, load_pcm16, pcm_to_float

    pcm = load_pcm16(str(DATA / "manifesto.mp4"))
    ref = load_audio(str(DATA / "manifesto.mp4"))
    assert pcm.dtype == np.int16 and len(pcm) == len(ref) > 10 * SR
    assert np.array_equal(pcm_to_float(pcm[SR : 5 * SR]), ref[SR : 5 * SR])


@pytest.mark.skipif(not DATA.is_dir(), reason="shared video data missing")
def test_batched_recognition_finds_the_reference_words_at_the_same_times():
    """Real speech: chunks recognised together (``--asr whisper-batched``) give the words the
    one-at-a-time reference gives, at about the same times, in lines no longer than the cap."""
    from sleuth.readers.video.decode import load_audio

    audio = load_audio(str(DATA / "manifesto.mp4"))[: 30 * SR]
    ref = speech.transcribe_whisper(audio, batch_size=1)
    got = speech.transcribe_whisper(audio, batch_size=speech.BATCH)
    w_ref = [w for l in ref for w in l["words"]]
    w_got = [w for l in got for w in l["words"]]
    assert len(w_ref) > 30 and abs(len(w_got) - len(w_ref)) <= 0.1 * len(w_ref)
    norm = lambda w: w["w"].lower().strip(".,!?;:'\"")  # noqa: E731
    matched = sum(any(norm(v) == norm(w) and abs(v["t0"] - w["t0"]) < 0.6 for v in w_ref) for w in w_got)
    assert matched >= 0.85 * len(w_got)
    assert all(l["t1"] - l["t0"] <= speech.LINE_MAX_S and l["text"] == " ".join(w["w"] for w in l["words"]) for l in got)
    assert all(a["t0"] <= b["t0"] + 1e-3 for a, b in zip(w_got, w_got[1:]))
