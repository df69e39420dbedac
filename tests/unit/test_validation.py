"""Form validation: required fields, conditions, kinds, cross-field ID checks, robustness."""

import re
import unicodedata
from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from core.text import Message
from core.validation import (
    RAW_VALUE_CAP,
    FileRef,
    ValidationResult,
    validate,
)
from procedures.schema import (
    Condition,
    Fee,
    FeeKind,
    FieldDef,
    FieldKind,
    Label,
    Option,
    ProcedureDefinition,
)

TODAY = date(2025, 7, 15)
SEX_OPTIONS = (Option("nam", Label("Nam", "Male")), Option("nu", Label("Nữ", "Female")))


def field(name: str, kind: FieldKind, vi: str = "", en: str = "", **kwargs: object) -> FieldDef:
    label = Label(vi or name, en or name)
    return FieldDef(name=name, kind=kind, label=label, **kwargs)  # type: ignore[arg-type]


def definition(*fields: FieldDef) -> ProcedureDefinition:
    return ProcedureDefinition(
        code="thu-nghiem",
        name=Label("Thủ tục thử nghiệm", "Test procedure"),
        legal_basis=(),
        documents=(),
        processing_days=0,
        max_processing_days=0,
        fee=Fee(kind=FeeKind.FREE),
        in_person_result=False,
        agency="ubnd",
        retention_days=365,
        fields=tuple(fields),
    )


def ref(name: str = "giay.jpg", content_type: str = "image/jpeg", id_: str = "f1") -> FileRef:
    return FileRef(id=id_, filename=name, content_type=content_type, size=1000, sha256="ab" * 32)


def check(defn: ProcedureDefinition, raw: dict[str, str], files: object = None) -> ValidationResult:
    return validate(defn, raw, files, today=TODAY)  # type: ignore[arg-type]


# A definition with every kind of field, shaped like a birth registration.
EVERYTHING = definition(
    field("ho_ten", FieldKind.PERSON_NAME, "Họ và tên", "Full name", required=True),
    field("gioi_tinh", FieldKind.SELECT, "Giới tính", "Sex", required=True, options=SEX_OPTIONS),
    field("ngay_sinh", FieldKind.DATE, "Ngày sinh", "Date of birth", required=True, past_only=True),
    field(
        "so_dinh_danh",
        FieldKind.CCCD,
        "Số định danh cá nhân",
        "Personal ID number",
        required=True,
        birth_date_field="ngay_sinh",
        sex_field="gioi_tinh",
    ),
    field("dien_thoai", FieldKind.PHONE, "Số điện thoại", "Phone number", required=True),
    field("email", FieldKind.EMAIL, "Email", "Email"),
    field("noi_cu_tru", FieldKind.ADDRESS, "Nơi cư trú", "Residence", required=True),
    field("dan_toc", FieldKind.TEXT, "Dân tộc", "Ethnicity"),
    field("ghi_chu", FieldKind.TEXTAREA, "Ghi chú", "Notes"),
    field("so_ban_sao", FieldKind.INTEGER, "Số bản sao", "Copies", min_value=0, max_value=10),
    field("co_cha", FieldKind.CHECKBOX, "Có thông tin người cha", "Father's details given"),
    field(
        "ho_ten_cha",
        FieldKind.PERSON_NAME,
        "Họ và tên người cha",
        "Father's full name",
        required=True,
        condition=Condition("co_cha", ("on",)),
    ),
    field(
        "nam_sinh_cha",
        FieldKind.INTEGER,
        "Năm sinh người cha",
        "Father's year of birth",
        min_value=1900,
        max_value=2025,
        condition=Condition("co_cha", ("on",)),
    ),
    field(
        "cccd_cha",
        FieldKind.CCCD,
        "Số định danh người cha",
        "Father's ID number",
        birth_date_field="nam_sinh_cha",
        allow_cmnd=True,
        condition=Condition("co_cha", ("on",)),
    ),
    field(
        "giay_chung_sinh",
        FieldKind.FILE,
        "Giấy chứng sinh",
        "Birth certificate",
        required=True,
        max_files=2,
    ),
    field("cam_ket", FieldKind.CHECKBOX, "Tôi cam đoan", "I declare", required=True),
)

