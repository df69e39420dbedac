"""Fee collection (thu lệ phí): the staff's use cases around a dossier's fee.

A dossier's fee is computed when it is filed (core.fees) and shown with a VietQR on the receipt
(core.services.payment_view) to the commune's collecting account (tài khoản chuyên thu). From
there it is paid in one of two ways, and this module records both:

- at the desk, in cash or by a transfer the official sees: the official marks the fee paid;
- by bank transfer: the commune admin uploads the account's statement (sao kê) and
  core.reconciliation matches each credit to a dossier by the code in its note and the amount.

Every change is written to the audit log with who and when. The collecting account itself is set
only here, by the commune admin, with an explicit confirmation that it is the commune's account
and not a person's (domain.md §8: citizens are told never to pay a personal account).

Like core.services these take a SQLAlchemy `session` and never commit: the caller owns the
transaction (`with db.writing() as s:`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts import Role
from core.audit_log import record as audit
from core.dossier import DossierState
from core.reconciliation import (
    Due,
    LineResult,
    Outcome,
    Statement,
    codes_in,
    read_statement,
    reconcile,
    statement_codes,
)
from core.sealing import Keyring, seal, unseal
from core.staff_auth import OutOfScope, StaffIdentity
from core.text import Message
from core.vietqr import CollectingAccount
from storage.models import BankTransfer, Commune, Dossier, StatementUpload

# A fee cannot be owed on a dossier that was refused or withdrawn.
NO_FEE_STATES = frozenset({DossierState.REFUSED, DossierState.WITHDRAWN})
NO_FEE_FOR_CLOSED = Message(
    "Hồ sơ đã bị từ chối hoặc rút: không thu lệ phí.",
    "The dossier was refused or withdrawn: no fee is collected.",
)


class NotFound(Exception):
    """No such dossier or statement in this commune."""


class PaymentRefused(Exception):
    """The fee cannot be marked paid; `message` says why."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.en)
        self.message = message


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# --- Who may do what ------------------------------------------------------------------------------
#
# The collecting account and the bank statements are the commune admin's (the office's money, not a
# dossier's contents). Fees at the desk are recorded by the officials who handle the procedure. The
# list of fees owed (codes and amounts, no personal data) is shown to the commune's officials for
# their procedures, and to its admin and leaders in full.


def may_manage(staff: StaffIdentity) -> bool:
    """Set the collecting account and reconcile statements."""
    return staff.role == Role.ADMIN and staff.commune_id is not None


def may_mark_paid(staff: StaffIdentity) -> bool:
    return staff.role == Role.OFFICIAL and staff.commune_id is not None


def visible_procedures(staff: StaffIdentity) -> frozenset[str] | None:
    """The procedures whose owed fees `staff` sees (None: all of the commune)."""
    if staff.commune_id is None:
        raise OutOfScope("fees")
    if staff.role == Role.OFFICIAL:
        return staff.procedures
    return None


def dossier_for_staff(session: Session, staff: StaffIdentity, code: str) -> Dossier:
    """The dossier with this code, if `staff` handles it; NotFound otherwise (the same answer for
    another commune's dossier, another official's procedure and no dossier at all)."""
    if staff.commune_id is None:
        raise NotFound(code)
    dossier = dossier_by_code(session, staff.commune_id, code)
    if not staff.covers(dossier.commune_id, dossier.procedure_code):
        raise NotFound(code)
    return dossier


# --- The collecting account -----------------------------------------------------------------------


def collecting_account(commune: Commune) -> CollectingAccount | None:
    if commune.bank_bin and commune.bank_account and commune.bank_account_name:
        return CollectingAccount(commune.bank_bin, commune.bank_account, commune.bank_account_name)
    return None


def set_collecting_account(
    session: Session,
    *,
    commune: Commune,
    account: CollectingAccount | None,
    actor: str,
    now: datetime,
) -> None:
    """Set (or, with None, remove) the account citizens are shown on receipts; audited."""
    before = collecting_account(commune)
    if before == account:
        return
    commune.bank_bin = account.bin if account else None
    commune.bank_account = account.account if account else None
    commune.bank_account_name = account.name if account else None
    session.flush()  # the row change before the audit event (see core.audit_log)
    audit(
        session,
        actor=actor,
        action="fees.account_set" if account else "fees.account_removed",
        target=f"commune:{commune.code}",
        commune_id=commune.id,
        detail={
            "bin": account.bin if account else None,
            "account": account.account if account else None,
            "name": account.name if account else None,
            "previous_bin": before.bin if before else None,
            "previous_account": before.account if before else None,
        },
        now=now,
    )


