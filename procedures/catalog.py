"""The procedure catalog (danh mục thủ tục hành chính): one TOML file per procedure.

Each file in this folder describes one procedure against `procedures.schema`. The people who edit
these files are commune staff, not programmers, so reading a file never stops at the first mistake:
every problem is collected and reported with the file, the place in it (`fields[3].options`) and
what is wrong, one per line.

Two layers of rules:

* Integrity (`load_definition`, `definition_from_dict`): types, unknown keys, names, references
  between fields, fee consistency. A procedure version stored in the database is parsed again by
  `load_definition` for as long as a dossier filed under it exists, so these rules may be loosened
  but never tightened.
* Authoring (`authoring_problems`, applied by `load_catalog` to the files being edited): every
  procedure lets the office call the citizen back, limits only where they apply, and so on. These
  only judge new text, so they may be tightened freely.

`dump_definition` writes the same format back, so `load_definition(dump_definition(d)) == d` for
every definition the loader can produce (the admin editor exports and imports through it), and
`definition_version` is the SHA-256 of a canonical JSON form: a dossier records it, so editing a
procedure never changes what an old dossier means.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, overload

import tomli_w

from procedures.schema import (
    Condition,
    Fee,
    FeeKind,
    FieldDef,
    FieldKind,
    Label,
    Option,
    ProcedureDefinition,
    Section,
)

CATALOG_DIR = Path(__file__).resolve().parent
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]*")
CODE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
AGENCIES = ("ubnd", "cong-an")  # commune People's Committee, commune police
FILE_TYPES = ("image/jpeg", "image/png", "application/pdf")
MAX_FILES = 10
SEX_VALUES = frozenset({"nam", "nu"})  # what the ID check reads from a sex field (core.identity)
CHECKED = "on"  # the value a ticked checkbox stands for in a condition
LENGTH_KINDS = frozenset(
    {FieldKind.TEXT, FieldKind.TEXTAREA, FieldKind.PERSON_NAME, FieldKind.ADDRESS, FieldKind.EMAIL}
)
ORDER_LINE = re.compile(r"^#\s*order:\s*(\d+)\s*$", re.MULTILINE)
UNORDERED = 10_000  # files without an "# order: N" line come after the others, by code

_TOP_KEYS = tuple(f.name for f in fields(ProcedureDefinition))
_TOP_REQUIRED = tuple(  # what the schema gives no default
    f.name for f in fields(ProcedureDefinition) if f.default is MISSING
)
_FEE_KEYS = tuple(f.name for f in fields(Fee))
_FIELD_KEYS = tuple(f.name for f in fields(FieldDef))
_DEFAULT_FEE = Fee(kind=FeeKind.FREE)
_DEFAULT_FIELD = FieldDef(name="x", kind=FieldKind.TEXT, label=Label("x", "x"))


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in one file: where (`fields[3].kind`, "" for the whole file) and what."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}: {where}{self.message}"


class CatalogError(Exception):
    """One or more definition files that cannot be used; `str()` lists every problem, one a line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --- Reading: every problem is recorded, reading goes on ----------------------------------------


