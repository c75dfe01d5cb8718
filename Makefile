# scaffoldfem: `make demo` and `make test` are the two commands a user needs.
SHELL := /bin/bash
VENV  := .venv
VPY   := $(VENV)/bin/python
NP    ?= 2

# Find an interpreter >= 3.12: python3.14/3.13/3.12 on PATH (a pyenv shim that
# refuses is skipped because we run it), else the newest under $(pyenv root)/versions.
define FIND_PYTHON
ok() { "$$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }; \
for c in python3.14 python3.13 python3.12; do \
  if command -v "$$c" >/dev/null 2>&1 && ok "$$c"; then command -v "$$c"; exit 0; fi; \
done; \
root=$$(pyenv root 2>/dev/null || echo "$$HOME/.pyenv"); \
for d in $$(ls -d "$$root"/versions/3.* 2>/dev/null | sort -V -r); do \
  if [ -x "$$d/bin/python3" ] && ok "$$d/bin/python3"; then echo "$$d/bin/python3"; exit 0; fi; \
done; exit 1
endef
export FIND_PYTHON

.PHONY: demo test test-serial test-mpi venv lint bench findings clean

$(VENV)/.installed: pyproject.toml
	@if [ ! -x "$(VPY)" ]; then \
	  PY=$$(bash -c "$$FIND_PYTHON") || { echo "scaffoldfem needs Python >= 3.12: none found on PATH (python3.12..3.14) or under \$$(pyenv root)/versions; install one and rerun make." >&2; exit 1; }; \
	  echo "Creating $(VENV) with $$PY"; "$$PY" -m venv $(VENV); \
	fi
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[wheel,test]'
	@touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/scaffoldfem mesh studies/baseline.toml
	$(VENV)/bin/mpiexec -n $(NP) $(VENV)/bin/scaffoldfem run studies/baseline.toml --out runs/baseline --overwrite

test: lint test-serial test-mpi

# The serial pass on $(NP) pytest-xdist workers (the `test` extra), one test file per
# worker at a time (--dist loadfile: a module's shared fixtures are built once, on
# one worker); without pytest-xdist, in one process. `make test-serial XDIST=` forces one.
XDIST ?= -n $(NP) --dist loadfile

test-serial: venv
	$(VPY) -m pytest -q --durations=15 $$($(VPY) -c 'import xdist' 2>/dev/null && echo '$(XDIST)') tests

# One 2-rank pytest process over every file. (It used to die with exit 15 in
# test_tracing.py: MPICH ran out of its ~2048 communicator context ids, leaked by
# Python 3.13.0's singledispatchmethod cache through UFL; tests/conftest.py
# switches that cache off and SCAFFOLDFEM_TEST_CONTEXTS=FILE logs the free ids.)
test-mpi: venv
	$(VENV)/bin/mpiexec -n $(NP) $(VPY) -m pytest -q --durations=15 -p no:cacheprovider tests

lint: venv
	$(VENV)/bin/ruff check scaffoldfem tests

bench: venv
	$(VENV)/bin/mpiexec -n $(NP) $(VENV)/bin/scaffoldfem bench

# Every study of studies/questions/ as a sweep (2 cases side by side on 2 ranks; a
# rerun resumes), then docs/findings.md from their results. Hours: see each header.
QUESTIONS := $(basename $(notdir $(wildcard studies/questions/*.toml)))
findings: venv
	@for q in $(QUESTIONS); do \
	  $(VENV)/bin/mpiexec -n $(NP) $(VENV)/bin/scaffoldfem sweep studies/questions/$$q.toml \
	    --out runs/questions/$$q --ranks-per-case 1 || exit $$?; \
	done
	$(VENV)/bin/scaffoldfem findings runs/questions --out docs/findings.md

clean:
	rm -rf $(VENV) meshes/cache runs .pytest_cache
