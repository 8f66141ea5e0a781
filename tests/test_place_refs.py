"""Places a question names (index/place_refs.py) and how search puts them first (index/search.py)."""

from __future__ import annotations

import pytest
from conftest import write_text_pdf

from sleuth.index import search as SE
from sleuth.index.place_refs import caption_pattern, caption_refs, end_refs, page_refs


@pytest.mark.parametrize("text, pages", [
    ("In the cartoon in page 25, what does the hippo represent?", [25]),
    ("What is the color of Kailali in the map of Page 12?", [12]),
    ("Which group is second in Slide 4 in 2014?", [4]),
    ("What models of cars are introduced on pages 10 and 11?", [10, 11]),
    ("the numbers written on the page 15 and page 16", [15, 16]),
    ("How many distinct people are in the pictures in Pages 30-35?", [30, 31, 32, 33, 34, 35]),
    ("How many figures are there from Page 3 to Page 10?", [3, 4, 5, 6, 7, 8, 9, 10]),
    ("see p. 7 and pp. 9–10", [7, 9, 10]),
    ("slides 3, 5 and 8", [3, 5, 8]),
    # a span to count over, not a place to look
    ("How many figures are in Pages 100-120 of this paper?", []),
    # an answer format, not a reference
    ("List the pages, formatted as a list like ['Page 2', 'Page 4'].", []),
    ("How many pages does the report have? It has 12 chapters.", []),
    ("page 0", []),
])
def test_page_refs(text, pages):
    assert page_refs(text) == pages


@pytest.mark.parametrize("text, ends", [
    ("What color is the car on the cover?", ["first"]),
    ("How many websites are present on the cover page?", ["first"]),
    ("Who is named on the title slide, and what does the last page say?", ["first", "last"]),
    ("Is there a signature on the final page?", ["last"]),
    ("What is on the back cover?", ["last"]),
    ("Does the policy cover flood damage?", []),
    ("Who wrote the cover letter?", []),
])
def test_end_refs(text, ends):
    assert end_refs(text) == ends


@pytest.mark.parametrize("text, caps", [
    ("In figure 5, what is the color of the line?", [("figure", 5)]),
    ("Among figure 1-4, how many show a gash?", [("figure", 1), ("figure", 2), ("figure", 3), ("figure", 4)]),
    ("the papers listed in Table 1 and Table 2", [("table", 1), ("table", 2)]),
    ("see Fig. 3 and 4", [("figure", 3), ("figure", 4)]),
    ("How many figures are in this paper?", []),
])
def test_caption_refs(text, caps):
    assert caption_refs(text) == caps


@pytest.mark.parametrize("line, kind, number, opens", [
    ("Figure 5: The loss curves.", "figure", 5, True),
    ("Fig. 5. Loss", "figure", 5, True),
    ("FIGURE 5 Results per task", "figure", 5, True),
    ("Figure 51: Other", "figure", 5, False),
    ("Figure 5 shows that the loss falls.", "figure", 5, False),  # a mention, not the caption
    ("Table 5: Scores", "figure", 5, False),
    ("Table 2 | Strategies", "table", 2, True),
])
def test_caption_pattern(line, kind, number, opens):
    assert bool(caption_pattern(kind, number).match(line)) == opens


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    from sleuth.library import Library

    root = tmp_path_factory.mktemp("pagerefs")
    docs = root / "docs"
    docs.mkdir()
    zoo = [
        "The city zoo opened in 1911 and keeps four hundred animals from six continents.",
        "Feeding times: the sea lions eat at ten and at three, the penguins at noon.",
        "Figure 7. Visitors by month, drawn by our illustrator.",  # the cartoon: no word of the question
        "The hippo enclosure was rebuilt in 2019. A hippo weighs up to three tonnes and represents\n"
        "the largest animal of the river exhibit. Hippo calves are born under water.",
        "Tickets cost twelve euros for adults; children under six enter free of charge.\n\n\n"
        "Figure 2: Ticket prices by season.",
    ]
    write_text_pdf(docs / "zoo_report.pdf", zoo, size=11)
    write_text_pdf(docs / "harbour_guide.pdf", [
        "The harbour was dredged in 1988 to admit container ships of up to twelve metres draught.",
        "Ferries leave for the islands every hour from pier two.",
        "Figure 2. Tonnage handled per year, drawn by the port authority.",
        "A hippo statue stands at the harbour gate, a gift from a sister city.",
    ])
    with Library(root / "lib") as lib:
        lib.add([docs])
        yield lib


