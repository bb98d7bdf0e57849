#!/bin/bash
# Downloads Debian's 6.12 cloud kernel package (linux-image-6.12.*-cloud-amd64-unsigned)
# and extracts it (dpkg-deb -x, nothing is installed on the host) into vm/cache/.
# Idempotent: a second run only prints what is cached.
#
# Writes vm/cache/kernel.env:
#   KVER=6.12.…-cloud-amd64   VMLINUZ=…/boot/vmlinuz-…   MODDIR=…/lib/modules/$KVER
#   KPKG=<package name>       KPKG_VERSION=<Debian version>
#
# Environment:
#   VM_KERNEL_PKG      exact package name to use instead of the newest 6.12 cloud one
#   VM_KERNEL_REFRESH  =1: ignore the cache and fetch again
#   VM_PRIVATE_APT     =1: skip the host's apt lists, use only the private sources list
#
# The package is looked up with the host's apt lists (running `apt-get update` once if
# they know no 6.12 cloud kernel). If the host's sources do not carry it, a PRIVATE
# sources list under vm/cache/apt (bookworm, bookworm-security, bookworm-backports) is
# used for the lookup and the download only; the host's apt configuration is never
# changed.
set -euo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${VM_CACHE:-$VM_DIR/cache}
ENV_FILE=$CACHE/kernel.env
mkdir -p "$CACHE/debs"
# Concurrent callers (several VM tests at once) take turns: one downloads and extracts,
# the others then find the cache ready.
exec 9>"$CACHE/.lock"
flock 9

log() { echo "fetch-kernel: $*" >&2; }
die() { echo "fetch-kernel: ERROR: $*" >&2; exit 1; }

if [ "${VM_KERNEL_REFRESH:-0}" != 1 ] && [ -f "$ENV_FILE" ]; then
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    if [ -f "${VMLINUZ:-/nonexistent}" ] && [ -d "${MODDIR:-/nonexistent}" ]; then
        log "cached: $KPKG $KPKG_VERSION ($VMLINUZ)"
        exit 0
    fi
fi

for tool in apt-get apt-cache dpkg-deb; do
    command -v "$tool" >/dev/null || die "$tool not found (this harness needs a Debian host)"
done

PATTERN='^linux-image-6\.12\.[0-9.]+\+deb[0-9]+-cloud-amd64-unsigned$'
APT_OPTS=()

# Newest 6.12 cloud kernel package known to apt (with the options in APT_OPTS).
newest_pkg() {
    apt-cache "${APT_OPTS[@]}" search --names-only "$PATTERN" 2>/dev/null \
        | awk '{print $1}' | sort -V | tail -n1
}

use_private_sources() {
    local d=$CACHE/apt
    mkdir -p "$d/lists/partial" "$d/archives/partial"
    : > "$d/status"
    cat > "$d/sources.list" <<SRC
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
deb http://deb.debian.org/debian bookworm-backports main
SRC
    APT_OPTS=(
        -o "Dir::Etc::sourcelist=$d/sources.list"
        -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$d/lists"
        -o "Dir::State::status=$d/status"
        -o "Dir::Cache::archives=$d/archives"
        -o "Dir::Cache::pkgcache=$d/pkgcache.bin"
        -o "Dir::Cache::srcpkgcache=$d/srcpkgcache.bin"
        -o "APT::Architecture=amd64"
        -o "APT::Get::List-Cleanup=0"
    )
    log "using the private sources list $d/sources.list"
    apt-get "${APT_OPTS[@]}" update >&2 || die "apt-get update with the private sources list failed"
}

[ "${VM_PRIVATE_APT:-0}" = 1 ] && use_private_sources
PKG=${VM_KERNEL_PKG:-}
if [ -z "$PKG" ]; then
    PKG=$(newest_pkg)
    if [ -z "$PKG" ] && [ ${#APT_OPTS[@]} -eq 0 ]; then
        log "the host's apt lists know no 6.12 cloud kernel; running apt-get update"
        apt-get update >&2 || log "apt-get update failed (not root?)"
        PKG=$(newest_pkg)
    fi
    if [ -z "$PKG" ] && [ ${#APT_OPTS[@]} -eq 0 ]; then
        use_private_sources
        PKG=$(newest_pkg)
    fi
    [ -n "$PKG" ] || die "no package matching $PATTERN in any apt source"
fi

VERSION=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$PKG" 2>/dev/null | awk '/^Version:/{print $2; exit}')
[ -n "$VERSION" ] || die "apt-cache knows no version of $PKG"
log "package: $PKG $VERSION"

# apt-get download writes into the current directory; as root the _apt sandbox user
# must be able to write there too, or apt warns and downloads unsandboxed (harmless).
DEB=$(ls "$CACHE/debs/${PKG}_"*.deb 2>/dev/null | grep -F "_${VERSION//:/%3a}_" | head -n1 || true)
if [ -z "$DEB" ]; then
    ( cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" -o APT::Sandbox::User=root download "$PKG=$VERSION" >&2 ) \
        || die "apt-get download $PKG=$VERSION failed"
    DEB=$(ls "$CACHE/debs/${PKG}_"*.deb | grep -F "_${VERSION//:/%3a}_" | head -n1)
fi
log "deb: $DEB"

KVER=${PKG#linux-image-}
KVER=${KVER%-unsigned}
ROOT=$CACHE/kernel-$KVER
if [ ! -f "$ROOT/.extracted" ]; then
    rm -rf "$ROOT"
    mkdir -p "$ROOT"
    dpkg-deb -x "$DEB" "$ROOT"
    touch "$ROOT/.extracted"
fi
VMLINUZ=$ROOT/boot/vmlinuz-$KVER
MODDIR=$ROOT/lib/modules/$KVER
[ -d "$MODDIR" ] || MODDIR=$ROOT/usr/lib/modules/$KVER
[ -f "$VMLINUZ" ] || die "$VMLINUZ missing in $DEB"
[ -d "$MODDIR" ] || die "no modules directory for $KVER in $DEB"

cat > "$ENV_FILE.tmp" <<ENV
KPKG=$PKG
KPKG_VERSION=$VERSION
KVER=$KVER
VMLINUZ=$VMLINUZ
MODDIR=$MODDIR
KCONFIG=$ROOT/boot/config-$KVER
ENV
mv "$ENV_FILE.tmp" "$ENV_FILE"
log "extracted $KVER into $ROOT"
