# The two commands: `make demo` and `make test` (fresh Debian, as root).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow fuzz bench deps mosquitto chromium clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

deps: $(STAMP)

mosquitto:
	@command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto)

# The dashboard browser test drives Debian's chromium through Playwright (no browser download).
chromium:
	@test -x /usr/bin/chromium || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

demo: deps
	$(BIN)/genius demo $(DEMO_ARGS)

test: deps mosquitto chromium
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-slow: deps mosquitto
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

fuzz: deps
	$(BIN)/python -m pytest -q -m fuzz $(PYTEST_ARGS)

bench: deps mosquitto
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) bench/results *.egg-info
