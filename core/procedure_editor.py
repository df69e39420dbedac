"""The procedure editor (soạn thảo thủ tục): a definition as an administrator edits it.

Laws change the declaration forms (tờ khai), provinces set their own fees: a commune admin edits
the commune's own version of a procedure, a province admin the shared catalog, without a
programmer. What they edit is a *draft* (bản nháp): the definition in the catalog file's own shape
(the plain data `procedures.catalog.definition_to_dict` writes and `definition_from_dict` reads),
kept even while it is broken. A number typed as "abc" stays "abc" in the draft until it is fixed,
so nothing typed is ever lost between two pages.

Checking a draft runs the catalog's own loader, which reports every problem with its path
(`fields[3].options`), then the editor's checks of what the citizen's form needs on top (a name
the form itself uses, a condition no answer can meet, a file field that accepts nothing). Each
problem is said in Vietnamese and English and carries the key of the form input it concerns, so
the page shows it beside that input.

The editor's forms read and write the draft: `overview_form` / `field_form` give what a browser
would post for an unchanged page, `apply_overview` / `apply_field` read a posted page back, so an
unchanged page changes nothing. Export writes the catalog's TOML file format, import reads it, and
`import_toml(export_toml(d)) == d` for every definition (the catalog's round trip).

Plain Python: no Flask, no database. Forms come in as `{name: [values]}`, the shape of a posted
HTML form.
"""

from __future__ import annotations

import copy
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.text import Message
from procedures.catalog import (
    AGENCIES,
    CatalogError,
    Problem,
    authoring_problems,
    definition_from_dict,
    definition_to_dict,
    dump_definition,
)
from procedures.schema import FeeKind, FieldKind, ProcedureDefinition

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")  # a field's name, as the catalog requires
CODE_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")  # a procedure's code
Draft = dict[str, Any]  # a definition in the catalog file's shape, possibly broken
FormData = Mapping[str, Sequence[str]]  # a posted HTML form: every name with its values

SOURCE = "draft"  # what the catalog's problems name as their source
BLANK_ROWS = 2  # empty rows offered under documents, sections and options, to add more
MAX_NAME = 64  # attachments store a field name in 64 characters (storage.models.Attachment)
MAX_CODE = 64  # procedure versions store the code in 64 characters
MAX_TOML_BYTES = 512 * 1024  # the largest catalog file is a few kilobytes

# Names the citizen's form (templates/kiosk/form.html) posts beside the fields: a field with one
# of these names would be overwritten by it, or overwrite it.
RESERVED_NAMES = frozenset(
    {"csrf_token", "draft", "started", "poster", "consent", "remove_file", "lang"}
)

KIND_LABELS: dict[FieldKind, Message] = {
    FieldKind.TEXT: Message("Chữ (một dòng)", "Text (one line)"),
    FieldKind.TEXTAREA: Message("Đoạn văn (nhiều dòng)", "Paragraph (several lines)"),
    FieldKind.PERSON_NAME: Message("Họ và tên", "Person's full name"),
    FieldKind.DATE: Message("Ngày (ngày/tháng/năm)", "Date (day/month/year)"),
    FieldKind.CCCD: Message("Số định danh cá nhân (căn cước)", "Personal ID number"),
    FieldKind.PHONE: Message("Số điện thoại di động", "Mobile phone number"),
    FieldKind.EMAIL: Message("Thư điện tử", "Email"),
    FieldKind.INTEGER: Message("Số nguyên", "Whole number"),
    FieldKind.SELECT: Message("Chọn từ danh sách", "Choice from a list"),
    FieldKind.CHECKBOX: Message("Ô đánh dấu", "Tick box"),
    FieldKind.ADDRESS: Message("Địa chỉ", "Address"),
    FieldKind.FILE: Message("Tệp đính kèm (ảnh, PDF)", "Attached file (photo, PDF)"),
}

FEE_KIND_LABELS: dict[FeeKind, Message] = {
    FeeKind.FREE: Message("Miễn phí", "Free"),
    FeeKind.FIXED: Message("Một mức cho mỗi hồ sơ", "One amount per dossier"),
    FeeKind.PER_COPY: Message("Theo số bản", "Per copy"),
    FeeKind.PER_PAGE: Message("Theo số trang (chứng thực bản sao)", "Per page (certified copies)"),
    FeeKind.PER_COMMUNE: Message(
        "Theo nghị quyết của tỉnh (xã nhập mức)", "Set by the province (the commune enters it)"
    ),
}

AGENCY_LABELS: dict[str, Message] = {
    "ubnd": Message("UBND xã", "Commune People's Committee"),
    "cong-an": Message("Công an xã", "Commune police"),
}

ACCEPT_LABELS: dict[str, Message] = {
    "image/jpeg": Message("Ảnh JPEG", "JPEG photo"),
    "image/png": Message("Ảnh PNG", "PNG image"),
    "application/pdf": Message("Tệp PDF", "PDF file"),
}
DEFAULT_ACCEPT = ("image/jpeg", "image/png", "application/pdf")

# Optional groups of a field's inputs, and the kinds they belong to. A group is shown for its
# kinds, and for any field that already has a value in it (so an import is never cut short).
LENGTH_KINDS = frozenset(
    {
        FieldKind.TEXT,
        FieldKind.TEXTAREA,
        FieldKind.ADDRESS,
        FieldKind.PERSON_NAME,
        FieldKind.EMAIL,
    }
)
GROUPS: dict[str, tuple[str, ...]] = {
    "length": ("min_length", "max_length"),
    "range": ("min_value", "max_value"),
    "date": ("past_only", "max_age_days"),
    "cccd": ("allow_cmnd", "birth_date_field", "sex_field"),
    "options": ("options",),
    "file": ("accept", "max_files"),
}
_GROUP_KINDS: dict[str, frozenset[FieldKind]] = {
    "length": LENGTH_KINDS,
    "range": frozenset({FieldKind.INTEGER}),
    "date": frozenset({FieldKind.DATE}),
    "cccd": frozenset({FieldKind.CCCD}),
    "options": frozenset({FieldKind.SELECT}),
    "file": frozenset({FieldKind.FILE}),
}


class ImportRefused(Exception):
    """A file that cannot replace the draft; `problems` says everything that is wrong with it."""

    def __init__(self, problems: Sequence[EditorProblem]) -> None:
        super().__init__("; ".join(p.message.en for p in problems))
        self.problems = tuple(problems)


# --- Problems, said where they are ----------------------------------------------------------------


