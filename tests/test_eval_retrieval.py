"""Token counting, the retrieval baselines and the evidence-recall scorers."""

import math
import unicodedata
from collections import Counter

import numpy as np
import pytest

from conftest import SHARED
from sleuth.eval import baselines as B
from sleuth.eval import retrieval as R
from sleuth.eval.baselines import Piece
from sleuth.eval.tokens import count_tokens, token_spans, truncate_to_tokens

LB = SHARED / "longbench"


# ---------------------------------------------------------------- tokens


def _reference_count(text: str) -> int:
    """Plain character loop implementing the documented rule."""

    def cjk(ch):
        o = ord(ch)
        return any(a <= o <= b for a, b in [(0x3000, 0x303F), (0x3040, 0x30FF), (0x3400, 0x4DBF),
                   (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xAC00, 0xD7AF), (0xFF00, 0xFFEF)])  # fmt: skip

    def word(ch):
        return ch == "_" or unicodedata.category(ch)[0] in "LN" or unicodedata.category(ch) in ("Mn", "Mc")

    n, in_word = 0, False
    for ch in text:
        if cjk(ch):
            n, in_word = n + 1, False
        elif word(ch):
            n, in_word = n + (not in_word), True
        elif ch.isspace():
            in_word = False
        else:
            n, in_word = n + 1, False
    return n


def test_count_tokens_hand_case():
    # Hello | , | 世 | 界 | ! | ab_c | 12  → 7
    assert count_tokens("Hello, 世界! ab_c 12") == 7
    assert count_tokens("") == 0


@pytest.mark.skipif(not LB.is_dir(), reason="shared/data not present")
def test_count_tokens_matches_reference_on_real_text():
    import json

    for name in ("multifieldqa_zh", "multi_news"):
        with open(LB / f"{name}.jsonl", encoding="utf-8") as f:
            text = json.loads(f.readline())["context"][:20000]
        assert count_tokens(text) == _reference_count(text)


def test_truncate_to_tokens():
    assert truncate_to_tokens("a b  c d", 2) == "a b"
    assert truncate_to_tokens("中文字", 2) == "中文"
    assert truncate_to_tokens("a b", 5) == "a b"
    assert truncate_to_tokens("a b", 0) == ""
    assert token_spans("ab  c") == [(0, 2), (4, 5)]


# ---------------------------------------------------------------- baselines


def _context(n_words=1000):
    words = [f"w{i % 97}" for i in range(n_words)]
    return " ".join(words)


def test_chunks_cover_the_text_in_order():
    text = _context(1050)
    chunks = B.chunk_text(text, 200)
    # 1050 tokens → 5 full chunks + 1 of 50
    assert [count_tokens(c.text) for c in chunks] == [200] * 5 + [50]
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert " ".join(c.text for c in chunks) == text


@pytest.mark.parametrize("budget", [1, 150, 500, 999, 5000])
def test_take_budget_never_exceeds_and_fills(budget):
    text = _context(1000)
    read = B.take_budget(B.rank_chunks(text, "", "head"), budget)
    n = sum(count_tokens(p.text) for p in read)
    assert n == min(budget, 1000)
    # head reading is the context's prefix
    assert B.render(read) and text.startswith(read[0].text)
    # render() separates pieces with blank lines; the words are the budget-long prefix's
    assert B.baseline_context(text, "", "head", budget).split() == truncate_to_tokens(text, budget).split()


def _reference_bm25(docs, query, k1=1.5, b=0.75):
    """Plain Lucene (≥ 8) BM25: idf = ln(1 + (N − df + 0.5)/(df + 0.5)),
    term = idf · tf / (tf + k1·(1 − b + b·|d|/avgdl)) — Lucene dropped the constant (k1 + 1)."""
    N = len(docs)
    avg = sum(len(d) for d in docs) / N
    df = Counter(w for d in docs for w in set(d))
    out = []
    for d in docs:
        tf = Counter(d)
        s = 0.0
        for w in query:
            if tf[w]:
                idf = math.log(1 + (N - df[w] + 0.5) / (df[w] + 0.5))
                s += idf * tf[w] / (tf[w] + k1 * (1 - b + b * len(d) / avg))
        out.append(s)
    return np.array(out)


