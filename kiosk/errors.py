"""Friendly error pages in Vietnamese (English when switched): never a stack trace, SQL or path."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, make_response, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger("kiosk.errors")

RETRY_AFTER_SECONDS = 30

PAGES: dict[int, tuple[tuple[str, str], tuple[str, str]]] = {
    400: (
        ("Yêu cầu không hợp lệ", "Bad request"),
        (
            "Trang không hiểu được yêu cầu này. Xin quay lại và thử lại.",
            "The page could not understand this request. Please go back and try again.",
        ),
    ),
    403: (
        ("Không được phép", "Not allowed"),
        ("Bạn không có quyền xem trang này.", "You are not allowed to see this page."),
    ),
    404: (
        ("Không tìm thấy trang", "Page not found"),
        (
            "Địa chỉ này không có trên hệ thống. Nếu bạn vừa quét một mã QR, mã đó có thể "
            "không phải của xã: xin hỏi cán bộ tại bộ phận Một cửa.",
            "This address does not exist here. If you just scanned a QR code, it may not be the "
            "commune's: please ask at the one-stop desk.",
        ),
    ),
    405: (
        ("Không thực hiện được", "Not possible"),
        ("Trang này không nhận thao tác đó.", "This page does not accept that action."),
    ),
    410: (
        ("Không còn sử dụng", "No longer in use"),
        (
            "Trang hoặc mã QR này đã bị thu hồi và không còn dùng được.",
            "This page or QR code has been withdrawn and no longer works.",
        ),
    ),
    413: (
        ("Tệp quá lớn", "File too large"),
        (
            "Tệp hoặc ảnh bạn gửi quá lớn. Xin chụp lại ảnh với độ phân giải thấp hơn, hoặc gửi "
            "từng ảnh một.",
            "The file or photo you sent is too large. Please take the photo at a lower resolution, "
            "or send one photo at a time.",
        ),
    ),
    422: (
        ("Thông tin chưa đúng", "Some information is not right"),
        ("Xin kiểm tra lại các ô được đánh dấu.", "Please check the marked fields."),
    ),
    429: (
        ("Quá nhiều lần thử", "Too many attempts"),
        (
            "Bạn đã thử quá nhiều lần trong thời gian ngắn. Xin đợi một lát rồi thử lại.",
            "You tried too many times in a short while. Please wait a moment and try again.",
        ),
    ),
    500: (
        ("Hệ thống gặp sự cố", "Something went wrong"),
        (
            "Hệ thống gặp sự cố ngoài ý muốn. Thông tin bạn đã gửi trước đó không bị mất. Xin thử "
            "lại sau ít phút.",
            "Something went wrong on our side. What you sent before is not lost. Please try again "
            "in a few minutes.",
        ),
    ),
    503: (
        ("Hệ thống đang bận", "The service is busy"),
        (
            "Hệ thống tạm thời chưa trả lời được. Thông tin bạn nhập chưa được gửi: xin bấm quay "
            "lại, rồi gửi lại sau ít phút.",
            "The service cannot answer right now. What you typed has not been sent: please go "
            "back and send it again in a few minutes.",
        ),
    ),
}


def error_page(status: int, *, message: str | None = None) -> ResponseReturnValue:
    lang = getattr(g, "lang", "vi")
    i = 1 if lang == "en" else 0
    (title, text) = PAGES.get(status, PAGES[500])
    retry_after = RETRY_AFTER_SECONDS if status in (429, 503) else None
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    if request.path.startswith("/api/"):
        body = jsonify({"error": {"status": status, "message": message or text[i]}})
        return body, status, headers
    html = render_template(
        "errors/error.html",
        status=status,
        title=title[i],
        message=message or text[i],
        retry_after=retry_after,
    )
    return html, status, headers


def _try_again() -> ResponseReturnValue:
    """503 with Retry-After: a submission's form comes back with what was typed, else a page."""
    from kiosk.views import form_while_database_down

    try:
        form = form_while_database_down()
    except Exception:  # noqa: BLE001 - the answer to a failure must not fail in turn
        log.exception("the form could not be shown again")
        form = None
    if form is None:
        return error_page(503)
    response = make_response(form)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        if status not in PAGES:
            return exc
        return error_page(status)

    @app.errorhandler(OperationalError)
    def _db_down(exc: OperationalError) -> ResponseReturnValue:
        # Database locked for too long or unreachable: a "try again" page, not a crash.
        log.warning("database unavailable: %s", type(exc.orig).__name__ if exc.orig else exc)
        return _try_again()

    @app.errorhandler(DBAPIError)
    def _db_error(exc: DBAPIError) -> ResponseReturnValue:
        if exc.connection_invalidated:
            return _try_again()
        log.error("database error on %s %s: %s", request.method, request.path, type(exc.orig))
        return error_page(500)

    @app.errorhandler(InternalServerError)
    def _internal(exc: InternalServerError) -> ResponseReturnValue:
        original = exc.original_exception
        log.error(
            "unhandled %s on %s %s",
            type(original).__name__ if original else "error",
            request.method,
            request.path,
            exc_info=original,
        )
        return error_page(500)
