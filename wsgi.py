"""The WSGI entry point: `gunicorn wsgi:app`, and `flask --app wsgi …` for the command line."""

import os
import sys

from application import create_app


def _flask_cli() -> bool:
    # The CLI must start before `init` has made the keys; a web server must not.
    return os.path.basename(sys.argv[0]) == "flask" or "flask" in sys.argv[:2]


app = create_app(require_keys=None if not _flask_cli() else False)
