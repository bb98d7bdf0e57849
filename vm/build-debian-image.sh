#!/bin/bash
# Builds a VM image holding a whole Debian 12 (bookworm) with systemd as PID 1, for
# testing the Debian package as a fresh machine sees it:
#
#   vm/build-debian-image.sh OUT.initrd.gz PACKAGE.deb TEST_SCRIPT [FILE...]
#
# The root filesystem comes from mmdebstrap (minbase + systemd-sysv, kmod; cached in
# vm/cache/debian-rootfs.tar), then gets the fuse module of the test kernel
# (vm/fetch-kernel.sh), PACKAGE.deb as /root/netmapd.deb (installed by the test, not
# here), TEST_SCRIPT as /root/vmtest.sh run by vmtest.service once the system is up
# (its output on the serial console, then `VM-VERDICT: …` and a power-off), and each
# FILE in /usr/local/bin. The whole tree is the initramfs: /init is systemd.
set -euo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${VM_CACHE:-$VM_DIR/cache}
die() { echo "build-debian-image: ERROR: $*" >&2; exit 1; }
log() { echo "build-debian-image: $*" >&2; }

[ $# -ge 3 ] || die "usage: $0 OUT.initrd.gz PACKAGE.deb TEST_SCRIPT [FILE...]"
OUT=$1 DEB=$2 TEST_SCRIPT=$3
shift 3
[ -f "$DEB" ] || die "$DEB not found"
[ -f "$TEST_SCRIPT" ] || die "$TEST_SCRIPT not found"
[ -f "$CACHE/kernel.env" ] || die "$CACHE/kernel.env missing: run vm/fetch-kernel.sh first"
# shellcheck disable=SC1091
. "$CACHE/kernel.env"
command -v cpio >/dev/null || die "cpio not found: apt-get install -y cpio"
if ! command -v mmdebstrap >/dev/null; then
    [ "$(id -u)" -eq 0 ] || die "mmdebstrap missing (apt-get install -y mmdebstrap)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap
fi

ROOTFS_TAR=$CACHE/debian-rootfs.tar
INCLUDE=systemd-sysv,kmod,init-system-helpers
if [ ! -f "$ROOTFS_TAR" ] || [ ! -s "$ROOTFS_TAR" ] ||
    [ "$(cat "$ROOTFS_TAR.include" 2>/dev/null)" != "$INCLUDE" ]; then
    log "mmdebstrap bookworm (minbase + $INCLUDE)"
    mkdir -p "$CACHE"
    rm -rf "$ROOTFS_TAR" "$CACHE/debian-rootfs.part.tar"
    # --format=tar: mmdebstrap otherwise guesses the format from the file name.
    mmdebstrap --quiet --format=tar --variant=minbase --include="$INCLUDE" \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        bookworm "$CACHE/debian-rootfs.part.tar"
    mv "$CACHE/debian-rootfs.part.tar" "$ROOTFS_TAR"
    echo "$INCLUDE" > "$ROOTFS_TAR.include"
fi

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/vm-debian.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
tar -C "$STAGE" -xf "$ROOTFS_TAR"

# The test kernel's fuse module (and the module indexes, so `modprobe fuse` finds it).
MOD_OUT=$STAGE/lib/modules/$KVER
mkdir -p "$MOD_OUT"
cp "$MODDIR"/modules.* "$MOD_OUT/"
if ! grep -q '/fuse\.ko' "$MODDIR/modules.builtin" 2>/dev/null; then
    rel=$(cd "$MODDIR" && find kernel -name 'fuse.ko*' | head -n1)
    [ -n "$rel" ] || die "fuse module not found under $MODDIR"
    mkdir -p "$MOD_OUT/$(dirname "$rel")"
    cp "$MODDIR/$rel" "$MOD_OUT/$rel"
fi
if command -v depmod >/dev/null; then
    depmod -b "$STAGE" "$KVER" || log "depmod failed; modprobe may not find modules"
fi

cp "$DEB" "$STAGE/root/netmapd.deb"
install -m 0755 "$TEST_SCRIPT" "$STAGE/root/vmtest.sh"
for f in "$@"; do
    install -m 0755 "$f" "$STAGE/usr/local/bin/"
done
cat > "$STAGE/etc/systemd/system/vmtest.service" <<'UNIT'
[Unit]
Description=netmapd VM test
After=multi-user.target

[Service]
Type=oneshot
Environment=NO_COLOR=1
ExecStart=/bin/sh -c '/root/vmtest.sh; rc=$?; if [ $rc -eq 0 ]; then echo "VM-VERDICT: PASS"; else echo "VM-VERDICT: FAIL $(cat /run/vm-fail-reason 2>/dev/null || echo exit $rc)"; fi; sync; systemctl poweroff --force --force'
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$STAGE/etc/systemd/system/multi-user.target.wants"
ln -s /etc/systemd/system/vmtest.service "$STAGE/etc/systemd/system/multi-user.target.wants/vmtest.service"
# No getty fighting the test for the serial console.
ln -sf /dev/null "$STAGE/etc/systemd/system/serial-getty@ttyS0.service"
ln -sf /dev/null "$STAGE/etc/systemd/system/getty@tty1.service"
echo netmapd-vm > "$STAGE/etc/hostname"
ln -s /lib/systemd/systemd "$STAGE/init"

log "packing $(du -sm "$STAGE" | cut -f1) MiB"
(cd "$STAGE" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$OUT"
log "wrote $OUT ($(du -m "$OUT" | cut -f1) MiB)"
