"""Helpers for the admin panel's tests: read a page's form as a browser would post it.

`form_data(html, action)` finds the form whose action ends with `action` and returns what the
browser would send for it unchanged ({name: [values]}): text inputs and textareas as shown,
checkboxes and radios only when checked, a select's selected option (else its first). Posting
that back is what "an unchanged page changes nothing" and "nothing typed is lost" are about.
"""

from __future__ import annotations

import html as html_lib
import re
from html.parser import HTMLParser
from typing import Any


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[dict[str, str], list[tuple[str, str]]]] = []
        self._fields: list[tuple[str, str]] | None = None
        self._select: tuple[str, list[tuple[str, bool]]] | None = None
        self._option: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._fields = []
            self.forms.append((a, self._fields))
        if self._fields is None:
            return
        if tag == "input":
            kind = a.get("type", "text")
            name = a.get("name")
            if not name or kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self._fields.append((name, a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self._text = []
        elif tag == "select" and a.get("name"):
            self._select = (a["name"], [])
        elif tag == "option" and self._select is not None:
            self._option = a.get("value")
            self._select[1].append((a.get("value", ""), "selected" in a))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._fields is None:
            return
        if tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            self._fields.append((self._textarea, text[1:] if text.startswith("\n") else text))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            name, options = self._select
            chosen = [v for v, selected in options if selected] or [v for v, _ in options[:1]]
            for value in chosen:
                self._fields.append((name, value))
            self._select = None
        elif tag == "form":
            self._fields = None


def form_data(page: str, action: str) -> dict[str, list[str]]:
    """The form whose action ends with `action`, as a browser would post it unchanged."""
    parser = _Forms()
    parser.feed(page)
    for attrs, fields in parser.forms:
        if html_lib.unescape(attrs.get("action", "")).split("?")[0].endswith(action):
            out: dict[str, list[str]] = {}
            for name, value in fields:
                out.setdefault(name, []).append(value)
            return out
    raise AssertionError(f"no form posting to {action}")


def post_data(form: dict[str, list[str]], **changes: Any) -> dict[str, Any]:
    """A form with some inputs changed (None removes one: an unticked box), ready to post."""
    out: dict[str, Any] = {k: list(v) for k, v in form.items()}
    for key, value in changes.items():
        name = key.replace("__", ".")
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value if isinstance(value, list) else [value]
    return out


def errors_beside(page: str, field_id: str) -> str:
    """The text of the problems shown beside an input (its `…-error` block)."""
    match = re.search(
        rf'<div class="error" id="{re.escape(field_id)}-error">(.*?)</div>', page, re.S
    )
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", match.group(1))) if match else ""
