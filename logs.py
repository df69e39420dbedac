"""The server's log: one JSON object per line on stderr, with no personal data in it.

What a line may hold: the time (UTC), level, logger, message, process id, and for a request its
method, route pattern (``/x/<slug>/<code>``, never the filled-in path), status, size, duration and
a request id (the proxy's ``X-Request-ID`` when it is a plain token, else a random one), so the
lines of one request can be found together. What it never holds: form values, file names, client
addresses, query strings (a status link carries the citizen's secret), cookies or headers.

That is first a matter of what the code logs (views log routes and outcomes, never values). The
`Redact` filter is the second line: whatever reaches the handler, including messages of
third-party libraries and the text of exceptions, has IP addresses, query strings, e-mail
addresses, long digit runs (ID card numbers, phone numbers), SQL parameters and any logged
cookie or authorization value replaced before it is written.

`configure_logging(app)` is called once by the app factory; calling it again (tests build many
apps) replaces the handler instead of adding a second one. `KIOSK_LOG_LEVEL` sets the level
(default INFO) and `KIOSK_LOG_REQUESTS=false` turns the per-request line off (when the proxy's
access log is enough).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any

from flask import Flask, Response, g, has_request_context, request

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
# Full or compressed IPv6 (at least four colons, or a "::"), so "12:30:45" stays a time.
_IPV6 = re.compile(
    r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){4,7}[0-9A-Fa-f]{0,4}(?![\w:])"
    r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:)*[0-9A-Fa-f]{0,4}::(?:[0-9A-Fa-f]{1,4}:?)*(?![\w:])"
)
_QUERY = re.compile(r"(/[^\s?\"'<>]*)\?[^\s\"'<>]+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_LONG_NUMBER = re.compile(r"(?<![\w.])\+?\d{9,}(?![\w.])")
_SPACED_PHONE = re.compile(r"(?<![\w.])(?:\+84|0)\d{2,3}[ .-]\d{3}[ .-]\d{3,4}(?![\w.])")
_SQL_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\s*(?:\(|\[|$))", re.S)
_SECRET_HEADER = re.compile(r"(?i)\b(cookie|set-cookie|authorization)\b(\s*[:=]\s*)[^\n]+")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def scrub(text: str) -> str:
    """`text` with anything that could identify a person replaced by a placeholder."""
    text = _SQL_PARAMETERS.sub("[parameters: (hidden)]", text)
    text = _SECRET_HEADER.sub(r"\1\2(hidden)", text)
    text = _QUERY.sub(r"\1?(query hidden)", text)
    text = _EMAIL.sub("(email)", text)
    text = _IPV4.sub("(address)", text)
    text = _IPV6.sub("(address)", text)
    text = _SPACED_PHONE.sub("(number)", text)
    return _LONG_NUMBER.sub("(number)", text)


class Redact(logging.Filter):
    """Scrubs the formatted message and exception text of every record the handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad %-format from a library: keep the template only
            message = str(record.msg)
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        record.exc_info = None  # the scrubbed text above is what gets written
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


# Attributes a request adds to a record (set by `_RequestContext`), written when present.
_REQUEST_FIELDS = ("request_id", "method", "route", "status", "bytes", "ms")


