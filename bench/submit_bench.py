"""Submissions per second through gunicorn, beside a minimal endpoint measured in the same run.

    .venv/bin/python bench/submit_bench.py [--engine sqlite|postgresql|both] [--seconds 10]
        [--rounds 3] [--photos] [--no-vacuum]

For each engine: a fresh install (init --demo), gunicorn with 4 sync workers (and the rest of
gunicorn.conf.py), wrk with 32 connections posting a valid birth registration, each request with
its own draft so each makes a new dossier; then bench/minimal_app.py (parse the same form, sign,
insert one row) under the same settings on its own database of the same engine. The two take
turns, `--rounds` times: this machine's speed drifts by a third from one run to the next, so the
ratio of each round and their median are printed. On PostgreSQL the staged drafts, and both
databases between rounds, get a VACUUM (ANALYZE), as autovacuum would on a live install (off on
this machine's server; `--no-vacuum` to leave it out).

"Text-only": the birth certificate is a required paper, so before the timed run every draft the
run will use gets its photo attached (as the form does when a phone sends the photo first); the
timed request then validates, seals, signs and stores the dossier and links the paper to it.
`--photos` adds a run whose every request carries two 12-megapixel JPEGs (multipart), inspected,
re-encoded, sealed and fsynced inside the request.

A run only counts if every answer is the expected one (303 for ours, 200 for minimal) and the
database holds at least as many new dossiers as there were 303s (more by the requests still in
flight when wrk stopped, whose answers it never reads): both counts are printed, and the script
exits non-zero otherwise.
Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, date, datetime
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PY = sys.executable
BIN = Path(PY).parent
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - loopback
            return
        except Exception:  # noqa: BLE001
            time.sleep(0.2)
    raise SystemExit(f"server at {url} did not come up")


def gunicorn(app: str, port: int, env: dict[str, str], workers: int = 4) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--error-logfile",
            "-",
            "--log-level",
            "warning",
            app,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


LUA = r"""
-- Each request gets its own draft: PREFIX .. thread id .. counter (the drafts of the text-only run
-- were staged beforehand with their paper attached), and the form token served with that draft's
-- form (line `id * PER_THREAD + counter` of TOKENS). Statuses are counted per thread and printed.
local tid = 0
local threads = {}
function setup(thread)
  thread:set("id", tid)
  tid = tid + 1
  table.insert(threads, thread)
end
function init(args)
  counter = 0
  statuses = {}
  tokens = {}
  local line = 0
  if PER_THREAD > 0 then
    for token in io.lines(TOKENS) do
      if line >= id * PER_THREAD and line < (id + 1) * PER_THREAD then
        table.insert(tokens, token)
      end
      line = line + 1
    end
  end
  local t = string.find(wrk.body, "TOKENTOKENTOKEN", 1, true)
  local d = string.find(wrk.body, "DRAFTDRAFTDRAFTDRAFTDRAFT", 1, true)
  head = string.sub(wrk.body, 1, t - 1)
  middle = string.sub(wrk.body, t + 15, d - 1)
  tail = string.sub(wrk.body, d + 25)
end
request = function()
  counter = counter + 1
  local draft = string.format("%s%02d%08d", PREFIX, id, counter)
  local token = tokens[counter] or "spent"
  return wrk.format("POST", wrk.path, wrk.headers, head .. token .. middle .. draft .. tail)
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, k .. "=" .. v) end
  io.write("STATUSES " .. table.concat(parts, " ") .. "\n")
