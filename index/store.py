"""Database engine set-up: SQLite (WAL) in the library folder by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event, select
from sqlalchemy import text as sql
from sqlalchemy.engine import Engine

from .schema import Base, StateRow


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn, _rec):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            # WAL lets searches read while an index run writes; NORMAL is durable at checkpoints
            # and safe against corruption on a kill, which is what resume needs.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()
    else:
        eng = create_engine(url, pool_pre_ping=True)
    Base.metadata.create_all(eng)
    return eng


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
        db = Path(engine.url.database or "")
        return sum(p.stat().st_size for p in [db, Path(str(db) + "-wal")] if p.exists())
    with engine.connect() as c:
        try:
            return int(c.execute(sql("SELECT pg_database_size(current_database())")).scalar() or 0)
        except Exception:
            return 0
