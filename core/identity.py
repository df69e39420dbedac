"""What a citizen types about themselves: ID number, phone, dates, name (thông tin nhân thân).

Every form of a commune procedure asks for some of these, and each has a shape the law or the
network operators fix. This module turns what a person typed, on a phone, in a hurry, into one
canonical value, or refuses it with a bilingual message that says what to fix:

- **Personal identity number (số định danh cá nhân)**, printed on the chip ID card (căn cước,
  formerly căn cước công dân, CCCD): 12 digits with no check digit (Luật Căn cước 2023 Điều 12;
  NĐ 137/2015 Điều 13). Digits 1–3 name the province where the birth was registered (the 63
  pre-2025 codes stay valid after the 2025 merger), digit 4 gives sex and century (0/1 man/woman
  born in the 1900s, 2/3 in the 2000s, and so on by pairs), digits 5–6 the last two digits of the
  birth year, digits 7–12 a serial. So the number can be checked against the date of birth and sex
  typed beside it, which catches most slips of the finger. The old 9-digit identity card number
  (chứng minh nhân dân, CMND) still appears on old papers; it carries nothing checkable and is
  accepted only where a field allows it.
- **Mobile phone number (số điện thoại di động)**: 10 digits starting with 0, or +84 and the 9
  digits without the 0, with one of the prefixes in use today. Stored in E.164 (``+84…``) so one
  person is one string however they typed it. Landlines are refused: the commune texts the
  citizen about their dossier.
- **Dates (ngày tháng năm)** are written day/month/year in Vietnam; the browser's date picker sends
  ISO ``yyyy-mm-dd``. Only real calendar dates from 1900 on are accepted.
- **Names (họ và tên)** are kept as typed (Vietnamese letters with their diacritics, composed to
  NFC so that the same name is the same string), but invisible and control characters, digits and
  symbols are refused: they end up on a civil status record.
- **Email and free text**: a sane shape for email, and for text and addresses NFC, no control or
  direction-override characters, single spaces.

Everything here is pure: a string in, a value out, or ``InvalidValue`` carrying a ``Message``. The
functions accept any string at all (binary junk, NUL bytes, lone surrogates) and never raise
anything else.
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Literal, overload

from core.text import Message

Sex = Literal["nam", "nu"]


class InvalidValue(ValueError):
    """The value cannot be accepted; ``reason`` tells the citizen what to fix."""

    def __init__(self, reason: Message) -> None:
        super().__init__(reason.en)
        self.reason = reason


# --- Characters ---------------------------------------------------------------------------------

# Full-width digits and punctuation come from some East Asian keyboards and copy-paste.
_FULLWIDTH = str.maketrans(
    {chr(0xFF10 + i): str(i) for i in range(10)}
    | {"\uff0b": "+", "\uff0d": "-", "\uff0e": ".", "\uff0f": "/", "\u3000": " "}
)
# Characters people put between groups of digits.
_DIGIT_SEPARATORS = frozenset(" \t.-()\u00a0\u2007\u202f\u2010\u2011\u2012\u2013\u2014\u2212")
# Invisible characters that are not in a "format" or "control" category but show as nothing.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5")
# Zero-width characters that copy-paste drags along; harmless to drop from free text.
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
_MAX_COMBINING_RUN = 4  # Vietnamese needs at most 2 marks on a letter; more is "Zalgo" text

_ASCII_DIGITS = frozenset("0123456789")


def _digits_only(text: str) -> bool:
    return bool(text) and all(c in _ASCII_DIGITS for c in text)


def _strip_separators(raw: str) -> str:
    text = raw.translate(_FULLWIDTH)
    return "".join(c for c in text if c not in _DIGIT_SEPARATORS and not c.isspace())


def _fmt_date(day: date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


# --- Personal identity number (số định danh cá nhân) ---------------------------------------------

# Digits 1–3: the province where the birth was registered (NĐ 137/2015, domain.md §3).
PROVINCES: dict[str, str] = {
    "001": "Hà Nội",
    "002": "Hà Giang",
    "004": "Cao Bằng",
    "006": "Bắc Kạn",
    "008": "Tuyên Quang",
    "010": "Lào Cai",
    "011": "Điện Biên",
    "012": "Lai Châu",
    "014": "Sơn La",
    "015": "Yên Bái",
    "017": "Hòa Bình",
    "019": "Thái Nguyên",
    "020": "Lạng Sơn",
    "022": "Quảng Ninh",
    "024": "Bắc Giang",
    "025": "Phú Thọ",
    "026": "Vĩnh Phúc",
    "027": "Bắc Ninh",
    "030": "Hải Dương",
    "031": "Hải Phòng",
    "033": "Hưng Yên",
    "034": "Thái Bình",
    "035": "Hà Nam",
    "036": "Nam Định",
    "037": "Ninh Bình",
    "038": "Thanh Hóa",
    "040": "Nghệ An",
    "042": "Hà Tĩnh",
    "044": "Quảng Bình",
    "045": "Quảng Trị",
    "046": "Thừa Thiên Huế",
    "048": "Đà Nẵng",
    "049": "Quảng Nam",
    "051": "Quảng Ngãi",
    "052": "Bình Định",
    "054": "Phú Yên",
    "056": "Khánh Hòa",
    "058": "Ninh Thuận",
    "060": "Bình Thuận",
    "062": "Kon Tum",
    "064": "Gia Lai",
    "066": "Đắk Lắk",
    "067": "Đắk Nông",
    "068": "Lâm Đồng",
    "070": "Bình Phước",
    "072": "Tây Ninh",
    "074": "Bình Dương",
    "075": "Đồng Nai",
    "077": "Bà Rịa–Vũng Tàu",
    "079": "TP. Hồ Chí Minh",
    "080": "Long An",
    "082": "Tiền Giang",
    "083": "Bến Tre",
    "084": "Trà Vinh",
    "086": "Vĩnh Long",
    "087": "Đồng Tháp",
    "089": "An Giang",
    "091": "Kiên Giang",
    "092": "Cần Thơ",
    "093": "Hậu Giang",
    "094": "Sóc Trăng",
    "095": "Bạc Liêu",
    "096": "Cà Mau",
}

_SEX_LABEL: dict[Sex, Message] = {"nam": Message("nam", "male"), "nu": Message("nữ", "female")}


@dataclass(frozen=True, slots=True)
class Cccd:
    """A parsed 12-digit personal identity number."""

    number: str  # the 12 digits
    province_code: str  # digits 1–3
    province_name: str
    sex: Sex
    century: int  # first year of the birth century: 1900, 2000, …
    birth_year_2digits: int  # digits 5–6

    @property
    def birth_year(self) -> int:
        return self.century + self.birth_year_2digits

    def birth_year_matches(self, year: int) -> bool:
        return year == self.birth_year


@dataclass(frozen=True, slots=True)
class Cmnd:
    """An old 9-digit identity card number (chứng minh nhân dân): nothing in it can be checked."""

    number: str


CCCD_EMPTY = Message(
    "Xin nhập số định danh cá nhân (12 chữ số in trên thẻ căn cước).",
    "Please enter the personal identity number (the 12 digits on the ID card).",
)
CCCD_NOT_DIGITS = Message(
    "Số định danh cá nhân chỉ gồm chữ số. Xin bỏ chữ cái và ký hiệu khác rồi nhập lại.",
    "The personal identity number has digits only. Remove letters and other signs.",
)
CCCD_LENGTH = Message(
    "Số định danh cá nhân có đúng 12 chữ số; số đã nhập có {count} chữ số. Xin kiểm tra lại.",
    "The personal identity number has exactly 12 digits; this one has {count}. Please check it.",
)
CCCD_LENGTH_OR_CMND = Message(
    "Xin nhập số định danh cá nhân 12 chữ số, hoặc số chứng minh nhân dân cũ 9 chữ số; số đã "
    "nhập có {count} chữ số.",
    "Please enter the 12-digit personal identity number, or the old 9-digit ID card number; "
    "this one has {count} digits.",
)
CCCD_CMND_REFUSED = Message(
    "Đây là số chứng minh nhân dân cũ (9 chữ số). Mục này cần số định danh cá nhân 12 chữ số, in "
    "trên thẻ căn cước hoặc căn cước công dân.",
    "This is an old 9-digit ID card number. This field needs the 12-digit personal identity "
    "number printed on the chip ID card.",
)
CCCD_PROVINCE = Message(
    "Ba chữ số đầu ({code}) không phải mã tỉnh, thành phố nào. Xin kiểm tra lại số định danh.",
    "The first three digits ({code}) are not a province code. Please check the number.",
)
CCCD_YEAR_MISMATCH_DATE = Message(
    "Số định danh cho biết năm sinh {id_year}, nhưng ngày sinh đã nhập là {entered}. "
    "Xin kiểm tra lại.",
    "The identity number says born in {id_year}, but the date of birth entered is {entered}. "
    "Please check.",
)
CCCD_YEAR_MISMATCH_YEAR = Message(
    "Số định danh cho biết năm sinh {id_year}, nhưng năm sinh đã nhập là {entered}. "
    "Xin kiểm tra lại.",
    "The identity number says born in {id_year}, but the year of birth entered is {entered}. "
    "Please check.",
)
CCCD_CENTURY_MISMATCH = Message(
    "Chữ số thứ tư của số định danh ({digit}) dành cho người sinh từ năm {start} đến năm {end}, "
    "nhưng {what_vi} đã nhập là {entered}. Xin kiểm tra lại.",
    "The fourth digit of the identity number ({digit}) is for people born {start}–{end}, but the "
    "{what_en} entered is {entered}. Please check.",
)
CCCD_SEX_MISMATCH = Message(
    "Số định danh cho biết giới tính {id_sex}, nhưng giới tính đã chọn là {entered}. "
    "Xin kiểm tra lại.",
    "The identity number says {id_sex_en}, but the sex chosen is {entered_en}. Please check.",
)
CCCD_FUTURE = Message(
    "Số định danh cho biết năm sinh {id_year}, là năm chưa tới. Xin kiểm tra lại chữ số thứ tư "
    "và chữ số thứ năm, thứ sáu.",
    "The identity number says born in {id_year}, which has not come yet. Please check the "
    "fourth, fifth and sixth digits.",
)


@overload
def parse_cccd(raw: str, *, allow_cmnd: Literal[False] = False) -> Cccd: ...
@overload
def parse_cccd(raw: str, *, allow_cmnd: bool) -> Cccd | Cmnd: ...
def parse_cccd(raw: str, *, allow_cmnd: bool = False) -> Cccd | Cmnd:
    """The personal identity number in ``raw`` (spaces, dots and dashes allowed between digits)."""
    text = _strip_separators(raw)
    if not text:
        raise InvalidValue(CCCD_EMPTY)
    if not _digits_only(text):
        raise InvalidValue(CCCD_NOT_DIGITS)
    if len(text) == 9:
        if allow_cmnd:
            return Cmnd(text)
        raise InvalidValue(CCCD_CMND_REFUSED)
    if len(text) != 12:
        template = CCCD_LENGTH_OR_CMND if allow_cmnd else CCCD_LENGTH
        raise InvalidValue(template.format(count=len(text)))
    code = text[:3]
    province = PROVINCES.get(code)
    if province is None:
        raise InvalidValue(CCCD_PROVINCE.format(code=code))
    sex_century = int(text[3])
    return Cccd(
        number=text,
        province_code=code,
        province_name=province,
        sex="nam" if sex_century % 2 == 0 else "nu",
        century=1900 + 100 * (sex_century // 2),
        birth_year_2digits=int(text[4:6]),
    )


def sex_from_value(value: str) -> Sex | None:
    """Read a sex field's value ("nam", "nữ", "male", "f" …); None when it says neither."""
    key = unicodedata.normalize("NFC", value).strip().casefold()
    if key in ("nam", "male", "m", "trai"):
        return "nam"
    if key in ("nu", "nữ", "female", "f", "gái", "gai"):
        return "nu"
    return None


