"""What an operator sees when the install is wrong: one clear line, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine

from storage.schema import head_revision, upgrade

ROOT = Path(__file__).resolve().parent.parent.parent
FLASK = str(Path(sys.executable).parent / "flask")


def _flask(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLASK, "--app", "wsgi", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_database_url(tmp_path: Path) -> None:
    result = _flask(
        ["init"], {"KIOSK_INSTANCE_PATH": str(tmp_path), "KIOSK_DATABASE_URL": "not a url"}
    )
    assert result.returncode != 0
    assert "KIOSK_DATABASE_URL is not a database URL" in result.stderr
    _no_traceback(result)


def test_database_that_is_down(tmp_path: Path) -> None:
    result = _flask(
        ["init"],
        {
            "KIOSK_INSTANCE_PATH": str(tmp_path),
            "KIOSK_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/kiosk",
        },
    )
    assert result.returncode != 0
    assert "Cannot reach the database" in result.stderr
    assert "KIOSK_DATABASE_URL" in result.stderr
    _no_traceback(result)


def test_missing_instance_folder_before_init(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = _flask(
        ["users", "create", "--commune", "nhuan-duc", "--role", "official", "--username", "ab1"],
        {"KIOSK_INSTANCE_PATH": str(missing)},
    )
    assert result.returncode != 0
    assert "does not exist" in result.stderr and "flask --app wsgi init" in result.stderr
    _no_traceback(result)


def test_production_server_refuses_to_start_without_keys(tmp_path: Path) -> None:
    code = "import wsgi"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "KIOSK_INSTANCE_PATH": str(tmp_path), "KIOSK_ENV": "production"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "flask --app wsgi init" in result.stderr
    _no_traceback(result)


def test_corrupt_catalog_file_names_file_field_and_problem(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    shutil.copy(ROOT / "procedures" / "khai-sinh.toml", catalog / "khai-sinh.toml")
    broken = (ROOT / "procedures" / "ket-hon.toml").read_text()
    (catalog / "ket-hon.toml").write_text(broken.replace('kind = "person_name"', 'kind = "ten"', 1))
    result = _flask(
        ["init"], {"KIOSK_INSTANCE_PATH": str(tmp_path / "i"), "KIOSK_CATALOG_DIR": str(catalog)}
    )
    assert result.returncode != 0
    assert "ket-hon.toml: fields[0].kind: unknown kind 'ten'" in result.stderr
    _no_traceback(result)


def test_unusable_instance_folder(tmp_path: Path) -> None:
    # Root can read any folder, so unreadability is simulated by a keys "folder" that is a file.
    (tmp_path / "keys").write_text("not a folder")
    result = _flask(
        ["users", "create", "--role", "province_admin", "--username", "abc"],
        {"KIOSK_INSTANCE_PATH": str(tmp_path)},
    )
    assert result.returncode != 0
    assert "keys" in result.stderr
    _no_traceback(result)


def test_models_and_migrations_agree(database_url: str, tmp_path: Path) -> None:
    """Alembic's autogenerate finds nothing to do on a freshly migrated database."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from storage.models import Base

    url = f"sqlite:///{tmp_path / 'm.db'}" if database_url.startswith("sqlite") else database_url
    engine = create_engine(url)
    upgrade(engine)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
        revision = ctx.get_current_revision()
    engine.dispose()
    assert diff == []
    assert revision == head_revision()
