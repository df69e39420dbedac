"""Bank reconciliation (đối soát sao kê ngân hàng): matching fee transfers to dossiers.

A citizen pays a fee (lệ phí) by scanning the VietQR on the receipt: the transfer lands on the
commune's collecting account with the dossier code in its note (nội dung chuyển khoản). Once in a
while the commune admin downloads the account's statement (sao kê) from the bank as CSV and uploads
it; this module reads that file and says, line by line, which dossier each credit pays and whether
the amount is right, so nobody reconciles by hand.

Reading is liberal, because every bank exports differently (Vietcombank, Agribank, BIDV …):

- encoding: UTF-8 with or without BOM, UTF-16 with BOM (Excel "Unicode text"), else Windows-1258
  (Vietnamese Windows) and, failing that, Windows-1252;
- separator: `,` `;` tab or `|`, whichever yields a recognisable header row;
- the header row may follow a few lines about the account; headers are Vietnamese or English, with
  or without diacritics ("Ngày giao dịch", "Ngay GD", "Transaction date" …);
- amounts either as one signed column (optionally with a C/D column) or as separate credit (ghi có)
  and debit (ghi nợ) columns, written "120.000", "120,000", "120000 VND", "120.000,00" …;
- totals and balance lines at the end ("Tổng cộng", "Số dư cuối kỳ") are skipped.

Matching: a dossier code has the form `<commune>-YYMMDD-NNNN` (domain.md §6), e.g.
`27517-261122-0001`. Banks and banking apps often drop the dashes, put spaces in, or upper-case the
note, so `27517 261122 0001` and `275172611220001` are the same code. Each credit line gets one
`Outcome` with a reason in Vietnamese and English; only an exact match (alone or completing earlier
partial transfers) marks a fee paid. Everything else is left for an official to look at, because
money that does not fit must be handled by a person (a refund, a call to the payer).

A bank's transaction reference (mã giao dịch / số tham chiếu) identifies a transfer: a reference
already recorded is never applied again, so overlapping statements and re-uploads change nothing.
Where an export has no reference column, the line's date, amount and note stand in for it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from core.text import Message
from core.vietqr import strip_diacritics

MAX_STATEMENT_BYTES = 5 * 1024 * 1024  # a year of a busy commune's account is well under 1 MB
MAX_ROWS = 50_000
HEADER_SEARCH_ROWS = 40  # account details printed above the table, at most this many rows
MAX_REFERENCE = 64


class StatementError(ValueError):
    """The file cannot be read as a bank statement; `message` says what to do."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.en)
        self.message = message


# --- Reading the file -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One transaction of the statement."""

    number: int  # the row number in the file, as a spreadsheet shows it (1-based)
    booked_on: date | None
    amount: int  # đồng: positive for money in (ghi có), negative for money out, 0 for neither
    description: str  # the transfer note (nội dung); may hold the payer's name
    reference: str  # the bank's reference, or "#" + a fingerprint when the export has none
    reference_given: bool


@dataclass(frozen=True, slots=True)
class UnreadableLine:
    number: int
    reason: Message


@dataclass(frozen=True, slots=True)
class Statement:
    lines: tuple[StatementLine, ...]
    unreadable: tuple[UnreadableLine, ...]
    encoding: str
    delimiter: str
    columns: Mapping[str, str]  # role ("date", "credit" …) → the header as the bank wrote it