def _at(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _type_name(value: object) -> str:
    """What a TOML author would call the value they wrote."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__  # dates and times: TOML has them, the catalog never uses them


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.source, path, message))

    def table(self, value: object, path: str) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.add(path, f"expected a table ({{ key = value, … }}), got {_type_name(value)}")
        return None

    def keys(
        self, table: Mapping[str, Any], path: str, allowed: Iterable[str], required: Iterable[str]
    ) -> None:
        allowed = tuple(allowed)
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = (
                    f"did you mean '{close[0]}'?"
                    if close
                    else f"expected one of: {', '.join(allowed)}"
                )
                self.add(_at(path, key), f"unknown key '{key}' ({hint})")
        for key in required:
            if key not in table:
                self.add(_at(path, key), "missing")

    def text(self, table: Mapping[str, Any], key: str, path: str) -> str | None:
        """A non-blank text (NFC), or None when absent (a required key is reported by `keys`)."""
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, str):
            self.add(_at(path, key), f"expected text in quotes, got {_type_name(value)}")
            return None
        if not value.strip():
            self.add(_at(path, key), "must not be empty")
            return None
        return unicodedata.normalize("NFC", value)

    def integer(self, table: Mapping[str, Any], key: str, path: str) -> int | None:
        if key not in table:
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(_at(path, key), f"expected a whole number, got {_type_name(value)}")
            return None
        return int(value)

    def boolean(self, table: Mapping[str, Any], key: str, path: str) -> bool | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, bool):
            self.add(_at(path, key), f"expected true or false, got {_type_name(value)}")
            return None
        return value

    def items(self, table: Mapping[str, Any], key: str, path: str) -> list[Any]:
        if key not in table:
            return []
        value = table[key]
        if not isinstance(value, list):
            self.add(_at(path, key), f"expected a list [ … ], got {_type_name(value)}")
            return []
        return value

    def texts(self, table: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        out = []
        for i, item in enumerate(self.items(table, key, path)):
            if not isinstance(item, str):
                self.add(_at(_at(path, key), i), f"expected text in quotes, got {_type_name(item)}")
            elif not item.strip():
                self.add(_at(_at(path, key), i), "must not be empty")
            else:
                out.append(unicodedata.normalize("NFC", item))
        return tuple(out)

    def label(self, value: object, path: str) -> Label | None:
        table = self.table(value, path)
        if table is None:
            return None
        self.keys(table, path, ("vi", "en"), ("vi", "en"))
        vi, en = self.text(table, "vi", path), self.text(table, "en", path)
        return Label(vi=vi, en=en) if vi is not None and en is not None else None

    def optional_label(self, table: Mapping[str, Any], key: str, path: str) -> Label | None:
        return self.label(table[key], _at(path, key)) if key in table else None

    def labels(self, table: Mapping[str, Any], key: str, path: str) -> tuple[Label, ...]:
        out = []
        for i, item in enumerate(self.items(table, key, path)):
            label = self.label(item, _at(_at(path, key), i))
            if label is not None:
                out.append(label)
        return tuple(out)


def _enum_problem(what: str, value: str, choices: Iterable[str]) -> str:
    return f"unknown {what} '{value}' (expected one of: {', '.join(choices)})"


def _read_field(r: _Reader, value: object, path: str) -> tuple[str | None, FieldDef | None]:
    """The field's name and the field; the field is None when its name, kind or label is unusable.

    Every key is read (and every problem recorded) even when the field itself cannot be built.
    """
    table = r.table(value, path)
    if table is None:
        return None, None
    r.keys(table, path, _FIELD_KEYS, ("name", "kind", "label"))
    name = r.text(table, "name", path)
    if name is not None and not FIELD_NAME.fullmatch(name):
        r.add(
            _at(path, "name"),
            f"'{name}' must start with a lower-case letter and use only a–z, 0–9 and _",
        )
    kind: FieldKind | None = None
    kind_text = r.text(table, "kind", path)
    if kind_text is not None:
        try:
            kind = FieldKind(kind_text)
        except ValueError:
            r.add(_at(path, "kind"), _enum_problem("kind", kind_text, (k.value for k in FieldKind)))
    label = r.label(table["label"], _at(path, "label")) if "label" in table else None
    hint = r.optional_label(table, "hint", path)
    options = tuple(_read_options(r, table, path))
    condition = _read_condition(r, table, path)
    flags = {key: r.boolean(table, key, path) for key in ("required", "past_only", "allow_cmnd")}
    numbers = {
        key: r.integer(table, key, path)
        for key in ("min_length", "max_length", "min_value", "max_value", "max_age_days")
    }
    links = {key: r.text(table, key, path) for key in ("birth_date_field", "sex_field")}
    section = r.text(table, "section", path)
    accept = r.texts(table, "accept", path) if "accept" in table else _DEFAULT_FIELD.accept
    max_files = r.integer(table, "max_files", path)
    if name is None or kind is None or label is None:
        return name, None
    return name, FieldDef(
        name=name,
        kind=kind,
        label=label,
        hint=hint,
        required=bool(flags["required"]),
        options=options,
        condition=condition,
        section=section or "",
        min_length=numbers["min_length"],
        max_length=numbers["max_length"],
        min_value=numbers["min_value"],
        max_value=numbers["max_value"],
        past_only=bool(flags["past_only"]),
        max_age_days=numbers["max_age_days"],
        allow_cmnd=bool(flags["allow_cmnd"]),
        birth_date_field=links["birth_date_field"],
        sex_field=links["sex_field"],
        accept=accept,
        max_files=_DEFAULT_FIELD.max_files if max_files is None else max_files,
    )


def _read_options(r: _Reader, table: Mapping[str, Any], path: str) -> Iterator[Option]:
    for i, item in enumerate(r.items(table, "options", path)):
        opath = _at(_at(path, "options"), i)
        otable = r.table(item, opath)
        if otable is None:
            continue
        r.keys(otable, opath, ("value", "label"), ("value", "label"))
        value = r.text(otable, "value", opath)
        if value is not None and value != value.strip():
            r.add(_at(opath, "value"), "must not begin or end with a space")
        label = r.label(otable["label"], _at(opath, "label")) if "label" in otable else None
        if value is not None and label is not None:
            yield Option(value=value, label=label)


def _read_condition(r: _Reader, table: Mapping[str, Any], path: str) -> Condition | None:
    if "condition" not in table:
        return None
    cpath = _at(path, "condition")
    ctable = r.table(table["condition"], cpath)
    if ctable is None:
        return None
    r.keys(ctable, cpath, ("field", "equals"), ("field", "equals"))
    controller = r.text(ctable, "field", cpath)
    equals = r.texts(ctable, "equals", cpath)
    if isinstance(ctable.get("equals"), list) and not ctable["equals"]:
        r.add(_at(cpath, "equals"), 'list at least one value, e.g. ["on"] for a checkbox')
    if controller is None or not equals:
        return None
    return Condition(field=controller, equals=equals)


def _read_fee(r: _Reader, value: object) -> Fee:
    table = r.table(value, "fee")
    if table is None:
        return _DEFAULT_FEE
    r.keys(table, "fee", _FEE_KEYS, ("kind",))
    kind = FeeKind.FREE
    kind_text = r.text(table, "kind", "fee")
    if kind_text is not None:
        try:
            kind = FeeKind(kind_text)
        except ValueError:
            r.add("fee.kind", _enum_problem("fee kind", kind_text, (k.value for k in FeeKind)))

    def number(key: str) -> int:
        found = r.integer(table, key, "fee")
        return getattr(_DEFAULT_FEE, key) if found is None else found

    on_time = r.boolean(table, "free_if_on_time", "fee")
    return Fee(
        kind=kind,
        amount=number("amount"),
        later_page_amount=number("later_page_amount"),
        later_pages_from=number("later_pages_from"),
        cap_per_copy=number("cap_per_copy"),
        quantity_field=r.text(table, "quantity_field", "fee"),
        pages_field=r.text(table, "pages_field", "fee"),
        free_if_on_time=bool(on_time),
        on_time_field=r.text(table, "on_time_field", "fee"),
        on_time_days=number("on_time_days"),
        note=r.optional_label(table, "note", "fee"),
        exemption_field=r.text(table, "exemption_field", "fee"),
    )


def _read_sections(r: _Reader, top: Mapping[str, Any]) -> list[tuple[str, Section]]:
    """Each readable section with its place in the file."""
    out = []
    for i, item in enumerate(r.items(top, "sections", "")):
        path = _at("sections", i)
        table = r.table(item, path)
        if table is None:
            continue
        r.keys(table, path, ("name", "title", "hint"), ("name", "title"))
        name = r.text(table, "name", path)
        title = r.label(table["title"], _at(path, "title")) if "title" in table else None
        hint = r.optional_label(table, "hint", path)
        if name is not None and not FIELD_NAME.fullmatch(name):
            r.add(
                _at(path, "name"),
                f"'{name}' must start with a lower-case letter and use only a–z, 0–9 and _",
            )
        if name is not None and title is not None:
            out.append((path, Section(name=name, title=title, hint=hint)))
    return out


def _check_fields(
    r: _Reader,
    defn: ProcedureDefinition,
    sections: list[tuple[str, Section]],
    entries: list[tuple[str, FieldDef]],
    unreadable: set[str],
) -> None:
    """References between fields, options, and each field's own settings.

    `sections` and `entries` pair what could be read with its place in the file; `unreadable`
    names fields dropped for an earlier problem, so naming them elsewhere is not reported again.
    """
    section_names: dict[str, str] = {}
    for path, section in sections:
        if section.name in section_names:
            r.add(
                _at(path, "name"),
                f"two sections are named '{section.name}' (also {section_names[section.name]})",
            )
        section_names.setdefault(section.name, path)

    earlier: dict[str, tuple[str, FieldDef]] = {}
    for path, fd in entries:
        if fd.name in earlier:
            r.add(
                _at(path, "name"),
                f"duplicate field name '{fd.name}' (also {earlier[fd.name][0]})",
            )
            continue
        if fd.section and fd.section not in section_names:
            r.add(
                _at(path, "section"),
                f"no section named '{fd.section}' (declare it in a [[sections]] block)",
            )
        if fd.kind == FieldKind.SELECT:
            if not fd.options:
                r.add(_at(path, "options"), "a select needs at least one option")
            seen: set[str] = set()
            for o in fd.options:
                if o.value in seen:
                    r.add(_at(path, "options"), f"two options have the value '{o.value}'")
                seen.add(o.value)
        elif fd.options:
            r.add(_at(path, "options"), f"only a select has options, not a {fd.kind.value} field")
        if fd.condition is not None:
            known = {n: f for n, (_, f) in earlier.items()}
            _check_condition(r, fd.condition, known, path, unreadable)
        _check_identity_links(r, defn, fd, path, unreadable)
        _check_limits(r, fd, path)
        earlier[fd.name] = (path, fd)


def _check_condition(
    r: _Reader,
    condition: Condition,
    earlier: Mapping[str, FieldDef],
    path: str,
    unreadable: set[str],
) -> None:
    where = _at(path, "condition")
    controller = earlier.get(condition.field)
    if controller is None:
        if condition.field in unreadable:
            return
        r.add(
            _at(where, "field"),
            f"refers to '{condition.field}', which is not a field above this one",
        )
        return
    if controller.kind == FieldKind.SELECT:
        values = {o.value for o in controller.options}
        for v in condition.equals:
            if v not in values:
                r.add(
                    _at(where, "equals"),
                    f"'{v}' is not an option of '{controller.name}' "
                    f"(its options: {', '.join(sorted(values))})",
                )
    elif controller.kind == FieldKind.CHECKBOX:
        if condition.equals != (CHECKED,):
            r.add(_at(where, "equals"), f'a checkbox is either ticked or not: write ["{CHECKED}"]')
    elif controller.kind == FieldKind.FILE:
        r.add(
            _at(where, "field"), f"'{controller.name}' is a file field: it cannot control another"
        )


def _check_identity_links(
    r: _Reader, defn: ProcedureDefinition, fd: FieldDef, path: str, unreadable: set[str]
) -> None:
    """A CCCD is checked against its holder's date (or year) of birth and sex."""
    links = (
        ("birth_date_field", fd.birth_date_field, (FieldKind.DATE, FieldKind.INTEGER)),
        ("sex_field", fd.sex_field, (FieldKind.SELECT,)),
    )
    for key, ref, kinds in links:
        if ref is None:
            continue
        if fd.kind != FieldKind.CCCD:
            r.add(_at(path, key), "only a cccd field is checked against a birth date or sex")
            continue
        target = defn.get_field(ref)
        wanted = " or ".join(k.value for k in kinds)
        if target is None:
            if ref not in unreadable:
                r.add(
                    _at(path, key), f"refers to '{ref}', which is not a field ({wanted} expected)"
                )
        elif target.kind not in kinds:
            r.add(_at(path, key), f"'{ref}' is a {target.kind.value} field, not a {wanted}")
        elif key == "sex_field" and not {o.value for o in target.options} <= SEX_VALUES:
            r.add(
                _at(path, key),
                f"the options of '{ref}' must be {' and '.join(sorted(SEX_VALUES))}",
            )
    if fd.allow_cmnd and fd.kind != FieldKind.CCCD:
        r.add(_at(path, "allow_cmnd"), "only a cccd field can accept the old 9-digit CMND")


def _check_limits(r: _Reader, fd: FieldDef, path: str) -> None:
    for key in ("min_length", "max_length", "max_age_days"):
        value = getattr(fd, key)
        if value is not None and value < (0 if key == "min_length" else 1):
            r.add(_at(path, key), f"must be {'0' if key == 'min_length' else '1'} or more")
    for low, high in (("min_length", "max_length"), ("min_value", "max_value")):
        lo, hi = getattr(fd, low), getattr(fd, high)
        if lo is not None and hi is not None and lo > hi:
            r.add(_at(path, low), f"{lo} is larger than {high} ({hi})")
    if fd.kind == FieldKind.FILE:
        if not 1 <= fd.max_files <= MAX_FILES:
            r.add(_at(path, "max_files"), f"must be between 1 and {MAX_FILES}")
        if not fd.accept:
            r.add(_at(path, "accept"), f"list at least one of: {', '.join(FILE_TYPES)}")
        for i, mime in enumerate(fd.accept):
            if mime not in FILE_TYPES:
                r.add(_at(_at(path, "accept"), i), _enum_problem("file type", mime, FILE_TYPES))
        if len(set(fd.accept)) != len(fd.accept):
            r.add(_at(path, "accept"), "a file type is listed twice")


def _check_fee(r: _Reader, defn: ProcedureDefinition, unreadable: set[str]) -> None:
    fee, kind = defn.fee, defn.fee.kind
    by_name = {f.name: f for f in defn.fields}

    def integer_field(key: str, ref: str | None, what: str) -> None:
        if ref is None:
            r.add(
                f"fee.{key}", f"a {kind.value} fee needs {key} naming the integer field of {what}"
            )
        elif ref not in by_name:
            if ref not in unreadable:
                r.add(f"fee.{key}", f"refers to '{ref}', which is not a field")
        elif by_name[ref].kind != FieldKind.INTEGER:
            r.add(f"fee.{key}", f"'{ref}' is a {by_name[ref].kind.value} field, not an integer")

    for key in ("amount", "later_page_amount", "cap_per_copy", "on_time_days"):
        if getattr(fee, key) < 0:
            r.add(f"fee.{key}", "must be 0 or more")
    if kind in (FeeKind.FIXED, FeeKind.PER_COPY, FeeKind.PER_PAGE) and fee.amount <= 0:
        r.add("fee.amount", f"a {kind.value} fee needs an amount in đồng above 0")
    if kind in (FeeKind.FREE, FeeKind.PER_COMMUNE) and fee.amount != 0:
        why = "nothing" if kind == FeeKind.FREE else "the commune's amount, set by the province"
        r.add("fee.amount", f"a {kind.value} fee has no amount here (it is {why})")
    if kind in (FeeKind.PER_COPY, FeeKind.PER_PAGE):
        integer_field("quantity_field", fee.quantity_field, "the number of copies")
    elif fee.quantity_field is not None:
        r.add("fee.quantity_field", f"only a per_copy or per_page fee counts copies, not {kind}")
    if kind == FeeKind.PER_PAGE:
        integer_field("pages_field", fee.pages_field, "the number of pages per copy")
        if fee.pages_field is not None and fee.pages_field == fee.quantity_field:
            r.add("fee.pages_field", "pages and copies must be two different fields")
        if fee.later_pages_from < 2:
            r.add(
                "fee.later_pages_from", "must be 2 or more (the page where the lower rate starts)"
            )
        if 0 < fee.cap_per_copy < fee.amount:
            r.add("fee.cap_per_copy", "is below the price of one page")
    else:
        for key in ("pages_field", "later_page_amount", "later_pages_from", "cap_per_copy"):
            if getattr(fee, key) != getattr(_DEFAULT_FEE, key):
                r.add(f"fee.{key}", f"only a per_page fee uses {key}, not {kind}")
    if fee.free_if_on_time:
        target = by_name.get(fee.on_time_field or "")
        if fee.on_time_field is None:
            r.add(
                "fee.on_time_field", "free_if_on_time needs the date field that starts the window"
            )
        elif fee.on_time_field in unreadable:
            pass
        elif target is None or target.kind != FieldKind.DATE:
            r.add("fee.on_time_field", f"'{fee.on_time_field}' must name a date field")
        if fee.on_time_days <= 0:
            r.add("fee.on_time_days", "free_if_on_time needs the number of days, above 0")
    else:
        for key in ("on_time_field", "on_time_days"):
            if getattr(fee, key) != getattr(_DEFAULT_FEE, key):
                r.add(f"fee.{key}", "only used with free_if_on_time = true")
    if fee.exemption_field is not None:
        target = by_name.get(fee.exemption_field)
        if kind == FeeKind.FREE:
            r.add("fee.exemption_field", "a free procedure has no fee to be exempt from")
        elif fee.exemption_field in unreadable:
            pass
        elif target is None:
            r.add("fee.exemption_field", f"refers to '{fee.exemption_field}', which is not a field")
        elif target.kind != FieldKind.SELECT:
            r.add("fee.exemption_field", f"'{fee.exemption_field}' must name a select field")
        elif target.required:
            r.add(
                "fee.exemption_field",
                f"'{fee.exemption_field}' must not be required: most citizens are in no group",
            )


def _check_procedure(r: _Reader, defn: ProcedureDefinition, top: Mapping[str, Any]) -> None:
    if defn.code and not CODE.fullmatch(defn.code):
        r.add("code", f"'{defn.code}' must use only a–z, 0–9 and single dashes")
    stem = Path(r.source).stem
    if r.source.endswith(".toml") and defn.code and defn.code != stem:
        r.add("code", f"'{defn.code}' must be the file name without .toml ('{stem}')")
    for i, tag in enumerate(defn.tags):
        if not CODE.fullmatch(tag):
            r.add(f"tags[{i}]", f"'{tag}' must use only a–z, 0–9 and single dashes")
    if "processing_days" in top and defn.processing_days < 0:
        r.add("processing_days", "must be 0 (the same day) or more")
    if (
        "max_processing_days" in top
        and "processing_days" in top
        and defn.max_processing_days < defn.processing_days
    ):
        r.add(
            "max_processing_days",
            f"{defn.max_processing_days} is below processing_days ({defn.processing_days})",
        )
    if "agency" in top and defn.agency not in AGENCIES:
        r.add("agency", _enum_problem("agency", defn.agency, AGENCIES))
    if "retention_days" in top and defn.retention_days < 1:
        r.add("retention_days", "must be 1 or more")


def definition_from_dict(data: Mapping[str, Any], source: str) -> ProcedureDefinition:
    """Build a definition from plain data (parsed TOML or JSON); CatalogError lists every problem.

    `source` names the data in problems; when it ends in ".toml" the code must match the file name.
    """
    r = _Reader(source)
    top = r.table(data, "")
    if top is None:
        raise CatalogError(r.problems)
    r.keys(top, "", _TOP_KEYS, _TOP_REQUIRED)
    fee = _read_fee(r, top["fee"]) if "fee" in top else _DEFAULT_FEE
    sections = _read_sections(r, top)
    entries: list[tuple[str, FieldDef]] = []
    unreadable: set[str] = set()
    for i, item in enumerate(r.items(top, "fields", "")):
        name, fd = _read_field(r, item, f"fields[{i}]")
        if fd is not None:
            entries.append((f"fields[{i}]", fd))
        elif name is not None:
            unreadable.add(name)
    title = r.label(top["name"], "name") if "name" in top else None
    defn = ProcedureDefinition(
        code=r.text(top, "code", "") or "",
        name=title or Label("", ""),
        legal_basis=r.texts(top, "legal_basis", ""),
        documents=r.labels(top, "documents", ""),
        processing_days=r.integer(top, "processing_days", "") or 0,
        max_processing_days=r.integer(top, "max_processing_days", "") or 0,
        fee=fee,
        in_person_result=bool(r.boolean(top, "in_person_result", "")),
        agency=r.text(top, "agency", "") or "",
        retention_days=r.integer(top, "retention_days", "") or 0,
        sections=tuple(section for _, section in sections),
        fields=tuple(fd for _, fd in entries),
        summary=r.optional_label(top, "summary", ""),
        tags=r.texts(top, "tags", ""),
    )
    _check_procedure(r, defn, top)
    _check_fields(r, defn, sections, entries, unreadable)
    raw_fee = top.get("fee")
    if isinstance(raw_fee, dict) and raw_fee.get("kind") in set(FeeKind):
        _check_fee(r, defn, unreadable)  # a mistyped kind was reported; its rules would mislead
    if r.problems:
        raise CatalogError(r.problems)
    return defn


def load_definition(text: str, source: str) -> ProcedureDefinition:
    """Parse one TOML definition; CatalogError lists every problem, each with file and place."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        path = f"line {where.group(1)}, column {where.group(2)}" if where else ""
        reason = message[: where.start()] if where else message
        raise CatalogError([Problem(source, path, f"not valid TOML: {reason}")]) from None
    return definition_from_dict(data, source)


def authoring_problems(defn: ProcedureDefinition, source: str) -> list[Problem]:
    """What a new or edited definition must also satisfy (see the module docstring)."""
    problems: list[Problem] = []

    def add(path: str, message: str) -> None:
        problems.append(Problem(source, path, message))

    if not any(
        f.kind == FieldKind.PHONE and f.required and f.condition is None for f in defn.fields
    ):
        add("fields", "needs a required phone field, so the office can call the citizen back")
    if not defn.legal_basis:
        add("legal_basis", "list at least one law, decree or circular")
    if not defn.documents:
        add("documents", "list at least one paper the citizen brings or submits")
    if defn.fee.kind == FeeKind.PER_COMMUNE and defn.fee.note is None:
        add("fee.note", "a per_commune fee needs a note telling the citizen who sets the amount")
    used = {f.section for f in defn.fields}
    for i, s in enumerate(defn.sections):
        if s.name not in used:
            add(f"sections[{i}]", f"no field belongs to section '{s.name}'")
    for i, fd in enumerate(defn.fields):
        path = f"fields[{i}]"
        if defn.sections and not fd.section:
            add(_at(path, "section"), "missing (this procedure groups its fields in sections)")
        for key, kinds in (
            ("min_length", LENGTH_KINDS),
            ("max_length", LENGTH_KINDS),
            ("min_value", {FieldKind.INTEGER}),
            ("max_value", {FieldKind.INTEGER}),
            ("past_only", {FieldKind.DATE}),
            ("max_age_days", {FieldKind.DATE}),
            ("accept", {FieldKind.FILE}),
            ("max_files", {FieldKind.FILE}),
        ):
            if fd.kind not in kinds and getattr(fd, key) != getattr(_DEFAULT_FIELD, key):
                add(_at(path, key), f"does not apply to a {fd.kind.value} field")
    for key in ("quantity_field", "pages_field"):
        target = defn.get_field(getattr(defn.fee, key) or "")
        if target is None:
            continue
        if not target.required or target.condition is not None:
            add(f"fee.{key}", f"'{target.name}' must be required: the fee depends on it")
        if target.min_value is None or target.min_value < 1 or target.max_value is None:
            add(f"fee.{key}", f"'{target.name}' needs min_value of 1 or more and a max_value")
    return problems


# --- Writing --------------------------------------------------------------------------------------


def _label(label: Label) -> dict[str, str]:
    return {"vi": label.vi, "en": label.en}


def _field_to_dict(fd: FieldDef) -> dict[str, Any]:
    """A field in file order: identity, placement, rules, then the words the citizen reads."""
    out: dict[str, Any] = {"name": fd.name, "kind": fd.kind.value}
    if fd.section:
        out["section"] = fd.section
    if fd.required:
        out["required"] = True
    if fd.condition is not None:
        out["condition"] = {"field": fd.condition.field, "equals": list(fd.condition.equals)}
    for key in (
        "min_length",
        "max_length",
        "min_value",
        "max_value",
        "past_only",
        "max_age_days",
        "allow_cmnd",
        "birth_date_field",
        "sex_field",
        "accept",
        "max_files",
    ):
        value = getattr(fd, key)
        if value != getattr(_DEFAULT_FIELD, key):
            out[key] = list(value) if isinstance(value, tuple) else value
    out["label"] = _label(fd.label)
    if fd.hint is not None:
        out["hint"] = _label(fd.hint)
    if fd.options:
        out["options"] = [{"value": o.value, "label": _label(o.label)} for o in fd.options]
    return out


def definition_to_dict(defn: ProcedureDefinition) -> dict[str, Any]:
    """Plain data in the file's shape and order; only what differs from the defaults."""
    out: dict[str, Any] = {"code": defn.code, "name": _label(defn.name)}
    if defn.summary is not None:
        out["summary"] = _label(defn.summary)
    out["legal_basis"] = list(defn.legal_basis)
    out["documents"] = [_label(d) for d in defn.documents]
    out["processing_days"] = defn.processing_days
    out["max_processing_days"] = defn.max_processing_days
    out["in_person_result"] = defn.in_person_result
    out["agency"] = defn.agency
    out["retention_days"] = defn.retention_days
    if defn.tags:
        out["tags"] = list(defn.tags)
    fee: dict[str, Any] = {"kind": defn.fee.kind.value}
    for f in fields(Fee):
        value = getattr(defn.fee, f.name)
        if f.name not in ("kind", "note") and value != getattr(_DEFAULT_FEE, f.name):
            fee[f.name] = value
    if defn.fee.note is not None:
        fee["note"] = _label(defn.fee.note)
    out["fee"] = fee
    if defn.sections:
        out["sections"] = [
            {"name": s.name, "title": _label(s.title)}
            | ({"hint": _label(s.hint)} if s.hint is not None else {})
            for s in defn.sections
        ]
    out["fields"] = [_field_to_dict(fd) for fd in defn.fields]
    return out


EDITING_GUIDE = """\
# ── Cách sửa tệp này (dành cho cán bộ, không cần biết lập trình) ─────────────────────────────
# • Dòng bắt đầu bằng dấu # là ghi chú: máy bỏ qua. Dòng "# order: 10" (nếu có) xếp thứ tự
#   thủ tục trong danh sách: số nhỏ đứng trước.
# • Chỉ sửa chữ trong dấu ngoặc kép "…" ở các dòng .vi (tiếng Việt) và .en (tiếng Anh), ví dụ
#   label.vi = "Họ và tên". Giữ nguyên dấu ngoặc kép, dấu bằng, dấu phẩy và các dấu ngoặc { } [ ].
# • Không đổi `code` (phải trùng tên tệp) và `name` của các ô: hồ sơ lưu câu trả lời theo name.
# • Mỗi khối [[fields]] là một ô trên tờ khai, theo thứ tự hiển thị:
#     kind       loại ô: text (chữ ngắn), textarea (đoạn văn), person_name (họ tên), date (ngày),
#                cccd (số định danh 12 chữ số), phone (điện thoại di động), email, integer (số),
#                select (chọn một), checkbox (ô đánh dấu), address (địa chỉ), file (ảnh hoặc PDF)
#     required   true = bắt buộc điền; bỏ dòng này = không bắt buộc
#     label      tên ô; hint = lời nhắc dưới ô, nên có một ví dụ cụ thể để người lớn tuổi dễ điền
#     options    các lựa chọn của ô select; value viết thường, không dấu, không khoảng trắng
#     condition  chỉ hỏi ô này khi một ô phía trên có một giá trị trong equals ("on" = đã đánh dấu)
#     section    nhóm của ô: name của một khối [[sections]]
# • processing_days: số ngày làm việc để giải quyết (0 = trong ngày); max_processing_days: mức tối
#   đa theo luật. retention_days: số ngày giữ dữ liệu cá nhân sau khi đóng hồ sơ (cấu hình được).
# • [fee] kind: free (miễn), fixed (mỗi hồ sơ), per_copy (mỗi bản), per_page (theo số trang),
#   per_commune (mức do Hội đồng nhân dân tỉnh quy định, xã nhập trong trang quản trị); tiền: đồng.
# • Lưu xong, chạy: flask --app wsgi init. Nếu có lỗi, lệnh nêu tên tệp, vị trí và lỗi; nếu đúng,
#   nội dung mới thành phiên bản mới cho hồ sơ mới, hồ sơ đã nộp giữ phiên bản cũ.
# How to edit (English): change only the quoted texts (vi, en); keep `code` (the file name) and each
# field's `name` (answers are stored under it). Kinds are listed above. After saving, run
# `flask --app wsgi init`: it names the file, the place and the problem of every mistake.
# ──────────────────────────────────────────────────────────────────────────────────────────────────
"""


def _toml_string(text: str) -> str:
    return tomli_w.dumps({"s": text})[len("s = ") : -1]  # tomli_w's escaping, one line


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_label(value: object) -> bool:
    return isinstance(value, dict) and list(value) == ["vi", "en"]


def _toml_entries(table: Mapping[str, Any], skip: Iterable[str] = ()) -> list[str]:
    """`key = value` lines in the layout a person edits most easily.

    A bilingual text becomes two lines (`label.vi = "…"` then `label.en = "…"`: TOML dotted keys,
    the same table as `label = { vi = "…", en = "…" }`); a list of tables, or of several items,
    gets one item a line.
    """
    lines = []
    for key, value in table.items():
        if key in skip:
            continue
        if _is_label(value):
            lines += [
                f"{key}.vi = {_toml_value(value['vi'])}",
                f"{key}.en = {_toml_value(value['en'])}",
            ]
        elif isinstance(value, list) and (
            len(value) > 1 or any(isinstance(v, dict) for v in value)
        ):
            lines.append(f"{key} = [")
            lines.extend(f"    {_toml_value(v)}," for v in value)
            lines.append("]")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    return lines


def dump_definition(defn: ProcedureDefinition) -> str:
    """The definition as TOML in the catalog's own layout, opening with the editing guide.

    Plain keys come first (after a [table] header every key belongs to that table), then one
    [[documents]], [[sections]] or [[fields]] block per item, so a dumped definition reads like the
    shipped files. An empty list has no block and stays on top as `fields = []`.
    """
    data = definition_to_dict(defn)
    blocks = [key for key in ("documents", "sections", "fields") if data.get(key)]
    lines = _toml_entries(data, skip=("fee", *blocks))
    for document in data["documents"]:
        lines += ["", "[[documents]]", *_toml_entries(document)]
    lines += ["", "[fee]", *_toml_entries(data["fee"])]
    for section in data.get("sections", ()):
        lines += ["", "[[sections]]", *_toml_entries(section)]
    for fd in data["fields"]:
        lines += ["", "[[fields]]", *_toml_entries(fd)]
    return EDITING_GUIDE + "\n".join(lines) + "\n"


def definition_version(defn: ProcedureDefinition) -> str:
    """First 16 hex digits of SHA-256 over the canonical JSON (sorted keys, NFC, no spaces)."""
    canonical = json.dumps(
        definition_to_dict(defn), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(unicodedata.normalize("NFC", canonical).encode("utf-8")).hexdigest()[:16]


def definition_to_json(
    defn: ProcedureDefinition, *, lang_both: bool = True, lang: str = "vi"
) -> dict[str, Any]:
    """The public API shape (CONTRACT.md, /api/v1/procedures/<code>).

    With `lang_both` every text is {"vi": …, "en": …}; without it, the text in `lang` alone.
    """

    def words(label: Label) -> dict[str, str] | str:
        if lang_both:
            return _label(label)
        return label.en if lang == "en" else label.vi

    fee: dict[str, Any] = {"kind": defn.fee.kind.value, "amount": defn.fee.amount}
    if defn.fee.quantity_field is not None:
        fee["quantity_field"] = defn.fee.quantity_field
    if defn.fee.kind == FeeKind.PER_PAGE:
        fee |= {
            "pages_field": defn.fee.pages_field,
            "later_page_amount": defn.fee.later_page_amount,
            "later_pages_from": defn.fee.later_pages_from,
            "cap_per_copy": defn.fee.cap_per_copy,
        }
    if defn.fee.free_if_on_time:
        fee |= {
            "free_if_on_time": True,
            "on_time_field": defn.fee.on_time_field,
            "on_time_days": defn.fee.on_time_days,
        }
    if defn.fee.exemption_field is not None:
        fee["exemption_field"] = defn.fee.exemption_field
    if defn.fee.note is not None:
        fee["note"] = words(defn.fee.note)

    out_fields = []
    for fd in defn.fields:
        item: dict[str, Any] = {
            "name": fd.name,
            "kind": fd.kind.value,
            "required": fd.required,
            "label": words(fd.label),
        }
        if fd.hint is not None:
            item["hint"] = words(fd.hint)
        if fd.options:
            item["options"] = [{"value": o.value, "label": words(o.label)} for o in fd.options]
        if fd.condition is not None:
            item["condition"] = {"field": fd.condition.field, "equals": list(fd.condition.equals)}
        if fd.section:
            item["section"] = fd.section
        for key in (
            "min_length",
            "max_length",
            "min_value",
            "max_value",
            "past_only",
            "max_age_days",
            "allow_cmnd",
            "birth_date_field",
            "sex_field",
        ):
            value = getattr(fd, key)
            if value != getattr(_DEFAULT_FIELD, key):
                item[key] = value
        if fd.kind == FieldKind.FILE:
            item["accept"] = list(fd.accept)
            item["max_files"] = fd.max_files
        out_fields.append(item)

    sections = []
    for s in defn.sections:
        section: dict[str, Any] = {"name": s.name, "title": words(s.title)}
        if s.hint is not None:
            section["hint"] = words(s.hint)
        sections.append(section)
    return {
        "code": defn.code,
        "version": definition_version(defn),
        "name": words(defn.name),
        "summary": words(defn.summary) if defn.summary is not None else None,
        "agency": defn.agency,
        "processing_days": defn.processing_days,
        "max_processing_days": defn.max_processing_days,
        "fee": fee,
        "legal_basis": list(defn.legal_basis),
        "documents": [words(d) for d in defn.documents],
        "in_person_result": defn.in_person_result,
        "sections": sections,
        "fields": out_fields,
    }


# --- The whole catalog ----------------------------------------------------------------------------

_T = TypeVar("_T")


class Catalog:
    """Every procedure of the shared catalog, by code, in display order; read-only.

    `catalog[code]` and `catalog.get(code)` find one definition; iterating yields the definitions
    themselves in order (what every caller wants: a list to show), `codes()` the codes.
    """

    __slots__ = ("_by_code",)
    _by_code: Mapping[str, ProcedureDefinition]

    def __init__(self, definitions: Iterable[ProcedureDefinition]) -> None:
        by_code: dict[str, ProcedureDefinition] = {}
        for defn in definitions:
            if defn.code in by_code:
                raise ValueError(f"two definitions have the code {defn.code!r}")
            by_code[defn.code] = defn
        object.__setattr__(self, "_by_code", MappingProxyType(by_code))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Catalog is read-only")

    def __getitem__(self, code: str) -> ProcedureDefinition:
        return self._by_code[code]

    @overload
    def get(self, code: str) -> ProcedureDefinition | None: ...
    @overload
    def get(self, code: str, default: _T) -> ProcedureDefinition | _T: ...
    def get(self, code: str, default: object = None) -> object:
        return self._by_code.get(code, default)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[ProcedureDefinition]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def codes(self) -> tuple[str, ...]:
        return tuple(self._by_code)

    def items(self) -> Iterator[tuple[str, ProcedureDefinition]]:
        return iter(self._by_code.items())

    def as_mapping(self) -> Mapping[str, ProcedureDefinition]:
        """A read-only mapping view (code → definition) for code that wants a real Mapping."""
        return self._by_code

    def __repr__(self) -> str:
        return f"Catalog({', '.join(self._by_code)})"


def catalog_order(text: str) -> int:
    """The "# order: N" line of a file (comments survive no round trip: it is the file's own)."""
    match = ORDER_LINE.search(text)
    return int(match.group(1)) if match else UNORDERED


def load_catalog(directory: Path | None = None) -> Catalog:
    """Every *.toml of `directory` (default: this folder), ordered by "# order: N", then code.

    Files are held to the integrity and the authoring rules; the problems of every file are
    reported together in one CatalogError.
    """
    folder = CATALOG_DIR if directory is None else directory
    problems: list[Problem] = []
    loaded: list[tuple[int, str, ProcedureDefinition]] = []
    for path in sorted(folder.glob("*.toml")):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            problems.append(Problem(path.name, "", "not UTF-8 text: save the file as UTF-8"))
            continue
        except OSError as exc:
            problems.append(Problem(path.name, "", f"cannot be read: {exc.strerror or exc}"))
            continue
        try:
            defn = load_definition(text, path.name)
        except CatalogError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(authoring_problems(defn, path.name))
        loaded.append((catalog_order(text), defn.code, defn))
    if problems:
        raise CatalogError(problems)
    if not loaded:
        raise CatalogError([Problem(str(folder), "", "no procedure files (*.toml) in this folder")])
    return Catalog(defn for _, _, defn in sorted(loaded, key=lambda t: (t[0], t[1])))
