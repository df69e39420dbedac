"""Identity parsing: ID numbers, phones, dates, names, email and free text."""

import re
import unicodedata
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.identity import (
    MOBILE_PREFIXES,
    PROVINCES,
    Cccd,
    Cmnd,
    InvalidValue,
    check_cccd,
    format_date,
    mobile_network,
    normalise_person_name,
    normalise_text,
    parse_cccd,
    parse_date,
    parse_email,
    parse_phone,
    sex_from_value,
)


def refused(func: object, raw: str, **kwargs: object) -> InvalidValue:
    assert callable(func)
    with pytest.raises(InvalidValue) as caught:
        func(raw, **kwargs)
    return caught.value


# --- Personal identity number -------------------------------------------------------------------


def test_cccd_man_born_1985_in_ho_chi_minh_city() -> None:
    cccd = parse_cccd("079085001234")
    assert cccd == Cccd(
        number="079085001234",
        province_code="079",
        province_name="TP. Hồ Chí Minh",
        sex="nam",
        century=1900,
        birth_year_2digits=85,
    )
    assert cccd.birth_year == 1985
    assert cccd.birth_year_matches(1985)
    assert not cccd.birth_year_matches(2085)


def test_cccd_woman_born_1990_in_ha_noi() -> None:
    cccd = parse_cccd("001190012345")
    assert (cccd.province_name, cccd.sex, cccd.birth_year) == ("Hà Nội", "nu", 1990)


@pytest.mark.parametrize(
    ("digit", "sex", "century"),
    [("0", "nam", 1900), ("1", "nu", 1900), ("2", "nam", 2000), ("3", "nu", 2000)],
)
def test_cccd_fourth_digit_gives_sex_and_century(digit: str, sex: str, century: int) -> None:
    cccd = parse_cccd(f"036{digit}07123456")
    assert (cccd.sex, cccd.century, cccd.birth_year) == (sex, century, century + 7)


@pytest.mark.parametrize(
    "raw",
    [
        "079 085 001 234",
        "079.085.001.234",
        "079-085-001234",
        " 079085001234\t",
        "０７９０８５００１２３４",
    ],
)
def test_cccd_separators_and_full_width_digits(raw: str) -> None:
    assert parse_cccd(raw).number == "079085001234"


def test_province_table_has_the_63_codes() -> None:
    assert len(PROVINCES) == 63
    assert all(re.fullmatch(r"0\d\d", code) for code in PROVINCES)
    assert PROVINCES["048"] == "Đà Nẵng" and PROVINCES["096"] == "Cà Mau"


@pytest.mark.parametrize("province", ["000", "099", "003", "097"])
def test_cccd_unknown_province(province: str) -> None:
    error = refused(parse_cccd, f"{province}085001234")
    assert error.reason.vi == (
        f"Ba chữ số đầu ({province}) không phải mã tỉnh, thành phố nào. "
        "Xin kiểm tra lại số định danh."
    )


def test_cccd_wrong_length_says_how_many_digits() -> None:
    error = refused(parse_cccd, "07908500123")
    assert "có 11 chữ số" in error.reason.vi and "has 11" in error.reason.en


def test_cccd_letters_refused() -> None:
    assert "chỉ gồm chữ số" in refused(parse_cccd, "07908500123A").reason.vi


def test_cccd_empty() -> None:
    assert "Xin nhập số định danh" in refused(parse_cccd, "  ").reason.vi


def test_cmnd_only_where_allowed() -> None:
    assert "chứng minh nhân dân cũ" in refused(parse_cccd, "025 123 456").reason.vi
    assert parse_cccd("025 123 456", allow_cmnd=True) == Cmnd("025123456")
    assert isinstance(parse_cccd("079085001234", allow_cmnd=True), Cccd)
    assert "hoặc số chứng minh" in refused(parse_cccd, "1234567", allow_cmnd=True).reason.vi


def test_check_cccd_matching_details() -> None:
    cccd = parse_cccd("079085001234")
    assert check_cccd(cccd, birth_date=date(1985, 3, 12), sex="nam", today=date(2025, 1, 1)) is None
    assert check_cccd(cccd, birth_year=1985) is None
    assert check_cccd(cccd) is None


def test_check_cccd_year_against_date_of_birth() -> None:
    problem = check_cccd(parse_cccd("079085001234"), birth_date=date(1990, 3, 12))
    assert problem is not None
    assert problem.vi == (
        "Số định danh cho biết năm sinh 1985, nhưng ngày sinh đã nhập là 12/03/1990. "
        "Xin kiểm tra lại."
    )
    assert "born in 1985" in problem.en


def test_check_cccd_year_against_year_of_birth() -> None:
    problem = check_cccd(parse_cccd("079085001234"), birth_year=1986)
    assert problem is not None and "năm sinh đã nhập là 1986" in problem.vi


def test_check_cccd_wrong_century_digit() -> None:
    # 2 = man born in the 2000s, but the date of birth says 1985.
    problem = check_cccd(parse_cccd("079285001234"), birth_date=date(1985, 3, 12))
    assert problem is not None
    assert problem.vi == (
        "Chữ số thứ tư của số định danh (2) dành cho người sinh từ năm 2000 đến năm 2099, "
        "nhưng ngày sinh đã nhập là 12/03/1985. Xin kiểm tra lại."
    )


def test_check_cccd_sex() -> None:
    problem = check_cccd(parse_cccd("001190012345"), birth_date=date(1990, 1, 2), sex="nam")
    assert problem is not None
    assert problem.vi == (
        "Số định danh cho biết giới tính nữ, nhưng giới tính đã chọn là nam. Xin kiểm tra lại."
    )
    assert "female" in problem.en and "male." in problem.en


def test_check_cccd_birth_year_not_yet_come() -> None:
    problem = check_cccd(parse_cccd("079230001234"), today=date(2025, 7, 1))
    assert problem is not None and "năm sinh 2030, là năm chưa tới" in problem.vi
    assert check_cccd(parse_cccd("079225001234"), today=date(2025, 7, 1)) is None


@pytest.mark.parametrize(
    ("value", "sex"),
    [("nam", "nam"), ("Nam", "nam"), ("male", "nam"), ("nữ", "nu"), ("nu", "nu"), ("F", "nu")],
)
def test_sex_from_value(value: str, sex: str) -> None:
    assert sex_from_value(value) == sex


def test_sex_from_value_unknown() -> None:
    assert sex_from_value("khác") is None


# --- Mobile phones ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0912 345 678", "+84912345678"),
        ("+84 98 765 4321", "+84987654321"),
        ("0912.345.678", "+84912345678"),
        ("0912-345-678", "+84912345678"),
        ("84912345678", "+84912345678"),
        ("0084 912 345 678", "+84912345678"),
        ("(+84) 912 345 678", "+84912345678"),
        ("+84 0912 345 678", "+84912345678"),
        ("０９１２３４５６７８", "+84912345678"),
    ],
)
def test_phone_valid(raw: str, e164: str) -> None:
    assert parse_phone(raw) == e164


def test_phone_every_listed_prefix_is_accepted() -> None:
    assert len(MOBILE_PREFIXES) == 35
    for prefix, network in MOBILE_PREFIXES.items():
        e164 = parse_phone(f"{prefix}1234567")
        assert e164 == f"+84{prefix[1:]}1234567"
        assert mobile_network(e164) == network


def test_phone_landline() -> None:
    error = refused(parse_phone, "028 3823 4567")
    assert error.reason.vi.startswith("Đây là số máy bàn.")
    assert "máy bàn" in refused(parse_phone, "024 1234 567").reason.vi


def test_phone_unknown_prefix() -> None:
    error = refused(parse_phone, "0123 456 789")
    assert "Đầu số 012 không phải đầu số di động" in error.reason.vi


def test_phone_old_eleven_digits() -> None:
    assert "10 chữ số" in refused(parse_phone, "0168 123 4567").reason.vi


def test_phone_foreign() -> None:
    assert "số di động Việt Nam" in refused(parse_phone, "+1 555 123 4567").reason.vi


def test_phone_wrong_length_and_letters() -> None:
    assert "có 9 chữ số" in refused(parse_phone, "091234567").reason.vi
    assert "chỉ gồm chữ số" in refused(parse_phone, "0912 ABC 678").reason.vi
    assert "Xin nhập số điện thoại" in refused(parse_phone, " ").reason.vi


def test_mobile_network_of_something_else() -> None:
    assert mobile_network("0912345678") is None


