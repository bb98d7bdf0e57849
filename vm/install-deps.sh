#!/bin/bash
# Installs the host tools the VM harness needs (as root, Debian): qemu-system-x86_64,
# a static busybox for the initramfs, cpio, xz (module decompression), file, binutils
# (strip), mmdebstrap (the Debian-with-systemd image of the package test). Idempotent: installs only what is missing. Call it from CI before
# `cargo test` so tests/tests/vm.rs finds its tools (the test itself never installs).
set -euo pipefail
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
{ [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep 'statically linked' >/dev/null; } || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v xz >/dev/null || need+=(xz-utils)
command -v file >/dev/null || need+=(file)
command -v strip >/dev/null || need+=(binutils)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
if [ ${#need[@]} -eq 0 ]; then
    echo "vm/install-deps.sh: all present"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "vm/install-deps.sh: need root to install ${need[*]}" >&2; exit 1; }
echo "vm/install-deps.sh: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