def check_cccd(
    cccd: Cccd,
    *,
    birth_date: date | None = None,
    birth_year: int | None = None,
    sex: Sex | None = None,
    today: date | None = None,
) -> Message | None:
    """What is wrong between the ID number and the person's other details, or None.

    ``birth_date`` (or, where a form asks only for the year, ``birth_year``) and ``sex`` are what
    the citizen entered beside the number; ``today`` refuses a birth year that has not come yet.
    """
    id_year = cccd.birth_year
    year = birth_date.year if birth_date is not None else birth_year
    if year is not None and not cccd.birth_year_matches(year):
        entered = _fmt_date(birth_date) if birth_date is not None else str(year)
        if year % 100 == cccd.birth_year_2digits:
            # Only the century digit disagrees: say which digit, not a year nobody typed.
            return CCCD_CENTURY_MISMATCH.format(
                digit=cccd.number[3],
                start=cccd.century,
                end=cccd.century + 99,
                entered=entered,
                what_vi="ngày sinh" if birth_date is not None else "năm sinh",
                what_en="date of birth" if birth_date is not None else "year of birth",
            )
        template = CCCD_YEAR_MISMATCH_DATE if birth_date is not None else CCCD_YEAR_MISMATCH_YEAR
        return template.format(id_year=id_year, entered=entered)
    if today is not None and id_year > today.year:
        return CCCD_FUTURE.format(id_year=id_year)
    if sex is not None and sex != cccd.sex:
        return CCCD_SEX_MISMATCH.format(
            id_sex=_SEX_LABEL[cccd.sex].vi,
            entered=_SEX_LABEL[sex].vi,
            id_sex_en=_SEX_LABEL[cccd.sex].en,
            entered_en=_SEX_LABEL[sex].en,
        )
    return None