# --- Dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["12/03/1990", "12/3/1990", "12-03-1990", "12.03.1990", "1990-03-12", " 12 / 03 / 1990 "]
)
def test_date_formats(raw: str) -> None:
    assert parse_date(raw) == date(1990, 3, 12)


def test_date_leap_day() -> None:
    assert parse_date("29/02/2024") == date(2024, 2, 29)
    error = refused(parse_date, "29/02/2023")
    assert error.reason.vi == "Tháng 2/2023 không có ngày 29. Xin kiểm tra lại."


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("31/04/2020", "không có ngày 31"),
        ("0/04/2020", "không có ngày 0"),
        ("12/13/2020", "Tháng phải từ 1 đến 12"),
        ("12/03/1899", "từ 1900"),
        ("12/03/90", "bốn chữ số"),
        ("12/03-1990", "chưa đúng dạng"),
        ("12031990", "chưa đúng dạng"),
        ("1990/03/12", "chưa đúng dạng"),
        ("١٢/٠٣/١٩٩٠", "chưa đúng dạng"),  # Arabic-Indic digits are not our digits
        ("", "Xin nhập ngày"),
    ],
)
def test_date_refused(raw: str, fragment: str) -> None:
    assert fragment in refused(parse_date, raw).reason.vi


def test_format_date() -> None:
    assert format_date(date(1990, 3, 2)) == "02/03/1990"


# --- Names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Nguyễn Văn An", "Nguyễn Văn An"),
        ("  Trần   Thị \t Bích ", "Trần Thị Bích"),
        ("nguyễn văn an", "Nguyễn Văn An"),
        ("NGUYỄN VĂN AN", "NGUYỄN VĂN AN"),
        ("Nguyễn văn An", "Nguyễn văn An"),
        ("H’Hen Niê", "H'Hen Niê"),
        ("Ksor Y Phơ", "Ksor Y Phơ"),
        ("Lê-Trần Minh", "Lê-Trần Minh"),
        ("Ơ\u0306n", "Ơ\u0306n"),  # Ê Đê letter with no precomposed form
    ],
)
def test_name_accepted(raw: str, name: str) -> None:
    assert normalise_person_name(raw) == name


def test_name_is_composed_to_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Ánh")
    assert decomposed != "Nguyễn Thị Ánh"
    assert normalise_person_name(decomposed) == "Nguyễn Thị Ánh"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("Nguyễn Văn 2", "chữ số"),
        ("Nguyễn @n", "“@”"),
        ("Nguyễn.An", "“.”"),
        ("Nguyễn\u200bAn", "ký tự ẩn"),
        ("Nguyễn\x00An", "ký tự ẩn"),
        ("Ivan\u202e", "ký tự ẩn"),
        ("An\u2028Bình", "ký tự ẩn"),
        ("An\ud800", "ký tự ẩn"),
        ("An\u3164", "ký tự ẩn"),
        ("李小龍", "chữ cái tiếng Việt"),
        ("Иван", "chữ cái tiếng Việt"),
        ("'An", "chỉ đứng giữa hai chữ cái"),
        ("An-", "chỉ đứng giữa hai chữ cái"),
        ("An--Bình", "chỉ đứng giữa hai chữ cái"),
        ("\u0301An", "dấu thanh"),
        ("Ae\u0301\u0301\u0301", "dấu thanh"),
        ("A", "quá ngắn"),
        ("   ", "Xin nhập họ và tên"),
        ("A" * 101, "dài quá 100"),
        ("A" * 10_000, "dài quá 100"),
    ],
)
def test_name_refused(raw: str, fragment: str) -> None:
    assert fragment in refused(normalise_person_name, raw).reason.vi


# --- Email and text -----------------------------------------------------------------------------


def test_email() -> None:
    assert parse_email(" Nguoi.Dan+ho-so@Example.GOV.vn ") == "Nguoi.Dan+ho-so@example.gov.vn"


@pytest.mark.parametrize(
    "raw",
    ["an", "an@", "@x.vn", "an@x", "an@x.", "an..b@x.vn", "an@-x.vn", "an b@x.vn", "an@x.v1"],
)
def test_email_refused(raw: str) -> None:
    assert "chưa đúng dạng" in refused(parse_email, raw).reason.vi


def test_email_too_long() -> None:
    assert "254" in refused(parse_email, "a" * 60 + "@" + "b" * 200 + ".vn").reason.vi


