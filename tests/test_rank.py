"""Structure-aware ranking (index/rank.py): the numpy path against its plain reference, and what
page/section aggregation, routing and contentless suppression do to a ranking."""

import numpy as np
import pytest

from sleuth.index import rank as RK


def _table(n=60, seed=0):
    rng = np.random.default_rng(seed)
    page = rng.integers(-1, 6, n).astype(np.int32)
    source = rng.integers(1, 4, n).astype(np.int32)
    section = rng.integers(-1, 8, n).astype(np.int64)
    contentless = rng.random(n) < 0.15
    return RK.NodeTable(generation=0, page=page, source=source, section=section, last=np.minimum(np.arange(n) + rng.integers(0, 12, n), n - 1),
                        contentless=contentless, source_names={}, name_df={})


@pytest.mark.parametrize("seed", range(6))
def test_aggregate_matches_reference(seed, monkeypatch):
    rng = np.random.default_rng(100 + seed)
    t = _table(seed=seed)
    ids = rng.choice(70, 30, replace=False)  # some ids past the table (nodes added since it loaded)
    own = rng.random(30) / 30
    bm = np.where(rng.random(30) < 0.6, rng.random(30) * 12, 0.0)
    dn = np.where(rng.random(30) < 0.7, rng.random(30) * 2 - 1, -np.inf)
    route = {1: 1.0, 3: 0.4}
    coarse = (np.array([3, 10, 20, 90]), np.array([0.02, 0.01, 0.015, 0.03]))
    monkeypatch.setattr(RK, "COARSE_W", 0.8)
    fast = RK.aggregate(ids, own, bm, dn, t, dense_w=0.7, route=route, coarse=coarse)
    ref = RK.aggregate_reference(ids, own, bm, dn, t, dense_w=0.7, route=route, coarse=coarse)
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-15)


def test_partial_matches_on_one_page_add_up_and_contentless_sinks(monkeypatch):
    # nodes 0,1 share page 4 of source 1 (a table and its heading, each a partial match);
    # node 2 alone on page 7 matches a bit better than either; node 3 is a lone number
    t = RK.NodeTable(generation=0, page=np.array([4, 4, 7, 9], np.int32), source=np.array([1, 1, 1, 1], np.int32),
                     section=np.array([10, 10, 11, 12]), last=np.arange(4),
                     contentless=np.array([False, False, False, True]), source_names={}, name_df={})
    ids = np.arange(4)
    own = np.array([0.0110, 0.0090, 0.0112, 0.016])
    bm = np.array([3.0, 2.5, 4.0, 6.0])
    dn = np.array([0.36, 0.28, 0.35, 0.5])
    s = RK.aggregate(ids, own, bm, dn, t)
    assert s[2] > s[0]  # off by default: each node on its own score
    monkeypatch.setattr(RK, "PAGE_W", 1.0)
    monkeypatch.setattr(RK, "SECTION_W", 0.5)
    s = RK.aggregate(ids, own, bm, dn, t)
    assert s[0] > s[2]  # the page holding two partial matches wins over the single better match
    # the contentless node adds nothing to its page: page 9 holds nothing else, so it gains no page score
    assert s[3] == pytest.approx(own[3] + RK.SECTION_W * 0 + 0, abs=1e-12) or RK.CONTENTLESS != 1.0
    monkeypatch.setattr(RK, "CONTENTLESS", 0.25)
    s = RK.aggregate(ids, own, bm, dn, t)
    assert s[3] < min(s[:3])  # damped, it ranks last despite its scores


def test_contentless_and_repeat_keys():
    assert RK.is_contentless("2021.") and RK.is_contentless("Page 12") and RK.is_contentless("  ")
    assert not RK.is_contentless("Net income rose to 5 billion")
    assert RK.repeat_key("Annual Report 2019 | 14") == RK.repeat_key("Annual  report 2019 | 15")


def test_question_names_and_routing():
    assert RK.question_names("What was Costco's net income in 2021?") == {"costco"}
    assert RK.question_names("How many pages does the report have?") == set()
    t = RK.NodeTable(generation=0, page=np.zeros(1, np.int32), source=np.zeros(1, np.int32), section=np.zeros(1, np.int64),
                     last=np.zeros(1, np.int64), contentless=np.zeros(1, bool),
                     source_names={1: {"costco", "annual", "report"}, 2: {"nike", "annual", "report"},
                                    3: {"university", "brochure"}},
                     name_df={"costco": 1, "nike": 1, "annual": 2, "report": 2, "university": 1, "brochure": 1})
    r = RK.route_scores(t, "What was Costco's net income in 2021 according to the Annual Report?")
    assert r[1] == 1.0 and 0 < r.get(2, 0) < 0.5 and 3 not in r
    assert RK.route_scores(t, "what was the net income in 2021?") == {}


