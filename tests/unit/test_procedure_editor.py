"""The procedure editor refuses a definition that could not work, and says why in Vietnamese and
English at the input concerned; its operations (add, move, remove, rename) keep drafts coherent.

Drafts are edited the way the pages do it (core.procedure_editor's form functions), starting from
a small valid procedure, so each test breaks exactly one thing.
"""

from __future__ import annotations

from typing import Any

import pytest

from core import procedure_editor as editor
from procedures.catalog import CatalogError, Problem, load_definition

BASE = """\
code = "thu"
name = { vi = "Thử", en = "Test" }
legal_basis = ["Luật Hộ tịch 60/2014/QH13"]
documents = [{ vi = "Căn cước", en = "ID card" }]
processing_days = 0
max_processing_days = 2
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

[[fields]]
name = "quan_he"
kind = "select"
label = { vi = "Quan hệ", en = "Relationship" }
options = [{ value = "me", label = { vi = "Mẹ", en = "Mother" } }]
"""


def base() -> editor.Draft:
    return editor.draft_of(load_definition(BASE, "thu"))


def add(draft: editor.Draft, kind: str, vi: str, name: str = "", **extra: str) -> editor.Draft:
    form = {
        "new.kind": [kind],
        "new.label.vi": [vi],
        "new.label.en": [vi + " (en)"],
        "new.name": [name],
        **{k: [v] for k, v in extra.items()},
    }
    out, index, errors = editor.add_field(draft, form)
    assert errors == {} and index is not None
    return out


def edit_field(draft: editor.Draft, index: int, **changes: Any) -> editor.Draft:
    form = editor.field_form(draft, index)
    for key, value in changes.items():
        name = key.replace("__", ".")
        if value is None:
            form.pop(name, None)
        else:
            form[name] = value if isinstance(value, list) else [value]
    return editor.apply_field(draft, index, form)


def edit_overview(draft: editor.Draft, **changes: Any) -> editor.Draft:
    form = editor.overview_form(draft)
    for key, value in changes.items():
        name = key.replace("__", ".")
        if value is None:
            form.pop(name, None)
        else:
            form[name] = value if isinstance(value, list) else [value]
    return editor.apply_overview(draft, form)


def problems(draft: editor.Draft) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in editor.check(draft).problems:
        out.setdefault(p.key, []).append(p.message.vi)
    return out


def test_the_base_is_valid() -> None:
    assert editor.check(base()).ok


# --- What could not work is refused, at its input -------------------------------------------------


def test_two_fields_with_one_name() -> None:
    draft = add(base(), "text", "Họ tên", name="ho_ten")
    draft = add(draft, "text", "Họ và tên", name="ho_va_ten")
    draft = edit_field(draft, 3, name="ho_ten")
    found = problems(draft)
    assert found == {"fields.3.name": [found["fields.3.name"][0]]}
    assert "«ho_ten» đã dùng cho một ô khác ở phía trên" in found["fields.3.name"][0]
    assert not editor.check(draft).ok


def test_a_condition_on_a_field_that_is_not_there() -> None:
    draft = add(base(), "text", "Tên cha", name="ten_cha")
    draft = edit_field(draft, 2, condition__field="co_cha", condition__equals="on")
    found = problems(draft)
    assert list(found) == ["fields.2.condition.field"]
    assert "Điều kiện dựa vào ô «co_cha»" in found["fields.2.condition.field"][0]


def test_a_condition_on_a_field_below() -> None:
    draft = add(base(), "text", "Tên cha", name="ten_cha")
    draft = add(draft, "checkbox", "Có cha", name="co_cha")
    draft = edit_field(draft, 2, condition__field="co_cha", condition__equals="on")
    assert "phía trên không có ô nào" in problems(draft)["fields.2.condition.field"][0]
    fixed = editor.move_field(draft, 3, -1)  # the checkbox above the field it controls
    assert editor.check(fixed).ok


def test_a_condition_value_that_is_not_an_option() -> None:
    draft = add(base(), "text", "Ghi chú", name="ghi_chu")
    draft = edit_field(draft, 2, condition__field="quan_he", condition__equals="cha")
    message = problems(draft)["fields.2.condition.equals"][0]
    assert message == "«cha» không phải là một lựa chọn của ô «quan_he» (các lựa chọn: me)."


def test_a_tick_box_condition_must_be_on() -> None:
    draft = add(base(), "checkbox", "Có cha", name="co_cha")
    draft = add(draft, "text", "Tên cha", name="ten_cha")
    draft = edit_field(draft, 3, condition__field="co_cha", condition__equals="co")
    assert "Xin ghi on" in problems(draft)["fields.3.condition.equals"][0]
    assert editor.check(edit_field(draft, 3, condition__equals="on")).ok


def test_a_condition_with_no_value() -> None:
    draft = add(base(), "text", "Ghi chú", name="ghi_chu")
    draft = edit_field(draft, 2, condition__field="quan_he", condition__equals="")
    assert "Ghi ít nhất một giá trị" in problems(draft)["fields.2.condition.equals"][0]


def test_a_select_without_options() -> None:
    draft = add(base(), "select", "Giới tính", name="gioi_tinh")
    assert problems(draft) == {
        "fields.2.options": ["Ô chọn từ danh sách cần ít nhất một lựa chọn."]
    }
    draft = edit_field(
        draft,
        2,
        **{"options.0.value": "nam", "options.0.label.vi": "Nam", "options.0.label.en": "Male"},
    )
    assert editor.check(draft).ok


def test_an_option_half_filled_and_two_options_with_one_value() -> None:
    draft = edit_field(
        base(),
        1,
        **{"options.1.value": "me", "options.1.label.vi": "Mẹ kế", "options.1.label.en": ""},
    )
    found = problems(draft)
    assert found["fields.1.options.1.label.en"] == ["Không được để trống."]
    draft = edit_field(draft, 1, **{"options.1.label.en": "Stepmother"})
    assert "Hai lựa chọn cùng giá trị «me»" in problems(draft)["fields.1.options"][0]


def test_a_name_the_citizens_form_uses_itself() -> None:
    draft = add(base(), "text", "Đồng ý", name="dong_y")
    draft = edit_field(draft, 2, name="consent")
    assert "biểu mẫu dùng riêng" in problems(draft)["fields.2.name"][0]
    _, _, errors = editor.add_field(
        base(),
        {"new.kind": ["text"], "new.label.vi": ["X"], "new.label.en": ["X"], "new.name": ["draft"]},
    )
    assert "biểu mẫu dùng riêng" in errors["new.name"].vi


def test_a_name_that_is_not_a_name() -> None:
    draft = edit_field(base(), 0, name="Điện thoại")
    assert "phải bắt đầu bằng chữ thường" in problems(draft)["fields.0.name"][0]


def test_a_label_left_empty_in_english() -> None:
    draft = edit_field(base(), 0, label__en="")
    assert problems(draft)["fields.0.label.en"] == ["Không được để trống."]


def test_a_number_typed_in_words_is_kept_and_refused() -> None:
    draft = edit_overview(base(), processing_days="ba")
    assert draft["processing_days"] == "ba"  # nothing typed is lost
    assert editor.overview_form(draft)["processing_days"] == ["ba"]
    assert problems(draft)["processing_days"] == ["Phải là một số nguyên, ví dụ 3."]


def test_a_time_above_the_legal_maximum() -> None:
    draft = edit_overview(base(), processing_days="5")
    assert "ngắn hơn thời hạn giải quyết (5 ngày)" in problems(draft)["max_processing_days"][0]


def test_a_fee_per_copy_without_the_field_for_copies() -> None:
    draft = edit_overview(base(), fee__kind="per_copy", fee__amount="8.000 đ")
    assert draft["fee"]["amount"] == 8000
    message = problems(draft)["fee.quantity_field"][0]
    assert "cần một ô số nguyên để người dân ghi số bản" in message
    assert "«Theo số bản»" in message


def test_a_fixed_fee_without_amount_and_a_free_fee_with_one() -> None:
    assert (
        "cần mức tiền lớn hơn 0"
        in problems(edit_overview(base(), fee__kind="fixed"))["fee.amount"][0]
    )
    assert (
        "không ghi mức tiền" in problems(edit_overview(base(), fee__amount="2000"))["fee.amount"][0]
    )


