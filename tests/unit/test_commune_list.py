"""Reading the official list of administrative units (CSV) and planning what importing it changes:
plain values in and out, no database.

The 2025 reform in miniature: units renamed, merged into one that keeps its code, continuing
under a new code, and new ones; spreadsheets that drop leading zeros, use semicolons and
Vietnamese headers; lines that cannot be read are named by number.
"""

from __future__ import annotations

from core.communes import (
    ChangeKind,
    UnitRow,
    UnitState,
    plan_import,
    read_units_csv,
    slug_for,
)


def unit(id: int, code: str, name: str, *, active: bool = True, successor: int | None = None):
    return UnitState(id, code, name, "79", "Thành phố Hồ Chí Minh", active, successor, f"u{id}")


INSTALL = [
    unit(1, "27517", "Xã Nhuận Đức"),
    unit(2, "27520", "Xã Phạm Văn Cội"),
    unit(3, "27523", "Xã Trung Lập Hạ"),
    unit(4, "27526", "Xã Phú Hòa Đông"),
    unit(5, "27529", "Xã Tân Thạnh Đông"),
]


def row(line: int, code: str, name: str, *previous: str, province: str = "79") -> UnitRow:
    return UnitRow(line, code, name, province, "Thành phố Hồ Chí Minh", tuple(previous))


def test_the_official_list_with_vietnamese_headers_semicolons_and_lost_zeros() -> None:
    data = (
        "\ufeffMã xã;Tên xã;Mã tỉnh;Tên tỉnh;Mã cũ\r\n"
        "4;Phường Ba Đình;1;Thành phố Hà Nội;7 10\r\n"
        "27517;Xã  Nhuận Đức ;79;Thành phố Hồ Chí Minh;27520, 27523\r\n"
        ";;;;\r\n"
    ).encode()
    rows, problems = read_units_csv(data)
    assert problems == []
    assert rows == [
        UnitRow(2, "00004", "Phường Ba Đình", "01", "Thành phố Hà Nội", ("00007", "00010")),
        UnitRow(3, "27517", "Xã Nhuận Đức", "79", "Thành phố Hồ Chí Minh", ("27520", "27523")),
    ]


def test_unreadable_lines_are_named_by_number_and_the_rest_is_read() -> None:
    data = (
        "ma_xa,ten_xa,ma_tinh,ten_tinh\n"
        "275170,Xã Sai Mã,79,TP HCM\n"
        "27517,,79,TP HCM\n"
        "27520,Xã Đúng,79,TP HCM\n"
    ).encode()
    rows, problems = read_units_csv(data)
    assert [r.code for r in rows] == ["27520"]
    assert [p.line for p in problems] == [2, 3]
    assert "không đủ 5 chữ số" in problems[0].message.vi
    assert "thiếu tên xã" in problems[1].message.vi


def test_a_file_without_the_columns_or_not_utf8_is_refused_whole() -> None:
    rows, problems = read_units_csv(b"code;ten\n27517;X\n")
    assert rows == [] and "ma_tinh" in problems[0].message.vi
    rows, problems = read_units_csv("ma_xa,ten_xa,ma_tinh,ten_tinh\n1,Xã,79,X\n".encode("cp1252"))
    assert rows == [] and "UTF-8" in problems[0].message.vi


def test_a_merge_into_a_unit_that_keeps_its_code_and_name() -> None:
    plan = plan_import([row(2, "27517", "Xã Nhuận Đức", "27517", "27520", "27523")], INSTALL)
    assert plan.ok
    merges = [(c.kind, c.code, c.successor_code) for c in plan.changes]
    assert merges == [
        (ChangeKind.MERGE, "27520", "27517"),
        (ChangeKind.MERGE, "27523", "27517"),
    ]
    assert plan.not_listed == ("Xã Phú Hòa Đông (27526)", "Xã Tân Thạnh Đông (27529)")


def test_a_new_code_continues_the_first_previous_unit_and_absorbs_the_others() -> None:
    plan = plan_import([row(2, "27500", "Xã Nhuận Đức", "27517", "27520")], INSTALL)
    assert [(c.kind, c.commune_id) for c in plan.changes] == [
        (ChangeKind.RECODE, 1),
        (ChangeKind.MERGE, 2),
    ]
    assert plan.changes[0].new_code == "27500"
    assert plan.changes[1].successor_code == "27500"


def test_rename_new_province_and_new_unit() -> None:
    plan = plan_import(
        [
            row(2, "27526", "Xã Phú Hòa"),
            row(3, "27529", "Xã Tân Thạnh Đông", province="80"),
            row(4, "27600", "Xã Tân Thông Hội"),
        ],
        INSTALL,
    )
    assert [c.kind for c in plan.changes] == [
        ChangeKind.RENAME,
        ChangeKind.PROVINCE,
        ChangeKind.ADD,
    ]
    assert plan.changes[1].province_code == "80"
    assert "Thêm Xã Tân Thông Hội (27600)" in plan.changes[2].describe().vi


def test_only_existing_communes_leaves_new_units_out() -> None:
    plan = plan_import([row(2, "27600", "Xã Mới", "99999")], INSTALL, add_new=False)
    assert plan.changes == () and plan.skipped_new == 1


def test_an_unchanged_list_changes_nothing() -> None:
    rows = [row(i + 2, u.code, u.name) for i, u in enumerate(INSTALL)]
    plan = plan_import(rows, INSTALL)
    assert plan.changes == () and plan.unchanged == 5 and plan.not_listed == ()


def test_a_unit_on_two_lines_is_a_problem() -> None:
    plan = plan_import(
        [row(2, "27517", "Xã Nhuận Đức", "27520"), row(3, "27526", "Xã Phú Hòa Đông", "27520")],
        INSTALL,
    )
    assert not plan.ok
    assert plan.problems[0].line == 3 and "đã xuất hiện ở dòng 2" in plan.problems[0].message.vi
    repeated = plan_import([row(2, "27517", "A"), row(3, "27517", "B")], INSTALL)
    assert "trùng với dòng 2" in repeated.problems[0].message.vi


def test_an_inactive_commune_is_not_reopened_by_an_import() -> None:
    install = [*INSTALL, unit(6, "27532", "Xã Cũ", active=False, successor=1)]
    plan = plan_import([row(2, "27532", "Xã Cũ")], install)
    assert not plan.ok and "đã ngừng hoạt động" in plan.problems[0].message.vi
    # Already merged into the same unit: nothing to do.
    again = plan_import([row(2, "27517", "Xã Nhuận Đức", "27532")], install)
    assert again.ok and again.changes == ()


def test_the_fingerprint_follows_the_install_and_the_plan() -> None:
    rows = [row(2, "27517", "Xã Nhuận Đức Mới")]
    first = plan_import(rows, INSTALL).fingerprint
    assert plan_import(rows, INSTALL).fingerprint == first
    changed = [unit(1, "27517", "Xã Nhuận Đức (sửa)"), *INSTALL[1:]]
    assert plan_import(rows, changed).fingerprint != first


def test_a_slug_from_the_name_without_its_kind() -> None:
    assert slug_for("Xã Nhuận Đức", "27517", set()) == "nhuan-duc"
    assert slug_for("Phường Bến Thành", "26740", set()) == "ben-thanh"
    assert slug_for("Đặc khu Côn Đảo", "26550", set()) == "con-dao"
    assert slug_for("Xã Nhuận Đức", "27517", {"nhuan-duc"}) == "nhuan-duc-27517"