@dataclass(frozen=True)
class EditorProblem:
    """One thing that keeps a draft from working.

    `key` names the form input it concerns, in the draft's own terms: "name.vi", "fee.amount",
    "documents.1.en", "fields.3.options.0.value"; "" for the definition as a whole.
    """

    key: str
    message: Message

    @property
    def field_index(self) -> int | None:
        """The field (ô) the problem belongs to, if any."""
        match = re.match(r"fields\.(\d+)(\.|$)", self.key)
        return int(match.group(1)) if match else None

    @property
    def local_key(self) -> str:
        """The key on the field's own page ("label.vi"), or the key itself."""
        if self.field_index is None:
            return self.key
        return re.sub(r"^fields\.\d+\.?", "", self.key)


@dataclass(frozen=True)
class Checked:
    """A checked draft: the definition it makes (None when the loader refused it) and what is
    wrong. Only a draft with a definition and no problem can be published."""

    definition: ProcedureDefinition | None
    problems: tuple[EditorProblem, ...]

    @property
    def ok(self) -> bool:
        return self.definition is not None and not self.problems

    def by_key(self) -> dict[str, list[Message]]:
        out: dict[str, list[Message]] = {}
        for p in self.problems:
            out.setdefault(p.key, []).append(p.message)
        return out

    def of_field(self, index: int) -> list[EditorProblem]:
        return [p for p in self.problems if p.field_index == index]

    def outside_fields(self) -> list[EditorProblem]:
        return [p for p in self.problems if p.field_index is None]


def problem_key(path: str) -> str:
    """A catalog path ("fields[3].options[0].label.vi") as a form key ("fields.3.options.0...")."""
    return re.sub(r"\[(\d+)\]", r".\1", path).strip(".")


_KIND_NAMES_VI = {k.value: v.vi for k, v in KIND_LABELS.items()}
_KIND_NAMES_EN = {k.value: v.en for k, v in KIND_LABELS.items()}
_FEE_NAMES_VI = {k.value: v.vi for k, v in FEE_KIND_LABELS.items()}
_FEE_NAMES_EN = {k.value: v.en for k, v in FEE_KIND_LABELS.items()}

