# Plain one-liners; configuration lives in pyproject.toml and envs/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TARGET ?= sandbox
INCIDENT ?= ingest_stalled

.PHONY: demo test lint check sandbox sandbox-down bench bench-scale clean system-packages

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[sandbox,dev]'
	touch $@

# The sandbox is ours to write to, so the demo also runs the side-effecting checks. It ends by
# printing the report paths whatever the verdicts.
# Distribution packages (Chromium): installed when missing and run as root, else the command is printed.
system-packages:
	@bash .ci/system-packages

demo: $(VENV)/.installed system-packages  ## start the sandbox, run every check against it, print the report paths
	$(PY) -m sandbox up
	$(PY) -m pytest --target sandbox --allow-side-effects || true

test: $(VENV)/.installed system-packages lint  ## the suite's own tests (what CI runs)
	$(PY) -m pytest tests -n 4

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check fixtures sandbox checks tests conftest.py
	$(VENV)/bin/mypy
	$(VENV)/bin/actionlint .github/workflows/canary.yml .github/workflows/post-deploy.yml

check: $(VENV)/.installed  ## make check INCIDENT=partition_drift TARGET=prod
	$(PY) -m fixtures.supervisor --run-deadline 600 -m $(INCIDENT) --target $(TARGET)

sandbox: $(VENV)/.installed
	$(PY) -m sandbox up

sandbox-down: $(VENV)/.installed
	$(PY) -m sandbox down

bench: $(VENV)/.installed
	$(PY) bench/time_to_verdict.py

# Every check's cost at production volume (SCALE=0.1 loads a tenth), on PostgreSQL 18 and 15.
bench-scale: $(VENV)/.installed system-packages
	$(PY) -m bench.scale $(if $(SCALE),--scale $(SCALE))

clean:
	rm -rf $(VENV) reports/*.html reports/*.xml reports/*.json
