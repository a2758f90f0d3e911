# withings-relay: `make` builds, `make test` runs every check CI runs,
# `make release` builds the size-tuned binary for this machine.

CARGO ?= cargo

.PHONY: all build release test test-deps lint unit-and-e2e test-ha bench bench-hostile bench-https clean

all: build

build:
	$(CARGO) build --locked

release:
	$(CARGO) build --locked --release
	@ls -l target/release/withings-relay

# Installs what the tests need on Debian (as root) when it is missing.
test-deps:
	@./.ci/install-deps

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --locked

unit-and-e2e:
	$(CARGO) test --locked

test: test-deps lint unit-and-e2e test-routers test-initd

# Home Assistant Core itself reading the relay's MQTT discovery
# (tests/it/home_assistant.rs): names, units, device classes, icons,
# precision, the devices and the unassigned weigh-in, through HA's REST and
# websocket APIs. Not part of `make test`: the first run installs HA into
# target/ha/venv (about 4 minutes, from PyPI) with pyenv's Python 3.13;
# HA runs with --skip-pip, so the packages of the integrations it loads
# (the frontend, MQTT) are installed here, at the versions it pins.
HA_PYTHON ?= $(HOME)/.pyenv/versions/3.13.0/bin/python
HA_VENV := target/ha/venv
test-ha:
	@[ -x $(HA_VENV)/bin/hass ] || { $(HA_PYTHON) -m venv $(HA_VENV) && \
		$(HA_VENV)/bin/pip install homeassistant==2025.4.4 \
		home-assistant-frontend==20250411.0 paho-mqtt==2.1.0; }
	WITHINGS_HA_VENV=$(abspath $(HA_VENV)) $(CARGO) test --locked --test it home_assistant:: -- --ignored

# Figures, not pass/fail: webhook latency and the relay's memory, on the
# release binary against the fake Withings.
bench:
	$(CARGO) bench --locked --bench webhook

# The same binary under attack on 127.0.0.1 (benches/hostile.rs): 1000
# slowloris connections, 100 slow bodies and a 64 MiB header line while
# 20 notifications arrive; prints their worst latency and the relay's peak
# memory and threads. The attackers need more than the usual 1024 open
# files (the relay inherits the limit and still keeps at most 256).
bench-hostile:
	ulimit -n 4096 && $(CARGO) bench --locked --bench hostile

# The relay's own https listener (benches/https.rs): TLS handshake and
# webhook ack times, memory with 100 idle TLS connections, and webhooks
# while 1000 stalled handshakes are held open (hence the open-file limit). For a
# router's CPU, relatively: RELAY_BIN=target/cross/mipsel-unknown-linux-musl/release/withings-relay
# RELAY_RUNNER="qemu-mipsel-static -cpu 24Kc" BENCH_ROUNDS=50 make bench-https
bench-https:
	ulimit -n 4096 && $(CARGO) bench --locked --bench https

clean:
	$(CARGO) clean

# --- router builds (issue: router builds) below this line ---

# Static, stripped binaries for routers and the Raspberry Pi, built without
# Docker: zig (from PyPI) is the musl C compiler and linker, and std is
# rebuilt for each target with the size levers of scripts/cross-build.
# scripts/router-lib.sh pins the toolchain, zig and cargo-zigbuild and
# installs them when missing. `make armv7` etc. build one; each lands in
# target/cross/<rust target>/release/withings-relay. See README.md, "Routers and the Raspberry Pi".
ROUTER_ARCHES := armv7 armv6 aarch64 mipsel mips

.PHONY: routers $(ROUTER_ARCHES) dist test-routers test-initd

$(ROUTER_ARCHES):
	scripts/cross-build $@

routers:
	scripts/cross-build $(ROUTER_ARCHES)

# dist/withings-relay-<arch> for each, checked static, and dist/SHA256SUMS.
dist: routers
	scripts/dist $(ROUTER_ARCHES)

# Every target built, checked static and for its machine and float ABI,
# held to its size limit (armv7 1.52 MB, mipsel 2.3 MB), and run under qemu:
# --version and the end-to-end webhook test (on mips, 32-bit and big-endian,
# every integration test); then the unit tests under qemu on mips.
test-routers: routers
	scripts/check-static $(ROUTER_ARCHES)
	scripts/check-size $(ROUTER_ARCHES)
	scripts/smoke-routers $(ROUTER_ARCHES)
	scripts/cross-unit-tests mips

# The OpenWrt init script's command line against stubs of procd and UCI
# (under sh, bash and busybox ash), the systemd unit through
# systemd-analyze, and shellcheck on every script of these.
test-initd:
	shellcheck -x init.d/withings-relay init.d/withings-relay-dnswatch tests/initd/run tests/initd/stubs.sh tests/initd/check-unit $(wildcard scripts/*)
	tests/initd/run
	tests/initd/check-unit
