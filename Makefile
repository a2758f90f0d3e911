# withings-relay: `make` builds, `make test` runs every check CI runs,
# `make release` builds the size-tuned binary for this machine.

CARGO ?= cargo

.PHONY: all build release test test-deps lint unit-and-e2e bench clean

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

unit-and-e2e:
	$(CARGO) test --locked

test: test-deps lint unit-and-e2e

# Figures, not pass/fail: webhook latency and the relay's memory, on the
# release binary against the fake Withings.
bench:
	$(CARGO) bench --locked --bench webhook

clean:
	$(CARGO) clean

# --- router builds (issue: router builds) below this line ---
