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
# Access log without query strings (a status link carries the citizen's secret) nor addresses.
accesslog = "-"
access_log_format = '"%(m)s %(U)s" %(s)s %(B)s %(L)ss'  # no client address: personal data
limit_request_line = 4094
limit_request_fields = 60
limit_request_field_size = 8190