def test_node_table_from_a_library(tmp_path, monkeypatch):
    from conftest import write_corpus

    from sleuth.library import Library

    write_corpus(tmp_path / "docs", {
        "costco_annual.md": "# Results\n\n## Income\n\nNet income was 5,007 million dollars for the fiscal year.\n\n"
                            "2021.\n\n## References\n\nSmith, J. Warehouse clubs and their members. Journal of Retail, 2019.\n",
        "tides.md": "# Tides\n\n## Notes\n\nSpring tides reach six metres at the north pier.\n"})
    with Library(tmp_path / "lib") as lib:
        lib.add([tmp_path / "docs"])
        t = RK.NodeTable.load(lib, 0)
        with lib.Session() as s:
            from sqlalchemy import select

            from sleuth.index.schema import NodeRow
            rows = {r.text.split()[0]: r for r in s.execute(select(NodeRow).where(NodeRow.tier == "fine")).scalars()}
        assert t.contentless[rows["2021."].id] and t.contentless[rows["Smith,"].id]
        assert not t.contentless[rows["Net"].id] and not t.contentless[rows["Spring"].id]
        assert t.section[rows["Net"].id] == rows["Net"].parent_id  # its section "Income"
        src = {r["name"]: r["id"] for r in lib.sources()}
        assert "costco" in t.source_names[src["costco_annual.md"]]
        assert RK.route_scores(t, "What was Costco's net income?") == {src["costco_annual.md"]: 1.0}
        # search: the answer is found; with damping on, the contentless "2021." cannot outrank it
        hits = lib.search("Costco net income 2021", level="fine", k=3)
        assert any(h["snippet"].startswith("Net income") for h in hits[:2])
        monkeypatch.setattr(RK, "CONTENTLESS", 0.25)
        hits = lib.search("Costco net income 2021", level="fine", k=3)
        assert hits[0]["snippet"].startswith("Net income")


def test_doc_scores_and_source_prior(monkeypatch):
    t = RK.NodeTable(generation=0, page=np.zeros(30, np.int32), source=np.repeat(np.array([1, 2, 3], np.int32), 10),
                     section=np.zeros(30, np.int64), last=np.arange(30), contentless=np.zeros(30, bool),
                     source_names={}, name_df={})
    # roots 20 (source 3), 0 (source 1); 99 is past the table (a source added since it loaded)
    assert RK.doc_scores(t, [(20, 9.0), (99, 8.0), (0, 7.5)]) == {3: 1.0, 1: 0.5}
    prior = RK.source_prior({1: 1.0, 2: 0.25}, {3: 1.0, 1: 0.5})
    assert prior == {1: 1.5, 2: 0.25, 3: 1.0}
    monkeypatch.setattr(RK, "DOC_W", 0.0)
    assert RK.source_prior({1: 1.0}, {3: 1.0}) == {1: 1.0, 3: 0.0}


HARBOUR = ("# Harbour works\n\n## Dredging\n\nDredging of the inner basin began in May under the new contract.\n\n"
           "## Volumes\n\nSediment removed from the basin exceeded the estimate by a third.\n\n"
           "## Monitoring\n\nTurbidity readings near the outfall stayed within the permit.\n\n"
           "## Costs\n\nThe contractor billed overtime for night shifts.\n")
RIVER = ("# River notes\n\n## Weir\n\nDredging sediment near the outfall raised turbidity for a week.\n\n"
         "## Birds\n\nKingfishers nested under the footbridge again.\n")


def test_a_document_matching_the_whole_question_leads_over_a_library(tmp_path, monkeypatch):
    """The question's words are spread over the harbour report's paragraphs; one paragraph of
    the river notes holds most of them. As paragraphs the notes lead; as documents the report
    does, and over the whole library its paragraphs come first. Within one source nothing changes."""
    from conftest import write_corpus

    from sleuth.library import Library

    write_corpus(tmp_path / "docs", {"harbour_works.md": HARBOUR, "river_notes.md": RIVER,
                                     "orchard.md": "# Orchard\n\n## Pruning\n\nThe apple trees were pruned in February.\n"})
    q = "How did dredging sediment affect turbidity at the outfall within the permit?"
    with Library(tmp_path / "lib") as lib:
        lib.add([tmp_path / "docs"])
        roots = {s["name"]: s["root_id"] for s in lib.sources()}
        assert [i for i, _ in lib.lexical.search_docs(q, 5)] == [roots["harbour_works.md"], roots["river_notes.md"]]
        by_doc = [h["locator"]["source"] for h in lib.search(q, level="fine", k=4)]
        within = [h["id"] for h in lib.search(q, level="fine", k=4, within="harbour_works.md")]
        monkeypatch.setattr(RK, "DOC_W", 0.0)
        alone = [h["locator"]["source"] for h in lib.search(q, level="fine", k=4)]
        assert "river_notes.md" in alone[:2]
        assert by_doc == ["harbour_works.md"] * 3 + ["river_notes.md"]
        assert [h["id"] for h in lib.search(q, level="fine", k=4, within="harbour_works.md")] == within