end
"""


def run_wrk(
    url: str, body: bytes, headers: dict[str, str], seconds: int, conns: int, prefix: str
) -> dict:
    """wrk posting `body` to `url`; for a prefix whose form tokens were written (`--tokens`),
    each request with its own draft and that draft's token."""
    tokens = token_file(prefix)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        body_file = Path(tmp) / "body.bin"
        body_file.write_bytes(body)
        hdr_lua = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
        script.write_text(
            f'wrk.method = "POST"\nlocal f = io.open("{body_file}", "rb")\n'
            f'wrk.body = f:read("*all")\nf:close()\nPREFIX = "{prefix}"\nTOKENS = "{tokens}"\n'
            f"PER_THREAD = {token_count(tokens)}\n{hdr_lua}\n{LUA}"
        )
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{conns}",
                f"-d{seconds}s",
                "--latency",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    errors = re.search(r"Socket errors: (.*)", out)
    statuses_line = re.search(r"^STATUSES(.*)$", out, re.M)
    statuses = {
        int(k): int(v)
        for k, v in re.findall(r"(\d+)=(\d+)", statuses_line.group(1) if statuses_line else "")
    }
    return {
        "rate": rate,
        "p50": lat.get("50"),
        "p99": lat.get("99"),
        "statuses": statuses,
        "socket_errors": errors.group(1) if errors else "none",
    }


def cpu_seconds(master: int) -> float:
    """CPU time used so far by a gunicorn master and its workers (Linux /proc). Less sensitive
    than requests/s to whatever else this shared machine runs at the same time."""
    pids = [master]
    with suppress(OSError):
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        pids += [int(p) for p in children]
    total = 0
    for pid in pids:
        with suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def database_cpu_seconds() -> float:
    """CPU time used so far by this machine's processes named `postgres` (the server and its
    backends, reaped ones included): zero where no PostgreSQL server runs here."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            stat = (entry / "stat").read_text()
            name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
            if name == "postgres":
                total += sum(int(f) for f in rest.split()[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def timed_wrk(master: int, *args: Any) -> dict:
    before, before_db = cpu_seconds(master), database_cpu_seconds()
    result = run_wrk(*args)
    answered = max(sum(result["statuses"].values()), 1)
    result["cpu_ms"] = (cpu_seconds(master) - before) * 1000 / answered
    result["db_cpu_ms"] = (database_cpu_seconds() - before_db) * 1000 / answered
    return result


def to_ms(text: str | None) -> float:
    if not text:
        return float("nan")
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    assert m
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def token_file(prefix: str) -> Path:
    return Path(os.environ.get("BENCH_TOKEN_DIR", tempfile.gettempdir())) / f"{prefix}.tokens"


def token_count(path: Path) -> int:
    """Tokens per wrk thread in `path` (two threads)."""
    if not path.exists():
        return 0
    with path.open() as f:
        return sum(1 for _ in f) // 2


def write_tokens(prefix: str, per_thread: int) -> None:
    """Run with the bench's environment: the form token each draft's form would have carried
    (kiosk/form_token.py), one line per draft, thread 0's first."""
    from application import create_app
    from kiosk import form_token

    secret = create_app().extensions["kiosk"].keys.secret_key
    now = time.time()
    lines = (
        form_token.issue(secret, f"{prefix}{thread:02d}{n:08d}", now)
        for thread in range(2)
        for n in range(1, per_thread + 1)
    )
    token_file(prefix).write_text("".join(f"{line}\n" for line in lines))


