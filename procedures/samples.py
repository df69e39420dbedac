"""Sample answers for any procedure definition: valid form values a citizen could type.

Used by the demo, the benchmarks and the tests, so they exercise the real form with realistic
Vietnamese data instead of hand-written dictionaries that drift from the catalog. The values are
fictional: the CCCD serials are random and the phone numbers come from real mobile prefixes.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from procedures.schema import FieldDef, FieldKind, ProcedureDefinition

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ"]
MIDDLE_M = ["Văn", "Hữu", "Minh", "Quốc", "Đức"]
MIDDLE_F = ["Thị", "Ngọc", "Thanh", "Thu", "Bảo"]
GIVEN = ["An", "Bình", "Cường", "Dũng", "Hà", "Hạnh", "Lan", "Mai", "Nam", "Phúc", "Quyên", "Tâm"]
PLACES = [
    "Ấp Bàu Tròn, xã Nhuận Đức, TP. Hồ Chí Minh",
    "Ấp 3, xã Nhuận Đức, TP. Hồ Chí Minh",
    "12 đường Tỉnh lộ 15, xã Nhuận Đức, TP. Hồ Chí Minh",
]
MOBILE_PREFIXES = ["032", "086", "091", "094", "097", "098", "070", "079", "090"]
MALE_VALUES = {"nam", "male", "m"}


def _is_male(value: object) -> bool:
    return str(value).lower() in MALE_VALUES


def sample_name(rng: random.Random, *, male: bool) -> str:
    middle = MIDDLE_M if male else MIDDLE_F
    return f"{rng.choice(FAMILY)} {rng.choice(middle)} {rng.choice(GIVEN)}"


def sample_cccd(rng: random.Random, *, birth_year: int, male: bool, province: str = "079") -> str:
    century = (birth_year // 100) - 19  # 1900s → 0, 2000s → 1
    sex_digit = century * 2 + (0 if male else 1)
    serial = rng.randrange(0, 1_000_000)
    return f"{province}{sex_digit}{birth_year % 100:02d}{serial:06d}"


def sample_phone(rng: random.Random) -> str:
    return f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(0, 10_000_000):07d}"


def sample_values(
    defn: ProcedureDefinition, *, today: date, seed: int | None = None
) -> dict[str, str]:
    """Valid raw form values (strings, as a browser sends them) for every applicable field.

    Checkbox conditions are taken as met, so optional branches (the father's details…) are
    filled too. File fields are left out: the caller attaches files.
    """
    rng = random.Random(seed)  # noqa: S311 - fictional demo data, not a secret
    values: dict[str, str] = {}
    dates: dict[str, date] = {}
    for fd in defn.fields:
        if fd.kind == FieldKind.CHECKBOX:
            values[fd.name] = "on"
    for fd in defn.fields:
        if fd.kind in (FieldKind.FILE, FieldKind.CHECKBOX, FieldKind.CCCD):
            continue
        if fd.condition is not None and values.get(fd.condition.field, "on") not in (
            *fd.condition.equals,
            "on",
        ):
            continue
        value = _sample_field(fd, rng, today)
        if fd.kind == FieldKind.DATE:
            dates[fd.name] = _parse_ddmmyyyy(value)
        values[fd.name] = value
    for fd in defn.fields:
        if fd.kind != FieldKind.CCCD:
            continue
        born = dates.get(fd.birth_date_field or "", date(1985, 6, 15))
        linked = values.get(fd.birth_date_field or "", "")
        if fd.birth_date_field and fd.birth_date_field not in dates and linked.isdigit():
            born = date(int(linked), 6, 15)  # a birth *year* field
        male = _is_male(values.get(fd.sex_field or "", "nam")) if fd.sex_field else True
        values[fd.name] = sample_cccd(rng, birth_year=born.year, male=male)
    # Most citizens belong to no fee-exempt group: leave that declaration empty.
    if defn.fee.exemption_field is not None:
        values.pop(defn.fee.exemption_field, None)
    # Conditions on selects: keep only fields whose condition holds.
    for fd in defn.fields:
        if fd.condition is not None and fd.name in values:
            if values.get(fd.condition.field) not in (*fd.condition.equals, "on"):
                del values[fd.name]
    return values


def _parse_ddmmyyyy(text: str) -> date:
    d, m, y = (int(x) for x in text.split("/"))
    return date(y, m, d)


def _sample_field(fd: FieldDef, rng: random.Random, today: date) -> str:
    kind = fd.kind
    if kind == FieldKind.PERSON_NAME:
        return sample_name(rng, male=rng.random() < 0.5)
    if kind == FieldKind.DATE:
        if fd.max_age_days is not None:
            day = today - timedelta(days=rng.randrange(0, max(1, min(fd.max_age_days, 20))))
        else:
            day = date(rng.randrange(1960, 2000), rng.randrange(1, 13), rng.randrange(1, 29))
        return day.strftime("%d/%m/%Y")
    if kind == FieldKind.PHONE:
        return sample_phone(rng)
    if kind == FieldKind.EMAIL:
        return f"nguoidan{rng.randrange(1000, 9999)}@example.vn"
    if kind == FieldKind.INTEGER:
        low = fd.min_value if fd.min_value is not None else 1
        high = fd.max_value if fd.max_value is not None else low + 5
        if "year" in fd.name or "nam_sinh" in fd.name:
            return str(min(max(1975, low), high))
        return str(min(max(low, 1), high))
    if kind == FieldKind.SELECT:
        return fd.options[0].value if fd.options else ""
    if kind == FieldKind.ADDRESS:
        return rng.choice(PLACES)
    if kind == FieldKind.TEXTAREA:
        return "Xin cấp theo quy định."
    # text: short and plausible for what the field asks, within its limits
    text = _sample_text(fd.name)
    if fd.max_length and len(text) > fd.max_length:
        text = text[: fd.max_length]
    if fd.min_length and len(text) < fd.min_length:
        text = text.ljust(fd.min_length, ".")
    return text


# By the end of the field's name (the catalog's naming: `<person>_<what>`).
TEXT_BY_SUFFIX = (
    ("dan_toc", "Kinh"),
    ("quoc_tich", "Việt Nam"),
    ("noi_sinh", "Bệnh viện Đa khoa huyện Củ Chi"),
    ("noi_chet", "Tại nhà riêng, ấp Bàu Tròn"),
    ("que_quan", "Xã Nhuận Đức, TP. Hồ Chí Minh"),
    ("nguyen_nhan", "Bệnh già"),
    ("quan_he_chu_ho", "Con"),
    ("quan_he", "Con"),
    ("ten_giay_to", "Bằng tốt nghiệp trung học phổ thông"),
    ("ten_van_ban", "Giấy ủy quyền"),
    ("noi_dung_cu", "Nguyễn Văn Bìn"),
    ("noi_dung_moi", "Nguyễn Văn Bình"),
    ("so_dang_ky", "123"),
    ("so_dang_ky_giam_ho", "45"),
    ("noi_dang_ky_ket_hon", "UBND xã Nhuận Đức"),
    ("muc_dich_khac", "Bổ sung hồ sơ vay vốn"),
    ("muc_dich", "Bổ sung hồ sơ vay vốn"),
)


def _sample_text(name: str) -> str:
    for suffix, text in TEXT_BY_SUFFIX:
        if name.endswith(suffix):
            return text
    return "Theo giấy tờ kèm theo"