# Column roles and the headers that name them, normalised (no diacritics, lower case, only letters,
# digits and single spaces, currency words removed). Exact names first; then, for headers no bank
# in the list uses, the keywords of `_ROLE_KEYWORDS`.
# fmt: off
# (one alias list per role, several per line: ruff format would spread them over 130 lines)
_ROLE_NAMES: Mapping[str, tuple[str, ...]] = {
    "date": (
        "ngay giao dich", "ngay gd", "ngay hach toan", "ngay ghi so", "ngay thuc hien",
        "ngay gio giao dich", "thoi gian giao dich", "ngay", "thoi gian", "ngay hieu luc",
        "transaction date", "txn date", "trans date", "posting date", "booking date", "date",
        "value date", "effective date", "date time", "datetime",
    ),
    "credit": (
        "so tien ghi co", "ghi co", "phat sinh co", "ps co", "so tien co", "co", "tien vao",
        "so tien vao", "credit", "credit amount", "credits", "cr", "deposit", "deposits",
        "money in", "amount in",
    ),
    "debit": (
        "so tien ghi no", "ghi no", "phat sinh no", "ps no", "so tien no", "no", "tien ra",
        "so tien ra", "debit", "debit amount", "debits", "dr", "withdrawal", "withdrawals",
        "money out", "amount out",
    ),
    "amount": (
        "so tien", "so tien giao dich", "so tien gd", "gia tri", "gia tri giao dich", "amount",
        "transaction amount", "txn amount",
    ),
    "direction": (
        "loai giao dich", "loai gd", "loai", "no co", "co no", "type", "transaction type",
        "cr dr", "dr cr", "c d", "d c", "credit debit", "debit credit", "dc", "cd",
    ),
    "description": (
        "noi dung", "noi dung giao dich", "noi dung gd", "noi dung chuyen khoan", "mo ta",
        "mo ta giao dich", "dien giai", "chi tiet", "chi tiet giao dich", "ghi chu",
        "description", "transaction description", "details", "transaction details",
        "narrative", "remark", "remarks", "memo", "content", "purpose",
    ),
    "reference": (
        "ma giao dich", "ma gd", "ma so giao dich", "so tham chieu", "ma tham chieu",
        "so but toan", "so chung tu", "so ct", "so giao dich", "so gd", "so ref",
        "reference", "reference no", "reference number", "ref", "ref no", "transaction id",
        "transaction no", "transaction number", "txn id", "trace", "trace no", "ft number",
    ),
}
# fmt: on
_ROLE_KEYWORDS: Mapping[str, tuple[str, ...]] = {
    "date": ("ngay", "date"),
    "credit": ("ghi co", "credit", "phat sinh co"),
    "debit": ("ghi no", "debit", "phat sinh no"),
    "amount": ("so tien", "amount"),
    "description": ("noi dung", "mo ta", "dien giai", "description", "detail", "narrative"),
    "reference": ("tham chieu", "ma giao dich", "but toan", "chung tu", "reference", "ref no"),
}
# Never an amount to match, whatever else the header says.
_EXCLUDED = ("so du", "balance", "phi", "fee", "vat", "stt", "so thu tu")
_CURRENCY_WORDS = frozenset({"vnd", "dong"})


def _normalise_header(text: str) -> str:
    plain = strip_diacritics(text).lower()
    words = re.sub(r"[^a-z0-9]+", " ", plain).split()
    return " ".join(w for w in words if w not in _CURRENCY_WORDS)


def _find_columns(row: Sequence[str]) -> dict[str, int] | None:
    """The role of each column of a header row, or None if it is not the header."""
    headers = [_normalise_header(cell) for cell in row]
    taken: dict[str, int] = {}
    used: set[int] = set()

    def place(role: str, index: int) -> None:
        taken[role] = index
        used.add(index)

    for role, names in _ROLE_NAMES.items():
        best: tuple[int, int] | None = None
        for index, header in enumerate(headers):
            if index in used or header not in names:
                continue
            rank = names.index(header)
            if best is None or rank < best[0]:
                best = (rank, index)
        if best is not None:
            place(role, best[1])
    for role, keywords in _ROLE_KEYWORDS.items():
        if role in taken:
            continue
        for index, header in enumerate(headers):
            if index in used or not header or any(x in header for x in _EXCLUDED):
                continue
            if any(k in header for k in keywords):
                place(role, index)
                break
    has_amount = "credit" in taken or "amount" in taken
    if not (has_amount and "description" in taken):
        return None
    return taken


