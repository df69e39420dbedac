"""Load and faults: real citizens' submissions through gunicorn while workers, the whole server and
the database fail, and while slow clients hold connections open. Loopback only, bounded in time.

    .venv/bin/python bench/load_faults.py [--engine sqlite|postgresql|both]
        [--submissions 5000] [--clients 64]
        [--scenarios baseline,worker-kill,server-kill,db-outage,slow-clients]

Each citizen (a coroutine; 64 at once) does what a phone does: GET the birth-registration form,
read its CSRF token, draft id and session cookie, and POST the filled form (multipart, the values
of `procedures.samples.sample_values` and a small photo of the birth certificate). A 303 to the
receipt is the acknowledgement. On a dropped connection the citizen sends the same form again; on
the 503 "try again" answer too, after a pause (that answer is the form again with what was typed
and the same draft id, so a resend can never make a second dossier).

Scenarios, each on a fresh database (gunicorn -c gunicorn.conf.py, 4 sync workers):
- baseline: the submissions, nothing failing;
- worker-kill: the same while a random worker gets SIGKILL every 3 s (gunicorn respawns it);
- server-kill: the same, and at 40 % the whole server (master and workers) gets SIGKILL and is
  started again 1 s later, as systemd would;
- db-outage: the database stops answering for 20 s at 10 % of the run: SQLite is write-locked by
  another process (BEGIN IMMEDIATE held), PostgreSQL is stopped (`pg_ctl stop -m fast`) and
  started again;
- slow-clients: 300 connections trickle a byte a second (150 in their headers, 150 in a POST
  body) while normal requests are timed, against gunicorn sync workers directly, gunicorn gthread
  directly, and nginx (buffering) in front of sync workers when nginx is installed.

After each load scenario the script checks the database itself: every acknowledged submission is
stored exactly once (by its draft's idempotency key, and the receipt in the `bien_nhan` cookie
names that dossier), no dossier code is repeated, every dossier unseals and its Ed25519 signature
verifies with the commune's keys, every paper a dossier names is on disk and unseals to its
SHA-256, and (SQLite) `PRAGMA integrity_check` is ok. It prints throughput, p50/p99, counts, and
exits non-zero when anything was lost, duplicated or answered with a 5xx other than the 503 page.

PostgreSQL runs in a private cluster the script creates (initdb in a temporary folder, its own
port, fsync on, as user postgres), so stopping it disturbs nothing else on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PY = sys.executable
BIN = Path(PY).parent
HOST = "127.0.0.1"
SLUG, CODE = "nhuan-duc", "khai-sinh"
FORM_PATH = f"/x/{SLUG}/{CODE}"


def _pg_bin() -> Path:
    """The newest PostgreSQL server programs Debian installed (initdb, pg_ctl)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# --- A tiny HTTP/1.1 client on asyncio streams (one connection per request, as sync workers do) --


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    ms: float

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def cookies(self) -> dict[str, str]:
        out = {}
        for k, v in self.headers:
            if k.lower() == "set-cookie":
                pair = v.split(";", 1)[0]
                name, _, value = pair.partition("=")
                out[name.strip()] = value.strip()
        return out


class NoReply(Exception):
    """The connection was refused, reset or closed before a whole answer came back."""


async def http(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    timeout: float = 60,
) -> Reply:
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    except (OSError, TimeoutError) as exc:
        raise NoReply(type(exc).__name__) from None
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), timeout)
    except (OSError, TimeoutError) as exc:
        raise NoReply(type(exc).__name__) from None
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/1."):
        raise NoReply("incomplete")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    hdrs = [tuple(x.strip() for x in h.split(":", 1)) for h in header_lines if ":" in h]
    length = next((int(v) for k, v in hdrs if k.lower() == "content-length"), None)
    if length is not None and len(rest) < length:
        raise NoReply("truncated")
    return Reply(
        int(status_line.split()[1]),
        hdrs,  # type: ignore[arg-type]
        rest,
        (time.perf_counter() - started) * 1000,
    )


# --- The citizens --------------------------------------------------------------------------------


def photo() -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (900, 1200), (246, 244, 236))
    draw = ImageDraw.Draw(img)
    for y in range(80, 1150, 36):
        draw.line((60, y, 840, y), fill=(40, 40, 60), width=3)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()


