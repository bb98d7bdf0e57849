#!/bin/bash
# Builds the test VM's initramfs.
#
#   vm/build-initramfs.sh OUT.cpio.gz TEST_SCRIPT [FILE...]
#
# Contents: static busybox (/bin/busybox plus applet links), /init (vm/init.sh),
# TEST_SCRIPT as /test.sh, the kernel modules of $VM_MODULES (default "fuse cuse veth";
# built-in ones are skipped, dependencies are added from each module's modinfo and
# loaded first; listed in /etc/vm-modules in load order), netmapd and nm-client
# ($NETMAPD_BIN / $NM_CLIENT_BIN, default target/release/…), and every extra FILE:
# executables go to /bin, shared objects (*.so, *.so.N) to /lib, or FILE:/ABS/PATH puts
# it at that path (e.g. target/release/libnetmapd_preload.so:/lib/libnetmapd_preload.so); each
# with the shared libraries `ldd` lists, at the same paths, plus the loader.
#
# Needs vm/fetch-kernel.sh to have run (vm/cache/kernel.env). Root is needed only for
# /dev/console in the image (init reopens the serial port anyway).
set -euo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$VM_DIR/.." && pwd)
CACHE=${VM_CACHE:-$VM_DIR/cache}

die() { echo "build-initramfs: ERROR: $*" >&2; exit 1; }
log() { echo "build-initramfs: $*" >&2; }

[ $# -ge 2 ] || die "usage: $0 OUT.cpio.gz TEST_SCRIPT [FILE...]"
OUT=$1
TEST_SCRIPT=$2
shift 2
[ -f "$TEST_SCRIPT" ] || die "test script $TEST_SCRIPT not found"
[ -f "$CACHE/kernel.env" ] || die "$CACHE/kernel.env missing: run vm/fetch-kernel.sh first"
# shellcheck disable=SC1091
. "$CACHE/kernel.env"

BUSYBOX=${VM_BUSYBOX:-}
if [ -z "$BUSYBOX" ]; then
    for b in /bin/busybox /usr/bin/busybox; do
        [ -x "$b" ] && BUSYBOX=$b && break
    done
fi
[ -n "$BUSYBOX" ] || die "busybox not found: apt-get install -y busybox-static"
file -L "$BUSYBOX" 2>/dev/null | grep 'statically linked' >/dev/null \
    || ldd "$BUSYBOX" 2>&1 | grep 'not a dynamic executable' >/dev/null \
    || die "$BUSYBOX is not static: apt-get install -y busybox-static"
command -v cpio >/dev/null || die "cpio not found: apt-get install -y cpio"

NETMAPD_BIN=${NETMAPD_BIN:-$REPO/target/release/netmapd}
NM_CLIENT_BIN=${NM_CLIENT_BIN:-$REPO/target/release/nm-client}
for b in "$NETMAPD_BIN" "$NM_CLIENT_BIN"; do
    [ -x "$b" ] || die "$b not found: cargo build --release --workspace (or set NETMAPD_BIN / NM_CLIENT_BIN)"
done

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/vm-initramfs.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc,proc,sys,dev,tmp,run,root,mnt}
ln -s ../lib "$STAGE/usr/lib"

# --- busybox -------------------------------------------------------------------
cp "$BUSYBOX" "$STAGE/bin/busybox"
"$BUSYBOX" --list-full | while read -r applet; do
    [ -e "$STAGE/$applet" ] || ln -s /bin/busybox "$STAGE/$applet"
done
[ -e "$STAGE/bin/sh" ] || ln -s busybox "$STAGE/bin/sh"

# --- binaries and their shared libraries ----------------------------------------
# Copies FILE (stripped of debug info) to DEST_DIR, and every library ldd lists for it
# to the same absolute path in the image (so the loader's default paths find them).
copy_lib() {
    local src=$1 dst
    dst=$STAGE$src
    [ -e "$dst" ] && return 0
    mkdir -p "$(dirname "$dst")"
    cp -L "$src" "$dst"
    # Also give the resolved name, in case something asks for the real file.
    local real
    real=$(readlink -f "$src")
    if [ "$real" != "$src" ] && [ ! -e "$STAGE$real" ]; then
        mkdir -p "$(dirname "$STAGE$real")"
        cp -L "$src" "$STAGE$real"
    fi
}

