"""The library on PostgreSQL (the lexical index stays a tantivy folder under --home), against a throwaway local server.

Skipped when PostgreSQL's server binaries or psycopg are not installed.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import write_corpus
from sleuth import Library

pytest.importorskip("psycopg")
INITDB, PG_CTL = shutil.which("initdb"), shutil.which("pg_ctl")
pytestmark = pytest.mark.skipif(not (INITDB and PG_CTL), reason="PostgreSQL server binaries not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: str) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["su", "nobody", "-s", "/bin/sh", "-c", cmd] if os.geteuid() == 0 else ["sh", "-c", cmd]


@pytest.fixture(scope="module")
def pg_url():
    data = tempfile.mkdtemp(prefix="sleuth-pg-")
    os.chmod(data, 0o777)
    if os.geteuid() == 0:
        shutil.chown(data, "nobody")
    port = _free_port()
    init = subprocess.run(_as_server_user(f"{INITDB} -D {data}/db -A trust -U sleuth"), capture_output=True, text=True)
    if init.returncode != 0:
        pytest.skip(f"initdb failed: {init.stderr.strip()[-200:]}")
    start = subprocess.run(_as_server_user(
        f"{PG_CTL} -D {data}/db -w -o '-p {port} -k {data} -c listen_addresses=127.0.0.1' -l {data}/log start"),
        capture_output=True, text=True)
    if start.returncode != 0:
        pytest.skip(f"pg_ctl start failed: {start.stderr.strip()[-200:]}")
    try:
        yield f"postgresql+psycopg://sleuth@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user(f"{PG_CTL} -D {data}/db -m fast stop"), capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


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