def _decode(data: bytes) -> tuple[str, str]:
    """The text of the file (NFC, as macOS exports may be decomposed) and the encoding used."""
    text, encoding = _decode_raw(data)
    return unicodedata.normalize("NFC", text), encoding


def _decode_raw(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        # Windows-1258 writes most tone marks as combining characters: NFC recomposes them.
        return data.decode("cp1258"), "cp1258"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


_DELIMITERS = (",", ";", "\t", "|")


def _rows(text: str, delimiter: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    for row in reader:
        rows.append([cell.strip() for cell in row])
        if len(rows) > MAX_ROWS:
            raise StatementError(
                Message(
                    f"Sao kê có hơn {MAX_ROWS:,} dòng: xin tải từng tháng một.".replace(",", "."),
                    f"The statement has more than {MAX_ROWS:,} rows: upload one month at a time.",
                )
            )
    return rows


_HEADERS_HELP = Message(
    "Không tìm thấy dòng tiêu đề của sao kê. Tệp cần có các cột Ngày giao dịch, Số tiền ghi có "
    "(hoặc Số tiền), Nội dung và nếu có thì Mã giao dịch. Xin xuất lại sao kê từ ngân hàng dưới "
    "dạng CSV.",
    "No header row found. The file needs columns for the date, the credit amount (or amount), "
    "the description and, if the bank gives it, the transaction reference. Export the statement "
    "from the bank again as CSV.",
)


def read_statement(data: bytes) -> Statement:
    """Read a bank statement exported as CSV; raise `StatementError` if it cannot be read."""
    if not data.strip():
        raise StatementError(Message("Tệp sao kê trống.", "The statement file is empty."))
    if len(data) > MAX_STATEMENT_BYTES:
        raise StatementError(
            Message(
                "Tệp sao kê lớn hơn 5 MB: xin tải từng tháng một.",
                "The statement file is larger than 5 MB: upload one month at a time.",
            )
        )
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise StatementError(
            Message(
                "Đây là tệp Excel. Xin mở tệp trong Excel rồi chọn Lưu thành → CSV UTF-8, "
                "hoặc chọn xuất CSV trên trang ngân hàng.",
                "This is an Excel file. Open it in Excel and Save As → CSV UTF-8, or choose the "
                "CSV export on the bank's site.",
            )
        )
    if data.startswith(b"%PDF"):
        raise StatementError(
            Message(
                "Đây là tệp PDF. Xin chọn xuất sao kê dạng CSV (hoặc Excel rồi lưu thành CSV).",
                "This is a PDF. Choose the CSV export of the statement (or Excel, saved as CSV).",
            )
        )
    text, encoding = _decode(data)
    if "\x00" in text:
        raise StatementError(_HEADERS_HELP)
    best: tuple[int, str, list[list[str]], int, dict[str, int]] | None = None
    for delimiter in _DELIMITERS:
        try:
            rows = _rows(text, delimiter)
        except csv.Error:
            continue
        for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
            columns = _find_columns(row)
            if columns is not None:
                if best is None or len(columns) > best[0]:
                    best = (len(columns), delimiter, rows, index, columns)
                break
    if best is None:
        raise StatementError(_HEADERS_HELP)
    _, delimiter, rows, header_index, columns = best
    header = rows[header_index]
    lines: list[StatementLine] = []
    unreadable: list[UnreadableLine] = []
    for offset, row in enumerate(rows[header_index + 1 :]):
        number = header_index + offset + 2
        parsed = _read_row(row, columns, number)
        if isinstance(parsed, StatementLine):
            lines.append(parsed)
        elif isinstance(parsed, UnreadableLine):
            unreadable.append(parsed)
    return Statement(
        lines=tuple(lines),
        unreadable=tuple(unreadable),
        encoding=encoding,
        delimiter=delimiter,
        columns={role: header[index] for role, index in columns.items()},
    )


_FOOTER_WORDS = ("tong", "total", "so du", "balance", "cong phat sinh", "closing", "opening")


def _cell(row: Sequence[str], columns: Mapping[str, int], role: str) -> str:
    index = columns.get(role)
    return row[index] if index is not None and index < len(row) else ""


def _looks_like_footer(row: Sequence[str]) -> bool:
    for cell in row:
        norm = _normalise_header(cell)
        if norm:
            return norm.startswith(_FOOTER_WORDS)
    return False


def _read_row(
    row: Sequence[str], columns: Mapping[str, int], number: int
) -> StatementLine | UnreadableLine | None:
    """A transaction, an unreadable transaction, or None for blank, total and balance rows."""
    if not any(row):
        return None
    date_text = _cell(row, columns, "date")
    booked_on = parse_date(date_text) if date_text else None
    try:
        amount = _row_amount(row, columns)
    except ValueError as exc:
        if _looks_like_footer(row) or (not date_text and "date" in columns):
            return None
        return UnreadableLine(
            number,
            Message(
                f"Dòng {number}: không đọc được số tiền “{exc}”.",
                f"Line {number}: the amount “{exc}” cannot be read.",
            ),
        )
    if amount is None:
        return None  # no amount at all: a heading, blank or note row
    if "date" in columns and booked_on is None:
        if _looks_like_footer(row) or not date_text:
            return None
        return UnreadableLine(
            number,
            Message(
                f"Dòng {number}: không đọc được ngày “{date_text[:40]}”.",
                f"Line {number}: the date “{date_text[:40]}” cannot be read.",
            ),
        )
    if "date" not in columns and _looks_like_footer(row):
        return None
    description = " ".join(_cell(row, columns, "description").split())
    reference = " ".join(_cell(row, columns, "reference").split())[:MAX_REFERENCE]
    given = bool(reference)
    if not given:
        reference = fingerprint(booked_on, amount, description)
    return StatementLine(number, booked_on, amount, description, reference, given)


def fingerprint(booked_on: date | None, amount: int, description: str) -> str:
    """Stands in for a missing bank reference: the same date, amount and note, the same line."""
    note = " ".join(description.upper().split())
    text = f"{booked_on.isoformat() if booked_on else ''}|{amount}|{note}"
    return "#" + hashlib.sha256(text.encode()).hexdigest()[:24]


def _row_amount(row: Sequence[str], columns: Mapping[str, int]) -> int | None:
    """Signed amount of the row (None if there is none); ValueError(cell) if it is unreadable."""
    if "credit" in columns:
        credit = parse_amount(_cell(row, columns, "credit"))
        if credit:
            return abs(credit)
        debit = parse_amount(_cell(row, columns, "debit")) if "debit" in columns else None
        if debit:
            return -abs(debit)
        if credit is None and debit is None:
            return None
        return 0
    amount = parse_amount(_cell(row, columns, "amount"))
    if amount is None:
        return None
    direction = _normalise_header(_cell(row, columns, "direction"))
    if direction in ("d", "dr", "no", "ghi no", "debit", "chi", "rut"):
        return -abs(amount)
    if direction in ("c", "cr", "co", "ghi co", "credit", "thu", "nop"):
        return abs(amount)
    return amount


_AMOUNT_NOISE = re.compile(r"(?i)\s|vnd|vnđ|đồng|dong|đ|\bd\b")


def parse_amount(text: str) -> int | None:
    """'120.000', '120,000', '120000 VND', '120.000,00', '(50.000)', '-50,000' → đồng.

    Empty cells and a lone '-' give None; anything else that is not an amount in whole đồng raises
    ValueError carrying the cell, so the line is reported instead of silently misread.
    """
    raw = text.strip()
    cell = _AMOUNT_NOISE.sub("", raw)
    if cell in ("", "-", "--"):
        return None
    negative = False
    if cell.startswith("(") and cell.endswith(")"):
        negative, cell = True, cell[1:-1]
    if cell.startswith(("+", "-")):
        negative, cell = cell[0] == "-", cell[1:]
    if cell.endswith("-"):  # some exports write debits as "50.000-"
        negative, cell = True, cell[:-1]
    if not cell or not re.fullmatch(r"[0-9.,]+", cell) or not cell[0].isdigit():
        raise ValueError(raw[:40])
    whole = _whole_part(cell, raw)
    if not whole.isdigit() or len(whole) > 15:
        raise ValueError(raw[:40])
    value = int(whole)
    return -value if negative else value


def _whole_part(cell: str, raw: str) -> str:
    """The digits before the decimal mark, separators removed; fractions must be zero (VND).

    With both '.' and ',' the last one is the decimal mark ("1.200,00", "1,200.00"). With one
    kind only, a single mark followed by one or two digits is a decimal mark ("120000.00"); marks
    followed by groups of three digits separate thousands ("120.000", "1,200,000").
    """
    separators = {ch for ch in cell if ch in ".,"}
    if not separators:
        return cell
    last_sep = max(cell.rfind("."), cell.rfind(","))
    head, tail = cell[:last_sep], cell[last_sep + 1 :]
    if len(separators) == 2:
        if cell[last_sep] in head or not 1 <= len(tail) <= 3 or tail.strip("0"):
            raise ValueError(raw[:40])
        integral = head
    elif cell.count(cell[last_sep]) == 1 and len(tail) in (1, 2):
        if tail.strip("0"):
            raise ValueError(raw[:40])  # VND has no subunits: 120.000,50 is not an amount
        integral = head
    else:
        integral = cell
    groups = re.split(r"[.,]", integral)
    if len(groups) > 1 and (not 1 <= len(groups[0]) <= 3 or any(len(g) != 3 for g in groups[1:])):
        raise ValueError(raw[:40])
    return "".join(groups)


_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}


def parse_date(text: str) -> date | None:
    """'25/11/2026', '25-11-26', '2026-11-25', '25/11/2026 14:03:11', '25-Nov-2026' → a date.

    Vietnamese banks write the day first; a first number above 12 with a second one at most 12
    settles it, and month-first is tried only when day-first cannot be a date.
    """
    cell = text.strip()
    if not cell:
        return None
    try:
        return datetime.fromisoformat(cell.replace(" ", "T", 1) if "T" not in cell else cell).date()
    except ValueError:
        pass
    head = re.split(r"[ T]\d{1,2}:\d{2}", cell, maxsplit=1)[0].strip()
    m = re.fullmatch(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})", head)
    if m:
        first, second, year = int(m[1]), int(m[2]), int(m[3])
        year += 2000 if year < 100 else 0
        for day, month in ((first, second), (second, first)):
            try:
                return date(year, month, day)
            except ValueError:
                continue
        return None
    m = re.fullmatch(r"(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})", head)
    if m:
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    m = re.fullmatch(r"(\d{1,2})[ \-/]([A-Za-z]{3})[a-z]*[ \-/,]+(\d{4})", head)
    if m and m[2].lower() in _MONTHS:
        try:
            return date(int(m[3]), _MONTHS[m[2].lower()], int(m[1]))
        except ValueError:
            return None
    return None


