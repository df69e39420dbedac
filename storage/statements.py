"""Statements compiled once and run straight on the driver's cursor: the citizen's hot path.

A submission runs the same handful of statements every time. Through `Session.execute` each one
costs SQLAlchemy's whole execution path (cache key, compiled-cache lookup, parameter processing,
result metadata, events) before and after the driver does its part: about a tenth of the
submission's instructions, measured with bench/instructions_submit.py. `Prepared` keeps what that
path works out once per dialect (the SQL text, the order of the parameters, each parameter's
type conversion) and runs the statement on the cursor of the session's own connection, inside its
transaction. It returns the driver's cursor: rows come back as the driver gives them, without the
result types' conversions, so a statement whose result needs them (dates on SQLite, enums) is
read through the session instead.

Driver errors come out as SQLAlchemy's (IntegrityError, OperationalError...), and a broken
connection is invalidated as SQLAlchemy would, so callers handle them the same way. Statement
events (echo, `before_cursor_execute`) do not see these statements.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import CompileError, DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_MISSING = object()
# Every Prepared made in this process: module constants, and the few variants built on first use
# and kept (services.py). Only ever appended to.
_all: list[Prepared] = []


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    # (name, constant value or _MISSING, type conversion or None), in the order the driver wants
    binds: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
    positional: bool


def compile_all(dialect: Dialect) -> int:
    """Compile for `dialect` every statement made so far (a new worker's warm-up, so that its
    first requests do not pay for it), but those that cannot be: written for another
    database's SQL (PostgreSQL's aggregate_order_by on SQLite), or not fit for Prepared (an
    IN list), which fail as they would on their first use. How many were compiled."""
    compiled = 0
    for statement in _all:
        with suppress(CompileError, ValueError):
            statement._compile(dialect)
            compiled += 1
    return compiled


class Prepared:
    """A Core statement compiled once per dialect, run on the driver's cursor.

    `columns`, for an INSERT, names the columns whose values every call gives (the statement's
    column defaults are not applied: give every value). Parameters that the statement itself
    holds (a LIMIT, a constant) are filled from it."""

    def __init__(self, statement: ClauseElement, columns: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.columns = list(columns) if columns is not None else None
        self._by_dialect: dict[str, _Compiled] = {}
        _all.append(self)

    def _compile(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is not None:
            return found
        compiled = cast(
            SQLCompiler, self.statement.compile(dialect=dialect, column_keys=self.columns)
        )
        if "POSTCOMPILE" in compiled.string or any(b.expanding for b in compiled.binds.values()):
            raise ValueError("Prepared cannot run a statement completed at execution (IN lists)")
        binds = []
        order = compiled.positiontup if compiled.positional else list(compiled.binds)
        for name in order or ():
            bind = compiled.binds[name]
            constant = (
                bind.value
                if bind.value is not None and not bind.required and bind.callable is None
                else _MISSING
            )
            convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
            binds.append((name, constant, convert))
        found = _Compiled(compiled.string, tuple(binds), bool(compiled.positional))
        self._by_dialect[dialect.name] = found
        return found

    def execute(self, bind: Session | Connection, params: Mapping[str, Any]) -> Any:
        """Run with `params` in `bind`'s transaction (a session's begins one if needed); returns
        the driver's cursor, to fetch from and close."""
        connection = bind.connection() if isinstance(bind, Session) else bind
        dialect = connection.dialect
        compiled = self._compile(dialect)
        values = []
        for name, constant, convert in compiled.binds:
            value = params[name] if constant is _MISSING else params.get(name, constant)
            values.append(convert(value) if convert is not None else value)
        arguments: Any = (
            tuple(values)
            if compiled.positional
            else {name: value for (name, _, _), value in zip(compiled.binds, values, strict=True)}
        )
        fairy = connection.connection
        cursor = fairy.cursor()
        try:
            cursor.execute(compiled.sql, arguments)
        except dialect.loaded_dbapi.Error as exc:
            cursor.close()
            invalidated = dialect.is_disconnect(exc, fairy.dbapi_connection, cursor)
            if invalidated:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                compiled.sql,
                arguments,
                exc,
                dialect.loaded_dbapi.Error,
                connection_invalidated=invalidated,
                dialect=dialect,
            ) from exc
        return cursor
