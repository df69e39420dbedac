"""Instructions per submission, ours beside the minimal endpoint: a figure that repeats here.

    .venv/bin/python bench/instructions_submit.py [--posts 100] [--only ours|minimal]
        [--engine sqlite|postgresql]

bench/submit_bench.py's req/s ratio drifts by a third from one run to the next here; counting
instructions with valgrind's callgrind does not (the same count, within 1%, with the other core
busy). Each side runs in process, straight through the WSGI callable (no test client, no server):
a fresh install as bench/submit_bench.py makes it, drafts staged with their paper, 50 warm-up posts
of the same URL-encoded birth registration wrk sends, then `--posts` counted ones. Each side runs
twice under callgrind, with `--posts` and with none, and the difference divided by `--posts` is the
cost of one post: start-up and warm-up cancel out. What it leaves out is the server (gunicorn's
parsing and socket work, the same for both) and waiting on the disk (fsync is one system call
here, whatever it takes): bench/submit_bench.py measures those. On PostgreSQL only the
application's process is counted, not the server's.

Prints millions of instructions per post for each and ours ÷ minimal.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
WARM = 50


def _call(
    app: Any, method: str, path: str, body: bytes = b"", **extra: str
) -> tuple[str, list[tuple[str, str]], bytes]:
    """One request straight into the WSGI callable; returns (status, headers, body)."""
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **extra,
    }
    if body:
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        environ["CONTENT_LENGTH"] = str(len(body))
    answer: list[Any] = []

    def start_response(s: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer[:] = [s, headers]

    result = app(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return answer[0], answer[1], data


def _ours(staged: int, tmp: Path, url: str) -> tuple[Any, Any]:
    os.environ["KIOSK_INSTANCE_PATH"] = str(tmp / "instance")
    os.environ["KIOSK_DATABASE_URL"] = url
    os.environ["KIOSK_PUBLIC_BASE_URL"] = "http://127.0.0.1:8000"
    flask = Path(sys.executable).parent / "flask"
    subprocess.run(
        [str(flask), "--app", "wsgi", "init", "--demo"], cwd=ROOT, check=True, capture_output=True
    )
    import submit_bench

    prefix = "countdraftxyzabcdefg"
    submit_bench.stage_drafts(prefix, staged)

    from application import create_app
    from core.services import CONSENT_VERSION
    from procedures.catalog import load_catalog
    from procedures.samples import sample_values

    app = create_app()
    # The form as a browser gets it (and its cookies, if it sets any); each draft's form carries
    # its own token (kiosk/form_token.py).
    _, headers, page = _call(app, "GET", "/x/nhuan-duc/khai-sinh")
    assert re.search(rb'name="csrf_token" value="([^"]+)"', page)
    cookie = "; ".join(v.split(";", 1)[0] for k, v in headers if k.lower() == "set-cookie")
    defn = load_catalog().get("khai-sinh")
    assert defn is not None
    values = sample_values(defn, today=date.today(), seed=7)
    values.update({"consent": CONSENT_VERSION})
    from kiosk import form_token

    secret, served = app.extensions["kiosk"].keys.secret_key, time.time()

    # Made before any post, the same in both runs: only the server's work is counted.
    drafts = [f"{prefix}00{n:08d}" for n in range(staged + 1)]
    bodies = [
        urlencode(dict(values, draft=d, csrf_token=form_token.issue(secret, d, served))).encode()
        for d in drafts
    ]

    def post(n: int) -> None:
        address = f"10.0.{n % 250}.{n // 250 % 250}"
        status, _, _ = _call(
            app,
            "POST",
            "/x/nhuan-duc/khai-sinh",
            bodies[n],
            HTTP_COOKIE=cookie,
            REMOTE_ADDR=address,
        )
        assert status.startswith("303"), status

    return app, post


def _minimal(url: str) -> tuple[Any, Any]:
    os.environ["MINIMAL_DATABASE_URL"] = url
    import minimal_app

    from procedures.catalog import load_catalog
    from procedures.samples import sample_values

    defn = load_catalog().get("khai-sinh")
    assert defn is not None
    body = urlencode(sample_values(defn, today=date.today(), seed=7)).encode()

    def post(n: int) -> None:
        status, _, _ = _call(minimal_app.app, "POST", "/submit", body)
        assert status.startswith("200"), status

    return minimal_app.app, post


def child(side: str, posts: int, staged: int, engine: str) -> None:
    """Both runs of a side stage as many drafts (the longer run's), so only the posts differ."""
    import submit_bench

    tmp = Path(tempfile.mkdtemp(prefix="kiosk-count-"))
    ours_url, minimal_url, drop = submit_bench.make_database(engine, tmp)
    try:
        _, post = _ours(staged, tmp, ours_url) if side == "ours" else _minimal(minimal_url)
        for n in range(1, WARM + posts + 1):
            post(n)
    finally:
        drop()


def _collected(side: str, posts: int, staged: int, engine: str) -> int:
    run = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            side,
            "--posts",
            str(posts),
            "--staged",
            str(staged),
            "--engine",
            engine,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"{side} with {posts} posts failed:\n{run.stderr[-3000:]}")
    return int(found[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--only", choices=("ours", "minimal"))
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--child", choices=("ours", "minimal"), help=argparse.SUPPRESS)
    parser.add_argument("--staged", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.posts, args.staged or WARM + args.posts, args.engine)
        return
    sides = [args.only] if args.only else ["ours", "minimal"]
    per_post: dict[str, float] = {}
    for side in sides:
        # The two runs of a side go side by side: one per core.
        with ThreadPoolExecutor(2) as pool:
            full, empty = pool.map(
                _collected,
                [side, side],
                [args.posts, 0],
                [WARM + args.posts] * 2,
                [args.engine] * 2,
            )
        per_post[side] = (full - empty) / args.posts
        print(
            f"{args.engine} {side:8s} {per_post[side] / 1e6:6.2f} M instructions per post",
            flush=True,
        )
    if len(per_post) == 2:
        print(f"ours / minimal: {per_post['ours'] / per_post['minimal']:.2f}")


if __name__ == "__main__":
    main()
