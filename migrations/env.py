"""Alembic environment: migrations run on the connection the caller passes in
(`storage.schema.upgrade`), or on KIOSK_DATABASE_URL when run by the `alembic` command."""

import os

from alembic import context
from sqlalchemy import create_engine

from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = os.environ.get("KIOSK_DATABASE_URL", "sqlite:///instance/kiosk.db")
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)