def test_an_id_checked_against_a_field_of_the_wrong_kind() -> None:
    draft = add(base(), "cccd", "Số định danh", name="so_dinh_danh")
    draft = edit_field(draft, 2, birth_date_field="dien_thoai")
    message = problems(draft)["fields.2.birth_date_field"][0]
    assert message.startswith("Ô «dien_thoai» là «Số điện thoại di động», không phải «Ngày")


def test_no_phone_field_so_nobody_can_call_back() -> None:
    draft = editor.remove_field(base(), 0)
    assert "Cần một ô số điện thoại bắt buộc" in problems(draft)["fields"][0]


def test_a_section_nobody_uses_and_a_field_outside_every_section() -> None:
    draft = edit_overview(
        base(),
        **{
            "sections.0.name": "nguoi_yeu_cau",
            "sections.0.title.vi": "Người yêu cầu",
            "sections.0.title.en": "Requester",
        },
    )
    found = problems(draft)
    assert "Chưa có ô nào thuộc phần «nguoi_yeu_cau»" in found["sections.0"][0]
    assert "Chọn phần của biểu mẫu cho ô này" in found["fields.0.section"][0]


def test_every_problem_is_said_in_both_languages_with_a_place() -> None:
    draft = add(base(), "select", "Giới tính", name="gioi_tinh")
    draft = edit_field(draft, 2, name="consent")
    draft = edit_overview(draft, processing_days="ba", name__en="")
    checked = editor.check(draft)
    assert not checked.ok
    for p in checked.problems:
        assert p.message.vi and p.message.en and p.message.vi != p.message.en
        assert editor.where(p.key, draft).vi


# --- Every problem the catalog can report is explained --------------------------------------------


def _field(name: str, kind: str, extra: str = "") -> str:
    return (
        f'\n[[fields]]\nname = "{name}"\nkind = "{kind}"\nlabel = {{ vi = "A", en = "A" }}\n{extra}'
    )


