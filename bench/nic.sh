#!/usr/bin/env bash
# netmapd NIC benchmark on a veth pair vA <-> vB in a private network namespace
# (`unshare -n -m`; host interfaces are never touched), all measured in one run:
#
#  (a) TX, 60-byte frames sent on vA, counted where they arrive (vB rx_packets delta
#      over the sender's wall time):
#        netmapd  : nm-client pipe-tx --port vA --len 60 --burst 512, unpaced
#                   (netmapd transmits through TPACKET_V2 + PACKET_QDISC_BYPASS)
#        trafgen  : PACKET_MMAP TX ring, qdisc bypass (trafgen's default; -P 1 = one
#                   sending process, like the one netmap client)
#  (b) RX, the same sender (trafgen on vA, unpaced) for both receivers on vB:
#        netmapd    : nm-client rx-count --port vB (netmapd receives through TPACKET_V3)
#        netsniff-ng: --in vB --out /dev/null (TPACKET_V3 capture ring)
#      captured frames per second of the sender's active time, and drops.
#
# usage: sudo bench/nic.sh          (env: PACKETS=2000000 TIMEOUT=600)
#
# Needs root, /dev/fuse, ip, unshare, and trafgen + netsniff-ng (package
# netsniff-ng; installed with apt-get if missing). It prints figures; it judges
# nothing. It fails (non-zero) when it cannot measure.
set -euo pipefail

PACKETS=${PACKETS:-2000000}
TIMEOUT=${TIMEOUT:-600}