# --- Mobile phone numbers (số điện thoại di động) ------------------------------------------------

# The prefixes in use today, with their network (domain.md §4).
MOBILE_PREFIXES: dict[str, str] = {
    **{p: "Viettel" for p in ("032", "033", "034", "035", "036", "037", "038", "039")},
    **{p: "Viettel" for p in ("086", "096", "097", "098")},
    **{p: "VinaPhone" for p in ("081", "082", "083", "084", "085", "088", "091", "094")},
    **{p: "MobiFone" for p in ("070", "076", "077", "078", "079", "089", "090", "093")},
    **{p: "Vietnamobile" for p in ("052", "056", "058", "092")},
    **{p: "Gmobile" for p in ("059", "099")},
    "087": "iTel",
}

PHONE_EMPTY = Message("Xin nhập số điện thoại di động.", "Please enter a mobile phone number.")
PHONE_NOT_DIGITS = Message(
    "Số điện thoại chỉ gồm chữ số (có thể bắt đầu bằng +84). Xin bỏ chữ cái và ký hiệu khác.",
    "A phone number has digits only (it may start with +84). Remove letters and other signs.",
)
PHONE_FOREIGN = Message(
    "Xin nhập số di động Việt Nam: 10 chữ số bắt đầu bằng 0, hoặc +84 và 9 chữ số.",
    "Please enter a Vietnamese mobile number: 10 digits starting with 0, or +84 and 9 digits.",
)
PHONE_LENGTH = Message(
    "Số di động có 10 chữ số, bắt đầu bằng 0 (ví dụ 0912 345 678); số đã nhập có {count} chữ "
    "số. Xin kiểm tra lại.",
    "A mobile number has 10 digits starting with 0 (e.g. 0912 345 678); this one has {count}. "
    "Please check it.",
)
PHONE_LANDLINE = Message(
    "Đây là số máy bàn. Xin nhập số điện thoại di động để nhận tin nhắn về hồ sơ.",
    "This is a landline number. Please enter a mobile number, to receive messages about the "
    "dossier.",
)
PHONE_OLD_ELEVEN = Message(
    "Số di động nay chỉ có 10 chữ số; các đầu số cũ 01… đã được chuyển sang đầu số mới. Xin nhập "
    "số mới của bạn.",
    "Mobile numbers now have 10 digits; the old 01… prefixes were converted to new ones. Please "
    "enter your current number.",
)
PHONE_PREFIX = Message(
    "Đầu số {prefix} không phải đầu số di động đang dùng ở Việt Nam. Xin kiểm tra lại số "
    "điện thoại.",
    "{prefix} is not a Vietnamese mobile prefix in use. Please check the number.",
)


def parse_phone(raw: str) -> str:
    """A Vietnamese mobile number in E.164 form (``+84`` and 9 digits)."""
    text = _strip_separators(raw)
    if not text:
        raise InvalidValue(PHONE_EMPTY)
    if text.startswith("+"):
        international = text[1:]
    elif text.startswith("00") and not text.startswith("000"):
        international = text[2:]  # 0084…: the international call prefix
    elif text.startswith("84") and len(text) in (11, 12):
        international = text  # 84912345678: "+84" without the plus
    else:
        international = None
    if international is not None:
        if not _digits_only(international):
            raise InvalidValue(PHONE_NOT_DIGITS)
        if not international.startswith("84"):
            raise InvalidValue(PHONE_FOREIGN)
        rest = international[2:]
        # "+84 0912…": the national 0 kept after the country code is a common, harmless slip.
        national = rest if rest.startswith("0") else "0" + rest
    else:
        national = text
    if not _digits_only(national):
        raise InvalidValue(PHONE_NOT_DIGITS)
    if len(national) != 10 or not national.startswith("0"):
        if national.startswith("02") and len(national) == 11:
            raise InvalidValue(PHONE_LANDLINE)
        if national.startswith("01") and len(national) == 11:
            raise InvalidValue(PHONE_OLD_ELEVEN)
        if len(national) > 99:
            raise InvalidValue(PHONE_FOREIGN)
        raise InvalidValue(PHONE_LENGTH.format(count=len(national)))
    prefix = national[:3]
    if prefix not in MOBILE_PREFIXES:
        if national.startswith("02"):
            raise InvalidValue(PHONE_LANDLINE)
        raise InvalidValue(PHONE_PREFIX.format(prefix=prefix))
    return "+84" + national[1:]