# add_binary PATH [DEST_DIR]  or  add_binary PATH:/DEST/FILE
add_binary() {
    local src=$1 dest_dir=${2:-} name lib
    name=$(basename "$src")
    case "$src" in
        *:/*)
            name=$(basename "${src##*:}")
            dest_dir=$(dirname "${src##*:}")
            src=${src%:/*}
            ;;
    esac
    [ -f "$src" ] || die "add_binary: $src not found"
    if [ -z "$dest_dir" ]; then
        case "$name" in
            *.so|*.so.*) dest_dir=/lib ;;
            *) dest_dir=/bin ;;
        esac
    fi
    mkdir -p "$STAGE$dest_dir"
    cp -L "$src" "$STAGE$dest_dir/$name"
    chmod u+w "$STAGE$dest_dir/$name"
    if [ "${VM_STRIP:-1}" = 1 ] && command -v strip >/dev/null; then
        strip --strip-debug "$STAGE$dest_dir/$name" 2>/dev/null || true
    fi
    local deps
    deps=$(ldd "$src" 2>&1) || true
    if echo "$deps" | grep 'not a dynamic executable\|statically linked' >/dev/null; then
        log "added $dest_dir/$name (static)"
        return 0
    fi
    if echo "$deps" | grep 'not found' >/dev/null; then
        die "add_binary: $src has unresolved libraries:
$deps"
    fi
    # "libx.so => /path/libx.so (0x…)" and "/lib64/ld-linux-x86-64.so.2 (0x…)"
    for lib in $(echo "$deps" | awk '/=>/ { if ($3 ~ /^\//) print $3; next } $1 ~ /^\// { print $1 }'); do
        copy_lib "$lib"
    done
    log "added $dest_dir/$name ($(echo "$deps" | grep -c '/') libraries)"
}

add_binary "$NETMAPD_BIN" /bin
add_binary "$NM_CLIENT_BIN" /bin
# netmapd loads libfuse3 at run time for its CUSE front end (dlopen: ldd does not list
# it). The CUSE VM test needs it, so a host without it is an error, not a silent gap.
# awk reads to the end (no early exit): an early exit can SIGPIPE ldconfig, and with
# pipefail that failed the assignment and ended the script without a word (seen in CI
# after libxdp1 and its dependencies joined ldconfig's list).
LIBFUSE3=$(ldconfig -p 2>/dev/null | awk '!found && $1 == "libfuse3.so.3" && $NF ~ /^\// { print $NF; found = 1 }')
[ -n "$LIBFUSE3" ] || die "libfuse3.so.3 not found on this host (apt-get install -y libfuse3-3): netmapd's CUSE front end loads it"
add_binary "$LIBFUSE3:$LIBFUSE3"
for f in "$@"; do
    add_binary "$f"
done

# --- kernel modules ---------------------------------------------------------------
MOD_OUT=$STAGE/lib/modules/$KVER
mkdir -p "$MOD_OUT"
: > "$STAGE/etc/vm-modules"

mod_norm() { echo "$1" | tr '-' '_'; }

is_builtin() {
    local n
    n=$(mod_norm "$1")
    # grep reads to the end (no -q): an early exit would SIGPIPE tr, and pipefail
    # would turn a match into a failure.
    [ -f "$MODDIR/modules.builtin" ] &&
        tr '-' '_' < "$MODDIR/modules.builtin" | grep "/$n\.ko$" > /dev/null
}

# Path (relative to $MODDIR) of module NAME, from modules.order or a search.
mod_path() {
    local n p
    n=$(mod_norm "$1")
    p=$(tr '-' '_' < "$MODDIR/modules.order" 2>/dev/null | grep -n "/$n\.ko$" | head -n1 | cut -d: -f1 || true)
    if [ -n "$p" ]; then
        p=$(sed -n "${p}p" "$MODDIR/modules.order")
        for ext in "" .xz .zst .gz; do
            [ -f "$MODDIR/$p$ext" ] && { echo "$p$ext"; return 0; }
        done
    fi
    p=$(cd "$MODDIR" && find kernel -name "$1.ko*" -o -name "$n.ko*" | head -n1 || true)
    [ -n "$p" ] && echo "$p"
}

decompress() {
    case "$1" in
        *.xz) xz -dc "$1" ;;
        *.zst) zstd -dc "$1" ;;
        *.gz) gzip -dc "$1" ;;
        *) cat "$1" ;;
    esac
}

declare -A MOD_DONE=()
# Adds module NAME after its dependencies (modinfo "depends=" read from the .ko).
add_module() {
    local name n rel deps d
    name=$1
    n=$(mod_norm "$name")
    [ -n "${MOD_DONE[$n]:-}" ] && return 0
    MOD_DONE[$n]=1
    if is_builtin "$n"; then
        log "module $n: built into $KVER"
        return 0
    fi
    rel=$(mod_path "$name") || true
    [ -n "$rel" ] || die "module $name not found under $MODDIR"
    decompress "$MODDIR/$rel" > "$MOD_OUT/$n.ko"
    deps=$(tr '\0' '\n' < "$MOD_OUT/$n.ko" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' ')
    for d in $deps; do
        add_module "$d"
    done
    echo "$n" >> "$STAGE/etc/vm-modules"
    log "module $n: $rel${deps:+ (depends on $deps)}"
}
for m in ${VM_MODULES-fuse cuse veth}; do
    add_module "$m"
done

# --- init, test script, config ----------------------------------------------------
cp "$VM_DIR/init.sh" "$STAGE/init"
cp "$TEST_SCRIPT" "$STAGE/test.sh"
chmod 755 "$STAGE/init" "$STAGE/test.sh"
echo 'root:x:0:0:root:/root:/bin/sh' > "$STAGE/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' > "$STAGE/etc/group"
echo 'netmapd-vm' > "$STAGE/etc/hostname"
mknod -m 600 "$STAGE/dev/console" c 5 1 2>/dev/null || log "cannot mknod /dev/console (not root?): init reopens /dev/ttyS0"
mknod -m 666 "$STAGE/dev/null" c 1 3 2>/dev/null || true

mkdir -p "$(dirname "$OUT")"
( cd "$STAGE" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet ) | gzip -1 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "wrote $OUT ($(du -h "$OUT" | cut -f1))"
