"""`Database.reading(snapshot=False)`: the citizen's quick reads, without a transaction on
PostgreSQL, through connections that refuse to write."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from storage.models import Commune
from storage.runtime import Runtime


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
