"""Setting up an install (cài đặt): schema, shared catalog, communes, their keys, the demo.

`init` runs these in one transaction and is idempotent: a second run changes nothing and loses
nothing. A catalog file that changed becomes a new procedure version; communes that follow the
shared catalog move to it for new dossiers, old dossiers keep the version they were filed under.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.keys import KeyMaterial
from core.sealing import seal
from core.signing import generate_signing_key
from procedures.catalog import Catalog, definition_version, dump_definition
from storage.models import Commune, CommuneProcedure, ProcedureVersion, SigningKey


@dataclass(frozen=True)
class CommuneSpec:
    code: str
    slug: str
    name: str
    province_code: str
    province_name: str
    address: str = ""
    phone: str = ""
    office_hours: str = ""
    public_host: str | None = None
    bank_bin: str | None = None
    bank_account: str | None = None
    bank_account_name: str | None = None


# The demo commune, modelled on Nhuận Đức (Củ Chi, HCMC). The code, phone and bank account are
# fictional demo values: a real install sets the official QĐ 19/2025 code and its own account.
DEMO_COMMUNE = CommuneSpec(
    code="27517",
    slug="nhuan-duc",
    name="Xã Nhuận Đức",
    province_code="79",
    province_name="Thành phố Hồ Chí Minh",
    address="Ấp Bàu Tròn, xã Nhuận Đức, TP. Hồ Chí Minh",
    phone="028 0000 0000",
    office_hours="Thứ Hai – Thứ Sáu 7:30–11:30, 13:30–17:00; sáng Thứ Bảy 7:30–11:30",
    bank_bin="970405",
    bank_account="1700201234567",
    bank_account_name="UBND XA NHUAN DUC",
)


def sync_catalog(
    session: Session, catalog: Catalog, *, now: datetime
) -> dict[str, ProcedureVersion]:
    """Make sure every catalog definition is stored as a shared version; return the newest."""
    newest: dict[str, ProcedureVersion] = {}
    for defn in catalog:
        version = definition_version(defn)
        row = session.scalar(
            select(ProcedureVersion).where(
                ProcedureVersion.commune_id.is_(None),
                ProcedureVersion.code == defn.code,
                ProcedureVersion.version == version,
            )
        )
        if row is None:
            row = ProcedureVersion(
                commune_id=None,
                code=defn.code,
                version=version,
                definition=dump_definition(defn),
                created_at=now,
            )
            session.add(row)
            session.flush()
        newest[defn.code] = row
    return newest


def ensure_commune(session: Session, spec: CommuneSpec, *, now: datetime) -> Commune:
    commune = session.scalar(select(Commune).where(Commune.slug == spec.slug))
    if commune is None:
        commune = Commune(
            code=spec.code,
            slug=spec.slug,
            name=spec.name,
            province_code=spec.province_code,
            province_name=spec.province_name,
            address=spec.address,
            phone=spec.phone,
            office_hours=spec.office_hours,
            public_host=spec.public_host,
            bank_bin=spec.bank_bin,
            bank_account=spec.bank_account,
            bank_account_name=spec.bank_account_name,
            active=True,
            created_at=now,
        )
        session.add(commune)
        session.flush()
    return commune


def ensure_signing_key(
    session: Session, commune: Commune, keys: KeyMaterial, *, now: datetime
) -> SigningKey:
    """The commune's current Ed25519 key, created (and sealed) on first use."""
    current = session.scalar(
        select(SigningKey)
        .where(SigningKey.commune_id == commune.id, SigningKey.retired_at.is_(None))
        .order_by(SigningKey.id.desc())
    )
    if current is not None:
        return current
    return add_signing_key(session, commune, keys, now=now)


def add_signing_key(
    session: Session, commune: Commune, keys: KeyMaterial, *, now: datetime
) -> SigningKey:
    """A new current key for the commune; the previous ones are retired but still verify."""
    for old in session.scalars(
        select(SigningKey).where(
            SigningKey.commune_id == commune.id, SigningKey.retired_at.is_(None)
        )
    ):
        old.retired_at = now
    key = generate_signing_key()
    row = SigningKey(
        commune_id=commune.id,
        key_id=key.key_id,
        public_key=base64.b64encode(key.public_bytes()).decode(),
        private_key_sealed=seal(
            key.private_bytes(),
            keys.sealing,
            context=f"signing-key:{commune.id}:{key.key_id}".encode(),
        ),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def enable_procedures(
    session: Session,
    commune: Commune,
    versions: dict[str, ProcedureVersion],
    *,
    now: datetime,
) -> None:
    """Give the commune a setting row for every catalog procedure (enabled on creation), and move
    those that follow the shared catalog to its newest version."""
    existing = {
        cp.code: cp
        for cp in session.scalars(
            select(CommuneProcedure).where(CommuneProcedure.commune_id == commune.id)
        )
    }
    for position, (code, version) in enumerate(versions.items()):
        setting = existing.get(code)
        if setting is None:
            session.add(
                CommuneProcedure(
                    commune_id=commune.id,
                    code=code,
                    enabled=True,
                    position=position,
                    version_id=version.id,
                    updated_at=now,
                )
            )
        elif setting.version.commune_id is None and setting.version_id != version.id:
            setting.version_id = version.id
            setting.updated_at = now
    session.flush()
