"""Checking a submitted form against its procedure (kiểm tra tờ khai).

A citizen fills in the declaration (tờ khai) of one procedure on their phone; the browser's own
checks are a convenience, this is the check that counts. ``validate`` takes the definition (what
the procedure asks for, ``procedures.schema``), the raw form (every value a string, as HTTP sends
it) and the papers already accepted for the draft, and returns a ``ValidationResult``:

- ``cleaned``: one canonical value per field that applies and was filled in, and nothing else: a
  date as ISO ``yyyy-mm-dd``, a phone in E.164, an ID number as its digits, an integer as ``int``,
  a checkbox as ``bool``, a select as the option's value, files as the list of their ids. Keys the
  definition does not know are dropped, so a forged form cannot smuggle data into a dossier.
- ``errors``: per field, a bilingual message saying what to fix. Empty means the dossier can be
  filed.
- ``warnings``: per field, something worth a second look that does not stop filing (an old 9-digit
  ID card number, a date more than 120 years ago).

Rules, in order:

1. A field whose condition (``Condition``: another field has one of some values) is not met is
   neither required nor stored, whatever was sent for it; conditions may chain.
2. A required field left empty gets "Vui lòng nhập {label}." (or chọn / đính kèm / đánh dấu, by
   kind); an optional empty field is simply not stored.
3. Each kind is parsed by ``core.identity`` and held to its limits: lengths (with a default
   maximum per kind, so nothing unbounded is ever stored), integer range, select options, dates
   not in the future (``past_only``) and within a legal window (``max_age_days``: older is an
   error, the window is the law's), file count and type.
4. Across fields: an ID number is checked against its person's date (or year) of birth and sex
   (the century/sex digit and the two year digits), and two ID fields on one form (the two parties
   to a marriage) may not hold the same number.

Any string at all (megabytes, binary junk, NUL bytes, lone surrogates, stray combining marks,
direction overrides) gives errors, never an exception: each raw value is capped before any work.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from core.identity import (
    Cccd,
    InvalidValue,
    check_cccd,
    format_date,
    normalise_person_name,
    normalise_text,
    parse_cccd,
    parse_date,
    parse_email,
    parse_phone,
    sex_from_value,
)
from core.text import Message
from procedures.schema import FieldDef, FieldKind, Label, ProcedureDefinition

# A raw value longer than this is refused before any parsing: no field legitimately needs it.
RAW_VALUE_CAP = 10_000
# Longest value stored when the definition sets no max_length.
DEFAULT_MAX_LENGTH: dict[FieldKind, int] = {
    FieldKind.TEXT: 200,
    FieldKind.TEXTAREA: 2000,
    FieldKind.ADDRESS: 300,
    FieldKind.PERSON_NAME: 100,
    FieldKind.EMAIL: 254,
}
INTEGER_MAX_DIGITS = 12  # far beyond any count or year, far below Python's int parsing limits
OLD_DATE_YEARS = 120  # a date further back than this is probably a typo in the year
_CHECKED = frozenset({"on", "yes", "true", "1", "checked"})


class FileRef:
    """A paper already accepted for the draft (by ``core.uploads``), as the form sees it.

    `filename` may be given as a function that reads it (it is kept sealed): called once, only
    when something shows the name, which a form sent without errors never does."""

    __slots__ = ("_filename", "content_type", "id", "sha256", "size")

    def __init__(
        self,
        id: str,  # noqa: A002 - the paper's public id, as the form names it
        filename: str | Callable[[], str],
        content_type: str,
        size: int,
        sha256: str,
    ) -> None:
        self.id = id
        self._filename = filename
        self.content_type = content_type
        self.size = size
        self.sha256 = sha256

    @property
    def filename(self) -> str:
        if not isinstance(self._filename, str):
            self._filename = self._filename()
        return self._filename

    def __repr__(self) -> str:
        return f"FileRef(id={self.id!r}, content_type={self.content_type!r}, size={self.size})"


@dataclass(frozen=True, slots=True)
class ValidationResult:
    cleaned: dict[str, object]
    errors: dict[str, Message]
    warnings: dict[str, Message] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


# --- Messages ------------------------------------------------------------------------------------

REQUIRED_ENTER = Message("Vui lòng nhập {label}.", "Please enter {label}.")
REQUIRED_CHOOSE = Message("Vui lòng chọn {label}.", "Please choose {label}.")
REQUIRED_ATTACH = Message("Vui lòng đính kèm {label}.", "Please attach {label}.")
REQUIRED_TICK = Message("Vui lòng đánh dấu ô “{label}”.", "Please tick “{label}”.")
NOT_TEXT = Message(
    "Giá trị gửi lên không hợp lệ. Xin nhập lại ô này.",
    "The value sent is not valid. Please fill in this field again.",
)
RAW_TOO_LONG = Message(
    "Nội dung quá dài. Xin kiểm tra lại ô này.",
    "This is far too long. Please check this field.",
)
TOO_SHORT = Message(
    "Xin ghi ít nhất {min} ký tự.",
    "Please write at least {min} characters.",
)
TOO_LONG = Message(
    "Nội dung dài quá {max} ký tự (hiện có {count}). Xin rút gọn.",
    "This is longer than {max} characters (it has {count}). Please shorten it.",
)
NOT_INTEGER = Message(
    "Xin nhập một số nguyên, chỉ gồm chữ số, ví dụ 2.",
    "Please enter a whole number, digits only, e.g. 2.",
)
INTEGER_BETWEEN = Message(
    "Xin nhập số từ {min} đến {max}.", "Please enter a number from {min} to {max}."
)
INTEGER_AT_LEAST = Message("Xin nhập số không nhỏ hơn {min}.", "Please enter {min} or more.")
INTEGER_AT_MOST = Message("Xin nhập số không lớn hơn {max}.", "Please enter {max} or less.")
NOT_AN_OPTION = Message(
    "Xin chọn một trong các lựa chọn có sẵn.",
    "Please choose one of the options offered.",
)
DATE_FUTURE = Message(
    "Ngày này chưa tới (hôm nay là {today}). Xin kiểm tra lại.",
    "This date has not come yet (today is {today}). Please check.",
)
DATE_TOO_OLD = Message(
    "Ngày {day} đã cách hôm nay hơn {days} ngày, quá thời hạn của thủ tục này. Xin kiểm tra lại "
    "ngày, hoặc hỏi cán bộ xã để được hướng dẫn.",
    "{day} is more than {days} days ago, past this procedure's time limit. Please check the date, "
    "or ask the commune office what to do.",
)
DATE_VERY_OLD = Message(
    "Ngày này cách đây hơn {years} năm. Xin kiểm tra lại năm.",
    "This date is more than {years} years ago. Please check the year.",
)
CMND_USED = Message(
    "Đây là số chứng minh nhân dân cũ. Nếu đã có thẻ căn cước, xin ghi số định danh cá nhân 12 "
    "chữ số in trên thẻ.",
    "This is an old ID card number. If you have the chip ID card, please enter the 12-digit "
    "personal identity number printed on it.",
)
DUPLICATE_ID = Message(
    "Số này trùng với số đã nhập ở mục “{other}”. Mỗi người có một số định danh riêng: xin kiểm "
    "tra lại.",
    "This number is the same as the one in “{other_en}”. Each person has their own number: "
    "please check.",
)
TOO_MANY_FILES = Message(
    "Mục này nhận tối đa {max} tệp; đang có {count}. Xin bỏ bớt.",
    "This item takes at most {max} files; there are {count}. Please remove some.",
)
FILE_WRONG_TYPE = Message(
    "Tệp “{name}” không dùng được cho mục này. Xin gửi {allowed}.",
    "The file “{name}” cannot be used here. Please send {allowed_en}.",
)
_TYPE_NAMES: dict[str, Label] = {
    "image/jpeg": Label("ảnh JPEG", "a JPEG photo"),
    "image/png": Label("ảnh PNG", "a PNG image"),
    "application/pdf": Label("tệp PDF", "a PDF"),
}


def _phrase(label: str) -> str:
    """A label as it reads inside a sentence: "Họ và tên" → "họ và tên", "CCCD" stays."""
    text = label.strip().rstrip(":*").strip()
    if len(text) >= 2 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def _label_message(template: Message, label: Label) -> Message:
    return Message(
        template.vi.format(label=_phrase(label.vi)), template.en.format(label=_phrase(label.en))
    )


def _required_message(fd: FieldDef) -> Message:
    if fd.kind == FieldKind.SELECT:
        return _label_message(REQUIRED_CHOOSE, fd.label)
    if fd.kind == FieldKind.FILE:
        return _label_message(REQUIRED_ATTACH, fd.label)
    if fd.kind == FieldKind.CHECKBOX:
        return Message(
            REQUIRED_TICK.vi.format(label=fd.label.vi.strip()),
            REQUIRED_TICK.en.format(label=fd.label.en.strip()),
        )
    return _label_message(REQUIRED_ENTER, fd.label)


# --- The check -----------------------------------------------------------------------------------


def validate(
    defn: ProcedureDefinition,
    raw: Mapping[str, str],
    files: Mapping[str, Sequence[FileRef]] | None,
    *,
    today: date,
) -> ValidationResult:
    """Check one submitted form; see the module docstring for the rules."""
    files = files or {}
    applies: Callable[[str], bool] | None = None  # built only if some field has a condition
    cleaned: dict[str, object] = {}
    errors: dict[str, Message] = {}
    warnings: dict[str, Message] = {}
    ids: dict[str, Cccd | str] = {}  # cccd field name → parsed number (str for an old CMND)

    for fd in defn.fields:
        name = fd.name
        if fd.condition is not None:
            if applies is None:
                applies = _applicability(defn, raw)
            if not applies(name):
                continue
        try:
            value, warning = _check_field(fd, raw.get(name), files.get(name) or (), today)
        except InvalidValue as exc:
            errors[name] = exc.reason
            continue
        if value is None:  # nothing entered (blank, unticked, no file)
            if fd.required:
                errors[name] = _required_message(fd)
            elif fd.kind is FieldKind.CHECKBOX:
                cleaned[name] = False
            continue
        if isinstance(value, Cccd):
            ids[name] = value
            value = value.number
        elif fd.kind is FieldKind.CCCD:
            ids[name] = str(value)
        cleaned[name] = value
        if warning is not None:
            warnings[name] = warning

    for name, message in _cross_field_errors(defn, cleaned, ids, today).items():
        errors[name] = message
        cleaned.pop(name, None)
        warnings.pop(name, None)
    return ValidationResult(cleaned=cleaned, errors=errors, warnings=warnings)


def _applicability(defn: ProcedureDefinition, raw: Mapping[str, str]) -> Callable[[str], bool]:
    """Which fields apply: those without a condition, or whose condition holds (chains too)."""
    by_name = {fd.name: fd for fd in defn.fields}
    memo: dict[str, bool] = {}

    def applies(name: str, depth: int = 0) -> bool:
        if name in memo:
            return memo[name]
        fd = by_name.get(name)
        if fd is None or depth > len(by_name):  # unknown field, or a cycle of conditions
            return False
        result = True
        if fd.condition is not None:
            controller = by_name.get(fd.condition.field)
            result = (
                controller is not None
                and applies(controller.name, depth + 1)
                and _condition_token(controller, raw) in fd.condition.equals
            )
        memo[name] = result
        return result

    return applies


def _condition_token(fd: FieldDef, raw: Mapping[str, str]) -> str:
    value = raw.get(fd.name)
    if fd.kind == FieldKind.CHECKBOX:
        return "on" if _is_checked(value) else ""
    if not isinstance(value, str) or len(value) > RAW_VALUE_CAP:
        return ""
    return value.strip()


def _check_field(
    fd: FieldDef, value: object, refs: Sequence[FileRef], today: date
) -> tuple[object | None, Message | None]:
    """One field's canonical value (None when nothing was entered) and a warning.

    Raises InvalidValue with what to fix.
    """
    kind = fd.kind
    if kind is FieldKind.FILE:
        return (_check_files(fd, refs) if refs else None), None
    if kind is FieldKind.CHECKBOX:
        return (True if _is_checked(value) else None), None
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if not isinstance(value, str):
        raise InvalidValue(NOT_TEXT)
    if len(value) > RAW_VALUE_CAP:
        raise InvalidValue(RAW_TOO_LONG)
    check = _CHECKS.get(kind)
    if check is None:
        raise InvalidValue(NOT_TEXT)  # a kind this module does not know: refuse, never store
    clean, warning = check(fd, value, today)
    if clean == "":  # only zero-width characters, dropped by normalisation
        return None, None
    return clean, warning


def _is_checked(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower() in _CHECKED


# Each kind's canonical value of a non-empty field and a warning, or InvalidValue.


def _text(fd: FieldDef, value: str, today: date) -> tuple[object, Message | None]:
    return _within_length(fd, normalise_text(value)), None


def _textarea(fd: FieldDef, value: str, today: date) -> tuple[object, Message | None]:
    return _within_length(fd, normalise_text(value, multiline=True)), None


def _person_name(fd: FieldDef, value: str, today: date) -> tuple[object, Message | None]:
    return _within_length(fd, normalise_person_name(value)), None


def _email(fd: FieldDef, value: str, today: date) -> tuple[object, Message | None]:
    return _within_length(fd, parse_email(value)), None


def _phone(fd: FieldDef, value: str, today: date) -> tuple[object, Message | None]:
    return parse_phone(value), None


def _date(fd: FieldDef, value: str, today: date) -> tuple[object, Message | None]:
    return _check_date(fd, parse_date(value), today)


def _cccd(fd: FieldDef, value: str, today: date) -> tuple[object, Message | None]:
    parsed = parse_cccd(value, allow_cmnd=fd.allow_cmnd)
    if not isinstance(parsed, Cccd):
        return parsed.number, CMND_USED
    return parsed, None  # checked against the person's other fields and today afterwards


def _integer(fd: FieldDef, value: str, today: date) -> tuple[object, Message | None]:
    return _check_integer(fd, value), None


def _select(fd: FieldDef, value: str, today: date) -> tuple[object, Message | None]:
    choice = value.strip()
    if not any(option.value == choice for option in fd.options):
        raise InvalidValue(NOT_AN_OPTION)
    return choice, None


# Each kind's check of a non-empty value (files and checkboxes are settled before).
_CHECKS: dict[FieldKind, Callable[[FieldDef, str, date], tuple[object, Message | None]]] = {
    FieldKind.TEXT: _text,
    FieldKind.ADDRESS: _text,
    FieldKind.TEXTAREA: _textarea,
    FieldKind.PERSON_NAME: _person_name,
    FieldKind.EMAIL: _email,
    FieldKind.PHONE: _phone,
    FieldKind.DATE: _date,
    FieldKind.CCCD: _cccd,
    FieldKind.INTEGER: _integer,
    FieldKind.SELECT: _select,
}


def _within_length(fd: FieldDef, text: str) -> str:
    if not text:
        return text
    longest = fd.max_length if fd.max_length is not None else DEFAULT_MAX_LENGTH[fd.kind]
    longest = min(longest, RAW_VALUE_CAP)
    if len(text) > longest:
        raise InvalidValue(TOO_LONG.format(max=longest, count=len(text)))
    if fd.min_length is not None and len(text) < fd.min_length:
        raise InvalidValue(TOO_SHORT.format(min=fd.min_length))
    return text


def _check_date(fd: FieldDef, day: date, today: date) -> tuple[str, Message | None]:
    if fd.past_only and day > today:
        raise InvalidValue(DATE_FUTURE.format(today=format_date(today)))
    if fd.max_age_days is not None and (today - day).days > fd.max_age_days:
        raise InvalidValue(DATE_TOO_OLD.format(day=format_date(day), days=fd.max_age_days))
    warning = None
    if today.year - day.year > OLD_DATE_YEARS:
        warning = DATE_VERY_OLD.format(years=OLD_DATE_YEARS)
    return day.isoformat(), warning


def _check_integer(fd: FieldDef, value: str) -> int:
    text = "".join(value.split())
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not all("0" <= c <= "9" for c in digits) or len(digits) > INTEGER_MAX_DIGITS:
        raise InvalidValue(NOT_INTEGER)
    number = int(text)
    low, high = fd.min_value, fd.max_value
    if (low is not None and number < low) or (high is not None and number > high):
        if low is not None and high is not None:
            raise InvalidValue(INTEGER_BETWEEN.format(min=low, max=high))
        if low is not None:
            raise InvalidValue(INTEGER_AT_LEAST.format(min=low))
        raise InvalidValue(INTEGER_AT_MOST.format(max=high))
    return number


def _check_files(fd: FieldDef, refs: Sequence[FileRef]) -> list[str]:
    if len(refs) > fd.max_files:
        raise InvalidValue(TOO_MANY_FILES.format(max=fd.max_files, count=len(refs)))
    for ref in refs:
        if ref.content_type not in fd.accept:
            names = [_TYPE_NAMES.get(t, Label(t, t)) for t in fd.accept]
            raise InvalidValue(
                FILE_WRONG_TYPE.format(
                    name=ref.filename,
                    allowed=" hoặc ".join(n.vi for n in names),
                    allowed_en=" or ".join(n.en for n in names),
                )
            )
    return [ref.id for ref in refs]


def _cross_field_errors(
    defn: ProcedureDefinition,
    cleaned: Mapping[str, object],
    ids: Mapping[str, Cccd | str],
    today: date,
) -> dict[str, Message]:
    """ID numbers against their person's birth date and sex, and against each other."""
    errors: dict[str, Message] = {}
    first_with: dict[str, FieldDef] = {}
    for fd in defn.fields:
        parsed = ids.get(fd.name)
        if parsed is None:
            continue
        number = parsed.number if isinstance(parsed, Cccd) else parsed
        other = first_with.setdefault(number, fd)
        if other is not fd:
            errors[fd.name] = DUPLICATE_ID.format(other=other.label.vi, other_en=other.label.en)
            continue
        if not isinstance(parsed, Cccd):
            continue
        birth_date, birth_year = _birth_of(cleaned.get(fd.birth_date_field or ""))
        sex_value = cleaned.get(fd.sex_field or "")
        sex = sex_from_value(sex_value) if isinstance(sex_value, str) else None
        problem = check_cccd(
            parsed, birth_date=birth_date, birth_year=birth_year, sex=sex, today=today
        )
        if problem is not None:
            errors[fd.name] = problem
    return errors


def _birth_of(value: object) -> tuple[date | None, int | None]:
    """A cleaned birth field: an ISO date (date field) or a year (integer field)."""
    if isinstance(value, bool):
        return None, None
    if isinstance(value, int):
        return None, value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value), None
        except ValueError:
            return None, None
    return None, None