# The catalog loader's problems (procedures.catalog), said for an administrator using the editor
# rather than a file: each entry is a pattern over the loader's English message and the sentences
# to show in Vietnamese and English, where `{0}`, `{1}` … are the pattern's groups. A group named
# `kind…` holds field kinds ("date or integer") and `fee…` a fee rule: both are shown by the names
# the editor's lists use. The first pattern that matches wins.
_EXPLAINED: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern), vi, en)
    for pattern, vi, en in (
        # Reading
        (r"^missing$", "Chưa nhập: xin điền vào đây.", "Missing: please fill this in."),
        (
            r"^missing \(this procedure groups its fields in sections\)$",
            "Chọn phần của biểu mẫu cho ô này: thủ tục này xếp các ô theo từng phần.",
            "Choose the form section of this field: this procedure groups its fields.",
        ),
        (r"^must not be empty$", "Không được để trống.", "Must not be empty."),
        (
            r"^must not begin or end with a space$",
            "Không được có dấu cách ở đầu hay cuối.",
            "Must not begin or end with a space.",
        ),
        (
            r"^expected a whole number, got .*$",
            "Phải là một số nguyên, ví dụ 3.",
            "Must be a whole number, e.g. 3.",
        ),
        (
            r"^expected true or false, got .*$",
            "Phải là có (true) hoặc không (false).",
            "Must be true or false.",
        ),
        (r"^expected text in quotes, got .*$", "Phải là chữ.", "Must be text."),
        (
            r"^expected a table .*$",
            "Sai cấu trúc: ở đây phải là một bảng {{ … }}.",
            "Wrong structure: a table {{ … }} is expected here.",
        ),
        (
            r"^expected a list .*$",
            "Sai cấu trúc: ở đây phải là một danh sách [ … ].",
            "Wrong structure: a list [ … ] is expected here.",
        ),
        (
            r"^unknown key '(.*)' \((?:did you mean '(.*)'\?|expected one of: (.*))\)$",
            "Mẫu tệp thủ tục không có mục «{0}»{1}{2}.",
            "The procedure file format has no '{0}'{1}{2}.",
        ),
        (
            r"^not valid TOML: (.*)$",
            "Tệp không đúng định dạng TOML ({0}).",
            "The file is not valid TOML ({0}).",
        ),
        # Names and codes
        (
            r"^'(.*)' must start with a lower-case letter and use only a–z, 0–9 and _$",
            "Tên «{0}» phải bắt đầu bằng chữ thường và chỉ gồm chữ thường không dấu, chữ số và "
            "dấu gạch dưới, ví dụ ho_ten.",
            "The name '{0}' must start with a lower-case letter and use only a–z, 0–9 and _, "
            "e.g. ho_ten.",
        ),
        (
            r"^'(.*)' must use only a–z, 0–9 and single dashes$",
            "«{0}» chỉ được gồm chữ thường không dấu, chữ số và từng dấu gạch ngang, ví dụ "
            "khai-sinh.",
            "'{0}' may use only a–z, 0–9 and single dashes, e.g. khai-sinh.",
        ),
        (
            r"^'(.*)' must be the file name without \.toml \('(.*)'\)$",
            "Mã «{0}» phải trùng tên tệp «{1}».",
            "The code '{0}' must match the file name '{1}'.",
        ),
        (
            r"^unknown kind '(.*)' \(expected one of: .*\)$",
            "Không có kiểu ô «{0}»: xin chọn một kiểu trong danh sách.",
            "There is no field kind '{0}': choose one from the list.",
        ),
        (
            r"^unknown fee kind '(.*)' \(expected one of: .*\)$",
            "Không có cách tính lệ phí «{0}»: xin chọn trong danh sách.",
            "There is no fee rule '{0}': choose one from the list.",
        ),
        (
            r"^unknown file type '(.*)' \(expected one of: .*\)$",
            "Không nhận loại tệp «{0}»: chỉ nhận ảnh JPEG, PNG và tệp PDF.",
            "The file type '{0}' is not accepted: only JPEG, PNG and PDF.",
        ),
        (
            r"^unknown agency '(.*)' \(expected one of: .*\)$",
            "Cơ quan giải quyết phải là UBND xã hoặc Công an xã.",
            "The agency must be the commune People's Committee or the commune police.",
        ),
        # Sections and fields
        (
            r"^two sections are named '(.*)' \(also sections\[(\d+)\]\)$",
            "Hai phần của biểu mẫu cùng tên «{0}»: mỗi phần cần một tên riêng.",
            "Two form sections are named '{0}': each needs its own name.",
        ),
        (
            r"^duplicate field name '(.*)' \(also fields\[(\d+)\]\)$",
            "Tên «{0}» đã dùng cho một ô khác ở phía trên: mỗi ô cần một tên riêng.",
            "The name '{0}' is already used by a field above: each field needs its own.",
        ),
        (
            r"^no section named '(.*)' \(.*\)$",
            "Không có phần nào tên «{0}»: xin chọn một phần đã có.",
            "There is no form section named '{0}': choose an existing one.",
        ),
        (
            r"^no field belongs to section '(.*)'$",
            "Chưa có ô nào thuộc phần «{0}»: xếp ô vào phần này, hoặc xóa phần này.",
            "No field belongs to the section '{0}': put fields in it, or remove it.",
        ),
        (
            r"^a select needs at least one option$",
            "Ô chọn từ danh sách cần ít nhất một lựa chọn.",
            "A choice from a list needs at least one option.",
        ),
        (
            r"^two options have the value '(.*)'$",
            "Hai lựa chọn cùng giá trị «{0}»: mỗi lựa chọn cần một giá trị riêng.",
            "Two options have the value '{0}': each needs its own.",
        ),
        (
            r"^only a select has options, not a (?P<kind>.*) field$",
            "Chỉ ô «Chọn từ danh sách» mới có lựa chọn (ô này là {0}): xóa các lựa chọn, hoặc "
            "đổi kiểu ô.",
            "Only a choice from a list has options (this is {0}): clear them, or change the kind.",
        ),
        (
            r"^does not apply to a (?P<kind>.*) field$",
            "Không dùng cho ô kiểu {0}: xin để trống.",
            "Does not apply to {0}: leave it empty.",
        ),
        # Conditions
        (
            r"^list at least one value.*$",
            "Ghi ít nhất một giá trị làm ô này hiện ra.",
            "List at least one value that makes this field appear.",
        ),
        (
            r"^refers to '(.*)', which is not a field above this one$",
            "Điều kiện dựa vào ô «{0}», nhưng phía trên không có ô nào tên như vậy: xin chọn một "
            "ô đứng trước ô này.",
            "The condition depends on '{0}', but no field above has that name: choose a field "
            "that comes before this one.",
        ),
        (
            r"^'(.*)' is not an option of '(.*)' \(its options: (.*)\)$",
            "«{0}» không phải là một lựa chọn của ô «{1}» (các lựa chọn: {2}).",
            "'{0}' is not one of the options of '{1}' (its options: {2}).",
        ),
        (
            r"^a checkbox is either ticked or not: .*$",
            "Ô đánh dấu chỉ có một giá trị: on (đã đánh dấu). Xin ghi on.",
            "A tick box has one value only: on (ticked). Write on.",
        ),
        (
            r"^'(.*)' is a file field: it cannot control another$",
            "Ô «{0}» là tệp đính kèm: không thể làm điều kiện cho ô khác.",
            "'{0}' is an attached file: it cannot be another field's condition.",
        ),
        # Personal ID links
        (
            r"^only a cccd field is checked against a birth date or sex$",
            "Chỉ ô số định danh cá nhân mới được đối chiếu với ngày sinh hoặc giới tính.",
            "Only a personal ID number is checked against a birth date or sex.",
        ),
        (
            r"^only a cccd field can accept the old 9-digit CMND$",
            "Chỉ ô số định danh cá nhân mới nhận được số CMND 9 chữ số cũ.",
            "Only a personal ID number field can accept the old 9-digit CMND.",
        ),
        (
            r"^refers to '(.*)', which is not a field \((?P<kind>.*) expected\)$",
            "Không có ô nào tên «{0}»: xin chọn một ô kiểu {1}.",
            "There is no field named '{0}': choose {1}.",
        ),
        (
            r"^'(.*)' is a (?P<kind_is>.*) field, not a (?P<kind_wanted>.*)$",
            "Ô «{0}» là {1}, không phải {2}.",
            "'{0}' is {1}, not {2}.",
        ),
        (
            r"^the options of '(.*)' must be (.*)$",
            "Các lựa chọn của ô «{0}» phải là nam và nu để đối chiếu với số định danh.",
            "The options of '{0}' must be nam and nu, to be checked against the ID number.",
        ),
        # Limits
        (r"^must be (\d+) or more$", "Phải từ {0} trở lên.", "Must be {0} or more."),
        (
            r"^must be 0 \(the same day\) or more$",
            "Phải từ 0 (giải quyết trong ngày) trở lên.",
            "Must be 0 (the same day) or more.",
        ),
        (
            r"^(-?\d+) is larger than max_length \((-?\d+)\)$",
            "Độ dài tối thiểu ({0}) lớn hơn độ dài tối đa ({1}).",
            "The minimum length ({0}) is above the maximum length ({1}).",
        ),
        (
            r"^(-?\d+) is larger than max_value \((-?\d+)\)$",
            "Giá trị nhỏ nhất ({0}) lớn hơn giá trị lớn nhất ({1}).",
            "The smallest value ({0}) is above the largest value ({1}).",
        ),
        (
            r"^(-?\d+) is below processing_days \((-?\d+)\)$",
            "Thời hạn tối đa theo luật ({0} ngày) ngắn hơn thời hạn giải quyết ({1} ngày).",
            "The legal maximum ({0} days) is below the processing time ({1} days).",
        ),
        (
            r"^must be between (\d+) and (\d+)$",
            "Phải từ {0} đến {1}.",
            "Must be between {0} and {1}.",
        ),
        (
            r"^list at least one of: .*$",
            "Chọn ít nhất một loại tệp được nhận.",
            "Choose at least one type of file to accept.",
        ),
        (
            r"^a file type is listed twice$",
            "Một loại tệp được ghi hai lần.",
            "A file type is listed twice.",
        ),
        # Fee
        (
            r"^a (?P<fee>.*) fee needs quantity_field naming the integer field of .*$",
            "Lệ phí «{0}» cần một ô số nguyên để người dân ghi số bản: xin chọn ô đó.",
            "The fee rule '{0}' needs a whole-number field for the number of copies: choose it.",
        ),
        (
            r"^a (?P<fee>.*) fee needs pages_field naming the integer field of .*$",
            "Lệ phí «{0}» cần một ô số nguyên để người dân ghi số trang: xin chọn ô đó.",
            "The fee rule '{0}' needs a whole-number field for the number of pages: choose it.",
        ),
        (
            r"^refers to '(.*)', which is not a field$",
            "Không có ô nào tên «{0}».",
            "There is no field named '{0}'.",
        ),
        (
            r"^'(.*)' is a (?P<kind>.*) field, not an integer$",
            "Ô «{0}» là {1}, không phải «Số nguyên».",
            "'{0}' is {1}, not a whole number.",
        ),
        (
            r"^a (?P<fee>.*) fee needs an amount in đồng above 0$",
            "Lệ phí «{0}» cần mức tiền lớn hơn 0 đồng.",
            "The fee rule '{0}' needs an amount above 0 đồng.",
        ),
        (
            r"^a (?P<fee>.*) fee has no amount here .*$",
            "Lệ phí «{0}» không ghi mức tiền ở đây: xin để trống.",
            "The fee rule '{0}' has no amount here: leave it empty.",
        ),
        (
            r"^only a per_copy or per_page fee counts copies, not (?P<fee>.*)$",
            "Chỉ lệ phí theo bản hoặc theo trang mới cần ô số bản: xin để trống.",
            "Only a fee per copy or per page counts copies: leave it empty.",
        ),
        (
            r"^pages and copies must be two different fields$",
            "Số trang và số bản phải là hai ô khác nhau.",
            "Pages and copies must be two different fields.",
        ),
        (
            r"^must be 2 or more \(.*\)$",
            "Phải từ trang 2 trở đi (trang bắt đầu tính mức thấp hơn).",
            "Must be page 2 or later (where the lower rate starts).",
        ),
        (
            r"^is below the price of one page$",
            "Mức tối đa mỗi bản thấp hơn giá một trang.",
            "The cap per copy is below the price of one page.",
        ),
        (
            r"^only a per_page fee uses (.*), not (?P<fee>.*)$",
            "Chỉ lệ phí theo trang mới dùng mục này: xin để trống.",
            "Only a fee per page uses this: leave it empty.",
        ),
        (
            r"^free_if_on_time needs the date field that starts the window$",
            "Miễn phí khi đúng hạn cần ô ngày bắt đầu tính hạn (ngày sinh, ngày mất…).",
            "Free when on time needs the date field the window starts from (birth, death…).",
        ),
        (
            r"^'(.*)' must name a date field$",
            "Ô «{0}» phải là ô kiểu «Ngày».",
            "'{0}' must be a date field.",
        ),
        (
            r"^free_if_on_time needs the number of days, above 0$",
            "Miễn phí khi đúng hạn cần số ngày lớn hơn 0.",
            "Free when on time needs a number of days above 0.",
        ),
        (
            r"^only used with free_if_on_time = true$",
            "Chỉ dùng khi chọn «Miễn phí khi đăng ký đúng hạn»: xin để trống.",
            "Only used with 'free when on time': leave it empty.",
        ),
        # Authoring
        (
            r"^needs a required phone field.*$",
            "Cần một ô số điện thoại bắt buộc (không kèm điều kiện) để cán bộ gọi lại người dân.",
            "Needs a required phone field (without a condition) so the office can call back.",
        ),
        (
            r"^list at least one law, decree or circular$",
            "Ghi ít nhất một văn bản pháp luật làm căn cứ (luật, nghị định, thông tư).",
            "List at least one law, decree or circular.",
        ),
        (
            r"^list at least one paper the citizen brings or submits$",
            "Ghi ít nhất một giấy tờ người dân nộp hoặc mang theo.",
            "List at least one paper the citizen submits or brings.",
        ),
        (
            r"^a per_commune fee needs a note .*$",
            "Lệ phí do tỉnh quy định cần ghi chú cho người dân biết ai quy định mức thu.",
            "A fee set by the province needs a note telling citizens who sets the amount.",
        ),
        (
            r"^'(.*)' must be required: the fee depends on it$",
            "Ô «{0}» phải bắt buộc và không kèm điều kiện: lệ phí tính theo ô này.",
            "'{0}' must be required, without a condition: the fee depends on it.",
        ),
        (
            r"^a free procedure has no fee to be exempt from$",
            "Thủ tục miễn phí thì không cần ô chọn đối tượng miễn lệ phí: bỏ chọn ô này.",
            "A free procedure has no fee to be exempt from: choose no field here.",
        ),
        (
            r"^'(.*)' must name a select field$",
            "Ô «{0}» phải là ô chọn một (select) liệt kê các đối tượng được miễn.",
            "'{0}' must be a select field listing the exempt groups.",
        ),
        (
            r"^'(.*)' must not be required: most citizens are in no group$",
            "Ô «{0}» không được bắt buộc: phần lớn người dân không thuộc đối tượng miễn nào.",
            "'{0}' must not be required: most citizens belong to no exempt group.",
        ),
        (
            r"^'(.*)' needs min_value of 1 or more and a max_value$",
            "Ô «{0}» cần giá trị nhỏ nhất từ 1 và một giá trị lớn nhất.",
            "'{0}' needs a smallest value of 1 or more and a largest value.",
        ),
    )
)


