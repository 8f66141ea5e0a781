"""The library on PostgreSQL (the lexical index stays a tantivy folder under --home), against a throwaway local server.

Skipped when PostgreSQL's server binaries or psycopg are not installed.
"""

import pytest

from conftest import write_corpus
from fakes.pg import needs_postgres, postgres
from sleuth import Library

pytest.importorskip("psycopg")
pytestmark = needs_postgres


@pytest.fixture(scope="module")
def pg_url():
    with postgres() as url:
        yield url


def test_postgres_index_search_update_reopen(pg_url, tmp_path):
    docs = tmp_path / "docs"
    write_corpus(docs, {
        "birds.md": "# Birds\n\n## Coast\n\nBlack guillemots nest on the breakwater lighthouse.\n\n"
                    "The Royal Society for the Protection of Birds (RSPB) counted eleven pairs.\n",
        "tides.txt": "Tide notes\n\nSpring tides reach six metres at the north pier.",
    })
    lib = Library(pg_url, home=tmp_path / "home")
    rep = lib.add([docs])
    assert rep.count("added") == 2 and not rep.failed
    assert lib.search("guillemots lighthouse", k=1)[0]["source"] == "birds.md"
    ent = lib.search("Royal Society", level="entity", k=1)
    assert ent and ent[0]["entity"]["name"].startswith("Royal Society")
    assert ent[0]["mentions"][0]["locator"]["source"] == "birds.md"
    (docs / "tides.txt").write_text("Tide notes\n\nNeap tides barely reach two metres at the south slip.")
    rep = lib.add([docs])
    assert rep.count("updated") == 1 and rep.count("skipped") == 1
    assert lib.search("neap tides south slip", k=1)[0]["source"] == "tides.txt"
    assert not any("Spring tides" in h["snippet"] for h in lib.search("spring tides six metres", k=5))
    lib.close()
    again = Library(pg_url, home=tmp_path / "home")
    assert again.status()["sources"] == {"document": 2}
    assert again.search("eleven pairs", k=1)[0]["source"] == "birds.md"
