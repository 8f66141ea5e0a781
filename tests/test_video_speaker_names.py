"""Active-speaker labels on screen linked to voice clusters (readers/video/speaker_names.py).

Synthetic transcripts and on-screen items built here (turns, who speaks, what the picture shows
and when OCR would read it), then one tiny call rendered by samples/recordings.py and read by the
video reader, to check the name reaches the speaker entity and the searched segment text.
"""

from __future__ import annotations

import copy
import shutil

import pytest

from sleuth.readers.video.speaker_names import find_labels, link_speaker_names, name_like
from sleuth.readers.video import speaker_names as SN

NAMES = {"A": "Ada Lovelace", "B": "Project Manager", "C": "Marketing", "D": "Grace Hopper"}
# a fixed, irregular order of speakers; each turn 3-8 s long
ORDER = "ABCADBCDACBDABDCABCDBACDABCADCBDACBADCBA" * 2


def _turns(order: str = ORDER, gap: float = 0.6) -> list[tuple[str, float, float]]:
    out, t = [], 1.0
    for i, who in enumerate(order):
        d = 3.0 + (i * 7919 % 50) / 10
        out.append((who, t, t + d))
        t += d + gap
    return out


def _lines(turns, voice: dict[str, str]) -> list[dict]:
    """One transcript line a turn, labelled with the voice cluster ``voice[who]``."""
    return [{"t0": a, "t1": b, "text": f"words of {who}", "speaker": voice[who], "who": who} for who, a, b in turns]