def explain(problem: Problem) -> EditorProblem:
    """A catalog problem, in both languages, at the form key of its path."""
    key = problem_key(problem.path)
    for pattern, vi, en in _EXPLAINED:
        match = pattern.match(problem.message)
        if not match:
            continue
        names = {index: name for name, index in pattern.groupindex.items()}
        vi_args, en_args = [], []
        for index, value in enumerate(match.groups(), start=1):
            value = value or ""
            name = names.get(index, "")
            if name.startswith("kind"):
                vi_args.append(_kinds(value, _KIND_NAMES_VI, " hoặc "))
                en_args.append(_kinds(value, _KIND_NAMES_EN, " or "))
            elif name.startswith("fee"):
                vi_args.append(_FEE_NAMES_VI.get(value, value))
                en_args.append(_FEE_NAMES_EN.get(value, value))
            else:
                vi_args.append(value)
                en_args.append(value)
        if pattern.pattern.startswith("^unknown key"):
            # "did you mean" or the list of known keys: one of the two groups is empty.
            vi_args[1] = f" (có phải «{vi_args[1]}»?)" if vi_args[1] else ""
            en_args[1] = f" (did you mean '{en_args[1]}'?)" if en_args[1] else ""
            vi_args[2] = f"; các mục có: {vi_args[2]}" if vi_args[2] else ""
            en_args[2] = f"; known: {en_args[2]}" if en_args[2] else ""
        return EditorProblem(key, Message(vi.format(*vi_args), en.format(*en_args)))
    # A problem this table does not know yet: still shown, in the loader's own words.
    return EditorProblem(
        key,
        Message(f"Không hợp lệ: {problem.message}.", f"Not valid: {problem.message}."),
    )


def _kinds(text: str, names: Mapping[str, str], joiner: str) -> str:
    """'date or integer', as the loader names kinds, by the names the editor's lists use."""
    parts = text.split(" or ")
    if all(p in names for p in parts):
        return joiner.join(f"«{names[p]}»" for p in parts)
    return text


# --- Checking -------------------------------------------------------------------------------------


