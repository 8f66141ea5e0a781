"""Hostile PDFs (issue #26, item 5): decompression bombs that slipped past the guard (a content
stream that claims to be an image, many streams on one page each under the per-stream cap, an
owner-password-encrypted bomb; Flate under an ASCII filter, LZW, run length, an image's layers
that PDFium decodes whole), a page tree that loops, and PDFium's warnings without a name.

The files are written by hand here: PDF writers do not make such files. Most tests lower the
guard's caps so that a bomb of a few MB stands for one of GBs; the one that runs ``sleuth index``
uses the real caps and checks the reading process's peak memory.
"""

import hashlib
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from conftest import PEAK_MB

from sleuth.core import ReaderError

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1"}

TEXT = b"BT /F1 24 Tf 72 700 Td (The harbour wall was rebuilt with basalt blocks.) Tj ET\n"
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


# -- writing hostile PDFs ------------------------------------------------------------------------

def deflated_spaces(n: int, head: bytes = TEXT) -> bytes:
    """``head`` then spaces up to ``n`` bytes, deflated (~1,000:1): a valid content stream."""
    comp = zlib.compressobj(9)
    fill = b" " * (1 << 24)
    parts, left = [comp.compress(head)], n - len(head)
    while left > 0:
        parts.append(comp.compress(fill[: min(left, len(fill))]))
        left -= len(fill)
    parts.append(comp.flush())
    return b"".join(parts)


def stream(data: bytes, extra: bytes = b"", flate: bool = True) -> bytes:
    filt = b"/Filter /FlateDecode " if flate else b""
    return b"<< %s%s/Length %d >>\nstream\n" % (filt, extra, len(data)) + data + b"\nendstream"


def write_pdf(path: Path, objs: list[bytes], trailer: bytes = b"", key: bytes | None = None) -> Path:
    """Objects 1.. in order, a classic xref and a trailer; with ``key``, every stream's data
    RC4-encrypted with its object key (the trailer then names the /Encrypt dictionary)."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        if key is not None and b"\nstream\n" in body:
            head, rest = body.split(b"\nstream\n", 1)
            data = rest[: -len(b"\nendstream")]
            body = head + b"\nstream\n" + _rc4(_object_key(key, i), data) + b"\nendstream"
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, trailer, xref)
    path.write_bytes(bytes(out))
    return path


def one_page_pdf(path: Path, contents: list[bytes], *, others: list[bytes] = (), resources: bytes = b"", key=None,
                 trailer=b"") -> Path:
    """One page whose /Contents are ``contents`` (stream objects 5..), with Helvetica as /F1 and
    ``resources`` in its /Resources; ``others`` are the objects after the contents."""
    n = len(contents)
    refs = b" ".join(b"%d 0 R" % (5 + i) for i in range(n))
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents [%s] "
            b"/Resources << /Font << /F1 4 0 R >> %s>> >>" % (refs, resources), FONT, *contents, *others]
    return write_pdf(path, objs, trailer=trailer, key=key)


# The standard security handler, revision 3 (RC4, 128-bit key), as ISO 32000-1 7.6.3 gives it.
_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) & 255
        s[i], s[j] = s[j], s[i]
    out = bytearray(len(data))
    i = j = 0
    for n, b in enumerate(data):
        i = (i + 1) & 255
        j = (j + s[i]) & 255
        s[i], s[j] = s[j], s[i]
        out[n] = b ^ s[(s[i] + s[j]) & 255]
    return bytes(out)


def _object_key(key: bytes, num: int, gen: int = 0) -> bytes:
    return hashlib.md5(key + num.to_bytes(3, "little") + gen.to_bytes(2, "little")).digest()[: min(len(key) + 5, 16)]


def owner_encryption(owner: bytes = b"owner secret", file_id: bytes = b"0123456789abcdef"):
    """(file key, /Encrypt dictionary, trailer entries) for an empty user password: anyone may
    open the file, its streams are ciphertext on disk."""
    o_key = hashlib.md5(owner + _PAD[: 32 - len(owner)]).digest()
    for _ in range(50):
        o_key = hashlib.md5(o_key).digest()
    o = _rc4(o_key, _PAD)
    for i in range(1, 20):
        o = _rc4(bytes(b ^ i for b in o_key), o)
    p = (-3904).to_bytes(4, "little", signed=True)  # print and copy allowed, changes not
    key = hashlib.md5(_PAD + o + p + file_id).digest()
    for _ in range(50):
        key = hashlib.md5(key).digest()
    u = _rc4(key, hashlib.md5(_PAD + file_id).digest())
    for i in range(1, 20):
        u = _rc4(bytes(b ^ i for b in key), u)
    u += b"\0" * 16
    enc = b"<< /Filter /Standard /V 2 /R 3 /Length 128 /O <%s> /U <%s> /P -3904 >>" % (o.hex().encode(), u.hex().encode())
    return key, enc, b"/ID [<%s> <%s>] " % (file_id.hex().encode(), file_id.hex().encode())


def encrypted_pdf(path: Path, contents: list[bytes]) -> Path:
    key, enc, ids = owner_encryption()
    return one_page_pdf(path, contents, others=[enc], key=key, trailer=ids + b"/Encrypt %d 0 R " % (5 + len(contents)))


def pages_pdf(path: Path, kids: bytes, count: int, extra_objs: list[bytes] = (), catalog: bytes = b"") -> Path:
    """Pages node 2 with ``kids``, leaf page 3 drawing "harbour" with stream 5, font 4; then
    ``extra_objs`` from object 6 on (more pages, nodes)."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R %s>>" % catalog, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R /Resources << /Font << /F1 4 0 R >> >> >>",
            FONT, stream(zlib.compress(TEXT)), *extra_objs]
    return write_pdf(path, objs)