def mobile_network(e164: str) -> str | None:
    """The network a stored ``+84…`` number belongs to (by prefix), or None."""
    if len(e164) != 12 or not e164.startswith("+84"):
        return None
    return MOBILE_PREFIXES.get("0" + e164[3:5])


# --- Dates (ngày tháng năm) ----------------------------------------------------------------------

MIN_YEAR = 1900

_DMY = re.compile(r"([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]+)", re.ASCII)
_ISO = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})", re.ASCII)

DATE_EMPTY = Message(
    "Xin nhập ngày theo dạng ngày/tháng/năm, ví dụ 25/12/1990.",
    "Please enter the date as day/month/year, e.g. 25/12/1990.",
)
DATE_FORMAT = Message(
    "Ngày chưa đúng dạng. Xin nhập theo dạng ngày/tháng/năm, ví dụ 25/12/1990.",
    "The date is not in the right form. Please enter day/month/year, e.g. 25/12/1990.",
)
DATE_SHORT_YEAR = Message(
    "Xin ghi năm đủ bốn chữ số, ví dụ 25/12/1990 chứ không phải 25/12/90.",
    "Please write the year with four digits, e.g. 25/12/1990, not 25/12/90.",
)
DATE_MONTH = Message(
    "Tháng phải từ 1 đến 12 (ngày ghi trước, tháng ghi sau: 25/12/1990). Xin kiểm tra lại.",
    "The month must be 1 to 12 (day first, then month: 25/12/1990). Please check.",
)
DATE_DAY = Message(
    "Tháng {month}/{year} không có ngày {day}. Xin kiểm tra lại.",
    "{month}/{year} has no day {day}. Please check.",
)
DATE_YEAR = Message(
    "Năm phải từ 1900 trở về sau. Xin kiểm tra lại.",
    "The year must be 1900 or later. Please check.",
)


