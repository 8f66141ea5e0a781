"""The PDF reader on the failure classes seen in real-world PDFs: generated fixtures that reproduce
each class, and real PDFs from ../shared (skipped where the data is absent)."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest

from fakes.pdf_pages import pdf_pages as _pages

pytest.importorskip("reportlab")

from sleuth.readers import pdf_extract as px
from sleuth.readers.ocr_words import split_run_together, split_token
from sleuth.readers.pdf import read_pdf

SENTENCE = "Membership fees increased nine percent in the second quarter of the year"
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
DEV = "mmlongbench_doc_dev/documents"


def norm(s: str) -> str:
    return " ".join(s.split())


def paragraphs(tree) -> list:
    return [n for n in tree.root.walk() if n.kind == "paragraph"]


def _vera():
    import reportlab
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    pdfmetrics.registerFont(TTFont("Vera", os.path.join(os.path.dirname(reportlab.__file__), "fonts", "Vera.ttf")))
    return "Vera"


# ----------------------------------------------------------------------------- glyph by glyph


def make_letter_spaced_pdf(path: Path, spacing_em: float) -> Path:
    """Each glyph its own text object, ``spacing_em`` of extra letter spacing, as some 10-K
    typesetters write them."""
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen import canvas

    size = 9.0
    c = canvas.Canvas(str(path), invariant=1)
    y = 740.0
    for _ in range(6):
        x = 72.0
        for ch in SENTENCE + ".":
            if ch != " ":
                c.setFont("Helvetica", size)
                c.drawString(x, y, ch)
            x += stringWidth(ch, "Helvetica", size) + spacing_em * size
        y -= 1.5 * size
    c.save()
    return path


@pytest.mark.parametrize("spacing_em", [0.0, 0.15, 0.25])
def test_glyph_by_glyph_letter_spaced_text_reads_as_words(tmp_path, spacing_em):
    tree = read_pdf(make_letter_spaced_pdf(tmp_path / "spaced.pdf", spacing_em))
    text = norm(tree.text)
    assert text.count(SENTENCE) == 6, text[:300]
    assert not tree.root.meta.get("garbled_pages")
    assert tree.root.meta["ocr_pages"] == []


def test_fast_spans_match_reference_on_glyph_by_glyph_pages(tmp_path):
    """The one-pass object text of glyph-per-object pages equals PDFium's per-object text."""
    pdf = px.open_pdf(make_letter_spaced_pdf(tmp_path / "spaced.pdf", 0.15))
    try:
        fast = px.page_data(pdf, 0).spans
        ref = px.page_spans_reference(pdf, 0)
        assert len(fast) == len(ref) > 200
        for a, b in zip(fast, ref):
            assert norm(a.text) == norm(b.text)
            assert (a.char0, a.char1, a.gap) == (b.char0, b.char1, b.gap)
    finally:
        pdf.close()


# ----------------------------------------------------------------------------- no Unicode map


def make_unmapped_font_pdf(path: Path) -> Path:
    """Text whose font maps its letters to control characters (a custom-encoded font without a
    usable ToUnicode map): the page shows English, the text layer holds junk."""
    from reportlab.pdfgen import canvas

    font = _vera()
    c = canvas.Canvas(str(path), invariant=1, pageCompression=0)
    c.setFont(font, 14)
    y = 740
    for _ in range(12):
        c.drawString(72, y, SENTENCE + ".")
        y -= 24
    c.save()
    data = path.read_bytes()

    def to_control(m: re.Match) -> bytes:
        code = int(m.group(2), 16)
        if chr(code).isalpha():
            return m.group(1) + b"<%04X>" % (1 + code % 30)
        return m.group(0)

    start = data.index(b"begincmap")
    end = data.index(b"endcmap", start)
    cmap = re.sub(rb"(<[0-9A-F]{2}> )<([0-9A-F]{4})>", to_control, data[start:end])
    assert len(cmap) == end - start
    path.write_bytes(data[:start] + cmap + data[end:])
    return path


