"""The procedure catalog: every file loads and follows the law, the round trip is exact, versions
are stable, and a broken file says which file, where and what is wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.validation import FileRef, validate
from procedures.catalog import (
    Catalog,
    CatalogError,
    Problem,
    authoring_problems,
    definition_from_dict,
    definition_to_dict,
    definition_to_json,
    definition_version,
    dump_definition,
    load_catalog,
    load_definition,
)
from procedures.samples import sample_values
from procedures.schema import FeeKind, FieldKind, Label, ProcedureDefinition

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog()

# domain.md §2: code → (processing days, legal maximum, fee kind, amount, on-time window, agency)
DOMAIN: dict[str, tuple[int, int, FeeKind, int, int, str]] = {
    "khai-sinh": (0, 0, FeeKind.PER_COMMUNE, 0, 60, "ubnd"),
    "ket-hon": (0, 5, FeeKind.FREE, 0, 0, "ubnd"),
    "khai-tu": (0, 0, FeeKind.PER_COMMUNE, 0, 15, "ubnd"),
    "giam-ho": (3, 3, FeeKind.FREE, 0, 0, "ubnd"),
    "cham-dut-giam-ho": (2, 2, FeeKind.FREE, 0, 0, "ubnd"),
    "nhan-cha-me-con": (3, 8, FeeKind.PER_COMMUNE, 0, 0, "ubnd"),
    "thay-doi-cai-chinh-ho-tich": (3, 6, FeeKind.PER_COMMUNE, 0, 0, "ubnd"),
    "bo-sung-thong-tin-ho-tich": (0, 0, FeeKind.PER_COMMUNE, 0, 0, "ubnd"),
    "trich-luc-ho-tich": (0, 0, FeeKind.PER_COPY, 8_000, 0, "ubnd"),
    "xac-nhan-tinh-trang-hon-nhan": (3, 23, FeeKind.PER_COMMUNE, 0, 0, "ubnd"),
    "chung-thuc-ban-sao": (0, 2, FeeKind.PER_PAGE, 2_000, 0, "ubnd"),
    "chung-thuc-chu-ky": (0, 2, FeeKind.FIXED, 10_000, 0, "ubnd"),
    "dang-ky-thuong-tru": (7, 7, FeeKind.FIXED, 10_000, 0, "cong-an"),
    "dang-ky-tam-tru": (3, 3, FeeKind.FIXED, 7_000, 0, "cong-an"),
}


# --- The shipped catalog --------------------------------------------------------------------------


def test_the_whole_catalog_loads_in_display_order() -> None:
    assert len(CATALOG) >= 13
    assert set(DOMAIN) <= set(CATALOG.codes())
    codes = CATALOG.codes()
    assert codes[:3] == ("khai-sinh", "ket-hon", "khai-tu")  # "# order:" lines, not the alphabet
    assert codes[-2:] == ("dang-ky-thuong-tru", "dang-ky-tam-tru")
    assert [d.code for d in CATALOG] == list(codes)


@pytest.mark.parametrize("code", sorted(DOMAIN))
def test_times_fees_and_agency_follow_the_domain(code: str) -> None:
    days, most, kind, amount, window, agency = DOMAIN[code]
    defn = CATALOG[code]
    assert (defn.processing_days, defn.max_processing_days) == (days, most)
    assert (defn.fee.kind, defn.fee.amount, defn.agency) == (kind, amount, agency)
    assert defn.fee.free_if_on_time == bool(window) and defn.fee.on_time_days == window
    if kind == FeeKind.PER_COMMUNE:
        assert defn.fee.note is not None, "say who sets the amount"
    assert defn.legal_basis and defn.documents
    retention = 730 if code.startswith("chung-thuc") else 1825
    assert defn.retention_days == retention


def test_fee_scales_of_the_copies() -> None:
    extract = CATALOG["trich-luc-ho-tich"].fee
    assert (extract.kind, extract.amount, extract.quantity_field) == (
        FeeKind.PER_COPY,
        8_000,
        "so_ban_sao",
    )
    certified = CATALOG["chung-thuc-ban-sao"].fee
    assert (certified.amount, certified.later_page_amount, certified.later_pages_from) == (
        2_000,
        1_000,
        3,
    )
    assert certified.cap_per_copy == 200_000
    assert (certified.quantity_field, certified.pages_field) == ("so_ban", "so_trang")


@pytest.mark.parametrize("code", sorted(DOMAIN))
def test_the_office_can_call_every_citizen_back(code: str) -> None:
    fields = CATALOG[code].fields
    phones = [f for f in fields if f.kind == FieldKind.PHONE]
    assert any(f.required and f.condition is None for f in phones)
    emails = [f for f in fields if f.kind == FieldKind.EMAIL]
    assert emails and not any(f.required for f in emails)  # email is optional


@pytest.mark.parametrize("code", sorted(DOMAIN))
def test_every_text_is_bilingual_and_most_fields_explain_themselves(code: str) -> None:
    defn = CATALOG[code]
    labels = [defn.name, *defn.documents, *(s.title for s in defn.sections)]
    for f in defn.fields:
        labels += [f.label, *(o.label for o in f.options)]
        labels += [f.hint] if f.hint else []
    for label in labels:
        assert label.vi.strip() and label.en.strip()
        assert label.vi == unicodedata.normalize("NFC", label.vi)
    askable = [f for f in defn.fields if f.kind not in (FieldKind.CHECKBOX, FieldKind.SELECT)]
    assert sum(f.hint is not None for f in askable) >= 0.9 * len(askable)
    assert all(f.section for f in defn.fields)  # grouped like the paper form


def test_birth_registration_follows_the_declaration_form() -> None:
    defn = CATALOG["khai-sinh"]
    assert [s.name for s in defn.sections] == ["nguoi_yeu_cau", "tre", "me", "cha", "giay_to"]
    kind = {f.name: f.kind for f in defn.fields}
    for name, expected in {
        "nyc_ho_ten": FieldKind.PERSON_NAME,
        "nyc_ngay_sinh": FieldKind.DATE,
        "nyc_cccd": FieldKind.CCCD,
        "nyc_noi_cu_tru": FieldKind.ADDRESS,
        "nyc_quan_he": FieldKind.SELECT,
        "nyc_dien_thoai": FieldKind.PHONE,
        "tre_ho_ten": FieldKind.PERSON_NAME,
        "tre_gioi_tinh": FieldKind.SELECT,
        "tre_ngay_sinh": FieldKind.DATE,
        "tre_noi_sinh": FieldKind.TEXT,
        "tre_que_quan": FieldKind.TEXT,
        "tre_dan_toc": FieldKind.TEXT,
        "tre_quoc_tich": FieldKind.TEXT,
        "me_ho_ten": FieldKind.PERSON_NAME,
        "me_nam_sinh": FieldKind.INTEGER,
        "me_noi_cu_tru": FieldKind.ADDRESS,
        "co_cha": FieldKind.CHECKBOX,
        "so_ban_sao": FieldKind.INTEGER,
        "giay_chung_sinh": FieldKind.FILE,
    }.items():
        assert kind[name] == expected, name
    field = {f.name: f for f in defn.fields}
    # The requester's sex is not on the form: the ID is checked against the birth date only.
    assert (field["nyc_cccd"].birth_date_field, field["nyc_cccd"].sex_field) == (
        "nyc_ngay_sinh",
        None,
    )
    assert [o.value for o in field["tre_gioi_tinh"].options] == ["nam", "nu"]
    # 60 days decide the fee, not whether the birth can be registered.
    child_born = field["tre_ngay_sinh"]
    assert child_born.past_only and child_born.max_age_days is None
    assert child_born.hint is not None and "60" in child_born.hint.vi
    assert (field["me_nam_sinh"].min_value, field["so_ban_sao"].min_value) == (1900, 1)
    assert field["so_ban_sao"].max_value == 10
    father = [f for f in defn.fields if f.section == "cha" and f.name != "co_cha"]
    assert len(father) >= 5
    assert all(f.condition is not None and f.condition.field == "co_cha" for f in father)
    certificate = field["giay_chung_sinh"]
    assert certificate.required and certificate.max_files == 2


def test_marriage_asks_each_party_what_the_law_lists() -> None:
    names = {f.name for f in CATALOG["ket-hon"].fields}
    for party in ("nu", "nam"):  # Luật Hộ tịch Điều 17.2
        for part in ("ho_ten", "ngay_sinh", "dan_toc", "quoc_tich", "noi_cu_tru", "cccd"):
            assert f"{party}_{part}" in names


@pytest.mark.parametrize("code", sorted(DOMAIN))
def test_sample_answers_pass_the_real_validation(code: str) -> None:
    defn = CATALOG[code]
    today = date(2026, 11, 23)
    scan = FileRef("f1", "giay-to.jpg", "image/jpeg", 1000, "0" * 64)
    files = {f.name: [scan] for f in defn.fields if f.kind == FieldKind.FILE}
    for seed in range(3):
        result = validate(defn, sample_values(defn, today=today, seed=seed), files, today=today)
        assert not result.errors, {name: m.en for name, m in result.errors.items()}


# --- Round trip and versions ----------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(DOMAIN))
def test_dump_then_load_gives_the_same_definition_and_text(code: str) -> None:
    defn = CATALOG[code]
    text = dump_definition(defn)
    again = load_definition(text, f"{code}.toml")
    assert again == defn
    assert dump_definition(again) == text
    assert definition_from_dict(json.loads(json.dumps(definition_to_dict(defn))), "x") == defn


def test_a_dumped_file_opens_with_the_editing_guide_and_keeps_one_field_a_block() -> None:
    text = dump_definition(CATALOG["khai-sinh"])
    assert text.startswith("# ── Cách sửa tệp này")
    assert text.count("\n[[fields]]\n") == len(CATALOG["khai-sinh"].fields)
    assert 'label.vi = "Họ, chữ đệm và tên của trẻ"' in text


_TEXT = (
    st.text(min_size=1, max_size=30)
    .map(lambda s: unicodedata.normalize("NFC", s))
    .filter(lambda s: bool(s.strip()))
)
_LABEL = st.builds(Label, _TEXT, _TEXT)


@st.composite
def _edited_definitions(draw: st.DrawFn) -> ProcedureDefinition:
    """A shipped definition whose every text and number an editor may change is redrawn."""
    base = draw(st.sampled_from(list(CATALOG)))
    fields = tuple(
        replace(
            f,
            label=draw(_LABEL),
            hint=draw(st.none() | _LABEL),
            options=tuple(replace(o, label=draw(_LABEL)) for o in f.options),
            max_length=draw(st.none() | st.integers(1, 10_000))
            if f.kind in (FieldKind.TEXT, FieldKind.TEXTAREA)
            else f.max_length,
        )
        for f in base.fields
    )
    days = draw(st.integers(0, 60))
    return replace(
        base,
        name=draw(_LABEL),
        summary=draw(st.none() | _LABEL),
        legal_basis=tuple(draw(st.lists(_TEXT, max_size=3))),
        documents=tuple(draw(st.lists(_LABEL, max_size=3))),
        processing_days=days,
        max_processing_days=days + draw(st.integers(0, 30)),
        retention_days=draw(st.integers(1, 100_000)),
        in_person_result=draw(st.booleans()),
        fee=replace(base.fee, note=draw(st.none() | _LABEL)),
        sections=tuple(
            replace(s, title=draw(_LABEL), hint=draw(st.none() | _LABEL)) for s in base.sections
        ),
        fields=fields,
    )


@settings(max_examples=60, deadline=None)
@given(_edited_definitions())
def test_round_trip_is_exact_for_any_texts_and_numbers(defn: ProcedureDefinition) -> None:
    text = dump_definition(defn)
    again = load_definition(text, f"{defn.code}.toml")
    assert again == defn
    assert dump_definition(again) == text
    assert definition_version(again) == definition_version(defn)


def test_version_changes_with_one_label_and_not_with_unicode_spelling() -> None:
    defn = CATALOG["khai-sinh"]
    version = definition_version(defn)
    assert len(version) == 16 and int(version, 16) >= 0
    assert definition_version(load_catalog()["khai-sinh"]) == version
    relabelled = replace(defn.fields[0], label=Label("Họ và tên", defn.fields[0].label.en))
    assert definition_version(replace(defn, fields=(relabelled, *defn.fields[1:]))) != version
    decomposed = replace(defn, name=Label(unicodedata.normalize("NFD", defn.name.vi), defn.name.en))
    assert decomposed != defn and definition_version(decomposed) == version
    assert load_definition(dump_definition(decomposed), "khai-sinh.toml") == defn  # read as NFC


def test_versions_are_the_same_in_another_process() -> None:
    script = (
        "import json; from procedures.catalog import load_catalog, definition_version; "
        "print(json.dumps({d.code: definition_version(d) for d in load_catalog()}))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, check=True
    )
    assert json.loads(out.stdout) == {d.code: definition_version(d) for d in CATALOG}


def test_versions_stored_in_the_first_layout_still_load() -> None:
    """A dossier's version text is parsed again for years: older layouts must keep loading."""
    stored = """
code = "thu"
legal_basis = ["Luật Hộ tịch 60/2014/QH13"]
documents = [
    { vi = "Căn cước", en = "ID card" },
]
processing_days = 0
max_processing_days = 0
in_person_result = true
agency = "ubnd"
retention_days = 1825
sections = [
    { name = "nguoi_yeu_cau", title = { vi = "Người yêu cầu", en = "Requester" } },
]

[name]
vi = "Thử"
en = "Test"

[fee]
kind = "free"
free_if_on_time = true
on_time_field = "ngay"
on_time_days = 60

[[fields]]
name = "ngay"
kind = "date"
section = "nguoi_yeu_cau"

[fields.label]
vi = "Ngày"
en = "Date"
"""
    defn = load_definition(stored, "procedure_version:1")
    assert defn.fee.free_if_on_time and defn.fields[0].label == Label("Ngày", "Date")
    assert load_definition(dump_definition(defn), "procedure_version:1") == defn