def parse_date(raw: str) -> date:
    """A date typed as dd/mm/yyyy (also d/m/yyyy, dd-mm-yyyy, dd.mm.yyyy) or ISO yyyy-mm-dd."""
    text = "".join(c for c in raw.translate(_FULLWIDTH) if not c.isspace())
    if not text:
        raise InvalidValue(DATE_EMPTY)
    if len(text) > 20:
        raise InvalidValue(DATE_FORMAT)
    iso = _ISO.fullmatch(text)
    if iso is not None:
        year, month, day = (int(g) for g in iso.groups())
    else:
        dmy = _DMY.fullmatch(text)
        if dmy is None:
            raise InvalidValue(DATE_FORMAT)
        if len(dmy.group(4)) == 2:
            raise InvalidValue(DATE_SHORT_YEAR)
        if len(dmy.group(4)) != 4:
            raise InvalidValue(DATE_FORMAT)
        day, month, year = int(dmy.group(1)), int(dmy.group(3)), int(dmy.group(4))
    if year < MIN_YEAR:
        raise InvalidValue(DATE_YEAR)
    if not 1 <= month <= 12:
        raise InvalidValue(DATE_MONTH)
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidValue(DATE_DAY.format(day=day, month=month, year=year)) from None


def format_date(day: date) -> str:
    """dd/mm/yyyy, as Vietnamese papers write dates."""
    return _fmt_date(day)


# --- Names (họ và tên) ---------------------------------------------------------------------------

NAME_MIN_LENGTH = 2
NAME_MAX_LENGTH = 100
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "´": "'"})
_HYPHENS = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-"})

NAME_EMPTY = Message("Xin nhập họ và tên.", "Please enter the full name.")
NAME_INVISIBLE = Message(
    "Họ tên có ký tự ẩn hoặc ký tự điều khiển (thường do sao chép từ nơi khác). Xin xóa hết "
    "ô này rồi gõ lại.",
    "The name contains hidden or control characters (often from copy and paste). Please clear "
    "the field and type it again.",
)
NAME_DIGIT = Message(
    "Họ tên không được có chữ số. Xin kiểm tra lại.",
    "A name cannot contain digits. Please check.",
)
NAME_SYMBOL = Message(
    "Họ tên chỉ gồm chữ cái, khoảng trắng, dấu gạch nối (-) và dấu nháy ('). Xin bỏ ký tự "
    "“{char}”.",
    "A name has only letters, spaces, hyphens (-) and apostrophes ('). Please remove “{char}”.",
)
NAME_SCRIPT = Message(
    "Xin ghi họ tên bằng chữ cái tiếng Việt (chữ Latinh có dấu), như trên giấy tờ. Ký tự "
    "“{char}” không dùng được.",
    "Please write the name in Vietnamese (Latin) letters, as on your papers. “{char}” cannot be "
    "used.",
)
NAME_PUNCTUATION = Message(
    "Dấu gạch nối (-) và dấu nháy (') chỉ đứng giữa hai chữ cái. Xin kiểm tra lại.",
    "Hyphens (-) and apostrophes (') go only between two letters. Please check.",
)
NAME_MARKS = Message(
    "Họ tên có dấu thanh đứng riêng hoặc chồng nhiều dấu. Xin xóa hết ô này rồi gõ lại.",
    "The name has a stray or stacked accent mark. Please clear the field and type it again.",
)
NAME_SHORT = Message(
    "Họ tên quá ngắn. Xin ghi đầy đủ họ và tên.",
    "The name is too short. Please write the full name.",
)
NAME_LONG = Message(
    "Họ tên dài quá {max} ký tự. Xin kiểm tra lại.",
    "The name is longer than {max} characters. Please check.",
)


