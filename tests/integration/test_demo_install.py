"""`init --demo` on a fresh install: a dozen dossiers at every stage, intact, and only once.

The dossiers go through the real services, so each one must open in the workspace with its data,
files and history matching their signatures; the queue, the leader's report and a citizen's
status page must have something to show; and a second `init --demo` must add nothing at all.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from application import create_app
from core import reports, workspace
from core.demo import DEMO_DOSSIERS
from core.install import DEMO_COMMUNE
from core.staff_auth import identity_of
from storage.models import (
    Attachment,
    AuditEvent,
    Commune,
    Dossier,
    DossierEvent,
    PosterDay,
    StaffUser,
)
from storage.runtime import Runtime

EXPECTED_STATES = {
    "received": 4,
    "processing": 2,
    "supplement_requested": 1,
    "supplemented": 1,
    "approved": 1,
    "returned": 3,
    "refused": 1,
}


def init_demo(config: dict[str, Any]) -> str:
    bootstrap = create_app(config, require_keys=False)
    result = bootstrap.test_cli_runner().invoke(args=["init", "--demo"], catch_exceptions=False)
    bootstrap.extensions["kiosk"].db.dispose()
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, dict[str, Any], str]]:
    instance: Path = tmp_path_factory.mktemp("demo-install")
    config: dict[str, Any] = {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'kiosk.db'}",
        "PUBLIC_BASE_URL": "http://kiosk.test",
    }
    output = init_demo(config)
    app = create_app(config, require_keys=True)
    yield app, config, output
    app.extensions["kiosk"].db.dispose()


def snapshot(runtime: Runtime) -> dict[str, int]:
    with runtime.db.reading() as s:
        counts = {
            model.__name__: int(s.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Dossier, DossierEvent, Attachment, AuditEvent)
        }
        counts["poster scans"] = int(s.scalar(select(func.sum(PosterDay.scans))) or 0)
    counts["files"] = sum(1 for p in Path(runtime.upload_dir).rglob("*") if p.is_file())
    return counts


def test_the_first_run_files_every_stage(fresh: tuple[Flask, dict[str, Any], str]) -> None:
    app, _, output = fresh
    runtime: Runtime = app.extensions["kiosk"]
    assert f"Demo dossiers: {len(DEMO_DOSSIERS)} ({len(DEMO_DOSSIERS)} added now)." in output
    with runtime.db.reading() as s:
        commune = s.scalar(select(Commune).where(Commune.slug == DEMO_COMMUNE.slug))
        assert commune is not None
        rows = list(s.scalars(select(Dossier).where(Dossier.commune_id == commune.id)))
        assert Counter(d.state for d in rows) == EXPECTED_STATES
        refused = next(d for d in rows if d.state == "refused")
        reason = s.scalar(
            select(DossierEvent.public_note).where(
                DossierEvent.dossier_id == refused.id, DossierEvent.action == "refuse"
            )
        )
        assert reason and "giấy tờ chứng minh" in reason
        assert sum(1 for d in rows if d.apology_sent_at is not None) == 1
        assert sum(1 for d in rows if d.poster_id is not None) == 5
        assert s.scalar(select(func.count()).select_from(Attachment)) >= 8


def test_every_demo_dossier_is_intact_and_in_the_queue(
    fresh: tuple[Flask, dict[str, Any], str],
) -> None:
    app, _, _ = fresh
    runtime: Runtime = app.extensions["kiosk"]
    now = datetime.now(UTC)
    with runtime.db.reading() as s:
        official = s.scalar(select(StaffUser).where(StaffUser.username == "nhuanduc.hotich"))
        assert official is not None
        identity = identity_of(s, official)
        codes = list(s.scalars(select(Dossier.code).order_by(Dossier.id)))
        for code in codes:
            page = workspace.dossier_page(
                s, identity, code, keys=runtime.keys, calendar=runtime.calendar, now=now
            )
            assert page.integrity.ok, (code, page.integrity.problems)
            assert page.data and page.history
            shown = [item.value for item in page.data]
            # dates as Vietnamese papers write them, mobile numbers as people say them
            assert not any(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) for v in shown), shown
            assert not any(v.startswith("+84") for v in shown), shown
            assert any(re.fullmatch(r"\d{2}/\d{2}/\d{4}", v) for v in shown), shown
        queue = workspace.inbox(
            s, identity, workspace.QueueFilter(), calendar=runtime.calendar, now=now
        )
        commune = s.get(Commune, official.commune_id)
        assert commune is not None
        period = reports.Period.month_to_date(runtime.calendar.local_date(now))
        board = reports.dashboard(s, commune, period, calendar=runtime.calendar, now=now)
    # received, processing and supplemented: what an official can act on now
    assert len(queue.rows) == 7
    assert queue.summary.overdue >= 2
    if runtime.calendar.is_working_day(runtime.calendar.local_date(now)):
        assert queue.summary.due_today >= 1
    assert board.total.in_progress == 8 and board.total.overdue >= 2


def test_the_printed_link_opens_the_citizens_status_page(
    fresh: tuple[Flask, dict[str, Any], str],
) -> None:
    app, _, output = fresh
    link = re.search(r"http://kiosk\.test(/tra-cuu\?ma=[0-9-]+&k=[A-Z0-9]+)", output)
    assert link, output
    client = app.test_client()
    page = client.get(link[1], follow_redirects=True).get_data(as_text=True)
    assert "Cần bổ sung giấy tờ" in page
    assert "giám định ADN" in page


def test_a_second_run_adds_nothing(fresh: tuple[Flask, dict[str, Any], str]) -> None:
    app, config, _ = fresh
    runtime: Runtime = app.extensions["kiosk"]
    before = snapshot(runtime)
    output = init_demo(config)
    assert f"Demo dossiers: {len(DEMO_DOSSIERS)} (0 added now)." in output
    assert snapshot(runtime) == before
    first_link = re.search(r"/tra-cuu\?ma=\S+", output)
    assert first_link and first_link[0] in fresh[2]  # the same code and secret again