def test_text_single_line() -> None:
    assert normalise_text("  Ấp  Bàu\tTròn,\r\nxã  Nhuận Đức \u200b") == "Ấp Bàu Tròn, xã Nhuận Đức"


def test_text_multiline_keeps_paragraphs() -> None:
    raw = "Dòng một  \r\n\r\n\r\n\r\n  Dòng hai\u2028Dòng ba"
    assert normalise_text(raw, multiline=True) == "Dòng một\n\nDòng hai\nDòng ba"


@pytest.mark.parametrize("raw", ["a\x00b", "a\u202eb", "a\ue000b", "a\ud800b", "a\x1bb"])
def test_text_control_characters_refused(raw: str) -> None:
    assert "ký tự điều khiển" in refused(normalise_text, raw).reason.vi


def test_text_stray_marks_refused() -> None:
    assert "dấu thanh" in refused(normalise_text, "xã \u0301Nhuận").reason.vi
    assert normalise_text(unicodedata.normalize("NFD", "Nhuận Đức")) == "Nhuận Đức"


# --- Properties ---------------------------------------------------------------------------------

DIGITISH = st.text(alphabet="0123456789 +-./()０٣\u00a0", max_size=30)
NAMEISH = st.text(alphabet="aăâbdđeêioôơuưyAĂĐ áàạ'’- \u0301\u0306\u200b1@", max_size=40)
HOSTILE_CHARS = st.characters(categories=["Cs", "Cc", "Cf", "Co", "Mn", "Me", "Zl", "Zp", "Cn"])
ANY_TEXT = st.one_of(
    st.text(),
    st.text(HOSTILE_CHARS),
    DIGITISH,
    NAMEISH,
    st.lists(st.one_of(DIGITISH, NAMEISH, st.text(HOSTILE_CHARS, max_size=3))).map("".join),
)
CONTROL_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"}


@given(ANY_TEXT)
def test_cccd_never_raises_anything_else(raw: str) -> None:
    for allow in (False, True):
        try:
            parsed = parse_cccd(raw, allow_cmnd=allow)
        except InvalidValue as exc:
            assert exc.reason.vi and exc.reason.en
        else:
            assert re.fullmatch(r"[0-9]{12}" if not allow else r"[0-9]{9}|[0-9]{12}", parsed.number)


@given(ANY_TEXT)
def test_phone_never_raises_anything_else(raw: str) -> None:
    try:
        e164 = parse_phone(raw)
    except InvalidValue as exc:
        assert exc.reason.vi and exc.reason.en
    else:
        assert re.fullmatch(r"\+84[0-9]{9}", e164)
        assert "0" + e164[3:5] in MOBILE_PREFIXES


@given(ANY_TEXT)
def test_date_never_raises_anything_else(raw: str) -> None:
    try:
        day = parse_date(raw)
    except InvalidValue as exc:
        assert exc.reason.vi and exc.reason.en
    else:
        assert day.year >= 1900


@given(ANY_TEXT)
def test_name_never_raises_anything_else(raw: str) -> None:
    try:
        name = normalise_person_name(raw)
    except InvalidValue as exc:
        assert exc.reason.vi and exc.reason.en
    else:
        assert unicodedata.is_normalized("NFC", name)
        assert 2 <= len(name) <= 100
        assert not any(unicodedata.category(c) in CONTROL_CATEGORIES for c in name)
        assert not any(c.isdigit() for c in name)
        assert name == name.strip() and "  " not in name
        assert normalise_person_name(name) == name


@given(ANY_TEXT, st.booleans())
def test_text_never_raises_anything_else(raw: str, multiline: bool) -> None:
    try:
        text = normalise_text(raw, multiline=multiline)
    except InvalidValue as exc:
        assert exc.reason.vi and exc.reason.en
    else:
        assert unicodedata.is_normalized("NFC", text)
        assert not any(unicodedata.category(c) in CONTROL_CATEGORIES for c in text if c != "\n")
        assert multiline or "\n" not in text
        assert normalise_text(text, multiline=multiline) == text


@given(ANY_TEXT)
def test_email_never_raises_anything_else(raw: str) -> None:
    try:
        email = parse_email(raw)
    except InvalidValue as exc:
        assert exc.reason.vi and exc.reason.en
    else:
        assert email.count("@") == 1 and email.isascii() and len(email) <= 254


