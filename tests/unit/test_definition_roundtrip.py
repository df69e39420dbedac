"""The editor's export and import, and its forms, give back exactly the definition they started
from, for every procedure of the catalog: nothing an administrator did not touch ever changes.

Three round trips, all through core.procedure_editor:
- export → import: the catalog's TOML file format, definition and version identical;
- the editor's pages posted back unchanged: the overview, then every field's page;
- any labels and hints (hypothesis): what is typed is what is stored, in both languages.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import procedure_editor as editor
from procedures.catalog import definition_version, load_catalog
from procedures.schema import Label, ProcedureDefinition

CATALOG = load_catalog()
CODES = CATALOG.codes()


def through_the_pages(defn: ProcedureDefinition) -> editor.Checked:
    """The definition opened in the editor, every page posted back as rendered, then checked."""
    draft = editor.draft_of(defn)
    draft = editor.apply_overview(draft, editor.overview_form(draft))
    for index in range(len(editor.fields_of(draft))):
        draft = editor.apply_field(draft, index, editor.field_form(draft, index))
    return editor.check(draft)


def test_the_catalog_has_every_procedure_to_round_trip() -> None:
    assert len(CODES) >= 14


@pytest.mark.parametrize("code", CODES)
def test_export_then_import_gives_the_identical_definition(code: str) -> None:
    defn = CATALOG[code]
    text = editor.export_toml(defn)
    back = editor.import_toml(text, code=code)
    assert back == defn
    assert definition_version(back) == definition_version(defn)
    assert editor.export_toml(back) == text  # and exporting again writes the same file


@pytest.mark.parametrize("code", CODES)
def test_the_editor_pages_posted_back_unchanged_change_nothing(code: str) -> None:
    defn = CATALOG[code]
    checked = through_the_pages(defn)
    assert checked.problems == ()
    assert checked.definition == defn
    assert definition_version(checked.definition) == definition_version(defn)


@pytest.mark.parametrize("code", CODES)
def test_the_draft_of_a_definition_checks_clean(code: str) -> None:
    checked = editor.check(editor.draft_of(CATALOG[code]))
    assert checked.ok and checked.definition == CATALOG[code]


def test_an_import_must_be_the_procedure_being_edited() -> None:
    text = editor.export_toml(CATALOG["khai-sinh"])
    with pytest.raises(editor.ImportRefused) as refused:
        editor.import_toml(text, code="khai-tu")
    assert refused.value.problems[0].key == "code"
    assert "không phải «khai-tu»" in refused.value.problems[0].message.vi


# Texts an administrator might type: Vietnamese letters with their marks, punctuation, quotes,
# backslashes, emoji; never blank, never with spaces at the ends (the form trims them) and no
# runs of spaces (one line of text).
WORD = st.text(
    alphabet=st.characters(
        categories=("Lu", "Ll", "Nd", "Po", "Pd", "So"),
        include_characters="ăâđêôơưĂÂĐÊÔƠƯáàảãạấầẩẫậếềểễệốồổỗộớờởỡợứừửữự\"'\\{}[]=#",
    ),
    min_size=1,
    max_size=12,
)
TEXT = st.lists(WORD, min_size=1, max_size=5).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(code=st.sampled_from(CODES), vi=TEXT, en=TEXT, hint_vi=TEXT, hint_en=TEXT)
def test_any_label_and_hint_typed_is_what_is_stored(
    code: str, vi: str, en: str, hint_vi: str, hint_en: str
) -> None:
    import unicodedata

    defn = CATALOG[code]
    first = replace(defn.fields[0], label=Label(vi, en), hint=Label(hint_vi, hint_en))
    edited = replace(defn, fields=(first, *defn.fields[1:]))
    checked = through_the_pages(edited)
    assert checked.definition is not None, checked.problems
    got = checked.definition.fields[0]
    nfc = lambda s: unicodedata.normalize("NFC", s)  # noqa: E731 - the loader stores NFC
    assert (got.label.vi, got.label.en) == (nfc(vi), nfc(en))
    assert got.hint == Label(nfc(hint_vi), nfc(hint_en))
    back = editor.import_toml(editor.export_toml(checked.definition), code=code)
    assert back == checked.definition
