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
#      captured frames per second of the sender's active time, and drops. On one
#      veth the kernel's receive work (tpacket_rcv into either capture ring) runs in
#      the sender's softirq, so while neither receiver drops this rate is the
#      sender's. The receivers' own cost is printed beside it: CPU time (schedstat,
#      all threads) per captured frame, netmapd = daemon + rx-count, and, last, how
#      that splits over netmapd's threads (port worker, port-events relay, client).
#
# The four measurements are repeated ROUNDS times, interleaved, so that a slow spell
# of the VM hits both sides of a ratio alike; the ratio of each round and their
# median are printed.
#
# usage: sudo bench/nic.sh          (env: PACKETS=2000000 ROUNDS=5 TIMEOUT=900)
#
# Needs root, /dev/fuse, ip, unshare, and trafgen + netsniff-ng (package
# netsniff-ng; installed with apt-get if missing). It prints figures; it judges
# nothing. It fails (non-zero) when it cannot measure.
set -euo pipefail

PACKETS=${PACKETS:-2000000}
ROUNDS=${ROUNDS:-5}
TIMEOUT=${TIMEOUT:-900}

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
d="$1"; c="$2"; L="$3"; N="$4"; R="$5"
stat() { cat "/sys/class/net/$1/statistics/$2"; }
now() { date +%s.%N; }
# CPU time (ns) the given processes have run, all their threads (schedstat).
cpu_ns() { t=0; for p in "$@"; do for f in /proc/$p/task/*/schedstat; do [ -r "$f" ] && read -r x _ <"$f" && t=$((t + x)); done; done; echo $t; }
# "name ns" per thread of the given processes (threads of one name added up).
threads_ns() { for p in "$@"; do for d in /proc/$p/task/*; do [ -r "$d/schedstat" ] && read -r x _ <"$d/schedstat" && read -r n <"$d/comm" && echo "$n $x"; done; done | awk "{ t[\$1] += \$2 } END { for (k in t) print k, t[k] }" | sort; }
TG="trafgen --dev vA --conf $L/frame.cfg -n $N -P 1 -Q"
for round in $(seq 1 "$R"); do

# (a1) netmapd TX
b=$(stat vB rx_packets); bd=$(stat vA tx_dropped); t0=$(now)
"$c" pipe-tx --port vA --count "$N" --len 60 --burst 512 >"$L/a1.txt" 2>&1 || { cat "$L/a1.txt"; exit 11; }
t1=$(now); a=$(stat vB rx_packets); ad=$(stat vA tx_dropped)
echo "A1 round=$round frames=$((a - b)) secs=$(echo "$t1 - $t0" | bc -l) drops=$((ad - bd))"
sleep 1

# (a2) trafgen TX
b=$(stat vB rx_packets); bd=$(stat vA tx_dropped); t0=$(now)
$TG >"$L/a2.txt" 2>&1 || { cat "$L/a2.txt"; exit 12; }
t1=$(now); a=$(stat vB rx_packets); ad=$(stat vA tx_dropped)
echo "A2 round=$round frames=$((a - b)) secs=$(echo "$t1 - $t0" | bc -l) drops=$((ad - bd))"
sleep 1

# (b1) netmapd RX of trafgen traffic; a TX-only registration keeps vB alive so that
# `netmapd status` still shows its counters after rx-count closes.
"$c" hold --port vB >"$L/hold.txt" 2>&1 & h=$!
i=0; until grep -q holding "$L/hold.txt"; do i=$((i+1)); [ $i -gt 200 ] && exit 13; sleep 0.05; done
"$c" rx-count --port vB --idle-ms 1500 >"$L/b1.txt" 2>&1 & r=$!
i=0; until grep -q "rx-count ready" "$L/b1.txt"; do i=$((i+1)); [ $i -gt 200 ] && exit 14; sleep 0.05; done
b=$(stat vB rx_packets); threads_ns $PPID $r >"$L/b1-th0.txt"; c0=$(cpu_ns $PPID $r); t0=$(now)
$TG >"$L/b1-tg.txt" 2>&1 || { cat "$L/b1-tg.txt"; exit 15; }
t1=$(now); a=$(stat vB rx_packets)
sleep 0.3; c1=$(cpu_ns $PPID $r); threads_ns $PPID $r >"$L/b1-th1.txt"
wait $r || { cat "$L/b1.txt"; exit 16; }
# Where the receive CPU of netmapd goes, per thread name (the port worker nic-vB, the
# port-events relay, the client nm-client, ...).
join "$L/b1-th0.txt" "$L/b1-th1.txt" | awk -v r="$round" "\$3 - \$2 > 0 { printf \"B1T round=%d thread=%s ns=%d\\n\", r, \$1, \$3 - \$2 }"
"$d" status >"$L/b1-status.txt"
kill -9 $h; wait $h 2>/dev/null || true
got=$(sed -n "s/.*rx-count port=vB frames=\([0-9]*\).*/\1/p" "$L/b1.txt")
drops=$(sed -n "s/^port=vB .* rx_drops=\([0-9]*\).*/\1/p" "$L/b1-status.txt")
echo "B1 round=$round offered=$((a - b)) frames=$got secs=$(echo "$t1 - $t0" | bc -l) drops=$drops cpu_ns=$((c1 - c0))"
sleep 1

# (b2) netsniff-ng capture of the same traffic
# Children of `netmapd exec` start with SIGHUP/SIGINT/SIGTERM blocked; unblock them
# so that SIGINT makes netsniff-ng stop and print its statistics.
perl -MPOSIX -e "sigprocmask(SIG_UNBLOCK, POSIX::SigSet->new(SIGINT, SIGTERM, SIGHUP)) or die; exec @ARGV or die" \
	netsniff-ng --in vB --out /dev/null --silent -A -Q -N >"$L/b2.txt" 2>&1 & s=$!
i=0; until grep -q "Running" "$L/b2.txt"; do i=$((i+1)); [ $i -gt 200 ] && { cat "$L/b2.txt"; exit 19; }; sleep 0.05; done
sleep 1
b=$(stat vB rx_packets); c0=$(cpu_ns $s); t0=$(now)
$TG >"$L/b2-tg.txt" 2>&1 || { cat "$L/b2-tg.txt"; exit 17; }
t1=$(now); a=$(stat vB rx_packets)
sleep 0.3; c1=$(cpu_ns $s)
sleep 0.7
kill -INT $s; wait $s || true
tr -d '"'"'\r'"'"' <"$L/b2.txt" >"$L/b2-stats.txt"
got=$(sed -n "s/^ *\([0-9]*\) *packets passed filter.*/\1/p" "$L/b2-stats.txt" | head -1)
drops=$(sed -n "s/^ *\([0-9]*\) *packets failed filter (out of space).*/\1/p" "$L/b2-stats.txt" | head -1)
[ -n "$got" ] && [ -n "$drops" ] || { echo "no statistics from netsniff-ng:"; cat "$L/b2.txt"; exit 18; }
echo "B2 round=$round offered=$((a - b)) frames=$got secs=$(echo "$t1 - $t0" | bc -l) drops=$drops cpu_ns=$((c1 - c0))"
sleep 1
done
'

SETUP='set -eu
mount -t sysfs sysfs /sys
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip link add vA type veth peer name vB
ip link set vA up
ip link set vB up
exec "$1" exec -- sh -c "$6" sh "$1" "$2" "$3" "$4" "$5"
'
command -v bc >/dev/null || die "bc not found (apt-get install -y bc)"
command -v perl >/dev/null || die "perl not found"

echo "running (PACKETS=$PACKETS)..." >&2
timeout "$TIMEOUT" unshare -n -m sh -c "$SETUP" sh "$NETMAPD" "$NMC" "$LOG" "$PACKETS" "$ROUNDS" "$INNER" \
	>"$LOG/out.txt" 2>"$LOG/daemon.txt" || {
	cat "$LOG/out.txt" >&2
	tail -20 "$LOG/daemon.txt" >&2
	die "measurement failed (logs in $LOG)"
}

# Where netmapd's receive CPU went, per thread, per frame (median over the rounds).
awk '/^B1 round=/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "round") r = kv[2]; if (kv[1] == "frames") f[r] = kv[2] } }
/^B1T round=/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } ns[v["thread"], v["round"]] = v["ns"]; th[v["thread"]] = 1 }
END { for (t in th) { n = 0; for (r in f) if (f[r] > 0) a[++n] = ns[t, r] / f[r]
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
	m = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	if (m >= 1) printf "%s %.0f\n", t, m } }' "$LOG/out.txt" | sort -k2 -nr >"$LOG/threads.txt" || true

