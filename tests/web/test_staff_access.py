"""The access matrix: every staff route × role × commune × procedure, no unexpected allow.

Two communes (A and B). In A: an official for birth registration, an official for marriage, a
leader and an admin; in B: an official, a leader and an admin; and a province admin. Targets: a
birth and a marriage dossier in A, a birth dossier in B (each with an attached paper), and an
account in each commune. Every route of the workspace blueprint is requested by every role on
every target; what is out of scope must answer 404 and leave an `access.denied` row in the audit
log, and nothing may change. A route added to the blueprint without a line here fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from core.accounts import Role
from storage.models import AuditEvent, Commune
from storage.runtime import Runtime
from tests.staff_support import (
    dossier_row,
    make_commune,
    make_dossier_with_file,
    make_user,
    sign_in_cookie,
)

KS, KH = "khai-sinh", "ket-hon"


@dataclass(frozen=True)
class Actor:
    name: str
    commune: str | None  # "A", "B" or None (province)
    role: Role
    procedures: tuple[str, ...] = ()


ACTORS = (
    Actor("A-official-birth", "A", Role.OFFICIAL, (KS,)),
    Actor("A-official-marriage", "A", Role.OFFICIAL, (KH,)),
    Actor("A-leader", "A", Role.LEADER),
    Actor("A-admin", "A", Role.ADMIN),
    Actor("B-official-birth", "B", Role.OFFICIAL, (KS,)),
    Actor("B-leader", "B", Role.LEADER),
    Actor("B-admin", "B", Role.ADMIN),
    Actor("province-admin", None, Role.PROVINCE_ADMIN),
)


@dataclass(frozen=True)
class DossierTarget:
    name: str
    commune: str
    procedure: str
    code: str
    attachment: str


@dataclass(frozen=True)
class UserTarget:
    commune: str
    user_id: int


@dataclass
class World:
    app: Flask
    runtime: Runtime
    communes: dict[str, Commune]
    clients: dict[str, FlaskClient]
    csrf: dict[str, str]
    dossiers: list[DossierTarget]
    users: list[UserTarget]


@pytest.fixture(scope="module")
def world(app: Flask) -> World:
    runtime: Runtime = app.extensions["kiosk"]
    communes = {"A": make_commune(runtime, "Xã A"), "B": make_commune(runtime, "Xã B")}
    clients, csrf = {}, {}
    for actor in ACTORS:
        commune = communes[actor.commune] if actor.commune else None
        user_id = make_user(runtime, commune, actor.role, procedures=actor.procedures)[0]
        client = app.test_client()
        client.set_cookie("kiosk_staff", sign_in_cookie(runtime, user_id), path="/can-bo")
        page = client.get("/can-bo/doi-mat-khau").get_data(as_text=True)
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert match, (actor, page[:300])
        clients[actor.name], csrf[actor.name] = client, match.group(1)
    dossiers = []
    for name, where, proc in (("A-birth", "A", KS), ("A-marriage", "A", KH), ("B-birth", "B", KS)):
        code, attachment = make_dossier_with_file(runtime, communes[where], proc)
        dossiers.append(DossierTarget(name, where, proc, code, attachment))
    users = [
        UserTarget(where, make_user(runtime, communes[where], Role.OFFICIAL, procedures=(KS,))[0])
        for where in ("A", "B")
    ]
    return World(app, runtime, communes, clients, csrf, dossiers, users)


def sees(actor: Actor, d: DossierTarget) -> bool:
    if actor.role not in (Role.OFFICIAL, Role.LEADER) or actor.commune != d.commune:
        return False
    return actor.role == Role.LEADER or d.procedure in actor.procedures


@dataclass(frozen=True)
class Probe:
    """One request and whether `actor` may make it (True: not a 404; False: a 404)."""

    label: str
    method: str
    url: str
    allowed: bool
    data: dict[str, str] | None = None


ProbeMaker = Callable[[World, Actor], list[Probe]]

OVERSEERS = (Role.LEADER, Role.ADMIN, Role.PROVINCE_ADMIN)


def per_dossier(method: str, suffix: str, rule: Callable[[Actor, DossierTarget], bool], **data):
    def make(w: World, a: Actor) -> list[Probe]:
        out = []
        for d in w.dossiers:
            url = f"/can-bo/ho-so/{d.code}{suffix.format(att=d.attachment)}"
            out.append(Probe(d.name, method, url, rule(a, d), dict(data) if data else None))
        return out

    return make


def per_user(method: str, suffix: str):
    def make(w: World, a: Actor) -> list[Probe]:
        return [
            Probe(
                f"user {u.commune}",
                method,
                f"/can-bo/nguoi-dung/{u.user_id}{suffix}",
                a.role == Role.ADMIN and a.commune == u.commune,
                {"active": "1"} if method == "POST" else None,
            )
            for u in w.users
        ]

    return make


def report(path: str):
    def make(w: World, a: Actor) -> list[Probe]:
        own = a.role in OVERSEERS
        other = "B" if a.commune == "A" else "A"
        return [
            Probe("own commune", "GET", path, own),
            Probe(
                "other commune",
                "GET",
                f"{path}?xa={w.communes[other].slug}",
                a.role == Role.PROVINCE_ADMIN,
            ),
        ]

    return make


def single(method: str, path: str, rule: Callable[[Actor], bool], **data: str) -> ProbeMaker:
    return lambda w, a: [Probe(path, method, path, rule(a), dict(data) if data else None)]


def anyone(_: Actor) -> bool:
    return True


# Every endpoint of the workspace blueprint, and how each role may reach it.
MATRIX: dict[str, ProbeMaker] = {
    "admin.login": single("GET", "/can-bo/dang-nhap", anyone),
    "admin.second_factor": single("GET", "/can-bo/dang-nhap/ma", anyone),
    "admin.enrol": single("GET", "/can-bo/bao-mat/xac-thuc-hai-buoc", anyone),
    "admin.password": single("GET", "/can-bo/doi-mat-khau", anyone),
    "admin.logout": single("POST", "/can-bo/dang-xuat", anyone),  # no CSRF token: stays in
    "admin.home": single("GET", "/can-bo/", anyone),
    "admin.inbox": single("GET", "/can-bo/ho-so", lambda a: a.role in (Role.OFFICIAL, Role.LEADER)),
    "admin.dossier": per_dossier("GET", "", sees),
    "admin.attachment": per_dossier("GET", "/tep/{att}", sees),
    # A stale version (0): allowed callers get 409 and nothing changes.
    "admin.act": per_dossier(
        "POST",
        "/thao-tac",
        lambda a, d: a.role == Role.OFFICIAL and sees(a, d),
        action="claim",
        version="0",
    ),
    "admin.apologise": per_dossier(
        "POST",
        "/xin-loi",
        sees,
        version="0",
        new_due="31/12/2030",
        reason="Cần xác minh.",
    ),
    "admin.reassign": per_dossier(
        "POST",
        "/giao-lai",
        lambda a, d: a.role == Role.LEADER and sees(a, d),
        version="0",
        to_user="1",
    ),
    "admin.report": report("/can-bo/bao-cao"),
    "admin.report_print": report("/can-bo/bao-cao/in"),
    "admin.report_csv": lambda w, a: report("/can-bo/bao-cao/thu-tuc.csv")(w, a)
    + report("/can-bo/bao-cao/ap-phich.csv")(w, a),
    "admin.users": single("GET", "/can-bo/nguoi-dung", lambda a: a.role == Role.ADMIN),
    "admin.user_new": lambda w, a: [
        Probe("form", "GET", "/can-bo/nguoi-dung/moi", a.role == Role.ADMIN),
        Probe("empty post", "POST", "/can-bo/nguoi-dung/moi", a.role == Role.ADMIN, {}),
    ],
    "admin.user_edit": per_user("GET", ""),
    "admin.user_active": per_user("POST", "/trang-thai"),
    "admin.user_password": per_user("POST", "/mat-khau"),
    "admin.user_second_factor": per_user("POST", "/xac-thuc"),
    "admin.audit_log": single("GET", "/can-bo/nhat-ky", lambda a: a.role in OVERSEERS),
}


def test_every_workspace_route_is_in_the_matrix(app: Flask) -> None:
    endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.")}
    assert endpoints == set(MATRIX)


def denied_count(runtime: Runtime) -> int:
    with runtime.db.reading() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "access.denied")
            )
            or 0
        )


@pytest.mark.parametrize("actor", ACTORS, ids=[a.name for a in ACTORS])
def test_access_matrix(world: World, actor: Actor) -> None:
    client = world.clients[actor.name]
    unexpected: list[str] = []
    for endpoint, make in MATRIX.items():
        for probe in make(world, actor):
            before = denied_count(world.runtime)
            data = None
            if probe.method == "POST":
                data = dict(probe.data or {})
                if endpoint != "admin.logout":
                    data["csrf_token"] = world.csrf[actor.name]
            response = client.open(probe.url, method=probe.method, data=data)
            after = denied_count(world.runtime)
            what = f"{endpoint} [{probe.label}] {probe.method} {probe.url} → {response.status_code}"
            if probe.allowed:
                if response.status_code in (401, 403, 404) or response.status_code >= 500:
                    unexpected.append("refused but allowed: " + what)
            else:
                if response.status_code != 404:
                    unexpected.append("ALLOWED but out of scope: " + what)
                elif after != before + 1:
                    unexpected.append("404 not audited: " + what)
    assert unexpected == []


def test_nothing_changed_under_the_matrix(world: World) -> None:
    for d in world.dossiers:
        row = dossier_row(world.runtime, world.communes[d.commune], d.code)
        assert row.state == "received" and row.assigned_to is None and row.apology_sent_at is None


def test_no_anonymous_access_anywhere_under_can_bo(app: Flask) -> None:
    """Every staff page of every blueprint sends a stranger to the sign-in page."""
    client = app.test_client()
    open_to_all = {"admin.login", "admin.logout"}
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/can-bo") or rule.endpoint in open_to_all:
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = re.sub(rf"<(?:[a-z]+:)?{arg}>", "1" if "int:" in rule.rule else "x", url)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            assert response.status_code in (302, 303), (rule.endpoint, method, url)
            assert "/can-bo/dang-nhap" in response.headers["Location"], (rule.endpoint, url)
            checked += 1
    assert checked >= len(MATRIX)


def test_a_denied_attempt_names_who_and_what(world: World) -> None:
    client = world.clients["A-official-marriage"]
    target = next(d for d in world.dossiers if d.name == "A-birth")
    assert client.get(f"/can-bo/ho-so/{target.code}").status_code == 404
    with world.runtime.db.reading() as s:
        row = s.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "access.denied")
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        ).one()
    assert row.target.startswith("dossier:") and '"reason":"procedure"' in row.detail
    assert row.commune_id == world.communes["A"].id
    assert datetime.fromisoformat(row.at) <= datetime.now(UTC)