# --- Finding dossier codes ---------------------------------------------------------------------

# <commune: 5 digits>-<YYMMDD>-<NNNN>, with dashes, spaces, dots, underscores or slashes between the
# parts, or nothing; never part of a longer run of digits (an account or trace number).
_CODE = re.compile(r"(?<![0-9])([0-9]{5})[\s\-_./]{0,3}([0-9]{6})[\s\-_./]{0,3}([0-9]{4})(?![0-9])")


def codes_in(description: str) -> list[str]:
    """Dossier codes written in a transfer note, in canonical form, first seen first."""
    found: list[str] = []
    for m in _CODE.finditer(description):
        code = f"{m[1]}-{m[2]}-{m[3]}"
        if _plausible_day(m[2]) and code not in found:
            found.append(code)
    return found


def _plausible_day(yymmdd: str) -> bool:
    try:
        date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:]))
    except ValueError:
        return False
    return True


def statement_codes(statement: Statement) -> set[str]:
    """Every dossier code the statement's credit lines mention (to load those dossiers)."""
    return {
        code for line in statement.lines if line.amount > 0 for code in codes_in(line.description)
    }


# --- Matching ----------------------------------------------------------------------------------


class Outcome(StrEnum):
    """What a statement line means for the commune's fees."""

    MATCHED = "matched"  # pays a dossier's fee exactly: the fee is marked paid
    UNDERPAID = "underpaid"  # less than owed: recorded, counts towards the fee, not paid yet
    OVERPAID = "overpaid"  # more than owed (or no fee owed): an official checks and refunds
    UNKNOWN_CODE = "unknown_code"  # no dossier code of this commune in the note
    AMBIGUOUS = "ambiguous"  # several dossier codes in one note
    DUPLICATE = "duplicate"  # this transfer was already recorded (same bank reference)
    ALREADY_PAID = "already_paid"  # the dossier's fee was paid before: a second payment
    NOT_CREDIT = "not_credit"  # money out, or zero
    UNREADABLE = "unreadable"  # the line could not be read

    @property
    def label(self) -> Message:
        return _OUTCOME_LABELS[self]

    @property
    def needs_review(self) -> bool:
        """A person has to look at it (money in that did not pay a fee cleanly)."""
        return self in (
            Outcome.UNDERPAID,
            Outcome.OVERPAID,
            Outcome.UNKNOWN_CODE,
            Outcome.AMBIGUOUS,
            Outcome.ALREADY_PAID,
            Outcome.UNREADABLE,
        )

    @property
    def recorded(self) -> bool:
        """Stored as a bank transfer of the commune (money in, not seen before)."""
        return self in RECORDED


_OUTCOME_LABELS: Mapping[Outcome, Message] = {
    Outcome.MATCHED: Message("Khớp", "Matched"),
    Outcome.UNDERPAID: Message("Chuyển thiếu", "Underpaid"),
    Outcome.OVERPAID: Message("Chuyển thừa", "Overpaid"),
    Outcome.UNKNOWN_CODE: Message("Không rõ mã hồ sơ", "Unknown dossier code"),
    Outcome.AMBIGUOUS: Message("Nhiều mã hồ sơ", "Several dossier codes"),
    Outcome.DUPLICATE: Message("Trùng", "Duplicate"),
    Outcome.ALREADY_PAID: Message("Đã nộp trước đó", "Already paid"),
    Outcome.NOT_CREDIT: Message("Không phải tiền vào", "Not a credit"),
    Outcome.UNREADABLE: Message("Không đọc được", "Unreadable"),
}

RECORDED = frozenset(
    {
        Outcome.MATCHED,
        Outcome.UNDERPAID,
        Outcome.OVERPAID,
        Outcome.UNKNOWN_CODE,
        Outcome.AMBIGUOUS,
        Outcome.ALREADY_PAID,
    }
)


@dataclass(frozen=True, slots=True)
class Due:
    """What a dossier owes, as the database knows it before this statement."""

    code: str
    fee_amount: int
    paid: bool
    received: int = 0  # earlier partial transfers already recorded for it