def check(draft: Draft) -> Checked:
    """Everything that keeps `draft` from working: the catalog's integrity rules, then its
    authoring rules (a draft is new text) and what the citizen's form needs on top."""
    try:
        defn = definition_from_dict(draft, SOURCE)
    except CatalogError as exc:
        return Checked(None, tuple(explain(p) for p in exc.problems))
    except (TypeError, ValueError, AttributeError):
        # Only a hand-made file could have such a shape; the editor never writes one.
        return Checked(None, (EditorProblem("", _UNREADABLE),))
    authoring = [explain(p) for p in authoring_problems(defn, SOURCE)]
    return Checked(defn, (*authoring, *_form_checks(defn)))


_UNREADABLE = Message(
    "Nội dung không đúng cấu trúc tệp thủ tục.", "The content is not in the procedure file format."
)


def _form_checks(defn: ProcedureDefinition) -> list[EditorProblem]:
    """What the catalog accepts but the citizen's form or the database could not work with."""
    problems: list[EditorProblem] = []
    if len(defn.code) > MAX_CODE:
        problems.append(
            EditorProblem(
                "code",
                Message(
                    f"Mã thủ tục dài quá {MAX_CODE} ký tự.",
                    f"The procedure code is longer than {MAX_CODE} characters.",
                ),
            )
        )
    for i, f in enumerate(defn.fields):
        at = f"fields.{i}"
        if f.name in RESERVED_NAMES:
            problems.append(
                EditorProblem(
                    f"{at}.name",
                    Message(
                        f"Tên «{f.name}» đã được biểu mẫu dùng riêng: xin chọn tên khác.",
                        f"The form itself uses the name '{f.name}': choose another.",
                    ),
                )
            )
        if len(f.name) > MAX_NAME:
            problems.append(
                EditorProblem(
                    f"{at}.name",
                    Message(
                        f"Tên ô dài quá {MAX_NAME} ký tự.",
                        f"The field name is longer than {MAX_NAME} characters.",
                    ),
                )
            )
        for o_index, option in enumerate(f.options):
            # The form shows and hides fields by condition values joined with "|", and the
            # editor lists a condition's values separated by commas.
            if "|" in option.value or "," in option.value:
                problems.append(
                    EditorProblem(
                        f"{at}.options.{o_index}.value",
                        Message(
                            "Giá trị của lựa chọn không được chứa dấu | hay dấu phẩy.",
                            "An option's value may not contain | or a comma.",
                        ),
                    )
                )
    return problems


# --- Import and export ----------------------------------------------------------------------------


def draft_of(defn: ProcedureDefinition) -> Draft:
    """The draft that stands for a definition (what the editor opens on)."""
    return copy.deepcopy(definition_to_dict(defn))


def export_toml(defn: ProcedureDefinition) -> str:
    """The definition in the catalog's file format (procedures/*.toml)."""
    return dump_definition(defn)


def import_toml(text: str, *, code: str | None = None) -> ProcedureDefinition:
    """A file in the catalog's format read back; `code`, when given, is the procedure it must be.

    Raises ImportRefused with every problem of the file: a draft is only ever replaced by a
    definition that works.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TOML_BYTES:
        raise ImportRefused(
            [
                EditorProblem(
                    "",
                    Message(
                        "Tệp quá lớn cho một thủ tục (tối đa 512 KB).",
                        "The file is too large for one procedure (512 KB at most).",
                    ),
                )
            ]
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ImportRefused([explain(Problem(SOURCE, "", f"not valid TOML: {exc}"))]) from None
    checked = check(data)
    if not checked.ok:
        raise ImportRefused(checked.problems)
    defn = checked.definition
    assert defn is not None  # noqa: S101 - ok means there is one
    if code is not None and defn.code != code:
        raise ImportRefused(
            [
                EditorProblem(
                    "code",
                    Message(
                        f"Tệp này là thủ tục «{defn.code}», không phải «{code}»: xin chọn "
                        "đúng tệp.",
                        f"This file is the procedure '{defn.code}', not '{code}': choose the "
                        "right file.",
                    ),
                )
            ]
        )
    return defn


def new_draft(code: str, name_vi: str, name_en: str) -> tuple[Draft, dict[str, Message]]:
    """A new procedure's first draft (same-day, free, no fields yet), or what to fix first."""
    code = code.strip().lower()
    errors: dict[str, Message] = {}
    if not code:
        errors["code"] = Message("Xin nhập mã thủ tục.", "Enter the procedure's code.")
    elif not CODE_RE.match(code) or len(code) > MAX_CODE:
        errors["code"] = Message(
            "Mã chỉ gồm chữ thường không dấu, chữ số và dấu gạch ngang, ví dụ cap-giay-xac-nhan.",
            "A code holds only lower-case letters, digits and dashes, e.g. cap-giay-xac-nhan.",
        )
    if not name_vi.strip():
        errors["name.vi"] = Message("Xin nhập tên thủ tục.", "Enter the procedure's name.")
    if not name_en.strip():
        errors["name.en"] = Message(
            "Xin nhập tên thủ tục bằng tiếng Anh.", "Enter the procedure's name in English."
        )
    draft: Draft = {
        "code": code,
        "name": {"vi": _clean(name_vi), "en": _clean(name_en)},
        "legal_basis": [],
        "documents": [],
        "processing_days": 0,
        "max_processing_days": 0,
        "in_person_result": True,
        "agency": "ubnd",
        "retention_days": 1825,
        "fee": {"kind": FeeKind.FREE.value},
        "fields": [],
    }
    return draft, errors


# --- Reading and writing the editor's forms -------------------------------------------------------


# The fee's keys whose value names a field of the form (kept in step when a field is renamed).
_FEE_FIELD_KEYS = ("quantity_field", "pages_field", "on_time_field", "exemption_field")


def _one(form: FormData, key: str) -> str:
    values = form.get(key)
    return values[0] if values else ""


