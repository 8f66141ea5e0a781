"""Decoding, shots, scenes, segments and the shape of the video Tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED
from sleuth.core import Tree
from sleuth.readers.video import VIDEO_SUFFIXES, read_video
from sleuth.readers.video.decode import FrameSource, probe, reference_frames
from sleuth.readers.video.scenes import merge_shots, split_shots, split_windows
from sleuth.readers.video.shots import Shot, ShotDetector, reference_cuts, thumb

DATA = SHARED / "video"
BUNNY = DATA / "big_buck_bunny_0_30.webm"
MANIFESTO = DATA / "manifesto.mp4"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared video data missing")

#: hard cuts of the bunny clip listed in shared/data/video/SOURCE.md (ffmpeg scene>0.3)
BUNNY_CUTS = [11.80, 15.67, 22.96]


@pytest.fixture(scope="module")
def bunny() -> Tree:
    return read_video(BUNNY, asr="none", ocr=False)


@pytest.fixture(scope="module")
def joined(tmp_path_factory) -> tuple[Path, list[float]]:
    from sleuth.samples.video import join_clips

    out = tmp_path_factory.mktemp("join") / "joined.mp4"
    joins = join_clips([BUNNY, MANIFESTO], out, max_seconds=8.0)
    return out, joins


def test_suffixes_are_lower_case_with_dot():
    assert {".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v"} <= VIDEO_SUFFIXES
    assert all(s.startswith(".") and s == s.lower() for s in VIDEO_SUFFIXES)


def test_bunny_shot_boundaries_match_known_cuts(bunny):
    starts = [s[0] for s in bunny.root.meta["shots"][1:]]
    for cut in BUNNY_CUTS:
        assert min(abs(cut - s) for s in starts) <= 0.5, (cut, starts)
    # no invented cuts: the fade-in at the start and the camera moves are not cuts
    assert len(starts) <= len(BUNNY_CUTS) + 1


def test_sampled_detector_agrees_with_pyscenedetect_on_every_frame():
    info = probe(BUNNY)
    src = FrameSource(info)
    det = ShotDetector(rate=2.0)
    for t, _i, f in src.sample(2.0):
        det.push(t, thumb(f))
    fast = det.refine(src)
    ref = reference_cuts(str(BUNNY))
    assert len(fast) == len(ref)
    for a, b in zip(fast, ref):
        assert abs(a - b) <= 2.0 / info.fps  # within two frames of the full-rate detector


def test_decord_frames_match_plain_pyav_decoding():
    info = probe(MANIFESTO)
    src = FrameSource(info, max_width=320)
    assert src.backend == "decord"
    got = src.frames_between(10.0, 10.5)
    ref = reference_frames(str(MANIFESTO), 10.0, 10.5, src.size)
    assert len(got) == len(ref) > 5
    for (ta, a), (tb, b) in zip(got, ref):
        assert ta == pytest.approx(tb, abs=0.02)
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 6  # scalers differ slightly


def test_pyav_fallback_gives_the_same_shots():
    info = probe(BUNNY)
    src = FrameSource(info, prefer="pyav")
    assert src.backend == "pyav"
    det = ShotDetector(rate=2.0)
    for t, _i, f in src.sample(2.0):
        det.push(t, thumb(f))
    cuts = det.refine(src)
    for cut in BUNNY_CUTS:
        assert min(abs(cut - c) for c in cuts) <= 0.5


def test_tree_times_nest_and_char_spans_quote_tree_text(bunny):
    root = bunny.root
    assert root.kind == "video" and root.title == "big_buck_bunny_0_30"
    assert root.meta["duration"] == pytest.approx(30.0, abs=0.1)
    assert root.meta["has_audio"] is True and root.meta["transcript_source"] == "none"
    assert (root.meta["width"], root.meta["height"]) == (1280, 720)
    prev_end = 0.0
    for scene in root.children:
        assert scene.kind == "scene"
        assert scene.t_start == pytest.approx(prev_end, abs=1e-3)
        prev_end = scene.t_end
        seg_end = scene.t_start
        for seg in scene.children:
            assert seg.kind == "segment"
            assert seg.t_start == pytest.approx(seg_end, abs=1e-3) and seg.t_end > seg.t_start
            seg_end = seg.t_end
            assert bunny.text[seg.char_start : seg.char_end] == seg.text
            for name in seg.meta["keyframes"]:
                assert bunny.assets[name][:3] == b"\xff\xd8\xff"  # JPEG
        assert seg_end == pytest.approx(scene.t_end, abs=1e-3)
    assert prev_end == pytest.approx(root.meta["duration"], abs=1e-3)


def test_keyframes_are_small_jpegs(bunny):
    import cv2

    assert bunny.assets
    for name, data in bunny.assets.items():
        assert name.startswith("kf_") and name.endswith(".jpg")
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[1] <= 320
        assert len(data) < 40_000


def test_join_of_two_videos_is_a_shot_and_scene_boundary(joined):
    path, joins = joined
    tree = read_video(path, asr="none", ocr=False)
    starts = [s[0] for s in tree.root.meta["shots"][1:]]
    assert min(abs(joins[0] - s) for s in starts) <= 0.5
    scene_starts = [s.t_start for s in tree.root.children[1:]]
    assert min(abs(joins[0] - s) for s in scene_starts) <= 0.5


def test_windows_cut_at_the_longest_pause():
    # speech every 2 s, except one long pause at 21-24 s: a 45 s scene splits there
    lines = [{"t0": t, "t1": t + 1.8, "text": "w", "words": []} for t in np.arange(0, 45, 2.0) if not 21 <= t < 24]
    spans = split_windows(0.0, 45.0, lines)
    assert len(spans) == 2
    assert 21.0 <= spans[0][1] <= 24.0
    assert spans[0][0] == 0.0 and spans[-1][1] == 45.0


def test_windows_without_speech_stay_within_bounds():
    for length in (9.0, 31.0, 61.0, 200.0, 601.5):
        spans = split_windows(0.0, length, [])
        assert spans[0][0] == 0.0 and spans[-1][1] == length
        assert all(b > a for a, b in spans)
        if length > 30:
            assert all(10.0 - 1e-6 <= b - a <= 30.0 + 1e-6 for a, b in spans)


def test_static_title_card_stays_one_scene_with_ocr():
    tree = read_video(MANIFESTO, asr="none")
    assert tree.root.meta["n_ocr_frames"] >= 1  # the card's text was read ...
    assert tree.root.meta["slide_changes"] == []  # ... and never counted as a new slide
    assert len(tree.root.children) == 1


def test_bunny_cuts_are_kept_with_ocr_on():
    tree = read_video(BUNNY, asr="none")
    starts = [sc.t_start for sc in tree.root.children[1:]]
    # the film's title cards come up over footage: the scenes are still the shots' scenes
    assert len(starts) == len(BUNNY_CUTS)
    for cut, got in zip(BUNNY_CUTS, starts):
        assert abs(cut - got) <= 0.5, (starts, BUNNY_CUTS)


def test_split_shots_cuts_or_marks_hard_boundaries():
    h = np.full(128, 1 / 128, np.float32)  # identical colours: histograms alone merge everything
    shots = [Shot(0.0, 40.0, h), Shot(40.0, 60.0, h)]
    out, hard = split_shots(shots, [0.4, 10.0, 39.6, 59.8])
    # 0.4 and 59.8 are at the ends, 39.6 marks the existing cut at 40, 10 cuts the first shot
    assert [(s.t_start, s.t_end) for s in out] == [(0.0, 10.0), (10.0, 40.0), (40.0, 60.0)]
    assert hard == {1, 2}
    assert [len(g) for g in merge_shots(out, [], hard)] == [1, 1, 1]
    assert [len(g) for g in merge_shots(out, [])] == [3]