BROKEN_FILES = {
    "unknown kind": BASE + _field("a", "foo"),
    "unknown key": BASE.replace("retention_days = 30", 'retention_days = 30\ncolour = "red"'),
    "misspelt key": BASE + _field("a", "text", "requried = true\n"),
    "bad TOML": BASE + "\n[[fields]\n",
    "wrong type": BASE.replace("retention_days = 30", 'retention_days = "30"'),
    "not a boolean": BASE.replace("in_person_result = true", 'in_person_result = "có"'),
    "missing agency": BASE.replace('agency = "ubnd"\n', ""),
    "unknown agency": BASE.replace('agency = "ubnd"', 'agency = "xa"'),
    "half a label": BASE.replace('name = { vi = "Thử", en = "Test" }', 'name = { vi = "Thử" }'),
    "label not a table": BASE.replace('name = { vi = "Thử", en = "Test" }', 'name = "Thử"'),
    "laws not a list": BASE.replace('["Luật Hộ tịch 60/2014/QH13"]', '"Luật"'),
    "blank law": BASE.replace('["Luật Hộ tịch 60/2014/QH13"]', '["Luật", " ", 3]'),
    "bad code": BASE.replace('code = "thu"', 'code = "Thu Tuc"'),
    "bad tag": BASE.replace("retention_days = 30", 'retention_days = 30\ntags = ["Hộ tịch"]'),
    "negative time": BASE.replace("processing_days = 0", "processing_days = -1", 1),
    "no retention": BASE.replace("retention_days = 30", "retention_days = 0"),
    "unknown fee kind": BASE.replace('kind = "free"', 'kind = "gratis"'),
    "negative fee": BASE.replace('kind = "free"', 'kind = "fixed"\namount = -5'),
    "cap below a page": BASE.replace(
        '[fee]\nkind = "free"',
        '[fee]\nkind = "per_page"\namount = 2000\ncap_per_copy = 1000\nquantity_field = "so"\n'
        'pages_field = "so"\nlater_pages_from = 1',
    )
    + _field("so", "integer", "required = true\nmin_value = 1\n"),
    "page rule on a fixed fee": BASE.replace(
        '[fee]\nkind = "free"', '[fee]\nkind = "fixed"\namount = 1000\nlater_page_amount = 5'
    ),
    "copies on a fixed fee": BASE.replace(
        '[fee]\nkind = "free"', '[fee]\nkind = "fixed"\namount = 1000\nquantity_field = "x"'
    ),
    "copies field missing": BASE.replace(
        '[fee]\nkind = "free"', '[fee]\nkind = "per_copy"\namount = 1000\nquantity_field = "x"'
    ),
    "on-time window without days": BASE.replace(
        '[fee]\nkind = "free"', '[fee]\nkind = "free"\nfree_if_on_time = true\non_time_field = "x"'
    ),
    "on-time days without the rule": BASE.replace(
        '[fee]\nkind = "free"', '[fee]\nkind = "free"\non_time_days = 3'
    ),
    "per commune without a note": BASE.replace('kind = "free"', 'kind = "per_commune"'),
    "option with spaces": BASE.replace('value = "me"', 'value = " me "'),
    "options on a text": BASE
    + _field("a", "text", 'options = [{ value = "x", label = { vi = "X", en = "X" } }]\n'),
    "limits the wrong way": BASE + _field("a", "text", "min_length = 5\nmax_length = 2\n"),
    "value limits the wrong way": BASE + _field("a", "integer", "min_value = 5\nmax_value = 2\n"),
    "limit below one": BASE + _field("a", "text", "max_length = 0\n"),
    "limit that does not apply": BASE + _field("a", "date", "max_length = 20\n"),
    "too many files": BASE + _field("a", "file", "max_files = 30\n"),
    "no file type": BASE + _field("a", "file", "accept = []\n"),
    "a file type twice": BASE + _field("a", "file", 'accept = ["image/png", "image/png"]\n'),
    "unknown file type": BASE + _field("a", "file", 'accept = ["image/gif"]\n'),
    "condition on a file": BASE
    + _field("a", "file")
    + _field("b", "text", 'condition = { field = "a", equals = ["x"] }\n'),
    "ID link on a text": BASE + _field("a", "text", 'birth_date_field = "dien_thoai"\n'),
    "CMND on a text": BASE + _field("a", "text", "allow_cmnd = true\n"),
    "ID link to nothing": BASE + _field("a", "cccd", 'birth_date_field = "khong"\n'),
    "sex with other values": BASE + _field("a", "cccd", 'sex_field = "quan_he"\n'),
    "undeclared section": BASE + _field("a", "text", 'section = "me"\n'),
    "copies not required": BASE.replace(
        '[fee]\nkind = "free"', '[fee]\nkind = "per_copy"\namount = 1000\nquantity_field = "so"'
    )
    + _field("so", "integer"),
    "two sections with one name": BASE.replace(
        "[fee]",
        '[[sections]]\nname = "me"\ntitle = { vi = "Mẹ", en = "Mother" }\n'
        '[[sections]]\nname = "me"\ntitle = { vi = "Mẹ", en = "Mother" }\n[fee]',
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_FILES))
def test_every_problem_of_a_broken_file_is_explained_in_vietnamese(case: str) -> None:
    with pytest.raises(editor.ImportRefused) as refused:
        editor.import_toml(BROKEN_FILES[case])
    assert refused.value.problems
    for p in refused.value.problems:
        assert not p.message.vi.startswith("Không hợp lệ:"), (case, p)  # no fallback
        assert not p.message.en.startswith("Not valid:"), (case, p)


def test_an_unknown_problem_still_shows_the_loaders_words() -> None:
    explained = editor.explain(Problem("draft", "fields[2].kind", "something new"))
    assert explained.key == "fields.2.kind" and explained.field_index == 2
    assert explained.local_key == "kind"
    assert explained.message.vi == "Không hợp lệ: something new."


