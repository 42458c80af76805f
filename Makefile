# esrt: `make demo` runs CBLAPP01 as a service end to end; `make test` runs the test suite.
# Both install what they need first (Debian packages as root, then a virtualenv in .venv).

SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
# "a,b": the first of these that this Debian release has (names differ between 12 and 13).
# The JDK is for the Java client of examples/java and its test (OpenJDK 17 on 12, 21 on 13).
# fuse3 and libfuse3-dev (through pkg-config) build and mount esrt-faultfs, the failing disk of
# the I/O fault tests (esrt.testing.faultfs). openssl and curl: the TLS tests make their
# certificates and call the listeners as users do. systemd: systemd-analyze checks the units
# of `esrt ... install-service`. libpq-dev: ESFH's PostgreSQL store (libpq); postgresql: the
# database clusters the tests make for it (esrt.testing.postgres).
APT_PACKAGES := gnucobol3,gnucobol libcob4-dev libdb5.3-dev db5.3-util python3-venv python3-dev \
                gcc make procps iproute2 chromium chromium-driver libxml2-utils \
                resource-agents,resource-agents-base \
                pacemaker pacemaker-cli-utils corosync kmod e2fsprogs util-linux psmisc wrk \
                default-jdk-headless fuse3 libfuse3-dev pkg-config openssl curl systemd \
                libpq-dev postgresql haproxy resource-agents-paf
# Only `make bench` installs these: Patroni, the other engine that can make the PostgreSQL
# store highly available, with etcd (its leader key) and the etcd client module Patroni's
# etcd3 store imports; benchmarks/bench_db_failover.py measures it against PAF.
BENCH_APT_PACKAGES := patroni etcd-server python3-etcd
# bsddb3's setup.py finds Berkeley DB through this; Debian puts db.h in /usr/include.
export BERKELEYDB_DIR := /usr

.PHONY: all setup demo test test-sanitized sanitized-build fuzz bench bench-db-failover soak \
        clean system-packages

all: setup

system-packages:
	@missing=""; for choice in $(APT_PACKAGES); do \
	  found=""; for p in $${choice//,/ }; do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" && found=1; \
	  done; [ -n "$$found" ] || missing="$$missing $$choice"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root, or install:$$missing"; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q || exit 1; \
	  install=""; for choice in $$missing; do \
	    pick=""; for p in $${choice//,/ }; do \
	      [ -z "$$pick" ] && apt-cache show $$p >/dev/null 2>&1 && pick=$$p; \
	    done; \
	    [ -n "$$pick" ] || { echo "no Debian package for $$choice"; exit 1; }; \
	    install="$$install $$pick"; \
	  done; \
	  echo "installing Debian packages:$$install"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$install; \
	fi

# pip builds every native part (the extensions, libesfh.so, the failchk preload: setup.py),
# as it does for a user's `pip install .`; a change in native/ builds them again.
$(VENV)/.stamp: setup.py $(wildcard native/*)
	@$(MAKE) --no-print-directory system-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

# promtool checks examples/monitoring's Prometheus rules in `make test`. It is taken from
# Debian's package without installing it: Debian 13 has a package of its own (promtool),
# Debian 12 ships it in prometheus, whose scripts would start a Prometheus server here.
PROMTOOL_DEB = apt-get download promtool 2>/dev/null || apt-get download prometheus
$(BIN)/promtool: | $(VENV)/.stamp
	rm -rf build/prometheus-deb && mkdir -p build/prometheus-deb
	cd build/prometheus-deb && { $(PROMTOOL_DEB) 2>/dev/null || \
	  { [ "$$(id -u)" = 0 ] || { echo "promtool: run as root (apt-get update), or put" \
	    "promtool from Debian's promtool or prometheus package in $(BIN)"; exit 1; }; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -q && { $(PROMTOOL_DEB); }; }; }
	set -o pipefail; dpkg-deb --fsys-tarfile build/prometheus-deb/*.deb | \
	  tar -x -O ./usr/bin/promtool > $@.part
	chmod 755 $@.part && mv $@.part $@
	rm -rf build/prometheus-deb

setup: $(VENV)/.stamp

demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/cblapp01/demo.sh

# ruff's rules are in pyproject.toml; a marker that silences one says why. So are the import
# contracts that lint-imports checks (which layer of esrt may import which).
LINTED := esrt tests benchmarks examples setup.py

# The suite runs twice: with the C speed-ups, then with their pure-Python twins forced, so
# both must give the same behaviour (STYLE.md: one import site, ESRT_PUREPYTHON=1). The
# Pacemaker lab and failover tests exercise the cluster, not the speed-ups: they run once.
# The second pass runs the tests again with the pure-Python twins of the C hot paths
# (ESRT_PUREPYTHON=1), but for those the twins cannot change: the lab and failover tests, the
# admin UI in a browser (mfds's pages), the PostgreSQL store (C and the database), and what
# checks files, packaging and tools around a region rather than its calls (the OCF agent under
# ocf-tester, the installed wheel, the sanitized build, the monitoring examples, the HA tools,
# the systemd units).
PURE_IGNORED := tests/lab tests/failover tests/browser \
	tests/integration/test_ocf_agent.py tests/integration/test_installed_package.py \
	tests/integration/test_sanitized_build.py tests/integration/test_monitoring_examples.py \
	tests/integration/test_ha_tools.py tests/integration/test_systemd_units.py
#
# The lab and failover tests boot clusters of namespaces and time takeovers: they run alone,
# one at a time. The others run in TEST_WORKERS processes (pytest-xdist, a file's tests in
# one of them): they mostly wait for the processes they start to come up and answer.
LAB_TESTS := tests/lab tests/failover
TEST_WORKERS ?= 2
PARALLEL := -n $(TEST_WORKERS) --dist loadfile
# Each run goes on whatever the one before it gave; make test fails at the end if any failed.
test: setup $(BIN)/promtool
	$(BIN)/ruff check $(LINTED)
	$(BIN)/lint-imports
	failed=0; \
	$(BIN)/python -m pytest -q $(LAB_TESTS) || failed=1; \
	$(BIN)/python -m pytest -q $(PARALLEL) tests $(LAB_TESTS:%=--ignore=%) || failed=1; \
	ESRT_PUREPYTHON=1 $(BIN)/python -m pytest -q $(PARALLEL) tests \
	    $(PURE_IGNORED:%=--ignore=%) -m "not postgresql" || failed=1; \
	$(MAKE) --no-print-directory test-sanitized || failed=1; \
	exit $$failed

# The tests of the native parts once more, with every one of them (the extensions, libesfh.so
# and what the tests build) compiled with AddressSanitizer and UndefinedBehaviorSanitizer
# (ESRT_SANITIZE=1, see esrt/cobol/esfh_build.py): ESFH's conformance and fault programs, its
# transactions, and the C twins. They run in a copy of the tree, build/sanitized, so that the
# tree's own build is left alone. Python is not instrumented, so libasan is preloaded (it must
# be the first library loaded); leak detection is off because CPython keeps memory to the end
# on purpose.
SANITIZED := build/sanitized
SANITIZED_TESTS := tests/integration/test_esfh_conformance.py \
                   tests/integration/test_esfh_hardening.py \
                   tests/integration/test_esfh_transactions.py \
                   tests/integration/test_checkpoints.py \
                   tests/integration/test_sanitized_build.py \
                   tests/unit/test_codec_twins.py tests/unit/test_frames_twins.py \
                   tests/unit/test_frontdoor_twins.py \
                   tests/unit/test_callpath_twins.py tests/unit/test_reply_store.py \
                   tests/unit/test_fuzz_regressions.py
SANITIZED_RUN := cd $(SANITIZED) && ESRT_SANITIZE=1 PYTHONPATH=$(abspath $(SANITIZED)) \
	    LD_PRELOAD=$$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \
	    UBSAN_OPTIONS=print_stacktrace=1 $(abspath $(BIN))/python
test-sanitized: sanitized-build
	$(SANITIZED_RUN) -m pytest -q -p no:cacheprovider $(SANITIZED_TESTS)

sanitized-build: setup
	@# setup.py runs in the virtualenv here, outside pip's isolated build: Python 3.12 and
	@# later (Debian 13) no longer put setuptools in a new virtualenv.
	$(BIN)/python -c 'import setuptools' 2>/dev/null || $(BIN)/python -m pip install -q setuptools
	rm -rf $(SANITIZED) && mkdir -p $(SANITIZED)
	cp -a setup.py pyproject.toml README.md esrt native tests examples benchmarks $(SANITIZED)/
	find $(SANITIZED) \( -name '*.so' -o -name __pycache__ -o -path '*/esrt/lib' \) -prune \
	    -exec rm -rf {} +
	cd $(SANITIZED) && ESRT_SANITIZE=1 $(abspath $(BIN))/python setup.py -q build_ext --inplace

# make fuzz: coverage-guided fuzzing (atheris) of what reads clients' and users' bytes -- the
# HTTP request head, the binary frames, the JSON-to-LINKAGE loader, the .car reader --
# FUZZ_SECONDS per target (tests/fuzz/run.py); then every input it kept is run again through
# the C parts built with AddressSanitizer and UndefinedBehaviorSanitizer. A crash is kept in
# tests/fuzz/regressions, which `make test` replays.
FUZZ_SECONDS ?= 60
fuzz: sanitized-build
	$(BIN)/python tests/fuzz/run.py --seconds $(FUZZ_SECONDS)
	rm -rf $(SANITIZED)/tests/fuzz && cp -a tests/fuzz $(SANITIZED)/tests/fuzz
	$(SANITIZED_RUN) -W ignore tests/fuzz/run.py --replay --corpus $(abspath build/fuzz)

# BENCH_QUICK=1 make bench: shorter runs, 16 connections only, one takeover of each kind
# (a few minutes). The takeover benchmarks need root (they build Pacemaker labs).
bench: setup
	$(BIN)/python benchmarks/bench_transactions.py --seconds $(if $(BENCH_QUICK),1,3)
	$(BIN)/python benchmarks/bench_dispatch.py --seconds $(if $(BENCH_QUICK),1,3) \
	    --json benchmarks/results/dispatch.json
	$(BIN)/python benchmarks/bench_throughput.py
	BENCH_SECONDS=$(if $(BENCH_QUICK),3,10) $(BIN)/python benchmarks/bench_postgres.py
	$(BIN)/python benchmarks/bench_takeover.py --runs $(if $(BENCH_QUICK),1,5)
	@$(MAKE) --no-print-directory bench-db-failover

# PAF against Patroni when the database primary's node dies (root: it builds labs, and it
# installs BENCH_APT_PACKAGES; on a host run by systemd, Debian starts an etcd service with
# etcd-server: `systemctl disable --now etcd` if you do not want it).
bench-db-failover: setup
	@$(MAKE) --no-print-directory system-packages APT_PACKAGES="$(BENCH_APT_PACKAGES)"
	$(BIN)/python benchmarks/bench_db_failover.py --runs $(if $(BENCH_QUICK),1,3) \
	    --out benchmarks/results/db_failover.json

# A random fault campaign on a two-node lab (needs root): SOAK_SECONDS of faults (default 180),
# SOAK_SEED to replay one; the report and the history go to soak-report/.
soak: setup
	$(BIN)/python -m esrt.testing.soak --seconds $${SOAK_SECONDS:-180} \
	    $${SOAK_SEED:+--seed $$SOAK_SEED} --report soak-report

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
