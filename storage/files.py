"""Uploaded papers on disk: sealed, under random names, outside the web root.

A file is written to a temporary name, flushed to disk and renamed, so a crash never leaves half a
file under a real name; names are 32 random hex characters and never derive from what the citizen
called the file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def new_name(self) -> str:
        return secrets.token_hex(16)

    def _path(self, name: str) -> Path:
        if len(name) != 32 or any(c not in "0123456789abcdef" for c in name):
            raise ValueError("not a storage name")
        return self.root / name[:2] / name

    def write(self, name: str, data: bytes) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def read(self, name: str) -> bytes:
        return self._path(name).read_bytes()

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def exists(self, name: str) -> bool:
        return self._path(name).exists()