def _pages(hits):
    return [(h["source"], h["locator"].get("page")) for h in hits]


def test_a_named_page_leads_the_hits_within_a_document(lib, monkeypatch):
    q = "In the cartoon on page 3, what does the hippo represent?"
    hits = lib.search(q, level="fine", within="zoo_report.pdf", k=5)
    assert _pages(hits)[0] == ("zoo_report.pdf", 3)
    # the question's words alone lead to the hippo paragraph on page 4, not to the cartoon
    monkeypatch.setattr(SE, "PAGE_REF_W", 0.0)
    hits = lib.search(q, level="fine", within="zoo_report.pdf", k=5)
    assert ("zoo_report.pdf", 3) not in _pages(hits)[:1]


def test_pages_named_in_a_range_lead(lib):
    hits = lib.search("What is shown on pages 2-3?", level="fine", within="zoo_report.pdf", k=5)
    assert set(_pages(hits)[:2]) == {("zoo_report.pdf", 2), ("zoo_report.pdf", 3)}


def test_over_the_library_only_a_named_source_has_its_page_raised(lib, monkeypatch):
    named = "In the Zoo Report, what does the cartoon on page 3 show about the hippo?"
    assert _pages(lib.search(named, level="fine", k=5))[0] == ("zoo_report.pdf", 3)
    # no source named: every document has a page 3, so the ranking is the plain one
    unnamed = "What does the cartoon on page 3 show about the hippo?"
    with_refs = _pages(lib.search(unnamed, level="fine", k=5))
    monkeypatch.setattr(SE, "PAGE_REF_W", 0.0)
    assert _pages(lib.search(unnamed, level="fine", k=5)) == with_refs


def test_the_cover_and_the_last_page(lib, monkeypatch):
    q = "What is the hippo doing on the cover?"
    assert _pages(lib.search(q, level="fine", within="zoo_report.pdf", k=5))[0] == ("zoo_report.pdf", 1)
    q2 = "What does the last page say about the hippo?"
    assert _pages(lib.search(q2, level="fine", within="zoo_report.pdf", k=5))[0] == ("zoo_report.pdf", 5)
    monkeypatch.setattr(SE, "PAGE_REF_W", 0.0)  # the words alone lead to the hippo page
    assert _pages(lib.search(q, level="fine", within="zoo_report.pdf", k=5))[0] == ("zoo_report.pdf", 4)
    assert _pages(lib.search(q2, level="fine", within="zoo_report.pdf", k=5))[0] == ("zoo_report.pdf", 4)


def test_a_named_figure_is_found_by_its_caption(lib, monkeypatch):
    q = "In Figure 2, what do the animals eat at noon?"
    hits = lib.search(q, level="fine", within="zoo_report.pdf", k=5)
    assert hits[0]["snippet"].startswith("Figure 2") and _pages(hits)[0] == ("zoo_report.pdf", 5)
    # "Figure 7" on page 3 is another figure; with no caption "Figure 9" nothing is raised
    assert _pages(lib.search("In Figure 9, what do the animals eat at noon?", level="fine",
                             within="zoo_report.pdf", k=5))[0] == ("zoo_report.pdf", 2)
    monkeypatch.setattr(SE, "PAGE_REF_W", 0.0)
    assert _pages(lib.search(q, level="fine", within="zoo_report.pdf", k=5))[0] == ("zoo_report.pdf", 2)
