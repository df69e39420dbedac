"""Bilingual text (văn bản song ngữ).

Citizens read Vietnamese; an English switch exists for the odd foreign resident and for reviewers.
Every sentence the domain says to a person is a `Message` carrying both, and the caller picks one.
"""

from dataclasses import dataclass
from typing import Literal

Lang = Literal["vi", "en"]


@dataclass(frozen=True, slots=True)
class Message:
    """One sentence in Vietnamese and in English."""

    vi: str
    en: str

    def in_(self, lang: Lang) -> str:
        return self.en if lang == "en" else self.vi

    def format(self, **values: object) -> "Message":
        return Message(self.vi.format(**values), self.en.format(**values))


def typed_id(text: str) -> int | None:
    """A row id, revision or page marker from a form or an address: ASCII digits only, at most
    18 of them (a bigger number is no row, and Python refuses to read a 5,000-digit one)."""
    if 0 < len(text) <= 18 and text.isascii() and text.isdigit():
        return int(text)
    return None
