# shellcheck shell=sh
# Shared by the scripts in scripts/ that build and test the router binaries.
# Sourced, not run: sets the pinned tool versions and maps the short
# architecture names used by `make armv7` etc. to Rust targets and emulators.

# The repository root, whatever directory the caller was started from.
ROUTER_REPO=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)

# Pinned so a build today and a build in a year give the same binary.
# -Zbuild-std with RUSTC_BOOTSTRAP leans on unstable flags that may change
# between compilers, so the toolchain is pinned too (rustup installs it
# when it is missing).
ROUTER_TOOLCHAIN=${ROUTER_TOOLCHAIN:-1.95.0}
ZIGLANG_VERSION=0.15.2
CARGO_ZIGBUILD_VERSION=0.24.0

# Separate from target/ so these builds never wait on (or invalidate) the
# host build's cargo lock and fingerprints.
ROUTER_TARGET_DIR=${ROUTER_TARGET_DIR:-$ROUTER_REPO/target/cross}
# zig and cargo-zigbuild live in a venv outside the work tree, keyed by
# their versions, so CI on the same machine reuses it and a version bump
# gets a fresh one.
ROUTER_TOOLS=${ROUTER_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/withings-relay/zig$ZIGLANG_VERSION-zigbuild$CARGO_ZIGBUILD_VERSION}

ROUTER_ARCHES="armv7 armv6 aarch64 mipsel mips"

die() {
    echo "$(basename -- "$0"): $*" >&2
    exit 1
}

# The Rust target of a short architecture name.
triple_of() {
    case $1 in
        armv7) echo armv7-unknown-linux-musleabihf ;;
        armv6) echo arm-unknown-linux-musleabihf ;;
        aarch64) echo aarch64-unknown-linux-musl ;;
        mipsel) echo mipsel-unknown-linux-musl ;;
        mips) echo mips-unknown-linux-musl ;;
        *) die "unknown architecture '$1' (one of: $ROUTER_ARCHES)" ;;
    esac
}

# The qemu user-mode command that runs a binary of that architecture on a
# CPU like the smallest board it is for: an ARM1176 is the Pi Zero (an
# armv7 instruction there is SIGILL), the 24Kc has no FPU, like the
# MediaTek and Atheros router SoCs (a hard-float instruction is SIGILL).
runner_of() {
    case $1 in
        armv7) echo "qemu-arm-static -cpu cortex-a7" ;;
        armv6) echo "qemu-arm-static -cpu arm1176" ;;
        aarch64) echo "qemu-aarch64-static -cpu cortex-a53" ;;
        mipsel) echo "qemu-mipsel-static -cpu 24Kc" ;;
        mips) echo "qemu-mips-static -cpu 24Kc" ;;
        *) die "unknown architecture '$1' (one of: $ROUTER_ARCHES)" ;;
    esac
}

# The built binary of an architecture.
bin_of() {
    echo "$ROUTER_TARGET_DIR/$(triple_of "$1")/release/withings-relay"
}

# The rustflags of a target: the base recipe plus the size levers named in
# $ROUTER_LEVERS (see scripts/size-levers for what each one buys).
rustflags_of() {
    # zig provides crt1.o and libc; Rust's own self-contained copies do
    # not exist for the tier 3 MIPS targets and must not be mixed in.
    flags="-C link-self-contained=no"
    case $1 in
        # OpenWrt's MIPS targets default to dynamic linking; force static.
        mipsel | mips) flags="$flags -C target-feature=+crt-static" ;;
    esac
    for lever in $ROUTER_LEVERS; do
        case $lever in
            immediate-abort) flags="$flags -Zunstable-options -C panic=immediate-abort" ;;
            location-none) flags="$flags -Zlocation-detail=none" ;;
            fmt-debug-none) flags="$flags -Zfmt-debug=none" ;;
            fmt-debug-shallow) flags="$flags -Zfmt-debug=shallow" ;;
            opt-s) flags="$flags -C opt-level=s" ;;
            optimize-for-size) ;; # a std feature, see build_std_args
            *) die "unknown size lever '$lever'" ;;
        esac
    done
    echo "$flags"
}

# The -Zbuild-std arguments for $ROUTER_LEVERS.
build_std_args() {
    panic_crate=panic_abort
    features=
    for lever in $ROUTER_LEVERS; do
        case $lever in
            optimize-for-size) features=optimize_for_size ;;
        esac
    done
    if [ -n "$features" ]; then
        echo "-Zbuild-std=std,$panic_crate -Zbuild-std-features=$features"
    else
        echo "-Zbuild-std=std,$panic_crate"
    fi
}

# Installs, when missing, the pinned toolchain with its std source, and zig
# plus cargo-zigbuild from PyPI into a venv; then puts them first on PATH.
ensure_cross_tools() {
    command -v rustup >/dev/null 2>&1 || die "rustup is needed (build-std needs the rust-src component)"
    if ! rustup run "$ROUTER_TOOLCHAIN" rustc --version >/dev/null 2>&1; then
        echo "installing Rust $ROUTER_TOOLCHAIN" >&2
        rustup toolchain install "$ROUTER_TOOLCHAIN" --profile minimal --component rust-src >&2 ||
            die "could not install Rust $ROUTER_TOOLCHAIN"
    fi
    sysroot=$(rustup run "$ROUTER_TOOLCHAIN" rustc --print sysroot)
    if [ ! -f "$sysroot/lib/rustlib/src/rust/library/Cargo.lock" ]; then
        echo "installing rust-src for Rust $ROUTER_TOOLCHAIN" >&2
        rustup component add rust-src --toolchain "$ROUTER_TOOLCHAIN" >&2 ||
            die "could not install the rust-src component"
    fi
    if [ ! -x "$ROUTER_TOOLS/bin/cargo-zigbuild" ] || [ ! -f "$ROUTER_TOOLS/.complete" ]; then
        echo "installing ziglang $ZIGLANG_VERSION and cargo-zigbuild $CARGO_ZIGBUILD_VERSION into $ROUTER_TOOLS" >&2
        rm -rf "$ROUTER_TOOLS"
        python3 -m venv "$ROUTER_TOOLS" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
        "$ROUTER_TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check \
            "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" >&2 ||
            die "could not install ziglang and cargo-zigbuild from PyPI"
        touch "$ROUTER_TOOLS/.complete"
    fi
    PATH="$ROUTER_TOOLS/bin:$PATH"
    RUSTUP_TOOLCHAIN=$ROUTER_TOOLCHAIN
    export PATH RUSTUP_TOOLCHAIN
}

# The environment variable cargo reads the rustflags of one target from:
# CARGO_TARGET_<TRIPLE>_RUSTFLAGS, so host build scripts are left alone.
rustflags_var_of() {
    echo "CARGO_TARGET_$(triple_of "$1" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
}