VALID = {
    "ho_ten": "  nguyễn   văn an ",
    "gioi_tinh": "nam",
    "ngay_sinh": "12/03/1985",
    "so_dinh_danh": "079 085 001 234",
    "dien_thoai": "0912 345 678",
    "email": "An@Example.VN",
    "noi_cu_tru": "Ấp Bàu Tròn,\r\nxã Nhuận Đức",
    "dan_toc": "Kinh",
    "ghi_chu": "Dòng một\r\nDòng hai",
    "so_ban_sao": "2",
    "cam_ket": "on",
}
VALID_FILES = {"giay_chung_sinh": [ref()]}


def test_valid_form_is_cleaned_to_canonical_values() -> None:
    result = check(EVERYTHING, VALID, VALID_FILES)
    assert result.ok and result.errors == {} and result.warnings == {}
    assert result.cleaned == {
        "ho_ten": "Nguyễn Văn An",
        "gioi_tinh": "nam",
        "ngay_sinh": "1985-03-12",
        "so_dinh_danh": "079085001234",
        "dien_thoai": "+84912345678",
        "email": "An@example.vn",
        "noi_cu_tru": "Ấp Bàu Tròn, xã Nhuận Đức",
        "dan_toc": "Kinh",
        "ghi_chu": "Dòng một\nDòng hai",
        "so_ban_sao": 2,
        "co_cha": False,
        "giay_chung_sinh": ["f1"],
        "cam_ket": True,
    }


def test_unknown_keys_are_not_stored() -> None:
    result = check(EVERYTHING, {**VALID, "la_admin": "1", "csrf_token": "x"}, VALID_FILES)
    assert result.ok and "la_admin" not in result.cleaned and "csrf_token" not in result.cleaned


def test_required_messages_use_the_label() -> None:
    result = check(EVERYTHING, {})
    assert not result.ok
    assert result.errors["ho_ten"] == Message("Vui lòng nhập họ và tên.", "Please enter full name.")
    assert result.errors["gioi_tinh"].vi == "Vui lòng chọn giới tính."
    assert result.errors["so_dinh_danh"].vi == "Vui lòng nhập số định danh cá nhân."
    assert result.errors["giay_chung_sinh"].vi == "Vui lòng đính kèm giấy chứng sinh."
    assert result.errors["cam_ket"].vi == "Vui lòng đánh dấu ô “Tôi cam đoan”."
    assert "email" not in result.errors and "dan_toc" not in result.errors
    assert result.cleaned == {"co_cha": False}


def test_whitespace_and_invisible_only_count_as_empty() -> None:
    result = check(EVERYTHING, {**VALID, "noi_cu_tru": " \t ", "dan_toc": "\u200b"}, VALID_FILES)
    assert result.errors == {
        "noi_cu_tru": Message("Vui lòng nhập nơi cư trú.", "Please enter residence.")
    }
    assert "dan_toc" not in result.cleaned


def test_label_that_starts_with_an_acronym_is_kept() -> None:
    defn = definition(field("so", FieldKind.CCCD, "CCCD của người khai", "ID", required=True))
    assert check(defn, {}).errors["so"].vi == "Vui lòng nhập CCCD của người khai."


# --- Conditions ---------------------------------------------------------------------------------


def test_condition_not_met_means_not_required_and_not_stored() -> None:
    raw = {**VALID, "ho_ten_cha": "Trần Văn Bình", "nam_sinh_cha": "abc"}
    result = check(EVERYTHING, raw, VALID_FILES)
    assert result.ok
    assert "ho_ten_cha" not in result.cleaned and "nam_sinh_cha" not in result.cleaned


def test_condition_met_makes_the_field_required_and_checked() -> None:
    result = check(EVERYTHING, {**VALID, "co_cha": "on", "nam_sinh_cha": "abc"}, VALID_FILES)
    assert result.errors["ho_ten_cha"].vi == "Vui lòng nhập họ và tên người cha."
    assert "số nguyên" in result.errors["nam_sinh_cha"].vi


def test_condition_on_a_select_and_chained_conditions() -> None:
    defn = definition(
        field(
            "loai",
            FieldKind.SELECT,
            options=(Option("a", Label("A", "A")), Option("b", Label("B", "B"))),
        ),
        field("chi_tiet", FieldKind.TEXT, required=True, condition=Condition("loai", ("b",))),
        field("them", FieldKind.TEXT, required=True, condition=Condition("chi_tiet", ("x",))),
    )
    assert check(defn, {"loai": "a", "chi_tiet": "x"}).cleaned == {"loai": "a"}
    assert set(check(defn, {"loai": "b", "chi_tiet": "x"}).errors) == {"them"}
    assert set(check(defn, {"loai": "b"}).errors) == {"chi_tiet"}


