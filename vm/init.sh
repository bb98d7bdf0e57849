#!/bin/sh
# /init of the test VM's initramfs (busybox sh). Mounts the pseudo filesystems, loads
# the modules listed in /etc/vm-modules, runs /test.sh with a time limit, prints ONE
# verdict line to the serial console and powers off:
#   VM-VERDICT: PASS
#   VM-VERDICT: FAIL <reason>
# A test script gives a reason by writing it to /run/vm-fail-reason (else the reason
# is its exit status). Kernel parameters read: vmtest.timeout=SECONDS (default 300),
# vmtest.debug=1 (drop to a shell on the console instead of powering off).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
# Plain logs on the serial console (tracing-subscriber honours NO_COLOR).
export NO_COLOR=1

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
# Everything below goes to the serial console, whatever the kernel handed us.
[ -c /dev/ttyS0 ] && exec </dev/ttyS0 >/dev/ttyS0 2>&1

KVER=$(uname -r)
echo "VM-BOOT: init started at $(cut -d' ' -f1 /proc/uptime) s uptime; kernel $KVER; $(nproc) CPUs; $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) MiB"

TIMEOUT=300
DEBUG=0
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        vmtest.timeout=*) TIMEOUT=${arg#vmtest.timeout=} ;;
        vmtest.debug=*) DEBUG=${arg#vmtest.debug=} ;;
    esac
done

: > /run/vm-module-failures
if [ -f /etc/vm-modules ]; then
    while read -r mod; do
        [ -n "$mod" ] || continue
        if out=$(insmod "/lib/modules/$KVER/$mod.ko" 2>&1); then
            echo "VM-MODULE: loaded $mod"
        else
            echo "VM-MODULE: FAILED to load $mod: $out"
            echo "$mod" >> /run/vm-module-failures
        fi
    done < /etc/vm-modules
fi
ip link set lo up 2>/dev/null
hostname -F /etc/hostname 2>/dev/null

verdict() {
    echo "VM-VERDICT: $*"
    if [ "$DEBUG" = 1 ]; then
        echo "vmtest.debug=1: shell on the console; exit it to power off"
        setsid sh -c 'exec sh </dev/ttyS0 >/dev/ttyS0 2>&1'
    fi
    sync
    poweroff -f
    # poweroff should not return; if it does, make the kernel panic: with panic=-1
    # and qemu -no-reboot that ends the VM too.
    echo o > /proc/sysrq-trigger
    exit 1
}

if [ ! -f /test.sh ]; then
    verdict "FAIL no /test.sh in the initramfs"
fi
echo "VM-TEST: running /test.sh (limit ${TIMEOUT} s) at $(cut -d' ' -f1 /proc/uptime) s uptime"
start=$(cut -d' ' -f1 /proc/uptime)
cd /tmp
timeout -s KILL "$TIMEOUT" sh /test.sh
rc=$?
end=$(cut -d' ' -f1 /proc/uptime)
echo "VM-TEST: /test.sh exited $rc after $(awk "BEGIN{printf \"%.1f\", $end-$start}") s"
if [ "$rc" -eq 0 ]; then
    verdict "PASS"
fi
echo "---- dmesg tail ----"
dmesg | tail -n 40
echo "--------------------"
if [ "$rc" -eq 137 ]; then
    verdict "FAIL test script killed after the ${TIMEOUT} s limit (vmtest.timeout)"
elif [ -s /run/vm-fail-reason ]; then
    verdict "FAIL $(head -n1 /run/vm-fail-reason) (exit $rc)"
else
    verdict "FAIL test script exited $rc"
fi
