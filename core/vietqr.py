"""VietQR payment codes (mã VietQR): the NAPAS 247 transfer QR a citizen scans to pay a fee.

A VietQR code is an EMVCo "merchant-presented mode" payload: a flat string of TLV fields, each an
id of 2 digits, a length of 2 digits and the value (domain.md §5). The fields we write:

    00 payload format indicator, always "01"
    01 point of initiation: "11" static (the payer types the amount), "12" dynamic (one payment)
    38 merchant account information for NAPAS:
         00 "A000000727" (NAPAS' application id)
         01 beneficiary: 00 the bank's BIN (6 digits), 01 the account or card number
         02 service: "QRIBFTTA" transfer to an account, "QRIBFTTC" transfer to a card
    53 currency "704" (VND)   54 amount   58 country "VN"   59 name   60 city
    62 additional data, of which 08 is the purpose of the transfer (nội dung chuyển khoản)
    63 CRC-16/CCITT-FALSE over everything before its 4 hex digits, "6304" included

Banking apps read only ASCII in these fields, so the purpose, name and city lose their Vietnamese
diacritics ("Lệ phí hộ tịch" → "Le phi ho tich"). The fee amount is also written out in words for
the paper receipt (`amount_in_words_vi`), as Vietnamese receipts and invoices do.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from core.text import Message

NAPAS_AID = "A000000727"
CURRENCY_VND = "704"
COUNTRY_VN = "VN"

Service = Literal["QRIBFTTA", "QRIBFTTC"]
SERVICES: tuple[Service, ...] = ("QRIBFTTA", "QRIBFTTC")

MAX_PURPOSE = 25
MAX_NAME = 25
MAX_CITY = 15
MAX_AMOUNT_DIGITS = 13

# Banks named in domain.md §5. NAPAS has many more members; any 6-digit BIN is accepted, this
# table only gives a name to show beside the account on the payment page.
BANKS: Mapping[str, str] = {
    "970436": "Vietcombank",
    "970415": "VietinBank",
    "970418": "BIDV",
    "970405": "Agribank",
    "970422": "MB",
    "970407": "Techcombank",
}

# EMVCo data objects that are templates (their value is itself a TLV list): the merchant account
# templates 26–51, the additional data (62), the language template (64) and the unreserved
# templates 80–99. Inside NAPAS' template 38, field 01 (the beneficiary) is a template too.
_TEMPLATE_IDS = frozenset({*(f"{i:02d}" for i in range(26, 52)), "62", "64"}) | frozenset(
    f"{i:02d}" for i in range(80, 100)
)
_NESTED_IN_38 = frozenset({"01"})

_BIN = re.compile(r"[0-9]{6}")
_ACCOUNT = re.compile(r"[0-9A-Za-z]{1,19}")
_HEX4 = re.compile(r"[0-9A-F]{4}")
_DIGITS = re.compile(r"[0-9]+")

TLVValue: TypeAlias = "str | TLVTree"
TLVTree: TypeAlias = "dict[str, TLVValue]"


class VietQRError(ValueError):
    """A payload cannot be built from these values, or a text is not a valid VietQR payload."""


# --- CRC ----------------------------------------------------------------------------------------


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def _crc_hex(text: str) -> str:
    return f"{crc16_ccitt_false(text.encode('ascii')):04X}"


# --- Text for banking apps ----------------------------------------------------------------------


def strip_diacritics(text: str) -> str:
    """Vietnamese text without its marks: "Đăng ký khai sinh" → "Dang ky khai sinh".

    Tone and vowel marks are combining characters once decomposed (NFD); đ/Đ are letters of their
    own and are mapped by hand. Characters that are not Vietnamese letters are left as they are.
    """
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", kept)


def _is_printable_ascii(text: str) -> bool:
    return all(" " <= ch <= "~" for ch in text)


def _ascii_field(label: str, text: str, limit: int) -> str:
    """Diacritics stripped, spaces collapsed, printable ASCII only, at most `limit` characters."""
    plain = " ".join(strip_diacritics(text).split())
    bad = sorted({ch for ch in plain if not " " <= ch <= "~"})
    if bad:
        raise VietQRError(f"{label} contains characters banking apps cannot show: {''.join(bad)!r}")
    if len(plain) > limit:
        raise VietQRError(f"{label} is {len(plain)} characters long, at most {limit} are allowed")
    return plain


# --- Building -----------------------------------------------------------------------------------


def _tlv(field_id: str, value: str) -> str:
    if len(value) > 99:
        raise VietQRError(f"field {field_id} is longer than 99 characters")
    return f"{field_id}{len(value):02d}{value}"


def build_payload(
    *,
    bin: str,  # shadows the builtin on purpose: "BIN" is NAPAS' term for the bank's number
    account: str,
    amount: int | None,
    purpose: str | None,
    service: Service = "QRIBFTTA",
    name: str | None = None,
    city: str | None = None,
) -> str:
    """The VietQR string for a transfer of `amount` VND to `account` at the bank `bin`.

    With an amount the code is dynamic (`12`, meant for one payment); without one it is static
    (`11`) and the payer types the amount. The purpose, name and city are written without
    diacritics; an empty purpose is left out.
    """
    if not isinstance(bin, str) or not _BIN.fullmatch(bin):
        raise VietQRError(f"bank BIN must be 6 digits, got {bin!r}")
    if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
        raise VietQRError(f"account number must be 1 to 19 letters or digits, got {account!r}")
    if service not in SERVICES:
        raise VietQRError(f"service must be QRIBFTTA (account) or QRIBFTTC (card), got {service!r}")
    if amount is not None:
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise VietQRError(f"amount must be a positive whole number of đồng, got {amount!r}")
        if len(str(amount)) > MAX_AMOUNT_DIGITS:
            raise VietQRError(f"amount has more than {MAX_AMOUNT_DIGITS} digits: {amount}")
    purpose_text = _ascii_field("purpose", purpose, MAX_PURPOSE) if purpose is not None else ""
    name_text = _ascii_field("name", name, MAX_NAME) if name is not None else ""
    city_text = _ascii_field("city", city, MAX_CITY) if city is not None else ""

    beneficiary = _tlv("00", bin) + _tlv("01", account)
    merchant = _tlv("00", NAPAS_AID) + _tlv("01", beneficiary) + _tlv("02", service)
    parts = [
        _tlv("00", "01"),
        _tlv("01", "12" if amount is not None else "11"),
        _tlv("38", merchant),
        _tlv("53", CURRENCY_VND),
    ]
    if amount is not None:
        parts.append(_tlv("54", str(amount)))
    parts.append(_tlv("58", COUNTRY_VN))
    if name_text:
        parts.append(_tlv("59", name_text))
    if city_text:
        parts.append(_tlv("60", city_text))
    if purpose_text:
        parts.append(_tlv("62", _tlv("08", purpose_text)))
    body = "".join(parts) + "6304"
    return body + _crc_hex(body)


# --- Parsing ------------------------------------------------------------------------------------


def _parse_tlv(text: str, where: str, nested: frozenset[str]) -> TLVTree:
    """Split `text` into fields; values whose id is in `nested` are parsed as templates."""
    fields: TLVTree = {}
    pos = 0
    while pos < len(text):
        head = text[pos : pos + 4]
        if len(head) < 4:
            raise VietQRError(f"{where}: truncated field header at position {pos}")
        field_id, length_text = head[:2], head[2:]
        if not (field_id.isdigit() and field_id.isascii()):
            raise VietQRError(f"{where}: field id {field_id!r} at position {pos} is not 2 digits")
        if not (length_text.isdigit() and length_text.isascii()):
            raise VietQRError(
                f"{where}: length {length_text!r} of field {field_id} is not 2 digits"
            )
        length = int(length_text)
        value = text[pos + 4 : pos + 4 + length]
        if len(value) != length:
            raise VietQRError(
                f"{where}: field {field_id} announces {length} characters, only {len(value)} left"
            )
        if field_id in fields:
            raise VietQRError(f"{where}: field {field_id} appears twice")
        if field_id in nested:
            inner = _NESTED_IN_38 if field_id == "38" and where == "payload" else frozenset()
            fields[field_id] = _parse_tlv(value, f"field {field_id}", inner)
        else:
            fields[field_id] = value
        pos += 4 + length
    return fields


class ParsedPayload(Mapping[str, TLVValue]):
    """A checked VietQR payload: the TLV tree (field id → value or sub-tree) plus typed reads."""

    def __init__(self, fields: TLVTree) -> None:
        self._fields = fields

    def __getitem__(self, key: str) -> TLVValue:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"ParsedPayload({self._fields!r})"

    def _merchant(self) -> TLVTree:
        merchant = self._fields["38"]
        assert isinstance(merchant, dict)  # noqa: S101 - checked by parse_payload
        return merchant

    def _beneficiary(self) -> TLVTree:
        beneficiary = self._merchant()["01"]
        assert isinstance(beneficiary, dict)  # noqa: S101 - checked by parse_payload
        return beneficiary

    @property
    def dynamic(self) -> bool:
        return self._fields["01"] == "12"

    @property
    def bin(self) -> str:
        return str(self._beneficiary()["00"])

    @property
    def bank_name(self) -> str | None:
        return BANKS.get(self.bin)

    @property
    def account(self) -> str:
        return str(self._beneficiary()["01"])

    @property
    def service(self) -> str | None:
        value = self._merchant().get("02")
        return value if isinstance(value, str) else None

    @property
    def amount(self) -> int | None:
        value = self._fields.get("54")
        return int(value) if isinstance(value, str) else None

    @property
    def purpose(self) -> str | None:
        extra = self._fields.get("62")
        value = extra.get("08") if isinstance(extra, dict) else None
        return value if isinstance(value, str) else None

    @property
    def name(self) -> str | None:
        value = self._fields.get("59")
        return value if isinstance(value, str) else None

    @property
    def city(self) -> str | None:
        value = self._fields.get("60")
        return value if isinstance(value, str) else None

    @property
    def crc(self) -> str:
        return str(self._fields["63"])


def _require_text(tree: TLVTree, field_id: str, where: str) -> str:
    value = tree.get(field_id)
    if value is None:
        raise VietQRError(f"{where}: field {field_id} is missing")
    if not isinstance(value, str):
        raise VietQRError(f"{where}: field {field_id} should be a value, not a template")
    return value


def _require_template(tree: TLVTree, field_id: str, where: str) -> TLVTree:
    value = tree.get(field_id)
    if value is None:
        raise VietQRError(f"{where}: field {field_id} is missing")
    if not isinstance(value, dict):
        raise VietQRError(f"{where}: field {field_id} should be a template")
    return value


def parse_payload(text: str) -> ParsedPayload:
    """Check and read a VietQR string; raise `VietQRError` saying what is wrong.

    The CRC is checked first, over the raw text: any single changed character is caught there
    (CRC-16 detects every error burst of up to 16 bits), before the structure is even read.
    """
    if not isinstance(text, str):
        raise VietQRError("payload must be text")
    for pos, ch in enumerate(text):
        if not " " <= ch <= "~":
            raise VietQRError(f"character {ch!r} at position {pos} is not printable ASCII")
    if len(text) < 8 or text[-8:-4] != "6304":
        raise VietQRError("payload does not end with a CRC field (6304 and 4 hex digits)")
    given = text[-4:]
    if not _HEX4.fullmatch(given):
        raise VietQRError(f"CRC {given!r} is not 4 upper-case hexadecimal digits")
    expected = _crc_hex(text[:-4])
    if given != expected:
        raise VietQRError(f"CRC mismatch: the payload says {given}, its content gives {expected}")

    fields = _parse_tlv(text, "payload", _TEMPLATE_IDS)
    if next(iter(fields)) != "00" or fields["00"] != "01":
        raise VietQRError("payload must start with the format indicator 000201")
    if list(fields)[-1] != "63":
        raise VietQRError("the CRC field 63 must come last")
    initiation = _require_text(fields, "01", "payload")
    if initiation not in ("11", "12"):
        raise VietQRError(f"point of initiation must be 11 (static) or 12 (dynamic): {initiation}")
    merchant = _require_template(fields, "38", "payload")
    aid = _require_text(merchant, "00", "field 38")
    if aid != NAPAS_AID:
        raise VietQRError(f"field 38 is not a NAPAS account: application id {aid!r}")
    beneficiary = _require_template(merchant, "01", "field 38")
    bank_bin = _require_text(beneficiary, "00", "beneficiary")
    if not _BIN.fullmatch(bank_bin):
        raise VietQRError(f"bank BIN must be 6 digits, got {bank_bin!r}")
    account = _require_text(beneficiary, "01", "beneficiary")
    if not _ACCOUNT.fullmatch(account):
        raise VietQRError(f"account number must be 1 to 19 letters or digits, got {account!r}")
    service = merchant.get("02")
    if service is not None and service not in SERVICES:
        raise VietQRError(f"unknown NAPAS service {service!r}")
    currency = _require_text(fields, "53", "payload")
    if currency != CURRENCY_VND:
        raise VietQRError(f"currency must be 704 (VND), not {currency}")
    country = _require_text(fields, "58", "payload")
    if country != COUNTRY_VN:
        raise VietQRError(f"country must be VN, not {country}")
    if "54" in fields:
        amount = _require_text(fields, "54", "payload")
        if not _DIGITS.fullmatch(amount) or int(amount) <= 0:
            raise VietQRError(f"amount must be a positive whole number of đồng, got {amount!r}")
    return ParsedPayload(fields)


# --- Amount in words ----------------------------------------------------------------------------

_DIGIT_WORDS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_GROUP_WORDS = ("", "nghìn", "triệu")
_BILLION = 1_000_000_000


def _three_digits(n: int, *, full: bool) -> list[str]:
    """Read 0 < n < 1000; `full` reads the hundreds even when zero (a group after a higher one)."""
    hundreds, tens, units = n // 100, n // 10 % 10, n % 10
    words: list[str] = []
    if hundreds or full:
        words += [_DIGIT_WORDS[hundreds], "trăm"]
    if tens == 0:
        if units and words:
            words.append("linh")  # 105: một trăm linh năm
    elif tens == 1:
        words.append("mười")
    else:
        words += [_DIGIT_WORDS[tens], "mươi"]
    if units == 1 and tens >= 2:
        words.append("mốt")  # 21: hai mươi mốt
    elif units == 5 and tens >= 1:
        words.append("lăm")  # 15: mười lăm, 25: hai mươi lăm
    elif units:
        words.append(_DIGIT_WORDS[units])
    return words


def _below_billion(n: int, *, leading: bool) -> list[str]:
    groups = [n // 1_000_000, n // 1_000 % 1_000, n % 1_000]
    words: list[str] = []
    for index, group in enumerate(groups):
        if group == 0:
            continue
        words += _three_digits(group, full=bool(words) or not leading)
        scale = _GROUP_WORDS[2 - index]
        if scale:
            words.append(scale)
    return words


def _number_words(n: int, *, leading: bool = True) -> list[str]:
    if n >= _BILLION:
        high, low = divmod(n, _BILLION)
        words = _number_words(high, leading=leading) + ["tỷ"]
        return words + (_below_billion(low, leading=False) if low else [])
    return _below_billion(n, leading=leading)


def amount_in_words_vi(amount: int) -> str:
    """An amount in words, as on a receipt: 120000 → "một trăm hai mươi nghìn đồng".

    Reading rules: a zero ten before a unit is "linh" (105 "một trăm linh năm"); 1 after a ten of
    20 or more is "mốt" (21), 5 after any ten is "lăm" (15, 25); a group after a higher group is
    read in full ("một nghìn không trăm năm mươi"); groups that are all zeros are skipped
    (1 000 000 "một triệu").
    """
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValueError(f"amount must be a whole number of đồng, not {amount!r}")
    if amount == 0:
        return "không đồng"
    return " ".join([*_number_words(amount), "đồng"])


# --- The commune's collecting account -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CollectingAccount:
    """The account a commune collects fees on (tài khoản chuyên thu), as banking apps show it."""

    bin: str
    account: str
    name: str  # upper case, without diacritics, at most 25 characters (field 59)

    @property
    def bank_name(self) -> str:
        return BANKS.get(self.bin, self.bin)


def check_collecting_account(
    bin: str, account: str, name: str
) -> tuple[CollectingAccount | None, dict[str, Message]]:
    """Read what a commune admin typed: the account, or the errors by field ("bin", "account",
    "name"). Spaces, dots and dashes in the number are dropped; the name loses its diacritics and
    is upper-cased, as the bank prints it ("UBND xã Nhuận Đức" → "UBND XA NHUAN DUC")."""
    errors: dict[str, Message] = {}
    bin = bin.strip()
    if bin not in BANKS:
        errors["bin"] = Message("Xin chọn ngân hàng.", "Choose the bank.")
    number = re.sub(r"[\s.\-]", "", account)
    if not number:
        errors["account"] = Message("Xin nhập số tài khoản.", "Enter the account number.")
    elif not number.isascii() or not number.isdigit():
        errors["account"] = Message(
            "Số tài khoản chỉ gồm chữ số.", "The account number has digits only."
        )
    elif not 6 <= len(number) <= 19:
        errors["account"] = Message(
            "Số tài khoản có từ 6 đến 19 chữ số: xin kiểm tra lại.",
            "An account number has 6 to 19 digits: check it again.",
        )
    plain = " ".join(strip_diacritics(name).upper().split())
    if not plain:
        errors["name"] = Message(
            "Xin nhập tên tài khoản đúng như ngân hàng in (ví dụ UBND XA NHUAN DUC).",
            "Enter the account name exactly as the bank prints it (e.g. UBND XA NHUAN DUC).",
        )
    elif not _is_printable_ascii(plain):
        errors["name"] = Message(
            "Tên tài khoản chỉ dùng chữ cái không dấu, chữ số và khoảng trắng.",
            "The account name uses only letters without marks, digits and spaces.",
        )
    elif len(plain) > MAX_NAME:
        errors["name"] = Message(
            f"Tên tài khoản dài {len(plain)} ký tự, tối đa {MAX_NAME}: viết tắt như ngân hàng "
            "(ví dụ UBND XA NHUAN DUC).",
            f"The account name is {len(plain)} characters long, at most {MAX_NAME}: abbreviate "
            "it as the bank does (e.g. UBND XA NHUAN DUC).",
        )
    if errors:
        return None, errors
    return CollectingAccount(bin, number, plain), {}