def test_cyclic_conditions_apply_to_nothing() -> None:
    defn = definition(
        field("a", FieldKind.TEXT, required=True, condition=Condition("b", ("x",))),
        field("b", FieldKind.TEXT, required=True, condition=Condition("a", ("x",))),
        field("c", FieldKind.TEXT, condition=Condition("khong_co", ("x",))),
    )
    result = check(defn, {"a": "x", "b": "x", "c": "x"})
    assert result.ok and result.cleaned == {}


def test_files_of_a_field_that_does_not_apply_are_ignored() -> None:
    defn = definition(
        field("co", FieldKind.CHECKBOX),
        field("giay", FieldKind.FILE, required=True, condition=Condition("co", ("on",))),
    )
    assert check(defn, {}, {"giay": [ref()]}).cleaned == {"co": False}
    assert check(defn, {"co": "on"}, {"giay": [ref()]}).cleaned == {"co": True, "giay": ["f1"]}


# --- Per kind -----------------------------------------------------------------------------------


def test_default_maximum_lengths() -> None:
    for kind, longest in [
        (FieldKind.TEXT, 200),
        (FieldKind.ADDRESS, 300),
        (FieldKind.TEXTAREA, 2000),
    ]:
        defn = definition(field("x", kind))
        assert check(defn, {"x": "a" * longest}).cleaned == {"x": "a" * longest}
        error = check(defn, {"x": "a" * (longest + 1)}).errors["x"]
        assert error.vi == f"Nội dung dài quá {longest} ký tự (hiện có {longest + 1}). Xin rút gọn."


def test_email_and_name_maximum_lengths() -> None:
    email = definition(field("x", FieldKind.EMAIL))
    assert "254" in check(email, {"x": "a" * 250 + "@b.vn"}).errors["x"].vi
    name = definition(field("x", FieldKind.PERSON_NAME, max_length=10))
    assert "dài quá 10" in check(name, {"x": "Nguyễn Văn An"}).errors["x"].vi


def test_definition_lengths() -> None:
    defn = definition(field("x", FieldKind.TEXT, min_length=3, max_length=5))
    assert check(defn, {"x": "ab"}).errors["x"].vi == "Xin ghi ít nhất 3 ký tự."
    assert "dài quá 5" in check(defn, {"x": "abcdef"}).errors["x"].vi
    assert check(defn, {"x": " abc "}).cleaned == {"x": "abc"}


def test_raw_values_beyond_the_cap_are_refused_before_parsing() -> None:
    defn = definition(field("x", FieldKind.TEXTAREA, max_length=50_000))
    assert check(defn, {"x": "a" * RAW_VALUE_CAP}).ok
    assert "quá dài" in check(defn, {"x": "a" * (RAW_VALUE_CAP + 1)}).errors["x"].vi


def test_text_with_control_characters_is_refused() -> None:
    defn = definition(field("x", FieldKind.ADDRESS))
    assert "ký tự điều khiển" in check(defn, {"x": "Ấp 3\u202e, xã"}).errors["x"].vi


def test_integer() -> None:
    defn = definition(field("n", FieldKind.INTEGER, min_value=1, max_value=10))
    assert check(defn, {"n": " 7 "}).cleaned == {"n": 7}
    assert check(defn, {"n": "0"}).errors["n"].vi == "Xin nhập số từ 1 đến 10."
    assert check(defn, {"n": "11"}).errors["n"].vi == "Xin nhập số từ 1 đến 10."
    for junk in ("2.5", "hai", "1e3", "9" * 5000, "٣"):
        assert check(defn, {"n": junk}).errors["n"].vi.startswith("Xin nhập một số nguyên")
    low = definition(field("n", FieldKind.INTEGER, min_value=1))
    assert check(low, {"n": "-3"}).errors["n"].vi == "Xin nhập số không nhỏ hơn 1."
    high = definition(field("n", FieldKind.INTEGER, max_value=5))
    assert check(high, {"n": "6"}).errors["n"].vi == "Xin nhập số không lớn hơn 5."


