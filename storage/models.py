"""The tables of the kiosk, as typed SQLAlchemy 2.0 models.

One install serves many communes (xã/phường): every row that belongs to a commune carries
`commune_id`, and every query a person can trigger is scoped by it. Personal data never sits here
in clear: form values, names of uploaded files and TOTP secrets are sealed (AES-GCM, key outside
the database, see `core.sealing`); dossiers, supplements and decisions carry an Ed25519 signature
over their canonical form (`core.signing`), so an edited row is detected.

Times are stored as timezone-aware UTC datetimes; calendar days (due dates, statistics) as dates in
the commune's local time (Asia/Ho_Chi_Minh).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.dossier import DossierState

# Stable constraint names, so Alembic diffs are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _uuid() -> str:
    return uuid.uuid4().hex


UTCDateTime = DateTime(timezone=True)


class Commune(Base):
    """An administrative unit (xã, phường, đặc khu) that runs the kiosk."""

    __tablename__ = "commune"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(5), unique=True)  # QĐ 19/2025 5-digit code
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))  # "Xã Nhuận Đức"
    province_code: Mapped[str] = mapped_column(String(2))
    province_name: Mapped[str] = mapped_column(String(120))
    public_host: Mapped[str | None] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(300), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    office_hours: Mapped[str] = mapped_column(String(300), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # A commune merged into another (2025 reorganisation): its posters point to the successor.
    successor_id: Mapped[int | None] = mapped_column(ForeignKey("commune.id"))
    # The commune's collecting account for fees (VietQR); set only by the commune admin.
    bank_bin: Mapped[str | None] = mapped_column(String(6))
    bank_account: Mapped[str | None] = mapped_column(String(19))
    bank_account_name: Mapped[str | None] = mapped_column(String(25))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SigningKey(Base):
    """A commune's Ed25519 key; the private half is sealed. Retired keys still verify."""

    __tablename__ = "signing_key"
    __table_args__ = (UniqueConstraint("commune_id", "key_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("commune.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(32))
    public_key: Mapped[str] = mapped_column(String(64))  # base64 of the raw 32 bytes
    private_key_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProcedureVersion(Base):
    """One published version of a procedure definition (immutable once written).

    `commune_id` is NULL for the shared catalog (procedures/*.toml) and set for a commune's own
    edited version. Dossiers point at the exact version they were filed under.
    """

    __tablename__ = "procedure_version"
    __table_args__ = (UniqueConstraint("commune_id", "code", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("commune.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    definition: Mapped[str] = mapped_column(Text)  # TOML text, the same format as procedures/
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))


class ProcedureDraft(Base):
    """An unpublished edit of a procedure definition (bản nháp): one per procedure and scope.

    `scope` is "commune:<id>" for a commune's own procedures and "shared" for the province's
    shared catalog. `data` is the definition in the catalog file's shape, as JSON, kept even while
    it is broken (core.procedure_editor); publishing turns it into a new ProcedureVersion.
    `base_version_id` is the version it started from, so publishing over a newer one is noticed;
    `revision` grows on every save, so two admins saving at once do not overwrite each other.
    """

    __tablename__ = "procedure_draft"
    __table_args__ = (UniqueConstraint("scope", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(24))
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("commune.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    base_version_id: Mapped[int | None] = mapped_column(ForeignKey("procedure_version.id"))
    data: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))


class CommuneProcedure(Base):
    """A commune's settings for one catalog procedure: on/off, fee, time, instructions."""

    __tablename__ = "commune_procedure"
    __table_args__ = (UniqueConstraint("commune_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("commune.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    version_id: Mapped[int] = mapped_column(ForeignKey("procedure_version.id"))
    fee_amount: Mapped[int | None] = mapped_column(Integer)  # VND; None = the definition's
    processing_days: Mapped[int | None] = mapped_column(Integer)  # None = the definition's
    instructions_vi: Mapped[str] = mapped_column(Text, default="")
    instructions_en: Mapped[str] = mapped_column(Text, default="")
    result_place: Mapped[str] = mapped_column(String(300), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    version: Mapped[ProcedureVersion] = relationship(lazy="joined")


class StaffUser(Base):
    """A commune staff account: admin, official or leader (province_admin has no commune)."""

    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("commune.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    totp_secret_sealed: Mapped[str | None] = mapped_column(Text)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # single-use codes
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaffProcedure(Base):
    """Which procedures an official handles."""

    __tablename__ = "staff_procedure"

    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)


class StaffSession(Base):
    """Server-side staff session: logout, disabling a user or a new password ends it."""

    __tablename__ = "staff_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie token
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    second_factor_done: Mapped[bool] = mapped_column(Boolean, default=False)


class Poster(Base):
    """A procedure at a place: what a printed QR code opens."""

    __tablename__ = "poster"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("commune.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))  # procedure code
    location: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str] = mapped_column(String(8))  # which poster key signed its token
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))


class PosterDay(Base):
    """Anonymous daily funnel of one poster: no IP, no device, only counts."""

    __tablename__ = "poster_day"

    poster_id: Mapped[int] = mapped_column(ForeignKey("poster.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("commune.id"), index=True)
    scans: Mapped[int] = mapped_column(Integer, default=0)
    forms_started: Mapped[int] = mapped_column(Integer, default=0)
    submitted: Mapped[int] = mapped_column(Integer, default=0)
    approved: Mapped[int] = mapped_column(Integer, default=0)


class DossierCounter(Base):
    """Per commune and day sequence for dossier codes `<commune>-YYMMDD-NNNN`."""

    __tablename__ = "dossier_counter"

    commune_id: Mapped[int] = mapped_column(ForeignKey("commune.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer, default=0)


class Dossier(Base):
    """A citizen's submission (hồ sơ) and where it stands."""

    __tablename__ = "dossier"
    __table_args__ = (
        UniqueConstraint("commune_id", "code"),
        # A draft is stored once per commune. The draft's hash leads, so a look-up by draft
        # (`commune_id + 0`, core.services) can use only this index: with the commune leading,
        # PostgreSQL without fresh statistics took the queue index instead and read every
        # dossier of the commune (bench/submit_bench.py slowed down with each round).
        UniqueConstraint("idempotency_key", "commune_id"),
        # The officials' queue: open dossiers of a commune by urgency (keyset pagination).
        Index("ix_dossier_queue", "commune_id", "state", "due_date", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=_uuid)
    commune_id: Mapped[int] = mapped_column(ForeignKey("commune.id"))
    code: Mapped[str] = mapped_column(String(32))
    procedure_code: Mapped[str] = mapped_column(String(64))
    procedure_version_id: Mapped[int] = mapped_column(ForeignKey("procedure_version.id"))
    poster_id: Mapped[int | None] = mapped_column(ForeignKey("poster.id"))
    state: Mapped[DossierState] = mapped_column(
        Enum(
            DossierState,
            native_enum=False,
            length=24,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    idempotency_key: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the citizen's secret
    sealed_data: Mapped[str] = mapped_column(Text)  # form values, sealed (core.sealing)
    lang: Mapped[str] = mapped_column(String(2), default="vi")
    consent_version: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_date: Mapped[date] = mapped_column(Date)
    original_due_date: Mapped[date] = mapped_column(Date)
    apology_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fee_amount: Mapped[int] = mapped_column(Integer, default=0)
    fee_paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fee_paid_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    # A fee exemption the citizen declared (which group stays in the sealed data: a disability is
    # sensitive personal data) and what the official found: "claimed" (fee_amount is 0 until
    # checked), "confirmed", or "refused" (fee_amount is then fee_without_exemption).
    fee_exemption_state: Mapped[str | None] = mapped_column(String(16))
    fee_without_exemption: Mapped[int] = mapped_column(Integer, default=0)
    assigned_to: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signature_key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(128))
    content_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the signed canonical form
    # Optimistic concurrency: every state change bumps it, so two officials can't both win.
    row_version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": row_version}


class Attachment(Base):
    """An uploaded paper (photo or PDF), sealed on disk outside static/ under a random name.

    Files are accepted before the dossier exists (so a form that comes back with errors does not
    ask for them again): until submission they hang on the form's draft token.
    """

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=_uuid)
    commune_id: Mapped[int] = mapped_column(ForeignKey("commune.id"), index=True)
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossier.id"), index=True)
    draft_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    field_name: Mapped[str] = mapped_column(String(64))
    storage_name: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    name_sealed: Mapped[str] = mapped_column(Text)  # the citizen's file name, sealed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DossierEvent(Base):
    """One step of a dossier's history; `public` steps are shown on the citizen's status page."""

    __tablename__ = "dossier_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("commune.id"))
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    public_note: Mapped[str] = mapped_column(Text, default="")  # reason the citizen sees
    sealed_data: Mapped[str | None] = mapped_column(Text)  # a supplement's corrected values
    new_due_date: Mapped[date | None] = mapped_column(Date)
    signature_key_id: Mapped[str | None] = mapped_column(String(32))
    signature: Mapped[str | None] = mapped_column(String(128))
    content_hash: Mapped[str | None] = mapped_column(String(64))


class StatementUpload(Base):
    """A bank statement (sao kê) a commune admin uploaded to reconcile fee transfers.

    The file itself is not kept. Its SHA-256 is unique per commune, so the same file uploaded
    twice is recognised and changes nothing; `report` is the line-by-line outcome as JSON (line
    number, outcome, dossier code, amount, bank reference and the reason in both languages, never
    the transfer note, which may name the payer).
    """

    __tablename__ = "statement_upload"
    __table_args__ = (UniqueConstraint("commune_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("commune.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lines: Mapped[int] = mapped_column(Integer, default=0)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    mismatched: Mapped[int] = mapped_column(Integer, default=0)  # under- or overpaid
    unknown: Mapped[int] = mapped_column(Integer, default=0)  # no (single) dossier code
    already_paid: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    ignored: Mapped[int] = mapped_column(Integer, default=0)  # debits and unreadable lines
    report: Mapped[str] = mapped_column(Text, default="[]")


class BankTransfer(Base):
    """One credit on the commune's collecting account, read from a statement.

    The bank's reference is unique per commune: a transfer is recorded once, however many
    statements list it. The transfer note may hold the payer's name, so it is kept only where an
    official needs it to sort the transfer out by hand (any outcome but an exact match), and then
    sealed (core.sealing, context `bank-transfer:<commune id>:<reference>`); for a match the
    dossier code and amount say all there is to say.
    """

    __tablename__ = "bank_transfer"
    __table_args__ = (
        UniqueConstraint("commune_id", "reference"),
        Index("ix_bank_transfer_dossier", "commune_id", "dossier_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("commune.id"))
    reference: Mapped[str] = mapped_column(String(64))  # the bank's, or "#" + a fingerprint
    amount: Mapped[int] = mapped_column(BigInteger)  # VND received
    booked_on: Mapped[date | None] = mapped_column(Date)
    dossier_code: Mapped[str | None] = mapped_column(String(32))  # the code found in the note
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossier.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # core.reconciliation.Outcome value
    description_sealed: Mapped[str | None] = mapped_column(Text)
    statement_upload_id: Mapped[int] = mapped_column(ForeignKey("statement_upload.id"), index=True)
    line_number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """Append-only, hash-chained audit log (see core.audit): one chain per install."""

    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("commune.id"), index=True)
    at: Mapped[str] = mapped_column(String(40))  # ISO timestamp, exactly as hashed
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(120))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON, exactly as hashed
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class RateCounter(Base):
    """Fixed-window counters shared by every server worker (and host, on PostgreSQL)."""

    __tablename__ = "rate_counter"

    bucket: Mapped[str] = mapped_column(String(128), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
