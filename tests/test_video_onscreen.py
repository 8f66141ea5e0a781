"""On-screen text (OCR of generated frames) and entities across speech and screen."""

from __future__ import annotations

import pytest

from sleuth.core import Node
from sleuth.readers.video import read_video
from sleuth.readers.video.entities import candidates, extract_entities
from sleuth.readers.video.onscreen import same_text, unglue


@pytest.fixture(scope="module")
def text_clip(tmp_path_factory):
    from sleuth.samples.video import make_text_clip

    path = tmp_path_factory.mktemp("ocr") / "captions.mp4"
    truth = make_text_clip(path, [(2.0, 5.0, "WORLD HEALTH ORGANIZATION"), (7.0, 10.5, "Budget Review 2024")], duration=12.0)
    return path, truth


def test_ocr_finds_drawn_text_at_its_time(text_clip):
    path, truth = text_clip
    tree = read_video(path, asr="none")
    items = [s for n in tree.root.walk() if n.kind == "segment" for s in n.meta["screen"]]
    for t0, t1, text in truth:
        hits = [s for s in items if same_text(s["text"], text)]
        assert hits, (text, [s["text"] for s in items])
        first = min(hits, key=lambda s: s["t"])
        assert abs(first["t"] - t0) <= 1.0
        assert first["t_end"] <= t1 + 1.0
        x0, top, x1, bottom = first["bbox"]
        # drawn at x=30 around the vertical middle of a 640x360 frame
        assert 10 <= x0 <= 60 and top < 180 < bottom + 10 and x1 > 250
    # the text line also appears, time-stamped, in the segment text
    assert "[screen 00:00:02]" in tree.text
    # near-identical frames are skipped: far fewer reads than sampled frames (24)
    assert tree.root.meta["n_ocr_frames"] <= 12


def test_captions_coming_and_going_do_not_split_scenes(text_clip):
    path, _ = text_clip
    tree = read_video(path, asr="none")
    # two captions over footage: nothing is replaced in a headline position, so one scene
    assert tree.root.meta["slide_changes"] == []
    assert len(tree.root.children) == 1


SLIDE_TITLES = ["1. Tidal Energy", "2. Turbine Design", "3. Field Survey", "4. Open Questions"]


@pytest.fixture(scope="module")
def slides_clip(tmp_path_factory):
    from sleuth.samples.video import make_slides_clip

    path = tmp_path_factory.mktemp("slides") / "slides.mp4"
    truth = make_slides_clip(path, SLIDE_TITLES, slide_seconds=10.0)
    return path, truth


def test_slide_changes_start_scenes(slides_clip):
    path, truth = slides_clip
    tree = read_video(path, asr="none")
    # the slides share one template: the shot detector alone sees a single shot
    assert len(tree.root.meta["shots"]) == 1
    changes = [t0 for t0, _, _ in truth[1:]]
    starts = [sc.t_start for sc in tree.root.children[1:]]
    assert len(starts) == len(changes), (starts, changes)
    for want, got in zip(changes, starts):
        assert abs(want - got) <= 1.0, (starts, changes)
    # each scene is named by its slide's title
    for sc, (_, _, title) in zip(tree.root.children, truth):
        assert same_text(sc.title.split(": ", 1)[-1], title), (sc.title, title)


def test_slide_clip_without_ocr_is_one_scene(slides_clip):
    path, _ = slides_clip
    tree = read_video(path, asr="none", ocr=False)
    assert len(tree.root.children) == 1 and tree.root.meta["slide_changes"] == []


def test_screen_entity_is_located(text_clip):
    path, _ = text_clip
    tree = read_video(path, asr="none")
    who = [e for e in tree.entities if e.name.lower() == "world health organization"]
    assert who and who[0].kind == "org"
    m = who[0].mentions[0]
    assert m.modality == "screen" and m.bbox is not None and abs(m.t - 2.0) <= 1.0
    assert m.node.kind == "segment"


def _seg(t0, t1, speech=(), screen=()):
    return Node(
        kind="segment", t_start=t0, t_end=t1,
        meta={
            "speech": [{"t0": a, "t1": b, "text": txt, "words": []} for a, b, txt in speech],
            "screen": [{"t": a, "t_end": a + 2, "text": txt, "bbox": (0, 0, 10, 10)} for a, txt in screen],
            "keyframes": [],
        },
    )


def test_acronym_and_surname_corefer_with_full_names():
    segs = [
        _seg(0, 20, speech=[(1, 4, "Today the World Health Organization met in Geneva."), (5, 8, "Karl Marx wrote about it.")]),
        _seg(20, 40, speech=[(21, 24, "Later the WHO said more."), (25, 28, "As Marx argued, nothing changed.")], screen=[(22, "WHO briefing")]),
    ]
    ents = {e.name: e for e in extract_entities(segs)}
    who = ents["World Health Organization"]
    assert "WHO" in who.aliases and who.kind == "org"
    assert {m.modality for m in who.mentions} == {"speech", "screen"}
    assert sorted(m.node.t_start for m in who.mentions) == [0, 20, 20]
    marx = ents["Karl Marx"]
    assert "Marx" in marx.aliases and marx.kind == "person"
    assert len(marx.mentions) == 2


def test_candidates_skip_sentence_initial_function_words():
    got = {s for s, _, _ in candidates("The Bank of England raised rates. Then nothing happened.")}
    assert "Bank of England" in got
    assert not any(s.startswith("The ") or s == "Then" for s in got)


def test_frequent_lower_case_terms_become_entities():
    # auto-captions have no capitals: salient repeated words and pairs carry the topics
    segs = [_seg(i * 20, i * 20 + 20, speech=[(i * 20 + 1, i * 20 + 5, "the communist party and the bourgeoisie")]) for i in range(4)]
    names = {e.name.lower() for e in extract_entities(segs)}
    assert "communist party" in names and "bourgeoisie" in names
    assert "the" not in names


def test_unglue_splits_run_together_words_only():
    assert unglue("WorldHealthOrganization") == "World Health Organization"
    assert unglue("YouTube PowerPoint") == "YouTube PowerPoint"
    assert same_text("Budget Review2024", "Budget Review 2024")
    assert not same_text("Budget", "Revenue")
