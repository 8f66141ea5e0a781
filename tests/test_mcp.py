"""``sleuth mcp`` driven through the official MCP SDK's own stdio client, as a desktop client would."""

import json
import os
import sys
from pathlib import Path

import anyio
import pytest

import sleuth
from conftest import write_corpus


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    from sleuth import Library
    from sleuth.samples import make_report_pdf

    root = tmp_path_factory.mktemp("mcp")
    docs = root / "docs"
    write_corpus(docs, {"notes.md": "# Notes\n\n## Harbour\n\nThe harbour wall was rebuilt in 1998 with basalt blocks.\n"})
    truth = make_report_pdf(docs / "report.pdf", outline=True)
    with Library(root / "lib") as lib:
        rep = lib.add([docs])
        assert not rep.failed
    return root / "lib", truth


def _session(lib_dir: Path, fn):
    """Start `python -m sleuth mcp` as a subprocess through the SDK's stdio client and run ``fn(session)``."""
    from mcp import ClientSession, StdioServerParameters, stdio_client

    pkg_parent = str(Path(sleuth.__file__).resolve().parents[1])
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [pkg_parent, os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "sleuth", "mcp", "--library", str(lib_dir)], env=env)

    async def main():
        with anyio.fail_after(120):
            async with stdio_client(params) as streams:
                async with ClientSession(*streams) as session:
                    await session.initialize()
                    return await fn(session)

    return anyio.run(main)


def test_mcp_session_lists_the_tools_and_gets_located_hits(library):
    from sleuth.agent.tools import TOOL_SCHEMAS

    lib_dir, truth = library

    async def run(session):
        tools = (await session.list_tools()).tools
        # (within: the protocol is under test here, not ranking across files)
        hits = await session.call_tool("search", {"query": "harbour wall basalt", "within": "notes.md", "k": 3})
        pdf = await session.call_tool("search", {"query": "energy yield", "level": "paragraph",
                                                 "within": "report.pdf", "k": 2})
        first = pdf.structured_content["hits"][0]
        read = await session.call_tool("read", {"node": first["id"], "max_tokens": 200})
        outline = await session.call_tool("outline", {})
        look = await session.call_tool("look", {"node": first["id"]})
        missing = await session.call_tool("read", {"node": 10 ** 9})
        bad = await session.call_tool("search", {"query": "x", "level": "chapter"})
        return tools, hits, pdf, read, outline, look, missing, bad

    tools, hits, pdf, read, outline, look, missing, bad = _session(lib_dir, run)

    # the agent's own tool grammar and schemas, plus ask; all read-only
    by_name = {t.name: t for t in tools}
    assert set(by_name) == {s["function"]["name"] for s in TOOL_SCHEMAS} | {"ask"}
    for s in TOOL_SCHEMAS:
        assert by_name[s["function"]["name"]].input_schema == s["function"]["parameters"]
    assert all(t.annotations.read_only_hint for t in tools)

    # located hits, as structured content and as the same JSON in text
    assert not hits.is_error
    assert json.loads(hits.content[0].text) == hits.structured_content
    top = hits.structured_content["hits"][0]
    assert top["source"] == "notes.md" and "basalt" in top["snippet"]
    assert top["locator"]["char_start"] is not None and top["label"].startswith("notes.md")
    p = pdf.structured_content["hits"][0]
    assert p["source"] == "report.pdf" and p["kind"] == "paragraph"
    assert 1 <= p["locator"]["page"] <= truth["pages"] and len(p["locator"]["bbox"]) == 4

    assert not read.is_error and read.structured_content["items"][0]["id"] == p["id"]
    assert read.structured_content["items"][0]["locator"]["page"] == p["locator"]["page"]
    names = {it["title"] for it in outline.structured_content["items"]}
    assert {"Notes", truth["title"]} <= names
    assert look.structured_content["page"] == p["locator"]["page"] and look.structured_content["locator"]["bbox"]

    # failures are tool results the client can show, not protocol errors
    assert missing.is_error and "no node" in missing.structured_content["error"]
    assert bad.is_error and "unknown level" in bad.structured_content["error"]


def test_mcp_ask_answers_with_located_citations(library):
    lib_dir, _ = library

    async def run(session):
        return (await session.call_tool("ask", {"question": "When was the harbour wall rebuilt?",
                                                "budget": "rounds=2"}),
                await session.call_tool("ask", {"question": " "}))

    ans, empty = _session(lib_dir, run)
    assert not ans.is_error
    out = ans.structured_content
    assert "1998" in out["text"]
    cited = [c for c in out["citations"] if c["locator"]["source"] == "notes.md"]
    assert cited and cited[0]["locator"]["char_start"] is not None
    assert empty.is_error and "question" in empty.structured_content["error"]


def test_mcp_refuses_a_library_that_does_not_exist(tmp_path):
    from typer.testing import CliRunner

    from sleuth.cli import app

    res = CliRunner().invoke(app, ["mcp", "--library", str(tmp_path / "none")])
    assert res.exit_code == 2 and "not a sleuth library" in res.output
    assert not (tmp_path / "none").exists()