@dataclass(frozen=True, slots=True)
class LineResult:
    number: int
    outcome: Outcome
    reason: Message
    reference: str
    amount: int
    booked_on: date | None
    code: str | None = None  # the dossier this line is about, when one was found
    owed: int | None = None  # what that dossier still owed before this line


@dataclass
class _Running:
    """What earlier lines of the same statement did."""

    references: dict[str, int] = field(default_factory=dict)  # reference → line number
    received: dict[str, int] = field(default_factory=dict)  # code → partial amounts this file
    paid_by_line: dict[str, int] = field(default_factory=dict)  # code → line that paid it


def vnd(amount: int) -> str:
    """16000 → '16.000 đ'."""
    return f"{amount:,}".replace(",", ".") + " đ"


def reconcile(
    statement: Statement | Iterable[StatementLine],
    dues: Mapping[str, Due],
    *,
    known_references: Collection[str] = (),
) -> list[LineResult]:
    """One result per line, in file order (unreadable lines included).

    `dues` holds the commune's dossiers named by the statement (see `statement_codes`);
    `known_references` the bank references already recorded for the commune.
    """
    lines = statement.lines if isinstance(statement, Statement) else tuple(statement)
    running = _Running()
    results = [_match(line, dues, known_references, running) for line in lines]
    if isinstance(statement, Statement):
        results.extend(
            LineResult(u.number, Outcome.UNREADABLE, u.reason, "", 0, None)
            for u in statement.unreadable
        )
        results.sort(key=lambda r: r.number)
    return results


