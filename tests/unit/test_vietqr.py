"""VietQR payloads: the public test vectors, validation, parsing, CRC, amounts in words."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.vietqr import (
    BANKS,
    CollectingAccount,
    VietQRError,
    amount_in_words_vi,
    build_payload,
    check_collecting_account,
    crc16_ccitt_false,
    parse_payload,
    strip_diacritics,
)

# domain.md §5, CRC checked independently there.
VECTOR_DYNAMIC = (
    "00020101021238570010A00000072701270006970415011300110019324180208QRIBFTTA"
    "530370454061200005802VN62170813ung ho lu lut6304C15C"
)
VECTOR_STATIC = (
    "00020101021138540010A00000072701240006970423011000999999990208QRIBFTTA53037045802VN6304CBB4"
)

VIETNAMESE_LETTERS = (
    "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵ"
)
ALPHABET = VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper() + "0123456789 -.,/:"


def tlv(field_id: str, value: str) -> str:
    return f"{field_id}{len(value):02d}{value}"


def resign(body_without_crc: str) -> str:
    """A payload with a correct CRC, to reach the structural checks behind it."""
    body = body_without_crc + "6304"
    return body + f"{crc16_ccitt_false(body.encode()):04X}"


# --- CRC and the public vectors ------------------------------------------------------------------


def test_crc_check_value_of_the_catalogue() -> None:
    # The "check" value of CRC-16/CCITT-FALSE in the CRC catalogue (input "123456789").
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc16_ccitt_false(b"") == 0xFFFF


def test_dynamic_vector_byte_for_byte() -> None:
    payload = build_payload(
        bin="970415", account="0011001932418", amount=120000, purpose="ủng hộ lũ lụt"
    )
    assert payload == VECTOR_DYNAMIC


def test_static_vector_byte_for_byte() -> None:
    payload = build_payload(bin="970423", account="0099999999", amount=None, purpose=None)
    assert payload == VECTOR_STATIC


def test_crc_is_zero_padded_upper_case_hex() -> None:
    # Search a payload whose CRC has a leading zero nibble: it must still be 4 digits.
    for account in range(1000, 3000):
        payload = build_payload(bin="970436", account=str(account), amount=None, purpose=None)
        if payload[-4] == "0":
            assert len(payload[-4:]) == 4
            assert parse_payload(payload).crc == payload[-4:]
            break
    else:
        pytest.fail("no CRC with a leading zero found in 2000 payloads")


def test_parse_the_public_vectors() -> None:
    dynamic = parse_payload(VECTOR_DYNAMIC)
    assert (dynamic.bin, dynamic.account, dynamic.amount) == ("970415", "0011001932418", 120000)
    assert dynamic.purpose == "ung ho lu lut"
    assert dynamic.dynamic is True
    assert dynamic.bank_name == "VietinBank"
    assert dynamic.service == "QRIBFTTA"
    assert dynamic["38"] == {
        "00": "A000000727",
        "01": {"00": "970415", "01": "0011001932418"},
        "02": "QRIBFTTA",
    }
    static = parse_payload(VECTOR_STATIC)
    assert (static.bin, static.account, static.amount, static.purpose) == (
        "970423",
        "0099999999",
        None,
        None,
    )
    assert static.dynamic is False
    assert static.bank_name is None  # not in the table of domain.md §5
    assert list(static) == ["00", "01", "38", "53", "58", "63"]


def test_bank_table_from_the_domain_notes() -> None:
    assert BANKS == {
        "970436": "Vietcombank",
        "970415": "VietinBank",
        "970418": "BIDV",
        "970405": "Agribank",
        "970422": "MB",
        "970407": "Techcombank",
    }


def test_name_city_and_card_service() -> None:
    payload = build_payload(
        bin="970405",
        account="1700201234567",
        amount=8000,
        purpose="Lệ phí 27517-260216-0001",
        service="QRIBFTTC",
        name="UBND Xã Nhuận Đức",
        city="Hồ Chí Minh",
    )
    parsed = parse_payload(payload)
    assert parsed.name == "UBND Xa Nhuan Duc"
    assert parsed.city == "Ho Chi Minh"
    assert parsed.service == "QRIBFTTC"
    assert parsed.purpose == "Le phi 27517-260216-0001"
    assert parsed.bank_name == "Agribank"
    assert list(parsed) == ["00", "01", "38", "53", "54", "58", "59", "60", "62", "63"]


def test_purpose_spaces_collapsed_and_empty_purpose_left_out() -> None:
    spaced = parse_payload(build_payload(bin="970436", account="1", amount=1, purpose=" a \t\n b "))
    assert spaced.purpose == "a b"
    empty = build_payload(bin="970436", account="1", amount=1, purpose="   ")
    assert "62" not in parse_payload(empty)


# --- Building refuses what banks would refuse -----------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"bin": "97041"}, "BIN must be 6 digits"),
        ({"bin": "97041a"}, "BIN must be 6 digits"),
        ({"bin": "９７０４１５"}, "BIN must be 6 digits"),  # full-width digits
        ({"account": ""}, "1 to 19 letters or digits"),
        ({"account": "1" * 20}, "1 to 19 letters or digits"),
        ({"account": "0011-0019"}, "1 to 19 letters or digits"),
        ({"account": "١٢٣"}, "1 to 19 letters or digits"),  # Arabic-Indic digits
        ({"amount": 0}, "positive whole number"),
        ({"amount": -5}, "positive whole number"),
        ({"amount": True}, "positive whole number"),
        ({"amount": 10**13}, "more than 13 digits"),
        ({"purpose": "Nộp lệ phí đăng ký khai sinh"}, "purpose is 28 characters"),
        ({"purpose": "phí 登记"}, "purpose contains characters"),
        ({"purpose": "zero\u200bwidth"}, "purpose contains characters"),
        ({"name": "Ủy ban nhân dân xã Nhuận Đức"}, "name is 28 characters"),
        ({"city": "Thành phố Hồ Chí Minh"}, "city is 21 characters"),
        ({"service": "QRPUSH"}, "service must be"),
    ],
)
def test_build_refuses_invalid_values(changes: dict[str, object], reason: str) -> None:
    values: dict[str, object] = {
        "bin": "970415",
        "account": "0011001932418",
        "amount": 120000,
        "purpose": "ung ho",
    }
    values.update(changes)
    with pytest.raises(VietQRError, match=reason):
        build_payload(**values)  # type: ignore[arg-type]  # invalid values on purpose


def test_largest_amount_has_13_digits() -> None:
    payload = build_payload(bin="970415", account="1", amount=10**13 - 1, purpose=None)
    assert parse_payload(payload).amount == 9_999_999_999_999


# --- Parsing explains what is wrong --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "does not end with a CRC field"),
        (VECTOR_STATIC[:-8], "does not end with a CRC field"),
        (VECTOR_STATIC[:-4] + "cbb4", "not 4 upper-case hexadecimal digits"),
        (
            VECTOR_STATIC[:-4] + "CBB5",
            "CRC mismatch: the payload says CBB5, its content gives CBB4",
        ),
        (VECTOR_STATIC.replace("0099999999", "0099999998"), "CRC mismatch"),
        ("Đ" + VECTOR_STATIC[1:], "not printable ASCII"),
        (resign("000201010211"), "field 38 is missing"),
        (resign("000201010213"), "point of initiation must be 11"),
        (resign("000202010211"), "must start with the format indicator"),
        (resign("0002010102113803001"), "field 38: truncated field header"),
        (resign("0002010102115303704530370"), "field 53 appears twice"),
        (resign("0002010102115905"), "payload: truncated field header at position 21"),
        (resign("0002010102115399"), "field 53 announces 99 characters"),
        (resign("000201011x11"), "length '1x' of field 01 is not 2 digits"),
        (resign("000201aa0211"), "field id 'aa' at position 6 is not 2 digits"),
        (
            VECTOR_DYNAMIC.replace("5802VN62170813ung ho lu lut6304C15C", "5802VN"),
            "CRC field",
        ),
    ],
)
def test_parse_reasons(text: str, reason: str) -> None:
    with pytest.raises(VietQRError, match=reason):
        parse_payload(text)


def _vector_body(old: str, new: str, payload: str = VECTOR_DYNAMIC) -> str:
    assert old in payload
    return resign(payload[:-8].replace(old, new))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (_vector_body("5303704", "5303840"), "currency must be 704"),
        (_vector_body("5802VN", "5802US"), "country must be VN"),
        (_vector_body("0010A000000727", "0010A000000728"), "not a NAPAS account"),
        (_vector_body("5406120000", "54061200.5"), "amount must be a positive whole number"),
        (_vector_body("5406120000", "5406000000"), "amount must be a positive whole number"),
        (_vector_body("QRIBFTTA", "QRIBFTTX"), "unknown NAPAS service"),
        (_vector_body("00069704150113", "00069704X50113"), "bank BIN must be 6 digits"),
        (
            resign(
                tlv("00", "01")
                + tlv("01", "11")
                + tlv(
                    "38",
                    tlv("00", "A000000727") + tlv("01", tlv("00", "970415") + tlv("01", "00-11")),
                )
                + tlv("53", "704")
                + tlv("58", "VN"),
            ),
            "account number must be 1 to 19 letters or digits, got '00-11'",
        ),
        (
            resign(tlv("00", "01") + tlv("01", "11") + tlv("38", tlv("00", "A000000727"))),
            "field 38: field 01 is missing",
        ),
        (_vector_body("5303704", ""), "field 53 is missing"),
    ],
)
def test_parse_checks_the_vietqr_fields(text: str, reason: str) -> None:
    with pytest.raises(VietQRError, match=reason):
        parse_payload(text)


def test_crc_must_be_last() -> None:
    body = VECTOR_STATIC[:-8] + "6304"
    crc = f"{crc16_ccitt_false(body.encode()):04X}"
    # A CRC field followed by another field: the trailing 8 characters are not "6304xxxx".
    with pytest.raises(VietQRError, match="CRC field"):
        parse_payload(body + crc + "0100")


# --- Properties ----------------------------------------------------------------------------------

bins = st.from_regex(r"[0-9]{6}", fullmatch=True)
accounts = st.from_regex(r"[0-9A-Za-z]{1,19}", fullmatch=True)
amounts = st.none() | st.integers(min_value=1, max_value=10**13 - 1)
purposes = st.none() | st.text(alphabet=ALPHABET, max_size=25)


@settings(max_examples=300)
@given(bin_=bins, account=accounts, amount=amounts, purpose=purposes)
def test_build_then_parse_round_trips(
    bin_: str, account: str, amount: int | None, purpose: str | None
) -> None:
    payload = build_payload(bin=bin_, account=account, amount=amount, purpose=purpose)
    parsed = parse_payload(payload)
    assert (parsed.bin, parsed.account, parsed.amount) == (bin_, account, amount)
    assert parsed.dynamic is (amount is not None)
    expected = " ".join(strip_diacritics(purpose).split()) if purpose else ""
    assert parsed.purpose == (expected or None)
    assert expected.isascii()
    assert int(parsed.crc, 16) == crc16_ccitt_false(payload[:-4].encode())


@settings(max_examples=300)
@given(
    bin_=bins,
    account=accounts,
    amount=amounts,
    purpose=purposes,
    data=st.data(),
)
def test_any_changed_character_is_refused(
    bin_: str, account: str, amount: int | None, purpose: str | None, data: st.DataObject
) -> None:
    payload = build_payload(bin=bin_, account=account, amount=amount, purpose=purpose)
    index = data.draw(st.integers(min_value=0, max_value=len(payload) - 1), label="index")
    char = data.draw(st.characters().filter(lambda c: c != payload[index]), label="char")
    damaged = payload[:index] + char + payload[index + 1 :]
    with pytest.raises(VietQRError):
        parse_payload(damaged)


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from("0123456789ABCDEF6304VN "), max_size=120) | st.text())
def test_parse_never_raises_anything_but_vietqr_error(text: str) -> None:
    try:
        parse_payload(text)
    except VietQRError:
        pass


@given(st.text(alphabet=ALPHABET))
def test_strip_diacritics_makes_vietnamese_ascii(text: str) -> None:
    plain = strip_diacritics(text)
    assert plain.isascii()
    assert len(plain) == len(text)


def test_strip_diacritics_examples() -> None:
    assert strip_diacritics("Đăng ký khai sinh") == "Dang ky khai sinh"
    assert strip_diacritics("ĐƯỜNG Ỷ LAN, phường Đống Đa") == "DUONG Y LAN, phuong Dong Da"
    # Decomposed input (as some phones type it) gives the same result.
    assert strip_diacritics("Nguye\u0302\u0303n") == "Nguyen"
    assert strip_diacritics("café №5") == "cafe №5"  # non-Vietnamese characters are left alone


# --- Amount in words -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        (0, "không đồng"),
        (5, "năm đồng"),
        (10, "mười đồng"),
        (11, "mười một đồng"),
        (14, "mười bốn đồng"),
        (15, "mười lăm đồng"),
        (21, "hai mươi mốt đồng"),
        (25, "hai mươi lăm đồng"),
        (105, "một trăm linh năm đồng"),
        (101, "một trăm linh một đồng"),
        (110, "một trăm mười đồng"),
        (2_000, "hai nghìn đồng"),
        (8_000, "tám nghìn đồng"),
        (10_000, "mười nghìn đồng"),
        (15_000, "mười lăm nghìn đồng"),
        (120_000, "một trăm hai mươi nghìn đồng"),
        (200_000, "hai trăm nghìn đồng"),
        (1_050, "một nghìn không trăm năm mươi đồng"),
        (1_000_000, "một triệu đồng"),
        (1_000_005, "một triệu không trăm linh năm đồng"),
        (1_005_000, "một triệu không trăm linh năm nghìn đồng"),
        (1_000_000_000, "một tỷ đồng"),
        (2_500_000_000_000, "hai nghìn năm trăm tỷ đồng"),
        (
            1_234_567_891,
            "một tỷ hai trăm ba mươi bốn triệu năm trăm sáu mươi bảy nghìn tám trăm chín mươi mốt"
            " đồng",
        ),
    ],
)
def test_amount_in_words(amount: int, words: str) -> None:
    assert amount_in_words_vi(amount) == words


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_amount_in_words_refuses_non_amounts(bad: object) -> None:
    with pytest.raises(ValueError, match="whole number"):
        amount_in_words_vi(bad)  # type: ignore[arg-type]  # invalid on purpose


@given(st.integers(min_value=1, max_value=10**15))
def test_amount_in_words_is_well_formed(amount: int) -> None:
    words = amount_in_words_vi(amount).split()
    assert words[-1] == "đồng"
    assert "" not in words
    # "mốt" only after a ten of twenty or more, "lăm" only after a ten.
    for before, word in zip(words, words[1:], strict=False):
        if word == "mốt":
            assert before == "mươi"
        if word == "lăm":
            assert before in ("mươi", "mười")


# --- collecting account ---------------------------------------------------------------------


def test_collecting_account_is_read_as_the_bank_prints_it() -> None:
    account, errors = check_collecting_account("970405", " 1234 5678.9012-3 ", "UBND xã Nhuận Đức")
    assert errors == {}
    assert account == CollectingAccount("970405", "1234567890123", "UBND XA NHUAN DUC")
    assert account.bank_name == "Agribank"


@pytest.mark.parametrize(
    ("bin_", "number", "name", "fields"),
    [
        ("", "1234567890", "UBND XA A", {"bin"}),
        ("999999", "1234567890", "UBND XA A", {"bin"}),
        ("970405", "", "UBND XA A", {"account"}),
        ("970405", "12345", "UBND XA A", {"account"}),
        ("970405", "1" * 20, "UBND XA A", {"account"}),
        ("970405", "12345678AB", "UBND XA A", {"account"}),
        ("970405", "1234567890", "  ", {"name"}),
        ("970405", "1234567890", "UY BAN NHAN DAN XA NHUAN DUC", {"name"}),
        ("970405", "1234567890", "UBND XA 中", {"name"}),
        ("", "", "", {"bin", "account", "name"}),
    ],
)
def test_collecting_account_errors_name_their_field(
    bin_: str, number: str, name: str, fields: set[str]
) -> None:
    account, errors = check_collecting_account(bin_, number, name)
    assert account is None
    assert set(errors) == fields
    assert all(m.vi and m.en for m in errors.values())


def test_a_checked_account_always_builds_a_payload() -> None:
    account, _ = check_collecting_account("970436", "0071000123456", "UBND PHUONG BEN THANH")
    assert account is not None
    parsed = parse_payload(
        build_payload(bin=account.bin, account=account.account, amount=16_000, purpose="X")
    )
    assert (parsed.bin, parsed.account, parsed.amount) == ("970436", "0071000123456", 16_000)