@dataclass
class FormTemplate:
    values: list[dict[str, str]]
    file_field: str
    photo: bytes


def form_template() -> FormTemplate:
    from core.services import CONSENT_VERSION
    from procedures.catalog import load_catalog
    from procedures.samples import sample_values
    from procedures.schema import FieldKind

    defn = load_catalog().get(CODE)
    assert defn is not None
    file_field = next(f.name for f in defn.fields if f.kind == FieldKind.FILE and f.required)
    values = []
    for seed in range(64):
        v = sample_values(defn, today=date.today(), seed=seed + 1)
        v["consent"] = CONSENT_VERSION
        values.append(v)
    return FormTemplate(values, file_field, photo())


BOUNDARY = "----kioskloadfaults9f3Kd"


def multipart(values: dict[str, str], file_field: str, data: bytes) -> bytes:
    out = io.BytesIO()
    for k, v in values.items():
        out.write(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode())
        out.write(v.encode() + b"\r\n")
    out.write(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{file_field}"; '
        f'filename="giay-chung-sinh.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
    )
    out.write(data + b"\r\n" + f"--{BOUNDARY}--\r\n".encode())
    return out.getvalue()


def receipt_from_cookie(cookie: str) -> dict[str, str] | None:
    """The receipt the 303 gave in its `bien_nhan` cookie: the dossier's public id and secret."""
    dossier, _, secret = cookie.strip('"').partition(".")
    if not dossier or not secret:
        return None
    return {"dossier": dossier, "secret": secret}


HIDDEN = re.compile(rb'name="(csrf_token|draft)" value="([^"]*)"')


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    no_reply: Counter[str] = field(default_factory=Counter)
    get_ms: list[float] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)  # draft → dossier public id
    gave_up: int = 0
    resent: int = 0
    friendly_503: int = 0
    form_kept_503: int = 0  # of those, the form again with what was typed
    unfriendly_503: int = 0
    unexpected: list[str] = field(default_factory=list)
    first_ack_after: dict[str, float] = field(default_factory=dict)
    ack_times: list[float] = field(default_factory=list)


async def citizen_once(
    ports: Callable[[], int], n: int, tpl: FormTemplate, tally: Tally, deadline: float
) -> None:
    """One submission, resent until acknowledged (or the run's deadline passes)."""
    form: tuple[str, str, str] | None = None
    while time.monotonic() < deadline:
        port = ports()
        try:
            if form is None:
                reply = await http(port, "GET", FORM_PATH)
                tally.statuses[reply.status] += 1
                if reply.status != 200:
                    await _pause_after(reply, tally)
                    continue
                tally.get_ms.append(reply.ms)
                hidden = dict(HIDDEN.findall(reply.body))
                cookie = reply.cookies().get("session", "")
                form = (
                    hidden[b"csrf_token"].decode(),
                    hidden[b"draft"].decode(),
                    cookie,
                )
            csrf, draft, cookie = form
            values = {**tpl.values[n % len(tpl.values)], "csrf_token": csrf, "draft": draft}
            body = multipart(values, tpl.file_field, tpl.photo)
            reply = await http(
                port,
                "POST",
                FORM_PATH,
                headers={
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                    "Cookie": f"session={cookie}",
                },
                body=body,
            )
        except NoReply as exc:
            tally.no_reply[str(exc)] += 1
            tally.resent += 1
            await asyncio.sleep(0.2)
            continue
        tally.statuses[reply.status] += 1
        if reply.status == 303:
            tally.post_ms.append(reply.ms)
            receipt = receipt_from_cookie(reply.cookies().get("bien_nhan", ""))
            if receipt is None or not (reply.header("Location") or "").endswith("/bien-nhan"):
                tally.unexpected.append(f"303 without a receipt for draft {draft[:6]}…")
                return
            tally.acknowledged[draft] = receipt["dossier"]
            tally.ack_times.append(time.monotonic())
            return
        if reply.status in (503, 429):
            await _pause_after(reply, tally)
            tally.resent += 1
            continue
        tally.unexpected.append(f"{reply.status} on POST: {reply.body[:200]!r}")
        return
    tally.gave_up += 1


