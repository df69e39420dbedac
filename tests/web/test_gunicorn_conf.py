"""gunicorn.conf.py's worker start-up: the holiday tables loaded, the first requests' one-time
work done (application.warm_up) and the loaded app set aside from the garbage collector's full
collections, for our app only."""

from __future__ import annotations

import gc
import json
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flask import Flask

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def test_a_worker_freezes_what_the_loaded_app_holds(app: Flask) -> None:
    settings = runpy.run_path(str(CONF))
    gc.unfreeze()
    try:
        settings["post_worker_init"](SimpleNamespace(wsgi=Flask("another")))
        assert gc.get_freeze_count() == 0  # not our app: left as it is
        settings["post_worker_init"](SimpleNamespace(wsgi=app))
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
    assert settings["worker_class"] == "sync"


_NEW_WORKER = """
import json, runpy, sys
from types import SimpleNamespace
from typing import Any

from sqlalchemy import inspect

from application import create_app
from core import services
from storage.models import Dossier

app = create_app({"TESTING": True, "INSTANCE_PATH": sys.argv[1], "DATABASE_URL": sys.argv[2]})
before = inspect(Dossier).configured
runtime = app.extensions["kiosk"]
runpy.run_path(sys.argv[3])["post_worker_init"](SimpleNamespace(wsgi=app))
print(json.dumps({
    "configured_before": before,
    "configured": inspect(Dossier).configured,
    "offer_compiled": sorted(services._OFFER_AND_PAPERS._by_dialect),
    "papers_compiled": sorted(services._DRAFT_PAPERS._by_dialect),
    "stores": sorted(map(list, services._stores)),
    "links": sorted(services._links),
    "connections": runtime.db.engine.pool.checkedin() + runtime.db.engine.pool.checkedout(),
}))
"""


def _new_worker(instance_dir: Path, database_url: str) -> dict[str, Any]:
    """What a worker of a new process holds once gunicorn.conf.py's post_worker_init has run."""
    out = subprocess.run(
        [sys.executable, "-c", _NEW_WORKER, str(instance_dir), database_url, str(CONF)],
        cwd=CONF.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "warm-up failed" not in out.stderr
    state: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return state


def test_a_new_worker_warms_up_without_a_database(app: Flask, instance_dir: Path) -> None:
    """A new worker does its first requests' one-time work before taking one, and none of it
    needs the database: a worker starts while PostgreSQL is down (nothing listens on port 9)."""
    state = _new_worker(instance_dir, "postgresql+psycopg://kiosk@127.0.0.1:9/kiosk")
    assert state["configured_before"] is False
    assert state["configured"] is True
    # The submission's statements, PostgreSQL's own SQL among them, compiled for PostgreSQL.
    assert state["offer_compiled"] == ["postgresql"]
    assert state["papers_compiled"] == ["postgresql"]
    assert [1, True] in state["stores"] and [0, False] in state["stores"]
    assert state["connections"] == 0


def test_on_sqlite_the_statements_written_for_postgresql_are_left_out(
    app: Flask, instance_dir: Path, tmp_path: Path
) -> None:
    state = _new_worker(instance_dir, f"sqlite:///{tmp_path / 'new.db'}")
    assert state["configured"] is True
    assert state["offer_compiled"] == []  # aggregate_order_by: PostgreSQL only
    assert state["papers_compiled"] == ["sqlite"]
    assert state["links"] == [1, 2] and state["stores"] == []
    assert not (tmp_path / "new.db").exists()  # no connection, so no file made
