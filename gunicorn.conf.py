"""gunicorn settings for `make run` and production (`gunicorn -c gunicorn.conf.py wsgi:app`).

Sync workers, as measured: 2 per core was the best rate here. In production put nginx (or any
buffering reverse proxy) in front so slow mobile clients are absorbed by the proxy, not by a
worker (README, Deployment).
"""

import multiprocessing
import os

workers = int(os.environ.get("WEB_CONCURRENCY", min(4, multiprocessing.cpu_count() * 2)))
worker_class = "sync"
timeout = 30
graceful_timeout = 20
keepalive = 2
# No access log: the application writes one JSON line per request itself (logs.py: method, route,
# status, bytes, ms; no query string, which may carry a citizen's secret, and no address).
accesslog = None
limit_request_line = 4094
limit_request_fields = 60
limit_request_field_size = 8190


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Work out this year's days off now, not while the first citizen waits (loading the
    holiday tables takes a few hundred milliseconds), and do the rest of the first request's
    one-time work (application.warm_up), so that a worker starting under load does not keep
    the citizens queued behind its first submission waiting. A warm-up that fails is logged
    and left to the first requests. Then set aside, for the garbage
    collector, the ~130,000 objects the loaded app holds for the life of the worker (modules,
    the catalog, SQLAlchemy's mappings): its full collections otherwise walk all of them, an
    84 ms pause every ~2,000 submissions (about 40 us each on average, in process); after
    `gc.freeze()` they walk only what came after."""
    import gc
    from datetime import UTC, datetime

    runtime = getattr(worker.wsgi, "extensions", {}).get("kiosk")
    if runtime is not None:  # another app served with these settings (bench/minimal_app.py)
        from application import warm_up

        runtime.calendar.due_date(datetime.now(UTC), 5)
        try:
            warm_up(worker.wsgi)
        except Exception:  # noqa: BLE001 - a worker that could not warm up still serves
            worker.log.exception("warm-up failed; the first requests will do its work")
        gc.collect()
        gc.freeze()