SEPARATOR = st.sampled_from(["", "", "", " ", ".", "-", "\u00a0"])


@st.composite
def cccd_numbers(draw: st.DrawFn) -> str:
    province = draw(st.sampled_from(sorted(PROVINCES)))
    digit = draw(st.sampled_from("0123"))
    rest = draw(st.text(alphabet="0123456789", min_size=8, max_size=8))
    return province + digit + rest


def scatter(draw: st.DrawFn, digits: str) -> str:
    return "".join(ch + draw(SEPARATOR) for ch in digits)


@given(st.data(), cccd_numbers())
def test_cccd_round_trip_with_separators(data: st.DataObject, number: str) -> None:
    typed = data.draw(SEPARATOR) + scatter(data.draw, number)
    parsed = parse_cccd(typed)
    assert parsed.number == number
    assert parsed.province_name == PROVINCES[number[:3]]
    assert parsed.birth_year == 1900 + 100 * (int(number[3]) // 2) + int(number[4:6])


@given(
    st.data(),
    st.sampled_from(sorted(MOBILE_PREFIXES)),
    st.text(alphabet="0123456789", min_size=7, max_size=7),
    st.sampled_from(["0", "+84", "84", "0084", "+84 0"]),
)
def test_phone_round_trip_with_separators(
    data: st.DataObject, prefix: str, subscriber: str, lead: str
) -> None:
    national = prefix + subscriber
    body = national if lead == "0" else national[1:]
    typed = ("" if lead == "0" else lead) + data.draw(SEPARATOR) + scatter(data.draw, body)
    assert parse_phone(typed) == "+84" + national[1:]


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)), st.data())
def test_date_round_trip(day: date, data: st.DataObject) -> None:
    sep = data.draw(st.sampled_from("/-."))
    pad = data.draw(st.booleans())
    dd, mm = (f"{day.day:02d}", f"{day.month:02d}") if pad else (str(day.day), str(day.month))
    assert parse_date(f"{dd}{sep}{mm}{sep}{day.year}") == day
    assert parse_date(day.isoformat()) == day
    assert parse_date(format_date(day)) == day


# --- The fast path for plain text and names ------------------------------------------------------

PLAIN_ASCII = "".join(map(chr, range(0x20, 0x7F)))


def test_plain_letters_are_vietnamese_and_never_compose() -> None:
    """The fast path skips NFC: no two of its characters may compose or reorder."""
    from core.identity import PLAIN_LETTERS

    assert set("ăâđêôơưĂÂĐÊÔƠƯàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ") <= set(
        PLAIN_LETTERS
    )
    assert "×" not in PLAIN_LETTERS and "÷" not in PLAIN_LETTERS
    chars = PLAIN_ASCII + PLAIN_LETTERS
    for a in chars:
        for b in chars:
            assert unicodedata.is_normalized("NFC", a + b), (a, b)


def _outcome(func: object, *args: object, **kwargs: object) -> object:
    assert callable(func)
    try:
        return func(*args, **kwargs)
    except InvalidValue as exc:
        return ("refused", exc.reason)


def _plain_texts(extra: str = "") -> st.SearchStrategy[str]:
    from core.identity import PLAIN_LETTERS

    return st.text(alphabet=st.sampled_from(PLAIN_ASCII + PLAIN_LETTERS + extra), max_size=40)


@given(_plain_texts(extra="\t\n\r\u00a0\u0301\u200b\u202e"), st.booleans())
def test_text_fast_path_gives_what_the_full_checks_give(raw: str, multiline: bool) -> None:
    from core.identity import _normalise_text

    assert _outcome(normalise_text, raw, multiline=multiline) == _outcome(
        _normalise_text, raw, multiline=multiline
    )


@given(st.data())
def test_name_fast_path_gives_what_the_full_checks_give(data: st.DataObject) -> None:
    """What the fast path takes (letters and spaces), the full checks pass as the same words."""
    from core.identity import _PLAIN_NAME, PLAIN_LETTERS, _name_words

    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" + PLAIN_LETTERS
    raw = data.draw(st.text(alphabet=st.sampled_from(letters + "  "), max_size=40))
    assert _PLAIN_NAME.fullmatch(raw)
    assert _name_words(raw) == raw.split()