def _match(
    line: StatementLine,
    dues: Mapping[str, Due],
    known_references: Collection[str],
    running: _Running,
) -> LineResult:
    def result(
        outcome: Outcome, reason: Message, code: str | None = None, owed: int | None = None
    ) -> LineResult:
        return LineResult(
            line.number, outcome, reason, line.reference, line.amount, line.booked_on, code, owed
        )

    if line.amount <= 0:
        return result(
            Outcome.NOT_CREDIT,
            Message(
                "Không phải tiền vào tài khoản (ghi nợ hoặc bằng 0): bỏ qua.",
                "Not money in (a debit or zero): ignored.",
            ),
        )
    ref = line.reference
    shown_ref = ref if line.reference_given else ""
    if ref in known_references:
        return result(
            Outcome.DUPLICATE,
            Message(
                f"Giao dịch {shown_ref} đã được ghi nhận từ một sao kê tải lên trước: "
                "không tính lại."
                if shown_ref
                else "Giao dịch này (cùng ngày, số tiền và nội dung) đã được ghi nhận từ một sao "
                "kê tải lên trước: không tính lại.",
                f"Transfer {shown_ref} was recorded from an earlier statement: not counted again."
                if shown_ref
                else "This transfer (same date, amount and note) was recorded from an earlier "
                "statement: not counted again.",
            ),
        )
    if ref in running.references:
        first = running.references[ref]
        return result(
            Outcome.DUPLICATE,
            Message(
                f"Trùng với dòng {first} của sao kê này "
                + (
                    f"(cùng mã giao dịch {shown_ref})"
                    if shown_ref
                    else "(cùng ngày, số tiền và nội dung)"
                )
                + ": không tính lại.",
                f"Same as line {first} of this statement "
                + (f"(same reference {shown_ref})" if shown_ref else "(same date, amount and note)")
                + ": not counted again.",
            ),
        )
    running.references[ref] = line.number

    candidates = codes_in(line.description)
    known = [c for c in candidates if c in dues]
    if len(known) > 1:
        listed = ", ".join(known)
        return result(
            Outcome.AMBIGUOUS,
            Message(
                f"Nội dung có nhiều mã hồ sơ ({listed}): không tự ghép được, cán bộ đối chiếu và "
                "xác nhận bằng tay.",
                f"The note names several dossiers ({listed}): not matched automatically; an "
                "official checks and confirms by hand.",
            ),
        )
    if not known:
        if candidates:
            return result(
                Outcome.UNKNOWN_CODE,
                Message(
                    f"Mã hồ sơ {candidates[0]} không có trong hồ sơ của xã: có thể người nộp ghi "
                    "sai mã. Cán bộ đối chiếu bằng tay.",
                    f"Dossier code {candidates[0]} is not one of the commune's dossiers: the payer "
                    "may have mistyped it. An official checks by hand.",
                ),
            )
        return result(
            Outcome.UNKNOWN_CODE,
            Message(
                "Nội dung chuyển khoản không có mã hồ sơ (dạng 27517-261122-0001): cán bộ đối "
                "chiếu bằng tay với người nộp.",
                "The transfer note has no dossier code (like 27517-261122-0001): an official "
                "checks by hand with the payer.",
            ),
        )
    code = known[0]
    due = dues[code]
    if due.paid or code in running.paid_by_line:
        where = running.paid_by_line.get(code)
        return result(
            Outcome.ALREADY_PAID,
            Message(
                f"Hồ sơ {code} đã được ghi nhận nộp lệ phí "
                + (f"ở dòng {where} của sao kê này" if where else "trước đó")
                + ": có thể người nộp chuyển hai lần, cán bộ kiểm tra để hoàn trả.",
                f"Dossier {code}'s fee was already recorded as paid "
                + (f"by line {where} of this statement" if where else "before")
                + ": the payer may have paid twice; an official checks and refunds.",
            ),
            code=code,
            owed=0,
        )
    before = due.received + running.received.get(code, 0)
    owed = max(due.fee_amount - before, 0)
    if due.fee_amount <= 0:
        return result(
            Outcome.OVERPAID,
            Message(
                f"Hồ sơ {code} không phải nộp lệ phí nhưng nhận được {vnd(line.amount)}: cán bộ "
                "kiểm tra và hoàn trả.",
                f"Dossier {code} owes no fee but {vnd(line.amount)} came in: an official checks "
                "and refunds it.",
            ),
            code=code,
            owed=0,
        )
    if line.amount == owed:
        running.paid_by_line[code] = line.number
        if before:
            reason = Message(
                f"Khớp hồ sơ {code}: cùng {vnd(before)} đã chuyển trước, đã nhận đủ lệ phí "
                f"{vnd(due.fee_amount)}.",
                f"Matches dossier {code}: with the {vnd(before)} paid before, the "
                f"{vnd(due.fee_amount)} fee is paid in full.",
            )
        else:
            reason = Message(
                f"Khớp hồ sơ {code}: đã nhận đủ lệ phí {vnd(due.fee_amount)}.",
                f"Matches dossier {code}: the {vnd(due.fee_amount)} fee is paid in full.",
            )
        return result(Outcome.MATCHED, reason, code=code, owed=owed)
    if line.amount < owed:
        running.received[code] = running.received.get(code, 0) + line.amount
        short = owed - line.amount
        return result(
            Outcome.UNDERPAID,
            Message(
                f"Chuyển thiếu: hồ sơ {code} còn phải nộp {vnd(owed)}, giao dịch này "
                f"{vnd(line.amount)} (thiếu {vnd(short)}). Chưa ghi nhận đã nộp; khi người nộp "
                "chuyển nốt phần thiếu, hồ sơ sẽ khớp.",
                f"Underpaid: dossier {code} still owes {vnd(owed)}, this transfer is "
                f"{vnd(line.amount)} ({vnd(short)} short). Not marked paid; once the payer sends "
                "the rest, the dossier will match.",
            ),
            code=code,
            owed=owed,
        )
    extra = line.amount - owed
    return result(
        Outcome.OVERPAID,
        Message(
            f"Chuyển thừa: hồ sơ {code} còn phải nộp {vnd(owed)}, giao dịch này "
            f"{vnd(line.amount)} (thừa {vnd(extra)}). Chưa ghi nhận tự động: cán bộ kiểm tra, "
            "xác nhận đã nộp và hoàn phần thừa.",
            f"Overpaid: dossier {code} owes {vnd(owed)}, this transfer is {vnd(line.amount)} "
            f"({vnd(extra)} too much). Not marked paid automatically: an official checks, confirms "
            "the payment and refunds the difference.",
        ),
        code=code,
        owed=owed,
    )


def tally(results: Iterable[LineResult]) -> dict[Outcome, int]:
    """How many lines had each outcome (every outcome present, zero included)."""
    counts = dict.fromkeys(Outcome, 0)
    for r in results:
        counts[r.outcome] += 1
    return counts