# --- Fees at the desk -----------------------------------------------------------------------------


def dossier_by_code(session: Session, commune_id: int, code: str) -> Dossier:
    """The commune's dossier with this code, as typed off paper or a transfer note: '27517 261122
    0001' and '275172611220001' are '27517-261122-0001'. Text holding no code is NotFound without
    asking the database (PostgreSQL refuses some bytes a person may paste, e.g. NUL)."""
    found = codes_in(code)
    dossier = (
        session.scalar(
            select(Dossier).where(Dossier.commune_id == commune_id, Dossier.code == found[0])
        )
        if found
        else None
    )
    if dossier is None:
        raise NotFound(code)
    return dossier


@dataclass(frozen=True)
class OwedFee:
    """A dossier with a fee not yet recorded as paid, for the desk's list."""

    code: str
    procedure_code: str
    received_at: datetime
    fee_amount: int
    received_by_transfer: int  # partial transfers already recorded


def owed_fees(
    session: Session, commune_id: int, *, procedures: Iterable[str] | None = None, limit: int = 200
) -> list[OwedFee]:
    """Dossiers of the commune that owe a fee, newest first (only `procedures`, if given)."""
    query = (
        select(Dossier)
        .where(
            Dossier.commune_id == commune_id,
            Dossier.fee_amount > 0,
            Dossier.fee_paid_at.is_(None),
            Dossier.purged_at.is_(None),
            Dossier.state.not_in(NO_FEE_STATES),
        )
        .order_by(Dossier.received_at.desc(), Dossier.id.desc())
        .limit(limit)
    )
    if procedures is not None:
        query = query.where(Dossier.procedure_code.in_(list(procedures)))
    dossiers = list(session.scalars(query))
    partial = _partial_amounts(session, commune_id, [d.code for d in dossiers])
    return [
        OwedFee(
            code=d.code,
            procedure_code=d.procedure_code,
            received_at=_aware(d.received_at) or d.received_at,
            fee_amount=d.fee_amount,
            received_by_transfer=partial.get(d.code, 0),
        )
        for d in dossiers
    ]


def mark_fee_paid(
    session: Session,
    *,
    dossier: Dossier,
    staff_id: int,
    actor: str,
    now: datetime,
    note: str = "",
) -> None:
    """An official records that the dossier's fee was paid (cash at the desk, or a transfer they
    checked by hand); who and when go to the dossier and the audit log."""
    if dossier.fee_amount <= 0:
        raise PaymentRefused(
            Message("Hồ sơ này không phải nộp lệ phí.", "This dossier owes no fee.")
        )
    if dossier.fee_paid_at is not None:
        raise PaymentRefused(
            Message(
                "Lệ phí của hồ sơ này đã được ghi nhận trước đó.",
                "This dossier's fee was already recorded as paid.",
            )
        )
    if dossier.state in NO_FEE_STATES:
        raise PaymentRefused(NO_FEE_FOR_CLOSED)
    dossier.fee_paid_at = now
    dossier.fee_paid_by = staff_id
    session.flush()  # the row change before the audit event (see core.audit_log)
    audit(
        session,
        actor=actor,
        action="fees.paid_at_desk",
        target=f"dossier:{dossier.code}",
        commune_id=dossier.commune_id,
        detail={"amount": dossier.fee_amount, "note": " ".join(note.split())[:200] or None},
        now=now,
    )


def decide_exemption(
    session: Session,
    *,
    dossier: Dossier,
    confirm: bool,
    staff_id: int,
    actor: str,
    now: datetime,
) -> None:
    """An official has checked the proof of the exempt group the citizen declared: confirmed, the
    dossier owes nothing; refused, it owes the fee it would have owed without the exemption (and
    the receipt and status pages show the VietQR for it). Decided once; audited."""
    if dossier.fee_exemption_state != "claimed":
        raise PaymentRefused(
            Message(
                "Hồ sơ này không có yêu cầu miễn lệ phí đang chờ kiểm tra.",
                "This dossier has no fee exemption waiting to be checked.",
            )
        )
    if dossier.state in NO_FEE_STATES:
        raise PaymentRefused(NO_FEE_FOR_CLOSED)
    dossier.fee_exemption_state = "confirmed" if confirm else "refused"
    if not confirm:
        dossier.fee_amount = dossier.fee_without_exemption
    session.flush()  # the row change before the audit event (see core.audit_log)
    audit(
        session,
        actor=actor,
        action="fees.exemption_confirmed" if confirm else "fees.exemption_refused",
        target=f"dossier:{dossier.code}",
        commune_id=dossier.commune_id,
        detail={"amount": dossier.fee_amount, "by": staff_id},
        now=now,
    )


