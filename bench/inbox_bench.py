"""Inbox page server time with 1,000,000 dossiers across 100 communes, SQLite and PostgreSQL.

    .venv/bin/python bench/inbox_bench.py [--engine sqlite|postgresql|both] [--dossiers 1000000]
        [--communes 100] [--requests 400] [--keep]

For each engine: a fresh install (init --demo) in a temporary folder (and, for PostgreSQL, a
database created for the run and dropped after it, on postgresql+psycopg://postgres@127.0.0.1:5432
unless KIOSK_BENCH_POSTGRES_URL says otherwise). Then 100 communes, an official (three procedures)
and a leader in each, and the dossiers, written with bulk inserts: executemany in batches on
SQLite, COPY on PostgreSQL (never through the service: signing a million dossiers would measure
Ed25519, not the queue). The mix is a commune's after two years: most dossiers closed (returned,
refused, withdrawn), a few percent open and due around today, some overdue.

Then GET /can-bo/ho-so through the Flask test client (the whole request: session lookup, scope,
the keyset query, the summary counts, rendering) for officials and leaders of random communes,
with the filters an official uses (none, overdue, due today, one procedure, one state) and deep
keyset pages (the 20th page of returned dossiers). Prints p50, p95 and max per case and overall.
The sealed data column holds 300 bytes instead of a real dossier's few kilobytes: the queue
never reads it, but the database files are then smaller than a real install's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

PG_ADMIN = os.environ.get(
    "KIOSK_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
NOW = datetime.now(UTC)
STATES = [  # (state, share): two years of a commune's dossiers
    ("returned", 0.80),
    ("refused", 0.05),
    ("withdrawn", 0.02),
    ("approved", 0.02),
    ("received", 0.05),
    ("processing", 0.03),
    ("supplement_requested", 0.02),
    ("supplemented", 0.01),
]
OPEN = {"approved", "received", "processing", "supplement_requested", "supplemented"}
SETTLED = {"returned", "refused", "withdrawn", "approved"}


@contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg

    name = f"kiosk_bench_{secrets.token_hex(6)}"
    plain = make_url(PG_ADMIN).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def build_app(instance: Path, url: str) -> Any:
    from application import create_app

    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": url,
        "PUBLIC_BASE_URL": "http://kiosk.bench",
    }
    boot = create_app(config, require_keys=False)
    result = boot.test_cli_runner().invoke(args=["init", "--demo"])
    if result.exit_code != 0:
        raise SystemExit(result.output)
    boot.extensions["kiosk"].db.dispose()
    return create_app(config, require_keys=True)


def make_communes(runtime: Any, count: int) -> list[dict[str, Any]]:
    """Communes with the catalog enabled, an official (3 procedures) and a leader each."""
    from core.accounts import hash_password
    from core.install import CommuneSpec, enable_procedures, ensure_commune, sync_catalog
    from storage.models import CommuneProcedure, StaffProcedure, StaffUser

    password_hash = hash_password("bench " + secrets.token_hex(8))  # one Argon2 run, shared
    out = []
    with runtime.db.writing() as s:
        versions = sync_catalog(s, runtime.catalog, now=NOW)
        codes = sorted(versions)
        for i in range(count):
            spec = CommuneSpec(
                code=f"{60000 + i}",
                slug=f"bench-{i}",
                name=f"Xã Thử {i}",
                province_code="79",
                province_name="Thành phố Hồ Chí Minh",
            )
            commune = ensure_commune(s, spec, now=NOW)
            enable_procedures(s, commune, versions, now=NOW)
            procs = codes[i % len(codes) :][:3] or codes[:3]
            users = {}
            for role in ("official", "leader"):
                user = StaffUser(
                    commune_id=commune.id,
                    username=f"bench{i}.{role}",
                    display_name=f"Cán bộ {i} {role}",
                    role=role,
                    password_hash=password_hash,
                    password_changed_at=NOW - timedelta(days=30),
                    must_change_password=False,
                    active=True,
                    created_at=NOW - timedelta(days=30),
                )
                s.add(user)
                s.flush()
                users[role] = user.id
            for code in procs:
                s.add(StaffProcedure(user_id=users["official"], code=code))
            version_ids = dict(
                s.execute(
                    select(CommuneProcedure.code, CommuneProcedure.version_id).where(
                        CommuneProcedure.commune_id == commune.id
                    )
                ).all()
            )
            out.append(
                {
                    "id": commune.id,
                    "code": spec.code,
                    "procs": procs,
                    "all_procs": codes,
                    "versions": version_ids,
                    "official": users["official"],
                    "leader": users["leader"],
                }
            )
    return out


def dossier_rows(communes: list[dict[str, Any]], total: int, rng: random.Random) -> Iterator[dict]:
    per = total // len(communes)
    names, weights = zip(*STATES, strict=True)
    filler = "v1.k." + "A" * 295
    today = NOW.date()
    for c in communes:
        seq_by_day: dict[date, int] = {}
        # Each commune handles mostly its official's procedures, some others.
        for n in range(per):
            state = rng.choices(names, weights)[0]
            code = rng.choice(c["procs"]) if rng.random() < 0.8 else rng.choice(c["all_procs"])
            if state in OPEN:
                received = NOW - timedelta(days=rng.uniform(0, 20), minutes=rng.uniform(0, 600))
            else:
                received = NOW - timedelta(days=rng.uniform(10, 730), minutes=rng.uniform(0, 600))
            day = received.date()
            seq_by_day[day] = seq_by_day.get(day, 0) + 1
            due = (received + timedelta(days=rng.choice((0, 3, 5, 7, 12, 15)))).date()
            if state in OPEN and rng.random() < 0.15:
                due = today - timedelta(days=rng.randint(1, 6))  # overdue
            closed = None
            if state in SETTLED:
                closed = received + timedelta(days=rng.uniform(0.1, 14))
            yield {
                "public_id": secrets.token_hex(16),
                "commune_id": c["id"],
                "code": f"{c['code']}-{day:%y%m%d}-{seq_by_day[day]:04d}",
                "procedure_code": code,
                "procedure_version_id": c["versions"][code],
                "poster_id": None,
                "state": state,
                "idempotency_key": hashlib.sha256(f"{c['id']}|{n}".encode()).hexdigest(),
                "secret_hash": "0" * 64,
                "sealed_data": filler,
                "lang": "vi",
                "consent_version": "nd13-2023/v1",
                "received_at": received,
                "due_date": due,
                "original_due_date": due,
                "apology_sent_at": None,
                "paused_since": NOW if state == "supplement_requested" else None,
                "fee_amount": 0,
                "fee_paid_at": None,
                "fee_paid_by": None,
                "assigned_to": c["official"] if state not in ("received", "withdrawn") else None,
                "closed_at": closed,
                "purged_at": None,
                "signature_key_id": "bench",
                "signature": "s" * 88,
                "content_hash": "0" * 64,
                "row_version": 1,
            }


def load_sqlite(runtime: Any, rows: Iterator[dict], batch: int = 20_000) -> None:
    from storage.models import Dossier

    chunk: list[dict] = []
    with runtime.db.engine.begin() as conn:
        for row in rows:
            chunk.append(row)
            if len(chunk) >= batch:
                conn.execute(insert(Dossier), chunk)  # executemany
                chunk = []
        if chunk:
            conn.execute(insert(Dossier), chunk)
        conn.exec_driver_sql("ANALYZE")


def load_postgres(runtime: Any, rows: Iterator[dict]) -> None:
    columns = None
    raw = runtime.db.engine.raw_connection()
    try:
        cur = raw.cursor()
        first = next(rows)
        columns = list(first)
        statement = f"COPY dossier ({', '.join(columns)}) FROM STDIN"
        with cur.copy(statement) as copy:
            copy.write_row([first[c] for c in columns])
            for row in rows:
                copy.write_row([row[c] for c in columns])
        raw.commit()
        cur.execute("ANALYZE dossier")
        raw.commit()
    finally:
        raw.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(
    app: Any, runtime: Any, communes: list[dict], requests: int, rng: random.Random
) -> None:
    from core.staff_auth import start_session
    from storage.models import StaffUser

    clients: dict[int, Any] = {}

    def client_for(user_id: int) -> Any:
        if user_id not in clients:
            with runtime.db.writing() as s:
                token = start_session(
                    s, s.get(StaffUser, user_id), second_factor_done=True, now=datetime.now(UTC)
                )
            c = app.test_client()
            c.set_cookie("kiosk_staff", token, path="/can-bo")
            clients[user_id] = c
        return clients[user_id]

    cases = {
        "official, default": lambda c: (c["official"], ""),
        "official, overdue": lambda c: (c["official"], "?han=overdue"),
        "official, due today": lambda c: (c["official"], "?han=today"),
        "official, one procedure": lambda c: (c["official"], f"?thu_tuc={c['procs'][0]}"),
        "leader, every open": lambda c: (c["leader"], "?trang_thai=open"),
        "leader, returned p.1": lambda c: (c["leader"], "?trang_thai=returned"),
    }
    timings: dict[str, list[float]] = {name: [] for name in cases}
    timings["leader, returned p.20 (keyset)"] = []
    # Warm up: connections, templates, the catalog's parsed definitions.
    for c in communes[:5]:
        for make in cases.values():
            user, query = make(c)
            client_for(user).get("/can-bo/ho-so" + query)
    import re

    for i in range(requests):
        c = rng.choice(communes)
        name = list(cases)[i % len(cases)]
        user, query = cases[name](c)
        client = client_for(user)
        start = time.perf_counter()
        response = client.get("/can-bo/ho-so" + query)
        timings[name].append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (response.status_code, query)
        if name == "leader, returned p.1" and (i // len(cases)) % 3 == 0:
            # Walk 19 more pages, timing the last one.
            html = response.get_data(as_text=True)
            for page in range(19):
                found = re.search(r'href="([^"]*sau=[^"]+)"', html)
                if not found:
                    break
                url = found.group(1).replace("&amp;", "&")
                start = time.perf_counter()
                response = client.get(url)
                elapsed = (time.perf_counter() - start) * 1000
                html = response.get_data(as_text=True)
                if page == 18:
                    timings["leader, returned p.20 (keyset)"].append(elapsed)
    everything = [t for values in timings.values() for t in values]
    print(f"  {'case':<34} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, values in timings.items():
        if values:
            print(
                f"  {name:<34} {len(values):>4} {statistics.median(values):>8.1f} "
                f"{percentile(values, 95):>8.1f} {max(values):>8.1f}"
            )
    print(
        f"  {'ALL':<34} {len(everything):>4} {statistics.median(everything):>8.1f} "
        f"{percentile(everything, 95):>8.1f} {max(everything):>8.1f}"
    )
    p95 = percentile(everything, 95)
    print(f"  p95 {'under' if p95 < 50 else 'OVER'} 50 ms: {p95:.1f} ms")


def run(engine: str, args: argparse.Namespace) -> None:
    rng = random.Random(20260302)
    with tempfile.TemporaryDirectory(prefix=f"inbox-bench-{engine}-") as tmp:
        instance = Path(tmp)
        if engine == "sqlite":
            ctx: Any = _nullcontext(f"sqlite:///{instance / 'kiosk.db'}")
        else:
            ctx = postgres_database()
        with ctx as url:
            print(f"\n== {engine}: {args.dossiers:,} dossiers across {args.communes} communes")
            t0 = time.perf_counter()
            app = build_app(instance, url)
            runtime = app.extensions["kiosk"]
            communes = make_communes(runtime, args.communes)
            t1 = time.perf_counter()
            rows = dossier_rows(communes, args.dossiers, rng)
            if engine == "sqlite":
                load_sqlite(runtime, rows)
            else:
                load_postgres(runtime, rows)
            t2 = time.perf_counter()
            with runtime.db.reading() as s:
                count = s.execute(text("SELECT count(*) FROM dossier")).scalar_one()
            print(
                f"  setup {t1 - t0:.1f} s; loaded {count:,} dossiers in {t2 - t1:.1f} s "
                f"({count / (t2 - t1):,.0f} rows/s)"
            )
            if engine == "sqlite":
                size = (instance / "kiosk.db").stat().st_size
                print(f"  database file {size / 1e6:,.0f} MB")
            measure(app, runtime, communes, args.requests, rng)
            runtime.db.dispose()
            if args.keep:
                input(f"  kept {instance}; press Enter to delete it")


@contextmanager
def _nullcontext(value: str) -> Iterator[str]:
    yield value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--dossiers", type=int, default=1_000_000)
    parser.add_argument("--communes", type=int, default=100)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    engines = ("sqlite", "postgresql") if args.engine == "both" else (args.engine,)
    for engine in engines:
        run(engine, args)


if __name__ == "__main__":
    main()