def test_font_without_unicode_map_is_ocred_and_says_why(tmp_path):
    path = make_unmapped_font_pdf(tmp_path / "unmapped.pdf")
    pdf = px.open_pdf(path)
    try:
        assert CONTROL.search(px.page_data(pdf, 0).spans[0].text)  # the fixture does garble the layer
    finally:
        pdf.close()
    tree = read_pdf(path)
    assert "1" in tree.root.meta["garbled_pages"]
    assert tree.root.meta["ocr_pages"] == [1]
    paras = paragraphs(tree)
    assert paras and all(p.meta.get("ocr_reason", "").startswith("text layer garbled") for p in paras)
    words = norm(tree.text).lower()
    assert difflib.SequenceMatcher(None, words[: len(SENTENCE)], SENTENCE.lower()).ratio() > 0.85, words[:200]
    for n in tree.root.walk():
        assert not CONTROL.search(n.text) and not CONTROL.search(n.title)


def test_garbled_layer_without_ocr_keeps_no_control_characters(tmp_path):
    tree = read_pdf(make_unmapped_font_pdf(tmp_path / "unmapped.pdf"), ocr="off")
    assert tree.root.meta["garbled_pages"]
    assert any("not OCR'd" in w for w in tree.warnings)
    assert not CONTROL.search(tree.text)


# ----------------------------------------------------------------------------- OCR words


@pytest.mark.parametrize(
    "glued, words",
    [
        ("ofspecifiedunlawful", "of specified unlawful"),
        ("Mobileusers", "Mobile users"),
        ("SMARTPHONEPENETRATION", "SMARTPHONE PENETRATION"),
        ("andthe", "and the"),
        ("connectivitytomajorhighwaysNewHavenisonitsway", "connectivity to major highways New Haven is on its way"),
        ("SlippingFREE", "Slipping FREE"),
    ],
)
def test_run_together_ocr_tokens_are_split(glued, words):
    assert split_token(glued) == words


@pytest.mark.parametrize(
    "word", ["telecommunications", "accountability", "iPhone", "LinkedIn", "WhatsApp", "YouTube", "ecommerce", "Thankyou"]
)
def test_words_names_and_misreadings_stay_whole(word):
    assert split_token(word) == word


def test_split_keeps_the_rest_of_the_line():
    line = "2,000 times. Internetusers grew 35% in 2014 (source: APJII)"
    assert split_run_together(line) == "2,000 times. Internet users grew 35% in 2014 (source: APJII)"


def test_english_ocr_page_with_a_number_only_line(tmp_path):
    """A scanned slide: a big figure line ("2,000 times.") over body text. It is no heading, and
    the sentence it belongs to is not cut off from it."""
    from sleuth import samples

    lines = ["Video calls grew", "2,000 times.", "Most of the growth came from mobile users", "in the second half of the year."]
    gt = samples.make_scanned_pdf(tmp_path / "slide.pdf", lines, font_pt=20.0)
    tree = read_pdf(gt["path"])
    assert tree.root.meta["ocr_pages"] == [1]
    titles = [n.title for n in tree.root.walk() if n.kind == "section"]
    assert not any("2,000" in t for t in titles), titles
    assert "2,000 times" in tree.text
    assert any("2,000" in p.text and p.meta.get("ocr_reason") for p in paragraphs(tree))


def test_amount_line_in_a_text_layer_is_no_heading(tmp_path):
    from reportlab.pdfgen import canvas

    path = tmp_path / "amounts.pdf"
    c = canvas.Canvas(str(path), invariant=1)
    c.setFont("Helvetica-Bold", 18)
    c.drawString(72, 740, "Results")
    body = "The service answered more questions this year than in any year before it, across all regions."
    c.setFont("Helvetica", 10)
    c.drawString(72, 715, body)
    c.setFont("Helvetica-Bold", 18)
    c.drawString(72, 680, "$4.2 billion in revenue.")
    c.setFont("Helvetica", 10)
    c.drawString(72, 655, body)
    c.setFont("Helvetica-Bold", 18)
    c.drawString(72, 620, "Outlook")
    c.setFont("Helvetica", 10)
    c.drawString(72, 595, body)
    c.save()
    tree = read_pdf(path)
    titles = [n.title for n in tree.root.walk() if n.kind == "section"]
    assert "Results" in titles and "Outlook" in titles
    assert not any("billion" in t for t in titles)


