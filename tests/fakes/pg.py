"""A throwaway PostgreSQL server on 127.0.0.1 for the tests that need a real one.

``postgres()`` starts one (as user nobody when the tests run as root: PostgreSQL refuses root),
yields its SQLAlchemy URL, and stops and removes it after; it skips the test when the server
binaries are missing or the server does not start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

INITDB, PG_CTL = shutil.which("initdb"), shutil.which("pg_ctl")
#: pytest mark for modules that need the binaries
needs_postgres = pytest.mark.skipif(not (INITDB and PG_CTL), reason="PostgreSQL server binaries not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_server_user(cmd: str) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["su", "nobody", "-s", "/bin/sh", "-c", cmd] if os.geteuid() == 0 else ["sh", "-c", cmd]


@contextlib.contextmanager
def postgres(user: str = "sleuth"):
    """A running server: yields ``postgresql+psycopg://USER@127.0.0.1:PORT/postgres``."""
    pytest.importorskip("psycopg")
    if not (INITDB and PG_CTL):
        pytest.skip("PostgreSQL server binaries not installed")
    data = tempfile.mkdtemp(prefix="sleuth-pg-")
    os.chmod(data, 0o777)
    if os.geteuid() == 0:
        shutil.chown(data, "nobody")
    port = free_port()
    try:
        init = subprocess.run(as_server_user(f"{INITDB} -D {data}/db -A trust -U {user}"), capture_output=True, text=True)
        if init.returncode != 0:
            pytest.skip(f"initdb failed: {init.stderr.strip()[-200:]}")
        start = subprocess.run(as_server_user(
            f"{PG_CTL} -D {data}/db -w -o '-p {port} -k {data} -c listen_addresses=127.0.0.1' -l {data}/log start"),
            capture_output=True, text=True)
        if start.returncode != 0:
            pytest.skip(f"pg_ctl start failed: {start.stderr.strip()[-200:]}")
        yield f"postgresql+psycopg://{user}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_server_user(f"{PG_CTL} -D {data}/db -m fast stop"), capture_output=True)
        shutil.rmtree(data, ignore_errors=True)