def _label_items(turns, shift: float = 0.3) -> list[dict]:
    """The active speaker's name as the OCR tracker reports it: read ``shift`` s after the turn
    starts, last read on the 2 s grid before the next speaker's name replaces it; the name is
    drawn twice (under the avatar and on the tile's tag), as call software does."""
    out = []
    for k, (who, a, b) in enumerate(turns):
        nxt = turns[k + 1][1] if k + 1 < len(turns) else b + 1.0
        t = a + shift
        end = t + 2.0 * int(max(0.0, nxt - 0.2 - t) // 2.0)
        for bbox in ((300, 400, 500, 440), (10, 680, 160, 700)):
            out.append({"t": round(t, 3), "t_end": round(end, 3), "text": NAMES[who], "bbox": bbox, "score": 0.95})
    return out


def _title(turns) -> list[dict]:
    return [{"t": 0.0, "t_end": turns[-1][2], "text": "Weekly Sync", "bbox": (10, 10, 200, 40), "score": 0.99}]


def _agenda(turns, every: float = 60.0) -> list[dict]:
    """An agenda line that changes on its own schedule, each topic up once."""
    end, out, k = turns[-1][2], [], 0
    while k * every < end:
        out.append({"t": k * every, "t_end": min(end, (k + 1) * every - 0.5), "text": f"Topic {chr(65 + k)} Review",
                    "bbox": (10, 50, 300, 80), "score": 0.9})
        k += 1
    return out


def _names_by_who(lines) -> dict[str, set]:
    out: dict[str, set] = {}
    for l in lines:
        out.setdefault(l["who"], set()).add(l.get("speaker_name"))
    return out


def test_name_like():
    assert name_like("Project Manager") and name_like("Ada Lovelace") and name_like("O'Brien")
    assert not name_like("12:04") and not name_like("Agenda: Opening") and not name_like("4 participants")
    assert not name_like("This sentence is far too long to be anybody's name at all.")
    assert not name_like("lower case words")


def test_labels_that_follow_turns_name_the_voices_and_a_title_does_not():
    turns = _turns()
    voice = {"A": "S1", "B": "S2", "C": "S3", "D": "S4"}
    lines = _lines(turns, voice)
    screen = sorted(_label_items(turns) + _title(turns) + _agenda(turns), key=lambda s: s["t"])
    summary = link_speaker_names(lines, screen, {"status": "ok", "n": 4})
    assert summary["names"] == {voice[w]: NAMES[w] for w in "ABCD"}
    assert "Weekly Sync" not in summary["labels"]["candidates"]
    assert summary["labels"]["aligned"] >= 0.9 > summary["labels"]["chance"]
    assert _names_by_who(lines) == {w: {NAMES[w]} for w in "ABCD"}
    assert "split" not in summary and summary["n"] == 4  # four voices were right: nothing cut


def test_a_constant_title_and_an_agenda_alone_change_nothing():
    turns = _turns()
    lines = _lines(turns, {"A": "S1", "B": "S2", "C": "S1", "D": "S2"})
    before = copy.deepcopy(lines)
    labels, ev = find_labels(lines, _title(turns) + _agenda(turns))
    assert labels == {}
    summary = link_speaker_names(lines, _title(turns) + _agenda(turns), {"status": "ok"})
    assert lines == before and "names" not in summary


def test_no_text_on_screen_leaves_lines_unchanged():
    turns = _turns()
    lines = _lines(turns, {"A": "S1", "B": "S1", "C": "S2", "D": "S2"})
    before = copy.deepcopy(lines)
    summary = link_speaker_names(lines, [], {"status": "ok", "n": 2})
    assert lines == before and summary.get("names") is None and summary["n"] == 2


def test_names_switching_on_their_own_clock_are_not_labels():
    """The same names taking turns on screen every 7.3 s, whatever the voices do: they come and
    go like labels and cover the speech, but their switches do not fall at speech onsets."""
    turns = _turns()
    lines = _lines(turns, {"A": "S1", "B": "S2", "C": "S3", "D": "S4"})
    n = int(turns[-1][2] // 7.3) + 1
    clock = [("ABDC"[k % 4], 7.3 * k, 7.3 * (k + 1) - 0.6) for k in range(n)]
    items = _label_items(clock, shift=0.0)
    before = copy.deepcopy(lines)
    summary = link_speaker_names(lines, items, {"status": "ok"})
    assert summary["labels"]["cover"] >= 0.6  # not what rules them out
    assert find_labels(lines, items)[0] == {}
    assert lines == before and "names" not in summary


def test_labels_trailing_the_voices_by_a_fixed_delay_still_name_them():
    """Call software switches to a speaker a moment after they start: 1.5 s late here."""
    turns = _turns()
    voice = {"A": "S1", "B": "S2", "C": "S3", "D": "S4"}
    lines = _lines(turns, voice)
    summary = link_speaker_names(lines, _label_items(turns, shift=1.5), {"status": "ok"})
    assert 1.0 <= summary["labels"]["lag"] <= 1.75
    assert summary["names"] == {voice[w]: NAMES[w] for w in "ABCD"}


def test_a_gallery_of_names_all_shown_at_once_is_not_a_label():
    turns = _turns()
    lines = _lines(turns, {"A": "S1", "B": "S2", "C": "S3", "D": "S4"})
    end = turns[-1][2]
    items = [{"t": 0.0, "t_end": end, "text": n, "bbox": (100 * i, 600, 100 * i + 90, 620), "score": 0.9}
             for i, n in enumerate(NAMES.values())]
    before = copy.deepcopy(lines)
    assert link_speaker_names(lines, items, {"status": "ok"}).get("names") is None
    assert lines == before


def test_slide_titles_that_recur_over_one_narrator_do_not_cut_it():
    """Two section titles coming back at the narrator's sentence starts, each up for a quarter
    of the speech: they switch at onsets like labels, but leave half the speech unlabelled."""
    turns = _turns()
    lines = _lines(turns, {w: "S1" for w in "ABCD"})
    shown = [(("Overview", "Summary")[k // 2 % 2], a, b) for k, (_, a, b) in enumerate(turns) if k % 2 == 0]
    items = [{"t": a + 0.3, "t_end": b, "text": title, "bbox": (10, 10, 300, 60), "score": 0.9} for title, a, b in shown]
    before = copy.deepcopy(lines)
    summary = link_speaker_names(lines, items, {"status": "ok", "n": 1})
    assert summary["labels"]["aligned"] >= 0.9 and summary["labels"]["cover"] < 0.6
    assert lines == before and "names" not in summary and summary["n"] == 1


def test_a_cluster_holding_two_labelled_people_is_cut():
    turns = _turns()
    # the voices of A and B were merged into S1 (the under-count)
    lines = _lines(turns, {"A": "S1", "B": "S1", "C": "S2", "D": "S3"})
    summary = link_speaker_names(lines, _label_items(turns), {"status": "ok", "n": 3})
    assert summary["n"] == 4 and list(summary["split"]) == ["S1"] and len(summary["split"]["S1"]) == 1
    by_who: dict[str, set] = {}
    for l in lines:
        by_who.setdefault(l["who"], set()).add(l["speaker"])
    # each person is one cluster now, and no two people share one
    assert all(len(v) == 1 for v in by_who.values())
    assert len({next(iter(v)) for v in by_who.values()}) == 4
    assert by_who["C"] == {"S2"} and by_who["D"] == {"S3"}  # untouched clusters keep their ids
    assert _names_by_who(lines) == {w: {NAMES[w]} for w in "ABCD"}
    assert sorted(summary["seconds"]) == ["S1", "S2", "S3", "S4"]


def test_a_cluster_with_a_weak_second_label_is_not_cut():
    # B speaks only twice (under 30 s): its label inside S1 is too weak to cut S1
    order = ORDER.replace("B", "C")
    order = order[:10] + "B" + order[10:40] + "B" + order[40:]
    turns = _turns(order)
    lines = _lines(turns, {"A": "S1", "B": "S1", "C": "S2", "D": "S3"})
    b_secs = sum(b - a for w, a, b in turns if w == "B")
    assert b_secs < 30.0
    summary = link_speaker_names(lines, _label_items(turns), {"status": "ok", "n": 3})
    assert "split" not in summary
    assert {l["speaker"] for l in lines} == {"S1", "S2", "S3"}
    # S1 is still named after the label that dominates its speech
    assert summary["names"]["S1"] == NAMES["A"]
    assert all(l.get("speaker_name") == NAMES["A"] for l in lines if l["speaker"] == "S1")


# ------------------------------------------------------------------ a tiny rendered call



def _srt(turns: list[dict]) -> str:
    def f(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "".join(f"{i + 1}\n{f(t['start'])} --> {f(t['end'])}\n{t['text']}\n\n" for i, t in enumerate(turns))


def test_a_rendered_call_names_its_speakers(tmp_path):
    """A call of two people taking turns, rendered with two TTS voices and their names on screen;
    subtitles from the truth stand in for speech recognition (fast, and not what is tested)."""
    pytest.importorskip("resemblyzer")
    pytest.importorskip("rapidocr_onnxruntime")
    import json

    import sleuth.samples.recordings as rec
    import sleuth.samples.tts as tts
    from sleuth.readers.video import read_video

    if tts.engine() is None:
        pytest.skip("no TTS engine (flite, espeak-ng) is installed")
    said = [
        ("Project Manager", "Welcome everyone, today we plan the new remote control together."),
        ("Marketing", "Our survey says people lose their remotes all the time."),
        ("Project Manager", "Then a locator beep could be a selling point for us."),
        ("Marketing", "Yes, and the batteries should last at least a whole year."),
        ("Project Manager", "Good, what do the costs look like for that battery?"),
        ("Marketing", "Rechargeable batteries would add about two euros per unit."),
        ("Project Manager", "That fits the budget of twelve euros and fifty cents."),
        ("Marketing", "Then I will write the requirements down for next time."),
    ]
    meeting = {"meeting_transcripts": [{"speaker": s, "content": c} for s, c in said],
               "topic_list": [{"topic": "Remote control", "relevant_text_span": [["0", "7"]]}],
               "specific_query_list": [], "general_query_list": []}
    mp4 = rec.render_meeting(meeting, tmp_path, "call", source="call.json")
    truth = json.loads(mp4.with_suffix(".truth.json").read_text())
    mp4.with_suffix(".srt").write_text(_srt(truth["turns"]), encoding="utf-8")
    tree = read_video(mp4)
    meta = tree.root.meta["speakers"]
    assert meta["status"] == "ok" and sorted(meta.get("names", {}).values()) == ["Marketing", "Project Manager"], meta
    lines = [l for seg in tree.root.walk() if seg.kind == "segment" for l in seg.meta["speech"]]
    for t in truth["turns"]:
        line = min(lines, key=lambda l: abs(l["t0"] - t["start"]))
        assert line.get("speaker_name") == t["speaker"]
    ents = {e.name: e for e in tree.entities if e.kind == "speaker"}
    mkt = ents.get("Marketing (call)")
    assert mkt is not None and "Marketing" in mkt.aliases, sorted(ents)
    said_at = {round(m.t) for m in mkt.mentions if m.modality == "speech"}
    assert said_at == {round(t["start"]) for t in truth["turns"] if t["speaker"] == "Marketing"}
    # the entity a name makes on screen (a two-word name always makes one) is the speaker's now:
    # one entity, shown and heard
    pm = ents["Project Manager (call)"]
    assert {"screen", "speech"} <= {m.modality for m in pm.mentions}
    assert not [e for e in tree.entities if e.kind != "speaker" and e.name == "Project Manager"]
    assert "Marketing: Our survey says" in tree.text


def _hour_of_turns_beside_slides(n_lines=600, n_slides=600):
    import random
    import string

    rng = random.Random(0)
    names = ["Project Manager", "Marketing", "Industrial Designer", "User Interface"]
    lines, screen, t = [], [], 0.0
    for _ in range(n_lines):
        d, who = rng.uniform(2, 6), rng.randrange(4)
        lines.append({"t0": t, "t1": t + d, "text": "words here", "speaker": f"S{who + 1}", "words": []})
        screen.append({"t": t + 0.3, "t_end": t + d, "text": names[who]})  # up for the turn
        t += d + 0.3
    for _ in range(n_slides):  # slide lines that look like names, each read once
        words = ("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9))).title()
                 for _ in range(rng.randint(1, 3)))
        screen.append({"t": rng.uniform(0, t), "text": " ".join(words)})
    return lines, sorted(screen, key=lambda s: s["t"]), names


def test_many_name_like_texts_are_compared_with_the_most_read_ones_only(monkeypatch):
    # a long lecture has thousands of name-like slide lines: every pair compared took minutes
    lines, screen, names = _hour_of_turns_beside_slides()
    calls = []
    real = SN.same_text
    monkeypatch.setattr(SN, "same_text", lambda a, b: calls.append(1) or real(a, b))
    labels, ev = SN.find_labels(lines, screen)
    assert sorted(labels) == sorted(names)
    assert len(calls) <= len(screen) * SN.FOLD_HOMES // 2  # every pair: ~180,000


def test_stretches_from_all_reads_equal_the_per_text_reference():
    import bisect
    import random

    def reference(items, others):  # the plain version: another text's reads, one text at a time
        spans = sorted((float(s["t"]), float(s.get("t_end", s["t"]))) for s in items)
        out = [list(spans[0])]
        for a, b in spans[1:]:
            between = bisect.bisect_left(others, a) > bisect.bisect_right(others, out[-1][1])
            if a - out[-1][1] <= SN.STRETCH_GAP and not between:
                out[-1][1] = max(out[-1][1], b)
            else:
                out.append([a, b])
        return [(a, b) for a, b in out]

    rng = random.Random(3)
    for _ in range(30):
        groups = {f"n{k}": [{"t": round(rng.uniform(0, 60), 1)} for _ in range(rng.randint(1, 12))] for k in range(4)}
        times = sorted(float(s["t"]) for its in groups.values() for s in its)
        for n, items in groups.items():
            others = sorted(float(s["t"]) for m, its in groups.items() if m != n for s in its)
            assert SN._stretches(items, times) == reference(items, others)
