"""Shared fixtures: a real install (database, keys, catalog, demo commune) per test session.

The database is SQLite in a temporary instance folder, or PostgreSQL when
KIOSK_TEST_DATABASE_URL is set (.ci/run does both). On CI (CI=true) a test that would be skipped
for a missing PostgreSQL or browser fails instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from storage.runtime import Runtime

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_DATABASE_URL = os.environ.get("KIOSK_TEST_DATABASE_URL")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if ON_CI and skipped:
        if reporter:
            reporter.write_line(f"CI: {skipped} test(s) skipped; on CI a skip is a failure.")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def database_url(instance_dir: Path) -> str:
    return TEST_DATABASE_URL or f"sqlite:///{instance_dir / 'kiosk.db'}"


@pytest.fixture(scope="session")
def app(instance_dir: Path, database_url: str) -> Iterator[Flask]:
    # Everything the app logs during the suite goes to a file that is checked at the end.
    log_file = instance_dir / "suite.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    from application import create_app

    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(instance_dir),
        "DATABASE_URL": database_url,
        "PUBLIC_BASE_URL": "http://kiosk.test",
    }
    bootstrap = create_app(config, require_keys=False)
    result = bootstrap.test_cli_runner().invoke(args=["init", "--demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    application = create_app(config, require_keys=True)
    yield application
    runtime: Runtime = application.extensions["kiosk"]
    logging.getLogger().removeHandler(handler)
    handler.close()
    leaks = _personal_data_in_clear(runtime, instance_dir, log_file)
    runtime.db.dispose()
    bootstrap.extensions["kiosk"].db.dispose()
    assert not leaks, f"personal data in clear: {leaks}"


def _personal_data_in_clear(runtime: Runtime, instance_dir: Path, log_file: Path) -> list[str]:
    """Every CCCD and phone number a test typed in, searched for in the database (files, or all
    rows on PostgreSQL), the uploads folder and the log: none may be there in clear."""
    from sqlalchemy import text

    from tests.citizen import SUBMITTED_SECRETS

    needles = {n for n in SUBMITTED_SECRETS if n}
    e164 = {"+84" + n[1:] for n in needles if n.startswith("0") and len(n) == 10}
    needles |= e164
    haystacks: dict[str, bytes] = {}
    if runtime.db.dialect == "sqlite":
        for path in instance_dir.glob("kiosk.db*"):
            haystacks[path.name] = path.read_bytes()
    else:
        with runtime.db.reading() as s:
            tables = s.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
            for table in list(tables):
                rows = s.execute(text(f'SELECT t::text FROM "{table}" t')).scalars()  # noqa: S608
                haystacks[table] = "\n".join(rows).encode()
    for path in Path(runtime.upload_dir).rglob("*"):
        if path.is_file():
            haystacks[f"uploads/{path.name}"] = path.read_bytes()
    haystacks["log"] = log_file.read_bytes() if log_file.exists() else b""
    return [
        f"{needle[:4]}… in {where}"
        for needle in sorted(needles)
        for where, data in haystacks.items()
        if needle.encode() in data
    ]


@pytest.fixture()
def runtime(app: Flask) -> Runtime:
    rt: Runtime = app.extensions["kiosk"]
    return rt


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()
