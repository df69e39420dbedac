"""Procedure definitions (định nghĩa thủ tục hành chính).

A procedure definition says what a citizen must declare and attach to file one administrative
procedure, and what the commune promises in return (processing time, fee, where to get the result).
Definitions are data (one TOML file per procedure in this folder), checked against this schema when
loaded. A definition is versioned by the SHA-256 of its canonical form: a dossier records the
version it was filed under, so editing a procedure never changes what an old dossier means.

These are plain frozen dataclasses; the loader (`procedures.catalog`) builds them from TOML and
reports every problem with the file, the field and what is wrong.
"""

from dataclasses import dataclass
from enum import StrEnum


class FieldKind(StrEnum):
    """The kinds of form field (CONTRACT.md, public HTTP)."""

    TEXT = "text"
    TEXTAREA = "textarea"
    PERSON_NAME = "person_name"
    DATE = "date"
    CCCD = "cccd"
    PHONE = "phone"
    EMAIL = "email"
    INTEGER = "integer"
    SELECT = "select"
    CHECKBOX = "checkbox"
    ADDRESS = "address"
    FILE = "file"


class FeeKind(StrEnum):
    """How a procedure's fee (lệ phí) is computed."""

    FREE = "free"
    FIXED = "fixed"  # amount per case
    PER_COPY = "per_copy"  # amount × number of copies (field named by `quantity_field`)
    PER_PAGE = "per_page"  # certified-copy scale: first pages, then later pages, capped per copy
    PER_COMMUNE = "per_commune"  # set by each commune (provincial council resolution)


@dataclass(frozen=True, slots=True)
class Label:
    vi: str
    en: str


@dataclass(frozen=True, slots=True)
class Option:
    value: str
    label: Label


@dataclass(frozen=True, slots=True)
class Condition:
    """Show and require a field only when another field has one of some values.

    `field` names another field of the same definition; `equals` lists the values that make this
    field apply (a checkbox is "on" when checked).
    """

    field: str
    equals: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str  # [a-z][a-z0-9_]*, unique within the definition
    kind: FieldKind
    label: Label
    hint: Label | None = None
    required: bool = False
    options: tuple[Option, ...] = ()  # select only
    condition: Condition | None = None
    section: str = ""  # name of the Section it belongs to ("" = none)
    # Limits; which apply depends on the kind.
    min_length: int | None = None
    max_length: int | None = None
    min_value: int | None = None  # integer
    max_value: int | None = None  # integer
    past_only: bool = False  # date: not in the future
    max_age_days: int | None = None  # date: legal window, e.g. birth registered within 60 days
    allow_cmnd: bool = False  # cccd: also accept the old 9-digit CMND
    # For a cccd field: names of the date-of-birth and sex fields of the same person, so the ID's
    # century/sex digit and birth year can be checked against them.
    birth_date_field: str | None = None
    sex_field: str | None = None
    # file only
    accept: tuple[str, ...] = ("image/jpeg", "image/png", "application/pdf")
    max_files: int = 1


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    title: Label
    hint: Label | None = None


@dataclass(frozen=True, slots=True)
class Fee:
    kind: FeeKind
    amount: int = 0  # VND: per case, per copy, or per page for the first pages
    later_page_amount: int = 0  # per_page: from page `later_pages_from` on
    later_pages_from: int = 3
    cap_per_copy: int = 0  # per_page: 0 = no cap
    quantity_field: str | None = None  # per_copy / per_page: field that holds the count
    pages_field: str | None = None  # per_page: field that holds the page count
    # Free when filed within the legal window (on-time birth/death registration): the dossier is
    # on time when it is received at most `on_time_days` days after the date in `on_time_field`.
    free_if_on_time: bool = False
    on_time_field: str | None = None
    on_time_days: int = 0
    note: Label | None = None
    # Exempt groups (Luật Hộ tịch Điều 11.1.a: families of people with meritorious service to the
    # revolution, poor households, people with disabilities): a select field, not required, where
    # the citizen declares the group. A dossier that declares one owes nothing until an official
    # has checked the proof; if it does not hold, the official puts the fee back.
    exemption_field: str | None = None


@dataclass(frozen=True, slots=True)
class ProcedureDefinition:
    code: str  # stable, e.g. "khai-sinh"
    name: Label
    legal_basis: tuple[str, ...]
    documents: tuple[Label, ...]  # papers to submit or bring
    processing_days: int  # working days; 0 = same day (with the after-15:00 rule)
    max_processing_days: int  # the legal maximum (with verification); communes may not exceed it
    fee: Fee
    in_person_result: bool  # must the citizen come to receive the result?
    agency: str  # who handles it: "ubnd" (commune People's Committee) or "cong-an" (commune police)
    retention_days: int  # how long personal data is kept after the dossier is closed
    sections: tuple[Section, ...] = ()
    fields: tuple[FieldDef, ...] = ()
    summary: Label | None = None
    tags: tuple[str, ...] = ()

    def get_field(self, name: str) -> FieldDef | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None