def _clean(text: str) -> str:
    """One line of typed text: NFC, stray spaces dropped (CR/LF folded into spaces)."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _number(text: str) -> int | str | None:
    """A typed whole number; None when empty; the text itself when it is not a number (the check
    then says so beside the input, and the text is not lost)."""
    text = text.strip()
    if not text:
        return None
    if re.fullmatch(r"-?\d{1,9}", text):
        return int(text)
    return text


def _money(text: str) -> int | str | None:
    """An amount in đồng as people type it: '2.000', '2,000', '2 000 đ' → 2000."""
    raw = text.strip()
    if not raw:
        return None
    plain = re.sub(r"[\s.,]", "", re.sub(r"(?i)\s*(đồng|vnđ|vnd|đ)$", "", raw))
    if re.fullmatch(r"\d{1,12}", plain):
        return int(plain)
    return raw


def _shown(value: Any) -> str:
    """A draft value as an input shows it."""
    if value is None or isinstance(value, bool):
        return ""
    return str(value)


def _label(form: FormData, key: str, *, optional: bool) -> dict[str, str] | None:
    vi, en = _clean(_one(form, f"{key}.vi")), _clean(_one(form, f"{key}.en"))
    if optional and not vi and not en:
        return None
    return {"vi": vi, "en": en}


def _put_label(values: dict[str, list[str]], key: str, label: Any) -> None:
    table = label if isinstance(label, dict) else {}
    values[f"{key}.vi"] = [_shown(table.get("vi"))]
    values[f"{key}.en"] = [_shown(table.get("en"))]


def row_count(form: FormData, prefix: str, probe: str) -> int:
    """How many numbered rows (`prefix.N.probe`) a form holds."""
    n = 0
    while f"{prefix}.{n}.{probe}" in form:
        n += 1
    return n


def _list(draft: Draft, key: str) -> list[Any]:
    value = draft.get(key)
    return value if isinstance(value, list) else []


def fields_of(draft: Draft) -> list[dict[str, Any]]:
    return [f for f in _list(draft, "fields") if isinstance(f, dict)]


def overview_form(draft: Draft) -> dict[str, list[str]]:
    """What the overview page posts when nothing is changed: facts, papers, sections, fee."""
    v: dict[str, list[str]] = {}
    _put_label(v, "name", draft.get("name"))
    _put_label(v, "summary", draft.get("summary"))
    v["legal_basis"] = ["\n".join(_shown(x) for x in _list(draft, "legal_basis"))]
    documents = _list(draft, "documents")
    for i, doc in enumerate([*documents, *([{}] * BLANK_ROWS)]):
        _put_label(v, f"documents.{i}", doc)
    for key in ("processing_days", "max_processing_days", "retention_days", "agency"):
        v[key] = [_shown(draft.get(key))]
    if draft.get("in_person_result", True) is True:
        v["in_person_result"] = ["on"]
    v["tags"] = [", ".join(_shown(x) for x in _list(draft, "tags"))]
    fee = draft.get("fee") if isinstance(draft.get("fee"), dict) else {}
    assert isinstance(fee, dict)  # noqa: S101 - for the type checker
    v["fee.kind"] = [_shown(fee.get("kind"))]
    for key in (
        "amount",
        "later_page_amount",
        "later_pages_from",
        "cap_per_copy",
        "quantity_field",
        "pages_field",
        "on_time_field",
        "on_time_days",
        "exemption_field",
    ):
        v[f"fee.{key}"] = [_shown(fee.get(key))]
    if fee.get("free_if_on_time") is True:
        v["fee.free_if_on_time"] = ["on"]
    _put_label(v, "fee.note", fee.get("note"))
    sections = _list(draft, "sections")
    for i, sec in enumerate([*sections, *([{}] * BLANK_ROWS)]):
        table = sec if isinstance(sec, dict) else {}
        v[f"sections.{i}.name"] = [_shown(table.get("name"))]
        _put_label(v, f"sections.{i}.title", table.get("title"))
        _put_label(v, f"sections.{i}.hint", table.get("hint"))
    return v


def apply_overview(draft: Draft, form: FormData) -> Draft:
    """The draft with the overview page's inputs read in (fields are left as they are)."""
    out: Draft = {"code": draft.get("code", "")}
    out["name"] = _label(form, "name", optional=False)
    summary = _label(form, "summary", optional=True)
    if summary is not None:
        out["summary"] = summary
    out["legal_basis"] = [
        _clean(line) for line in _one(form, "legal_basis").splitlines() if line.strip()
    ]
    documents = []
    for i in range(row_count(form, "documents", "vi")):
        doc = _label(form, f"documents.{i}", optional=True)
        if doc is not None:
            documents.append(doc)
    out["documents"] = documents
    for key in ("processing_days", "max_processing_days", "retention_days"):
        number = _number(_one(form, key))
        if number is not None:
            out[key] = number
    out["in_person_result"] = bool(_one(form, "in_person_result"))
    out["agency"] = _one(form, "agency").strip()
    tags = [t.strip() for t in _one(form, "tags").split(",") if t.strip()]
    if tags:
        out["tags"] = tags
    fee: dict[str, Any] = {"kind": _one(form, "fee.kind").strip()}
    for key, read in (
        ("amount", _money),
        ("later_page_amount", _money),
        ("later_pages_from", _number),
        ("cap_per_copy", _money),
        ("on_time_days", _number),
    ):
        value = read(_one(form, f"fee.{key}"))
        if value is not None:
            fee[key] = value
    for key in _FEE_FIELD_KEYS:
        name = _one(form, f"fee.{key}").strip()
        if name:
            fee[key] = name
    if _one(form, "fee.free_if_on_time"):
        fee["free_if_on_time"] = True
    note = _label(form, "fee.note", optional=True)
    if note is not None:
        fee["note"] = note
    out["fee"] = fee
    sections = []
    for i in range(row_count(form, "sections", "name")):
        name = _one(form, f"sections.{i}.name").strip()
        title = _label(form, f"sections.{i}.title", optional=True)
        hint = _label(form, f"sections.{i}.hint", optional=True)
        if not name and title is None and hint is None:
            continue  # an empty row
        section: dict[str, Any] = {"name": name, "title": title or {"vi": "", "en": ""}}
        if hint is not None:
            section["hint"] = hint
        sections.append(section)
    if sections:
        out["sections"] = sections
    out["fields"] = copy.deepcopy(_list(draft, "fields"))
    return out


def field_groups(field: Mapping[str, Any]) -> list[str]:
    """The optional input groups a field's page shows: those of its kind, and any that hold a
    value (so nothing an import brought in is hidden, or dropped on saving)."""
    try:
        kind: FieldKind | None = FieldKind(str(field.get("kind")))
    except ValueError:
        kind = None
    shown = []
    for group, keys in GROUPS.items():
        if (kind is not None and kind in _GROUP_KINDS[group]) or any(k in field for k in keys):
            shown.append(group)
    return shown


