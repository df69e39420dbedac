# Two commands on a fresh machine: `make run` and `make test` (README.md).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
FONT := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

.PHONY: run test install install-dev system-deps fonts browser lint format bench clean

$(BIN)/python:
	@command -v $(PY) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PY) not found)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed fonts
install-dev: $(VENV)/.installed-dev system-deps

# Posters need a TrueType font with Vietnamese glyphs (DejaVu Sans, Debian's fonts-dejavu-core).
fonts:
	@test -f $(FONT) || scripts/system-packages.sh fonts-dejavu-core

# The tests also need poppler (pdftoppm, pdftotext) and Debian's chromium for the browser tests.
system-deps: fonts
	@command -v pdftoppm >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1 || scripts/system-packages.sh poppler-utils
	@command -v chromium >/dev/null 2>&1 || scripts/system-packages.sh chromium

# QR codes and printed links point at the port served, unless KIOSK_PUBLIC_BASE_URL says otherwise.
run: export KIOSK_PUBLIC_BASE_URL ?= http://127.0.0.1:$(PORT)
run: install
	$(BIN)/flask --app wsgi init --demo
	$(BIN)/gunicorn --config gunicorn.conf.py --bind 127.0.0.1:$(PORT) wsgi:app

test: install-dev
	$(BIN)/pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every benchmark, each printing its figures beside a baseline measured in the same run (about
# 50 minutes; README, Performance). Needs wrk, nginx and valgrind (apt-get install wrk nginx-light
# valgrind).
bench: install-dev
	$(BIN)/python bench/submit_bench.py --engine both --photos
	$(BIN)/python bench/instructions_submit.py
	$(BIN)/python bench/uploads_bench.py
	$(BIN)/python bench/posters_bench.py
	$(BIN)/python bench/inbox_bench.py --engine both
	$(BIN)/python bench/load_faults.py --engine both

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
