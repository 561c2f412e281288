# make demo   -- scan + sample capture + report on the embedded sample app -> reports/demo.html
# make test   -- lint, type-check and the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck fixtures bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,dask]'
	touch $(STAMP)

demo: $(STAMP)
	rm -f reports/demo.sqlite reports/demo.sqlite-wal reports/demo.sqlite-shm
	$(PY) -m audit run tests/fixtures/apks/messenger.apk --capture tests/fixtures/captures/messenger.flows \
		--device tests/fixtures/captures/device.toml --db reports/demo.sqlite -o reports/demo.html

lint: $(STAMP)
	$(PY) -m ruff check audit tests addons benchmarks
	$(PY) -m ruff format --check audit tests addons benchmarks

typecheck: $(STAMP)
	$(PY) -m mypy

test: $(STAMP) lint typecheck
	$(PY) -m pytest -q

fixtures: $(STAMP)
	$(PY) tests/fixtures/build.py

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
