"""gunicorn.conf.py's worker start-up: the holiday tables loaded and the loaded app set aside
from the garbage collector's full collections, for our app only."""

from __future__ import annotations

import gc
import runpy
from pathlib import Path
from types import SimpleNamespace

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
