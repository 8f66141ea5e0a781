"""Database engine set-up: SQLite (WAL) in the library folder by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, unquote

from sqlalchemy import create_engine, event, make_url, select
from sqlalchemy import text as sql
from sqlalchemy.engine import Engine

from .schema import Base, StateRow


def make_engine(url: str, *, read_only: bool = False, lock_dir: Path | None = None) -> Engine:
    """An engine with the schema in place.

    ``read_only`` (SQLite): open the file without writing anything beside it, for a library on
    a read-only mount; ``mode=ro`` when a WAL file is there to be read, else ``immutable=1``
    (SQLite then needs no -shm file, which it could not create). ``lock_dir``: a folder for the
    file lock that makes two processes creating a new library at once take turns.
    """
    if url.startswith("sqlite"):
        if read_only:
            db = Path(make_url(url).database or "")
            mode = "mode=ro" if Path(str(db) + "-wal").exists() else "immutable=1"
            eng = create_engine(f"sqlite:///file:{quote(str(db))}?{mode}&uri=true",
                                connect_args={"timeout": 60, "check_same_thread": False})
        else:
            eng = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn, _rec):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            # busy_timeout first: switching to WAL waits for a concurrent creator instead of failing.
            cur.execute("PRAGMA busy_timeout=60000")
            if not read_only:
                # WAL lets searches read while an index run writes; NORMAL is durable at checkpoints
                # and safe against corruption on a kill, which is what resume needs.
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        eng = create_engine(url, pool_pre_ping=True)
    if not read_only:
        with _creation_lock(lock_dir):
            Base.metadata.create_all(eng)
    return eng


@contextmanager
def _creation_lock(folder: Path | None):
    """create_all checks, then creates: two processes doing it at once on a new library would
    both see no tables. A blocking file lock makes the second wait and then find them."""
    if folder is None:
        yield
        return
    with open(Path(folder) / "create.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def get_state(engine: Engine, key: str, default: str = "0") -> str:
    with engine.connect() as c:
        row = c.execute(select(StateRow.value).where(StateRow.key == key)).first()
    return row[0] if row else default


def bump_generation(conn) -> int:
    """Inside a write transaction: advance the counter derived indexes compare against."""
    cur = conn.execute(select(StateRow.value).where(StateRow.key == "generation")).first()
    gen = int(cur[0]) + 1 if cur else 1
    if cur:
        conn.execute(StateRow.__table__.update().where(StateRow.key == "generation").values(value=str(gen)))
    else:
        conn.execute(StateRow.__table__.insert().values(key="generation", value=str(gen)))
    return gen


def db_size(engine: Engine, home: Path) -> int:
    if is_sqlite(engine):
        db = engine.url.database or ""
        if db.startswith("file:"):  # a read-only URI
            db = unquote(db[5:].split("?")[0])
        db = Path(db)
        return sum(p.stat().st_size for p in [db, Path(str(db) + "-wal")] if p.exists())
    with engine.connect() as c:
        try:
            return int(c.execute(sql("SELECT pg_database_size(current_database())")).scalar() or 0)
        except Exception:
            return 0
