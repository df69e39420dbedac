"""The server's log: JSON lines with route, status and timing, and nothing that identifies a
citizen (no form values, no addresses, no query strings), even when a library or an exception
puts one in a message."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from flask import Flask

from logs import configure_logging, scrub
from tests.citizen import file_fields, open_form, photo, post_form, valid_values


@pytest.fixture()
def logged(app: Flask) -> Iterator[tuple[Flask, io.StringIO]]:
    from application import create_app

    fresh = create_app({k: app.config[k] for k in ("INSTANCE_PATH", "DATABASE_URL", "TESTING")})
    out = io.StringIO()
    handler = configure_logging(fresh, stream=out)
    try:
        yield fresh, out
    finally:
        logging.getLogger().removeHandler(handler)
        fresh.extensions["kiosk"].db.dispose()


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_requests_are_logged_as_json_without_personal_data(
    logged: tuple[Flask, io.StringIO],
) -> None:
    app, out = logged
    client = app.test_client()
    defn = app.extensions["kiosk"].catalog.get("khai-sinh")
    values = valid_values(defn, seed=23)
    _, csrf, draft = open_form(client, "khai-sinh")
    files = {name: [(photo(), "giấy chứng sinh Nguyễn.jpg")] for name in file_fields(defn)}
    done = post_form(client, defn, values, csrf=csrf, draft=draft, files=files)
    assert done.status_code == 303
    client.get(
        "/tra-cuu?ma=79001-250101-0001&k=SECRETKEY9", environ_base={"REMOTE_ADDR": "203.0.113.9"}
    )
    records = lines(out)
    requests = [r for r in records if r["msg"] == "request"]
    assert {(r["method"], r["route"], r["status"]) for r in requests} >= {
        ("GET", "/x/<slug>/<code>", 200),
        ("POST", "/x/<slug>/<code>", 303),
        ("GET", "/tra-cuu", 404),
    }
    assert all(isinstance(r["ms"], float) and r["request_id"] for r in requests)
    text = out.getvalue()
    typed = [v for v in values.values() if len(v) >= 4]
    for needle in [*typed, "SECRETKEY9", "203.0.113.9", "79001-250101-0001", "Nguyễn.jpg"]:
        assert needle not in text, needle


def test_what_libraries_and_exceptions_say_is_scrubbed(
    logged: tuple[Flask, io.StringIO],
) -> None:
    _, out = logged
    log = logging.getLogger("some.library")
    log.warning("client 198.51.100.7 sent GET /tra-cuu?ma=X&k=SECRET for 079203001234")
    try:
        raise ValueError("bad phone 0912 345 678 from fe80::1 mail an@example.vn")
    except ValueError:
        log.exception("failed")
    text = out.getvalue()
    for needle in ("198.51.100.7", "k=SECRET", "079203001234", "0912 345 678", "fe80::1", "an@"):
        assert needle not in text, needle
    records = lines(out)
    assert records[-1]["msg"] == "failed" and "ValueError" in str(records[-1]["exc"])


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("GET /tra-cuu?ma=1&k=2 HTTP/1.1", "GET /tra-cuu?(query hidden) HTTP/1.1"),
        ("at 12:30:45 on 2025-01-01", "at 12:30:45 on 2025-01-01"),
        ("dossier 79001-250101-0001", "dossier 79001-250101-0001"),
        ("[parameters: ('Nguyễn Văn A', 3)] (Background", "[parameters: (hidden)] (Background"),
        ("Cookie: session=abc.def", "Cookie: (hidden)"),
    ],
)
def test_scrub(raw: str, clean: str) -> None:
    assert scrub(raw) == clean


def test_the_request_line_is_the_same_written_directly_or_through_logging(
    logged: tuple[Flask, io.StringIO],
) -> None:
    """With our handler alone on the root logger the request line skips the logging machinery
    (logs._write_request_line); it must read exactly as the formatter writes it."""
    app, out = logged
    client = app.test_client()
    root = logging.getLogger()
    others = [h for h in root.handlers if not getattr(h, "kiosk_json", False)]
    for handler in others:  # pytest's capture: the line then goes the usual way
        root.removeHandler(handler)
    try:
        client.get("/tra-cuu", headers={"X-Request-ID": "direct-0001"})
    finally:
        for handler in others:
            root.addHandler(handler)
    extra = logging.NullHandler()
    root.addHandler(extra)
    try:
        client.get("/tra-cuu", headers={"X-Request-ID": "logged-0001"})
    finally:
        root.removeHandler(extra)
    by_id = {r.get("request_id"): r for r in lines(out) if r["msg"] == "request"}
    direct, logged_line = by_id["direct-0001"], by_id["logged-0001"]
    assert list(direct) == list(logged_line)
    for name in ("level", "logger", "pid", "method", "route", "status", "bytes"):
        assert direct[name] == logged_line[name], name
    assert direct["route"] == "/tra-cuu" and isinstance(direct["ms"], float)