@pytest.fixture
def small_caps(monkeypatch):
    """The guard's caps scaled down 32x (8 MB a stream and a page, 32 MB a file): a bomb of a few
    MB stands for one of GBs, and no test inflates much."""
    from sleuth.readers import pdf_guard

    monkeypatch.setattr(pdf_guard, "MAX_STREAM_BYTES", 8 << 20)
    monkeypatch.setattr(pdf_guard, "MAX_PAGE_BYTES", 8 << 20, raising=False)
    monkeypatch.setattr(pdf_guard, "MAX_FILE_BYTES", 32 << 20, raising=False)
    return pdf_guard


def refused(path: Path, *words: str) -> str:
    from sleuth.readers import read_path

    with pytest.raises(ReaderError) as e:
        read_path(path, ocr="off")
    msg = str(e.value)
    assert msg.startswith(path.name + ": ") and "\n" not in msg, msg
    assert "decompression bomb" in msg and all(w in msg for w in words), msg
    return msg


def read(path: Path):
    from sleuth.readers import read_path

    return read_path(path, ocr="off")


IMAGE_CLAIM = b"/Type /XObject /Subtype /Image /Width 4000 /Height 4000 /ColorSpace /DeviceGray /BitsPerComponent 8 "


# -- 1a. a content stream that says it is an image -----------------------------------------------

def test_content_stream_that_claims_to_be_an_image_is_measured(tmp_path, small_caps):
    """The guard left out every stream whose dictionary said /Subtype /Image; PDFium parses
    a page's /Contents whatever they say (a 1.5 GB one took 2.6 GB to index)."""
    bomb = deflated_spaces(12 << 20)
    p = one_page_pdf(tmp_path / "claim.pdf", [stream(bomb, IMAGE_CLAIM)])
    with pytest.raises(ReaderError, match="claim.pdf: a compressed stream at byte"):
        small_caps.check_pdf_streams(p, limit=8 << 20)
    refused(p, "inflates to more than 8 MB")
    # drawn as an image too: still the page's contents
    refused(one_page_pdf(tmp_path / "both.pdf", [stream(bomb, IMAGE_CLAIM)],
                         resources=b"/XObject << /Im1 5 0 R >> "), "more than 8 MB")
    # named as a tiling pattern as well: PDFium parses a pattern's stream as content
    tiling = IMAGE_CLAIM + b"/PatternType 1 /PaintType 1 /TilingType 1 /BBox [0 0 10 10] /XStep 10 /YStep 10 "
    objs = [stream(zlib.compress(TEXT + b"/Pattern cs /P1 scn 0 0 100 100 re f\n")), stream(bomb, tiling)]
    refused(one_page_pdf(tmp_path / "pattern.pdf", objs[:1], others=objs[1:],
                         resources=b"/Pattern << /P1 6 0 R >> "), "more than 8 MB")