# --- Bank statements ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Uploaded:
    upload: StatementUpload
    created: bool  # False: this very file was uploaded before, nothing changed
    statement: Statement | None  # None when nothing was read (the same file again)


def statement_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_upload_by_hash(session: Session, commune_id: int, sha256: str) -> StatementUpload | None:
    return session.scalar(
        select(StatementUpload).where(
            StatementUpload.commune_id == commune_id, StatementUpload.sha256 == sha256
        )
    )


def transfer_context(commune_id: int, reference: str) -> bytes:
    return f"bank-transfer:{commune_id}:{reference}".encode()


def upload_statement(
    session: Session,
    *,
    commune: Commune,
    data: bytes,
    staff_id: int,
    actor: str,
    keyring: Keyring,
    now: datetime,
) -> Uploaded:
    """Read a statement, record its credits and mark the fees they pay exactly.

    The same file again returns the first upload unchanged; a transfer already recorded (its bank
    reference) is a duplicate and changes nothing. Raises core.reconciliation.StatementError when
    the file cannot be read.
    """
    digest = statement_sha256(data)
    existing = find_upload_by_hash(session, commune.id, digest)
    if existing is not None:
        return Uploaded(existing, created=False, statement=None)
    statement = read_statement(data)
    codes = sorted(statement_codes(statement))
    dossiers = {d.code: d for d in _dossiers_by_code(session, commune.id, codes)}
    partial = _partial_amounts(session, commune.id, list(dossiers))
    dues = {
        code: Due(
            code=code,
            fee_amount=0 if d.state in NO_FEE_STATES else d.fee_amount,
            paid=d.fee_paid_at is not None,
            received=partial.get(code, 0),
        )
        for code, d in dossiers.items()
    }
    references = sorted({line.reference for line in statement.lines if line.amount > 0})
    known = _recorded_references(session, commune.id, references)
    results = reconcile(statement, dues, known_references=known)

    upload = StatementUpload(
        commune_id=commune.id,
        sha256=digest,
        uploaded_by=staff_id,
        uploaded_at=now,
        **_counts(results),
        report=json.dumps([_report_row(r) for r in results], ensure_ascii=False),
    )
    session.add(upload)
    session.flush()
    notes = {line.number: line.description for line in statement.lines}
    paid: list[tuple[Dossier, LineResult]] = []
    for r in results:
        if not r.outcome.recorded:
            continue
        dossier = dossiers.get(r.code) if r.code else None
        keep_note = r.outcome != Outcome.MATCHED and notes.get(r.number)
        session.add(
            BankTransfer(
                commune_id=commune.id,
                reference=r.reference,
                amount=r.amount,
                booked_on=r.booked_on,
                dossier_code=r.code,
                dossier_id=dossier.id if dossier is not None else None,
                status=r.outcome.value,
                description_sealed=(
                    seal(
                        notes[r.number].encode(),
                        keyring,
                        context=transfer_context(commune.id, r.reference),
                    )
                    if keep_note
                    else None
                ),
                statement_upload_id=upload.id,
                line_number=r.number,
                created_at=now,
            )
        )
        if r.outcome == Outcome.MATCHED and dossier is not None:
            dossier.fee_paid_at = now
            dossier.fee_paid_by = staff_id
            paid.append((dossier, r))
    # Row changes first, audit events last (core.audit_log: its lock is always taken second).
    session.flush()
    for dossier, r in paid:
        audit(
            session,
            actor=actor,
            action="fees.paid_by_transfer",
            target=f"dossier:{dossier.code}",
            commune_id=commune.id,
            detail={"amount": r.amount, "reference": r.reference, "statement": upload.id},
            now=now,
        )
    audit(
        session,
        actor=actor,
        action="fees.statement_uploaded",
        target=f"statement:{upload.id}",
        commune_id=commune.id,
        detail={
            "sha256": digest,
            "lines": upload.lines,
            "matched": upload.matched,
            "mismatched": upload.mismatched,
            "unknown": upload.unknown,
            "already_paid": upload.already_paid,
            "duplicates": upload.duplicates,
            "ignored": upload.ignored,
        },
        now=now,
    )
    session.flush()
    return Uploaded(upload, created=True, statement=statement)


# SQLite allows 32,766 parameters per statement; a statement of a busy year can name thousands of
# dossiers and references, so lookups go a few hundred values at a time.
_CHUNK = 500


def _dossiers_by_code(session: Session, commune_id: int, codes: Sequence[str]) -> list[Dossier]:
    rows: list[Dossier] = []
    for start in range(0, len(codes), _CHUNK):
        chunk = list(codes[start : start + _CHUNK])
        rows.extend(
            session.scalars(
                select(Dossier).where(Dossier.commune_id == commune_id, Dossier.code.in_(chunk))
            )
        )
    return rows


