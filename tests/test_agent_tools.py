"""The agent's tools, the text tool-call parser, budgets and the answer object."""

import json

import pytest

from fakes.corpus import build, node_with
from sleuth.agent import AgentError, Answer, Budget, TOOL_NAMES, TOOL_SCHEMAS, run_tool
from sleuth.agent import tools as T
from sleuth.agent.answer import Citation, cited_ids, resolve_citations
from sleuth.agent.toolcall_parse import parse_arguments, parse_tool_calls


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = build(tmp_path_factory.mktemp("tools"))
    yield lib
    lib.close()


def test_schemas_are_openai_function_tools_matching_the_dispatcher():
    json.dumps(TOOL_SCHEMAS)
    assert set(TOOL_NAMES) == {"search", "read", "outline", "entity", "look"}
    for s in TOOL_SCHEMAS:
        assert s["type"] == "function"
        f = s["function"]
        assert f["description"] and f["parameters"]["type"] == "object"
        assert set(f["parameters"]["required"]) <= set(f["parameters"]["properties"])


def test_search_and_read_return_located_serialisable_results(lib):
    want = node_with(lib, "ocean.txt", "titanium")
    res = run_tool(lib, "search", {"query": "what was the submersible hull made of", "level": "fine", "k": 3})
    json.dumps(res)
    assert [h["id"] for h in res["hits"]][0] == want
    r = run_tool(lib, "read", {"node": want})
    assert r["items"][0]["id"] == want and "titanium" in r["items"][0]["text"]
    assert r["items"][0]["locator"]["source"] == "ocean.txt"


def test_read_cursor_continues_in_order_without_gaps(lib):
    root = next(s["root_id"] for s in lib.sources() if s["name"] == "mars.md")
    whole = run_tool(lib, "read", {"node": root, "max_tokens": 4000})
    assert whole["cursor"] is None
    got, cursor, pages = [], None, 0
    while True:
        page = run_tool(lib, "read", {"node": root, "start": cursor, "max_tokens": 50})
        assert "error" not in page
        got += [it["id"] for it in page["items"]]
        pages += 1
        cursor = page["cursor"]
        if cursor is None:
            break
    assert pages > 1
    assert got == [it["id"] for it in whole["items"]]


def test_outline_pages_under_a_token_budget(lib):
    full = T.outline(lib, None, depth=3, max_tokens=100000)
    ids, cursor, pages = [], None, 0
    while True:
        page = T.outline(lib, None, depth=3, cursor=cursor, max_tokens=40)
        assert page["tokens"] <= 40 or len(page["items"]) == 1
        ids += [it["id"] for it in page["items"]]
        pages += 1
        cursor = page["cursor"]
        if cursor is None:
            break
    assert pages > 1 and ids == [it["id"] for it in full["items"]]


@pytest.mark.parametrize("name,args,needle", [
    ("fly", {}, "unknown tool"),
    ("search", {}, "missing required argument(s) query"),
    ("search", {"query": "x", "level": "galaxy"}, "unknown level"),
    ("read", {"node": "abc"}, "should be integer"),
    ("read", {"node": 987654}, "no node 987654"),
    ("entity", {"name": "Nobody Atall Zzyzx"}, "no entity"),
    ("look", {}, "give node, or source and t"),
    ("search", "not a dict", "must be a JSON object"),
])
def test_bad_calls_become_error_observations(lib, name, args, needle):
    res = run_tool(lib, name, args)
    assert set(res) == {"error"} and needle in res["error"]
    assert "\n" not in res["error"]


def test_a_library_that_raises_is_an_observation_not_a_crash():
    class Broken:
        def search(self, *a, **k):
            raise RuntimeError("disk on fire\nsecond line")

    res = run_tool(Broken(), "search", {"query": "x"})
    assert res == {"error": "search: disk on fire second line"}


def test_aliases_and_coercion(lib):
    want = node_with(lib, "bees.md", "12 percent")
    res = run_tool(lib, "read", {"node_id": str(want), "unexpected": 1})
    assert res["items"][0]["id"] == want
    capped = run_tool(lib, "read", {"node": want, "max_tokens": 4000}, max_tokens=5)
    assert capped["tokens"] <= 50  # the budget cap wins over what the caller asked