def test_a_file_too_large_or_not_toml_is_refused_whole() -> None:
    with pytest.raises(editor.ImportRefused) as refused:
        editor.import_toml("x" * (editor.MAX_TOML_BYTES + 1))
    assert "Tệp quá lớn" in refused.value.problems[0].message.vi
    with pytest.raises(editor.ImportRefused) as refused:
        editor.import_toml("code = ")
    assert refused.value.problems[0].message.vi.startswith("Tệp không đúng định dạng TOML")


def test_a_draft_of_another_shape_is_refused_not_crashed() -> None:
    assert not editor.check({"fields": 5}).ok
    with pytest.raises(CatalogError):
        load_definition("fields = 5", "x")


# --- Operations -----------------------------------------------------------------------------------


def test_a_new_field_gets_a_name_from_its_label_and_its_place() -> None:
    draft, index, errors = editor.add_field(
        base(),
        {
            "new.kind": ["text"],
            "new.label.vi": ["Số nhà, tên đường"],
            "new.label.en": ["House number"],
            "new.after": ["-1"],
        },
    )
    assert errors == {} and index == 0
    assert editor.fields_of(draft)[0]["name"] == "so_nha_ten_duong"
    assert editor.suggest_name("Đồng ý", ["dong_y"]) == "dong_y_2"
    assert editor.suggest_name("3 bản", []) == "o_3_ban"


def test_a_new_field_needs_a_kind_labels_and_a_free_name() -> None:
    draft, index, errors = editor.add_field(
        base(), {"new.kind": ["nope"], "new.label.vi": [""], "new.name": ["dien_thoai"]}
    )
    assert index is None and draft == base()
    assert set(errors) == {"new.kind", "new.label.vi", "new.label.en", "new.name"}
    assert errors["new.label.vi"].vi.startswith("Xin nhập nhãn tiếng Việt")


def test_moving_and_removing_fields() -> None:
    draft = add(base(), "text", "Ghi chú", name="ghi_chu")
    names = lambda d: [f["name"] for f in editor.fields_of(d)]  # noqa: E731
    assert names(editor.move_field(draft, 2, -1)) == ["dien_thoai", "ghi_chu", "quan_he"]
    assert names(editor.move_field(draft, 0, -1)) == names(draft)  # already first
    assert names(editor.remove_field(draft, 1)) == ["dien_thoai", "ghi_chu"]
    assert names(draft) == ["dien_thoai", "quan_he", "ghi_chu"]  # the draft itself unchanged


def test_renaming_a_field_takes_its_conditions_and_the_fee_along() -> None:
    draft = add(base(), "integer", "Số bản", name="so_ban")
    draft = edit_field(draft, 2, required="on", min_value="1", max_value="20")
    draft = add(draft, "text", "Ghi chú", name="ghi_chu")
    draft = edit_field(draft, 3, condition__field="quan_he", condition__equals="me")
    draft = edit_overview(
        draft, fee__kind="per_copy", fee__amount="8000", fee__quantity_field="so_ban"
    )
    assert editor.check(draft).ok
    draft = edit_field(draft, 1, name="moi_quan_he")
    draft = edit_field(draft, 2, name="so_ban_sao")
    assert editor.fields_of(draft)[3]["condition"]["field"] == "moi_quan_he"
    assert draft["fee"]["quantity_field"] == "so_ban_sao"
    assert editor.check(draft).ok


def test_a_new_procedure_starts_as_a_draft_with_what_to_fill_in() -> None:
    draft, errors = editor.new_draft("Xác nhận", "", "Confirmation")
    assert set(errors) == {"code", "name.vi"}
    draft, errors = editor.new_draft("xac-nhan-cu-tru", "Xác nhận cư trú", "Residence")
    assert errors == {}
    assert "Cần một ô số điện thoại bắt buộc" in problems(draft)["fields"][0]


def test_a_fields_page_shows_the_groups_of_its_kind_and_any_with_a_value() -> None:
    draft = add(base(), "text", "Họ tên", name="ho_ten")
    assert editor.field_groups(editor.fields_of(draft)[2]) == ["length"]
    draft = edit_field(draft, 2, kind="date", max_length="20")
    assert editor.field_groups(editor.fields_of(draft)[2]) == ["length", "date"]
    assert "không dùng cho ô kiểu" in problems(draft)["fields.2.max_length"][0].lower()