def _is_invisible(char: str) -> bool:
    return (
        unicodedata.category(char) in _REFUSED_CATEGORIES
        or char in _INVISIBLE_LETTERS
        or char in _ZERO_WIDTH
    )


def _is_latin_letter(char: str) -> bool:
    if not unicodedata.category(char).startswith("L"):
        return False
    return unicodedata.name(char, "").startswith("LATIN ")


def normalise_person_name(raw: str) -> str:
    """A person's full name, NFC, single spaces; refused if it holds anything but a name."""
    if len(raw) > 4 * NAME_MAX_LENGTH:
        raise InvalidValue(NAME_LONG.format(max=NAME_MAX_LENGTH))
    # Most names are letters and spaces only: every check of `_name_words` would pass them.
    words = raw.split() if _PLAIN_NAME.fullmatch(raw) else _name_words(raw)
    if not words:
        raise InvalidValue(NAME_EMPTY)
    name = " ".join(words)
    if len(name) < NAME_MIN_LENGTH:
        raise InvalidValue(NAME_SHORT)
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidValue(NAME_LONG.format(max=NAME_MAX_LENGTH))
    if name == name.lower():
        # "nguyễn văn an" typed without the shift key: capitalise each word's first letter only.
        name = " ".join(w[0].upper() + w[1:] for w in name.split(" "))
    return name


def _name_words(raw: str) -> list[str]:
    """The words of a name, each checked; InvalidValue if any holds anything but letters."""
    if any(_is_invisible(c) for c in raw if c not in " \t"):
        raise InvalidValue(NAME_INVISIBLE)
    text = unicodedata.normalize("NFC", raw).translate(_APOSTROPHES).translate(_HYPHENS)
    words = text.split()
    for word in words:
        _check_name_word(word)
    return words


def _check_name_word(word: str) -> None:
    marks = 0
    previous = ""
    for i, char in enumerate(word):
        category = unicodedata.category(char)
        if category.startswith("M"):
            # After NFC every Vietnamese letter is one code point; a mark survives only on letters
            # of minority alphabets with no precomposed form (Ê Đê "ơ̆"), and then just one.
            marks += 1
            if not previous or previous in "-'" or marks > 1:
                raise InvalidValue(NAME_MARKS)
            continue
        marks = 0
        if char in "-'":
            nxt = word[i + 1] if i + 1 < len(word) else ""
            if not previous or previous in "-'" or not nxt or not _is_latin_letter(nxt):
                raise InvalidValue(NAME_PUNCTUATION)
        elif category == "Nd" or char.isdigit():
            raise InvalidValue(NAME_DIGIT)
        elif category.startswith("L"):
            if not _is_latin_letter(char):
                raise InvalidValue(NAME_SCRIPT.format(char=char))
        else:
            raise InvalidValue(NAME_SYMBOL.format(char=char))
        previous = char


# --- Email ---------------------------------------------------------------------------------------

EMAIL_MAX_LENGTH = 254
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_EMAIL_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

EMAIL_EMPTY = Message("Xin nhập địa chỉ email.", "Please enter an email address.")
EMAIL_FORMAT = Message(
    "Địa chỉ email chưa đúng dạng, ví dụ đúng: nguyenvanan@gmail.com. Xin kiểm tra lại.",
    "This is not an email address; one looks like nguyenvanan@gmail.com. Please check.",
)
EMAIL_LONG = Message(
    "Địa chỉ email dài quá 254 ký tự. Xin kiểm tra lại.",
    "The email address is longer than 254 characters. Please check.",
)