class _RequestContext(logging.Filter):
    """Adds the current request's id, method and route to every record logged during it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = getattr(g, "request_id", None)
            record.method = getattr(record, "method", request.method)
            if not hasattr(record, "route"):
                record.route = request.url_rule.rule if request.url_rule else "(no route)"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {name: getattr(record, name, None) for name in _REQUEST_FIELDS}
        fields["exc"] = record.exc_text or None
        fields["stack"] = record.stack_info or None
        message = record.getMessage()
        return _json_line(
            record.created, record.levelname, record.name, message, record.process, fields
        )


def _json_line(
    created: float, level: str, logger: str, msg: str, pid: int | None, fields: dict[str, Any]
) -> str:
    """One log line: time, level, logger, message and process, then `fields` that have a value,
    in their order."""
    line: dict[str, Any] = {
        "ts": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
        "level": level.lower(),
        "logger": logger,
        "msg": msg,
        "pid": pid,
    }
    line.update((name, value) for name, value in fields.items() if value is not None)
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of writing (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _handler(stream: IO[str] | None = None) -> logging.Handler:
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.addFilter(_RequestContext())
    handler.addFilter(Redact())
    handler.setFormatter(JsonFormatter())
    handler.kiosk_json = True  # type: ignore[attr-defined]  # marks ours, for idempotence
    return handler


def configure_logging(app: Flask, stream: IO[str] | None = None) -> logging.Handler:
    """JSON lines on stderr (or `stream`) for the whole process, and one line per request."""
    level = logging.getLevelName(str(app.config.get("LOG_LEVEL", "INFO")).upper())
    if not isinstance(level, int):
        level = logging.INFO
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "kiosk_json", False)]:
        root.removeHandler(old)
    handler = _handler(stream)
    handler.setLevel(level)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    # Flask's own logger writes to its default handler only when nothing else is configured.
    app.logger.propagate = True
    if _as_bool(app.config.get("LOG_REQUESTS", True)):
        _log_requests(app)
    return handler


def _as_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


request_log = logging.getLogger("kiosk.request")


def _log_requests(app: Flask) -> None:
    if app.extensions.get("kiosk_request_log"):
        return
    app.extensions["kiosk_request_log"] = True

    @app.before_request
    def _start() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.match(given) else secrets.token_hex(8)
        g.request_started = time.perf_counter()

    @app.after_request
    def _done(response: Response) -> Response:
        started = getattr(g, "request_started", None)
        elapsed = (time.perf_counter() - started) * 1000 if started is not None else None
        fields = {
            "status": response.status_code,
            "bytes": response.calculate_content_length(),
            "ms": round(elapsed, 1) if elapsed is not None else None,
        }
        handler = _sole_json_handler()
        if handler is None:
            request_log.info("request", extra=fields)
        else:
            _write_request_line(handler, fields)
        return response


def _sole_json_handler() -> logging.StreamHandler | None:  # type: ignore[type-arg]
    """Our JSON handler, when a request line logged through `request_log` would reach it and
    nothing else: no handler, filter or level on the way that could change or drop the line.
    Anything else (a test's capture, an operator's extra handler) gets the line the usual way."""
    if not request_log.isEnabledFor(logging.INFO) or request_log.filters:
        return None
    logger: logging.Logger | None = request_log
    while logger is not None and logger.parent is not None:  # up to the root
        if logger.handlers or (logger is not request_log and logger.filters):
            return None
        if not logger.propagate:
            return None
        logger = logger.parent
    root = logging.getLogger()
    if len(root.handlers) != 1:
        return None
    handler = root.handlers[0]
    if not getattr(handler, "kiosk_json", False) or handler.level > logging.INFO:
        return None
    return handler  # type: ignore[return-value]


def _write_request_line(handler: logging.StreamHandler, fields: dict[str, Any]) -> None:  # type: ignore[type-arg]
    """The line `JsonFormatter` writes for `request_log.info("request", extra=fields)` (both
    through `_json_line`), written without building a log record: the request line is a sixth
    of the time of a citizen's submission otherwise (bench/submit_bench.py). Its fields are
    ours (a route pattern, a checked request id, numbers): nothing for `Redact` to scrub."""
    text = _json_line(
        time.time(),
        "info",
        request_log.name,
        "request",
        os.getpid(),
        {
            "request_id": getattr(g, "request_id", None),
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule else "(no route)",
            **fields,
        },
    )
    handler.acquire()
    try:
        stream = sys.stderr if isinstance(handler, _StderrHandler) else handler.stream
        stream.write(text + handler.terminator)
        stream.flush()
    except Exception:  # as logging does: a broken log stream never fails the request
        handler.handleError(logging.makeLogRecord({"name": request_log.name, "msg": "request"}))
    finally:
        handler.release()
