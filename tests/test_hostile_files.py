"""Hostile and unusual files: encodings, binary data, oversized HTML and pages, long texts,
damaged PDFs and videos, telemetry, and the system packages the test command installs."""

import os
import resource
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PEAK_MB

from sleuth.core import ReaderError
from sleuth.readers import read_path

ROOT = Path(__file__).resolve().parents[2]
REPO = Path(__file__).resolve().parents[1]  # the checkout, whatever its folder is called
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1"}


# -- 5. encodings ----------------------------------------------------------------------------

DANISH = ("Søren Kierkegaard blev født i København i 1813. Han skrev om angst og fortvivlelse; "
          "hans far, Michael Pedersen, var uldhandler på Nytorv.\n\nÆbler og pærer blev solgt på torvet.\n")


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16-le", "utf-16-be", "utf-8", "utf-16"])
def test_text_encodings_decode_to_the_same_text(tmp_path, encoding):
    p = tmp_path / "danish.txt"
    p.write_bytes(DANISH.encode(encoding))
    tree = read_path(p)
    assert "Søren Kierkegaard" in tree.text and "København" in tree.text and "Æbler og pærer" in tree.text


@pytest.mark.parametrize("data", [b"S\xf8ren Kierkegaard was born in K\xf8benhavn.\n", b"S\xf8ren \xd8rsted, K\xf8benhavn\n",
                                  "Le garçon était très fâché ; où est la forêt ?\n".encode("cp1252")])
def test_short_latin1_text_is_not_read_as_gb18030(tmp_path, data):
    p = tmp_path / "short.txt"
    p.write_bytes(data)
    assert read_path(p).text.strip() == data.decode("cp1252").strip()


def test_cjk_legacy_encodings_still_decode(tmp_path):
    body = "北京是中国的首都，也是一座历史悠久的城市。\n\n上海是一个重要的港口城市，人口众多。\n"
    p = tmp_path / "zh.txt"
    p.write_bytes(body.encode("gb18030"))
    assert "北京是中国的首都" in read_path(p).text


def test_random_binary_without_zero_bytes_is_refused(tmp_path):
    rng = __import__("random").Random(7)
    data = bytes(rng.randrange(1, 256) for _ in range(60_000))
    p = tmp_path / "noise.txt"
    p.write_bytes(data)
    with pytest.raises(ReaderError, match="noise.txt: binary data"):
        read_path(p)


# -- 3. HTML size ------------------------------------------------------------------------------

def test_html_over_the_element_limit_is_refused_quickly(tmp_path, monkeypatch):
    from sleuth.readers import html

    monkeypatch.setattr(html, "MAX_ELEMENTS", 2_000)
    p = tmp_path / "deep.html"
    p.write_text("<html><body>" + "<div>" * 3000 + "deep text" + "</div>" * 3000 + "</body></html>")
    with pytest.raises(ReaderError, match=r"deep.html: 3,002 HTML elements, more than the 2,000"):
        read_path(p)


# -- 3. page renders are bounded ----------------------------------------------------------------

def test_render_scale_is_capped_by_pixels(tmp_path, monkeypatch):
    from sleuth.readers import render
    from sleuth.samples import make_report_pdf

    pdf = tmp_path / "r.pdf"
    make_report_pdf(pdf, outline=False)
    monkeypatch.setattr(render, "MAX_PIXELS", 400_000)
    img = render.render_page(pdf, 1, scale=2.0)  # 1224 x 1584 = 1.9 MP uncapped
    assert img.size[0] * img.size[1] <= 400_000 * 1.01  # PDFium rounds each side up
    out = render.render_box(pdf, 1, (72, 72, 300, 120), tmp_path / "box.png")
    from PIL import Image

    small = Image.open(out).convert("RGB")
    s = small.size[0] / 612.0  # the box is drawn at the scale the page was rendered at
    assert small.getpixel((int((72 - 2) * s), int(96 * s)))[0] > 150
    assert render.max_scale(14_400, 14_400) * 14_400 <= render.MAX_PIXELS ** 0.5 + 1


def test_ocr_renders_within_the_pixel_cap(tmp_path, monkeypatch):
    from sleuth.readers import ocr, pdf_extract as px, render
    from sleuth.samples import make_scanned_pdf

    info = make_scanned_pdf(tmp_path / "scan.pdf", ["The harbour wall was rebuilt in 1998.", "Basalt blocks came by sea."],
                            font_pt=10.0)
    monkeypatch.setattr(render, "MAX_PIXELS", 300_000)
    doc = px.open_pdf(info["path"])
    pd = px.page_data(doc, 0)
    asked = []

    def rec(scale):
        asked.append(scale)
        return px.render_page(doc, 0, scale=scale)

    for mode in ("fast", "thorough"):
        ocr.ocr_page(rec, pd.width, pd.height, mode=mode)
    assert asked and all(s * s * pd.width * pd.height <= 300_000 * 1.0001 for s in asked), asked