def _recorded_references(session: Session, commune_id: int, refs: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(refs), _CHUNK):
        chunk = list(refs[start : start + _CHUNK])
        found.update(
            session.scalars(
                select(BankTransfer.reference).where(
                    BankTransfer.commune_id == commune_id, BankTransfer.reference.in_(chunk)
                )
            )
        )
    return found


def _partial_amounts(session: Session, commune_id: int, codes: Sequence[str]) -> dict[str, int]:
    """Sum of the underpaid transfers recorded so far per dossier code (they count towards the
    fee, so a citizen who sends the rest later gets a match)."""
    totals: dict[str, int] = {}
    for start in range(0, len(codes), _CHUNK):
        chunk = list(codes[start : start + _CHUNK])
        rows = session.execute(
            select(BankTransfer.dossier_code, func.sum(BankTransfer.amount))
            .where(
                BankTransfer.commune_id == commune_id,
                BankTransfer.status == Outcome.UNDERPAID.value,
                BankTransfer.dossier_code.in_(chunk),
            )
            .group_by(BankTransfer.dossier_code)
        )
        for code, total in rows:
            totals[str(code)] = int(total or 0)
    return totals


def _counts(results: Sequence[LineResult]) -> dict[str, int]:
    def n(*outcomes: Outcome) -> int:
        return sum(1 for r in results if r.outcome in outcomes)

    return {
        "lines": len(results),
        "matched": n(Outcome.MATCHED),
        "mismatched": n(Outcome.UNDERPAID, Outcome.OVERPAID),
        "unknown": n(Outcome.UNKNOWN_CODE, Outcome.AMBIGUOUS),
        "already_paid": n(Outcome.ALREADY_PAID),
        "duplicates": n(Outcome.DUPLICATE),
        "ignored": n(Outcome.NOT_CREDIT, Outcome.UNREADABLE),
    }


def _report_row(r: LineResult) -> dict[str, object]:
    return {
        "line": r.number,
        "outcome": r.outcome.value,
        "code": r.code,
        "amount": r.amount,
        "owed": r.owed,
        "reference": r.reference if not r.reference.startswith("#") else "",
        "booked_on": r.booked_on.isoformat() if r.booked_on else None,
        "reason_vi": r.reason.vi,
        "reason_en": r.reason.en,
    }


@dataclass(frozen=True)
class ReportLine:
    """One line of an upload's report, as the statement page shows it."""

    line: int
    outcome: Outcome
    code: str | None
    amount: int
    owed: int | None
    reference: str
    booked_on: date | None
    reason: Message
    note: str | None  # the transfer note, unsealed, for lines a person has to sort out


def statement_uploads(session: Session, commune_id: int, limit: int = 24) -> list[StatementUpload]:
    return list(
        session.scalars(
            select(StatementUpload)
            .where(StatementUpload.commune_id == commune_id)
            .order_by(StatementUpload.uploaded_at.desc(), StatementUpload.id.desc())
            .limit(limit)
        )
    )


def statement_upload(session: Session, commune_id: int, upload_id: int) -> StatementUpload:
    upload = session.get(StatementUpload, upload_id)
    if upload is None or upload.commune_id != commune_id:
        raise OutOfScope(
            f"statement:{upload_id}", "not_found" if upload is None else "out_of_scope"
        )
    return upload


def upload_report(session: Session, upload: StatementUpload, keyring: Keyring) -> list[ReportLine]:
    """The upload's lines with their outcome and reason; notes of lines to sort out unsealed."""
    transfers = {
        t.line_number: t
        for t in session.scalars(
            select(BankTransfer).where(BankTransfer.statement_upload_id == upload.id)
        )
    }
    lines = []
    for row in json.loads(upload.report):
        outcome = Outcome(row["outcome"])
        transfer = transfers.get(row["line"])
        note = None
        if transfer is not None and transfer.description_sealed:
            note = unseal(
                transfer.description_sealed,
                keyring,
                context=transfer_context(upload.commune_id, transfer.reference),
            ).decode()
        lines.append(
            ReportLine(
                line=int(row["line"]),
                outcome=outcome,
                code=row["code"],
                amount=int(row["amount"]),
                owed=row["owed"],
                reference=str(row["reference"]),
                booked_on=date.fromisoformat(row["booked_on"]) if row["booked_on"] else None,
                reason=Message(row["reason_vi"], row["reason_en"]),
                note=note,
            )
        )
    return lines
