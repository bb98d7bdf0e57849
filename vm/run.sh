#!/bin/bash
# Boots Debian's 6.12 cloud kernel under qemu-system-x86_64 with an initramfs holding
# netmapd, nm-client, the needed modules and TEST_SCRIPT, prints the serial console,
# and exits 0 only when the VM printed "VM-VERDICT: PASS".
#
#   vm/run.sh TEST_SCRIPT [FILE...]      (FILEs: extra binaries / shared objects)
#
# Exit status: 0 PASS; 1 the VM printed "VM-VERDICT: FAIL …"; 2 no verdict (qemu
# timed out, crashed, or the kernel never reached /init); 3 setup error.
#
# Environment (all optional):
#   NETMAPD_BIN, NM_CLIENT_BIN  binaries to put in the image (default target/release/…)
#   VM_TEST_TIMEOUT  seconds the test script may run inside the VM (default 300)
#   VM_TIMEOUT       seconds before qemu is killed (default VM_TEST_TIMEOUT + 300)
#   VM_MEM (MiB, default 2048)   VM_SMP (default 2)   VM_CPU (default max; host with kvm)
#   VM_ACCEL         tcg (default: software emulation) | kvm (opt-in: on this workplace
#                    /dev/kvm exists but qemu aborts on it, "failed to set MSR 0x10a")
#   VM_MODULES       modules for the image (default "fuse cuse veth")
#   VM_APPEND        extra kernel parameters (e.g. vmtest.debug=1, or drop quiet via
#                    VM_QUIET=0)
#   VM_OUT           directory for the initramfs and console log (default vm/out)
#   VM_INITRD        boot this image instead of building one (TEST_SCRIPT then only
#                    names the run)
set -uo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "vm/run.sh: ERROR: $*" >&2; exit 3; }

[ $# -ge 1 ] || die "usage: $0 TEST_SCRIPT [FILE...]"
TEST_SCRIPT=$1
shift
[ -f "$TEST_SCRIPT" ] || die "test script $TEST_SCRIPT not found"
command -v qemu-system-x86_64 >/dev/null \
    || die "qemu-system-x86_64 not found: apt-get install -y qemu-system-x86"

T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

"$VM_DIR/fetch-kernel.sh" || die "fetching the kernel failed"
# shellcheck disable=SC1091
. "${VM_CACHE:-$VM_DIR/cache}/kernel.env"

NAME=$(basename "$TEST_SCRIPT" .sh)
OUT_DIR=${VM_OUT:-$VM_DIR/out}
mkdir -p "$OUT_DIR"
INITRD=$OUT_DIR/$NAME.initrd.gz
CONSOLE=$OUT_DIR/$NAME.console.log
if [ -n "${VM_INITRD:-}" ]; then
    # An image built elsewhere (vm/build-debian-image.sh: a whole Debian with systemd).
    INITRD=$VM_INITRD
else
    "$VM_DIR/build-initramfs.sh" "$INITRD" "$TEST_SCRIPT" "$@" || die "building the initramfs failed"
fi
T_BUILT=$(elapsed)

TEST_TIMEOUT=${VM_TEST_TIMEOUT:-300}
TIMEOUT=${VM_TIMEOUT:-$((TEST_TIMEOUT + 300))}
ACCEL=${VM_ACCEL:-tcg}
case "$ACCEL" in
    tcg) ACCEL_OPT="tcg,thread=multi"; CPU=${VM_CPU:-max} ;;
    *) ACCEL_OPT=$ACCEL; CPU=${VM_CPU:-host} ;;
esac
QUIET=quiet
[ "${VM_QUIET:-1}" = 0 ] && QUIET=
APPEND="console=ttyS0 panic=-1 $QUIET vmtest.timeout=$TEST_TIMEOUT ${VM_APPEND:-}"

QEMU=(qemu-system-x86_64
    -machine q35 -accel "$ACCEL_OPT" -cpu "$CPU"
    -m "${VM_MEM:-2048}" -smp "${VM_SMP:-2}"
    -nographic -no-reboot -nic none
    -kernel "$VMLINUZ" -initrd "$INITRD"
    -append "$APPEND")
echo "vm/run.sh: kernel $KVER ($KPKG $KPKG_VERSION), accel $ACCEL, timeout ${TIMEOUT} s"
echo "vm/run.sh: ${QEMU[*]}"
echo "===== serial console ====="
# -nographic puts the serial port (ttyS0) on stdio. stdin is /dev/null so a test run
# from a terminal cannot type into the guest; timeout kills a hung VM.
timeout -k 10 "$TIMEOUT" "${QEMU[@]}" </dev/null 2>&1 | tr -d '\r' | tee "$CONSOLE"
QEMU_RC=${PIPESTATUS[0]}
echo "===== end of console (qemu exit $QEMU_RC) ====="

# (SeaBIOS' terminal escapes may precede a marker on its line: match unanchored.)
BOOT=$(sed -n 's/.*VM-BOOT: init started at \([0-9.]*\) s uptime.*/\1/p' "$CONSOLE" | head -n1)
VERDICT=$(grep -ao 'VM-VERDICT: .*' "$CONSOLE" | tail -n1)
echo "vm/run.sh: timing: initramfs built after ${T_BUILT} s; guest reached /init at ${BOOT:-?} s uptime; total $(elapsed) s"
echo "vm/run.sh: console log: $CONSOLE"
if [ -z "$VERDICT" ]; then
    if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
        echo "vm/run.sh: NO VERDICT: qemu killed after ${TIMEOUT} s (VM_TIMEOUT)"
    else
        echo "vm/run.sh: NO VERDICT: qemu exited $QEMU_RC without a VM-VERDICT line"
    fi
    exit 2
fi
echo "vm/run.sh: $VERDICT"
case "$VERDICT" in
    "VM-VERDICT: PASS") exit 0 ;;
    *) exit 1 ;;
esac
