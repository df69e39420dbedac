"""Fees (lệ phí) of a dossier, computed from the procedure's rule, never typed by anyone.

Rules (domain.md §2): free; fixed per case; per copy (extract copies, 8,000 đ each); per page
(certified copies: 2,000 đ per page for pages 1–2, 1,000 đ per page from page 3, at most 200,000 đ
per copy, times the number of copies); set per commune by the provincial People's Council. Birth
and death registrations are free when filed within their legal window (60 and 15 days).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from procedures.schema import Fee, FeeKind, ProcedureDefinition


def per_page_amount(fee: Fee, pages: int) -> int:
    """Fee for ONE copy of `pages` pages on the certified-copy scale."""
    if pages <= 0:
        return 0
    first = min(pages, fee.later_pages_from - 1)
    later = max(0, pages - first)
    amount = first * fee.amount + later * fee.later_page_amount
    return min(amount, fee.cap_per_copy) if fee.cap_per_copy else amount


def _count(values: Mapping[str, object], name: str | None, default: int = 1) -> int:
    if not name:
        return default
    value = values.get(name)
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return max(value, 0)
    return default


def is_on_time(fee: Fee, values: Mapping[str, object], received_on: date) -> bool:
    if not fee.free_if_on_time or not fee.on_time_field:
        return False
    raw = values.get(fee.on_time_field)
    if not isinstance(raw, str):
        return False
    try:
        event = date.fromisoformat(raw)
    except ValueError:
        return False
    return (received_on - event).days <= fee.on_time_days


def compute_fee(
    defn: ProcedureDefinition,
    commune_amount: int | None,
    values: Mapping[str, object],
    *,
    received_on: date,
) -> int:
    """The amount in VND the citizen owes for this dossier."""
    fee = defn.fee
    if is_on_time(fee, values, received_on):
        return 0
    if fee.kind == FeeKind.FREE:
        return 0
    if fee.kind == FeeKind.PER_COMMUNE:
        return commune_amount or 0
    unit = commune_amount if commune_amount is not None else fee.amount
    if fee.kind == FeeKind.FIXED:
        return unit
    copies = _count(values, fee.quantity_field)
    if fee.kind == FeeKind.PER_COPY:
        return unit * copies
    pages = _count(values, fee.pages_field)
    scale = Fee(
        kind=fee.kind,
        amount=unit,
        later_page_amount=fee.later_page_amount,
        later_pages_from=fee.later_pages_from,
        cap_per_copy=fee.cap_per_copy,
    )
    return per_page_amount(scale, pages) * copies


def claimed_exemption(defn: ProcedureDefinition, values: Mapping[str, object]) -> str | None:
    """The exempt group the citizen declared on the form (an option's value), if any."""
    name = defn.fee.exemption_field
    if name is None:
        return None
    value = values.get(name)
    if not isinstance(value, str) or not value:
        return None
    field = defn.get_field(name)
    if field is None or value not in {o.value for o in field.options}:
        return None
    return value
