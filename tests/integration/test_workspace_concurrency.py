"""Conflicting staff actions at the same moment, on SQLite and on PostgreSQL.

Threads act on one dossier at once through the real service and real transactions. On SQLite the
write lock taken at BEGIN serialises them; on PostgreSQL the dossier's version counter makes every
write but the first match no row. Either way exactly one action happens and every other caller
gets a clean refusal (Conflict or ActionRefused), never an error, a double transition or a fork in
the audit chain.

Each engine gets a fresh install of its own (keys, schema, catalog, demo commune); PostgreSQL in a
throw-away database on the local server (KIOSK_TEST_POSTGRES_URL to use another one).
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from flask import Flask
from sqlalchemy import delete, func, insert, select, update

from core import audit_log, staff_auth, workspace
from core.accounts import Role
from core.dossier import DossierState
from core.sealing import seal
from core.staff_auth import StaffIdentity
from core.workspace import ActionRefused, Conflict
from storage.models import AuditEvent, Dossier, DossierEvent, StaffUser
from storage.runtime import Runtime
from tests.staff_support import (
    dossier_row,
    identity,
    install,
    make_commune,
    make_dossier,
    make_user,
    postgres_available,
    postgres_database,
)

POSTGRES_URL = os.environ.get(
    "KIOSK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Flask, Runtime]]:
    instance: Path = tmp_path_factory.mktemp(f"workspace-{request.param}")
    if request.param == "sqlite":
        with install(instance, f"sqlite:///{instance / 'kiosk.db'}") as pair:
            yield pair
        return
    if not postgres_available(POSTGRES_URL):
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    with postgres_database(POSTGRES_URL) as url, install(instance, url) as pair:
        yield pair


def race(n: int, work: Callable[[int], str]) -> Counter[str]:
    """Run `work(i)` in n threads released together; count what each returned or raised."""
    barrier = threading.Barrier(n)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            result = work(i)
        except Conflict:
            result = "conflict"
        except ActionRefused:
            result = "refused"
        except Exception as exc:  # noqa: BLE001 - the test asserts there are none
            result = f"error {type(exc).__name__}: {exc}"
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def claimed_dossier(rt: Runtime) -> tuple[object, StaffIdentity, str, int]:
    commune = make_commune(rt)
    official = identity(rt, make_user(rt, commune, Role.OFFICIAL, procedures=("khai-sinh",))[0])
    code = make_dossier(rt, commune, "khai-sinh", now=NOW)
    with rt.db.writing() as s:
        workspace.act(
            s, official, code, "claim", expected_version=None, reason=None, keys=rt.keys,
            calendar=rt.calendar, now=NOW,
        )  # fmt: skip
    return commune, official, code, dossier_row(rt, commune, code).row_version  # type: ignore[arg-type]


def decisions(rt: Runtime, commune_id: int, code: str) -> list[str]:
    with rt.db.reading() as s:
        return list(
            s.scalars(
                select(DossierEvent.action)
                .join(Dossier, Dossier.id == DossierEvent.dossier_id)
                .where(
                    Dossier.commune_id == commune_id,
                    Dossier.code == code,
                    DossierEvent.action.in_(["approve", "refuse"]),
                )
            )
        )


@pytest.mark.parametrize("with_version", [True, False], ids=["form-version", "no-version"])
def test_twenty_approve_or_refuse_at_once_make_one_transition(
    engine: tuple[Flask, Runtime], with_version: bool
) -> None:
    _, rt = engine
    commune, official, code, version = claimed_dossier(rt)

    def decide(i: int) -> str:
        action = "approve" if i % 2 == 0 else "refuse"
        with rt.db.writing() as s:
            workspace.act(
                s, official, code, action,
                expected_version=version if with_version else None,
                reason="Thiếu giấy chứng sinh bản chính.", keys=rt.keys, calendar=rt.calendar,
                now=NOW + timedelta(minutes=1),
            )  # fmt: skip
        return f"won {action}"

    outcomes = race(20, decide)
    wins = {k: v for k, v in outcomes.items() if k.startswith("won")}
    assert sum(wins.values()) == 1, outcomes
    assert set(outcomes) - set(wins) <= {"conflict", "refused"}, outcomes
    assert sum(outcomes.values()) == 20
    winner = next(iter(wins)).split()[1]
    row = dossier_row(rt, commune, code)  # type: ignore[arg-type]
    assert row.state == (DossierState.APPROVED if winner == "approve" else DossierState.REFUSED)
    assert row.row_version == version + 1
    assert decisions(rt, commune.id, code) == [winner]  # type: ignore[attr-defined]
    with rt.db.reading() as s:
        assert audit_log.verify(s).ok


def test_two_officials_never_both_claim(engine: tuple[Flask, Runtime]) -> None:
    _, rt = engine
    commune = make_commune(rt)
    officials = [
        identity(rt, make_user(rt, commune, Role.OFFICIAL, procedures=("khai-sinh",))[0])
        for _ in range(4)
    ]
    code = make_dossier(rt, commune, "khai-sinh", now=NOW)

    def claim(i: int) -> str:
        who = officials[i % len(officials)]
        with rt.db.writing() as s:
            workspace.act(
                s, who, code, "claim", expected_version=None, reason=None, keys=rt.keys,
                calendar=rt.calendar, now=NOW,
            )  # fmt: skip
        return f"won {who.user_id}"

    outcomes = race(12, claim)
    wins = [k for k in outcomes if k.startswith("won")]
    assert len(wins) == 1 and outcomes[wins[0]] == 1, outcomes
    assert set(outcomes) - set(wins) <= {"conflict", "refused"}, outcomes
    row = dossier_row(rt, commune, code)
    assert row.state == DossierState.PROCESSING
    assert row.assigned_to == int(wins[0].split()[1])


def test_a_totp_code_opens_one_session_even_sent_twice_at_once(
    engine: tuple[Flask, Runtime],
) -> None:
    _, rt = engine
    commune = make_commune(rt)
    user_id = make_user(rt, commune, Role.OFFICIAL, procedures=("khai-sinh",))[0]
    secret = pyotp.random_base32()
    with rt.db.writing() as s:
        user = s.get(StaffUser, user_id)
        assert user is not None
        user.totp_secret_sealed = seal(
            secret.encode(), rt.keys.sealing, context=staff_auth.totp_context(user_id)
        )
        tokens = [
            staff_auth.start_session(s, user, second_factor_done=False, now=NOW) for _ in range(8)
        ]
    who = identity(rt, user_id)
    half_open = [
        replace(who, session_id=staff_auth.token_id(t), second_factor_done=False) for t in tokens
    ]
    now = datetime.now(UTC)
    code = pyotp.TOTP(secret).at(now)

    def submit(i: int) -> str:
        check = staff_auth.check_second_factor(
            rt.db, half_open[i], code, keyring=rt.keys.sealing, counter=rt.rate,
            address=f"10.0.0.{i}", now=now,
        )  # fmt: skip
        return "opened" if check.ok else "refused"

    outcomes = race(8, submit)
    assert outcomes == Counter({"opened": 1, "refused": 7}), outcomes


def test_concurrent_audit_appends_keep_one_unbroken_chain(engine: tuple[Flask, Runtime]) -> None:
    _, rt = engine
    with rt.db.reading() as s:
        before = s.scalar(select(func.count()).select_from(AuditEvent)) or 0

    def append(i: int) -> str:
        for j in range(10):
            with rt.db.writing() as s:
                audit_log.record(
                    s, actor=f"test:{i}", action="test.append", target=f"n:{j}", commune_id=None,
                    detail={"i": i, "j": j}, now=datetime.now(UTC),
                )  # fmt: skip
        return "done"

    assert race(8, append) == Counter({"done": 8})
    with rt.db.reading() as s:
        seqs = list(s.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
        check = audit_log.verify(s)
    assert check.ok, check.reason.en
    assert len(seqs) == before + 80 and seqs == list(range(1, len(seqs) + 1))


def test_audit_verify_finds_an_edited_and_a_deleted_row(engine: tuple[Flask, Runtime]) -> None:
    app, rt = engine
    with rt.db.writing() as s:
        rows = [
            audit_log.record(
                s, actor="cli", action="test.tamper", target=f"n:{i}", commune_id=None,
                detail={"i": i}, now=NOW,
            ).seq
            for i in range(3)
        ]  # fmt: skip
    cli = app.test_cli_runner()
    intact = cli.invoke(args=["audit", "verify"])
    assert intact.exit_code == 0 and "INTACT" in intact.output, intact.output
    head = cli.invoke(args=["audit", "head"]).output.strip()
    assert head.startswith(f"{rows[-1]}:")

    edited = rows[1]
    with rt.db.writing() as s:
        original = s.get(AuditEvent, edited)
        assert original is not None
        kept = {c.key: getattr(original, c.key) for c in AuditEvent.__table__.columns}
        s.execute(update(AuditEvent).where(AuditEvent.seq == edited).values(actor="someone else"))
    broken = cli.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert f"BROKEN at record {edited}" in broken.output and "changed" in broken.output

    with rt.db.writing() as s:
        s.execute(update(AuditEvent).where(AuditEvent.seq == edited).values(actor=kept["actor"]))
        s.execute(delete(AuditEvent).where(AuditEvent.seq == edited))
    gone = cli.invoke(args=["audit", "verify"])
    assert gone.exit_code == 1 and f"BROKEN at record {edited}" in gone.output
    assert "missing" in gone.output

    with rt.db.writing() as s:
        s.execute(insert(AuditEvent).values(**kept))
    # A rewrite of the tail cannot pass an anchor written down before.
    assert cli.invoke(args=["audit", "verify", "--anchor", head]).exit_code == 0
    assert cli.invoke(args=["audit", "verify", "--anchor", "1:" + "0" * 64]).exit_code == 1
    assert cli.invoke(args=["audit", "verify", "--anchor", "nonsense"]).exit_code == 2