# ----------------------------------------------------------------------------- tables


def test_table_rows_are_child_nodes_with_header_and_caption(tmp_path):
    from sleuth import samples

    gt = samples.make_report_pdf(tmp_path / "rep.pdf", outline=False)
    tree = read_pdf(gt["path"])
    want = gt["table"]
    table = next(n for n in tree.root.walk() if n.kind == "table")
    rows = [c for c in table.children if c.kind == "row"]
    header = want["rows"][0]
    assert table.meta["header"] == header
    assert len(rows) == len(want["rows"]) - 1
    for row, cells in zip(rows, want["rows"][1:]):
        assert row.title == table.title == norm(want["caption"])
        assert row.meta["cells"] == cells
        # the row is quoted as printed, inside the table's text
        assert tree.text[row.char_start : row.char_end] == " | ".join(cells)
        assert table.char_start <= row.char_start < row.char_end <= table.char_end
        # its text names each cell by its column
        for h, c in zip(header, cells):
            assert f"{h}: {c}" in row.text
        assert row.page == table.page
        tb = table.bbox
        assert tb[0] - 1 <= row.bbox[0] <= row.bbox[2] <= tb[2] + 1 and tb[1] - 1 <= row.bbox[1] <= row.bbox[3] <= tb[3] + 1
    # rows sit one under the other
    tops = [r.bbox[1] for r in rows]
    assert tops == sorted(tops) and len(set(tops)) == len(tops)


def test_table_row_is_a_separate_citable_hit_and_the_table_reads_whole(tmp_path):
    from sleuth import samples
    from sleuth.library import Library

    gt = samples.make_report_pdf(tmp_path / "rep.pdf", outline=False)
    lib = Library(tmp_path / "lib")
    try:
        rep = lib.add([gt["path"]])
        assert rep.results[0].status == "added", rep.results[0].reason
        cells = gt["table"]["rows"][2]
        hits = lib.search(" ".join(cells), level="row", k=3)
        assert hits and hits[0]["kind"] == "row"
        top = lib.get_node(hits[0]["id"])
        assert top["meta"]["cells"] == cells
        loc = hits[0]["locator"]
        assert loc["page"] == gt["table"]["page"] and loc["bbox"] and loc["char_start"] is not None
        assert f"p.{loc['page']}" in hits[0]["label"]
        # reading the table gives the table once, not the table and then its rows again
        read = lib.read(top["parent_id"], max_tokens=5000)
        assert [i["kind"] for i in read["items"]] == ["table"]
        assert " | ".join(cells) in read["items"][0]["text"]
        # reading the section around it gives the table whole and no row on its own
        sec = lib.get_node(top["parent_id"])["parent_id"]
        kinds = [i["kind"] for i in lib.read(sec, max_tokens=100000)["items"]]
        assert "table" in kinds and "row" not in kinds
    finally:
        lib.close()


# ----------------------------------------------------------------------------- real PDFs


def _dev(shared_data: Path, name: str) -> Path:
    p = shared_data / DEV / name
    if not p.exists():
        pytest.skip(f"{p} is not present")
    return p


def test_real_10k_drawn_glyph_by_glyph(shared_data, tmp_path):
    path = _pages(_dev(shared_data, "3M_2018_10K.pdf"), [31], tmp_path / "3m.pdf")
    tree = read_pdf(path)
    text = norm(tree.text)
    assert ("Interest expense increased during 2018 and 2017 due to higher average debt balances and higher U.S. "
            "borrowing costs.") in text
    assert "Interest income increased year-on-year in both 2018 and 2017 due to higher average interest rates." in text
    assert not tree.root.meta.get("garbled_pages") and tree.root.meta["ocr_pages"] == []


