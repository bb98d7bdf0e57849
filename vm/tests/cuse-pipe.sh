#!/bin/sh
# VM test for netmapd's CUSE front end:
#  - cuse.ko loaded (by /init from /etc/vm-modules) and /dev/cuse present;
#  - `netmapd --frontend cuse` serves /dev/netmap as a CUSE character device;
#  - clients run with LD_PRELOAD=/lib/libnetmapd_preload.so, which maps the published
#    region where they map the device and runs the pipe syncs in process: a
#    1,000,000-packet pipe pp{0 -> pp}0 (with the daemon serving almost no syncs) and
#    `nm-client errno --all` must pass.
# Run it with the library put at /lib/libnetmapd_preload.so, e.g.
#   vm/run.sh vm/tests/cuse-pipe.sh target/release/libnetmapd_preload.so:/lib/libnetmapd_preload.so
COUNT=${COUNT:-1000000}
SHIM=/lib/libnetmapd_preload.so
DEV=/dev/netmap

fail() {
    echo "$*" > /run/vm-fail-reason
    echo "FAIL: $*"
    [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null
    exit 1
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# --- kernel side: cuse.ko and /dev/cuse ---------------------------------------------
echo "== lsmod"
lsmod
if [ -s /run/vm-module-failures ]; then
    grep -qx cuse /run/vm-module-failures && fail "cuse.ko failed to load (see VM-MODULE lines above)"
fi
if ! grep -q '^cuse ' /proc/modules; then
    grep -q 'fs/fuse/cuse.ko' "/lib/modules/$(uname -r)/modules.builtin" 2>/dev/null \
        || [ -d /sys/module/cuse ] \
        || fail "cuse is neither loaded nor built in (lsmod shows no cuse)"
fi
[ -c /dev/cuse ] || fail "/dev/cuse missing although cuse is loaded"
echo "cuse loaded; /dev/cuse: $(ls -l /dev/cuse)"

# --- user side: preload library and daemon -------------------------------------------------------
[ -f "$SHIM" ] || fail "$SHIM missing: pass the preload library to vm/run.sh as FILE:$SHIM"
netmapd --help 2>&1 | grep -q -- '--frontend' \
    || fail "this netmapd has no --frontend option (CUSE front end not built in yet)"

echo "== netmapd --frontend cuse (start $(uptime_s) s)"
netmapd --frontend cuse &
DAEMON=$!
i=0
while [ ! -c "$DEV" ]; do
    kill -0 "$DAEMON" 2>/dev/null || { wait "$DAEMON"; fail "netmapd --frontend cuse exited $? before $DEV appeared"; }
    i=$((i + 1))
    [ "$i" -le 300 ] || fail "$DEV did not appear within 30 s of starting netmapd --frontend cuse"
    sleep 0.1
done
echo "$DEV: $(ls -l "$DEV") (after $(uptime_s) s uptime); /sys/class/cuse: $(ls /sys/class/cuse 2>/dev/null)"

export LD_PRELOAD=$SHIM

echo "== pipe: $COUNT packets pp{0 -> pp}0 (start $(uptime_s) s)"
nm-client pipe-rx --port "pp}0" --count "$COUNT" & rx=$!
nm-client pipe-tx --port "pp{0" --count "$COUNT"; txs=$?
wait "$rx"; rxs=$?
echo "pipe-tx exit=$txs pipe-rx exit=$rxs (end $(uptime_s) s)"
[ "$txs" -eq 0 ] && [ "$rxs" -eq 0 ] || fail "CUSE pipe: pipe-tx exit $txs, pipe-rx exit $rxs"
syncs=$(netmapd status --keys | sed -n 's/^daemon_syncs=//p')
echo "daemon_syncs after the pipe: $syncs"
[ -n "$syncs" ] && [ "$syncs" -lt 1000 ] || fail "CUSE pipe: the daemon served $syncs syncs (expected the preloaded clients to sync in process)"

echo "== errno --all (start $(uptime_s) s)"
nm-client errno --all
rc=$?
echo "== errno done: exit $rc (end $(uptime_s) s)"
[ "$rc" -eq 0 ] || fail "CUSE: nm-client errno --all exited $rc"

unset LD_PRELOAD
kill -TERM "$DAEMON"
wait "$DAEMON"
drc=$?
echo "netmapd --frontend cuse exited $drc after SIGTERM"
[ "$drc" -eq 0 ] || fail "netmapd --frontend cuse exited $drc after SIGTERM"
[ ! -e "$DEV" ] || echo "note: $DEV still present after the daemon stopped"
echo "cuse-pipe: all passed"