def test_an_image_used_as_an_image_is_still_left_out(tmp_path, small_caps):
    """PDFium decodes an image a row at a time: one drawn with Do is not measured, however large
    (tests/test_memory.py has the 2 GB one)."""
    img = stream(deflated_spaces(12 << 20, head=b""), IMAGE_CLAIM)
    content = stream(zlib.compress(b"q 500 0 0 500 50 150 cm /Im1 Do Q\n" + TEXT))
    p = one_page_pdf(tmp_path / "photo.pdf", [content], others=[img], resources=b"/XObject << /Im1 6 0 R >> ")
    small_caps.check_pdf_streams(p)
    indirect = one_page_pdf(tmp_path / "photo2.pdf", [content], others=[img, b"<< /Im1 6 0 R >>"],
                            resources=b"/XObject 7 0 R ")
    small_caps.check_pdf_streams(indirect)
    assert "harbour" in read(p).text


# -- 1b. many streams on one page, many pages ----------------------------------------------------

def test_content_streams_of_one_page_are_capped_together(tmp_path, small_caps):
    """Eight streams each under the per-stream cap, on one page: PDFium joins them (eight of
    200 MB took 3.4 GB)."""
    five = stream(deflated_spaces(5 << 20))
    refused(one_page_pdf(tmp_path / "two.pdf", [five, five]), "content streams of one page (object 3)",
            "more than 8 MB together")
    # one stream, listed twice in the page's /Contents
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 6 0 R /Resources << /Font << /F1 4 0 R >> >> >>",
            FONT, five, b"[5 0 R 5 0 R]"]
    refused(write_pdf(tmp_path / "twice.pdf", objs), "content streams of one page", "together")


def test_streams_of_a_file_are_capped_in_all(tmp_path, small_caps):
    """Seven pages of 5 MB each: every page under its cap, the file over its 32 MB."""
    n = 7
    kids = b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(n))
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n)]
    for i in range(n):
        objs += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R >>" % (4 + 2 * i),
                 stream(deflated_spaces(5 << 20))]
    refused(write_pdf(tmp_path / "pages.pdf", objs), "inflate to more than 32 MB in all")
    small_caps.check_pdf_streams(write_pdf(tmp_path / "fewer.pdf", objs[:2 + 2 * 5]))  # 25 MB: read


# -- 1c. encrypted -------------------------------------------------------------------------------

def test_encrypted_bomb_is_measured_decrypted(tmp_path, small_caps):
    """An owner password only (anyone can open it): the guard saw ciphertext and let a 1.5 GB
    content stream through (2.6 GB to index)."""
    p = encrypted_pdf(tmp_path / "locked.pdf", [stream(deflated_spaces(12 << 20))])
    raw = p.read_bytes()
    assert b"/Encrypt" in raw and not small_caps._zlib_header(raw.split(b"stream\n", 1)[1][:2])  # ciphertext
    refused(p, "(object 5, decrypted) inflates to more than 8 MB")
    small = encrypted_pdf(tmp_path / "small.pdf", [stream(zlib.compress(TEXT))])
    assert b"harbour" not in small.read_bytes()
    assert "harbour wall" in read(small).text


# -- 2. a page tree that loops -------------------------------------------------------------------