def prepare_form(base: str) -> tuple[dict[str, str], str, str]:
    """GET the form as a browser would (its cookies and action), and the values to post: the
    form token and the draft are placeholders, each request's own put in by wrk's script."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    html = opener.open(f"{base}/x/nhuan-duc/khai-sinh", timeout=10).read().decode()
    assert 'name="csrf_token"' in html
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    from procedures.catalog import load_catalog
    from procedures.samples import sample_values

    values = sample_values(load_catalog().get("khai-sinh"), today=date.today(), seed=7)
    from core.services import CONSENT_VERSION

    values.update(
        {
            "csrf_token": "TOKENTOKENTOKEN",
            "draft": "DRAFTDRAFTDRAFTDRAFTDRAFT",
            "consent": CONSENT_VERSION,
        }
    )
    return values, cookie, f"{base}/x/nhuan-duc/khai-sinh"


def photo_jpeg(seed: int) -> bytes:
    import random

    from PIL import Image, ImageFilter

    rng = random.Random(seed)  # noqa: S311
    small = Image.effect_noise((400, 300), 60).convert("RGB")
    img = small.resize((4000, 3000)).filter(ImageFilter.GaussianBlur(2))
    for _ in range(40):
        x, y = rng.randrange(3800), rng.randrange(2800)
        img.paste(
            (rng.randrange(256), rng.randrange(256), rng.randrange(256)), (x, y, x + 200, y + 40)
        )
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def multipart(values: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = "----kioskbench7MA4YWxkTrZu0gW"
    out = io.BytesIO()
    for k, v in values.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode())
        out.write(v.encode() + b"\r\n")
    for field, name, data in files:
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"'
            f"\r\nContent-Type: image/jpeg\r\n\r\n".encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def report(label: str, r: dict, unit: str, expected: int, stored: int) -> bool:
    """One line of figures; False when the run measured anything but successful submissions."""
    good = r["statuses"].get(expected, 0)
    others = {k: v for k, v in sorted(r["statuses"].items()) if k != expected}
    # wrk stops with requests in flight: those are stored but their answers are never counted.
    valid = not others and r["socket_errors"] == "none" and good <= stored
    print(
        f"  {label:<8} {r['rate']:8.1f} {unit}  p50 {to_ms(r['p50']):7.1f} ms  "
        f"p99 {to_ms(r['p99']):7.1f} ms  server CPU {r['cpu_ms']:5.2f} ms/req  "
        + (f"PostgreSQL CPU {r['db_cpu_ms']:5.2f} ms/req  " if r["db_cpu_ms"] else "")
        + f"{expected}s {good}  stored {stored}  "
        f"other statuses {others or 'none'}  socket errors {r['socket_errors']}"
        + ("" if valid else "  ** INVALID RUN **")
    )
    return valid


def make_database(engine: str, tmp: Path) -> tuple[str, str, Callable[[], None]]:
    if engine == "sqlite":
        return f"sqlite:///{tmp / 'kiosk.db'}", f"sqlite:///{tmp / 'minimal.db'}", lambda: None
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    names = [f"kiosk_bench_{os.getpid()}", f"kiosk_bench_min_{os.getpid()}"]
    with admin.connect() as c:
        for n in names:
            c.execute(text(f"DROP DATABASE IF EXISTS {n}"))
            c.execute(text(f"CREATE DATABASE {n}"))

    def drop() -> None:
        with admin.connect() as c:
            for n in names:
                c.execute(text(f"DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
        admin.dispose()

    base = "postgresql+psycopg://postgres@127.0.0.1:5432/"
    return base + names[0], base + names[1], drop


def count_rows(url: str, query: str) -> int:
    """A count, once the requests still in flight when wrk stopped have finished."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        last = -1
        for _ in range(40):
            with engine.connect() as c:
                now = int(c.execute(text(query)).scalar_one())
            if now == last:
                return now
            last = now
            time.sleep(0.5)
        return last
    finally:
        engine.dispose()


def stage_drafts(prefix: str, per_thread: int) -> None:
    """Run in a subprocess with the bench's environment: give each draft the text-only run will
    use its birth certificate, as if the citizen's phone had sent the photo earlier (the paper is
    required, so a birth registration without one is refused)."""
    from application import create_app
    from core import services
    from core.uploads import UploadLimits, inspect_upload
    from storage.files import FileStore

    class Unsynced(FileStore):
        # Staging only: the timed runs still write (and fsync) through the real FileStore.
        def write(self, name: str, data: bytes) -> None:
            path = self._path(name)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.write_bytes(data)

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (600, 800), (250, 250, 245)).save(buf, "JPEG", quality=80)
    accepted = inspect_upload(buf.getvalue(), filename="giay-chung-sinh.jpg", limits=UploadLimits())
    runtime = create_app().extensions["kiosk"]
    store = Unsynced(runtime.upload_dir)
    field = _photo_field()
    now = datetime.now(UTC)
    with runtime.db.writing() as s:
        commune = services.commune_by_slug(s, "nhuan-duc")
        for thread in range(2):
            for n in range(1, per_thread + 1):
                services.accept_upload(
                    s,
                    commune=commune,
                    draft=f"{prefix}{thread:02d}{n:08d}",
                    field_name=field,
                    accepted=accepted,
                    store=store,
                    keyring=runtime.keys.sealing,
                    now=now,
                )