def field_form(draft: Draft, index: int) -> dict[str, list[str]]:
    """What a field's page posts when nothing is changed."""
    field = fields_of(draft)[index]
    v: dict[str, list[str]] = {
        "name": [_shown(field.get("name"))],
        "kind": [_shown(field.get("kind"))],
    }
    _put_label(v, "label", field.get("label"))
    _put_label(v, "hint", field.get("hint"))
    if field.get("required") is True:
        v["required"] = ["on"]
    v["section"] = [_shown(field.get("section"))]
    condition = field.get("condition") if isinstance(field.get("condition"), dict) else None
    v["condition.field"] = [_shown(condition.get("field")) if condition else ""]
    v["condition.equals"] = [
        ", ".join(_shown(x) for x in condition.get("equals", [])) if condition else ""
    ]
    groups = field_groups(field)
    v["groups"] = [",".join(groups)]
    for key in ("min_length", "max_length", "min_value", "max_value", "max_age_days", "max_files"):
        v[key] = [_shown(field.get(key))]
    for key in ("birth_date_field", "sex_field"):
        v[key] = [_shown(field.get(key))]
    for key in ("past_only", "allow_cmnd"):
        if field.get(key) is True:
            v[key] = ["on"]
    if "file" in groups:
        accept = field.get("accept", list(DEFAULT_ACCEPT))
        v["accept"] = [_shown(a) for a in accept] if isinstance(accept, list) else []
    options = field.get("options") if isinstance(field.get("options"), list) else []
    assert isinstance(options, list)  # noqa: S101 - for the type checker
    rows = [*options, *([{}] * BLANK_ROWS)] if "options" in groups else options
    for i, option in enumerate(rows):
        table = option if isinstance(option, dict) else {}
        v[f"options.{i}.value"] = [_shown(table.get("value"))]
        _put_label(v, f"options.{i}.label", table.get("label"))
    return v


def accept_order(values: Sequence[str]) -> list[str]:
    """The file types in the order a field's page lists them: its own first, then the rest."""
    own = [a for a in values if a in ACCEPT_LABELS]
    return [*own, *[a for a in ACCEPT_LABELS if a not in own]]


def apply_field(draft: Draft, index: int, form: FormData) -> Draft:
    """The draft with one field's page read in. A renamed field takes the fields and the fee that
    referred to it along (conditions, ID links, copies and pages, the on-time date)."""
    out = copy.deepcopy(draft)
    fields = out.setdefault("fields", [])
    old = fields[index]
    new: dict[str, Any] = {
        "name": _one(form, "name").strip(),
        "kind": _one(form, "kind").strip(),
        "label": _label(form, "label", optional=False),
    }
    hint = _label(form, "hint", optional=True)
    if hint is not None:
        new["hint"] = hint
    if _one(form, "required"):
        new["required"] = True
    section = _one(form, "section").strip()
    if section:
        new["section"] = section
    source = _one(form, "condition.field").strip()
    if source:
        new["condition"] = {
            "field": source,
            "equals": [v.strip() for v in _one(form, "condition.equals").split(",") if v.strip()],
        }
    groups = {g for g in _one(form, "groups").split(",") if g in GROUPS}
    if "length" in groups:
        _put_numbers(new, form, ("min_length", "max_length"))
    if "range" in groups:
        _put_numbers(new, form, ("min_value", "max_value"))
    if "date" in groups:
        if _one(form, "past_only"):
            new["past_only"] = True
        _put_numbers(new, form, ("max_age_days",))
    if "cccd" in groups:
        if _one(form, "allow_cmnd"):
            new["allow_cmnd"] = True
        for key in ("birth_date_field", "sex_field"):
            name = _one(form, key).strip()
            if name:
                new[key] = name
    if "options" in groups:
        options = []
        for i in range(row_count(form, "options", "value")):
            value = _one(form, f"options.{i}.value").strip()
            label = _label(form, f"options.{i}.label", optional=True)
            if not value and label is None:
                continue
            options.append({"value": value, "label": label or {"vi": "", "en": ""}})
        if options:
            new["options"] = options
    if "file" in groups:
        accept = [a.strip() for a in form.get("accept", []) if a.strip()]
        if tuple(accept) != DEFAULT_ACCEPT:
            new["accept"] = accept
        _put_numbers(new, form, ("max_files",))
    fields[index] = new
    old_name = old.get("name") if isinstance(old, dict) else None
    if isinstance(old_name, str) and old_name and new["name"] != old_name:
        _rename_references(out, old_name, new["name"])
    return out


def _put_numbers(target: dict[str, Any], form: FormData, keys: Iterable[str]) -> None:
    for key in keys:
        number = _number(_one(form, key))
        if number is not None:
            target[key] = number


def _rename_references(draft: Draft, old: str, new: str) -> None:
    for field in fields_of(draft):
        condition = field.get("condition")
        if isinstance(condition, dict) and condition.get("field") == old:
            condition["field"] = new
        for key in ("birth_date_field", "sex_field"):
            if field.get(key) == old:
                field[key] = new
    fee = draft.get("fee")
    if isinstance(fee, dict):
        for key in _FEE_FIELD_KEYS:
            if fee.get(key) == old:
                fee[key] = new


# --- Adding, moving and removing fields -----------------------------------------------------------


def suggest_name(label_vi: str, taken: Iterable[str]) -> str:
    """A field name from its Vietnamese label: 'Số nhà' → 'so_nha' (made unique)."""
    plain = unicodedata.normalize("NFD", label_vi.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in plain if not unicodedata.combining(c)).lower()
    name = re.sub(r"[^a-z0-9]+", "_", plain).strip("_")[:40].strip("_") or "o"
    if not name[0].isalpha():
        name = f"o_{name}"
    used = set(taken) | RESERVED_NAMES
    candidate, n = name, 2
    while candidate in used:
        candidate, n = f"{name}_{n}", n + 1
    return candidate


def add_field(draft: Draft, form: FormData) -> tuple[Draft, int | None, dict[str, Message]]:
    """A new field from the overview's "add a field" inputs (`new.kind`, `new.label.vi`,
    `new.label.en`, `new.name`, `new.section`, `new.after`): the new draft and the field's index,
    or the draft unchanged and what to fix (keyed by input)."""
    fields = fields_of(draft)
    taken = [str(f.get("name", "")) for f in fields]
    errors: dict[str, Message] = {}
    kind_text = _one(form, "new.kind").strip()
    try:
        kind = FieldKind(kind_text)
    except ValueError:
        errors["new.kind"] = Message("Xin chọn kiểu ô.", "Choose the field's kind.")
        kind = FieldKind.TEXT
    label_vi, label_en = _clean(_one(form, "new.label.vi")), _clean(_one(form, "new.label.en"))
    if not label_vi:
        errors["new.label.vi"] = Message(
            "Xin nhập nhãn tiếng Việt (điều người dân đọc thấy).",
            "Enter the Vietnamese label (what citizens read).",
        )
    if not label_en:
        errors["new.label.en"] = Message("Xin nhập nhãn tiếng Anh.", "Enter the English label.")
    name = _one(form, "new.name").strip() or (suggest_name(label_vi, taken) if label_vi else "")
    if name and (not NAME_RE.match(name) or len(name) > MAX_NAME):
        errors["new.name"] = Message(
            "Tên ô chỉ gồm chữ thường không dấu, chữ số và dấu gạch dưới, bắt đầu bằng chữ cái, "
            "ví dụ so_nha (để trống để tự đặt theo nhãn).",
            "A field name holds lower-case letters, digits and _, starting with a letter, e.g. "
            "so_nha (leave empty to derive it from the label).",
        )
    elif name in taken:
        errors["new.name"] = Message(
            f"Đã có ô tên «{name}»: xin chọn tên khác.",
            f"There is already a field named '{name}': choose another.",
        )
    elif name in RESERVED_NAMES:
        errors["new.name"] = Message(
            f"Tên «{name}» đã được biểu mẫu dùng riêng: xin chọn tên khác.",
            f"The form itself uses the name '{name}': choose another.",
        )
    if errors:
        return draft, None, errors
    field: dict[str, Any] = {
        "name": name,
        "kind": kind.value,
        "label": {"vi": label_vi, "en": label_en},
    }
    section = _one(form, "new.section").strip()
    if section:
        field["section"] = section
    after = _number(_one(form, "new.after"))
    position = len(fields) if not isinstance(after, int) else max(0, min(after + 1, len(fields)))
    out = copy.deepcopy(draft)
    out.setdefault("fields", []).insert(position, field)
    return out, position, {}