def test_a_looping_page_tree_reads_each_page_once(tmp_path):
    """Node 2's kids are page 3 and node 6, whose kid is node 2 again: PDFium lists page 3
    512 times (it stops 1,024 levels down) and the reader read it 512 times."""
    p = pages_pdf(tmp_path / "loop.pdf", b"3 0 R 6 0 R", 600,
                  [b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>"])
    tree = read(p)
    assert tree.text.count("harbour wall") == 1 and tree.root.meta["pages"] == 1
    assert any(w.startswith("loop.pdf: its page tree lists pages again") for w in tree.warnings), tree.warnings


def test_a_page_listed_twice_is_read_once_and_real_pages_all(tmp_path):
    other = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 7 0 R "
             b"/Resources << /Font << /F1 4 0 R >> >> >>")
    text2 = b"BT /F1 24 Tf 72 700 Td (Herons nest on the breakwater.) Tj ET\n"
    p = pages_pdf(tmp_path / "twice.pdf", b"3 0 R 6 0 R 3 0 R 3 0 R", 4, [other, stream(zlib.compress(text2))])
    tree = read(p)
    assert tree.text.count("harbour wall") == 1 and tree.text.count("Herons nest") == 1
    assert tree.root.meta["pages"] == 2
    plain = pages_pdf(tmp_path / "plain.pdf", b"3 0 R 6 0 R", 2, [other, stream(zlib.compress(text2))])
    tree = read(plain)
    assert tree.root.meta["pages"] == 2 and not tree.warnings and "Herons nest" in tree.text


# -- 3. PDFium's messages ------------------------------------------------------------------------

def test_pdfium_messages_name_the_file(tmp_path, capfd):
    """Two bookmarks that point at each other: pypdfium2 logged "A circular bookmark reference
    was detected" to stderr, in no file's name."""
    outline = [b"<< /Type /Outlines /First 7 0 R /Last 7 0 R /Count 2 >>",
               b"<< /Title (Intro) /Parent 6 0 R /Next 8 0 R /Dest [3 0 R /Fit] >>",
               b"<< /Title (Again) /Parent 6 0 R /Prev 7 0 R /Next 7 0 R /Dest [3 0 R /Fit] >>"]
    p = pages_pdf(tmp_path / "marks.pdf", b"3 0 R", 1, outline, catalog=b"/Outlines 6 0 R ")
    tree = read(p)
    assert "harbour wall" in tree.text
    assert any(w.startswith("marks.pdf: ") and "circular bookmark" in w for w in tree.warnings), tree.warnings
    assert "circular bookmark" not in capfd.readouterr().err


# -- through `sleuth index`, with the real caps --------------------------------------------------

_RUNNER = PEAK_MB + r"""
import atexit, json, resource, sys
def report():
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the reading process
    print("REPORT " + json.dumps({"peak_mb": _peak_mb(), "children_peak_mb": children}), file=sys.stderr)
atexit.register(report)
sys.argv = ["sleuth"] + sys.argv[1:]
from sleuth.cli import main
main()
"""




def test_index_refuses_each_bomb_in_one_line_and_indexes_the_rest(tmp_path, model_cache):
    """The three bypasses at a size the real caps refuse (300 MB each; before the fix they were
    indexed, the reading process near 600 MB), a looping page tree and a text file, in one run:
    one error line per bomb, naming it; the other two indexed; the reading process under 1 GB."""
    d = tmp_path / "docs"
    d.mkdir()
    bomb = deflated_spaces(300 << 20)
    one_page_pdf(d / "claim.pdf", [stream(bomb, IMAGE_CLAIM)])
    half = stream(deflated_spaces(150 << 20))
    one_page_pdf(d / "pair.pdf", [half, half])
    encrypted_pdf(d / "locked.pdf", [stream(bomb)])
    pages_pdf(d / "loop.pdf", b"3 0 R 6 0 R", 600, [b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>"])
    (d / "note.txt").write_text("Herons nest on the breakwater every spring.\n")
    env = {**ENV, "SLEUTH_CACHE": str(model_cache)}
    res = subprocess.run([sys.executable, "-c", _RUNNER, "index", str(d), "-L", str(tmp_path / "lib"), "--json"],
                         capture_output=True, text=True, timeout=600, env=env)
    rep = json.loads(res.stdout)
    report = json.loads(next(l for l in res.stderr.splitlines() if l.startswith("REPORT "))[7:])
    assert res.returncode == 1 and rep["counts"] == {"added": 2, "updated": 0, "skipped": 0, "failed": 3, "pruned": 0}, \
        res.stderr[-3000:]
    errs = sorted(l for l in res.stderr.splitlines() if l.startswith("error:"))
    assert len(errs) == 3, res.stderr[-3000:]
    for line, name in zip(errs, ["claim.pdf", "locked.pdf", "pair.pdf"]):
        assert name in line and "decompression bomb" in line, errs
    assert "decrypted" in errs[1] and "one page" in errs[2], errs
    assert report["children_peak_mb"] < 1024 and report["peak_mb"] < 1024, report


# -- 4. filters other than Flate, and Flate under them (no longer skipped) -----------------------

def a85(data: bytes) -> bytes:
    """ASCII85, 72 characters a line, ending "~>"."""
    import base64

    return base64.a85encode(data, wrapcol=72) + b"~>"


def ahx(data: bytes) -> bytes:
    """ASCIIHex, 64 digits a line, ending ">"."""
    h = data.hex().upper().encode()
    return b"\n".join(h[i : i + 64] for i in range(0, len(h), 64)) + b">"


def lzw_codes(data: bytes) -> list[int]:
    """LZW codes for ``data``, opening with a clear code; the table is cleared before it fills."""
    codes, table, nxt, w = [256], {}, 258, None
    for c in data:
        if w is None:
            w = c
        elif (w, c) in table:
            w = table[w, c]
        else:
            codes.append(w)
            if nxt < 4000:
                table[w, c], nxt = nxt, nxt + 1
            else:
                codes.append(256)
                table, nxt = {}, 258
            w = c
    return codes + ([w] if w is not None else [])


def lzw_pack(codes: list[int], early: int = 1) -> bytes:
    """The codes as bits, each as wide as the decoder's table says then (ISO 32000-1 7.4.4.2),
    then the end code."""
    out, acc, nbits, width, n, started = bytearray(), 0, 0, 9, 258, False
    for code in codes + [257]:
        acc, nbits = (acc << width) | code, nbits + width
        while nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 255)
        acc &= (1 << nbits) - 1
        if code == 256:
            width, n, started = 9, 258, False
        elif code != 257:
            if started and n < 4096:
                n += 1
                width = min(12, (n + early).bit_length())
            started = True
    if nbits:
        out.append((acc << (8 - nbits)) & 255)
    return bytes(out)


def lzw_spaces(n: int, head: bytes = TEXT, early: int = 1) -> bytes:
    """``head`` then at least ``n`` spaces, LZW-coded: runs of one byte squeeze ~1,300:1 (each code
    is one longer than the last, a table of 3,800 codes 7 MB)."""
    codes, made, run = lzw_codes(head), 0, []
    for k in range(3836):  # one table's worth: 32 ("one space"), then the codes for 2, 3, ... spaces
        run.append(32 if k == 0 else 257 + k)
    per_table = sum(range(1, 3837))
    while made < n:
        codes += [256] + run
        made += per_table
    return lzw_pack(codes, early)


def rl(data: bytes) -> bytes:
    """Run-length coded: runs of one byte as (257 - n, byte), the rest copied, then the end code."""
    out, i = bytearray(), 0
    while i < len(data):
        j = i
        while j < len(data) and j - i < 128 and data[j] == data[i]:
            j += 1
        if j - i > 1:
            out += bytes([257 - (j - i), data[i]])
        else:
            j = i + 1
            while j < len(data) and j - i < 128 and (j + 1 >= len(data) or data[j] != data[j + 1]):
                j += 1
            out += bytes([j - i - 1]) + data[i:j]
        i = j
    return bytes(out) + b"\x80"


def filtered(data: bytes, filters: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Filter %s %s/Length %d >>\nstream\n" % (filters, extra, len(data)) + data + b"\nendstream"


def test_flate_under_ascii85_is_measured(tmp_path, small_caps):
    """The guard looked for a zlib header at a stream's start, saw ASCII and skipped the stream:
    ASCII85(Flate(1.5 GB)) is a 2.5 MB file, and PDFium inflates the 1.5 GB whole."""
    bomb = a85(deflated_spaces(12 << 20))
    assert len(bomb) < 40_000
    for filters in (b"[/ASCII85Decode /FlateDecode]", b"[/A85 /Fl]", b"[/A#38#35 /Fl]"):
        refused(one_page_pdf(tmp_path / "a85.pdf", [filtered(bomb, filters)]), "at byte", "inflates to more than 8 MB")
    # encrypted, it is measured in the decrypted copy; a file that only says /Encrypt is measured as it is
    refused(encrypted_pdf(tmp_path / "locked.pdf", [filtered(bomb, b"[/A85 /Fl]")]), "(object 5, decrypted) inflates")
    refused(one_page_pdf(tmp_path / "says.pdf", [filtered(bomb, b"[/A85 /Fl]")], others=[b"<< /Note /Encrypt >>"]),
            "at byte", "inflates to more than 8 MB")
    small = one_page_pdf(tmp_path / "small.pdf", [filtered(a85(zlib.compress(TEXT)), b"[/A85 /Fl]")])
    assert "harbour wall" in read(small).text


def test_flate_under_asciihex_is_measured(tmp_path, small_caps):
    bomb = ahx(deflated_spaces(12 << 20))
    for filters in (b"[/ASCIIHexDecode /FlateDecode]", b"[/AHx /Fl]"):
        refused(one_page_pdf(tmp_path / "hex.pdf", [filtered(bomb, filters)]), "inflates to more than 8 MB")
    # the filters named by reference, and two layers of Flate under the hex digits
    twice = ahx(zlib.compress(deflated_spaces(12 << 20)))
    refused(one_page_pdf(tmp_path / "ref.pdf", [filtered(twice, b"6 0 R")], others=[b"[/AHx /Fl /Fl]"]),
            "inflates to more than 8 MB")
    small = one_page_pdf(tmp_path / "small.pdf", [filtered(ahx(zlib.compress(TEXT))[:-1], b"[/AHx /Fl]")])  # no ">"
    assert "harbour wall" in read(small).text


def test_lzw_bomb_is_measured(tmp_path, small_caps):
    """LZW was not read at all: 1,300:1 at worst, a 1.6 MB stream that PDFium decodes to 2 GB."""
    for early in (1, 0):
        bomb = lzw_spaces(12 << 20, early=early)
        assert len(bomb) < 12_000
        parms = b"" if early else b"/DecodeParms << /EarlyChange 0 >> "
        for filters, extra in ((b"/LZWDecode", parms), (b"[/LZW]", parms.replace(b"<<", b"[<<").replace(b">>", b">>]"))):
            refused(one_page_pdf(tmp_path / "lzw.pdf", [filtered(bomb, filters, extra)]), "inflates to more than 8 MB")
        assert small_caps.decoded_size(iter([bomb]), [("LZW", {b"EarlyChange": early})], 100 << 20) > 12 << 20
        # what PDFium reads of a small one, the guard reads too
        small = lzw_pack(lzw_codes(TEXT * 200), early)
        assert small_caps.decoded_size(iter([small]), [("LZW", {b"EarlyChange": early})], 1 << 20) == len(TEXT) * 200
        assert "harbour wall" in read(one_page_pdf(tmp_path / "small.pdf", [filtered(small, b"/LZW", parms)])).text
    # Flate under LZW
    refused(one_page_pdf(tmp_path / "both.pdf", [filtered(lzw_pack(lzw_codes(deflated_spaces(12 << 20))), b"[/LZW /Fl]")]),
            "inflates to more than 8 MB")


def rl_pages(path: Path, n: int, spaces: int) -> Path:
    """``n`` pages, each drawing "harbour" and ``spaces`` spaces in a run-length coded content stream."""
    font = 3 + 2 * n
    kids = b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(n))
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n)]
    for i in range(n):
        objs += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                 b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (4 + 2 * i, font),
                 filtered(rl(TEXT + b" " * spaces), b"/RunLengthDecode")]
    return write_pdf(path, objs + [FONT])