def test_select_value_must_be_an_option() -> None:
    defn = definition(field("s", FieldKind.SELECT, options=SEX_OPTIONS))
    assert check(defn, {"s": " nu "}).cleaned == {"s": "nu"}
    assert check(defn, {"s": "Nữ"}).errors["s"].vi == "Xin chọn một trong các lựa chọn có sẵn."


def test_checkbox() -> None:
    defn = definition(field("c", FieldKind.CHECKBOX))
    assert check(defn, {"c": "on"}).cleaned == {"c": True}
    assert check(defn, {}).cleaned == {"c": False}
    assert check(defn, {"c": "off"}).cleaned == {"c": False}


def test_date_past_only() -> None:
    defn = definition(field("d", FieldKind.DATE, past_only=True))
    assert check(defn, {"d": "15/07/2025"}).cleaned == {"d": "2025-07-15"}
    assert check(defn, {"d": "2025-07-15"}).cleaned == {"d": "2025-07-15"}
    error = check(defn, {"d": "16/07/2025"}).errors["d"]
    assert error.vi == "Ngày này chưa tới (hôm nay là 15/07/2025). Xin kiểm tra lại."


def test_date_max_age_days_is_a_hard_limit() -> None:
    defn = definition(field("d", FieldKind.DATE, past_only=True, max_age_days=60))
    limit = TODAY - timedelta(days=60)
    assert check(defn, {"d": limit.isoformat()}).ok
    error = check(defn, {"d": (limit - timedelta(days=1)).isoformat()}).errors["d"]
    assert error.vi.startswith("Ngày 15/05/2025 đã cách hôm nay hơn 60 ngày")


def test_date_errors_come_from_the_parser() -> None:
    defn = definition(field("d", FieldKind.DATE))
    assert check(defn, {"d": "31/02/2024"}).errors["d"].vi == (
        "Tháng 2/2024 không có ngày 31. Xin kiểm tra lại."
    )


def test_very_old_date_is_a_warning() -> None:
    defn = definition(field("d", FieldKind.DATE, past_only=True))
    result = check(defn, {"d": "01/01/1901"})
    assert result.ok and result.cleaned == {"d": "1901-01-01"}
    assert "hơn 120 năm" in result.warnings["d"].vi
    assert check(defn, {"d": "01/01/1990"}).warnings == {}


def test_phone_and_email_fields() -> None:
    defn = definition(field("p", FieldKind.PHONE), field("e", FieldKind.EMAIL))
    assert check(defn, {"p": "+84 98 765 4321"}).cleaned == {"p": "+84987654321"}
    assert "máy bàn" in check(defn, {"p": "028 3823 4567"}).errors["p"].vi
    assert "email" in check(defn, {"e": "an@"}).errors["e"].vi


def test_files_count_type_and_ids() -> None:
    defn = definition(
        field("g", FieldKind.FILE, max_files=2, accept=("image/jpeg", "application/pdf"))
    )
    two = [ref(id_="a"), ref("b.pdf", "application/pdf", "b")]
    assert check(defn, {}, {"g": two}).cleaned == {"g": ["a", "b"]}
    three = [*two, ref(id_="c")]
    assert (
        check(defn, {}, {"g": three}).errors["g"].vi
        == "Mục này nhận tối đa 2 tệp; đang có 3. Xin bỏ bớt."
    )
    png = check(defn, {}, {"g": [ref("anh.png", "image/png")]}).errors["g"]
    assert png.vi == "Tệp “anh.png” không dùng được cho mục này. Xin gửi ảnh JPEG hoặc tệp PDF."
    assert check(defn, {}, {"g": []}).cleaned == {}
    assert check(defn, {}, None).cleaned == {}


# --- Identity numbers across fields -------------------------------------------------------------


def test_cccd_year_must_match_the_date_of_birth() -> None:
    result = check(EVERYTHING, {**VALID, "ngay_sinh": "12/03/1990"}, VALID_FILES)
    assert result.errors == {
        "so_dinh_danh": Message(
            "Số định danh cho biết năm sinh 1985, nhưng ngày sinh đã nhập là 12/03/1990. "
            "Xin kiểm tra lại.",
            "The identity number says born in 1985, but the date of birth entered is 12/03/1990. "
            "Please check.",
        )
    }
    assert "so_dinh_danh" not in result.cleaned and result.cleaned["ngay_sinh"] == "1990-03-12"


