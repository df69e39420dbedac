"""`storage.statements.Prepared`: statements compiled once and run on the driver's cursor, in the
session's transaction, on whichever database the suite runs (SQLite, or PostgreSQL on CI)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Enum,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from storage.database import Database
from storage.models import UTCDateTime
from storage.runtime import Runtime
from storage.statements import Prepared, compile_all


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


@pytest.fixture()
def table(runtime: Runtime) -> Iterator[Table]:
    meta = MetaData()
    made = Table(
        f"prepared_{uuid.uuid4().hex[:8]}",
        meta,
        Column("id", Integer, primary_key=True),
        Column("name", String(50), nullable=False),
        Column("day", Date),
        Column("at", UTCDateTime),
        Column("colour", Enum(Colour, native_enum=False, length=16)),
        Column("flag", Boolean),
    )
    meta.create_all(runtime.db.engine)
    yield made
    meta.drop_all(runtime.db.engine)


def _insert(table: Table) -> Prepared:
    columns = ["id", "name", "day", "at", "colour", "flag"]
    return Prepared(insert(table).returning(table.c.id), columns)


ROW = {
    "id": 7,
    "name": "Nguyễn Thị Ánh",
    "day": date(2026, 2, 17),
    "at": datetime(2026, 12, 7, 3, 4, 5, tzinfo=UTC),
    "colour": Colour.GREEN,
    "flag": True,
}


def test_values_go_in_with_their_types_and_read_back_the_same(
    runtime: Runtime, table: Table
) -> None:
    db: Database = runtime.db
    with db.writing() as s:
        cursor = _insert(table).execute(s, ROW)
        assert cursor.fetchone()[0] == 7
        cursor.close()
    with db.reading() as s:
        row = s.execute(select(table)).one()._asdict()
    if row["at"].tzinfo is None:  # SQLite keeps no offset: the kiosk stores UTC
        row["at"] = row["at"].replace(tzinfo=UTC)
    assert row == ROW


def test_constants_of_the_statement_are_filled_in(runtime: Runtime, table: Table) -> None:
    db = runtime.db
    with db.writing() as s:
        for n in range(1, 4):
            _insert(table).execute(s, {**ROW, "id": n, "name": f"n{n}"}).close()
    # LIMIT 1 and `+ 0` are parameters SQLAlchemy binds itself; the caller gives only `least`.
    newest = Prepared(
        select(table.c.name)
        .where(table.c.id + 0 >= bindparam("least"))
        .order_by(table.c.id.desc())
        .limit(1)
    )
    with db.reading(snapshot=False) as s:
        cursor = newest.execute(s, {"least": 2})
        assert cursor.fetchall() == [("n3",)]
        cursor.close()
        cursor = newest.execute(s.connection(), {"least": 9})  # a Connection works too
        assert cursor.fetchall() == []
        cursor.close()


def test_a_refused_write_is_sqlalchemys_error_and_the_transaction_keeps_nothing(
    runtime: Runtime, table: Table
) -> None:
    db = runtime.db
    with db.writing() as s:
        _insert(table).execute(s, ROW).close()
    with pytest.raises(IntegrityError), db.writing() as s:
        _insert(table).execute(s, {**ROW, "id": 8, "name": "first"}).close()
        _insert(table).execute(s, {**ROW, "name": "same id"}).close()
    with pytest.raises(RuntimeError), db.writing() as s:
        _insert(table).execute(s, {**ROW, "id": 9}).close()
        raise RuntimeError("the request failed after the insert")
    with db.reading() as s:
        assert s.execute(select(table.c.id, table.c.name)).all() == [(7, ROW["name"])]


def test_a_missing_value_or_an_in_list_is_refused_before_the_database(
    runtime: Runtime, table: Table
) -> None:
    db = runtime.db
    with pytest.raises(KeyError, match="flag"), db.writing() as s:
        _insert(table).execute(s, {k: v for k, v in ROW.items() if k != "flag"})
    expanding = Prepared(select(table.c.id).where(table.c.id.in_(bindparam("ids", expanding=True))))
    with pytest.raises(ValueError, match="IN"), db.reading() as s:
        expanding.execute(s, {"ids": [1, 2]})
    with db.reading() as s:
        assert s.execute(select(table.c.id)).all() == []


def test_a_warm_up_compiles_what_it_can_for_the_database_and_leaves_the_rest(
    runtime: Runtime, table: Table
) -> None:
    from sqlalchemy import func
    from sqlalchemy.dialects.postgresql import aggregate_order_by

    dialect = runtime.db.engine.dialect
    plain = Prepared(select(table.c.id).where(table.c.name == bindparam("name")))
    expanding = Prepared(select(table.c.id).where(table.c.id.in_(bindparam("ids", expanding=True))))
    postgresql_only = Prepared(select(func.array_agg(aggregate_order_by(table.c.name, table.c.id))))
    compile_all(dialect)
    assert dialect.name in plain._by_dialect
    assert expanding._by_dialect == {}  # refused, as on its first use
    assert (dialect.name in postgresql_only._by_dialect) == (dialect.name == "postgresql")
    with runtime.db.reading() as s:  # what was compiled runs
        assert plain.execute(s, {"name": "nobody"}).fetchall() == []
