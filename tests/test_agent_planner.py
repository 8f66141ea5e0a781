"""The heuristic planner (the default, no LLM): decomposition, parallel rounds, extractive cited answers."""

import pytest

from fakes.corpus import FACTS, build, node_with
from sleuth.agent import ask
from sleuth.agent.decompose import decompose, split_clauses
from sleuth.agent.answer import QUOTED_LEAD
from sleuth.agent.extract import sentence_spans
from sleuth.readers.textsplit import sentence_spans as raw_spans


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = build(tmp_path_factory.mktemp("planner"))
    yield lib
    lib.close()


# -- decomposition (pure) -----------------------------------------------------------------------

def test_clauses_split_before_a_new_question_word_only():
    assert split_clauses("Who led the program and what did it cost?") == ["Who led the program", "what did it cost"]
    assert split_clauses("Which quarter did margins fall, and what did the CFO say?") == \
        ["Which quarter did margins fall", "what did the CFO say"]
    assert split_clauses("What are the benefits of salt and pepper?") == ["What are the benefits of salt and pepper"]


def test_later_clause_with_a_pronoun_borrows_the_earlier_terms():
    subs = decompose("Which quarter did margins fall, and what did the CFO say about it?")
    assert len(subs) == 2 and "margins" in subs[1].query and "margins" not in subs[1].text


@pytest.mark.parametrize("q,labels,shared", [
    ("Compare the budgets of Ares and Nereus", ["Ares", "Nereus"], "budgets"),
    ("Ares vs Nereus funding", ["Ares", "Nereus funding"], None),
    ("What is the difference between supervised learning and reinforcement learning?",
     ["supervised learning", "reinforcement learning"], None),
    ("How does the Ares budget compare to the Nereus funding?", ["the Ares budget", "the Nereus funding"], None),
    ("Compare Ares and Nereus in terms of funding", ["Ares", "Nereus"], "funding"),
    ("What did Voss, Lee and Park say about costs?", ["Voss", "Lee", "Park"], "costs"),
    ("What was revenue in 2021 and 2022?", ["2021", "2022"], "revenue"),
])
def test_comparisons_and_named_lists_give_one_part_per_item(q, labels, shared):
    subs = decompose(q)
    assert [s.label for s in subs] == labels
    for s, lab in zip(subs, labels):
        assert lab in s.query
        if shared:
            assert shared in s.query
    assert len({s.query for s in subs}) == len(subs)


def test_single_question_is_one_part():
    subs = decompose("  Who led the   Ares program? ")
    assert len(subs) == 1 and subs[0].text == "Who led the Ares program" and not subs[0].label


def test_sentence_spans_rejoin_abbreviations_and_cover_the_same_text():
    text = "It was led by Dr. Helena Voss. J. Smith joined in 2031. The end came e.g. later! Done."
    mine, ref = sentence_spans(text), raw_spans(text)
    assert [text[s:e] for s, e in mine] == ["It was led by Dr. Helena Voss.", "J. Smith joined in 2031.",
                                            "The end came e.g. later!", "Done."]
    assert mine[0][0] == ref[0][0] and mine[-1][1] == ref[-1][1] and len(mine) <= len(ref)


# -- answers on a corpus ------------------------------------------------------------------------

@pytest.mark.parametrize("question", list(FACTS))
def test_factual_question_answered_from_the_right_paragraph(lib, question):
    source, words = FACTS[question]
    ans = ask(lib, question)
    for w in words:
        assert w in ans.text
    want = node_with(lib, source, words[0])
    assert ans.citations[0].node_id == want
    assert ans.citations[0].label.startswith(source) and words[0] in ans.citations[0].quote
    assert "[1]" in ans.text and not ans.budget_exhausted
    # locate, then read: searches in round 1 run together, then the best places are read
    assert {t.tool for t in ans.trace if t.round == 1} == {"search"}
    assert any(t.tool == "read" and t.arguments["node"] == want for t in ans.trace)


def test_two_part_question_cites_both_documents(lib):
    ans = ask(lib, "Who led the Ares program, and how much did the Blue Planet Foundation contribute?")
    assert "Helena Voss" in ans.text and "80 million euros" in ans.text
    assert {c.node_id for c in ans.citations} >= {node_with(lib, "mars.md", "Voss"), node_with(lib, "ocean.txt", "80 million")}
    lines = ans.text.splitlines()
    assert ans.quoted and ans.render().startswith(QUOTED_LEAD + "\n")
    assert len(lines) == 2 and "Voss" in lines[0] and "80 million" in lines[1]  # each part, its own sentence
    assert len([t for t in ans.trace if t.round == 1]) == 5  # fine + coarse per part, and the whole question


def test_comparison_cites_each_side(lib):
    ans = ask(lib, "Compare the funding of Ares and Nereus")
    srcs = {c.locator["source"] for c in ans.citations}
    assert srcs == {"mars.md", "ocean.txt"}
    assert "4 billion dollars" in ans.text and "80 million euros" in ans.text


def test_unanswerable_question_says_so_and_widens_the_search(lib):
    ans = ask(lib, "What is the boiling point of liquid nitrogen?")
    assert "no passage clearly answers" in ans.text.lower()
    assert ans.cost.rounds > 2 and not ans.budget_exhausted  # it searched again, deeper, before giving up
    assert any("weak support" in n for n in ans.notes)


# -- video ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def video_lib(tmp_path_factory, shared_data):
    import shutil

    from sleuth import Library

    root = tmp_path_factory.mktemp("agent_video")
    for name in ("manifesto.mp4", "manifesto.srt"):
        shutil.copy(shared_data / "video" / name, root / name)
    (root / "notes.md").write_text("# Reading list\n\nThe Communist Manifesto was published in 1848 in London.\n")
    lib = Library(root / "lib")
    rep = lib.add([root / "notes.md", root / "manifesto.mp4"])
    assert rep.count("added") == 2, rep.to_dict()
    yield lib
    lib.close()


def _cue(srt_text: str, phrase: str) -> tuple[float, float]:
    import re

    for block in srt_text.strip().split("\n\n"):
        lines = block.splitlines()
        if phrase in " ".join(lines[2:]):
            a, b = re.findall(r"(\d+):(\d+):(\d+),(\d+)", lines[1])
            sec = [int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000 for h, m, s, ms in (a, b)]
            return sec[0], sec[1]
    raise LookupError(phrase)


def test_video_answer_cites_the_moment_it_was_said(video_lib, shared_data):
    t0, t1 = _cue((shared_data / "video" / "manifesto.srt").read_text(), "haunting europe")
    ans = ask(video_lib, "What is haunting Europe?")
    assert "haunting europe" in ans.text.lower()
    c = ans.citations[0]
    assert c.locator["source"] == "manifesto.mp4" and c.locator["kind"] == "video"
    assert c.locator["t_start"] <= t0 + 0.5 and t1 - 0.5 <= c.locator["t_end"]
    assert c.label.startswith("manifesto.mp4 00:00:") and "haunting europe" in c.quote


def test_mixed_document_and_video_question(video_lib):
    ans = ask(video_lib, "When was the Communist Manifesto published, and what is haunting Europe?")
    assert "1848" in ans.text and "haunting europe" in ans.text.lower()
    assert {c.locator["source"] for c in ans.citations} == {"notes.md", "manifesto.mp4"}