def test_cccd_century_digit_must_match() -> None:
    result = check(EVERYTHING, {**VALID, "so_dinh_danh": "079285001234"}, VALID_FILES)
    assert "Chữ số thứ tư của số định danh (2)" in result.errors["so_dinh_danh"].vi


def test_cccd_sex_must_match() -> None:
    result = check(EVERYTHING, {**VALID, "gioi_tinh": "nu"}, VALID_FILES)
    assert result.errors["so_dinh_danh"].vi == (
        "Số định danh cho biết giới tính nam, nhưng giới tính đã chọn là nữ. Xin kiểm tra lại."
    )


def test_woman_born_1990_in_ha_noi() -> None:
    raw = {**VALID, "gioi_tinh": "nu", "ngay_sinh": "1990-01-20", "so_dinh_danh": "001190012345"}
    assert check(EVERYTHING, raw, VALID_FILES).cleaned["so_dinh_danh"] == "001190012345"


def test_cccd_checked_against_a_year_of_birth_field() -> None:
    raw = {**VALID, "co_cha": "on", "ho_ten_cha": "Nguyễn Văn Bình", "nam_sinh_cha": "1960"}
    ok = check(EVERYTHING, {**raw, "cccd_cha": "079060001111"}, VALID_FILES)
    assert ok.ok and ok.cleaned["cccd_cha"] == "079060001111" and ok.cleaned["nam_sinh_cha"] == 1960
    bad = check(EVERYTHING, {**raw, "cccd_cha": "079061001111"}, VALID_FILES)
    assert "năm sinh đã nhập là 1960" in bad.errors["cccd_cha"].vi


def test_cccd_not_checked_against_a_field_with_an_error() -> None:
    result = check(EVERYTHING, {**VALID, "ngay_sinh": "hôm qua"}, VALID_FILES)
    assert set(result.errors) == {"ngay_sinh"}


def test_cccd_with_a_birth_year_still_to_come() -> None:
    defn = definition(field("so", FieldKind.CCCD))
    assert "là năm chưa tới" in check(defn, {"so": "079230001234"}).errors["so"].vi


def test_same_number_twice_is_an_error_on_the_second() -> None:
    defn = definition(
        field("cccd_chong", FieldKind.CCCD, "Số định danh của chồng", "Husband's ID number"),
        field("cccd_vo", FieldKind.CCCD, "Số định danh của vợ", "Wife's ID number"),
    )
    result = check(defn, {"cccd_chong": "079085001234", "cccd_vo": "079.085.001.234"})
    assert set(result.errors) == {"cccd_vo"}
    assert result.errors["cccd_vo"].vi == (
        "Số này trùng với số đã nhập ở mục “Số định danh của chồng”. Mỗi người có một số định "
        "danh riêng: xin kiểm tra lại."
    )
    assert result.cleaned == {"cccd_chong": "079085001234"}


def test_old_cmnd_only_where_allowed_and_with_a_warning() -> None:
    strict = definition(field("so", FieldKind.CCCD))
    assert "chứng minh nhân dân cũ" in check(strict, {"so": "025123456"}).errors["so"].vi
    lenient = definition(field("so", FieldKind.CCCD, allow_cmnd=True))
    result = check(lenient, {"so": "025 123 456"})
    assert result.ok and result.cleaned == {"so": "025123456"}
    assert "chứng minh nhân dân cũ" in result.warnings["so"].vi


def test_non_string_values_are_errors() -> None:
    defn = definition(field("x", FieldKind.TEXT))
    assert check(defn, {"x": ["a"]}).errors["x"].vi.startswith("Giá trị gửi lên không hợp lệ")  # type: ignore[dict-item]


# --- Properties ---------------------------------------------------------------------------------