def move_field(draft: Draft, index: int, delta: int) -> Draft:
    """The field at `index` moved up (-1) or down (+1); unchanged at either end."""
    out = copy.deepcopy(draft)
    fields = out.get("fields", [])
    target = index + delta
    if 0 <= index < len(fields) and 0 <= target < len(fields):
        fields[index], fields[target] = fields[target], fields[index]
    return out


def remove_field(draft: Draft, index: int) -> Draft:
    out = copy.deepcopy(draft)
    fields = out.get("fields", [])
    if 0 <= index < len(fields):
        del fields[index]
    return out


# --- What the pages list --------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRow:
    """One field as the overview lists it."""

    index: int
    name: str
    kind: Message
    label: Message
    required: bool
    section: str
    condition: Message | None


def field_rows(draft: Draft) -> list[FieldRow]:
    rows = []
    labels = {
        str(f.get("name")): _label_message(f.get("label"), str(f.get("name", "")))
        for f in fields_of(draft)
    }
    for i, field in enumerate(fields_of(draft)):
        try:
            kind = KIND_LABELS[FieldKind(str(field.get("kind")))]
        except ValueError:
            kind = Message(_shown(field.get("kind")), _shown(field.get("kind")))
        condition = field.get("condition")
        when = None
        if isinstance(condition, dict):
            source = labels.get(str(condition.get("field")), Message("?", "?"))
            values = ", ".join(_shown(x) for x in condition.get("equals", []))
            when = Message(f"khi «{source.vi}» là {values}", f"when '{source.en}' is {values}")
        rows.append(
            FieldRow(
                index=i,
                name=_shown(field.get("name")),
                kind=kind,
                label=_label_message(field.get("label"), _shown(field.get("name"))),
                required=field.get("required") is True,
                section=_shown(field.get("section")),
                condition=when,
            )
        )
    return rows


def _label_message(label: Any, fallback: str) -> Message:
    table = label if isinstance(label, dict) else {}
    vi, en = _shown(table.get("vi")), _shown(table.get("en"))
    return Message(vi or en or fallback, en or vi or fallback)


def names_of_kind(draft: Draft, kinds: Iterable[FieldKind]) -> list[tuple[str, Message]]:
    """(name, label) of the draft's fields of some kinds, for the pickers that refer to them."""
    wanted = {k.value for k in kinds}
    return [
        (_shown(f.get("name")), _label_message(f.get("label"), _shown(f.get("name"))))
        for f in fields_of(draft)
        if f.get("kind") in wanted and f.get("name")
    ]


def condition_sources(draft: Draft, index: int) -> list[tuple[str, Message, list[str]]]:
    """The fields above `index` a condition may depend on, with the values each can take."""
    out = []
    for field in fields_of(draft)[:index]:
        kind = field.get("kind")
        name = _shown(field.get("name"))
        if not name or kind == FieldKind.FILE.value:
            continue
        values: list[str] = []
        if kind == FieldKind.SELECT.value:
            values = [
                _shown(o.get("value")) for o in field.get("options", []) if isinstance(o, dict)
            ]
        elif kind == FieldKind.CHECKBOX.value:
            values = ["on"]
        out.append((name, _label_message(field.get("label"), name), values))
    return out


def where(key: str, draft: Draft) -> Message:
    """Where a problem is, in words, for the list at the top of a page."""
    parts = key.split(".") if key else []
    if not parts:
        return Message("Thủ tục", "Procedure")
    head = parts[0]
    if head == "fields" and len(parts) > 1 and parts[1].isdigit():
        index = int(parts[1])
        fields = fields_of(draft)
        label = (
            _label_message(fields[index].get("label"), _shown(fields[index].get("name")))
            if index < len(fields)
            else Message("?", "?")
        )
        return Message(f"Ô thứ {index + 1} «{label.vi}»", f"Field {index + 1} '{label.en}'")
    if head in ("documents", "sections") and len(parts) > 1 and parts[1].isdigit():
        n = int(parts[1]) + 1
        if head == "documents":
            return Message(f"Giấy tờ thứ {n}", f"Paper {n}")
        return Message(f"Phần thứ {n} của biểu mẫu", f"Form section {n}")
    return _PLACES.get(head, Message(head, head))


_PLACES = {
    "code": Message("Mã thủ tục", "Procedure code"),
    "name": Message("Tên thủ tục", "Procedure name"),
    "summary": Message("Tóm tắt", "Summary"),
    "legal_basis": Message("Căn cứ pháp lý", "Legal basis"),
    "documents": Message("Giấy tờ cần có", "Papers needed"),
    "processing_days": Message("Thời hạn giải quyết", "Processing time"),
    "max_processing_days": Message("Thời hạn tối đa theo luật", "Legal maximum time"),
    "retention_days": Message("Thời gian lưu dữ liệu cá nhân", "Personal data retention"),
    "agency": Message("Cơ quan giải quyết", "Agency"),
    "in_person_result": Message("Nhận kết quả trực tiếp", "Result in person"),
    "tags": Message("Nhóm", "Tags"),
    "fee": Message("Lệ phí", "Fee"),
    "sections": Message("Các phần của biểu mẫu", "Form sections"),
    "fields": Message("Các ô của biểu mẫu", "Form fields"),
}


def agencies() -> list[tuple[str, Message]]:
    return [(a, AGENCY_LABELS.get(a, Message(a, a))) for a in AGENCIES]