# -- 2. long texts: bounded tokenisation ----------------------------------------------------------

def test_head_ids_equal_full_tokenisation():
    """The fast path (one untruncated tokenizer, heads cut by hand) against the tokenizer's own
    truncation at each length the index uses."""
    from sleuth.index.embed import head_ids, plain_tokenizer, tokenizer

    long_words = " ".join(f"word{i} supercalifragilistic{i}" for i in range(3000))
    texts = ["", "short text", long_words, "x" * 5000, "北京" * 3000, "a " * 10 + "b" * 4000 + " c" * 2000,
             ("Paths [/etc/hosts] and Søren. " * 400), "one two three " * 20 + "end", "w " * 62, "w " * 63]
    for n in (64, 128, 514):
        ref = tokenizer(n)
        for t in texts:
            assert head_ids(plain_tokenizer(), t, n) == ref.encode(t).ids, (n, t[:40])


def test_embedding_long_texts_keeps_memory_bounded():
    """200 paragraphs of 40,000 characters: tokenising them whole kept ~2M word pieces as
    'overflowing' encodings (hundreds of MB); embedding them from their heads must not."""
    code = PEAK_MB + (
        "import numpy as np\n"
        "from sleuth.index.embed import Embedder\n"
        "e = Embedder(); e.encode(['warm up'])\n"
        "texts = [(f'paragraph {i} ' + 'harbour basalt tide records ' * 1500) for i in range(200)]\n"
        "base = _peak_mb()\n"
        "v = e.encode(texts, max_length=64)\n"
        "assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)\n"
        "print(int(_peak_mb() - base))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=ENV)
    assert res.returncode == 0, res.stderr[-2000:]
    assert int(res.stdout.split()[-1]) < 120, res.stdout


def test_attention_batches_stay_within_budget():
    from sleuth.index.embed import ATTENTION_BUDGET, _batches

    lengths = [3, 64, 64, 128, 128, 128, 256, 10, 10] * 20
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = _batches(order, lengths, 32)
    assert [i for b in batches for i in b] == order
    assert all(len(b) <= 32 and (len(b) == 1 or len(b) * lengths[b[-1]] ** 2 <= ATTENTION_BUDGET) for b in batches)


# -- 4. telemetry --------------------------------------------------------------------------------

def test_onnxruntime_telemetry_is_off(tmp_path):
    env = {**ENV, "HOME": str(tmp_path)}
    env.pop("ORT_DISABLE_TELEMETRY", None)
    code = "import sleuth; from sleuth.index.embed import Embedder; Embedder().encode(['telemetry probe'])"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    stores = list(tmp_path.rglob("onnxruntime.db"))
    events = 0
    for db in stores:
        con = sqlite3.connect(db)
        try:
            events += con.execute("select count(*) from events").fetchone()[0]
        except sqlite3.Error:
            pass
        con.close()
    assert events == 0 and not list(tmp_path.rglob("deviceid")), [str(p) for p in tmp_path.rglob("*")]


# -- 14. FFmpeg's own log lines ---------------------------------------------------------------------

def test_truncated_video_fails_in_one_line_without_ffmpeg_noise(tmp_path):
    import av

    from sleuth.samples.video import make_text_clip, truncate_copy

    make_text_clip(tmp_path / "clip.mp4", duration=6.0)
    # moov first (as streaming sites serve it), then cut: FFmpeg then logs "partial file"
    with av.open(str(tmp_path / "clip.mp4")) as inp, av.open(str(tmp_path / "fast.mp4"), "w", options={"movflags": "faststart"}) as out:
        s = inp.streams.video[0]
        o = out.add_stream_from_template(s)
        for pkt in inp.demux(s):
            if pkt.dts is not None:
                pkt.stream = o
                out.mux(pkt)
    src = tmp_path / "fast.mp4"
    (tmp_path / "docs").mkdir()
    cut = truncate_copy(src, tmp_path / "docs" / "cut.mp4", int(src.stat().st_size * 0.6))
    res = subprocess.run([sys.executable, "-m", "sleuth.cli", "index", str(cut), "-L", str(tmp_path / "lib"), "--asr", "off"],
                         capture_output=True, text=True, timeout=300, env=ENV)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "[mov,mp4" not in res.stderr and "partial file" not in res.stderr, res.stderr
    errs = [l for l in res.stderr.splitlines() if l.startswith("error:")]
    assert len(errs) == 1 and "cut.mp4" in errs[0]


# -- 16. page-count sanity ---------------------------------------------------------------------------

def test_declared_page_count_is_checked_and_warnings_are_shown(tmp_path):
    import json
    import re

    import pypdfium2 as pdfium

    d = pdfium.PdfDocument.new()
    d.new_page(612, 792)
    d.save(str(tmp_path / "one.pdf"))
    d.close()
    data = (tmp_path / "one.pdf").read_bytes()
    assert re.search(rb"/Count 1\b", data)
    (tmp_path / "docs").mkdir()
    p = tmp_path / "docs" / "fake.pdf"
    p.write_bytes(re.sub(rb"/Count 1\b", b"/Count 100000", data, count=1))
    res = subprocess.run([sys.executable, "-m", "sleuth.cli", "index", str(p), "-L", str(tmp_path / "lib"), "--json"],
                         capture_output=True, text=True, timeout=300, env=ENV)
    rep = json.loads(res.stdout)
    f = rep["files"][0]
    if f["status"] == "failed":  # a blank page has nothing to index; the count must still be true
        assert "100000" not in f["reason"] or "exist" in f["reason"], f
    else:
        assert f["pages"] == 1, f
        assert any("declares 100000 pages, only 1 exist" in w for w in f["warnings"]), f
        assert len(f["warnings"]) <= 21
    res = subprocess.run([sys.executable, "-m", "sleuth.cli", "index", str(p), "-L", str(tmp_path / "lib2")],
                         capture_output=True, text=True, timeout=300, env=ENV)
    assert "Traceback" not in res.stderr
    if f["status"] != "failed":
        assert "warning: fake.pdf: declares 100000 pages" in res.stderr, res.stderr


# -- 18. the test command installs what the tests need ------------------------------------------------

def test_system_deps_installs_espeak_only_when_missing(tmp_path):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "apt.log"
    (bin_ / "apt-get").write_text(f"#!/bin/sh\necho \"$*\" >> '{log}'\n")
    (bin_ / "apt-get").chmod(0o755)
    for tool in ("id", "env", "sh"):
        os.symlink(shutil.which(tool), bin_ / tool)
    if os.geteuid() != 0:
        (bin_ / "sudo").write_text("#!/bin/sh\n[ \"$1\" = -n ] && shift\nexec \"$@\"\n")
        (bin_ / "sudo").chmod(0o755)
    env = {"PATH": str(bin_), "HOME": str(tmp_path)}
    bash = shutil.which("bash")
    res = subprocess.run([bash, str(REPO / "scripts" / "system_deps.sh")], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    calls = log.read_text().splitlines()
    assert calls[-1].split()[:2] == ["install", "-y"] and {"espeak-ng", "flite"} <= set(calls[-1].split())
    log.unlink()
    for tool in ("espeak-ng", "flite"):
        (bin_ / tool).write_text("#!/bin/sh\n")
        (bin_ / tool).chmod(0o755)
    res = subprocess.run([bash, str(REPO / "scripts" / "system_deps.sh")], capture_output=True, text=True, env=env)
    assert res.returncode == 0 and not log.exists()
    assert "system_deps.sh" in (REPO / "scripts" / "make_env.sh").read_text()


# -- 2. the NER model loads without torch ----------------------------------------------------------

def test_ner_loads_without_torch_and_finds_the_same_entities():
    text = "The World Health Organization met in Geneva with Maria Lopez of the RSPB and Acme Corp."
    ours = ("import sys, json, resource; from sleuth.readers.doc_entities import ner_mentions;"
            f"m = ner_mentions([{text!r}]); assert 'torch' not in sys.modules, 'torch imported';"
            "assert not {'requests', 'weasel', 'spacy.cli'} & set(sys.modules), 'spaCy command line imported';"
            "print(json.dumps(m))")
    ref = ("import sys, json, spacy; import sleuth.readers.doc_entities as d;"
           "d._import_spacy_without_torch = lambda: spacy;"  # the plain import, torch and all
           f"m = d.ner_mentions([{text!r}]); assert 'torch' in sys.modules; print(json.dumps(m))")
    a = subprocess.run([sys.executable, "-c", ours], capture_output=True, text=True, timeout=300, env=ENV)
    b = subprocess.run([sys.executable, "-c", ref], capture_output=True, text=True, timeout=300, env=ENV)
    assert a.returncode == 0 and b.returncode == 0, a.stderr[-1500:] + b.stderr[-1500:]
    assert a.stdout == b.stdout and "Geneva" in a.stdout
