#!/bin/sh
# VM test (a whole Debian 12 with systemd, on Debian's 6.12 kernel; run by
# vm/build-debian-image.sh's vmtest.service): the Debian package installed with dpkg -i
# on this fresh machine gives a running netmapd service serving /dev/netmap.
#  1. dpkg -i; the unit is enabled and active (Type=notify: active = READY=1 sent);
#  2. /dev/netmap is the daemon's FUSE mount and a netmap pipe carries 100,000 packets
#     through it (nm-client, not preloaded) with `netmapd status` showing the pools;
#  3. /etc/default/netmapd's mode is applied after a restart;
#  4. systemctl stop: the unit ends cleanly and the mount is gone.
fail() {
    echo "$*" > /run/vm-fail-reason
    echo "FAIL: $*"
    systemctl status netmapd --no-pager 2>&1 | tail -20
    journalctl -u netmapd --no-pager 2>&1 | tail -30
    exit 1
}
echo "VM-BOOT: init started at $(cut -d' ' -f1 /proc/uptime) s uptime; systemd $(systemctl --version | head -n1)"
[ -c /dev/fuse ] || modprobe fuse || fail "modprobe fuse"
[ -c /dev/fuse ] || fail "/dev/fuse missing"
[ -e /dev/netmap ] && fail "/dev/netmap exists before the package is installed"

echo "== dpkg -i"
dpkg -i /root/netmapd.deb || fail "dpkg -i failed"
systemctl is-enabled netmapd || fail "netmapd.service not enabled by the package"
i=0
until systemctl is-active --quiet netmapd; do
    i=$((i+1)); [ $i -gt 120 ] && fail "netmapd.service not active after 60 s"
    sleep 0.5
done
echo "netmapd.service active"
grep ' /dev/netmap ' /proc/self/mountinfo | grep -q ' - fuse' || fail "/dev/netmap is not a FUSE mount"
netmapd status || fail "netmapd status"
netmapd status --json | grep -q '"buf":{"free"' || fail "netmapd status --json"

echo "== pipe through the service's /dev/netmap"
nm-client pipe-rx --port 'sv}0' --count 100000 & rx=$!
nm-client pipe-tx --port 'sv{0' --count 100000 || fail "pipe-tx"
wait $rx || fail "pipe-rx"

echo "== mode from /etc/default/netmapd"
sed -i 's/^NETMAPD_MODE=.*/NETMAPD_MODE=660/' /etc/default/netmapd
systemctl restart netmapd || fail "restart"
[ "$(stat -c %a /dev/netmap)" = 660 ] || fail "mode $(stat -c %a /dev/netmap), not 660"
echo "mode 660 applied"

echo "== systemctl stop"
systemctl stop netmapd || fail "stop"
[ "$(systemctl show -p Result --value netmapd)" = success ] || fail "stop result $(systemctl show -p Result --value netmapd)"
grep -q ' /dev/netmap ' /proc/self/mountinfo && fail "/dev/netmap still mounted after stop"
echo "deb-service: all passed"
