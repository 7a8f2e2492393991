# One-command set-up on a fresh Debian machine: system tools with apt-get, Python deps in .venv.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
APT_PKGS = iverilog yosys opensta qflow qflow-tech-osu018 graywolf qrouter liblz4-dev
TOOLS    = iverilog vvp yosys sta qflow graywolf qrouter
OSU018   = /usr/share/qflow/tech/osu018/osu018_stdcells.lib
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system test demo bench lint lock clean

setup: system $(STAMP)

system:
	@missing=""; for t in $(TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	[ -f $(OSU018) ] || missing="$$missing osu018"; \
	[ -f /usr/include/lz4.h ] || missing="$$missing lz4.h"; \
	if [ -n "$$missing" ]; then \
		echo "installing system tools (missing:$$missing)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PKGS) >/dev/null; \
	fi

# Exact versions from requirements.lock (pip freeze of a working venv), then the project itself without
# re-resolving: a fresh clone gets the versions the suite passed with. After changing pyproject.toml's
# dependencies, run `make lock` and commit requirements.lock.
$(STAMP): pyproject.toml requirements.lock
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

lock: $(STAMP)
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip freeze --exclude-editable | sed 's/+cpu$$//' > requirements.lock

test: setup
	$(PY) -m pytest -q -n 2

demo: setup
	$(PY) -m sim.demo
	$(PY) -m models.demo

bench: setup
	$(PY) -m bench.sim_speed
	$(PY) -m bench.replay_speed

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build out .pytest_cache
