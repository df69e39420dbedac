"""Staff-side commands on the Flask CLI: checking the audit log.

flask --app wsgi audit verify [--anchor SEQ:HASH …]   exit 0 intact, 1 broken (and where)
flask --app wsgi audit head                           the chain's head, to write down
"""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from core import audit_log
from storage.runtime import Runtime


def _anchor(value: str) -> tuple[int, str]:
    seq, _, digest = value.partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise click.BadParameter(f"expected SEQ:HASH (a number, a colon, 64 hex digits): {value}")
    return int(seq), digest


def register(app: Flask) -> None:
    """Add the staff-side commands to `flask --app wsgi`."""
    audit = AppGroup("audit", help="The hash-chained audit log.")

    @audit.command("verify")
    @click.option(
        "--anchor",
        "anchors",
        multiple=True,
        help="A head written down earlier (`audit head`), as SEQ:HASH; may be repeated.",
    )
    def audit_verify(anchors: tuple[str, ...]) -> None:
        """Recompute every link of the audit chain: exit 0 intact, 1 broken (and where)."""
        try:
            checked_anchors = dict(_anchor(a) for a in anchors)
        except click.BadParameter as exc:
            click.echo(f"Error: {exc.message}", err=True)
            sys.exit(2)
        runtime: Runtime = current_app.extensions["kiosk"]
        with runtime.db.reading() as session:
            check = audit_log.verify(session, anchors=checked_anchors)
        if check.ok:
            click.echo(f"INTACT: {check.reason.en}")
            click.echo(f"  head: {check.head_seq}:{check.head_hash}")
            return
        click.echo(f"BROKEN at record {check.first_bad_seq}: {check.reason.en}")
        click.echo(f"  {check.reason.vi}")
        click.echo(f"  records verified before the break: {check.checked}")
        sys.exit(1)

    @audit.command("head")
    def audit_head() -> None:
        """Print the chain's last record as SEQ:HASH, to keep outside the database."""
        runtime: Runtime = current_app.extensions["kiosk"]
        with runtime.db.reading() as session:
            seq, digest = audit_log.head(session)
        click.echo(f"{seq}:{digest}")

    app.cli.add_command(audit)
