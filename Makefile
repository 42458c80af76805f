# esrt: `make demo` runs CBLAPP01 as a service end to end; `make test` runs the test suite.
# Both install what they need first (Debian packages as root, then a virtualenv in .venv).

SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := gnucobol3 libcob4-dev libdb5.3-dev db5.3-util python3-venv python3-dev \
                gcc make procps iproute2 chromium chromium-driver \
                resource-agents
# bsddb3's setup.py finds Berkeley DB through this; Debian puts db.h in /usr/include.
export BERKELEYDB_DIR := /usr

.PHONY: all setup demo test bench clean system-packages

all: setup

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or install:$$missing)"; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

$(VENV)/.stamp: setup.py
	@$(MAKE) --no-print-directory system-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m esrt.cobol.esfh_build
	touch $@

setup: $(VENV)/.stamp

demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/cblapp01/demo.sh

test: setup
	$(BIN)/python -m pytest -q tests

bench: setup
	$(BIN)/python benchmarks/bench_transactions.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
