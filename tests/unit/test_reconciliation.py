"""Bank statements read liberally, and credit lines matched to dossiers by code and amount."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.reconciliation import (
    Due,
    Outcome,
    StatementError,
    codes_in,
    fingerprint,
    parse_amount,
    parse_date,
    read_statement,
    reconcile,
    statement_codes,
    tally,
)

# A Vietcombank-style export: UTF-8 with BOM, commas, account details above the table, quoted
# amounts with thousands commas, separate debit/credit columns, a balance column and a total row.
VCB = """\ufeffNGÂN HÀNG TMCP NGOẠI THƯƠNG VIỆT NAM
SAO KÊ TÀI KHOẢN
Số tài khoản:,1234567890123
Tên tài khoản:,UBND XA NHUAN DUC
Từ ngày:,01/12/2026,Đến ngày:,05/12/2026

STT,Ngày giao dịch,Số tham chiếu,Số tiền ghi nợ,Số tiền ghi có,Số dư,Mô tả
1,01/12/2026 09:12:44,FT26335001,,"16,000","1,016,000",MBVCB.2261.NGUYEN VAN A.27517-261201-0001
2,01/12/2026 10:01:02,FT26335002,,"8,000","1,024,000",27517 261201 0002 LE PHI
3,02/12/2026 08:30:00,FT26336003,,"20,000","1,044,000",TRAN THI B CK 275172612010003 LEPHI
4,02/12/2026 11:45:10,FT26336004,,"50,000","1,094,000",ung ho quy khuyen hoc
5,03/12/2026 14:00:00,FT26337005,,"16,000","1,110,000",27517-261203-0099 LE PHI
6,01/12/2026 10:01:02,FT26335002,,"8,000","1,024,000",27517 261201 0002 LE PHI
7,04/12/2026 09:00:00,FT26338007,"30,000",,"1,080,000",PHI QUAN LY TAI KHOAN
8,04/12/2026 15:20:00,FT26338008,,"16,000","1,096,000",27517-261201-0001 LE PHI
9,05/12/2026 08:00:00,FT26339009,,"16,000","1,112,000",27517-261204-0005 LE PHI
,,,,,,
,Tổng cộng,,"30,000","150,000",,
,Số dư cuối kỳ,,,,"1,112,000",
"""

DUES = {
    "27517-261201-0001": Due("27517-261201-0001", 16_000, paid=False),
    "27517-261201-0002": Due("27517-261201-0002", 16_000, paid=False),  # 8,000 sent: underpaid
    "27517-261201-0003": Due("27517-261201-0003", 16_000, paid=False),  # 20,000 sent: overpaid
    "27517-261204-0005": Due("27517-261204-0005", 16_000, paid=True),  # paid at the desk
}


def _outcomes(data: bytes, dues: dict[str, Due] | None = None, **kw: object) -> list[tuple]:
    statement = read_statement(data)
    return [
        (r.number, r.outcome, r.code, r.amount)
        for r in reconcile(statement, DUES if dues is None else dues, **kw)  # type: ignore[arg-type]
    ]


def test_a_statement_is_reconciled_line_by_line() -> None:
    statement = read_statement(VCB.encode("utf-8"))
    assert statement.encoding == "utf-8-sig" and statement.delimiter == ","
    assert statement.columns == {
        "date": "Ngày giao dịch",
        "reference": "Số tham chiếu",
        "debit": "Số tiền ghi nợ",
        "credit": "Số tiền ghi có",
        "description": "Mô tả",
    }
    assert statement.unreadable == ()
    results = reconcile(statement, DUES)
    assert [(r.number, r.outcome, r.code, r.amount, r.owed) for r in results] == [
        (8, Outcome.MATCHED, "27517-261201-0001", 16_000, 16_000),
        (9, Outcome.UNDERPAID, "27517-261201-0002", 8_000, 16_000),
        (10, Outcome.OVERPAID, "27517-261201-0003", 20_000, 16_000),
        (11, Outcome.UNKNOWN_CODE, None, 50_000, None),
        (12, Outcome.UNKNOWN_CODE, None, 16_000, None),
        (13, Outcome.DUPLICATE, None, 8_000, None),
        (14, Outcome.NOT_CREDIT, None, -30_000, None),
        (15, Outcome.ALREADY_PAID, "27517-261201-0001", 16_000, 0),
        (16, Outcome.ALREADY_PAID, "27517-261204-0005", 16_000, 0),
    ]
    assert results[0].booked_on == date(2026, 12, 1)
    assert results[0].reference == "FT26335001"
    reasons = {r.number: r.reason for r in results}
    assert "thiếu 8.000 đ" in reasons[9].vi and "8.000 đ short" in reasons[9].en
    assert "thừa 4.000 đ" in reasons[10].vi and "hoàn" in reasons[10].vi
    assert "không có mã hồ sơ" in reasons[11].vi and "no dossier code" in reasons[11].en
    assert "27517-261203-0099" in reasons[12].vi and "mistyped" in reasons[12].en
    assert "dòng 9" in reasons[13].vi and "FT26335002" in reasons[13].en
    assert "dòng 8" in reasons[15].vi and "line 8" in reasons[15].en
    assert "trước đó" in reasons[16].vi
    counts = tally(results)
    assert counts[Outcome.MATCHED] == 1 and counts[Outcome.DUPLICATE] == 1
    assert sum(counts.values()) == 9


def test_reasons_never_repeat_the_payers_note() -> None:
    # The note can hold the payer's name; a reason is shown and stored in clear, so it must not.
    for r in reconcile(read_statement(VCB.encode()), DUES):
        assert "NGUYEN" not in r.reason.vi + r.reason.en
        assert "TRAN THI" not in r.reason.vi + r.reason.en


def test_uploading_again_changes_nothing() -> None:
    statement = read_statement(VCB.encode())
    first = reconcile(statement, DUES)
    recorded = {r.reference for r in first if r.outcome.recorded}
    again = reconcile(statement, DUES, known_references=recorded)
    assert {r.outcome for r in again} == {Outcome.DUPLICATE, Outcome.NOT_CREDIT}
    assert "sao kê tải lên trước" in again[0].reason.vi


def test_codes_written_the_way_banks_mangle_them() -> None:
    note = (
        "CK 27517-261122-0001 / 27517 261122 0002 / 275172611220003 / 27517.261122.0004 "
        "27517_261122_0005 27517--261122--0006"
    )
    assert codes_in(note) == [f"27517-261122-000{i}" for i in range(1, 7)]
    assert codes_in("27517-261122-0001 LE PHI 275172611220001") == ["27517-261122-0001"]


@pytest.mark.parametrize(
    "note",
    [
        "TK 9704051234567890123456 LE PHI",  # a long account number is not a code
        "1275172611220001",  # one digit too many in front
        "2751726112200012",  # one digit too many behind
        "27517-261341-0001",  # month 13 is no day
        "27517 2611 22 0001",  # split in the wrong places
    ],
)
def test_digits_that_are_not_a_code(note: str) -> None:
    assert codes_in(note) == []


@given(
    st.sampled_from(["-", " ", "", ".", "_", " - "]),
    st.integers(0, 99_999),
    st.dates(date(2000, 1, 1), date(2099, 12, 31)),
    st.integers(1, 9_999),
    st.text(alphabet="ABCDEFGHIJ KLMNOP.:/", max_size=15),
    st.booleans(),
)
def test_any_written_form_of_a_code_is_found(
    sep: str, commune: int, day: date, seq: int, around: str, lower: bool
) -> None:
    code = f"{commune:05d}-{day:%y%m%d}-{seq:04d}"
    written = f"{commune:05d}{sep}{day:%y%m%d}{sep}{seq:04d}"
    note = f"{around} {written} LE PHI"
    assert codes_in(note.lower() if lower else note) == [code]


def test_one_note_naming_two_dossiers_is_left_to_a_person() -> None:
    data = (
        "Ngày,Số tiền,Nội dung,Mã GD\n01/12/2026,32000,27517-261201-0001 va 27517-261201-0002,A1\n"
    ).encode()
    results = reconcile(read_statement(data), DUES)
    assert [r.outcome for r in results] == [Outcome.AMBIGUOUS]
    assert "27517-261201-0001, 27517-261201-0002" in results[0].reason.vi


def test_partial_transfers_add_up_to_a_match() -> None:
    data = (
        "Ngày,Số tiền,Nội dung,Mã GD\n"
        "01/12/2026,5000,27517-261201-0002,A1\n"
        "02/12/2026,3000,27517-261201-0002,A2\n"
    ).encode()
    dues = {"27517-261201-0002": Due("27517-261201-0002", 16_000, paid=False, received=8_000)}
    results = reconcile(read_statement(data), dues)
    assert [(r.outcome, r.owed) for r in results] == [
        (Outcome.UNDERPAID, 8_000),
        (Outcome.MATCHED, 3_000),
    ]
    assert "13.000 đ" in results[1].reason.vi  # 8,000 earlier + 5,000 on line 2


def test_a_transfer_for_a_dossier_with_no_fee_is_overpaid() -> None:
    data = "Ngày,Số tiền,Nội dung,Mã GD\n01/12/2026,8000,27517-261201-0007,A1\n".encode()
    dues = {"27517-261201-0007": Due("27517-261201-0007", 0, paid=False)}
    [result] = reconcile(read_statement(data), dues)
    assert result.outcome == Outcome.OVERPAID
    assert "không phải nộp lệ phí" in result.reason.vi


TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"  # grave, acute, tilde, hook above, dot below


def _cp1258(text: str) -> bytes:
    """Windows-1258 as Vietnamese Windows writes it: letters such as "ô", "ư", "ă" are single
    bytes, and the five tone marks follow them as combining characters ("ộ" = "ô" + dot below)."""
    out = []
    for ch in unicodedata.normalize("NFD", text):
        if ch in TONE_MARKS or not unicodedata.combining(ch) or not out:
            out.append(ch)
        else:
            # a vowel mark (circumflex, breve, horn): join it to its letter, before any tone mark
            tones = ""
            while out[-1] in TONE_MARKS:
                tones = out.pop() + tones
            out.append(unicodedata.normalize("NFC", out.pop() + ch) + tones)
    return "".join(out).encode("cp1258")


AGRIBANK = (
    "Ngày GD;Mã GD;Số tiền;Loại;Nội dung\n"
    "01/12/2026;AGR001;16.000;C;Nguyễn Văn Ánh nộp lệ phí 27517-261201-0001\n"
    "02/12/2026;AGR002;8.000 VND;C;27517 261201 0002\n"
    "02/12/2026;AGR003;5.000;D;Phí SMS Banking\n"
    "Tổng cộng;;29.000;;\n"
)


def test_windows_1258_semicolons_and_a_credit_debit_column() -> None:
    statement = read_statement(_cp1258(AGRIBANK))
    assert statement.encoding == "cp1258" and statement.delimiter == ";"
    assert statement.lines[0].description == "Nguyễn Văn Ánh nộp lệ phí 27517-261201-0001"
    assert [(r.outcome, r.amount) for r in reconcile(statement, DUES)] == [
        (Outcome.MATCHED, 16_000),
        (Outcome.UNDERPAID, 8_000),
        (Outcome.NOT_CREDIT, -5_000),
    ]


def test_utf8_without_bom_gives_the_same_lines_as_windows_1258() -> None:
    plain = read_statement(AGRIBANK.encode("utf-8"))
    assert plain.encoding == "utf-8"
    assert plain.lines == read_statement(_cp1258(AGRIBANK)).lines


def test_decomposed_utf8_headers_are_recognised() -> None:
    nfd = unicodedata.normalize("NFD", AGRIBANK).encode("utf-8")
    assert len(read_statement(nfd).lines) == 3


def test_english_headers_tabs_and_utf16() -> None:
    data = (
        "Account\t0071000123456\n"
        "Transaction Date\tReference No\tDebit\tCredit\tBalance\tTransaction Details\n"
        "2026-12-01\tFT1\t\t16,000.00\t16,000.00\tIBFT 27517 261201 0001 le phi\n"
        "2026-12-02\tFT2\t1,000.00\t\t15,000.00\tSMS fee\n"
    ).encode("utf-16")
    statement = read_statement(data)
    assert statement.encoding == "utf-16" and statement.delimiter == "\t"
    results = reconcile(statement, DUES)
    assert [(r.outcome, r.amount, r.reference) for r in results] == [
        (Outcome.MATCHED, 16_000, "FT1"),
        (Outcome.NOT_CREDIT, -1_000, "FT2"),
    ]


def test_windows_1252_fallback_keeps_english_exports_readable() -> None:
    # 0x8A (Š) exists in Windows-1252 but not in Windows-1258 (nor is it UTF-8).
    data = "Date;Amount;Description;Reference\n01/12/2026;16000;Š 275172612010001;R1\n"
    statement = read_statement(data.encode("cp1252"))
    assert statement.encoding == "cp1252"
    assert reconcile(statement, DUES)[0].outcome == Outcome.MATCHED


def test_unreadable_lines_are_reported_not_guessed() -> None:
    data = (
        "Ngày,Số tiền,Nội dung,Mã GD\n"
        "01/12/2026,16.000.0,27517-261201-0001,A1\n"
        "32/13/2026,16000,27517-261201-0001,A2\n"
        "02/12/2026,16000,27517-261201-0001,A3\n"
    ).encode()
    results = reconcile(read_statement(data), DUES)
    assert [(r.number, r.outcome) for r in results] == [
        (2, Outcome.UNREADABLE),
        (3, Outcome.UNREADABLE),
        (4, Outcome.MATCHED),
    ]
    assert "16.000.0" in results[0].reason.vi and "32/13/2026" in results[1].reason.en


def test_missing_references_are_replaced_by_a_fingerprint() -> None:
    data = (
        "Ngày,Số tiền,Nội dung\n"
        "01/12/2026,8000,27517-261201-0002\n"
        "01/12/2026,8000,27517-261201-0002\n"
        "02/12/2026,8000,27517-261201-0002\n"
    ).encode()
    statement = read_statement(data)
    assert statement.lines[0].reference == fingerprint(date(2026, 12, 1), 8000, "27517-261201-0002")
    assert not statement.lines[0].reference_given
    results = reconcile(statement, DUES)
    assert [r.outcome for r in results] == [
        Outcome.UNDERPAID,
        Outcome.DUPLICATE,
        Outcome.MATCHED,
    ]
    assert "cùng ngày, số tiền và nội dung" in results[1].reason.vi


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "trống"),
        (b"   \n", "trống"),
        (b"PK\x03\x04rest-of-a-zip", "Excel"),
        (b"%PDF-1.7", "PDF"),
        ("Họ tên,Địa chỉ\nA,B\n".encode(), "tiêu đề"),
    ],
)
def test_files_that_are_not_statements_say_what_to_do(data: bytes, expected: str) -> None:
    with pytest.raises(StatementError) as info:
        read_statement(data)
    assert expected in info.value.message.vi


def test_statement_codes_lists_only_credit_lines() -> None:
    assert statement_codes(read_statement(VCB.encode())) == {
        "27517-261201-0001",
        "27517-261201-0002",
        "27517-261201-0003",
        "27517-261203-0099",
        "27517-261204-0005",
    }


@pytest.mark.parametrize(
    ("cell", "amount"),
    [
        ("120.000", 120_000),
        ("120,000", 120_000),
        ("120000 VND", 120_000),
        ("120.000 đ", 120_000),
        ("120.000 VNĐ", 120_000),
        ("1.200.000,00", 1_200_000),
        ("1,200,000.00", 1_200_000),
        ("120000.00", 120_000),
        ("+16.000", 16_000),
        ("-16.000", -16_000),
        ("(16.000)", -16_000),
        ("16.000-", -16_000),
        ("0", 0),
        ("", None),
        ("-", None),
    ],
)
def test_amounts(cell: str, amount: int | None) -> None:
    assert parse_amount(cell) == amount


@pytest.mark.parametrize(
    "cell", ["1.5", "120.000,50", "12a", "1.20.000", "120,0000", "1,200.000,00"]
)
def test_amounts_that_are_not_whole_dong(cell: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(cell)


@given(st.integers(0, 10**12), st.sampled_from([".", ","]), st.booleans())
def test_grouped_amounts_round_trip(amount: int, mark: str, decimals: bool) -> None:
    grouped = f"{amount:,}".replace(",", mark)
    if decimals:
        grouped += ("," if mark == "." else ".") + "00"
    assert parse_amount(grouped) == amount


@pytest.mark.parametrize(
    ("cell", "day"),
    [
        ("25/11/2026", date(2026, 11, 25)),
        ("25-11-26", date(2026, 11, 25)),
        ("25.11.2026", date(2026, 11, 25)),
        ("2026-11-25", date(2026, 11, 25)),
        ("2026/11/25", date(2026, 11, 25)),
        ("25/11/2026 14:03:11", date(2026, 11, 25)),
        ("2026-11-25T14:03:11", date(2026, 11, 25)),
        ("25-Nov-2026", date(2026, 11, 25)),
        ("05/11/2026", date(2026, 11, 5)),  # day first, as Vietnamese banks write it
        ("11/25/2026", date(2026, 11, 25)),  # month first only when day first is impossible
        ("31/02/2026", None),
        ("hôm qua", None),
    ],
)
def test_dates(cell: str, day: date | None) -> None:
    assert parse_date(cell) == day