NAMES = [f.name for f in EVERYTHING.fields]
HOSTILE = st.characters(categories=["Cs", "Cc", "Cf", "Co", "Mn", "Me", "Zl", "Zp", "Cn"])
VALUE = st.one_of(
    st.text(),
    st.text(HOSTILE),
    st.text(alphabet="0123456789 +-./", max_size=20),
    st.sampled_from([*VALID.values(), "on", "nu", "001190012345", "079285001234", "1960"]),
    st.lists(st.one_of(st.text(max_size=5), st.text(HOSTILE, max_size=3))).map("".join),
)
FORMS = st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(max_size=5)), VALUE)
FILE_REFS = st.dictionaries(
    st.sampled_from(["giay_chung_sinh", "khac"]),
    st.lists(
        st.builds(
            FileRef,
            id=st.text(min_size=1, max_size=8),
            filename=st.text(max_size=10),
            content_type=st.sampled_from(["image/jpeg", "image/png", "text/html"]),
            size=st.integers(0, 10**7),
            sha256=st.just("00" * 32),
        ),
        max_size=3,
    ),
)
CONTROL = {"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"}


def assert_kind_invariant(fd: FieldDef, value: object) -> None:
    kind = fd.kind
    if kind == FieldKind.PHONE:
        assert isinstance(value, str) and re.fullmatch(r"\+84[0-9]{9}", value)
    elif kind == FieldKind.CCCD:
        pattern = r"[0-9]{12}|[0-9]{9}" if fd.allow_cmnd else r"[0-9]{12}"
        assert isinstance(value, str) and re.fullmatch(pattern, value)
    elif kind == FieldKind.DATE:
        assert isinstance(value, str) and date.fromisoformat(value).isoformat() == value
        assert fd.past_only is False or date.fromisoformat(value) <= TODAY
    elif kind == FieldKind.INTEGER:
        assert type(value) is int
        assert fd.min_value is None or value >= fd.min_value
        assert fd.max_value is None or value <= fd.max_value
    elif kind == FieldKind.CHECKBOX:
        assert type(value) is bool
    elif kind == FieldKind.SELECT:
        assert value in {o.value for o in fd.options}
    elif kind == FieldKind.FILE:
        assert isinstance(value, list) and 1 <= len(value) <= fd.max_files
    else:
        assert isinstance(value, str) and value and value == value.strip()
        assert unicodedata.is_normalized("NFC", value)
        assert not any(unicodedata.category(c) in CONTROL for c in value if c != "\n")
        assert "\n" not in value or kind == FieldKind.TEXTAREA
        assert len(value) <= {"person_name": 100, "email": 254, "address": 300}.get(kind, 2000)
        if kind == FieldKind.PERSON_NAME:
            assert not any(c.isdigit() for c in value)


@settings(max_examples=300)
@given(FORMS, FILE_REFS)
def test_validate_never_raises_and_cleaned_values_keep_their_invariants(
    raw: dict[str, str], files: dict[str, list[FileRef]]
) -> None:
    result = validate(EVERYTHING, raw, files, today=TODAY)
    assert set(result.cleaned) <= set(NAMES)
    assert set(result.errors) <= set(NAMES)
    assert not set(result.cleaned) & set(result.errors)
    assert all(isinstance(m.vi, str) and m.vi and m.en for m in result.errors.values())
    for name, value in result.cleaned.items():
        fd = EVERYTHING.get_field(name)
        assert fd is not None
        assert_kind_invariant(fd, value)
    if "ho_ten_cha" in result.cleaned:
        assert result.cleaned.get("co_cha") is True


@given(FORMS)
def test_a_valid_form_stays_valid_when_junk_keys_are_added(extra: dict[str, str]) -> None:
    junk = {k: v for k, v in extra.items() if k not in NAMES}
    result = validate(EVERYTHING, {**VALID, **junk}, VALID_FILES, today=TODAY)
    assert result.ok
    assert result.cleaned == check(EVERYTHING, VALID, VALID_FILES).cleaned


def test_supplement_form_where_every_field_is_optional() -> None:
    # The supplement form: same fields, none required, no conditions (core.services builds it so).
    fields = tuple(replace(f, required=False, condition=None) for f in EVERYTHING.fields)
    relaxed = replace(EVERYTHING, fields=fields)
    result = check(relaxed, {"dien_thoai": "0987654321"})
    assert result.ok
    assert result.cleaned == {"dien_thoai": "+84987654321", "co_cha": False, "cam_ket": False}


def test_a_typed_id_is_a_few_ascii_digits_or_nothing() -> None:
    from core.text import typed_id

    assert typed_id("42") == 42
    assert typed_id("007") == 7
    for text in ("", "-1", "4 2", "٣٤", "１２", "9" * 19, "9" * 5000, "1e3", "0x10", "12a"):
        assert typed_id(text) is None, text
