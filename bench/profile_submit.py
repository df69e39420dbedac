"""Where a submission's time goes: cProfile over the birth-registration POST, in process.

    .venv/bin/python bench/profile_submit.py [--posts 600] [--top 40]

A fresh install in a temporary folder (SQLite, or KIOSK_DATABASE_URL), drafts staged with their
paper as bench/submit_bench.py does, 50 warm-up posts, then the profiled ones through Flask's test
client, URL-encoded as wrk sends them (a form without a file; `--multipart` sends multipart, whose
new boundary per request makes werkzeug compile a regular expression each time, as phones do).
Prints ms per post (profiled, so slower than real) and the functions by cumulative and by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=600)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--callees", metavar="REGEX", help="also print what functions matching REGEX call"
    )
    parser.add_argument(
        "--callers", metavar="REGEX", help="also print what calls the functions matching REGEX"
    )
    parser.add_argument(
        "--server-cpu",
        action="store_true",
        help="also print the CPU the local PostgreSQL server's processes spent per post",
    )
    parser.add_argument("--multipart", action="store_true", help="post multipart/form-data")
    parser.add_argument("--time-only", action="store_true", help="no profiler: real ms per post")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kiosk-profile-"))
    os.environ["KIOSK_INSTANCE_PATH"] = str(tmp / "instance")
    os.environ.setdefault("KIOSK_DATABASE_URL", f"sqlite:///{tmp / 'kiosk.db'}")
    flask = Path(sys.executable).parent / "flask"
    subprocess.run(
        [str(flask), "--app", "wsgi", "init", "--demo"], cwd=ROOT, check=True, capture_output=True
    )
    import submit_bench

    prefix = "profiledraftxyz"  # a valid draft is 20+ characters: prefix + 2 + 8 digits
    submit_bench.stage_drafts(prefix, args.posts)

    from application import create_app
    from core.services import CONSENT_VERSION
    from procedures.catalog import load_catalog
    from procedures.samples import sample_values

    app = create_app()
    client = app.test_client()
    page = client.get("/x/nhuan-duc/khai-sinh").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    defn = load_catalog().get("khai-sinh")
    assert defn is not None
    values = sample_values(defn, today=date.today(), seed=7)
    values.update({"consent": CONSENT_VERSION})
    # Each draft's form carries its own token (kiosk/form_token.py): made before the timing.
    from kiosk import form_token

    secret, served = app.extensions["kiosk"].keys.secret_key, time.time()
    drafts = [f"{prefix}00{n:08d}" for n in range(args.posts + 1)]
    tokens = [form_token.issue(secret, draft, served) for draft in drafts]

    def post(n: int) -> None:
        form = dict(values, draft=drafts[n], csrf_token=tokens[n])
        address = {"REMOTE_ADDR": f"10.0.{n % 250}.{n // 250 % 250}"}
        kind = {"content_type": "multipart/form-data"} if args.multipart else {}
        response = client.post("/x/nhuan-duc/khai-sinh", data=form, environ_base=address, **kind)
        assert response.status_code == 303, response.status_code

    warm = 50
    for n in range(1, warm + 1):
        post(n)
    profile = cProfile.Profile()
    server = submit_bench.database_cpu_seconds() if args.server_cpu else 0.0
    started, cpu = time.perf_counter(), time.process_time()
    if not args.time_only:
        profile.enable()
    for n in range(warm + 1, args.posts + 1):
        post(n)
    profile.disable()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    count = args.posts - warm
    if args.server_cpu:
        server = submit_bench.database_cpu_seconds() - server
        print(f"PostgreSQL server processes: {server * 1000 / count:.2f} ms CPU per post")
    print(
        f"{count} posts: {elapsed * 1000 / count:.2f} ms per post, {cpu * 1000 / count:.2f} ms CPU"
        + ("" if args.time_only else " (profiled)")
    )
    if args.time_only:
        return
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    if args.callees:
        stats.sort_stats("cumulative").print_callees(args.callees)
    if args.callers:
        stats.sort_stats("cumulative").print_callers(args.callers)


if __name__ == "__main__":
    main()
