"""Engines and sessions for SQLite (one commune on a laptop) and PostgreSQL (a province).

SQLite is tuned for several gunicorn workers writing at once:
- WAL journal: readers never block the writer and the writer never blocks readers;
- `busy_timeout`: a writer waits for the lock instead of failing at once;
- write transactions start with `BEGIN IMMEDIATE`, taking the write lock at BEGIN, so a
  transaction that reads and then writes can never fail half-way with "database is locked"
  (a deferred transaction that upgrades its lock can, and SQLite cannot wait for it);
- every committed write is on disk before `commit()` returns (an acknowledged dossier must
  survive a power cut), but the fsync is made after the write lock is released: SQLite runs
  with `synchronous=NORMAL` (in WAL mode: no fsync at commit, only around checkpoints) and the
  connection then calls `fdatasync` on the WAL file itself. With `synchronous=FULL` SQLite fsyncs
  the WAL while holding the write lock, so every other writer waited for the disk too, and
  under load a descheduled writer held everyone up (bench/submit_bench.py). One fdatasync makes
  durable every frame written before it, by any process: concurrent writers share the disk's
  flushes instead of queueing for them. A WAL frame written and not yet synced is never
  acknowledged; a checkpoint syncs the WAL before copying it into the database (NORMAL does);
  connections that are not queued (an in-memory or URI database) keep `synchronous=FULL`;
- writers queue for their turn on a lock file beside the database (`flock`, `<db>-writers`)
  before `BEGIN IMMEDIATE` and leave the queue when they commit or roll back. SQLite's own busy
  handler polls, sleeping up to 100 ms between tries, so under load a writer sleeps long after the
  lock came free and most of the time nobody writes; a writer waiting on `flock` is woken by the
  kernel the moment the previous one finishes (bench/submit_bench.py). The queue only orders
  writers that SQLite serialises anyway: a nested write transaction in the same thread skips it
  (and meets `busy_timeout` as before), and a writer outside the queue still meets `busy_timeout`.
Read-only work uses plain deferred transactions on a second engine that shares nothing but the file.

PostgreSQL uses psycopg 3 with the default READ COMMITTED isolation; conflicting writes are
serialised by row locks and the dossiers' version counter. The citizen's quick reads
(`Database.reading(snapshot=False)`) go through read-only connections in autocommit: under READ
COMMITTED a transaction gives separate statements nothing more, and costs two round trips.
"""

from __future__ import annotations

import fcntl
import os
import select
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from storage.statements import Prepared

SQLITE_BUSY_TIMEOUT_MS = 10_000


class DatabaseConfigError(Exception):
    """The database URL or location is unusable; the message says what to do."""


_turns = threading.local()  # how many write turns this thread holds (nested transactions)


