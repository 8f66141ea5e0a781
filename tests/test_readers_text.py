"""Markdown, plain text and HTML readers: section trees, spans, tables, bad input."""

import pytest

from sleuth.core import ReaderError
from sleuth.readers import read_path
from sleuth.readers.html import parse_html
from sleuth.readers.markdown import parse_markdown
from sleuth.readers.text import parse_text

MD = """# Field Guide

Intro paragraph before any numbered section.

## 1 Birds

### 1.1 Waders

The avocet feeds by sweeping its upturned bill.

### 1.2 Raptors

Table 2: Raptor counts

| species | count |
|---|---|
| kestrel | 14 |
| buzzard | 3 |

## 2 Plants

- sea kale grows on shingle
- thrift flowers in May
"""


def _tree_titles(node, depth=0):
    out = []
    for c in node.children:
        if c.kind == "section":
            out.append((depth, c.title))
            out += _tree_titles(c, depth + 1)
    return out


def test_markdown_sections_spans_and_tables():
    tree = parse_markdown(MD, title="guide")
    assert tree.root.title == "Field Guide"
    titles = [t for _, t in _tree_titles(tree.root)]
    assert titles == ["(front matter)", "1 Birds", "1.1 Waders", "1.2 Raptors", "2 Plants"]
    nest = dict((t, d) for d, t in _tree_titles(tree.root))
    assert nest["1.1 Waders"] == nest["1 Birds"] + 1
    for n in tree.root.walk():
        if n.kind in ("paragraph", "table"):
            assert tree.text[n.char_start:n.char_end] == n.text
    table = next(n for n in tree.root.walk() if n.kind == "table")
    assert table.title == "Table 2: Raptor counts" and "kestrel | 14" in table.text


def test_text_headings_and_long_paragraph_split():
    long_para = " ".join(f"Sentence number {i} talks about the estuary." for i in range(80))
    text = f"1 Introduction\n\nShort opening.\n\n2 Survey\n\n{long_para}\n\n2.1 Method\n\nWe counted birds."
    tree = parse_text(text, title="t")
    assert [t for _, t in _tree_titles(tree.root)] == ["1 Introduction", "2 Survey", "2.1 Method"]
    survey = [n for n in tree.root.walk() if n.kind == "section" and n.title == "2 Survey"][0]
    pieces = [c for c in survey.children if c.kind == "paragraph"]
    assert len(pieces) > 1  # 560 words are split at sentence ends
    assert "".join(p.text for p in pieces).replace(" ", "") == long_para.replace(" ", "")
    assert all(p.text.endswith(".") for p in pieces)


def test_text_without_headings_gets_synthetic_sections():
    text = "\n\n".join(f"Paragraph {i} about item {i}." for i in range(30))
    tree = parse_text(text, title="plain")
    secs = [c for c in tree.root.children if c.kind == "section"]
    assert len(secs) == 3 and all(s.meta.get("synthetic") for s in secs)
    assert sum(len(s.children) for s in secs) == 30


def test_html_blocks_and_caption():
    html = """<html><head><title>Harbour</title><script>var x=1</script></head><body>
    <h1>Harbour report</h1><p>The pier is <b>120 m</b> long.</p>
    <h2>Tides</h2><p>Spring tides reach 6 m.</p>
    <table><caption>Table 1: Tides</caption><tr><th>day</th><th>m</th></tr><tr><td>Mon</td><td>5.8</td></tr></table>
    </body></html>"""
    tree = parse_html(html, title="h")
    assert tree.root.title == "Harbour"
    paras = [n.text for n in tree.root.walk() if n.kind == "paragraph"]
    assert paras == ["The pier is 120 m long.", "Spring tides reach 6 m."]
    table = next(n for n in tree.root.walk() if n.kind == "table")
    assert table.title == "Table 1: Tides" and "Mon | 5.8" in table.text
    assert "var x" not in tree.text


def test_cjk_text_splits_and_decodes(tmp_path):
    p = tmp_path / "zh.txt"
    body = "段落1：北京是中国的首都。\n\n段落2：上海是一个港口城市。"
    p.write_bytes(body.encode("gb18030"))
    tree = read_path(p)
    assert [n.text for n in tree.root.walk() if n.kind == "paragraph"] == ["段落1：北京是中国的首都。", "段落2：上海是一个港口城市。"]


@pytest.mark.parametrize("name,data,reason", [
    ("empty.md", b"", "empty"),
    ("blank.txt", b"   \n\n  ", "empty"),
    ("bin.txt", b"\x00\x01\x02\x03" * 50, "binary"),
    ("fake.pdf", b"just words", "not a PDF"),
    ("thing.xyz", b"hello", "unsupported"),
])
def test_bad_input_one_line_errors(tmp_path, name, data, reason):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(ReaderError) as e:
        read_path(p)
    msg = str(e.value)
    assert name in msg and reason in msg and "\n" not in msg