# --- Broken files ---------------------------------------------------------------------------------

BASE = """\
code = "thu"
name = { vi = "Thử", en = "Test" }
legal_basis = ["Luật Hộ tịch 60/2014/QH13"]
documents = [{ vi = "Căn cước", en = "ID card" }]
processing_days = 0
max_processing_days = 0
in_person_result = true
agency = "ubnd"
retention_days = 30

[fee]
kind = "free"

[[fields]]
name = "dien_thoai"
kind = "phone"
required = true
label = { vi = "Điện thoại", en = "Phone" }
"""


def _field(name: str, kind: str, extra: str = "") -> str:
    return (
        f'\n[[fields]]\nname = "{name}"\nkind = "{kind}"\nlabel = {{ vi = "A", en = "A" }}\n{extra}'
    )


def _fee(text: str) -> str:
    return BASE.replace('[fee]\nkind = "free"\n', f"[fee]\n{text}\n")


def _errors(text: str, source: str = "thu.toml") -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_definition(text, source)
    lines = str(caught.value).splitlines()
    assert lines == [str(p) for p in caught.value.problems]  # one problem a line
    assert all(p.file == source for p in caught.value.problems)
    return lines


def test_the_base_of_the_broken_files_is_valid() -> None:
    defn = load_definition(BASE, "thu.toml")
    assert authoring_problems(defn, "thu.toml") == []


