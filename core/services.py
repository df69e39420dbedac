"""The use cases of the kiosk, in the order a citizen meets them.

Each takes a SQLAlchemy `session` (the caller owns the transaction: `with db.writing() as s:`),
plain values and `now`, and returns plain values. Views and commands only translate to and from
HTTP or the terminal.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, Protocol, cast
from urllib.parse import urlencode

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    Integer,
    Table,
    Text,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    insert,
    literal,
    null,
    select,
    text,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session, make_transient_to_detached

from core.deadlines import WorkCalendar
from core.dossier import Action, DossierState, transition
from core.fees import claimed_exemption, compute_fee
from core.keys import KeyMaterial
from core.poster_print import PosterPrint
from core.posters import (
    make_token,
    official_host,
    poster_url,
    qr_matrix,
    qr_svg,
    read_token,
    short_code,
)
from core.sealing import Keyring, seal, seal_file_bytes, unseal
from core.signing import SigningKey, VerifyKey, canonical_bytes, sign_canonical
from core.text import Message
from core.uploads import AcceptedFile
from core.validation import FileRef
from core.vietqr import BANKS, amount_in_words_vi, build_payload
from procedures.catalog import load_catalog
from procedures.schema import FeeKind, ProcedureDefinition
from storage.definitions import definition_by_version_id, definition_of
from storage.files import FileStore
from storage.models import (
    Attachment,
    Commune,
    CommuneProcedure,
    Dossier,
    DossierCounter,
    DossierEvent,
    Poster,
    PosterDay,
    ProcedureVersion,
)
from storage.models import SigningKey as SigningKeyRow
from storage.statements import Prepared


class NotFound(Exception):
    """What was asked for does not exist (or is not this person's to see)."""


class DraftChanged(Exception):
    """The draft's papers changed while it was submitted (removed from another tab, say): the
    papers checked are not the papers there. Nothing was stored."""


@dataclass(frozen=True)
class OfferedProcedure:
    """A procedure as a commune offers it: its definition plus the commune's settings."""

    code: str
    definition: ProcedureDefinition
    version_id: int
    fee_amount: int | None  # None: computed per dossier (per copy, per page) or free
    processing_days: int
    instructions_vi: str
    instructions_en: str
    result_place: str
    # The version's label (ProcedureVersion.version), signed into every dossier; "" for a preview.
    version_label: str = ""
    # The commune's current signing key when the offer was read; "" when not read with it.
    signing_key_id: str = ""

    @property
    def name_vi(self) -> str:
        return self.definition.name.vi

    @property
    def name_en(self) -> str:
        return self.definition.name.en

    @property
    def time(self) -> Message:
        days = self.processing_days
        if days == 0:
            return Message("Giải quyết trong ngày", "Settled the same day")
        return Message(f"{days} ngày làm việc", f"{days} working days")

    @property
    def fee(self) -> Message:
        return describe_fee(self.definition, self.fee_amount)


def vnd(amount: int) -> str:
    """12000 → '12.000 đ' (Vietnamese thousands separator)."""
    return f"{amount:,}".replace(",", ".") + " đ"


def describe_fee(defn: ProcedureDefinition, commune_amount: int | None) -> Message:
    fee = defn.fee
    text = _fee_rule_text(defn, commune_amount)
    if fee.free_if_on_time:
        days = fee.on_time_days
        return Message(
            f"Miễn phí nếu đăng ký trong {days} ngày; quá hạn: {text.vi[0].lower()}{text.vi[1:]}",
            f"Free within {days} days; late: {text.en[0].lower()}{text.en[1:]}",
        )
    return text


def _fee_rule_text(defn: ProcedureDefinition, commune_amount: int | None) -> Message:
    fee = defn.fee
    if fee.kind == FeeKind.FREE:
        return Message("Miễn phí", "Free")
    if fee.kind == FeeKind.PER_COMMUNE:
        if commune_amount is None:
            return Message("Lệ phí theo quy định của tỉnh", "Fee set by the province")
        if commune_amount == 0:
            return Message("Miễn phí", "Free")
        return Message(f"Lệ phí {vnd(commune_amount)}", f"Fee {vnd(commune_amount)}")
    amount = commune_amount if commune_amount is not None else fee.amount
    if fee.kind == FeeKind.FIXED:
        return Message(f"Lệ phí {vnd(amount)}", f"Fee {vnd(amount)}")
    if fee.kind == FeeKind.PER_COPY:
        return Message(f"{vnd(amount)} mỗi bản", f"{vnd(amount)} per copy")
    return Message(
        f"{vnd(amount)}/trang, từ trang {fee.later_pages_from}: {vnd(fee.later_page_amount)}/trang",
        f"{vnd(amount)}/page, from page {fee.later_pages_from}: {vnd(fee.later_page_amount)}/page",
    )


def list_communes(session: Session) -> list[Commune]:
    return list(
        session.scalars(select(Commune).where(Commune.active.is_(True)).order_by(Commune.name))
    )


def commune_by_slug(session: Session, slug: str) -> Commune:
    commune = session.scalar(select(Commune).where(Commune.slug == slug))
    if commune is None:
        raise NotFound(slug)
    return commune


def _offered(setting: CommuneProcedure) -> OfferedProcedure:
    defn = definition_of(setting.version)
    return OfferedProcedure(
        code=setting.code,
        definition=defn,
        version_id=setting.version_id,
        fee_amount=setting.fee_amount,
        processing_days=(
            setting.processing_days if setting.processing_days is not None else defn.processing_days
        ),
        instructions_vi=setting.instructions_vi,
        instructions_en=setting.instructions_en,
        result_place=setting.result_place,
        version_label=setting.version.version,
    )


def offered_procedures(session: Session, commune: Commune) -> list[OfferedProcedure]:
    """The procedures a commune offers now, in its order."""
    settings = session.scalars(
        select(CommuneProcedure)
        .where(CommuneProcedure.commune_id == commune.id, CommuneProcedure.enabled.is_(True))
        .order_by(CommuneProcedure.position, CommuneProcedure.code)
    )
    return [_offered(s) for s in settings]


def offered_procedure(session: Session, commune: Commune, code: str) -> OfferedProcedure:
    setting = session.scalar(
        select(CommuneProcedure).where(
            CommuneProcedure.commune_id == commune.id,
            CommuneProcedure.code == code,
            CommuneProcedure.enabled.is_(True),
        )
    )
    if setting is None:
        raise NotFound(code)
    return _offered(setting)


# The citizen's hot path runs SQL expressions on the tables, not ORM queries: building, keying
# and loading ORM results cost more than running the statements (bench/profile_submit.py).
_COMMUNE = cast(Table, Commune.__table__)
_SETTING = cast(Table, CommuneProcedure.__table__)
_VERSION = cast(Table, ProcedureVersion.__table__)
_DOSSIER = cast(Table, Dossier.__table__)
_PAPER = cast(Table, Attachment.__table__)
_EVENT = cast(Table, DossierEvent.__table__)
_COUNTER = cast(Table, DossierCounter.__table__)
_POSTER_DAY = cast(Table, PosterDay.__table__)
_KEY = cast(Table, SigningKeyRow.__table__)

# Everything a commune's form depends on, in one row: the commune, its setting for the procedure,
# the version's label (a version's definition never changes once stored) and the key it signs with.
_COMMUNE_OFFER = (
    select(
        *_COMMUNE.c,
        *(c.label(f"setting_{c.name}") for c in _SETTING.c),
        _VERSION.c.version.label("version_label"),
        select(_KEY.c.key_id)
        .where(_KEY.c.commune_id == _COMMUNE.c.id, _KEY.c.retired_at.is_(None))
        .order_by(_KEY.c.id.desc())
        .limit(1)
        .scalar_subquery()
        .label("signing_key_id"),
    )
    .select_from(
        _COMMUNE.join(_SETTING, _SETTING.c.commune_id == _COMMUNE.c.id).join(
            _VERSION, _VERSION.c.id == _SETTING.c.version_id
        )
    )
    .where(
        _COMMUNE.c.slug == bindparam("slug"),
        _SETTING.c.code == bindparam("code"),
        _SETTING.c.enabled.is_(True),
    )
)
# The commune and offer built from a row, kept per process under the row itself: any change to
# the commune or its setting reads as a new row, hence a new entry, so nothing here goes stale.
_offers: dict[tuple[object, ...], tuple[Commune, OfferedProcedure]] = {}
_OFFERS_KEPT = 4096


_COMMUNE_OFFER_RAW = Prepared(_COMMUNE_OFFER)


def commune_offer(
    bind: Session | Connection, slug: str, code: str
) -> tuple[Commune, OfferedProcedure]:
    """The commune at `slug` and the procedure `code` it offers, in one query (the form's and
    the submission's path). The commune is detached: read it, don't change it.

    The row is read as the driver gives it, to look the offer up; only an offer not seen yet
    reads it again through the ORM's types to build the commune and the offer. Whether a draft
    was already stored (a double tap, a retry after a lost answer) is not read here: the draft's
    unique key refuses a second copy, and the view looks the first one up (`stored_for_draft`)
    only then, or before showing the form again with errors.

    NotFound when there is no such commune or it does not offer the procedure."""
    params = {"slug": slug, "code": code}
    cursor = _COMMUNE_OFFER_RAW.execute(bind, params)
    try:
        raw = cursor.fetchone()
    finally:
        cursor.close()
    if raw is None:
        raise NotFound(f"{slug}/{code}")
    return _offer_of_row(bind, tuple(raw), slug, code)


def _offer_of_row(
    bind: Session | Connection, raw: tuple[object, ...], slug: str, code: str
) -> tuple[Commune, OfferedProcedure]:
    """The (commune, offer) of a `_COMMUNE_OFFER` row read raw: kept, or built the first time."""
    params = {"slug": slug, "code": code}

    def build() -> tuple[Commune, OfferedProcedure]:
        with _orm(bind) as session:
            row = session.execute(_COMMUNE_OFFER, params).first()
            if row is None:  # gone between the two reads (not one transaction on PostgreSQL)
                raise NotFound(f"{slug}/{code}")
            return _offer_from_row(session, row._mapping)

    return _offer(raw, build)


@contextmanager
def _orm(bind: Session | Connection) -> Iterator[Session]:
    """`bind` as a session: itself, or one on the connection (in its transaction, if any)."""
    if isinstance(bind, Session):
        yield bind
        return
    with Session(bind=bind) as session:
        yield session


def _offer(
    key: tuple[object, ...], build: Callable[[], tuple[Commune, OfferedProcedure]]
) -> tuple[Commune, OfferedProcedure]:
    """The (commune, offer) kept under `key`, made by `build` the first time."""
    found = _offers.get(key)
    if found is None:
        found = build()
        if len(_offers) >= _OFFERS_KEPT:
            _offers.clear()
        _offers[key] = found
    return found


def _offer_from_row(session: Session, row: RowMapping) -> tuple[Commune, OfferedProcedure]:
    commune = Commune(**{c.name: row[c.name] for c in _COMMUNE.c})
    make_transient_to_detached(commune)
    setting = {c.name: row[f"setting_{c.name}"] for c in _SETTING.c}
    defn = definition_by_version_id(session, setting["version_id"])
    days = setting["processing_days"]
    return commune, OfferedProcedure(
        code=setting["code"],
        definition=defn,
        version_id=setting["version_id"],
        fee_amount=setting["fee_amount"],
        processing_days=days if days is not None else defn.processing_days,
        instructions_vi=setting["instructions_vi"],
        instructions_en=setting["instructions_en"],
        result_place=setting["result_place"],
        version_label=row["version_label"],
        signing_key_id=row["signing_key_id"] or "",
    )


# --- The form: uploads accepted before the dossier exists --------------------------------------


def draft_hash(draft: str) -> str:
    """Files and the idempotency key hang on a hash of the form's draft token, never the token."""
    return hashlib.sha256(f"draft|{draft}".encode()).hexdigest()


def valid_draft(draft: str) -> bool:
    return 20 <= len(draft) <= 64 and all(c in DRAFT_ALPHABET for c in draft)


DRAFT_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
MAX_FILES_PER_DRAFT = 12


def accept_upload(
    session: Session,
    *,
    commune: Commune,
    draft: str,
    field_name: str,
    accepted: AcceptedFile,
    store: FileStore,
    keyring: Keyring,
    now: datetime,
) -> Attachment:
    """Seal an accepted upload to disk and remember it against the form's draft."""
    name = store.new_name()
    context = f"file:{commune.id}:{name}".encode()
    store.write(name, seal_file_bytes(accepted.content, keyring, context=context))
    row = Attachment(
        commune_id=commune.id,
        dossier_id=None,
        draft_hash=draft_hash(draft),
        field_name=field_name,
        storage_name=name,
        content_type=accepted.content_type,
        size=accepted.size,
        sha256=accepted.sha256,
        name_sealed=seal(
            accepted.original_filename.encode(), keyring, context=f"filename:{name}".encode()
        ),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


# A draft's papers, not yet part of a dossier, found through the draft's own index (a handful of
# rows) whatever the planner's statistics say. `commune_id + 0`: without statistics SQLite would
# walk the commune's index, i.e. every paper the commune ever received (1 ms per 6,000).
# `dossier_id + 0`: PostgreSQL without statistics joined the draft's index with the index of
# papers in no dossier yet, i.e. every paper of every open draft (0.3 ms per 12,000).
_NOT_LINKED = (_PAPER.c.dossier_id + 0).is_(None)
_IN_DRAFT = and_(
    _PAPER.c.commune_id + 0 == bindparam("commune_id"),
    _PAPER.c.draft_hash == bindparam("draft_hash"),
    _NOT_LINKED,
)
_DRAFT_ATTACHMENTS = select(Attachment).where(_IN_DRAFT).order_by(Attachment.id)


def draft_attachments(session: Session, commune: Commune, draft: str) -> list[Attachment]:
    return list(
        session.scalars(
            _DRAFT_ATTACHMENTS, {"commune_id": commune.id, "draft_hash": draft_hash(draft)}
        )
    )


@dataclass(frozen=True, slots=True)
class Paper:
    """A paper attached to a draft, as the form and the submission read it (a row of
    `attachment`, without the ORM)."""

    id: int
    public_id: str
    field_name: str
    storage_name: str
    content_type: str
    size: int
    sha256: str
    name_sealed: str


class PaperLike(Protocol):
    @property
    def public_id(self) -> str: ...
    @property
    def field_name(self) -> str: ...
    @property
    def storage_name(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def name_sealed(self) -> str: ...


_DRAFT_PAPERS = Prepared(
    select(*(_PAPER.c[name] for name in Paper.__slots__)).where(_IN_DRAFT).order_by(_PAPER.c.id)
)


def draft_papers(bind: Session | Connection, commune_id: int, draft: str) -> list[Paper]:
    """The papers attached to the draft so far, oldest first."""
    cursor = _DRAFT_PAPERS.execute(
        bind, {"commune_id": commune_id, "draft_hash": draft_hash(draft)}
    )
    try:
        return [Paper(*row) for row in cursor.fetchall()]  # text and integers: no conversion
    finally:
        cursor.close()


# PostgreSQL: the commune's offer and the draft's papers in one round trip, the papers as one
# JSON array (column by column as `Paper`) beside the offer's columns.
_PAPERS_JSON = (
    select(
        func.json_agg(
            aggregate_order_by(
                func.json_build_array(*(_PAPER.c[name] for name in Paper.__slots__)), _PAPER.c.id
            )
        )
    )
    .where(
        _PAPER.c.commune_id + 0 == _COMMUNE.c.id,  # as _IN_DRAFT
        _PAPER.c.draft_hash == bindparam("draft_hash"),
        _NOT_LINKED,
    )
    .scalar_subquery()
)
_OFFER_AND_PAPERS = Prepared(_COMMUNE_OFFER.add_columns(_PAPERS_JSON.label("papers")))


def offer_and_papers(
    bind: Connection, slug: str, code: str, draft: str
) -> tuple[Commune, OfferedProcedure, list[Paper]]:
    """`commune_offer` and `draft_papers` together (the submission's first reads): on
    PostgreSQL in one query, elsewhere (in process) one after the other. NotFound as
    commune_offer."""
    if _dialect_name(bind) != "postgresql":
        commune, offered = commune_offer(bind, slug, code)
        return commune, offered, draft_papers(bind, commune.id, draft)
    cursor = _OFFER_AND_PAPERS.execute(
        bind, {"slug": slug, "code": code, "draft_hash": draft_hash(draft)}
    )
    try:
        raw = cursor.fetchone()
    finally:
        cursor.close()
    if raw is None:
        raise NotFound(f"{slug}/{code}")
    *offer, papers = raw
    commune, offered = _offer_of_row(bind, tuple(offer), slug, code)
    return commune, offered, [Paper(*paper) for paper in papers or ()]


def drop_draft_attachments(
    session: Session, commune: Commune, draft: str, public_ids: set[str], store: FileStore
) -> None:
    """The citizen removed files they had attached (before submitting)."""
    for att in draft_attachments(session, commune, draft):
        if att.public_id in public_ids:
            session.delete(att)
            store.delete(att.storage_name)


def attachment_name(att: PaperLike, keyring: Keyring) -> str:
    return unseal(
        att.name_sealed, keyring, context=f"filename:{att.storage_name}".encode()
    ).decode()


def file_refs(atts: Sequence[PaperLike], keyring: Keyring) -> dict[str, list[FileRef]]:
    refs: dict[str, list[FileRef]] = {}
    for att in atts:
        refs.setdefault(att.field_name, []).append(
            FileRef(
                id=att.public_id,
                filename=partial(attachment_name, att, keyring),
                content_type=att.content_type,
                size=att.size,
                sha256=att.sha256,
            )
        )
    return refs


# --- Submitting -------------------------------------------------------------------------------

CONSENT_VERSION = "nd13-2023/v1"
# No 0/O, 1/I/L: read off paper.
SECRET_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # noqa: S105 - an alphabet
SECRET_LENGTH = 10  # 31^10 ≈ 8×10^14: with rate limits, out of reach of guessing


def citizen_secret(server_secret: bytes, commune_id: int, idempotency_key: str) -> str:
    """The citizen's lookup secret, derived from the form's draft so that a retried submission
    gets the same receipt back; only its hash is stored."""
    mac = hmac.new(
        server_secret, f"dossier-secret|{commune_id}|{idempotency_key}".encode(), "sha256"
    ).digest()
    number = int.from_bytes(mac, "big")
    chars = []
    for _ in range(SECRET_LENGTH):
        number, index = divmod(number, len(SECRET_ALPHABET))
        chars.append(SECRET_ALPHABET[index])
    return "".join(chars)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(f"status-secret|{normalise_secret(secret)}".encode()).hexdigest()


def normalise_secret(text: str) -> str:
    return "".join(c for c in text.upper() if c.isalnum()).replace("0", "O").replace("1", "I")


@dataclass(frozen=True)
class Submitted:
    stored: StoredDossier  # what the receipt needs
    code: str
    secret: str
    dossier_id: int
    session: Session | Connection = field(repr=False, compare=False)

    @property
    def dossier(self) -> Dossier:
        """The dossier as an ORM object of the submitting session, read on first use (the
        citizen's path never needs it; on a bare connection, of a session on it)."""
        session = self.session
        if not isinstance(session, Session):
            session = Session(bind=session)
        found = session.get(Dossier, self.dossier_id)
        assert found is not None  # noqa: S101 - stored in this transaction
        return found


# Plain SQL that both engines speak: SQLAlchemy cannot cache the compiled form of an
# `on_conflict_do_update` construct, and compiling it cost more than the rest of the insert.
_NEXT_VALUE = Prepared(
    text(
        "INSERT INTO dossier_counter (commune_id, day, last_value) VALUES (:commune_id, :day, 1) "
        "ON CONFLICT (commune_id, day) DO UPDATE SET last_value = dossier_counter.last_value + 1 "
        "RETURNING last_value"
    ).bindparams(bindparam("day", type_=Date))
)


_CURRENT_SIGNING_KEY = (
    select(_KEY.c.commune_id, _KEY.c.key_id, _KEY.c.private_key_sealed)
    .where(_KEY.c.commune_id == bindparam("commune_id"), _KEY.c.retired_at.is_(None))
    .order_by(_KEY.c.id.desc())
    .limit(1)
)


def commune_signing_key(
    session: Session | Connection, commune_id: int, keyring: Keyring
) -> SigningKey:
    row = session.execute(_CURRENT_SIGNING_KEY, {"commune_id": commune_id}).first()
    if row is None:
        raise NotFound(f"no signing key for commune {commune_id}: run `flask --app wsgi init`")
    return _signing_key_cache(row, keyring)


_signing_keys: dict[tuple[int, str], SigningKey] = {}


def _signing_key_cache(row: Any, keyring: Keyring) -> SigningKey:
    cached = _signing_keys.get((row.commune_id, row.key_id))
    if cached is None:
        raw = unseal(
            row.private_key_sealed,
            keyring,
            context=f"signing-key:{row.commune_id}:{row.key_id}".encode(),
        )
        cached = SigningKey.from_private_bytes(raw)
        _signing_keys[(row.commune_id, row.key_id)] = cached
    return cached


def commune_verify_keys(session: Session, commune_id: int) -> dict[str, VerifyKey]:
    return {
        row.key_id: VerifyKey.from_public_b64(row.public_key)
        for row in session.scalars(
            select(SigningKeyRow).where(SigningKeyRow.commune_id == commune_id)
        )
    }


def dossier_payload(
    *,
    commune: Commune,
    procedure_code: str,
    procedure_version: str,
    poster_id: int | None,
    received_at: datetime,
    data: dict[str, object],
    files: Sequence[PaperLike],
    consent_version: str,
) -> dict[str, object]:
    """The canonical content of a dossier, exactly what is signed (core.signing). Dossiers
    signed before 2026-12 carry their code too (`code`); see `prepare_submission`."""
    return {
        "kind": "dossier",
        "commune": commune.code,
        "procedure": procedure_code,
        "procedure_version": procedure_version,
        "poster": poster_id,
        "received_at": received_at.astimezone(UTC).isoformat(timespec="seconds"),
        "consent": consent_version,
        "data": {k: _canonical_value(v) for k, v in sorted(data.items())},
        "files": [
            {
                "field": a.field_name,
                "sha256": a.sha256,
                "content_type": a.content_type,
                "size": a.size,
            }
            for a in sorted(files, key=lambda a: (a.field_name, a.sha256))
        ],
    }


def _canonical_value(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return [_canonical_value(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


@dataclass(frozen=True, slots=True)
class Submission:
    """A validated dossier made ready to store (`prepare_submission`): sealed, signed, its due
    date and fee worked out, so that storing it (`store_submission`) is only writing. The code's
    number is the one thing left: the day's counter gives it in the write itself."""

    code_prefix: str  # "<commune>-YYMMDD-": the day's number completes the code when stored
    day: date
    values: dict[str, Any]  # the dossier's row, but its code (commune, poster...)
    event: dict[str, Any]
    paper_ids: tuple[int, ...]
    draft: str
    secret: str
    stored: StoredDossier


def prepare_submission(
    bind: Session | Connection,
    *,
    commune: Commune,
    offered: OfferedProcedure,
    cleaned: dict[str, object],
    draft: str,
    poster_id: int | None,
    lang: str,
    keys: KeyMaterial,
    calendar: WorkCalendar,
    now: datetime,
    papers: Sequence[Paper] | None = None,
) -> Submission:
    """Seal and sign a validated dossier, before any write (no lock is held meanwhile).

    `bind` reads only what the caller did not give (the signing key, the version's label and
    the papers are usually known: a worker's cache, the offer). `papers` are the draft's papers
    as the caller read them (and validated the form against); None reads them here. They are
    signed into the dossier, which `store_submission` links to them if they are still the
    draft's. What is signed (`dossier_payload`): the commune, the procedure and its version, the
    poster, the time, the consent, every value and each paper's SHA-256. Not the code, whose
    number the write draws; the signed receipt binds the code to the signed content
    (`content_hash`)."""
    now = now.astimezone(UTC)  # SQLite keeps no offset: store UTC, so the signed time reads back
    idem = draft_hash(draft)
    secret = citizen_secret(keys.secret_key, commune.id, idem)
    key = _signing_keys.get((commune.id, offered.signing_key_id))
    version_label = offered.version_label
    if papers is None:
        papers = draft_papers(bind, commune.id, draft)
    if key is None:
        key = commune_signing_key(bind, commune.id, keys.sealing)
    if not version_label:  # a commune setting always points at a version
        version_label = bind.execute(
            select(_VERSION.c.version).where(_VERSION.c.id == offered.version_id)
        ).scalar_one()
    day = calendar.local_date(now)
    payload = dossier_payload(
        commune=commune,
        procedure_code=offered.code,
        procedure_version=version_label,
        poster_id=poster_id,
        received_at=now,
        data=cleaned,
        files=papers,
        consent_version=CONSENT_VERSION,
    )
    canonical = canonical_bytes(payload)
    signature = sign_canonical(canonical, key)
    due = calendar.due_date(now, offered.processing_days)
    fee = compute_fee(offered.definition, offered.fee_amount, cleaned, received_on=day)
    # A declared exempt group owes nothing until an official has checked the proof.
    exemption = claimed_exemption(offered.definition, cleaned) if fee > 0 else None
    public_id = uuid.uuid4().hex
    values: dict[str, Any] = {
        "commune_id": commune.id,
        "public_id": public_id,
        "procedure_code": offered.code,
        "procedure_version_id": offered.version_id,
        "poster_id": poster_id,
        "state": DossierState.RECEIVED,
        "idempotency_key": idem,
        "secret_hash": secret_hash(secret),
        # seal_json(payload), without writing the canonical form a third time
        "sealed_data": seal(
            canonical, keys.sealing, context=_dossier_context(commune.id, public_id)
        ),
        "lang": lang if lang in ("vi", "en") else "vi",
        "consent_version": CONSENT_VERSION,
        "received_at": now,
        "due_date": due,
        "original_due_date": due,
        "fee_amount": 0 if exemption else fee,
        "fee_exemption_state": "claimed" if exemption else None,
        "fee_without_exemption": fee,
        "signature_key_id": signature.key_id,
        "signature": signature.value,
        "content_hash": hashlib.sha256(canonical).hexdigest(),
        "row_version": 1,
    }
    event = {
        "event_at": now,
        "event_action": "submit",
        "event_to_state": DossierState.RECEIVED.value,
    }
    return Submission(
        code_prefix=f"{commune.code}-{day:%y%m%d}-",
        day=day,
        values=values,
        event=event,
        paper_ids=tuple(p.id for p in papers),
        draft=draft,
        secret=secret,
        stored=StoredDossier(public_id, commune.id, idem),
    )


def store_submission(bind: Session | Connection, submission: Submission) -> Submitted:
    """Write a prepared dossier: its code (the day's next number), the dossier, the links to its
    papers, its first event and its poster's count, all or nothing.

    On PostgreSQL this is one statement, so on a connection in autocommit (`Database.storing`)
    it is its own transaction: one round trip, and the day's counter row stays locked only while
    the server writes and commits, never while this process works. Elsewhere, statements in the
    caller's transaction (with SQLite's write lock, taken by `Database.storing` too).

    If the papers are no longer the draft's (removed from another tab, or taken by a first copy
    of this submission), DraftChanged and nothing is stored. A draft is stored once: a retry
    (double tap, reload, flaky network) fails on the draft's unique key with IntegrityError,
    nothing stored, and the caller finds the first one with `stored_for_draft`."""
    s = submission
    poster_id = s.values["poster_id"]
    ids = {f"id{n}": paper_id for n, paper_id in enumerate(s.paper_ids)}
    draft = s.values["idempotency_key"]  # the papers hang on the same hash of the draft
    if _dialect_name(bind) == "postgresql":
        # Named apart from the columns: SQLAlchemy takes a parameter named as a column of an
        # INSERT ... SELECT for that column's own value.
        values = {f"v_{name}": value for name, value in s.values.items()}
        params = {**values, **s.event, **ids, "draft": draft, "code_day": s.day}
        params["code_prefix"] = s.code_prefix
        cursor = _store_dossier_pg(len(s.paper_ids), poster_id is not None).execute(bind, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        if row is None:
            raise DraftChanged(s.draft)  # the statement wrote nothing
        dossier_id, code = row
    else:
        params = {**s.values, **s.event, **ids, "draft": draft, "day": s.day}
        number = int(_one_value(_NEXT_VALUE.execute(bind, params)))
        code = f"{s.code_prefix}{number:04d}"
        dossier_id = int(_one_value(_INSERT_DOSSIER.execute(bind, {**s.values, "code": code})))
        params["dossier_id"] = dossier_id
        if s.paper_ids:
            cursor = _link_papers(len(s.paper_ids)).execute(bind, params)
            linked = cursor.rowcount
            cursor.close()
            if linked != len(s.paper_ids):
                raise DraftChanged(s.draft)  # raised before the commit: nothing is stored
        _INSERT_EVENT.execute(bind, params).close()
        if poster_id is not None:
            count_poster(bind, poster_id, s.stored.commune_id, s.day, "submitted")
    return Submitted(s.stored, code, s.secret, dossier_id, session=bind)


def submit(
    session: Session | Connection,
    *,
    commune: Commune,
    offered: OfferedProcedure,
    cleaned: dict[str, object],
    draft: str,
    poster_id: int | None,
    lang: str,
    keys: KeyMaterial,
    calendar: WorkCalendar,
    now: datetime,
    papers: Sequence[Paper] | None = None,
) -> Submitted:
    """Store a validated dossier: sealed, signed, queued with its due date, in the caller's
    transaction (`prepare_submission`, then `store_submission`)."""
    submission = prepare_submission(
        session,
        commune=commune,
        offered=offered,
        cleaned=cleaned,
        draft=draft,
        poster_id=poster_id,
        lang=lang,
        keys=keys,
        calendar=calendar,
        now=now,
        papers=papers,
    )
    return store_submission(session, submission)


def _one_row(cursor: Any) -> tuple[Any, ...]:
    try:
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:
        raise LookupError("the statement returned no row")
    return tuple(row)


def _one_value(cursor: Any) -> Any:
    return _one_row(cursor)[0]


def _dialect_name(bind: Session | Connection) -> str:
    return (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name


_DOSSIER_COLUMNS = [
    "commune_id",
    "public_id",
    "code",
    "procedure_code",
    "procedure_version_id",
    "poster_id",
    "state",
    "idempotency_key",
    "secret_hash",
    "sealed_data",
    "lang",
    "consent_version",
    "received_at",
    "due_date",
    "original_due_date",
    "fee_amount",
    "fee_exemption_state",
    "fee_without_exemption",
    "signature_key_id",
    "signature",
    "content_hash",
    "row_version",
]
_PREPARED_COLUMNS = [name for name in _DOSSIER_COLUMNS if name != "code"]  # Submission.values
_INSERT_DOSSIER = Prepared(insert(_DOSSIER).returning(_DOSSIER.c.id), _DOSSIER_COLUMNS)
# The first event: the commune and dossier come from the dossier's own values.
_EVENT_VALUES = {
    "at": bindparam("event_at", type_=_EVENT.c.at.type),
    "action": bindparam("event_action", type_=_EVENT.c.action.type),
    "from_state": null(),
    "to_state": bindparam("event_to_state", type_=_EVENT.c.to_state.type),
    "public_note": literal(""),
}
_INSERT_EVENT = Prepared(
    insert(_EVENT).values(
        commune_id=bindparam("commune_id"), dossier_id=bindparam("dossier_id"), **_EVENT_VALUES
    )
)
_links: dict[int, Prepared] = {}
_stores: dict[tuple[int, bool], Prepared] = {}


def _papers_of_draft(count: int) -> ColumnElement[bool]:
    """The draft's `count` papers (ids `id0`...), if they are still the draft's."""
    if count == 0:
        return false()
    return and_(
        _PAPER.c.id.in_([bindparam(f"id{n}") for n in range(count)]),
        _PAPER.c.draft_hash == bindparam("draft"),
        _NOT_LINKED,
    )


def _link_papers(count: int) -> Prepared:
    """Give a dossier its `count` papers, if they are still the draft's."""
    found = _links.get(count)
    if found is None:
        found = _links[count] = Prepared(
            update(_PAPER)
            .where(_papers_of_draft(count))
            .values(dossier_id=bindparam("dossier_id"), draft_hash=null())
        )
    return found


def warm_up(dialect: str, *, papers: int = 2) -> None:
    """Build now the submission's statements that are otherwise built on first use: those for
    dossiers with up to `papers` papers, with and without a poster (a new worker's warm-up)."""
    for count in range(papers + 1):
        if dialect == "postgresql":
            _store_dossier_pg(count, False)
            _store_dossier_pg(count, True)
        elif count:
            _link_papers(count)


def _store_dossier_pg(count: int, poster: bool) -> Prepared:
    """PostgreSQL: `store_submission` in one statement (data-modifying WITH). In order: the
    draft's `count` papers, locked, if they are all still the draft's; only then the day's next
    number, the dossier under its code, the papers' links, the first event and the poster's
    count. Answers the new dossier's id and code, or no row when the papers changed (nothing
    written: every write hangs on the papers' check)."""
    found = _stores.get((count, poster))
    if found is not None:
        return found
    papers = select(_PAPER.c.id).where(_papers_of_draft(count)).with_for_update().cte("papers")
    all_there = select(func.count()).select_from(papers).scalar_subquery() == count
    number = (
        pg_insert(_COUNTER)
        .from_select(
            ["commune_id", "day", "last_value"],
            select(
                bindparam("v_commune_id", type_=Integer),
                bindparam("code_day", type_=Date),
                literal(1, Integer),
            ).where(all_there),
            include_defaults=False,
        )
        .on_conflict_do_update(
            index_elements=[_COUNTER.c.commune_id, _COUNTER.c.day],
            set_={"last_value": _COUNTER.c.last_value + 1},
        )
        .returning(_COUNTER.c.last_value)
        .cte("number")
    )
    digits = sql_cast(number.c.last_value, Text)
    code = bindparam("code_prefix", type_=Text) + case(
        (number.c.last_value < 10000, func.lpad(digits, 4, "0")), else_=digits
    )  # as f"{n:04d}"
    dossier = (
        insert(_DOSSIER)
        .from_select(
            [*_PREPARED_COLUMNS, "code"],
            select(
                *(
                    bindparam(f"v_{name}", type_=_DOSSIER.c[name].type)
                    for name in _PREPARED_COLUMNS
                ),
                code,
            ).select_from(number),
            include_defaults=False,
        )
        .returning(_DOSSIER.c.id, _DOSSIER.c.commune_id, _DOSSIER.c.code)
        .cte("new_dossier")
    )
    new_id = select(dossier.c.id).scalar_subquery()
    linked = (
        update(_PAPER)
        .where(_PAPER.c.id.in_(select(papers.c.id)), exists(select(dossier.c.id)))
        .values(dossier_id=new_id, draft_hash=null())
        .cte("linked")
    )
    event = insert(_EVENT).from_select(
        ["commune_id", "dossier_id", *_EVENT_VALUES],
        select(dossier.c.commune_id, dossier.c.id, *_EVENT_VALUES.values()),
    )
    statement = select(dossier.c.id, dossier.c.code).add_cte(linked, event.cte("first_event"))
    if poster:
        counted = (
            pg_insert(_POSTER_DAY)
            .from_select(
                ["poster_id", "day", "commune_id", *_FUNNEL],
                select(
                    bindparam("v_poster_id", type_=Integer),
                    bindparam("code_day", type_=Date),
                    dossier.c.commune_id,
                    *(literal(int(column == "submitted"), Integer) for column in _FUNNEL),
                ),
                include_defaults=False,
            )
            .on_conflict_do_update(
                index_elements=[_POSTER_DAY.c.poster_id, _POSTER_DAY.c.day],
                set_={"submitted": _POSTER_DAY.c.submitted + 1},
            )
        )
        statement = statement.add_cte(counted.cte("poster_count"))
    found = _stores[(count, poster)] = Prepared(statement)
    return found


def dossier_context(dossier: Dossier) -> bytes:
    return _dossier_context(dossier.commune_id, dossier.public_id)


def _dossier_context(commune_id: int, public_id: str) -> bytes:
    return f"dossier:{commune_id}:{public_id}".encode()


def count_poster(
    session: Session | Connection, poster_id: int, commune_id: int, day: date, what: str
) -> None:
    """Add one to a poster's anonymous daily funnel (scans, forms_started, submitted, approved)."""
    if what not in _FUNNEL:
        raise ValueError(what)
    values: dict[str, object] = {"poster_id": poster_id, "day": day, "commune_id": commune_id}
    values.update({column: int(column == what) for column in _FUNNEL})
    session.execute(_POSTER_COUNT, values)


_POSTER_COUNT_SQL = (
    "INSERT INTO poster_day (poster_id, day, commune_id, scans, forms_started, submitted, "
    "approved) "
    "VALUES (:poster_id, :day, :commune_id, :scans, :forms_started, :submitted, :approved) "
    "ON CONFLICT (poster_id, day) DO UPDATE SET "
    "scans = poster_day.scans + :scans, forms_started = poster_day.forms_started + :forms_started, "
    "submitted = poster_day.submitted + :submitted, approved = poster_day.approved + :approved"
)
_POSTER_COUNT = text(_POSTER_COUNT_SQL).bindparams(bindparam("day", type_=Date))
_FUNNEL = ("scans", "forms_started", "submitted", "approved")


# --- Following the dossier ----------------------------------------------------------------------


@dataclass(frozen=True)
class StatusStep:
    at: datetime
    state: DossierState
    note: str
    new_due_date: date | None


@dataclass(frozen=True)
class DossierStatus:
    """What the status page shows: states and dates, never personal data."""

    dossier: Dossier
    commune: Commune
    procedure_name: Message
    steps: list[StatusStep]
    due_date: date
    apology: bool


_DUMMY_SECRET_HASH = hashlib.sha256(b"no such dossier").hexdigest()


def normalise_code(text: str) -> str:
    return "".join(c for c in text.strip().upper() if c.isalnum() or c == "-")[:32]


def lookup_status(session: Session, code: str, secret: str) -> DossierStatus | None:
    """The dossier with this code, if the secret is right; None otherwise (the same answer for a
    wrong code and a wrong secret, in the same time)."""
    code = normalise_code(code)
    # The code starts with the commune's code: look it up through the (commune, code) index.
    dossier = session.scalar(
        select(Dossier)
        .join(Commune, Commune.id == Dossier.commune_id)
        .where(Commune.code == code[:5], Dossier.code == code)
    )
    expected = dossier.secret_hash if dossier is not None else _DUMMY_SECRET_HASH
    if not hmac.compare_digest(expected, secret_hash(secret)) or dossier is None:
        return None
    return dossier_status(session, dossier)


def dossier_status(session: Session, dossier: Dossier) -> DossierStatus:
    commune = session.get(Commune, dossier.commune_id)
    assert commune is not None  # noqa: S101 - foreign key
    defn = definition_by_version_id(session, dossier.procedure_version_id)
    events = session.scalars(
        select(DossierEvent)
        .where(DossierEvent.dossier_id == dossier.id)
        .order_by(DossierEvent.at, DossierEvent.id)
    )
    steps = [
        StatusStep(
            at=e.at,
            state=DossierState(e.to_state),
            note=e.public_note,
            new_due_date=e.new_due_date,
        )
        for e in events
    ]
    return DossierStatus(
        dossier=dossier,
        commune=commune,
        procedure_name=Message(defn.name.vi, defn.name.en),
        steps=steps,
        due_date=dossier.due_date,
        apology=dossier.apology_sent_at is not None,
    )


# By the draft's unique key (idempotency_key, commune_id) only: `+ 0` keeps the commune's other
# indexes out of the planner's choice, whatever its statistics say (storage/models.py).
_BY_DRAFT = select(Dossier).where(
    Dossier.idempotency_key == bindparam("idem"), Dossier.commune_id + 0 == bindparam("commune_id")
)


def find_by_draft(session: Session, commune: Commune, draft: str) -> Dossier | None:
    return session.scalar(_BY_DRAFT, {"commune_id": commune.id, "idem": draft_hash(draft)})


@dataclass(frozen=True, slots=True)
class StoredDossier:
    """What a receipt needs of a dossier already stored for a draft."""

    public_id: str
    commune_id: int
    idempotency_key: str


_DONE = select(_DOSSIER.c.public_id, _DOSSIER.c.commune_id, _DOSSIER.c.idempotency_key).where(
    _DOSSIER.c.idempotency_key == bindparam("idem"),
    _DOSSIER.c.commune_id + 0 == bindparam("commune_id"),  # as _BY_DRAFT
)


def stored_for_draft(session: Session, commune_id: int, draft: str) -> StoredDossier | None:
    """The dossier this draft was already submitted as (a double tap, a retry), if any."""
    row = session.execute(_DONE, {"commune_id": commune_id, "idem": draft_hash(draft)}).first()
    return StoredDossier(*row) if row is not None else None


def all_verify_keys(session: Session) -> dict[str, VerifyKey]:
    """Every commune key of the install (current and retired), for the public receipt check."""
    return {
        row.key_id: VerifyKey.from_public_b64(row.public_key)
        for row in session.scalars(select(SigningKeyRow))
    }


# --- The receipt ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentView:
    """A fee to pay by bank transfer: VietQR payload and what to check in the banking app."""

    amount: int
    amount_words: str
    account_name: str
    account_number: str
    bank_name: str
    purpose: str
    payload: str
    qr_svg: str


def payment_view(dossier: Dossier, commune: Commune) -> PaymentView | None:
    """Only for a fee still owed, and only to the commune's own collecting account."""
    if dossier.fee_amount <= 0 or dossier.fee_paid_at is not None:
        return None
    if not (commune.bank_bin and commune.bank_account and commune.bank_account_name):
        return None
    purpose = f"{dossier.code} LE PHI"
    payload = build_payload(
        bin=commune.bank_bin,
        account=commune.bank_account,
        amount=dossier.fee_amount,
        purpose=purpose,
    )
    return PaymentView(
        amount=dossier.fee_amount,
        amount_words=amount_in_words_vi(dossier.fee_amount),
        account_name=commune.bank_account_name,
        account_number=commune.bank_account,
        bank_name=BANKS.get(commune.bank_bin, commune.bank_bin),
        purpose=purpose,
        payload=payload,
        qr_svg=qr_svg(qr_matrix(payload)),
    )


@dataclass(frozen=True)
class ReceiptView:
    dossier: Dossier
    commune: Commune
    secret: str
    procedure: OfferedProcedure | None
    procedure_name: Message
    documents: list[Message]
    status_url: str
    status_qr_svg: str
    payment: PaymentView | None
    receipt_payload: dict[str, object]


def receipt_view(
    session: Session, dossier_public_id: str, secret: str, *, public_base_url: str
) -> ReceiptView | None:
    dossier = session.scalar(select(Dossier).where(Dossier.public_id == dossier_public_id))
    if dossier is None or not hmac.compare_digest(dossier.secret_hash, secret_hash(secret)):
        return None
    commune = session.get(Commune, dossier.commune_id)
    assert commune is not None  # noqa: S101 - foreign key
    defn = definition_by_version_id(session, dossier.procedure_version_id)
    try:
        offered: OfferedProcedure | None = offered_procedure(
            session, commune, dossier.procedure_code
        )
    except NotFound:
        offered = None
    status_url = f"{public_base_url}/tra-cuu?{urlencode({'ma': dossier.code, 'k': secret})}"
    payload: dict[str, object] = {
        "kind": "receipt",
        "commune": commune.code,
        "commune_name": commune.name,
        "code": dossier.code,
        "procedure": dossier.procedure_code,
        "received_at": dossier.received_at.astimezone(UTC).isoformat(timespec="seconds"),
        "due_date": dossier.original_due_date.isoformat(),
        "fee": dossier.fee_amount,
        "content_hash": dossier.content_hash,
        "dossier_signature": dossier.signature,
        "key_id": dossier.signature_key_id,
    }
    if dossier.fee_exemption_state is not None:
        # "claimed": the fee above is 0 until an official checks the exemption; "refused": the
        # fee above is what is owed; "confirmed": nothing is owed.
        payload["fee_exemption"] = dossier.fee_exemption_state
        payload["fee_without_exemption"] = dossier.fee_without_exemption
    return ReceiptView(
        dossier=dossier,
        commune=commune,
        secret=secret,
        procedure=offered,
        procedure_name=Message(defn.name.vi, defn.name.en),
        documents=[Message(d.vi, d.en) for d in defn.documents],
        status_url=status_url,
        status_qr_svg=qr_svg(qr_matrix(status_url)),
        payment=payment_view(dossier, commune),
        receipt_payload=payload,
    )


# --- Posters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoundPoster:
    poster: Poster
    commune: Commune
    successor: Commune | None

    def usable(self, now: datetime) -> bool:
        p = self.poster
        if p.revoked_at is not None or not self.commune.active:
            return False
        return p.expires_at is None or _aware(p.expires_at) > now


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def poster_by_token(session: Session, token: str, keys: Mapping[str, bytes]) -> FoundPoster | None:
    """The poster a token names, if the token is genuine (None for a forged or altered one)."""
    poster_id = read_token(token, keys)
    if poster_id is None:
        return None
    poster = session.get(Poster, poster_id)
    if poster is None:
        return None
    commune = session.get(Commune, poster.commune_id)
    assert commune is not None  # noqa: S101 - foreign key
    successor = session.get(Commune, commune.successor_id) if commune.successor_id else None
    return FoundPoster(poster, commune, successor)


@dataclass(frozen=True)
class PosterCheck:
    genuine: bool
    active: bool
    commune: Commune | None
    procedure_name: Message | None
    location: str
    message: Message


def poster_check(found: FoundPoster | None, now: datetime) -> PosterCheck:
    if found is None:
        return PosterCheck(
            False,
            False,
            None,
            None,
            "",
            Message(
                "Mã này KHÔNG phải của một áp phích thật. Đừng quét mã QR trên áp phích đó và "
                "báo cho UBND xã.",
                "This code is NOT from a genuine poster. Do not scan that poster's QR code, and "
                "tell the commune office.",
            ),
        )
    p = found.poster
    name = None
    with suppress(LookupError):
        name = Message(*_procedure_names(p.code))
    if found.usable(now):
        msg = Message(
            "Áp phích thật, đang sử dụng. Mã QR trên áp phích phải mở đúng địa chỉ trang của xã.",
            "A genuine poster, in use. Its QR code must open the commune's own address.",
        )
    else:
        msg = Message(
            "Áp phích thật nhưng đã bị thu hồi hoặc hết hạn: đừng dùng mã QR trên đó.",
            "A genuine poster, but revoked or expired: do not use its QR code.",
        )
    return PosterCheck(True, found.usable(now), found.commune, name, p.location, msg)


_catalog_names: dict[str, tuple[str, str]] = {}


def _procedure_names(code: str) -> tuple[str, str]:
    if not _catalog_names:
        for defn in load_catalog():
            _catalog_names[defn.code] = (defn.name.vi, defn.name.en)
    return _catalog_names[code]


# --- Supplements: the citizen answers a request for more -----------------------------------------


def supplement_definition(defn: ProcedureDefinition) -> ProcedureDefinition:
    """The same form with every field optional: the citizen fills in only what they correct."""
    fields = tuple(replace(f, required=False, condition=None) for f in defn.fields)
    return replace(defn, fields=fields)


def submit_supplement(
    session: Session,
    *,
    dossier: Dossier,
    cleaned: dict[str, object],
    note: str,
    draft: str,
    keys: KeyMaterial,
    calendar: WorkCalendar,
    now: datetime,
) -> DossierEvent:
    """Store the citizen's supplement, signed like the original, and restart the clock."""
    now = now.astimezone(UTC)
    commune = session.get(Commune, dossier.commune_id)
    assert commune is not None  # noqa: S101 - foreign key
    new_state = transition(dossier.state, Action.SUBMIT_SUPPLEMENT)
    atts = draft_attachments(session, commune, draft)
    payload: dict[str, object] = {
        "kind": "supplement",
        "commune": commune.code,
        "dossier": dossier.code,
        "at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "note": note,
        # Only what the citizen filled in: an unticked box or an empty field changes nothing,
        # and files are listed below by their hashes.
        "data": {
            k: _canonical_value(v)
            for k, v in sorted(cleaned.items())
            if v not in ("", None, False) and not isinstance(v, list)
        },
        "files": [
            {
                "field": a.field_name,
                "sha256": a.sha256,
                "content_type": a.content_type,
                "size": a.size,
            }
            for a in sorted(atts, key=lambda a: (a.field_name, a.sha256))
        ],
    }
    key = commune_signing_key(session, commune.id, keys.sealing)
    canonical = canonical_bytes(payload)
    signature = sign_canonical(canonical, key)
    resume_clock(dossier, calendar, now)
    previous = dossier.state
    dossier.state = new_state
    event = DossierEvent(
        commune_id=commune.id,
        dossier_id=dossier.id,
        at=now,
        action=Action.SUBMIT_SUPPLEMENT.value,
        from_state=previous.value,
        to_state=new_state.value,
        public_note="",
        new_due_date=dossier.due_date,
        signature_key_id=signature.key_id,
        signature=signature.value,
        content_hash=hashlib.sha256(canonical).hexdigest(),
    )
    session.add(event)
    session.flush()
    # seal_json(payload), from the canonical form already written
    event.sealed_data = seal(canonical, keys.sealing, context=supplement_context(dossier, event))
    for att in atts:
        att.dossier_id = dossier.id
        att.draft_hash = None
    session.flush()
    return event


def supplement_context(dossier: Dossier, event: DossierEvent) -> bytes:
    return f"supplement:{dossier.commune_id}:{dossier.public_id}:{event.id}".encode()


def resume_clock(dossier: Dossier, calendar: WorkCalendar, now: datetime) -> None:
    """Time spent waiting for the citizen does not count against the office (domain.md §6):
    the due date moves by the working days the dossier was paused."""
    if dossier.paused_since is None:
        return
    paused = calendar.working_days_between(_aware(dossier.paused_since), now)
    if paused:
        dossier.due_date = calendar.add_working_days(dossier.due_date, paused)
    dossier.paused_since = None


# --- Posters, staff side ------------------------------------------------------------------------


def create_poster(
    session: Session,
    *,
    commune: Commune,
    code: str,
    location: str,
    keys: KeyMaterial,
    now: datetime,
    created_by: int | None = None,
    expires_at: datetime | None = None,
) -> Poster:
    """A new poster of an enabled procedure of the commune at a place."""
    location = " ".join(location.split())
    if not 2 <= len(location) <= 200:
        raise ValueError("The place must be 2–200 characters, e.g. “Bảng tin UBND xã”.")
    offered_procedure(session, commune, code)  # raises NotFound when not offered
    poster = Poster(
        commune_id=commune.id,
        code=code,
        location=location,
        key_id=keys.poster_current,
        created_by=created_by,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(poster)
    session.flush()
    return poster


def poster_token(poster: Poster, keys: KeyMaterial) -> str:
    return make_token(poster.id, keys.poster_keys[poster.key_id], key_id=poster.key_id)


def active_posters(session: Session, commune: Commune, now: datetime) -> list[Poster]:
    rows = session.scalars(
        select(Poster)
        .where(Poster.commune_id == commune.id, Poster.revoked_at.is_(None))
        .order_by(Poster.code, Poster.location, Poster.id)
    )
    return [p for p in rows if p.expires_at is None or _aware(p.expires_at) > now]


def poster_prints(
    session: Session,
    commune: Commune,
    posters: list[Poster],
    *,
    keys: KeyMaterial,
    public_base_url: str,
) -> list[PosterPrint]:
    """What is printed on each poster (the caller has checked they are active)."""
    out = []
    host = official_host(public_base_url)
    for poster in posters:
        try:
            offered = offered_procedure(session, commune, poster.code)
        except NotFound:
            continue
        token = poster_token(poster, keys)
        out.append(
            PosterPrint(
                procedure_name_vi=offered.name_vi,
                procedure_name_en=offered.name_en,
                commune_name=commune.name,
                province_name=commune.province_name,
                location=poster.location,
                url=poster_url(public_base_url, token),
                short_code=short_code(token),
                official_host=host,
                fee_line=f"Lệ phí: {offered.fee.vi.lower()}"
                if not offered.fee.vi.startswith("Lệ phí")
                else offered.fee.vi,
                processing_line=f"Thời hạn giải quyết: {offered.time.vi.lower()}",
            )
        )
    return out
