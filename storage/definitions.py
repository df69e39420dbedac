"""Procedure versions as definitions: parsed once per process (a stored version never changes)."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.orm import Session

from procedures.catalog import load_definition
from procedures.schema import ProcedureDefinition
from storage.models import ProcedureVersion


@lru_cache(maxsize=4096)
def _parse(version_id: int, text: str) -> ProcedureDefinition:
    return load_definition(text, source=f"procedure_version:{version_id}")


def definition_of(version: ProcedureVersion) -> ProcedureDefinition:
    return _parse(version.id, version.definition)


def definition_by_version_id(session: Session, version_id: int) -> ProcedureDefinition:
    version = session.get(ProcedureVersion, version_id)
    if version is None:
        raise LookupError(f"procedure version {version_id} does not exist")
    return definition_of(version)