BROKEN = {
    "unknown kind": (
        BASE + _field("a", "foo"),
        "thu.toml: fields[1].kind: unknown kind 'foo' (expected one of: text, textarea, "
        "person_name, date, cccd, phone, email, integer, select, checkbox, address, file)",
    ),
    "duplicate field": (
        BASE + _field("a", "text") + _field("a", "date"),
        "thu.toml: fields[2].name: duplicate field name 'a' (also fields[1])",
    ),
    "bad field name": (
        BASE + _field("Ho ten", "text"),
        "thu.toml: fields[1].name: 'Ho ten' must start with a lower-case letter",
    ),
    "select without options": (
        BASE + _field("a", "select"),
        "thu.toml: fields[1].options: a select needs at least one option",
    ),
    "options twice": (
        BASE
        + _field(
            "a",
            "select",
            'options = [{ value = "x", label = { vi = "X", en = "X" } },'
            ' { value = "x", label = { vi = "Y", en = "Y" } }]\n',
        ),
        "thu.toml: fields[1].options: two options have the value 'x'",
    ),
    "condition on a missing field": (
        BASE + _field("a", "text", 'condition = { field = "khong_co", equals = ["x"] }\n'),
        "thu.toml: fields[1].condition.field: refers to 'khong_co', which is not a field above",
    ),
    "condition on a later field": (
        BASE
        + _field("a", "text", 'condition = { field = "b", equals = ["on"] }\n')
        + _field("b", "checkbox"),
        "thu.toml: fields[1].condition.field: refers to 'b', which is not a field above",
    ),
    "condition on a value that is no option": (
        BASE
        + _field("a", "select", 'options = [{ value = "x", label = { vi = "X", en = "X" } }]\n')
        + _field("b", "text", 'condition = { field = "a", equals = ["y"] }\n'),
        "thu.toml: fields[2].condition.equals: 'y' is not an option of 'a' (its options: x)",
    ),
    "checkbox condition": (
        BASE
        + _field("a", "checkbox")
        + _field("b", "text", 'condition = { field = "a", equals = ["yes"] }\n'),
        "thu.toml: fields[2].condition.equals: a checkbox is either ticked or not",
    ),
    "per_copy fee without the copies field": (
        _fee('kind = "per_copy"\namount = 8000'),
        "thu.toml: fee.quantity_field: a per_copy fee needs quantity_field",
    ),
    "per_copy fee counting a text field": (
        _fee('kind = "per_copy"\namount = 8000\nquantity_field = "a"') + _field("a", "text"),
        "thu.toml: fee.quantity_field: 'a' is a text field, not an integer",
    ),
    "fixed fee without amount": (
        _fee('kind = "fixed"'),
        "thu.toml: fee.amount: a fixed fee needs an amount in đồng above 0",
    ),
    "unknown fee kind": (
        _fee('kind = "gratis"'),
        "thu.toml: fee.kind: unknown fee kind 'gratis' (expected one of: free, fixed, per_copy",
    ),
    "free if on time without a date": (
        _fee('kind = "per_commune"\nfree_if_on_time = true\non_time_days = 60'),
        "thu.toml: fee.on_time_field: free_if_on_time needs the date field",
    ),
    "exemption from a free fee": (
        _fee('kind = "free"\nexemption_field = "nhom"')
        + _field("nhom", "select", 'options = [{ value = "a", label = { vi = "A", en = "A" } }]\n'),
        "thu.toml: fee.exemption_field: a free procedure has no fee to be exempt from",
    ),
    "exemption on a text field": (
        _fee('kind = "per_commune"\nexemption_field = "nhom"') + _field("nhom", "text"),
        "thu.toml: fee.exemption_field: 'nhom' must name a select field",
    ),
    "required exemption": (
        _fee('kind = "per_commune"\nexemption_field = "nhom"')
        + _field(
            "nhom",
            "select",
            'required = true\noptions = [{ value = "a", label = { vi = "A", en = "A" } }]\n',
        ),
        "thu.toml: fee.exemption_field: 'nhom' must not be required",
    ),
    "exemption on a missing field": (
        _fee('kind = "per_commune"\nexemption_field = "nhom"'),
        "thu.toml: fee.exemption_field: refers to 'nhom', which is not a field",
    ),
    "unknown top key": (
        BASE.replace("retention_days = 30", 'retention_days = 30\ncolour = "red"'),
        "thu.toml: colour: unknown key 'colour' (expected one of: code, name, legal_basis",
    ),
    "misspelt field key": (
        BASE + _field("a", "text", "requried = true\n"),
        "thu.toml: fields[1].requried: unknown key 'requried' (did you mean 'required'?)",
    ),
    "bad TOML": (
        BASE + "\n[[fields]\n",
        "thu.toml: line 20, column 9: not valid TOML:",
    ),
    "code not the file name": (
        BASE.replace('code = "thu"', 'code = "khac"'),
        "thu.toml: code: 'khac' must be the file name without .toml ('thu')",
    ),
    "ID checked against a text field": (
        BASE + _field("a", "text") + _field("b", "cccd", 'birth_date_field = "a"\n'),
        "thu.toml: fields[2].birth_date_field: 'a' is a text field, not a date or integer",
    ),
    "sex field with other values": (
        BASE
        + _field("a", "select", 'options = [{ value = "m", label = { vi = "M", en = "M" } }]\n')
        + _field("b", "cccd", 'sex_field = "a"\n'),
        "thu.toml: fields[2].sex_field: the options of 'a' must be nam and nu",
    ),
    "undeclared section": (
        BASE + _field("a", "text", 'section = "me"\n'),
        "thu.toml: fields[1].section: no section named 'me'",
    ),
    "longer than the legal maximum": (
        BASE.replace("processing_days = 0", "processing_days = 3", 1),
        "thu.toml: max_processing_days: 0 is below processing_days (3)",
    ),
    "missing key": (
        BASE.replace('agency = "ubnd"\n', ""),
        "thu.toml: agency: missing",
    ),
    "wrong type": (
        BASE.replace("retention_days = 30", 'retention_days = "30"'),
        "thu.toml: retention_days: expected a whole number, got text",
    ),
    "half a label": (
        BASE.replace('name = { vi = "Thử", en = "Test" }', 'name = { vi = "Thử" }'),
        "thu.toml: name.en: missing",
    ),
    "blank law and a number for a law": (
        BASE.replace('["Luật Hộ tịch 60/2014/QH13"]', '["Luật Hộ tịch 60/2014/QH13", " ", 3]'),
        "thu.toml: legal_basis[1]: must not be empty",
    ),
    "two sections with one name": (
        BASE.replace(
            "[fee]",
            '[[sections]]\nname = "me"\ntitle = { vi = "Mẹ", en = "Mother" }\n'
            '[[sections]]\nname = "me"\ntitle = { vi = "Mẹ", en = "Mother" }\n[fee]',
        ),
        "thu.toml: sections[1].name: two sections are named 'me' (also sections[0])",
    ),
    "unknown file type": (
        BASE + _field("a", "file", 'accept = ["image/gif"]\n'),
        "thu.toml: fields[1].accept[0]: unknown file type 'image/gif'",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_file_names_the_file_the_place_and_the_problem(case: str) -> None:
    text, expected = BROKEN[case]
    problems = _errors(text)
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    text = BASE.replace("retention_days = 30", 'retention_days = 30\ncolour = "red"') + (
        _field("a", "nope")
        + _field("dien_thoai", "text")
        + _field("b", "select")
        + _field("c", "text", 'condition = { field = "khong_co", equals = ["x"] }\n')
    )
    problems = _errors(text)
    assert [p.split(":")[1].strip() for p in problems] == [
        "colour",
        "fields[1].kind",
        "fields[2].name",
        "fields[3].options",
        "fields[4].condition.field",
    ]


def test_a_field_dropped_for_a_bad_kind_is_not_reported_again_where_it_is_named() -> None:
    text = (
        BASE
        + _field("a", "nope")
        + _field("b", "text", 'condition = { field = "a", equals = ["x"] }\n')
    )
    assert _errors(text) == [
        "thu.toml: fields[1].kind: unknown kind 'nope' (expected one of: text, textarea, "
        "person_name, date, cccd, phone, email, integer, select, checkbox, address, file)"
    ]


# --- The folder -----------------------------------------------------------------------------------


def _write(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.toml").write_text(text.replace('code = "thu"', f'code = "{name}"'))


def test_a_folder_is_ordered_by_its_order_lines_then_by_code(tmp_path: Path) -> None:
    _write(tmp_path, "b", "# order: 20\n" + BASE)
    _write(tmp_path, "c", "# order: 5\n" + BASE)
    _write(tmp_path, "a", BASE)  # no order line: after the others
    catalog = load_catalog(tmp_path)
    assert catalog.codes() == ("c", "b", "a")


def test_the_problems_of_every_file_come_together(tmp_path: Path) -> None:
    _write(tmp_path, "tot", BASE)
    _write(tmp_path, "hong", BASE + _field("a", "foo"))
    _write(tmp_path, "khong-goi-duoc", BASE.replace('kind = "phone"', 'kind = "text"'))
    (tmp_path / "sai-ma.toml").write_bytes("code = 'sai-ma'\n# \xff".encode("latin-1"))
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    lines = str(caught.value).splitlines()
    assert any(line.startswith("hong.toml: fields[1].kind: unknown kind 'foo'") for line in lines)
    assert "khong-goi-duoc.toml: fields: needs a required phone field" in "\n".join(lines)
    assert "sai-ma.toml: not UTF-8 text" in "\n".join(lines)
    assert not any(line.startswith("tot.toml") for line in lines)


def test_authoring_rules_hold_files_to_more_than_stored_versions(tmp_path: Path) -> None:
    text = BASE + _field("a", "text", "min_value = 3\n")
    load_definition(text, "thu.toml")  # a stored version like this still loads
    assert [str(p) for p in authoring_problems(load_definition(text, "thu.toml"), "thu.toml")] == [
        "thu.toml: fields[1].min_value: does not apply to a text field"
    ]
    _write(tmp_path, "thu", text)
    with pytest.raises(CatalogError, match="fields\\[1\\].min_value"):
        load_catalog(tmp_path)


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no procedure files"):
        load_catalog(tmp_path)


def test_problem_reads_as_file_place_message() -> None:
    assert str(Problem("a.toml", "fee.kind", "x")) == "a.toml: fee.kind: x"
    assert str(Problem("a.toml", "", "x")) == "a.toml: x"


# --- The catalog object and the API shape ---------------------------------------------------


def test_catalog_is_a_read_only_ordered_lookup() -> None:
    assert CATALOG.get("khong-co") is None and "khong-co" not in CATALOG
    assert CATALOG.get("khai-sinh") is CATALOG["khai-sinh"] and "khai-sinh" in CATALOG
    assert len(CATALOG) == len(CATALOG.codes()) == len(list(CATALOG.items()))
    with pytest.raises(AttributeError):
        CATALOG._by_code = {}  # refused: read-only
    view = CATALOG.as_mapping()
    assert isinstance(view, Mapping) and list(view) == list(CATALOG.codes())
    with pytest.raises(TypeError):
        view["x"] = CATALOG["khai-sinh"]  # type: ignore[index]  # the point: it refuses
    with pytest.raises(ValueError, match="two definitions"):
        Catalog([CATALOG["khai-sinh"], CATALOG["khai-sinh"]])


@pytest.mark.parametrize("code", sorted(DOMAIN))
def test_api_shape_has_the_contract_keys(code: str) -> None:
    defn = CATALOG[code]
    data = definition_to_json(defn)
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    assert data["code"] == code and data["version"] == definition_version(defn)
    assert set(data["name"]) == {"vi", "en"}
    assert {"processing_days", "max_processing_days", "fee", "legal_basis", "documents"} <= set(
        data
    )
    assert {"in_person_result", "sections", "fields"} <= set(data)
    assert data["fee"]["kind"] == defn.fee.kind.value
    for item, fd in zip(data["fields"], defn.fields, strict=True):
        assert {"name", "kind", "required", "label"} <= set(item)
        assert (item["name"], item["kind"], item["required"]) == (
            fd.name,
            fd.kind.value,
            fd.required,
        )
        assert set(item["label"]) == {"vi", "en"}
        if fd.kind == FieldKind.SELECT:
            assert item["options"] == [
                {"value": o.value, "label": {"vi": o.label.vi, "en": o.label.en}}
                for o in fd.options
            ]
        else:
            assert "options" not in item


def test_api_shape_in_one_language() -> None:
    data = definition_to_json(CATALOG["khai-sinh"], lang_both=False, lang="en")
    assert data["name"] == "Birth registration"
    assert all(isinstance(f["label"], str) for f in data["fields"])
    child = next(f for f in data["fields"] if f["name"] == "tre_gioi_tinh")
    assert [o["label"] for o in child["options"]] == ["Male", "Female"]
    assert definition_to_json(CATALOG["khai-sinh"], lang_both=False)["name"] == "Đăng ký khai sinh"
