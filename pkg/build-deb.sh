#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (installed with `cargo install` if missing):
# netmapd, the preload library, the compat headers with netmap.pc, the man page and
# shell completions generated from the CLI definition, and the systemd unit with its
# /etc/default file. Prints `package: PATH` last.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
  cargo install cargo-deb --locked
fi
command -v dpkg-deb >/dev/null || { apt-get update -qq && apt-get install -y -qq dpkg; }

cargo build --release -p netmapd -p netmapd-preload
stage=target/pkg
rm -rf "$stage"
mkdir -p "$stage/completions"
target/release/netmapd man | gzip -9n > "$stage/netmapd.1.gz"
target/release/netmapd completions bash > "$stage/completions/netmapd"
target/release/netmapd completions zsh > "$stage/completions/_netmapd"
target/release/netmapd completions fish > "$stage/completions/netmapd.fish"
make -s -C compat-headers install PREFIX=/usr PCDIR=/usr/share/pkgconfig \
  DESTDIR="$PWD/$stage/root" BUILDDIR="$PWD/$stage/hdr-build"

cargo deb -p netmapd --no-build
deb=$(ls -t target/debian/netmapd_*.deb | head -1)
echo "package: $PWD/$deb"