def parse_email(raw: str) -> str:
    """An email address of the plain ASCII shape ``local@domain.tld``; the domain lower-cased."""
    text = raw.strip()
    if not text:
        raise InvalidValue(EMAIL_EMPTY)
    if len(text) > EMAIL_MAX_LENGTH:
        raise InvalidValue(EMAIL_LONG)
    local, at, domain = text.rpartition("@")
    if not at or len(local) > 64 or _EMAIL_LOCAL.fullmatch(local) is None:
        raise InvalidValue(EMAIL_FORMAT)
    labels = domain.split(".")
    if len(labels) < 2 or not all(_EMAIL_LABEL.fullmatch(label) for label in labels):
        raise InvalidValue(EMAIL_FORMAT)
    if not labels[-1].isalpha() or len(labels[-1]) < 2:
        raise InvalidValue(EMAIL_FORMAT)
    return f"{local}@{domain.lower()}"


# --- Free text and addresses (văn bản, địa chỉ) ---------------------------------------------------

TEXT_INVISIBLE = Message(
    "Nội dung có ký tự điều khiển hoặc ký tự không in được (thường do sao chép từ nơi khác). "
    "Xin xóa các ký tự đó hoặc gõ lại.",
    "The text contains control or unprintable characters (often from copy and paste). Please "
    "remove them or type the text again.",
)
TEXT_MARKS = Message(
    "Nội dung có dấu thanh đứng riêng hoặc chồng nhiều dấu. Xin gõ lại phần đó.",
    "The text has a stray or stacked accent mark. Please type that part again.",
)
_LINE_BREAKS = {"\r\n": "\n", "\r": "\n", "\u2028": "\n", "\u2029": "\n", "\x85": "\n"}
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalise_text(raw: str, *, multiline: bool = False) -> str:
    """Free text or an address: NFC, no control characters, single spaces, trimmed.

    Newlines are kept (at most one blank line in a row) only when ``multiline``; otherwise a
    pasted line break becomes a space. Zero-width characters are dropped silently (nobody can
    see them to remove them); any other control, direction-override, private-use or unassigned
    character is refused.
    """
    if _PLAIN_TEXT.fullmatch(raw):
        # Printable ASCII and precomposed Latin letters only (most answers): nothing below would
        # drop, refuse or compose anything; only the spacing is tidied.
        return _SPACES.sub(" ", raw).strip()
    return _normalise_text(raw, multiline=multiline)


def _normalise_text(raw: str, *, multiline: bool) -> str:
    text = raw
    for old, new in _LINE_BREAKS.items():
        text = text.replace(old, new)
    text = "".join(c for c in text if c not in _ZERO_WIDTH)
    for char in text:
        if char in "\n\t":
            continue
        if unicodedata.category(char) in _REFUSED_CATEGORIES or char in _INVISIBLE_LETTERS:
            raise InvalidValue(TEXT_INVISIBLE)
    text = unicodedata.normalize("NFC", text)
    _check_marks(text)
    if not multiline:
        text = text.replace("\n", " ")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _plain_letters() -> str:
    """The precomposed Latin letters (Vietnamese's among them) that NFC leaves as they are: a
    text made of these and printable ASCII passes every check of this module unchanged."""
    return "".join(
        c
        for c in map(chr, [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)])
        if _is_latin_letter(c) and unicodedata.normalize("NFC", c) == c
    )


PLAIN_LETTERS = _plain_letters()
_PLAIN_TEXT = re.compile(f"[ -~{PLAIN_LETTERS}]*")
_PLAIN_NAME = re.compile(f"[ A-Za-z{PLAIN_LETTERS}]*")


def _check_marks(text: str) -> None:
    run = 0
    previous_category = "Zs"
    for char in text:
        category = unicodedata.category(char)
        if category.startswith("M"):
            run += 1
            base_ok = previous_category[0] in "LMN"
            if not base_ok or run > _MAX_COMBINING_RUN:
                raise InvalidValue(TEXT_MARKS)
        else:
            run = 0
        previous_category = category