def test_real_10k_plain_text_layer(shared_data, tmp_path):
    path = _pages(_dev(shared_data, "AMAZON_2017_10K.pdf"), [3], tmp_path / "amzn.pdf")
    text = norm(read_pdf(path).text)
    assert "Amazon.com opened its virtual doors on the World Wide Web in July 1995." in text
    assert "We seek to be Earth’s most customer-centric company." in text


def test_real_city_map_labels_read_whole(shared_data, tmp_path):
    """A travel guide's street maps: tightly set rotated street names keep their word spaces, and
    the park fill pattern (a lattice of "0" glyphs in a font of its own) does not break up the
    labels it lies under."""
    path = _pages(_dev(shared_data, "san-francisco-11-contents.pdf"), [20, 22], tmp_path / "maps.pdf")
    tree = read_pdf(path)
    p1 = {norm(n.text) for n in tree.root.walk() if n.page == 1}
    p2 = {norm(n.text) for n in tree.root.walk() if n.page == 2}
    assert {"Utah St", "Bryant St", "Hampshire St", "Florida St"} <= p2, sorted(p2)
    text1 = " ".join(p1)
    assert "Maritime" in text1 and "Golden Gateway" in text1, text1[:800]
    assert "00000" not in text1


def test_real_scan_under_a_text_stamp_is_ocred(shared_data, tmp_path):
    path = _pages(_dev(shared_data, "3276a5b991c49cf5f9a4af0f7d6fce67.pdf"), [3], tmp_path / "filing.pdf")
    tree = read_pdf(path)
    assert tree.root.meta["ocr_pages"] == [1]
    text = norm(tree.text)
    assert "United States Code, Section 1341 makes it a federal offense" in text, text[:500]
    assert any(p.meta.get("ocr_reason", "").startswith("text layer covers") for p in paragraphs(tree))


def test_real_paper_table_rows(shared_data):
    tree = read_pdf(_dev(shared_data, "2310.05634v2.pdf"))
    rows = [n for n in tree.root.walk() if n.kind == "row"]
    rel = [r for r in rows if r.meta["cells"][0].startswith("Relevance")]
    assert len(rel) == 1
    r = rel[0]
    assert r.title.startswith("Table 2: Human Evaluation")
    assert "0.73" in r.text and "0.84" in r.text and r.text.startswith("Metric (full score): Relevance")
    assert tree.text[r.char_start : r.char_end] == " | ".join(r.meta["cells"])
    for n in tree.root.walk():
        assert not CONTROL.search(n.text)


@pytest.mark.slow
def test_real_image_only_deck_reads_english_words(shared_data, tmp_path):
    """An exported slide deck without a text layer: OCR'd, and few tokens run words together."""
    wordsegment = pytest.importorskip("wordsegment")

    path = _pages(_dev(shared_data, "ecommerceopportunityindia-141124010546-conversion-gate01_95.pdf"),
                  [2, 3, 4, 5, 6], tmp_path / "deck.pdf")
    tree = read_pdf(path)
    assert tree.root.meta["ocr_pages"] == [1, 2, 3, 4, 5]
    toks = [t for t in re.findall(r"[A-Za-z]+", tree.text) if len(t) >= 2]
    assert len(toks) > 50
    # judged with wordsegment's lexicon (not the one the reader splits with), as bench_reader does
    wordsegment.load()
    common = {w for w, _ in sorted(wordsegment.UNIGRAMS.items(), key=lambda kv: -kv[1])[:60_000]}

    top = {w for w, _ in sorted(wordsegment.UNIGRAMS.items(), key=lambda kv: -kv[1])[:1000]}

    def run_together(tok: str) -> bool:
        w = tok.lower()
        if len(w) < 5 or w in common:
            return False
        parts = wordsegment.segment(w)
        return (len(parts) >= 2 and all(p in common for p in parts) and any(len(p) >= 4 for p in parts)
                and all(len(p) >= 3 or (p in top and (len(p) == 2 or p in ("a", "i"))) for p in parts))

    glued = [t for t in toks if run_together(t)]
    assert len(glued) <= 0.03 * len(toks), glued


