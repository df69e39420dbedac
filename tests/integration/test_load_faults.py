"""The load and fault suite (bench/load_faults.py) at a size CI affords, on the suite's database.

Real citizens' submissions (GET the form, POST it with its CSRF token and a photo) through gunicorn
with 4 workers while workers are killed, the whole server is killed and restarted, and the
database stops answering for 20 s. The script then reads the database back as an auditor would.
Nothing here is timed: the assertions are on what was stored. The full-size run (5,000
submissions, 64 clients, and the slow-client timings) is `make bench` (README, Reliability).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_DATABASE_URL

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("baseline", "worker-kill", "server-kill", "db-outage")

pytestmark = pytest.mark.slow


def _engine() -> str:
    if not TEST_DATABASE_URL:
        return "sqlite"
    # PostgreSQL: the script makes a private cluster it may stop and start, as user postgres.
    if os.geteuid() != 0 or not shutil.which("runuser") or not Path("/usr/lib/postgresql").is_dir():
        pytest.skip("a private PostgreSQL cluster needs root, runuser and Debian's postgresql")
    return "postgresql"


def test_nothing_is_lost_under_load_kills_and_a_database_outage() -> None:
    engine = _engine()
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "load_faults.py"),
            "--engine",
            engine,
            "--submissions",
            "400",
            "--clients",
            "16",
            "--scenarios",
            ",".join(SCENARIOS),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    report = done.stdout + done.stderr[-3000:]
    assert done.returncode == 0, report
    for scenario in SCENARIOS:
        assert f"[{scenario}] 400 acknowledged" in done.stdout, report
    assert done.stdout.count("=> PASS") == len(SCENARIOS), report
    assert done.stdout.count("acknowledged but missing 0,") == len(SCENARIOS), report
    assert done.stdout.count("duplicate codes 0") == len(SCENARIOS), report
    assert done.stdout.count("signatures failing 0,") == len(SCENARIOS), report
