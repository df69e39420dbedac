"""Rate limits shared by every server worker (giới hạn tần suất).

Fixed windows counted in the database (`rate_counter`), so limits hold across gunicorn workers on
SQLite and across hosts on PostgreSQL, with no extra service. Where `KIOSK_REDIS_URL` is set, the
counters live in Redis instead (INCR + EXPIRE), which spares the database the writes.

A bucket names what is limited, e.g. `status:ip:203.0.113.7` or `login:user:nhuanduc.admin`; the
caller hashes anything personal before it becomes a bucket name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from storage.models import RateCounter


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: int


class Counter(Protocol):
    def hit(self, bucket: str, limit: Limit, now: datetime) -> bool: ...

    def peek(self, bucket: str, limit: Limit, now: datetime) -> int: ...


def bucket_name(kind: str, value: str) -> str:
    """A bucket for `value` that does not store it in clear (IP addresses, usernames)."""
    digest = hashlib.sha256(f"{kind}|{value}".encode()).hexdigest()[:32]
    return f"{kind}:{digest}"


class DatabaseCounter:
    """Counters in the `rate_counter` table, written in their own short transaction."""

    def __init__(self, sessions: Any) -> None:
        self._sessions = sessions  # a sessionmaker for write sessions

    def hit(self, bucket: str, limit: Limit, now: datetime) -> bool:
        """Count one attempt; True while the bucket is within its limit."""
        window = int(now.timestamp()) // limit.seconds
        with self._sessions() as session, session.begin():
            count = _increment(session, bucket, window)
            if count == 1:
                # First hit of a new window: forget this bucket's old windows.
                session.execute(
                    delete(RateCounter).where(
                        RateCounter.bucket == bucket, RateCounter.window < window
                    )
                )
        return count <= limit.count

    def peek(self, bucket: str, limit: Limit, now: datetime) -> int:
        window = int(now.timestamp()) // limit.seconds
        with self._sessions() as session:
            row = session.get(RateCounter, (bucket, window))
            return row.count if row else 0


# Plain SQL that both engines speak: SQLAlchemy cannot cache an `on_conflict_do_update` construct.
_INCREMENT = text(
    'INSERT INTO rate_counter (bucket, "window", count) VALUES (:bucket, :window, 1) '
    'ON CONFLICT (bucket, "window") DO UPDATE SET count = rate_counter.count + 1 '
    "RETURNING count"
)


def _increment(session: Session, bucket: str, window: int) -> int:
    return int(session.execute(_INCREMENT, {"bucket": bucket, "window": window}).scalar_one())


class RedisCounter:
    """Counters in Redis: one INCR per hit, the key expiring with its window."""

    def __init__(self, client: Any) -> None:
        self._redis = client

    def hit(self, bucket: str, limit: Limit, now: datetime) -> bool:
        window = int(now.timestamp()) // limit.seconds
        key = f"kiosk:rl:{bucket}:{window}"
        pipe = self._redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, limit.seconds + 5)
        count, _ = pipe.execute()
        return int(count) <= limit.count

    def peek(self, bucket: str, limit: Limit, now: datetime) -> int:
        window = int(now.timestamp()) // limit.seconds
        value = self._redis.get(f"kiosk:rl:{bucket}:{window}")
        return int(value or 0)