@pytest.mark.slow
def test_real_paper_table_row_is_a_citable_search_hit(shared_data, tmp_path):
    from sleuth.library import Library

    lib = Library(tmp_path / "lib")
    try:
        rep = lib.add([_dev(shared_data, "2310.05634v2.pdf")])
        assert rep.results[0].status == "added", rep.results[0].reason
        # a hit of its own among the first few (ranking against the prose is search's business)
        hits = lib.search("Relevance 0.73 0.84", k=3)
        rows = [h for h in hits if h["kind"] == "row" and "Relevance" in h["snippet"] and "0.84" in h["snippet"]]
        assert rows, [(h["kind"], h["snippet"][:60]) for h in hits]
        top = rows[0]
        assert lib.search("Relevance 0.73 0.84", level="row", k=1)[0]["id"] == top["id"]
        assert top["locator"]["page"] == 3 and top["locator"]["bbox"]
        assert top["label"].startswith("2310.05634v2.pdf p.3")
        node = lib.get_node(top["id"])
        assert node["title"].startswith("Table 2")
        assert lib.get_node(node["parent_id"])["kind"] == "table"
    finally:
        lib.close()


def _letters_page(words: list[str], gap_em: float, word_gap_em: float = 0.3) -> px.PageData:
    """A page whose glyphs are spans of one letter each, ``gap_em`` apart inside words and
    ``gap_em + word_gap_em`` between words."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    from sleuth.readers.pdf_layout import Span

    spans, size, y = [], 10.0, 100.0
    text = []
    for line in range(8):
        x = 72.0
        for w in words:
            for ch in w:
                wd = stringWidth(ch, "Helvetica", size)
                spans.append(Span(ch, x, y, x + wd, y + size, y + 0.8 * size, size))
                x += wd + gap_em * size
                text.append(ch)
            x += word_gap_em * size
            text.append(" ")
        y += 14.0
    pd = px.PageData(0, 612.0, 792.0, 0, spans, [], len(text), 0)
    pd.quality = px.TextQuality(chars=len(spans), words=len(spans), single=len(spans))  # as PDFium saw it
    return pd


def test_garbled_layer_told_by_its_words():
    from sleuth.readers.pdf import garbled_reason

    words = "the survey team recorded flow velocities near the channel mouth".split()
    # letters as far apart as words: no spacing rule can join them, the page needs OCR
    assert garbled_reason(_letters_page(words, 0.3, 0.0)).startswith("text layer garbled")
    # the same glyphs with ordinary or wide letter spacing read as words
    assert garbled_reason(_letters_page(words, 0.02)) == ""
    assert garbled_reason(_letters_page(words, 0.3)) == ""
    # a feature table of S / O / P marks has many single letters, of few kinds: not garbled
    marks = ["LED", "headlights", "S", "O", "P", "S", "S", "O", "S", "P", "S", "S"]
    assert garbled_reason(_letters_page(marks, 0.02)) == ""


def test_glyphs_on_one_baseline_stay_one_line_after_a_smaller_label_opens_the_row():
    """On a map, a small number label a little above a street name can open the row; the name's
    x-height glyphs overlap that label's box too little, but they sit on the baseline, in the
    size, of the glyphs before them, so the word stays whole ("Shopping", not "Sh" + "opping")."""
    from sleuth.readers.pdf_layout import Span, build_lines

    spans = [Span("7", 411.7, 203.6, 414.7, 207.84, 207.845, 5.73)]
    x = 31.4
    for ch, top, bottom in (("S", 205.13, 210.09), ("h", 205.22, 210.01), ("o", 206.49, 210.07), ("p", 206.49, 211.29),
                            ("p", 206.49, 211.29), ("i", 205.25, 210.01), ("n", 206.49, 210.01), ("g", 206.49, 211.29)):
        spans.append(Span(ch, x, top, x + 3.4, bottom, 210.007, 6.47))
        x += 4.0
    texts = [ln.text for ln in build_lines(spans)]
    assert "Shopping" in texts, texts
