"""What a running install holds: its database, its keys, its catalog and its folders.

Built once per process by the app factory (and by the CLI, benchmarks and tests), from plain
configuration values, so the same object serves a web worker and a script.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.deadlines import WorkCalendar
from core.keys import KeyMaterial, MissingKeys, load_or_create_keys
from procedures.catalog import Catalog, load_catalog
from storage.database import Database
from storage.ratelimit import Counter, DatabaseCounter, RedisCounter


class NotReady(Exception):
    """The install is not ready (no keys, no database); the message says what to do."""


@dataclass
class Runtime:
    database_url: str
    instance_path: Path
    upload_dir: Path
    public_base_url: str
    settings: Mapping[str, Any]
    _db: Database | None = None
    _keys: KeyMaterial | None = None
    _catalog: Catalog | None = None
    _calendar: WorkCalendar | None = None
    _rate: Counter | None = None
    _ephemeral_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, instance_path: Path) -> Runtime:
        return cls(
            database_url=str(config["DATABASE_URL"]),
            instance_path=instance_path,
            upload_dir=Path(str(config["UPLOAD_DIR"])),
            public_base_url=str(config["PUBLIC_BASE_URL"]).rstrip("/"),
            settings=dict(config),
        )

    # --- keys -------------------------------------------------------------------------------
    def load_keys(self, *, create: bool = False) -> KeyMaterial:
        if create:
            self.instance_path.mkdir(parents=True, exist_ok=True)
        elif not self.instance_path.is_dir():
            raise NotReady(
                f"The instance folder {self.instance_path} does not exist. "
                "Run `flask --app wsgi init` to create it (or set KIOSK_INSTANCE_PATH)."
            )
        try:
            self._keys = load_or_create_keys(
                self.instance_path, create=create, env=dict(os.environ)
            )
        except MissingKeys as exc:
            raise NotReady(str(exc)) from None
        except PermissionError as exc:
            raise NotReady(
                f"Cannot read the keys in {self.instance_path}: {exc.strerror}. "
                "Run the server as the user that owns the instance folder."
            ) from None
        return self._keys

    @property
    def keys(self) -> KeyMaterial:
        if self._keys is None:
            self.load_keys()
        assert self._keys is not None  # noqa: S101 - load_keys sets it or raises
        return self._keys

    def secret_key(self) -> bytes:
        return self._keys.secret_key if self._keys is not None else self._ephemeral_secret

    # --- database -----------------------------------------------------------------------------
    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database.connect(self.database_url)
        return self._db

    # --- shared services ------------------------------------------------------------------------
    @property
    def calendar(self) -> WorkCalendar:
        if self._calendar is None:
            self._calendar = WorkCalendar.from_settings(self.settings)
        return self._calendar

    @property
    def rate(self) -> Counter:
        """Rate-limit counters: Redis when KIOSK_REDIS_URL is set, else the database."""
        if self._rate is None:
            url = self.settings.get("REDIS_URL")
            if url:
                import redis

                self._rate = RedisCounter(redis.Redis.from_url(str(url), socket_timeout=2))
            else:
                self._rate = DatabaseCounter(self.db.write_sessions)
        return self._rate

    # --- catalog ------------------------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            folder = self.settings.get("CATALOG_DIR")
            self._catalog = load_catalog(Path(str(folder)) if folder else None)
        return self._catalog
