"""Database engine set-up: SQLite (WAL) in the library folder by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, unquote

from sqlalchemy import create_engine, event, make_url, select
from sqlalchemy import text as sql
from sqlalchemy.engine import Engine

from .schema import Base, StateRow

# `user:password@` in a URL, and a password given as a parameter (`?password=…`, a libpq
# `password=… host=…` string): neither may reach a message, a status or a log.
_URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^\s:/@]*:)[^\s@/]*@")
_PARAM_PASSWORD = re.compile(r"(?<![\w-])((?:ssl)?password|passwd|pwd)=[^&\s'\"]*", re.I)


def mask_url(text) -> str:
    """``text`` with the password of every database URL in it replaced by ``***``: the
    ``user:password@`` part and a ``password=`` parameter (query string or libpq key=value)."""
    return _PARAM_PASSWORD.sub(r"\1=***", _URL_PASSWORD.sub(r"\1***@", str(text)))


def redact_url(url) -> str:
    """A database URL fit to show (status, messages): SQLAlchemy's rendering with the password
    hidden, and a password passed as a query parameter masked too (``render_as_string`` keeps
    those). Text that is not a URL SQLAlchemy can parse is masked as text."""
    try:
        shown = make_url(str(url)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is still shown, masked
        shown = str(url)
    return mask_url(shown)


#: errnos of a write that failed for want of room: the disk, the user's quota, the file-size limit
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# How the stores say it in text: faiss (RuntimeError with the C library's message), tantivy
# (ValueError with Rust's "os error 28"), SQLite (SQLITE_FULL), PostgreSQL (SQLSTATE 53100).
_FULL_TEXT = re.compile(r"no space left on device|disk quota exceeded|file too large|database or disk is full|disk i/o error"
                        r"|could not extend file|os error (28|122|27)\b", re.I)
_OS_ERROR = {"28": errno.ENOSPC, "122": errno.EDQUOT, "27": errno.EFBIG}


def disk_full(exc: BaseException | None, where: str | os.PathLike | None = None) -> str | None:
    """The cause, in words (``no space left on device``, ``disk quota exceeded``, ``file too
    large``), when ``exc`` or an error it wraps is a write that failed for want of room; else None.

    SQLite says only "database or disk is full": with ``where`` (the library folder) given, the
    free space there tells which."""
    seen: set[int] = set()
    e = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return os.strerror(e.errno).lower()
        if getattr(e, "sqlstate", None) == "53100":  # PostgreSQL: disk_full
            return "no space left on device (database server)"
        m = _FULL_TEXT.search(str(e))
        if m:
            said = m.group(0).lower()
            if m.group(1):
                return os.strerror(_OS_ERROR[m.group(1)]).lower()
            if said in ("database or disk is full", "disk i/o error"):
                # SQLite cannot tell, and opening a WAL database says only "disk I/O error"
                # when there is no room for its -shm file: the folder's free space tells
                if where is not None and _nearly_full(where):
                    return "no space left on device"
                if said == "disk i/o error":
                    return None
                return said
            return "no space left on device" if said == "could not extend file" else said
        e = getattr(e, "orig", None) or e.__cause__ or e.__context__
    return None


def _nearly_full(where) -> bool:
    try:
        st = os.statvfs(where)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 4 << 20  # SQLite grows its files by pages: a few MB is "full"


def make_engine(url: str, *, read_only: bool = False, lock_dir: Path | None = None) -> Engine:
    """An engine with the schema in place.

    ``read_only`` (SQLite): open the file without writing anything beside it, for a library on
    a read-only mount or a full disk; ``mode=ro`` when a WAL file with frames is there to be
    read, else ``immutable=1`` (SQLite then needs no -shm file, which it could not create).
    ``lock_dir``: a folder for the file lock that makes two processes creating a new library at
    once take turns.
    """
    if url.startswith("sqlite"):
        if read_only:
            db = Path(make_url(url).database or "")
            wal = Path(str(db) + "-wal")
            # an empty -wal (left by an open that found no room for the -shm) holds nothing to read
            mode = "mode=ro" if wal.exists() and wal.stat().st_size > 0 else "immutable=1"
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
        # At most 15 connections a process, as SQLAlchemy's default pool allows (5 kept, 10 more
        # while needed), but all 15 kept: under sleuth serve's concurrent requests the default
        # closed and reopened a connection every third search (a new server process each time)
        eng = create_engine(url, pool_size=15, max_overflow=0)
        _ping_after_rest(eng)
    if not read_only:
        with _creation_lock(lock_dir):
            Base.metadata.create_all(eng)
    return eng


#: a pooled PostgreSQL connection that rested longer than this is pinged before it is handed out
REST_PING_S = 5.0


def _ping_after_rest(eng) -> None:
    """Ping a pooled connection at checkout only when it has rested :data:`REST_PING_S` seconds.

    A server restart or an idle timeout kills connections that wait in the pool; SQLAlchemy's
    ``pool_pre_ping`` finds them by a round trip before every checkout, which under ``sleuth
    serve``'s searches was 7% of the server's samples (each search checks one out). Connections
    in steady use skip it; a rested one is pinged the way ``pool_pre_ping`` pings (the dialect's
    ``do_ping``), and a dead one is replaced: raising ``DisconnectionError`` in a checkout event
    makes the pool connect again (SQLAlchemy's documented custom pessimistic handling). One that
    dies within the rest time fails its statement, and SQLAlchemy then renews the whole pool."""
    from sqlalchemy import exc

    @event.listens_for(eng, "checkin")
    def _rested(dbapi_conn, rec):  # noqa: ANN001
        rec.info["rested"] = time.monotonic()

    @event.listens_for(eng, "checkout")
    def _ping(dbapi_conn, rec, proxy):  # noqa: ANN001
        rested = rec.info.get("rested")
        if rested is None or time.monotonic() - rested < REST_PING_S:
            return
        try:
            alive = eng.dialect.do_ping(dbapi_conn)
        except Exception as e:  # noqa: BLE001 - any failure of the ping means a dead connection
            raise exc.DisconnectionError(f"a pooled connection died while it rested: {e}") from e
        if alive is False:
            raise exc.DisconnectionError("a pooled connection died while it rested")


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