def test_run_length_is_counted(tmp_path, small_caps):
    """Run length makes at most 64 bytes of 2 (and PDFium refuses more than 20 MB a stream), but
    its bytes count in the file's total like any other's: seven pages of 5 MB pass 32 MB."""
    refused(rl_pages(tmp_path / "pages.pdf", 7, 5 << 20), "inflate to more than 32 MB in all")
    refused(one_page_pdf(tmp_path / "one.pdf", [filtered(rl(b" " * (12 << 20)), b"/RL")]), "inflates to more than 8 MB")
    tree = read(rl_pages(tmp_path / "fewer.pdf", 5, 5 << 20))  # 25 MB: read
    assert tree.text.count("harbour wall") == 5


def test_an_image_whose_filters_decode_whole_is_measured(tmp_path, small_caps):
    """PDFium decodes only an image's last Flate or run-length layer a row at a time: the layers
    before it, and an LZW image, it holds whole."""
    content = stream(zlib.compress(b"q 500 0 0 500 50 150 cm /Im1 Do Q\n" + TEXT))

    def photo(name: str, img: bytes) -> Path:
        return one_page_pdf(tmp_path / name, [content], others=[img], resources=b"/XObject << /Im1 6 0 R >> ")

    stored = zlib.compress(b"\0" * (12 << 20), 0)  # Flate data of 12 MB: its first layer
    refused(photo("twice.pdf", filtered(zlib.compress(stored, 9), b"[/Fl /Fl]", IMAGE_CLAIM)), "more than 8 MB")
    refused(photo("lzw.pdf", filtered(lzw_spaces(12 << 20, head=b""), b"/LZW", IMAGE_CLAIM)), "more than 8 MB")
    # the last layer Flate: left out as before, whatever is under it
    small_caps.check_pdf_streams(photo("a85.pdf", filtered(a85(deflated_spaces(12 << 20, head=b"")), b"[/A85 /Fl]",
                                                           IMAGE_CLAIM)))