async def _pause_after(reply: Reply, tally: Tally) -> None:
    if reply.status == 503:
        form_back = "Thông tin bạn nhập vẫn còn đây".encode() in reply.body
        friendly = reply.header("Retry-After") is not None and (
            form_back or "Hệ thống đang bận".encode() in reply.body
        )
        if friendly:
            tally.friendly_503 += 1
            tally.form_kept_503 += form_back
        else:
            tally.unfriendly_503 += 1
    # Retry-After says 30 s; the bench waits 1 s so the run stays short (a person is slower).
    await asyncio.sleep(1.0)


async def crowd(
    ports: Callable[[], int],
    total: int,
    clients: int,
    tpl: FormTemplate,
    deadline: float,
    tally: Tally | None = None,
) -> Tally:
    tally = tally if tally is not None else Tally()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(total):
        queue.put_nowait(n)

    async def worker() -> None:
        while True:
            try:
                n = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await citizen_once(ports, n, tpl, tally, deadline)

    await asyncio.gather(*(worker() for _ in range(clients)))
    return tally


# --- The servers ---------------------------------------------------------------------------------


class Gunicorn:
    """gunicorn -c gunicorn.conf.py, in its own process group so the whole server can be killed."""

    def __init__(
        self, env: dict[str, str], port: int, log: Path, extra: tuple[str, ...] = ()
    ) -> None:
        self.env, self.port, self.log, self.extra = env, port, log, extra
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "-c",
                    str(ROOT / "gunicorn.conf.py"),
                    "-w",
                    "4",
                    "-b",
                    f"{HOST}:{self.port}",
                    "--error-logfile",
                    "-",
                    *self.extra,
                    "wsgi:app",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        wait_until(lambda: health(self.port), 30, "gunicorn did not come up")

    def workers(self) -> list[int]:
        assert self.proc is not None
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def kill_worker(self) -> bool:
        pids = self.workers()
        if not pids:
            return False
        with suppress(ProcessLookupError):
            os.kill(random.choice(pids), signal.SIGKILL)
        return True

    def kill_all(self) -> None:
        assert self.proc is not None
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def health(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as s:
            s.sendall(
                f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
            )
            return s.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, message: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    raise SystemExit(message)


class PrivatePostgres:
    """A throw-away PostgreSQL cluster owned by user postgres, on its own port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "pgdata"
        self.port = free_port()

    def _as_postgres(self, *args: str) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(f"{Path(args[0]).name} failed: {done.stderr.strip()[:500]}")

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.parent.chmod(0o711)  # mkdtemp's 0700 would keep user postgres out
        shutil.chown(self.folder, "postgres", "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E",
            "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        self.start()

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.folder} -c listen_addresses={HOST} -c max_connections=200"
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "pg.log"),
            "-o", opts, "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{name}"

    def create(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@{HOST}:{self.port}/postgres") as c:
            c.autocommit = True
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def install(
    engine: str, work: Path, name: str, pg: PrivatePostgres | None
) -> Iterator[dict[str, str]]:
    """A fresh install (keys, schema, catalog, demo commune) and the environment to serve it."""
    instance = work / name
    url = pg.create(name) if pg else f"sqlite:///{instance / 'kiosk.db'}"
    env = {
        **os.environ,
        "KIOSK_INSTANCE_PATH": str(instance),
        "KIOSK_DATABASE_URL": url,
        "KIOSK_PUBLIC_BASE_URL": "http://127.0.0.1",
    }
    subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "init", "--demo"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    yield env


# --- Checking what was stored --------------------------------------------------------------------


@dataclass
class Stored:
    dossiers: int
    missing_acks: int
    wrong_receipt: int
    duplicate_codes: int
    unacknowledged: int
    bad_signatures: list[str]
    bad_files: int
    orphan_uploads: int
    integrity: str


def check_store(env: dict[str, str], tally: Tally, before: set[str]) -> Stored:
    """Read the database back as an auditor would (in this process, with the install's keys)."""
    os.environ.update({k: env[k] for k in ("KIOSK_INSTANCE_PATH", "KIOSK_DATABASE_URL")})
    from sqlalchemy import func, select

    from admin.operations import check_dossiers
    from application import create_app
    from core.sealing import unseal_file_bytes
    from storage.files import FileStore
    from storage.models import Attachment, Dossier

    app = create_app({"DATABASE_URL": env["KIOSK_DATABASE_URL"]}, require_keys=True)
    rt = app.extensions["kiosk"]
    try:
        with rt.db.reading() as s:
            rows = {
                idem: (code, public_id)
                for idem, code, public_id in s.execute(
                    select(Dossier.idempotency_key, Dossier.code, Dossier.public_id)
                )
                if code not in before
            }
            dup = s.execute(
                select(Dossier.commune_id, Dossier.code)
                .group_by(Dossier.commune_id, Dossier.code)
                .having(func.count() > 1)
            ).all()
            check = check_dossiers(s, rt.keys.sealing)
            store = FileStore(rt.upload_dir)
            bad_files = 0
            for att in s.scalars(select(Attachment).where(Attachment.dossier_id.is_not(None))):
                try:
                    data = unseal_file_bytes(
                        store.read(att.storage_name),
                        rt.keys.sealing,
                        context=f"file:{att.commune_id}:{att.storage_name}".encode(),
                    )
                    ok = hashlib.sha256(data).hexdigest() == att.sha256
                except Exception:  # noqa: BLE001 - any failure is a bad file
                    ok = False
                bad_files += not ok
            orphans = s.scalar(
                select(func.count()).select_from(Attachment).where(Attachment.dossier_id.is_(None))
            )
        acked = {
            hashlib.sha256(f"draft|{d}".encode()).hexdigest(): pid
            for d, pid in tally.acknowledged.items()
        }
        missing = sum(1 for idem in acked if idem not in rows)
        wrong = sum(1 for idem, pid in acked.items() if idem in rows and rows[idem][1] != pid)
        unacked = sum(1 for idem in rows if idem not in acked)
        integrity = "n/a (PostgreSQL)"
        if rt.db.dialect == "sqlite":
            path = env["KIOSK_DATABASE_URL"].removeprefix("sqlite:///")
            with sqlite3.connect(path) as conn:
                integrity = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
        return Stored(
            dossiers=len(rows),
            missing_acks=missing,
            wrong_receipt=wrong,
            duplicate_codes=len(dup),
            unacknowledged=unacked,
            bad_signatures=check.bad,
            bad_files=bad_files,
            orphan_uploads=int(orphans or 0),
            integrity=integrity,
        )
    finally:
        rt.db.dispose()


def existing_codes(env: dict[str, str]) -> set[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(env["KIOSK_DATABASE_URL"])
    try:
        with engine.connect() as c:
            return set(c.execute(text("SELECT code FROM dossier")).scalars())
    finally:
        engine.dispose()


# --- Load scenarios ------------------------------------------------------------------------------


@dataclass
class Outcome:
    label: str
    seconds: float
    tally: Tally
    stored: Stored
    notes: list[str]

    @property
    def ok(self) -> bool:
        t, s = self.tally, self.stored
        five_xx = sum(v for k, v in t.statuses.items() if k >= 500 and k != 503)
        return (
            five_xx == 0
            and t.unfriendly_503 == 0
            and not t.unexpected
            and t.gave_up == 0
            and s.missing_acks == 0
            and s.wrong_receipt == 0
            and s.duplicate_codes == 0
            and not s.bad_signatures
            and s.bad_files == 0
            and s.integrity in ("ok", "n/a (PostgreSQL)")
        )

    def print(self) -> None:
        t, s = self.tally, self.stored
        acked = len(t.acknowledged)
        five_xx = {k: v for k, v in sorted(t.statuses.items()) if k >= 500}
        post = f"POST p50 {pct(t.post_ms, 50):.0f} ms  p99 {pct(t.post_ms, 99):.0f} ms"
        get = f"GET form p50 {pct(t.get_ms, 50):.0f} ms  p99 {pct(t.get_ms, 99):.0f} ms"
        dropped = dict(t.no_reply) or "none"
        lines = [
            f"[{self.label}] {acked} acknowledged in {self.seconds:.1f} s = "
            f"{acked / self.seconds:.1f} submissions/s",
            f"  {post}   {get}",
            f"  5xx: {five_xx or 'none'} (503 friendly with Retry-After: {t.friendly_503}, "
            f"of which the form with what was typed: {t.form_kept_503}, "
            f"other: {t.unfriendly_503});  dropped connections: {dropped};  resent: "
            f"{t.resent};  gave up: {t.gave_up}",
            f"  stored {s.dossiers}: acknowledged but missing {s.missing_acks}, receipt naming "
            f"another dossier {s.wrong_receipt}, stored but never acknowledged "
            f"{s.unacknowledged}, duplicate codes {s.duplicate_codes}",
            f"  signatures failing {len(s.bad_signatures)}, papers unreadable {s.bad_files}, "
            f"papers of unsent forms (a kill between upload and submit) {s.orphan_uploads}, "
            f"integrity_check {s.integrity}",
        ]
        for line in lines:
            print(f"  {line}")
        for note in self.notes:
            print(f"    {note}")
        if t.unexpected:
            print(f"    unexpected answers ({len(t.unexpected)}): {t.unexpected[:3]}")
        print(f"    => {'PASS' if self.ok else 'FAIL'}")


async def _run_load(
    env: dict[str, str],
    work: Path,
    label: str,
    total: int,
    clients: int,
    tpl: FormTemplate,
    fault: Callable[[Gunicorn, Tally, list[str]], asyncio.Future[None]] | None,
) -> Outcome:
    server = Gunicorn(env, free_port(), work / f"{label}.gunicorn.log")
    server.start()
    before = existing_codes(env)
    notes: list[str] = []
    started = time.monotonic()
    deadline = started + max(300, total / 10)
    tally = Tally()
    try:
        load = asyncio.ensure_future(
            crowd(lambda: server.port, total, clients, tpl, deadline, tally)
        )
        # The fault watches the live tally (how many citizens were acknowledged so far).
        faulty = asyncio.ensure_future(fault(server, tally, notes)) if fault else None
        await load
        if faulty is not None:
            faulty.cancel()
            with suppress(asyncio.CancelledError):
                await faulty
        seconds = time.monotonic() - started
    finally:
        server.stop()
    stored = check_store(env, tally, before)
    return Outcome(label, seconds, tally, stored, notes)


def run_load(*args: object) -> Outcome:
    return asyncio.run(_run_load(*args))  # type: ignore[arg-type]


def worker_killer(every: float) -> Callable[[Gunicorn, Tally, list[str]], asyncio.Future[None]]:
    async def fault(server: Gunicorn, _tally: Tally, notes: list[str]) -> None:
        kills = 0
        try:
            while True:
                await asyncio.sleep(every)
                kills += server.kill_worker()
        finally:
            notes.append(f"workers killed with SIGKILL: {kills} (one every {every:.0f} s)")

    return fault  # type: ignore[return-value]


async def until_acknowledged(tally: Tally, count: int) -> None:
    while len(tally.acknowledged) < count:
        await asyncio.sleep(0.05)


def server_killer(
    at_count: int, down_for: float
) -> Callable[[Gunicorn, Tally, list[str]], asyncio.Future[None]]:
    async def fault(server: Gunicorn, tally: Tally, notes: list[str]) -> None:
        await until_acknowledged(tally, at_count)
        server.kill_all()
        killed = time.monotonic()
        await asyncio.sleep(down_for)
        await asyncio.to_thread(server.start)
        notes.append(
            f"whole server killed with SIGKILL at {at_count} acknowledged, restarted by the "
            f"script {down_for:.0f} s later; answering again {time.monotonic() - killed:.1f} s "
            "after the kill"
        )

    return fault  # type: ignore[return-value]


def db_outage(
    engine: str, env: dict[str, str], pg: PrivatePostgres | None, at_count: int, length: float
) -> Callable[[Gunicorn, Tally, list[str]], asyncio.Future[None]]:
    async def fault(server: Gunicorn, tally: Tally, notes: list[str]) -> None:
        await until_acknowledged(tally, at_count)
        if engine == "sqlite":
            path = env["KIOSK_DATABASE_URL"].removeprefix("sqlite:///")
            locker = subprocess.Popen(
                [
                    PY,
                    "-c",
                    "import sqlite3, sys, time\n"
                    "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
                    "c.execute('BEGIN IMMEDIATE')\n"
                    "print('locked', flush=True)\n"
                    "time.sleep(float(sys.argv[2]))\n"
                    "c.execute('ROLLBACK')\n",
                    path,
                    str(length),
                ],
                stdout=subprocess.PIPE,
            )
            assert locker.stdout is not None
            await asyncio.to_thread(locker.stdout.readline)
            began = time.monotonic()
            await asyncio.to_thread(locker.wait)
            what = "SQLite write-locked by another process (BEGIN IMMEDIATE held)"
        else:
            assert pg is not None
            await asyncio.to_thread(pg.stop)
            began = time.monotonic()
            await asyncio.sleep(length)
            await asyncio.to_thread(pg.start)
            what = "PostgreSQL stopped (pg_ctl stop -m fast), then started"
        back = time.monotonic()
        OUTAGE["began"], OUTAGE["ended"] = began, back
        notes.append(f"database outage: {what} for {back - began:.1f} s")

    return fault  # type: ignore[return-value]


OUTAGE: dict[str, float] = {}


def outage_notes(outcome: Outcome) -> None:
    if not OUTAGE:
        return
    ended = OUTAGE["ended"]
    began = OUTAGE["began"]
    during = [t for t in outcome.tally.ack_times if began <= t < ended]
    after = [t for t in outcome.tally.ack_times if t >= ended]
    first = min(after) - ended if after else float("nan")
    outcome.notes.append(
        f"acknowledged during the outage: {len(during)}; first acknowledgement after it: "
        f"{first:.1f} s later (nothing restarted: the pool reconnects by itself)"
    )
    OUTAGE.clear()


# --- Slow clients --------------------------------------------------------------------------------


async def trickle(port: int, kind: str, stop: asyncio.Event, opened: list[int]) -> None:
    """Hold a connection open by sending one byte a second (headers, or a POST body)."""
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return
    opened[0] += 1
    if kind == "headers":
        data = f"GET {FORM_PATH} HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ".encode() + b"a" * 4000
    else:
        head = (
            f"POST {FORM_PATH} HTTP/1.1\r\nHost: {HOST}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
        )
        writer.write(head.encode())
        data = b"x" * 4000
    try:
        for i in range(len(data)):
            if stop.is_set():
                break
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(1.0)
    except OSError:
        pass
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()


async def slow_attack(port: int, tpl: FormTemplate, slow: int) -> dict[str, object]:
    stop = asyncio.Event()
    opened = [0]
    attackers = [
        asyncio.ensure_future(trickle(port, "headers" if i % 2 else "body", stop, opened))
        for i in range(slow)
    ]
    await asyncio.sleep(3)  # every slow connection is open and has sent its first bytes
    timings: list[float] = []
    timeouts = 0
    for _ in range(20):
        try:
            reply = await http(port, "GET", FORM_PATH, timeout=5)
            timings.append(reply.ms if reply.status == 200 else float("inf"))
        except NoReply:
            timeouts += 1
            if timeouts >= 3:
                break
    subs = Tally()
    if timeouts < 3:
        await crowd(lambda: port, 5, 1, tpl, time.monotonic() + 30, subs)
    stop.set()
    await asyncio.gather(*attackers)
    return {
        "slow": opened[0],
        "get_ms": timings,
        "timeouts": timeouts,
        "subs": subs,
    }


def slow_clients(engine: str, work: Path, pg: PrivatePostgres | None, tpl: FormTemplate) -> bool:
    ok = True
    setups: list[tuple[str, tuple[str, ...], bool]] = [
        ("gunicorn sync, direct", (), False),
        ("gunicorn gthread (4×8 threads), direct", ("-k", "gthread", "--threads", "8"), False),
    ]
    if shutil.which("nginx"):
        setups.append(("nginx (buffering) → gunicorn sync", (), True))
    with install(engine, work, "slow", pg) as env:
        for label, extra, proxied in setups:
            server = Gunicorn(env, free_port(), work / "slow.gunicorn.log", extra)
            server.start()
            proxy = Nginx(work / "nginx", server.port) if proxied else None
            try:
                port = proxy.start() if proxy else server.port
                result = asyncio.run(slow_attack(port, tpl, 300))
            finally:
                if proxy:
                    proxy.stop()
                server.stop()
            times = result["get_ms"]
            assert isinstance(times, list)
            served = [t for t in times if t != float("inf")]
            worst = max(served) if served else float("nan")
            subs = result["subs"]
            assert isinstance(subs, Tally)
            slowest_post = max(subs.post_ms) if subs.post_ms else float("nan")
            good = (
                result["timeouts"] == 0
                and len(served) == 20
                and worst < 1000
                and len(subs.acknowledged) == 5
                and slowest_post < 1000
            )
            print(
                f"  [slow clients, {label}] {result['slow']} slow connections open; normal GET "
                f"of the form: {len(served)}/20 served, p50 {pct(served, 50):.0f} ms, max "
                f"{worst:.0f} ms, timed out (5 s) {result['timeouts']}; full submissions "
                f"{len(subs.acknowledged)}/5, slowest POST {slowest_post:.0f} ms"
                + ("  => under 1 s" if good else "  => NOT served in time")
            )
            if proxied:
                ok &= good
    if not shutil.which("nginx"):
        print(
            "  nginx is not installed (apt-get install nginx-light): the buffered setup was "
            "not measured"
        )
    return ok


class Nginx:
    """nginx with request and response buffering in front of gunicorn (as in production)."""

    def __init__(self, folder: Path, upstream: int) -> None:
        self.folder, self.upstream = folder, upstream
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "nginx.conf"
        conf.write_text(NGINX_CONF.format(folder=self.folder, port=self.port, up=self.upstream))
        self.proc = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: health(self.port), 10, "nginx did not come up")
        return self.port

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {folder}/body;
  proxy_temp_path {folder}/proxy;
  fastcgi_temp_path {folder}/fastcgi;
  uwsgi_temp_path {folder}/uwsgi;
  scgi_temp_path {folder}/scgi;
  client_max_body_size 32m;
  client_body_buffer_size 1m;
  client_header_timeout 15s;
  client_body_timeout 15s;
  send_timeout 30s;
  upstream kiosk {{ server 127.0.0.1:{up}; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://kiosk;
      proxy_request_buffering on;
      proxy_buffering on;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 60s;
    }}
  }}
}}
"""


# --- Main ----------------------------------------------------------------------------------------

SCENARIOS = ("baseline", "worker-kill", "server-kill", "db-outage", "slow-clients")


def run_engine(
    engine: str, scenarios: list[str], total: int, clients: int, keep: bool = False
) -> bool:
    tpl = form_template()
    work = Path(tempfile.mkdtemp(prefix=f"kiosk-faults-{engine}-"))
    pg = PrivatePostgres(work / "pg") if engine == "postgresql" else None
    ok = True
    try:
        if pg:
            pg.init()
        print(
            f"[{engine}] {total} submissions per scenario, {clients} concurrent citizens, "
            "gunicorn 4 sync workers (gunicorn.conf.py), one small photo per form"
        )
        for scenario in scenarios:
            if scenario == "slow-clients":
                ok &= slow_clients(engine, work, pg, tpl)
                continue
            with install(engine, work, scenario, pg) as env:
                fault = None
                if scenario == "worker-kill":
                    fault = worker_killer(3.0)
                elif scenario == "server-kill":
                    fault = server_killer(int(total * 0.4), 1.0)
                elif scenario == "db-outage":
                    fault = db_outage(engine, env, pg, int(total * 0.1), 20.0)
                outcome = run_load(env, work, scenario, total, clients, tpl, fault)
                if scenario == "db-outage":
                    outage_notes(outcome)
                outcome.print()
                ok &= outcome.ok
    finally:
        if pg:
            with suppress(SystemExit):
                pg.stop()
        if keep:
            print(f"  kept the work folder (logs, databases): {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--submissions", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--keep", action="store_true", help="keep logs and databases")
    args = parser.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {sorted(unknown)}; choose from {SCENARIOS}")
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    ok = True
    for engine in engines:
        ok &= run_engine(engine, scenarios, args.submissions, args.clients, args.keep)
    print("ALL PASS" if ok else "SOME RUN FAILED")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
