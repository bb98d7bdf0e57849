#!/bin/sh
# VM test (run by vm/run.sh inside Debian's 6.12 cloud kernel): netmapd's FUSE
# passthrough front end serves /dev/netmap on a real 6.12 kernel.
#  1. a netmap pipe pp{0 -> pp}0 carries 1,000,000 packets, both clients exit 0;
#  2. `nm-client errno --all` passes every errno case.
# Each step runs under `netmapd exec` (private mount namespace, fresh daemon).
COUNT=${COUNT:-1000000}

fail() {
    echo "$*" > /run/vm-fail-reason
    echo "FAIL: $*"
    exit 1
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }

[ -c /dev/fuse ] || fail "/dev/fuse missing (fuse not built in / not loaded)"
grep -qw fuse /proc/filesystems || fail "fuse missing from /proc/filesystems"
echo "kernel $(uname -r); fuse in /proc/filesystems; /dev/fuse present"

echo "== pipe: $COUNT packets pp{0 -> pp}0 (start $(uptime_s) s)"
netmapd exec -- sh -c '
    nm-client pipe-rx --port "pp}0" --count "$1" & rx=$!
    nm-client pipe-tx --port "pp{0" --count "$1"; txs=$?
    wait "$rx"; rxs=$?
    echo "pipe-tx exit=$txs pipe-rx exit=$rxs"
    [ "$txs" -eq 0 ] && [ "$rxs" -eq 0 ]' sh "$COUNT"
rc=$?
echo "== pipe done: exit $rc (end $(uptime_s) s)"
[ "$rc" -eq 0 ] || fail "pipe test: netmapd exec exited $rc"

echo "== errno --all (start $(uptime_s) s)"
netmapd exec -- nm-client errno --all
rc=$?
echo "== errno done: exit $rc (end $(uptime_s) s)"
[ "$rc" -eq 0 ] || fail "nm-client errno --all exited $rc"
echo "== --frontend auto on this kernel (FUSE passthrough expected)"
netmapd exec --frontend auto -- true > /tmp/auto.log 2>&1 || fail "netmapd exec --frontend auto failed"
grep -q 'frontend="fuse"' /tmp/auto.log || { cat /tmp/auto.log; fail "--frontend auto did not pick fuse"; }
echo "auto picked fuse"
echo "fuse-pipe: all passed"