# Per-round figures: "<key> <round> <frames> <secs> <drops> <offered> <receiver cpu ns>".
awk '/^(A1|A2|B1|B2) round=/ {
	k = $1; r = ""; f = ""; t = ""; d = ""; o = "-"; c = "-"
	for (i = 2; i <= NF; i++) {
		split($i, kv, "=")
		if (kv[1] == "round") r = kv[2]
		if (kv[1] == "frames") f = kv[2]
		if (kv[1] == "secs") t = kv[2]
		if (kv[1] == "drops") d = kv[2]
		if (kv[1] == "offered") o = kv[2]
		if (kv[1] == "cpu_ns") c = kv[2]
	}
	if (f == "" || t == "" || t + 0 <= 0) { print "bad line: " $0 > "/dev/stderr"; exit 1 }
	print k, r, f, t, (d == "" ? 0 : d), o, c
}' "$LOG/out.txt" >"$LOG/rounds.txt" || die "unreadable results in $LOG/out.txt"
for k in A1 A2 B1 B2; do
	[ "$(grep -c "^$k " "$LOG/rounds.txt")" -eq "$ROUNDS" ] || die "expected $ROUNDS $k results in $LOG/out.txt"
done

echo
echo "netmapd NIC benchmark: veth vA->vB, 60-byte frames, $PACKETS frames per run, $ROUNDS rounds, $(nproc) CPUs, kernel $(uname -r)"
printf '%-5s %-44s %10s %9s %9s %10s\n' "round" "measurement" "frames" "secs" "Mpps" "drops"
awk -v rounds="$ROUNDS" '
function median(a, n,    i, j, t) {
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
BEGIN {
	name["A1"] = "TX netmapd (pipe-tx vA, burst 512)"
	name["A2"] = "TX trafgen (-P 1, qdisc bypass)"
	name["B1"] = "RX netmapd (rx-count vB; trafgen sender)"
	name["B2"] = "RX netsniff-ng (vB -> /dev/null)"
}
{ mpps[$1, $2] = $3 / $4 / 1e6; fr[$1, $2] = $3; se[$1, $2] = $4; dr[$1, $2] = $5; of[$1, $2] = $6; cpu[$1, $2] = $7 }
END {
	for (r = 1; r <= rounds; r++) {
		split("A1 A2 B1 B2", ks, " ")
		for (i = 1; i <= 4; i++) {
			k = ks[i]
			printf "%-5d %-44s %10d %9.3f %9.4f %10d\n", r, name[k], fr[k, r], se[k, r], mpps[k, r], dr[k, r]
		}
		tx[r] = mpps["A1", r] / mpps["A2", r]
		rx[r] = mpps["B1", r] / mpps["B2", r]
		printf "      round %d ratios: TX %.3f  RX %.3f  (RX offered at vB: netmapd %s, netsniff-ng %s)\n", r, tx[r], rx[r], of["B1", r], of["B2", r]
		# schedstat may be missing (kernel without CONFIG_SCHED_INFO): then no CPU figure.
		nsf1[r] = (cpu["B1", r] + 0 > 0 && fr["B1", r] > 0) ? cpu["B1", r] / fr["B1", r] : 0
		nsf2[r] = (cpu["B2", r] + 0 > 0 && fr["B2", r] > 0) ? cpu["B2", r] / fr["B2", r] : 0
		cr[r] = (nsf1[r] > 0 && nsf2[r] > 0) ? nsf1[r] / nsf2[r] : 0
		if (cr[r] > 0) printf "      round %d receiver CPU per captured frame: netmapd %.0f ns (daemon + rx-count), netsniff-ng %.0f ns\n", r, nsf1[r], nsf2[r]
		else { printf "      round %d receiver CPU per captured frame: not measured (no schedstat)\n", r; nocpu = 1 }
	}
	print "  TX frames = counted at vB (rx_packets delta); TX drops = vA tx_dropped delta"
	print "  RX drops = netmapd rx_drops / netsniff-ng \"failed filter (out of space)\"; RX Mpps = frames captured / sender wall time"
	printf "ratio TX netmapd/trafgen:     %.3f (median of %d rounds)\n", median(tx, rounds), rounds
	printf "ratio RX netmapd/netsniff-ng: %.3f (median of %d rounds)\n", median(rx, rounds), rounds
	if (nocpu) print "receiver CPU per frame: not measured in every round (no schedstat)"
	else printf "receiver CPU per frame, netmapd/netsniff-ng: %.2f (median of %d rounds; lower is cheaper; not a rate)\n", median(cr, rounds), rounds
}' "$LOG/rounds.txt"
if [ -s "$LOG/threads.txt" ]; then
	printf 'netmapd receiver CPU per frame by thread (median of %s rounds):' "$ROUNDS"
	awk '{ printf " %s %s ns;", $1, $2 }' "$LOG/threads.txt"
	echo
fi