# -- text tool calls --------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    '<tool_call>{"name": "search", "arguments": {"query": "margins", "k": 3}}</tool_call>',
    'I will search.\n<tool_call>\n{"name": "search", "arguments": {"query": "margins", "k": 3}}\n',  # unclosed
    '```json\n{"name": "search", "arguments": {"query": "margins", "k": 3}}\n```',
    '```json\n[{"name": "search", "parameters": {"query": "margins", "k": 3}}]\n```',
    '<tool_call><function=search><parameter=query>margins</parameter><parameter=k>3</parameter></function></tool_call>',
    '<function=search>{"query": "margins", "k": 3}</function>',
    '[TOOL_CALLS] [{"name": "search", "arguments": {"query": "margins", "k": 3}}]',
    '{"name": "search", "arguments": "{\\"query\\": \\"margins\\", \\"k\\": 3}"}',
    "<tool_call>{'name': 'search', 'arguments': {'query': 'margins', 'k': 3,}}</tool_call>",
])
def test_text_tool_calls_in_the_common_formats(text):
    p = parse_tool_calls(text, TOOL_NAMES)
    assert p.errors == []
    assert p.calls == [{"name": "search", "arguments": {"query": "margins", "k": 3}}]
    assert "margins" not in p.text


def test_several_calls_and_surrounding_text():
    p = parse_tool_calls('Let me look.\n<tool_call>{"name": "search", "arguments": {"query": "a"}}</tool_call>\n'
                         '<tool_call>{"name": "read", "arguments": {"node": 4}}</tool_call>')
    assert [c["name"] for c in p.calls] == ["search", "read"] and p.text == "Let me look."


@pytest.mark.parametrize("text", [
    '<tool_call>{"name": "search", "arguments": {"query": "x"</tool_call>',
    '```json\n{"name": "search", "arguments": {"query": }\n```',
    '<tool_call></tool_call>',
])
def test_malformed_calls_are_reported_not_raised(text):
    p = parse_tool_calls(text, TOOL_NAMES)
    assert p.calls == [] and len(p.errors) == 1 and "<tool_call>" in p.errors[0]


def test_plain_answers_and_non_call_json_are_not_calls():
    assert parse_tool_calls("Margins fell in Q3 [12].").calls == []
    p = parse_tool_calls('```json\n{"answer": 42}\n```', TOOL_NAMES)
    assert p.calls == [] and p.errors == []
    with pytest.raises(ValueError):
        parse_arguments("[1, 2]")


# -- budget, citations, answer ----------------------------------------------------------------

def test_budget_parse():
    b = Budget.parse("rounds=3, calls=12,tokens=6000,seconds=60")
    assert (b.rounds, b.calls, b.tokens, b.seconds) == (3, 12, 6000, 60.0)
    assert Budget.parse({"rounds": 2}).rounds == 2 and Budget.parse(None) == Budget()
    for bad in ("rounds", "rounds=x", "planets=3", "calls=0"):
        with pytest.raises(AgentError) as e:
            Budget.parse(bad)
        assert "\n" not in str(e.value)
    assert "rounds" in Budget(rounds=2).exhausted({"rounds": 2})
    assert Budget().exhausted({"rounds": 1, "tool_calls": 3, "tokens_read": 10, "seconds": 1.0}) is None


def test_citations_map_to_evidence_and_unknown_ids_are_dropped():
    ev = {12: {"id": 12, "label": "a.md §1 ¶1", "locator": {"source": "a.md"}, "source": "a.md",
               "text": "Intro sentence. Margins fell in Q3 because of freight."},
          40: {"id": 40, "label": "b.md ¶2", "locator": {"source": "b.md"}, "source": "b.md", "text": "The CFO spoke."}}
    assert cited_ids("x [12] y [node 40, #12] z [n7]") == [12, 40, 7]
    text, cites, notes = resolve_citations("Margins fell in Q3 [12]. The CFO spoke [40][999].", ev)
    assert text == "Margins fell in Q3 [1]. The CFO spoke [2]."
    assert [(c.n, c.node_id) for c in cites] == [(1, 12), (2, 40)]
    assert cites[0].quote == "Margins fell in Q3 because of freight."
    assert notes and "999" in notes[0]


def test_answer_serialises_and_renders():
    a = Answer(question="q", text="Margins fell [1].",
               citations=[Citation(n=1, node_id=3, label="report.pdf p.12 §3.2 ¶4", locator={"page": 12}, quote="Margins fell.")])
    d = json.loads(json.dumps(a.to_dict()))
    assert Answer.from_dict(d) == a
    out = a.render()
    assert "[1] report.pdf p.12 §3.2 ¶4" in out and "Margins fell [1]." in out


def test_exact_mode_ranks_by_words_alone_like_the_lexical_index(lib):
    """Exact search is BM25 in hit shape: same order as the lexical index it wraps."""
    res = run_tool(lib, "search", {"query": "Kourou 2033", "level": "fine", "k": 5, "mode": "exact"})
    ref = [i for i, _ in lib.lexical.search("Kourou 2033", ("fine",), 15)][: len(res["hits"])]
    assert [h["id"] for h in res["hits"]] == ref
    assert res["hits"][0]["id"] == node_with(lib, "mars.md", "Kourou")
    assert all(h["dense"] is None and h["bm25"] > 0 for h in res["hits"])
    assert run_tool(lib, "search", {"query": "x", "mode": "fuzzy"})["error"].startswith("search: unknown mode")
