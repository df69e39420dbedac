"""the draft's hash leads the dossier's once-per-draft key

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 16:10:00

A look-up by draft reads `idempotency_key = :idem AND commune_id + 0 = :commune`, which only this
index serves. With (commune_id, idempotency_key), PostgreSQL without fresh statistics (autovacuum
off, or behind after a burst) took the queue index (commune_id, ...) instead and read every
dossier of the commune for each submission.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dossier") as batch:
        batch.drop_constraint("uq_dossier_commune_id_idempotency_key", type_="unique")
        batch.create_unique_constraint(
            "uq_dossier_idempotency_key_commune_id", ["idempotency_key", "commune_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("dossier") as batch:
        batch.drop_constraint("uq_dossier_idempotency_key_commune_id", type_="unique")
        batch.create_unique_constraint(
            "uq_dossier_commune_id_idempotency_key", ["commune_id", "idempotency_key"]
        )
