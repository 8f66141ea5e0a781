"""Document entities from spaCy NER: kinds from the model, mentions located at their paragraphs."""

from sleuth.core import Node, Tree
from sleuth.readers import doc_entities as D


def _tree(paragraphs: list[str]) -> Tree:
    root = Node(kind="document", title="t")
    sec = Node(kind="section", title="s")
    root.children.append(sec)
    for p in paragraphs:
        sec.children.append(Node(kind="paragraph", text=p))
    return Tree(root=root)


PARAS = [
    "Barack Obama met Angela Merkel in Berlin on Tuesday to discuss trade.",
    "The World Health Organization (WHO) published new guidance, and the WHO expects adoption by March.",
    "Costco reported net income of $5.0 billion in fiscal 2021, up from 2020.",
    "revenue grew 12 percent in the second quarter and margins held steady.",
    "Obama later flew to Paris, where Microsoft announced a new data centre.",
]


def test_ner_kinds_and_located_mentions():
    tree = _tree(PARAS)
    D.add_document_entities(tree)
    by_name = {e.name: e for e in tree.entities}
    kinds = {e.name: e.kind for e in tree.entities}
    assert kinds.get("Berlin") == "place" and kinds.get("Paris") == "place"
    assert kinds.get("Barack Obama") == "person"
    assert kinds.get("Microsoft") == "org" and kinds.get("Costco") == "org"  # sentence-initial name is found
    # dates and money are not entities
    assert not any(e.name in ("Tuesday", "$5.0 billion", "2021", "March") for e in tree.entities)
    # the acronym joins the name it abbreviates, and every mention points at its paragraph
    who = by_name["World Health Organization"]
    assert who.kind == "org" and "WHO" in who.aliases and len(who.mentions) == 3
    paras = [n for n in tree.root.walk() if n.kind == "paragraph"]
    assert {id(m.node) for m in who.mentions} == {id(paras[1])}
    assert all(m.modality == "text" and m.surface in PARAS[1] for m in who.mentions)
    # nothing from the lower-case paragraph: it holds no name
    assert not any(id(m.node) == id(paras[3]) for e in tree.entities for m in e.mentions)


def test_name_windows_cover_names_only_with_context():
    text = "Sales rose. The report was filed by Acme Holdings Inc. in the state of Delaware last year. ok."
    wins = D.name_windows(text)
    assert all(text[o : o + len(w)] == w for o, w in wins)  # offsets locate the pieces
    joined = " ".join(w for _, w in wins)
    assert "Acme Holdings" in joined and "Delaware" in joined
    assert sum(len(w) for _, w in wins) < len(text)  # not the whole text
    assert D.name_windows("nothing capitalised here at all.") == []


def test_ingested_entities_keep_kind_and_located_mentions(tmp_path):
    from sleuth.library import Library
    from conftest import write_corpus

    write_corpus(tmp_path / "docs", {
        "birds.md": "# Birds\n\n## Coast\n\nBlack guillemots nest on the breakwater lighthouse.\n\n"
                    "The Royal Society for the Protection of Birds (RSPB) counted eleven pairs near Aberdeen.\n\n"
                    "## Later\n\nIn May the RSPB returned to Aberdeen with Jane Goodall.\n"})
    with Library(tmp_path / "lib") as lib:
        assert not lib.add([tmp_path / "docs"]).failed
        e = lib.entity("RSPB")
        assert e["entity"]["name"] == "Royal Society for the Protection of Birds" and e["entity"]["kind"] == "org"
        assert e["entity"]["n_mentions"] == 3
        assert {m["locator"]["section_path"][-1] for m in e["mentions"]} == {"Coast", "Later"}
        assert lib.entity("Aberdeen")["entity"]["kind"] == "place"
        assert lib.search("Jane Goodall", level="entity", k=1)[0]["entity"]["kind"] == "person"


def test_ner_without_the_model_strings_finds_what_the_whole_model_finds(shared_data):
    """The pipeline loads without the vocabulary's strings (EXCLUDE); the reference is the
    model loaded with them. Real news and report text from LongBench, cut in windows."""
    import json

    news = shared_data / "longbench" / "multi_news.jsonl"
    reports = sorted((shared_data / "longbench_v2" / "md" / "single-document_qa").glob("*_context.txt"))[:2]
    with open(news, encoding="utf-8") as fh:
        contexts = [json.loads(fh.readline())["context"] for _ in range(2)]
    contexts += [f.read_text(encoding="utf-8") for f in reports]
    texts = [ctx[i : i + 1500] for ctx in contexts for i in range(0, min(len(ctx), 15_000), 1500)]
    spacy = D._import_spacy_without_torch()
    assert "strings" in D.EXCLUDE
    ours = spacy.load(D.MODEL, exclude=D.EXCLUDE)
    ref = spacy.load(D.MODEL, exclude=[x for x in D.EXCLUDE if x != "strings"])
    assert len(ours.vocab.strings) < len(ref.vocab.strings) // 10  # the strings were left out
    assert "lexeme_norm" in ours.vocab.lookups  # the NORM exceptions were not
    got = [[(e.text, e.label_, e.start_char) for e in d.ents] for d in ours.pipe(texts)]
    want = [[(e.text, e.label_, e.start_char) for e in d.ents] for d in ref.pipe(texts)]
    assert sum(map(len, want)) > 50
    assert got == want
