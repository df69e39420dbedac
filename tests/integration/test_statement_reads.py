"""Connections: `Database.reading(snapshot=False)` (the citizen's quick reads, without a
transaction on PostgreSQL, through connections that refuse to write) and pooled PostgreSQL
connections the server has closed."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from storage.database import Database
from storage.models import Commune
from storage.runtime import Runtime
from tests.staff_support import postgres_available, postgres_database


def test_quick_reads_see_what_is_committed_and_write_nothing(runtime: Runtime) -> None:
    db = runtime.db
    with db.writing() as s:
        s.execute(text("UPDATE commune SET phone = :p WHERE slug = 'nhuan-duc'"), {"p": "0283 1"})
    with db.reading(snapshot=False) as s:
        assert s.scalar(select(Commune.phone).where(Commune.slug == "nhuan-duc")) == "0283 1"
        communes = s.scalar(select(func.count()).select_from(Commune))
    if db.dialect == "postgresql":
        with pytest.raises(DBAPIError, match="read-only"), db.reading(snapshot=False) as s:
            s.execute(text("UPDATE commune SET phone = 'x' WHERE slug = 'nhuan-duc'"))
        with db.reading(snapshot=False) as s:
            assert s.scalar(select(Commune.phone).where(Commune.slug == "nhuan-duc")) == "0283 1"
            # Each statement is its own transaction: now() is when each one began.
            first, second = s.scalar(text("SELECT now()")), s.scalar(text("SELECT now()"))
            assert first != second
        with db.reading() as s:  # while a snapshot read is one transaction
            assert s.scalar(text("SELECT now()")) == s.scalar(text("SELECT now()"))
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Commune)) == communes


def test_a_connection_the_server_closed_is_replaced_without_an_error() -> None:
    """PostgreSQL restarted or an administrator ended a session: the next request gets a fresh
    connection from the pool, not an error (what pool_pre_ping did with a round trip)."""
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable")
    import psycopg

    with postgres_database() as url:
        db = Database.connect(url)
        admin_url = make_url(url).set(drivername="postgresql")
        admin = psycopg.connect(admin_url.render_as_string(hide_password=False), autocommit=True)
        try:
            for session_of in (db.writing, lambda: db.reading(snapshot=False)):
                with session_of() as s:
                    pid = s.scalar(text("SELECT pg_backend_pid()"))
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
                while admin.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]
                ).fetchone():
                    pass  # until the server has closed it
                with session_of() as s:
                    assert s.scalar(text("SELECT pg_backend_pid()")) != pid
        finally:
            admin.close()
            db.dispose()
