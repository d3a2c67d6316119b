# The README's two set-up commands: `make demo` and `make test`. Each creates or refreshes
# .venv and installs roadthink into it, so both work on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: demo test test-all lint bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,train]' torch==2.13.0  # torch's CPU build: a bare torch pulls CUDA
	touch $@

demo: $(STAMP)
	$(VENV)/bin/roadthink demo

test: $(STAMP)
	$(PY) -m ruff check src tests benchmarks scripts
	$(PY) -m pytest -n 2 -q

test-all: $(STAMP)
	$(PY) -m pytest -n 2 -q -m ''

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks scripts
	$(PY) -m ruff format --check src tests benchmarks scripts

$(VENV)/.installed-sim: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,sim]'
	touch $@

bench: $(VENV)/.installed-sim
	SDL_VIDEODRIVER=offscreen SDL_NO_SIGNAL_HANDLERS=1 $(PY) benchmarks/render_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache
