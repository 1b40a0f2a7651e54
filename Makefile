# Build the Rust binary modules, install them where Ansible finds them, test, lint, demo.
#
#   make bootstrap   install toolchains and .venv (scripts/bootstrap.sh; fast when done)
#   make build       static musl release build of every module, checked with `file`
#   make install     copy the modules into their roles' library/ dirs (atomically)
#   make build-all   also the aarch64 build (build-aarch64); install-all installs both
#   make dist        the fleetverify.ops collection tarball in dist/ (clean tree only)
#   make test        cargo tests, then the end-to-end tests in tests/ (real ansible-playbook)
#   make lint        rustfmt, clippy, ansible-lint, yamllint
#   make demo        health-check this machine with playbooks/demo.yml
#   make bench       time the module against Ansible's own modules (ci-artifacts/bench/)
#   make idempotence run every core role twice on fresh test machines (ci-artifacts/idempotence/)
#   make fuzz        every cargo-fuzz target for FUZZ_SECONDS each (nightly; not in CI)
#   make clean       remove build output and installed binaries (keeps .venv)

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build
MAKEFLAGS += --no-builtin-rules

REPO_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV_BIN := $(REPO_ROOT)/.venv/bin
# Ansible's tools (and molecule, which shells out to ansible-config) come from .venv.
export PATH := $(VENV_BIN):$(PATH)
export ANSIBLE_CONFIG := $(REPO_ROOT)/ansible.cfg

CARGO ?= cargo
TARGET := x86_64-unknown-linux-musl
RELEASE_DIR := target/$(TARGET)/release
AARCH64_TARGET := aarch64-unknown-linux-musl
AARCH64_RELEASE_DIR := target/$(AARCH64_TARGET)/release

# Binary modules built from modules/<name>, and the role library dir each one is installed into.
MODULES := health_check secrets_gate idempotence_probe
LIBRARY_DIR_health_check := roles/ops/health_check/library
LIBRARY_DIR_secrets_gate := roles/ops/health_check/library
LIBRARY_DIR_idempotence_probe := roles/ops/health_check/library
library_dir = $(or $(LIBRARY_DIR_$(1)),$(error no LIBRARY_DIR_$(1) set for module $(1)))

INVENTORY := inventory/localhost.yml

.PHONY: bootstrap build build-aarch64 build-all install install-all dist dist-check-clean bench-fleet bench-size bench-idempotence bench-systemd-scale test lint demo bench clean idempotence fuzz bench-secrets-gate

bootstrap:
	scripts/bootstrap.sh

build: bootstrap
	$(CARGO) build --release --locked --target $(TARGET) --workspace --bins
	@for module in $(MODULES); do \
	    binary="$(RELEASE_DIR)/$$module"; \
	    [[ -x "$$binary" ]] || { echo "error: $$binary was not built" >&2; exit 1; }; \
	    kind="$$(file -b "$$binary")"; \
	    case "$$kind" in \
	        *"statically linked"*|*"static-pie linked"*) echo "static: $$binary" ;; \
	        *) echo "error: $$binary is not statically linked: $$kind" >&2; exit 1 ;; \
	    esac; \
	done

# install -m 0755 into a temp file in the destination dir, then rename over the old binary:
# a playbook running meanwhile sees the old or the new module, never half a file.
install: build
	@$(foreach module,$(MODULES), \
	    dest_dir="$(call library_dir,$(module))"; \
	    tmp="$$dest_dir/.$(module).tmp.$$$$"; \
	    install -m 0755 "$(RELEASE_DIR)/$(module)" "$$tmp"; \
	    mv -f "$$tmp" "$$dest_dir/$(module)"; \
	    echo "installed: $$dest_dir/$(module)";)

# aarch64 hosts: the same modules cross-built with Debian's gcc-aarch64-linux-gnu (see
# .cargo/config.toml). Not in `make build`: a second LTO build costs about 1.5 min on 2 cores.
build-aarch64: bootstrap
	$(CARGO) build --release --locked --target $(AARCH64_TARGET) --workspace --bins
	@for module in $(MODULES); do \
	    binary="$(AARCH64_RELEASE_DIR)/$$module"; \
	    [[ -x "$$binary" ]] || { echo "error: $$binary was not built" >&2; exit 1; }; \
	    kind="$$(file -b "$$binary")"; \
	    case "$$kind" in \
	        *"ARM aarch64"*"statically linked"*|*"ARM aarch64"*"static-pie linked"*) echo "static aarch64: $$binary" ;; \
	        *) echo "error: $$binary is not a static aarch64 binary: $$kind" >&2; exit 1 ;; \
	    esac; \
	done

build-all: build build-aarch64

# Both architectures: library/<module> is the x86_64 binary (what Ansible resolves),
# binaries/aarch64/<module> beside library/ the aarch64 one (not inside: Ansible would take a
# library/ subdirectory's file for the module itself); the action plugin of the same name
# (action_plugins/<module>.py, a link to plugin_utils/cached_binary.py: add one with a new
# module) picks one by the host's `uname -m`.
install-all: install build-aarch64
	@$(foreach module,$(MODULES), \
	    dest_dir="$(call library_dir,$(module))/../binaries/aarch64"; \
	    mkdir -p "$$dest_dir"; \
	    tmp="$$dest_dir/.$(module).tmp.$$$$"; \
	    install -m 0755 "$(AARCH64_RELEASE_DIR)/$(module)" "$$tmp"; \
	    mv -f "$$tmp" "$$dest_dir/$(module)"; \
	    echo "installed: $$dest_dir/$(module)";)

# The fleetverify.ops collection (scripts/build_collection.py): both architectures' binaries,
# their docs, the action and filter plugins and the role, as dist/fleetverify-ops-<version>.tar.gz
# with dist/SHA256SUMS. Only from a clean tree, so the artifact is exactly a commit.
dist: dist-check-clean install-all
	$(VENV_BIN)/python scripts/build_collection.py --output-dir dist --modules "$(MODULES)"
	cat dist/SHA256SUMS

dist-check-clean:
	@dirty="$$(git status --porcelain --untracked-files=normal)"; \
	if [[ -n "$$dirty" ]]; then \
	    echo "error: make dist builds only from a clean tree; commit or remove:" >&2; \
	    echo "$$dirty" >&2; exit 1; \
	fi

# The Rust tests and the pytest suites side by side (PYTEST_WORKERS=1 for a serial run).
test: install-all
	CARGO=$(CARGO) scripts/run_tests.sh

lint: bootstrap
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(VENV_BIN)/ansible-lint roles/ playbooks/
	$(VENV_BIN)/yamllint -c .yamllint .

demo: install
	$(VENV_BIN)/ansible-playbook -i $(INVENTORY) playbooks/demo.yml

# 40 healthy checks (systemd-nspawn machine, private dockerd, local endpoints, disks): the
# module vs. the same checks with Ansible's own modules. Needs root; writes
# ci-artifacts/bench/health_check.json.
bench: install
	$(VENV_BIN)/python scripts/bench_health_check.py
	$(VENV_BIN)/python scripts/bench_idempotence_probe.py
	$(MAKE) bench-idempotence
	$(MAKE) bench-systemd-scale
	$(MAKE) bench-secrets-gate

# secrets_gate on a generated 200 MB, 150,000-file Ansible repository next to ripsecrets,
# detect-secrets (on a fixed subset) and cat: min/median/max, MB/s, files/s, peak RSS. The first
# run generates the tree (about 2 min) and cargo-installs ripsecrets into .cache/bench-tools.
# Writes ci-artifacts/bench/secrets_gate.json.
bench-secrets-gate: install
	$(VENV_BIN)/python scripts/bench/secrets_gate_speed.py $(BENCH_SECRETS_GATE_ARGS)

# systemd checks of 50/100/250/500 healthy units in one nspawn machine (stock dbus config):
# min/median/max per size and time per unit. Needs root; writes ci-artifacts/bench/systemd_scale.json.
bench-systemd-scale: install
	$(VENV_BIN)/python scripts/bench/systemd_scale.py $(BENCH_SYSTEMD_SCALE_ARGS)

# The idempotence gate against Molecule's converge + idempotence: the fixture catch table and
# the time per core role. Needs root; writes ci-artifacts/bench/idempotence_gate.json and .md.
bench-idempotence: install
	$(VENV_BIN)/python scripts/bench_idempotence_gate.py --timing $(BENCH_IDEMPOTENCE_ARGS)

# Whole playbook runs against 1/4/8/16 nspawn machines over SSH: the module with a cold and a
# warm host cache, Ansible's own modules, the same under Mitogen, a do-nothing binary module.
# Needs root; writes ci-artifacts/bench/fleet.json. Not part of `make test`.
bench-fleet: install
	$(VENV_BIN)/python scripts/bench_fleet.py

# Module sizes per architecture and what each dependency costs (cargo-bloat, installed here
# on first use). Writes ci-artifacts/bench/size.txt.
bench-size: install-all
	scripts/bench_size.sh

# The idempotence gate on every role under roles/core, each on fresh machines of both flavours
# (with and without GPU device nodes); IDEMPOTENCE_ARGS adds options (--jobs 2, --shard 1/2...).
# Needs root; writes ci-artifacts/idempotence/. See docs/idempotence-gate.md.
idempotence: install
	scripts/verify_idempotence.sh $(IDEMPOTENCE_ARGS)

clean:
	$(CARGO) clean
	rm -f $(foreach module,$(MODULES),$(call library_dir,$(module))/$(module) $(call library_dir,$(module))/.$(module).tmp.*)
	rm -f $(foreach module,$(MODULES),$(call library_dir,$(module))/../binaries/aarch64/$(module) $(call library_dir,$(module))/../binaries/aarch64/.$(module).tmp.*)

# Coverage-guided fuzzing of the args reader, secrets_gate's readers and rules, and the snapshot
# reader (scripts/fuzz.sh: needs a nightly toolchain; crashes fail the run).
FUZZ_SECONDS ?= 60
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)
