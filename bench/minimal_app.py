"""Baseline for bench/submit_bench.py: the least a submission endpoint can do.

Parses the same 15+-field form, signs it with Ed25519 and inserts one row, on the same database;
run under the same gunicorn settings. Our real endpoint is compared with this in the same run.
"""

import base64
import json
import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask, request
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, event

URL = os.environ["MINIMAL_DATABASE_URL"]
engine = create_engine(URL)
if engine.dialect.name == "sqlite":

    @event.listens_for(engine, "connect")
    def _pragmas(conn, _rec):  # type: ignore[no-untyped-def]
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA synchronous=FULL")  # as durable as the kiosk: one fsync per commit


meta = MetaData()
rows = Table(
    "minimal_submission",
    meta,
    Column("id", Integer, primary_key=True),
    Column("body", Text),
    Column("signature", String(100)),
)
meta.create_all(engine, checkfirst=True)
key = Ed25519PrivateKey.generate()
app = Flask(__name__)


@app.get("/")
def ready():  # type: ignore[no-untyped-def]
    return "ok"


@app.post("/submit")
def submit():  # type: ignore[no-untyped-def]
    body = json.dumps(request.form.to_dict(), sort_keys=True, ensure_ascii=False).encode()
    signature = base64.b64encode(key.sign(body)).decode()
    with engine.begin() as conn:
        conn.execute(rows.insert().values(body=body.decode(), signature=signature))
    return "ok"
