#!/usr/bin/env bash
# Builds the daemon as a fully static x86_64 Linux binary (musl) and proves it is static.
#
#   packaging/build-static.sh [OUT_DIR]
#
# Needs: the Rust target x86_64-unknown-linux-musl and musl-gcc (Debian: musl-tools) for crates
# that compile C. Writes OUT_DIR/daytona-daemon (default packaging/dist/) and prints its size.
# The Dockerfile runs this same script, so what CI tests is what the image ships.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=${1:-$root/packaging/dist}
target=x86_64-unknown-linux-musl

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "build-static: the Rust target $target is missing (rustup target add $target)" >&2
    exit 1
fi
if ! command -v musl-gcc >/dev/null; then
    echo "build-static: musl-gcc is missing (apt-get install musl-tools)" >&2
    exit 1
fi

cd "$root"
CC_x86_64_unknown_linux_musl=musl-gcc \
    cargo build --release --locked --target "$target" -p daytona-daemon
bin="${CARGO_TARGET_DIR:-$root/target}/$target/release/daytona-daemon"

# The proof: the kernel needs no interpreter and the binary needs no shared library.
desc=$(file -b "$bin")
case "$desc" in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) echo "build-static: not static: $desc" >&2; exit 1 ;;
esac
if ldd "$bin" >/dev/null 2>&1 && ! ldd "$bin" 2>&1 | grep -q "statically linked"; then
    echo "build-static: ldd finds dependencies:" >&2
    ldd "$bin" >&2
    exit 1
fi

mkdir -p "$out"
cp "$bin" "$out/daytona-daemon"
echo "build-static: $out/daytona-daemon ($(stat -c %s "$out/daytona-daemon") bytes): $desc"