def test_a_stream_with_many_filters_is_refused(tmp_path, small_caps):
    data = zlib.compress(TEXT)
    for _ in range(8):
        data = zlib.compress(data)
    refused(one_page_pdf(tmp_path / "nine.pdf", [filtered(data, b"[" + b"/Fl " * 9 + b"]")]), "9 filters")


def test_decoders_read_data_cut_anywhere(small_caps):
    """The guard decodes a piece at a time: groups, runs and codes cut between pieces read the same."""
    import random

    rnd = random.Random(7)
    text = TEXT * 30 + bytes(41) + b"\xff" * 300 + TEXT[:13]
    cases = [("A85", a85(text) + b"never read", text), ("A85", a85(text)[:-2], text),  # no "~>": up to the end
             ("AHx", ahx(text) + b"12", text), ("AHx", ahx(text[:-1])[:-1] + b"7", text[:-1] + b"\x70"),
             ("LZW", lzw_pack(lzw_codes(text)) + b"\xff", text), ("RL", rl(text) + b"\x05", text)]
    for f, data, want in cases:
        assert b"".join(small_caps._DECODERS[f](iter([data]), None)) == want, f
        for _ in range(40):
            cuts = sorted(rnd.sample(range(1, len(data)), rnd.randint(1, 30)))
            parts = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
            assert b"".join(small_caps._DECODERS[f](iter(parts), None)) == want, (f, cuts)