def test_bm25_matches_reference_formula():
    chunks = [
        "The cat sat on the mat near the cat door.",
        "Dogs chase cats in the garden every morning.",
        "Quantum chromodynamics describes the strong interaction.",
        "A cat and a dog share the garden.",
    ]
    q = "cat garden"
    got = B.bm25_scores(chunks, q, "en")
    want = _reference_bm25([B.lexical_tokens(c, "en") for c in chunks], B.lexical_tokens(q, "en"))
    assert np.allclose(got, want, atol=1e-5)
    ranked = B.rank_chunks(" ".join(chunks), q, "bm25", chunk_tokens=11)
    assert ranked[0].score == pytest.approx(max(ranked[i].score for i in range(len(ranked))))


def test_bm25_chinese_uses_jieba_words():
    toks = B.lexical_tokens("全国美国文学研究会的年会在厦门大学举办。", "zh")
    assert "厦门" in toks or "厦门大学" in toks
    assert "。" not in toks and "的" not in toks  # punctuation and stopwords dropped


def test_ranker_without_signal_keeps_document_order():
    text = _context(600)
    ranked = B.rank_chunks(text, "zzz-not-there", "bm25", chunk_tokens=100)
    assert [c.start for c in ranked] == sorted(c.start for c in ranked)


def test_dense_ranking_with_given_scorer_orders_by_score():
    text = _context(400)
    scorer = lambda chunks, q: np.array([0.1, 0.9, 0.5, 0.2][: len(chunks)])  # noqa: E731
    ranked = B.rank_chunks(text, "q", "dense", chunk_tokens=100, scorer=scorer)
    assert [round(c.score, 1) for c in ranked] == [0.9, 0.5, 0.2, 0.1]


def test_dense_baseline_with_real_embedder_finds_the_topic():
    paras = [
        "The recipe needs flour, sugar, eggs and butter baked for forty minutes.",
        "The football match ended two to one after extra time in the stadium.",
        "Photosynthesis converts sunlight, water and carbon dioxide into glucose in leaves.",
        "The stock market fell sharply as investors worried about interest rates.",
    ]
    text = " ".join(paras)
    ranked = B.rank_chunks(text, "How do plants make sugar from light?", "dense",
                           chunk_tokens=count_tokens(paras[0]))  # fmt: skip
    # chunks do not align with the sentences; the best one holds most of the photosynthesis one
    assert "sunlight" in ranked[0].text and "glucose" in ranked[0].text


# ---------------------------------------------------------------- evidence recall


def test_qa_recall_zh_and_en():
    # normalised gold "厦门大学" is inside the normalised read text
    r = R.qa_recall([Piece("年会在 厦门大学 举办，")], ["厦门大学。"], "zh")
    assert r == {"recall": 1.0, "token_recall": 1.0}
    assert R.qa_recall([Piece("在北京举办")], ["厦门大学。"], "zh")["recall"] == 0.0
    # English matches on word boundaries: "cat" is not in "concatenate"
    assert R.qa_recall([Piece("We concatenate strings.")], ["cat"], "en")["recall"] == 0.0
    # gold [new, york, city]; read has new, york → token recall 2/3, no full hit
    r = R.qa_recall([Piece("He moved to New York.")], ["New York City"], "en")
    assert r["recall"] == 0.0 and r["token_recall"] == pytest.approx(2 / 3)


def test_summary_recall_hand_case():
    # reference content words: "police cleared the park." → [police, cleared, park] ("the" is an
    # article); read: [park, was, quiet, police, waited] minus stopword "was" → 2 of 3 found
    r = R.summary_recall([Piece("The park was quiet; police waited.")], ["Police cleared the park."], "en")
    assert r["recall"] == pytest.approx(2 / 3)


def _passages():
    paras = ["苹果公司发布了新的手机。", "今天的天气非常好，适合散步。", "足球比赛在晚上八点开始。"]
    ctx = "\n\n".join(f"段落{i + 1}：{p}" for i, p in enumerate(paras))
    return ctx, paras