STAGED_PER_SECOND = 600  # drafts per wrk thread and second: covers up to 1200 submissions/s


def analyze(url: str, *, vacuum: bool = False, table: str = "") -> None:
    """ANALYZE the database (or one `table`), with a VACUUM first if `vacuum`."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.execute(text(f"{'VACUUM (ANALYZE)' if vacuum else 'ANALYZE'} {table}"))
    finally:
        engine.dispose()


def _prefix(round_: int) -> str:
    """Each round its own staged drafts: a draft already submitted would only get its receipt."""
    return f"benchtext{round_}draft"


def bench_engine(
    engine: str, seconds: int, photos: bool, rounds: int, *, vacuum: bool = True
) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="kiosk-bench-"))
    url, minimal_url, drop = make_database(engine, tmp)
    os.environ["BENCH_TOKEN_DIR"] = str(tmp)
    env = {
        **os.environ,
        "KIOSK_INSTANCE_PATH": str(tmp / "instance"),
        "KIOSK_DATABASE_URL": url,
        "MINIMAL_DATABASE_URL": minimal_url,
    }
    ok = True
    try:
        subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", "init", "--demo"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        t0 = time.monotonic()
        for r in range(rounds):
            subprocess.run(
                [PY, __file__, "--stage", _prefix(r), str(seconds * STAGED_PER_SECOND)],
                cwd=ROOT,
                env=env,
                check=True,
            )
        print(
            f"[{engine}] staged {rounds} x {2 * seconds * STAGED_PER_SECOND} drafts with their "
            f"paper in {time.monotonic() - t0:.0f}s"
        )
        if engine == "postgresql":
            # Planner statistics for the tables just filled, as autovacuum keeps them on a live
            # install: without them PostgreSQL takes the 36,000 staged papers for a handful and
            # may walk a commune's whole queue index to find one draft. With the vacuum too (as
            # autovacuum would after an insert this size, and as between rounds below): without
            # it the first round alone paid for setting the new rows' hint bits, and ran at
            # 0.30-0.36 of the minimal endpoint where the vacuumed rounds after it ran 0.43-0.53.
            # Only the table just filled, as autovacuum would: the others are as `init` left
            # them. Analysed while empty, `dossier` would have its foreign keys checked with the
            # plans made for an empty table (a sequential scan, cached by each server process
            # until the next ANALYZE), so every submission of the round would scan every dossier
            # stored so far; a live install's autovacuum analyses it again after 50 new rows.
            analyze(url, vacuum=vacuum, table="attachment")
        # The minimal app creates its table on import: once here, not by 4 workers racing
        # (on PostgreSQL the losers fail to boot and gunicorn stops).
        subprocess.run([PY, "-c", "import minimal_app"], cwd=ROOT / "bench", env=env, check=True)
        port, mport = free_port(), free_port()
        server = gunicorn("wsgi:app", port, env)
        minimal = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "-w",
                "4",
                "-b",
                f"127.0.0.1:{mport}",
                "--chdir",
                str(ROOT / "bench"),
                "minimal_app:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_up(base + "/healthz")
            wait_up(f"http://127.0.0.1:{mport}/")
            values, cookie, action = prepare_form(base)
            body = urllib.parse.urlencode(values).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            if cookie:
                headers["Cookie"] = cookie
            print(
                f"[{engine}] text-only birth registration, 4 workers, 32 connections, "
                f"{rounds} rounds of {seconds}s each, ours then minimal"
            )
            ratios, p99s, cpu_ratios = [], [], []
            stored = stored_min = 0
            for r in range(rounds):
                if engine == "postgresql" and r > 0 and vacuum:
                    # What autovacuum does on a live install, and this machine's server does not
                    # (autovacuum = off): without it every round of ours ran slower than the one
                    # before (e.g. 233, 212, 159 req/s) while the minimal endpoint's did not, the
                    # dead row versions of the day's counter and of the linked papers piling up.
                    # Both databases, so both sides get the same.
                    for each in (url, minimal_url):
                        analyze(each, vacuum=True)
                ours = timed_wrk(server.pid, action, body, headers, seconds, 32, _prefix(r))
                now_stored = count_rows(url, "SELECT count(*) FROM dossier")
                base_line = timed_wrk(
                    minimal.pid, f"http://127.0.0.1:{mport}/submit", body, headers, seconds, 32,
                    "m"
                )  # fmt: skip
                now_min = count_rows(minimal_url, "SELECT count(*) FROM minimal_submission")
                ok &= report("ours", ours, "req/s", 303, now_stored - stored)
                ok &= report("minimal", base_line, "req/s", 200, now_min - stored_min)
                stored, stored_min = now_stored, now_min
                ratios.append(ours["rate"] / base_line["rate"])
                cpu_ratios.append(ours["cpu_ms"] / base_line["cpu_ms"])
                p99s.append(to_ms(ours["p99"]))
            print(
                f"  median of {rounds}: ratio {statistics.median(ratios):.2f} (target >= 0.50; "
                f"rounds {', '.join(f'{x:.2f}' for x in ratios)}), p99 "
                f"{statistics.median(p99s):.0f} ms (target < 100), CPU per request "
                f"{statistics.median(cpu_ratios):.1f}x the minimal's"
            )
            if photos:
                field = _photo_field()
                jpegs = [photo_jpeg(1), photo_jpeg(2)]
                files = [(field, "anh1.jpg", jpegs[0]), (field, "anh2.jpg", jpegs[1])]
                mp_body, ctype = multipart(values, files)
                mp_headers = {**headers, "Content-Type": ctype}
                subprocess.run(
                    [PY, __file__, "--tokens", "benchphotodraft", str(seconds * 100)],
                    cwd=ROOT,
                    env=env,
                    check=True,
                )
                res = timed_wrk(
                    server.pid, action, mp_body, mp_headers, seconds, 8, "benchphotodraft"
                )
                # The staged papers are a few KB; the re-encoded photos are hundreds.
                photos = "FROM attachment WHERE dossier_id IS NOT NULL AND size > 100000"
                stored_p = count_rows(url, f"SELECT count(DISTINCT dossier_id) {photos}")  # noqa: S608 - constants
                atts = count_rows(url, f"SELECT count(*) {photos}")  # noqa: S608 - constants
                sizes = " + ".join(f"{len(j) // 1024} KB" for j in jpegs)
                print(f"[{engine}] two 12-megapixel JPEGs ({sizes}) per dossier, 8 connections")
                ok &= report("ours", res, "dossiers/s (target >= 20)", 303, stored_p)
                print(f"  photos stored with their dossiers: {atts} (2 per dossier)")
                ok &= stored_p * 2 == atts
        finally:
            stop(server)
            stop(minimal)
    finally:
        drop()
        shutil.rmtree(tmp, ignore_errors=True)
    return ok


def _photo_field() -> str:
    from procedures.catalog import load_catalog
    from procedures.schema import FieldKind

    defn = load_catalog().get("khai-sinh")
    return next(f.name for f in defn.fields if f.kind == FieldKind.FILE)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--photos", action="store_true")
    parser.add_argument(
        "--rounds", type=int, default=3, help="text-only runs, ours and minimal alternating"
    )
    parser.add_argument(
        "--no-vacuum",
        action="store_true",
        help="PostgreSQL: no VACUUM (ANALYZE) of both databases between rounds",
    )
    parser.add_argument(
        "--stage", nargs=2, metavar=("PREFIX", "PER_THREAD"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--tokens", nargs=2, metavar=("PREFIX", "PER_THREAD"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.stage:
        stage_drafts(args.stage[0], int(args.stage[1]))
        write_tokens(args.stage[0], int(args.stage[1]))
        return
    if args.tokens:
        write_tokens(args.tokens[0], int(args.tokens[1]))
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    ok = True
    for engine in engines:
        ok &= bench_engine(
            engine, args.seconds, args.photos, args.rounds, vacuum=not args.no_vacuum
        )
    if not ok:
        raise SystemExit("some run measured failed requests: its figures are meaningless")


if __name__ == "__main__":
    main()
