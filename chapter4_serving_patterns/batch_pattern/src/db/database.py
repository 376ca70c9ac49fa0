"""Engine and sessions: every SQL wait is bounded by DB_TIMEOUT_S, on SQLite and PostgreSQL.

SQLite: foreign keys on (they are off by default), WAL so that readers do not wait for a
writer, and write sessions that begin with `BEGIN IMMEDIATE`: a write transaction takes the
write lock up front and waits for it (busy timeout) instead of failing to upgrade a read lock
half-way: SQLite has one writer at a time, so two batch runs take turns chunk by chunk (no
row can be claimed twice) instead of failing with "database is locked". PostgreSQL: connect,
statement and lock time-outs; row locks (`FOR UPDATE SKIP LOCKED`) do the rest.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

WRITE_OPTION = "batch_write"  # execution option that marks a write session's connection


def describe_database_error(error: Exception) -> str:
    """The driver's first line (`connection refused`, ...) without SQL or parameters."""
    cause = getattr(error, "orig", None) or error
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}"[:300]


def create_db_engine(database_url: str, timeout_s: float) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, timeout_s)
    timeout_ms = int(timeout_s * 1000)
    return create_engine(
        url,
        pool_pre_ping=True,  # a connection that died with the server is replaced, not used
        pool_timeout=timeout_s,
        # A chunk's results are one executemany UPDATE: sent in pages, not one round trip a row.
        executemany_mode="values_plus_batch",
        connect_args={
            "connect_timeout": max(2, math.ceil(timeout_s)),  # libpq's minimum is 2 s
            "options": f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}",
        },
    )


def _sqlite_engine(url: URL, timeout_s: float) -> Engine:
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_timeout=timeout_s, connect_args={"timeout": timeout_s})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) instead of the driver's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


class Database:
    """The engine of one process and its two kinds of unit of work."""

    def __init__(self, database_url: str, timeout_s: float) -> None:
        self.engine = create_db_engine(database_url, timeout_s)
        self._reads = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(
            self.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        with self._reads() as session:
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """Commit is the caller's (repository functions commit their unit of work); anything
        left uncommitted is rolled back when the block ends."""
        with self._writes() as session:
            yield session

    def ping(self) -> None:
        """The server answers and the schema is there (a missing table fails like a dead
        server: the processes cannot work until `init_db` has run)."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1 FROM items LIMIT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