die() {
	echo "bench/nic.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] ||
	die "must run as root (network namespace, veth, netmapd exec) — NOT skipping"
[ -c /dev/fuse ] ||
	die "/dev/fuse is missing: modprobe fuse, or give the container --device /dev/fuse — NOT skipping"
for t in ip unshare timeout; do
	command -v "$t" >/dev/null || die "$t not found (apt-get install -y iproute2 util-linux coreutils)"
done
if ! command -v trafgen >/dev/null || ! command -v netsniff-ng >/dev/null; then
	echo "trafgen/netsniff-ng missing: trying apt-get install -y netsniff-ng" >&2
	if ! { apt-get install -y netsniff-ng >&2 || { apt-get update >&2 && apt-get install -y netsniff-ng >&2; }; }; then
		die "could not install netsniff-ng; run: apt-get install -y netsniff-ng"
	fi
	command -v trafgen >/dev/null && command -v netsniff-ng >/dev/null ||
		die "trafgen/netsniff-ng still missing; run: apt-get install -y netsniff-ng"
fi

cd "$(dirname "$0")/.."
echo "building release binaries..." >&2
cargo build --release -p netmapd -p netmapd-tests >&2
TARGET=${CARGO_TARGET_DIR:-target}/release
NETMAPD=$(realpath "$TARGET/netmapd")
NMC=$(realpath "$TARGET/nm-client")
[ -x "$NETMAPD" ] || die "$NETMAPD not built"
[ -x "$NMC" ] || die "$NMC not built"

LOG=$(mktemp -d "${TMPDIR:-/tmp}/netmapd-nic-bench.XXXXXX")
echo "logs in $LOG" >&2

# A 60-byte frame (same Ethernet header as nm-client's frames: local MACs, EtherType
# 0x88b5, so no protocol handler in the namespace picks it up).
cat >"$LOG/frame.cfg" <<'EOF'
{
  0x02, 0x6e, 0x6d, 0x64, 0x00, 0x02,
  0x02, 0x6e, 0x6d, 0x64, 0x00, 0x01,
  0x88, 0xb5,
  fill(0x5a, 46)
}
EOF

# ---------------------------------------------------------------- inside the namespace
# $1 netmapd, $2 nm-client, $3 log dir, $4 packets. Runs under `netmapd exec`.
INNER='set -eu
d="$1"; c="$2"; L="$3"; N="$4"
stat() { cat "/sys/class/net/$1/statistics/$2"; }
now() { date +%s.%N; }
TG="trafgen --dev vA --conf $L/frame.cfg -n $N -P 1 -Q"

# (a1) netmapd TX
b=$(stat vB rx_packets); bd=$(stat vA tx_dropped); t0=$(now)
"$c" pipe-tx --port vA --count "$N" --len 60 --burst 512 >"$L/a1.txt" 2>&1 || { cat "$L/a1.txt"; exit 11; }
t1=$(now); a=$(stat vB rx_packets); ad=$(stat vA tx_dropped)
echo "A1 frames=$((a - b)) secs=$(echo "$t1 - $t0" | bc -l) drops=$((ad - bd))"
sleep 1

# (a2) trafgen TX
b=$(stat vB rx_packets); bd=$(stat vA tx_dropped); t0=$(now)
$TG >"$L/a2.txt" 2>&1 || { cat "$L/a2.txt"; exit 12; }
t1=$(now); a=$(stat vB rx_packets); ad=$(stat vA tx_dropped)
echo "A2 frames=$((a - b)) secs=$(echo "$t1 - $t0" | bc -l) drops=$((ad - bd))"
sleep 1

# (b1) netmapd RX of trafgen traffic; a TX-only registration keeps vB alive so that
# `netmapd status` still shows its counters after rx-count closes.
"$c" hold --port vB >"$L/hold.txt" 2>&1 & h=$!
i=0; until grep -q holding "$L/hold.txt"; do i=$((i+1)); [ $i -gt 200 ] && exit 13; sleep 0.05; done
"$c" rx-count --port vB --idle-ms 1500 >"$L/b1.txt" 2>&1 & r=$!
i=0; until grep -q "rx-count ready" "$L/b1.txt"; do i=$((i+1)); [ $i -gt 200 ] && exit 14; sleep 0.05; done
b=$(stat vB rx_packets); t0=$(now)
$TG >"$L/b1-tg.txt" 2>&1 || { cat "$L/b1-tg.txt"; exit 15; }
t1=$(now); a=$(stat vB rx_packets)
wait $r || { cat "$L/b1.txt"; exit 16; }
"$d" status >"$L/b1-status.txt"
kill -9 $h; wait $h 2>/dev/null || true
got=$(sed -n "s/.*rx-count port=vB frames=\([0-9]*\).*/\1/p" "$L/b1.txt")
drops=$(sed -n "s/^port=vB .* rx_drops=\([0-9]*\).*/\1/p" "$L/b1-status.txt")
echo "B1 offered=$((a - b)) frames=$got secs=$(echo "$t1 - $t0" | bc -l) drops=$drops"
sleep 1

# (b2) netsniff-ng capture of the same traffic
# Children of `netmapd exec` start with SIGHUP/SIGINT/SIGTERM blocked; unblock them
# so that SIGINT makes netsniff-ng stop and print its statistics.
perl -MPOSIX -e "sigprocmask(SIG_UNBLOCK, POSIX::SigSet->new(SIGINT, SIGTERM, SIGHUP)) or die; exec @ARGV or die" \
	netsniff-ng --in vB --out /dev/null --silent -A -Q -N >"$L/b2.txt" 2>&1 & s=$!
i=0; until grep -q "Running" "$L/b2.txt"; do i=$((i+1)); [ $i -gt 200 ] && { cat "$L/b2.txt"; exit 19; }; sleep 0.05; done
sleep 1
b=$(stat vB rx_packets); t0=$(now)
$TG >"$L/b2-tg.txt" 2>&1 || { cat "$L/b2-tg.txt"; exit 17; }
t1=$(now); a=$(stat vB rx_packets)
sleep 1
kill -INT $s; wait $s || true
tr -d '"'"'\r'"'"' <"$L/b2.txt" >"$L/b2-stats.txt"
got=$(sed -n "s/^ *\([0-9]*\) *packets passed filter.*/\1/p" "$L/b2-stats.txt" | head -1)
drops=$(sed -n "s/^ *\([0-9]*\) *packets failed filter (out of space).*/\1/p" "$L/b2-stats.txt" | head -1)
[ -n "$got" ] && [ -n "$drops" ] || { echo "no statistics from netsniff-ng:"; cat "$L/b2.txt"; exit 18; }
echo "B2 offered=$((a - b)) frames=$got secs=$(echo "$t1 - $t0" | bc -l) drops=$drops"
'

SETUP='set -eu
mount -t sysfs sysfs /sys
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip link add vA type veth peer name vB
ip link set vA up
ip link set vB up
exec "$1" exec -- sh -c "$5" sh "$1" "$2" "$3" "$4"
'
command -v bc >/dev/null || die "bc not found (apt-get install -y bc)"
command -v perl >/dev/null || die "perl not found"

echo "running (PACKETS=$PACKETS)..." >&2
timeout "$TIMEOUT" unshare -n -m sh -c "$SETUP" sh "$NETMAPD" "$NMC" "$LOG" "$PACKETS" "$INNER" \
	>"$LOG/out.txt" 2>"$LOG/daemon.txt" || {
	cat "$LOG/out.txt" >&2
	tail -20 "$LOG/daemon.txt" >&2
	die "measurement failed (logs in $LOG)"
}

field() { sed -n "s/^$1 .*\b$2=\([^ ]*\).*/\1/p" "$LOG/out.txt"; }
mpps() { printf '%.4f' "$(echo "$1 / $2 / 1000000" | bc -l)"; }
for k in A1 A2 B1 B2; do
	[ -n "$(field $k frames)" ] || die "no $k line in $LOG/out.txt"
done
a1=$(mpps "$(field A1 frames)" "$(field A1 secs)")
a2=$(mpps "$(field A2 frames)" "$(field A2 secs)")
b1=$(mpps "$(field B1 frames)" "$(field B1 secs)")
b2=$(mpps "$(field B2 frames)" "$(field B2 secs)")
ratio() { printf '%.3f' "$(echo "$1 / $2" | bc -l)"; }

echo
echo "netmapd NIC benchmark: veth vA->vB, 60-byte frames, $PACKETS frames per run, $(nproc) CPUs, kernel $(uname -r)"
printf '%-44s %10s %10s %9s %10s\n' "measurement" "frames" "secs" "Mpps" "drops"
printf '%-44s %10s %10.3f %9s %10s\n' "TX netmapd (pipe-tx vA, burst 512)" "$(field A1 frames)" "$(field A1 secs)" "$a1" "$(field A1 drops)"
printf '%-44s %10s %10.3f %9s %10s\n' "TX trafgen (-P 1, qdisc bypass)" "$(field A2 frames)" "$(field A2 secs)" "$a2" "$(field A2 drops)"
printf '%-44s %10s %10.3f %9s %10s\n' "RX netmapd (rx-count vB; trafgen sender)" "$(field B1 frames)" "$(field B1 secs)" "$b1" "$(field B1 drops)"
printf '%-44s %10s %10.3f %9s %10s\n' "RX netsniff-ng (vB -> /dev/null)" "$(field B2 frames)" "$(field B2 secs)" "$b2" "$(field B2 drops)"
echo "  TX frames = counted at vB (rx_packets delta); TX drops = vA tx_dropped delta"
echo "  RX offered at vB: netmapd run $(field B1 offered), netsniff-ng run $(field B2 offered); RX drops = netmapd rx_drops / netsniff-ng 'failed filter (out of space)'"
echo "  RX Mpps = frames captured / sender wall time"
echo "ratio TX netmapd/trafgen:     $(ratio "$a1" "$a2")"
echo "ratio RX netmapd/netsniff-ng: $(ratio "$b1" "$b2")"
