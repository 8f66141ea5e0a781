"""Videos through the library: located search by spoken phrase, read by time, look, entities."""

import re
import shutil
from pathlib import Path

import pytest

from sleuth import Library


def _srt_cues(path: Path) -> list[tuple[float, float, str]]:
    cues = []
    for block in path.read_text().strip().split("\n\n"):
        lines = block.strip().splitlines()
        m = re.match(r"(\d+):(\d+):(\d+)[,.](\d+) --> (\d+):(\d+):(\d+)[,.](\d+)", lines[1])
        h, mi, s, ms, h2, mi2, s2, ms2 = map(int, m.groups())
        cues.append((h * 3600 + mi * 60 + s + ms / 1000, h2 * 3600 + mi2 * 60 + s2 + ms2 / 1000, " ".join(lines[2:])))
    return cues


@pytest.fixture(scope="module")
def video_lib(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("vlib")
    mixed = root / "mixed"
    mixed.mkdir()
    (mixed / "notes.md").write_text("# Reading list\n\nThe Communist Manifesto was published in 1848 in London.\n")
    (mixed / "broken.mp4").write_bytes(b"")
    vid = shared_data / "video"
    lib = Library(root / "lib")
    rep = lib.add([mixed, vid / "manifesto.mp4", vid / "big_buck_bunny_0_30.webm"])
    return lib, rep, vid


def test_mixed_batch_with_a_bad_video(video_lib):
    lib, rep, _ = video_lib
    status = {Path(r.path).name: r.status for r in rep.results}
    assert status == {"notes.md": "added", "broken.mp4": "failed", "manifesto.mp4": "added", "big_buck_bunny_0_30.webm": "added"}
    reason = next(r.reason for r in rep.failed)
    assert reason.startswith("broken.mp4") and "\n" not in reason
    kinds = lib.status()["kinds"]
    assert kinds["video"] == 2 and kinds["scene"] >= 2 and kinds["segment"] >= 4


def test_spoken_phrase_finds_segment_containing_it(video_lib):
    lib, _, vid = video_lib
    cues = _srt_cues(vid / "manifesto.srt")
    long_cues = [c for c in cues if len(c[2].split()) >= 6]
    checked = 0
    for t0, t1, text in long_cues[::4]:
        hits = lib.search(text, level="segment", within="manifesto.mp4", k=1)
        loc = hits[0]["locator"]
        mid = (t0 + t1) / 2
        assert loc["t_start"] - 0.5 <= mid <= loc["t_end"] + 0.5, (text, loc["t_start"], loc["t_end"])
        assert re.fullmatch(r"manifesto\.mp4 \d\d:\d\d:\d\d–\d\d:\d\d:\d\d", hits[0]["label"])
        checked += 1
    assert checked >= 3


def test_read_video_by_time_is_ordered_and_bounded(video_lib):
    lib, _, _ = video_lib
    src = next(s for s in lib.sources() if s["name"] == "manifesto.mp4")
    out = lib.read(src["root_id"], start=20, end=40, max_tokens=2000)
    ts = [i["t"] for i in out["items"]]
    assert ts and ts == sorted(ts)
    assert all(19 <= t <= 40 for t in ts if t is not None)
    assert any("spectre" in i["text"] or "specter" in i["text"] for i in out["items"])
    small = lib.read(src["root_id"], start=0, end=88, max_tokens=30)
    assert small["cursor"] is not None and small["tokens"] <= 30 + 20
    more = lib.read(src["root_id"], start=small["cursor"], end=88, max_tokens=30)
    assert more["items"][0]["t"] >= small["items"][-1]["t"]


def test_look_returns_keyframe_and_context(video_lib):
    lib, _, _ = video_lib
    look = lib.look("manifesto.mp4@00:00:21")
    assert look["t"] == 21 and Path(look["keyframe"]).is_file()
    assert look["keyframe"].endswith(".jpg")
    assert any("spectre" in s["text"] for s in look["speech"])
    from PIL import Image

    assert Image.open(look["keyframe"]).size[0] <= 320


def test_entities_link_screen_and_speech(video_lib):
    lib, _, _ = video_lib
    res = lib.search("Karl Marx", level="entity", k=3)
    assert res and res[0]["entity"]["name"].lower().endswith("marx")
    mods = set(res[0]["entity"]["modalities"])
    assert "screen" in mods
    for m in res[0]["mentions"]:
        assert m["locator"]["kind"] == "video" and m["locator"]["t_start"] is not None


def test_video_outline_has_scenes_and_segments(video_lib):
    lib, _, _ = video_lib
    src = next(s for s in lib.sources() if s["name"] == "big_buck_bunny_0_30.webm")
    o = lib.outline(src["root_id"], depth=2)
    scenes = [i for i in o["items"] if i["kind"] == "scene"]
    assert len(scenes) >= 2
    starts = [i["locator"]["t_start"] for i in scenes]
    assert starts == sorted(starts) and starts[0] == 0


def test_ls_and_outline_show_videos_with_durations_and_times(video_lib):
    """`sleuth ls` gives a video's duration; `sleuth outline` its scenes with ids and time spans."""
    import json

    from typer.testing import CliRunner

    from sleuth.cli import app

    lib, _, _ = video_lib
    runner = CliRunner()
    rows = json.loads(runner.invoke(app, ["ls", "--library", str(lib.home), "--json"]).stdout)
    by = {r["name"]: r for r in rows}
    src = next(s for s in lib.sources() if s["name"] == "manifesto.mp4")
    assert by["manifesto.mp4"]["kind"] == "video" and by["manifesto.mp4"]["duration"] == pytest.approx(src["duration"])
    assert by["broken.mp4"]["status"] == "failed" and by["broken.mp4"]["reason"].startswith("broken.mp4")
    res = runner.invoke(app, ["outline", "manifesto.mp4", "--library", str(lib.home), "--json"])
    assert res.exit_code == 0, res.output
    items = json.loads(res.stdout)["items"]
    scenes = [it for it in items if it["kind"] == "scene"]
    assert scenes and items[0]["id"] == src["root_id"]
    starts = [it["locator"]["t_start"] for it in scenes]
    assert starts == sorted(starts) and all(it["locator"]["t_end"] > it["locator"]["t_start"] for it in scenes)
    text = runner.invoke(app, ["outline", "manifesto.mp4", "--library", str(lib.home)]).output
    assert re.search(rf"#{scenes[0]['id']} scene: .*\d\d:\d\d:\d\d–\d\d:\d\d:\d\d", text)