class _QueuedConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions wait their turn in the writers' queue."""

    queue_path: str | None = None
    wal_path: str | None = None  # set when this connection syncs the WAL itself after commit
    _queue_fd: int | None = None
    _in_turn: bool = False

    def wait_turn(self) -> None:
        if self.queue_path is None or self._in_turn:
            return
        if getattr(_turns, "held", 0):
            return  # nested in this thread's own write transaction: waiting would deadlock
        if self._queue_fd is None:
            self._queue_fd = os.open(self.queue_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._queue_fd, fcntl.LOCK_EX)
        self._in_turn = True
        _turns.held = getattr(_turns, "held", 0) + 1

    def end_turn(self) -> None:
        if self._in_turn and self._queue_fd is not None:
            self._in_turn = False
            _turns.held -= 1
            fcntl.flock(self._queue_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_turn()
        if self.wal_path is not None:
            self._sync_wal()

    def _sync_wal(self) -> None:
        """The commit's WAL frames onto the disk (with `synchronous=NORMAL` SQLite left them in
        the page cache), after the write lock is released. An error is raised to the caller:
        the commit is then not known to be durable, and is not acknowledged."""
        try:
            fd = os.open(self.wal_path or "", os.O_RDONLY)
        except FileNotFoundError:
            return  # no WAL: checkpointed into the database (synced) and removed
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_turn()
            if self._queue_fd is not None:
                os.close(self._queue_fd)
                self._queue_fd = None


# On the driver's cursor (storage/statements.py), errors wrapped as SQLAlchemy's ("database is
# locked" stays an OperationalError): a third of what `exec_driver_sql` cost here.
_BEGIN = Prepared(text("BEGIN"))
_BEGIN_IMMEDIATE = Prepared(text("BEGIN IMMEDIATE"))


def _sqlite_connect_hooks(engine: Engine, *, immediate: bool, database_path: str | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's own transaction handling is off).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        wal = cur.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        queued = immediate and database_path and isinstance(dbapi_conn, _QueuedConnection)
        # NORMAL where the connection syncs its commits itself (_QueuedConnection._sync_wal).
        cur.execute(f"PRAGMA synchronous = {'NORMAL' if queued and wal else 'FULL'}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()
        if queued and isinstance(dbapi_conn, _QueuedConnection):
            dbapi_conn.queue_path = f"{database_path}-writers"
            if wal:
                dbapi_conn.wal_path = f"{database_path}-wal"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if not immediate:
            _BEGIN.execute(conn, {}).close()
            return
        dbapi_conn = conn.connection.dbapi_connection
        queued = isinstance(dbapi_conn, _QueuedConnection)
        if queued:
            dbapi_conn.wait_turn()
        try:
            _BEGIN_IMMEDIATE.execute(conn, {}).close()
        except BaseException:
            if queued:
                dbapi_conn.end_turn()
            raise


def make_engine(url: str, *, immediate: bool = True, echo: bool = False) -> Engine:
    """An engine for `url`. `immediate=False` makes an engine for reading: for SQLite, plain
    deferred transactions (otherwise every transaction is a write transaction); for PostgreSQL,
    read-only connections in autocommit."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseConfigError(
            f"KIOSK_DATABASE_URL is not a database URL ({exc}). Examples: "
            "sqlite:////srv/kiosk/instance/kiosk.db or "
            "postgresql+psycopg://kiosk@127.0.0.1:5432/kiosk"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        database_path = None  # a file of ours: its writers queue, and its commits sync the WAL
        if database and database != ":memory:":
            folder = Path(database).resolve().parent
            if not folder.is_dir():
                raise DatabaseConfigError(
                    f"The folder for the SQLite database does not exist: {folder}. "
                    "Create it or run `flask --app wsgi init`."
                )
            if not parsed.query.get("uri"):
                database_path = str(Path(database).resolve())
        engine = create_engine(
            url,
            echo=echo,
            pool_pre_ping=False,
            connect_args={"factory": _QueuedConnection} if immediate and database_path else {},
        )
        _sqlite_connect_hooks(engine, immediate=immediate, database_path=database_path)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() not in ("psycopg", "psycopg2"):
            url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(False))
        reading: dict[str, Any] = {}
        if not immediate:
            # For `Database.reading(snapshot=False)`: read-only connections in autocommit.
            reading = {
                "isolation_level": "AUTOCOMMIT",
                "connect_args": {"options": "-c default_transaction_read_only=on"},
            }
        engine = create_engine(
            url, echo=echo, pool_size=5, max_overflow=5, pool_recycle=1800, **reading
        )
        event.listen(engine, "checkout", _check_alive)
        return engine
    raise DatabaseConfigError(
        f"Unsupported database '{backend}' in KIOSK_DATABASE_URL: use sqlite:/// or "
        "postgresql+psycopg://"
    )


def _check_alive(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """A pooled PostgreSQL connection is handed out only if the server has not closed it.

    What SQLAlchemy's `pool_pre_ping` does with a round trip per checkout (two per citizen's
    submission), without one: an idle connection has nothing to read, so a socket that polls
    readable holds the server's goodbye (a restart, an administrator's terminate) or its end.
    The pool then drops the connection and opens another (DisconnectionError)."""
    if dbapi_conn.closed or dbapi_conn.broken:
        raise DisconnectionError("connection closed")
    poller = select.poll()
    poller.register(dbapi_conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        raise DisconnectionError("the server closed the connection while it was idle")


@dataclass(frozen=True, slots=True)
class SubmissionConnections:
    """What `Database.submission()` gives: a connection to read on, and the write's opener."""

    reads: Connection
    storing: Callable[[], AbstractContextManager[Connection]]


@dataclass
class Database:
    """The write and read session factories of one database."""

    url: str
    engine: Engine
    read_engine: Engine
    write_sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    # Reads without a transaction (`reading(snapshot=False)`): on SQLite the read engine.
    statement_engine: Engine
    statement_sessions: sessionmaker[Session]
    _autocommit: Engine | None = None

    @classmethod
    def connect(cls, url: str, *, echo: bool = False) -> Database:
        engine = make_engine(url, immediate=True, echo=echo)
        if engine.dialect.name == "sqlite":
            read_engine = statement_engine = make_engine(url, immediate=False, echo=echo)
        else:
            read_engine, statement_engine = engine, make_engine(url, immediate=False, echo=echo)
        return cls(
            url=url,
            engine=engine,
            read_engine=read_engine,
            write_sessions=sessionmaker(engine, expire_on_commit=False),
            read_sessions=sessionmaker(read_engine, expire_on_commit=False),
            statement_engine=statement_engine,
            statement_sessions=sessionmaker(statement_engine, expire_on_commit=False),
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A session in one write transaction: committed on success, rolled back on error."""
        with self.write_sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self, *, snapshot: bool = True) -> Iterator[Session]:
        """A session for reading. `snapshot=False` is for a few quick reads that need not see
        one moment together (the citizen's form): on PostgreSQL each statement then reads the
        latest commits through a read-only connection in autocommit, which saves the BEGIN and
        COMMIT round trips and refuses any write (under READ COMMITTED a transaction gives
        separate statements nothing more); no server-side cursors (`yield_per`) there."""
        sessions = self.read_sessions if snapshot else self.statement_sessions
        with sessions() as session, session.begin():
            yield session

    @contextmanager
    def statements(self) -> Iterator[Connection]:
        """A bare connection for the citizen's hot path, whose statements run through
        `storage.statements.Prepared` on the driver's cursor: each one reads the latest commits
        on its own, as `reading(snapshot=False)` does, without a session's bookkeeping. A Core
        or ORM statement on it (`Session(bind=connection)`) opens a read transaction, rolled
        back at the end."""
        with self.statement_engine.connect() as connection:
            yield connection

    @contextmanager
    def writing_statements(self) -> Iterator[Connection]:
        """A connection in one write transaction (committed on success, rolled back on error),
        for the citizen's submission: `writing()` without a session's bookkeeping."""
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def storing(self) -> Iterator[Connection]:
        """A connection for `services.store_submission`, the one write of a citizen's
        submission. On PostgreSQL, in autocommit: that write is a single statement, hence its
        own transaction, committed when the server answers, so no lock (the day's dossier
        counter) is held across a round trip; it must be the only write on the connection. On
        SQLite, `writing_statements()`: one write transaction, in the writers' queue."""
        if self.dialect != "postgresql":
            with self.writing_statements() as connection:
                yield connection
            return
        with self._autocommit_engine().connect() as connection:
            yield connection

    @contextmanager
    def submission(self) -> Iterator[SubmissionConnections]:
        """The connections of one citizen's submission: `reads` for its reads (the latest
        commits, statement by statement, as `statements()`), `storing()` for its one write (as
        `storing()`). On PostgreSQL both are one connection in autocommit, checked out once for
        the whole request (each checkout costs the pool's and SQLAlchemy's bookkeeping); on
        SQLite the write opens its own transaction in the writers' queue when it comes."""
        if self.dialect != "postgresql":
            with self.statements() as connection:
                yield SubmissionConnections(connection, self.storing)
            return
        with self._autocommit_engine().connect() as connection:
            yield SubmissionConnections(connection, lambda: nullcontext(connection))

    def _autocommit_engine(self) -> Engine:
        # A pool of its own, in autocommit from the start: the write engine's connections switched
        # to autocommit for each checkout and back on return cost SQLAlchemy's characteristics
        # machinery ~100 us of CPU per submission (no round trip: psycopg sets it on the client).
        # A sync worker stores one submission at a time, so this pool holds one connection.
        if self._autocommit is None:
            self._autocommit = create_engine(
                self.engine.url,
                echo=self.engine.echo,
                isolation_level="AUTOCOMMIT",
                pool_size=1,
                max_overflow=4,
                pool_recycle=1800,
            )
            event.listen(self._autocommit, "checkout", _check_alive)
        return self._autocommit

    def dispose(self) -> None:
        for engine in {self.engine, self.read_engine, self.statement_engine, self._autocommit}:
            if engine is not None:
                engine.dispose()
