#!/usr/bin/env bash
# Fetches the web terminal's third-party files (xterm.js 5.3.0 and its fit addon 0.8.0, MIT) from
# the npm registry into a git-ignored folder that daemon/build.rs embeds into the binary.
#
#   packaging/fetch-xterm.sh [DEST]      (default: daemon/assets/xterm)
#
# Uses `npm pack` when npm is installed, else downloads the same registry tarballs with curl.
# Either way the tarballs are checked against the registry's pinned sha512 integrity values.
# The cargo build runs this script by itself when the files are missing (daemon/build.rs).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
dest=${1:-$root/daemon/assets/xterm}

# name version integrity (from `npm view <name>@<version> dist.integrity`)
packages=(
    "xterm 5.3.0 sha512-8QqjlekLUFTrU6x7xck1MsPzPA571K5zNqWm0M0oroYEWVOptZ0+ubQSkQ3uxIEhcIHRujJy6emDWX4A7qyFzg=="
    "xterm-addon-fit 0.8.0 sha512-yj3Np7XlvxxhYF/EJ7p3KHaMt6OdwQ+HDu573Vx1lRXsVxOcnVJs51RgjZOouIZOczTsskaS+CpXspK81/DLqw=="
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for entry in "${packages[@]}"; do
    read -r name version integrity <<<"$entry"
    tgz="$work/$name-$version.tgz"
    if command -v npm >/dev/null; then
        (cd "$work" && npm pack --silent "$name@$version" >/dev/null)
    elif command -v curl >/dev/null; then
        curl -fsSL --retry 3 -o "$tgz" "https://registry.npmjs.org/$name/-/$name-$version.tgz"
    else
        echo "fetch-xterm: neither npm nor curl is installed" >&2
        exit 1
    fi
    if command -v openssl >/dev/null; then
        got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    else
        got="sha512-$(sha512sum "$tgz" | cut -d' ' -f1 | xxd -r -p | base64 -w0)"
    fi
    if [ "$got" != "$integrity" ]; then
        echo "fetch-xterm: $name@$version does not match its integrity ($got)" >&2
        exit 1
    fi
    mkdir -p "$work/$name"
    tar -xzf "$tgz" -C "$work/$name"
done

mkdir -p "$dest"
cp "$work/xterm/package/lib/xterm.js" "$dest/xterm.js"
cp "$work/xterm/package/css/xterm.css" "$dest/xterm.css"
cp "$work/xterm-addon-fit/package/lib/xterm-addon-fit.js" "$dest/xterm-addon-fit.js"
cp "$work/xterm/package/LICENSE" "$dest/LICENSE.xterm"
echo "fetch-xterm: xterm.js 5.3.0 and xterm-addon-fit 0.8.0 in $dest"