def test_passage_pick_and_recall_with_offsets():
    ctx, paras = _passages()
    s = ctx.index("段落2：")
    e = ctx.index("段落3：")
    r = R.passage_recall([Piece(ctx[s:e], s, e)], ctx, ["段落2"], "zh")
    assert r["pick"] == "段落2" and r["pick_score"] == 1.0 and r["recall"] == 1.0
    # paragraph 2 ends before the blank line; read the first half of it → that share
    pe = s + len(ctx[s:e].rstrip())
    half = s + (pe - s) // 2
    r = R.passage_recall([Piece(ctx[s:half], s, half)], ctx, ["段落2"], "zh")
    assert r["recall"] == pytest.approx((half - s) / (pe - s))
    # the paragraph's own text alone (no separator) is all of it
    assert R.passage_recall([Piece(ctx[s:pe], s, pe)], ctx, ["段落2"], "zh")["recall"] == 1.0
    # a wrong first pick scores 0 officially even if the gold paragraph is read later
    s3 = e
    r = R.passage_recall([Piece(ctx[s3:], s3, len(ctx)), Piece(ctx[s:e], s, e)], ctx, ["段落2"], "zh")
    assert r["pick"] == "段落3" and r["pick_score"] == 0.0 and r["recall"] == 1.0


def test_passage_pick_without_offsets():
    ctx, paras = _passages()
    # found verbatim → located; not verbatim (spaces inserted) → character-bigram fallback
    assert R.passage_pick([Piece(paras[2])], ctx, "zh") == "3"
    assert R.passage_pick([Piece(" ".join(paras[1]))], ctx, "zh") == "2"
    assert R.passage_recall([], ctx, ["段落1"], "zh")["pick_score"] == 0.0


def test_choice_recall_hand_case():
    choices = {"A": "red apples grow", "B": "green apples grow", "C": "blue sky", "D": "red sky"}
    # distinctive words: A {apples? no: in B} → A: {red, apples, grow} − (B ∪ C ∪ D = {green,
    # apples, grow, blue, sky, red}) = {} → None; B: {green}; so use answer B.
    r = R.choice_recall([Piece("The green field.")], "What grows?", choices, "B", "en")
    # B distinctive {green} read → 1.0; C distinctive {blue} unread → 0; D {} skipped;
    # A {} skipped → margin 1 − 0 = 1; question words [what, grows] minus stopwords ("what") →
    # {grows} not read → 0
    assert r["recall"] == 1.0 and r["margin"] == 1.0 and r["question_recall"] == 0.0
    assert R.choice_recall([Piece("x")], "q", choices, "A", "en")["recall"] is None


def test_time_recall():
    segs = [Piece("", t_start=0, t_end=10), Piece("", t_start=14, t_end=17)]
    # reference 15–19: overlap with 14–17 → hit; covered 15–17 = 2 of 4 s → 0.5
    assert R.time_recall(segs, (15.0, 19.0)) == {"recall": 1.0, "coverage": 0.5}
    assert R.time_recall(segs, (11.0, 13.0)) == {"recall": 0.0, "coverage": 0.0}
    assert R.time_recall(segs, (5.0, 5.0))["recall"] == 1.0  # a moment inside a segment
    assert R.time_recall(segs, None)["recall"] is None


@pytest.mark.skipif(not LB.is_dir(), reason="shared/data not present")
def test_bm25_beats_head_on_real_passage_retrieval():
    """On passage_retrieval_zh the summary's words pick out its paragraph: BM25's first chunk
    must land on the gold paragraph far more often than reading from the top does."""
    from sleuth.eval.loaders import load_longbench

    items = load_longbench(LB, ["passage_retrieval_zh"], limit=10)["passage_retrieval_zh"]
    picks = {"bm25": 0.0, "head": 0.0}
    for it in items:
        for m in picks:
            read = B.take_budget(B.rank_chunks(it.context, it.input, m, "zh"), 500)
            picks[m] += R.longbench_evidence(it, read)["pick_score"]
    assert picks["bm25"] >= 6 and picks["bm25"] > picks["head"] + 3
