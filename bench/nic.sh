#!/usr/bin/env bash
# netmapd NIC benchmark on a veth pair vA <-> vB in a private network namespace
# (`unshare -n -m`; host interfaces are never touched), all measured in one run:
#
#  (a) TX, 60-byte frames sent on vA, counted where they arrive (vB rx_packets delta
#      over the sender's time: trafgen's wall time, nm-client's own from its first
#      frame, which leaves out the port's creation):
#        netmapd  : nm-client pipe-tx --port vA --len 60 --burst 512, unpaced, once
#                   with each backend: AF_XDP (--nic-backend xdp: frames leave from
#                   the netmap buffers) and AF_PACKET (--nic-backend packet: copied
#                   into a TPACKET_V2 ring, PACKET_QDISC_BYPASS)
#        C sender : bench/nm_tx.c (built here with cc against compat-headers/), a C
#                   program on the compat headers' nm_open() driving the port as
#                   pkt-gen's transmit loop does, preloaded like any C program under
#                   `netmapd exec`; it stands in for stock pkt-gen, whose sources are
#                   not part of this project; timed from its first frame queued
#        trafgen  : PACKET_MMAP TX ring, qdisc bypass (trafgen's default; -P 1 = one
#                   sending process, like the one netmap client)
#  (b) RX, the same sender (trafgen on vA, unpaced) for every receiver on vB:
#        netmapd    : nm-client rx-count --port vB, with each backend (AF_XDP: frames
#                     exchanged into the slots, taken from the stack; AF_PACKET: copied
#                     from a TPACKET_V3 ring)
#        netsniff-ng: --in vB --out /dev/null (TPACKET_V3 capture ring)
#        xsk_floor  : netif/examples/xsk_floor.rs, the daemon's AF_XDP port and rxsync
#                     run by the receiving thread alone (no daemon): what a client
#                     reading the AF_XDP rings itself would cost
#      captured frames per second of the sender's active time, and drops. The
#      receivers' own cost is printed beside it: CPU time (schedstat, all threads) per
#      captured frame, netmapd = daemon + rx-count, how that splits over netmapd's
#      threads (port worker, port-events relay, client), and, last, how often each
#      thread (and netsniff-ng) was put on a CPU per 1000 frames (wake-ups and
#      preemptions: on these VMs each costs microseconds).
#
# The seven measurements are repeated ROUNDS times, interleaved (one daemon per
# backend and round), so that a slow spell
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
cargo build --release -p netmap-netif --example xsk_floor >&2
TARGET=${CARGO_TARGET_DIR:-target}/release
NETMAPD=$(realpath "$TARGET/netmapd")
NMC=$(realpath "$TARGET/nm-client")
XSKF=$(realpath "$TARGET/examples/xsk_floor")
[ -x "$NETMAPD" ] || die "$NETMAPD not built"
[ -x "$NMC" ] || die "$NMC not built"
[ -x "$XSKF" ] || die "$XSKF not built"
command -v cc >/dev/null || die "cc not found (apt-get install -y gcc)"

LOG=$(mktemp -d "${TMPDIR:-/tmp}/netmapd-nic-bench.XXXXXX")
echo "logs in $LOG" >&2
# The C sender (bench/nm_tx.c: the compat headers' nm_open and pkt-gen's transmit
# loop), standing in for stock pkt-gen, whose sources are not part of this project.
NMTX="$LOG/nm_tx"
cc -O2 -Wall -Wextra -Werror -I compat-headers/include -o "$NMTX" bench/nm_tx.c || die "cannot build bench/nm_tx.c"

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

# ---------------------------------------------------------------- shared helpers
# Sourced by both scripts below; they set L (log dir) and N (frames) first.
cat >"$LOG/lib.sh" <<'EOF'
stat() { cat "/sys/class/net/$1/statistics/$2"; }
now() { date +%s.%N; }
# CPU time (ns) the given processes have run, all their threads (schedstat).
cpu_ns() { t=0; for p in "$@"; do for f in /proc/$p/task/*/schedstat; do [ -r "$f" ] && read -r x _ <"$f" && t=$((t + x)); done; done; echo $t; }
# "name ns runs" per thread of the given processes (threads of one name added up):
# CPU time, and how many times the threads were put on a CPU (schedstat's third field:
# each is a wake-up or a preemption, the context switches a receiver pays for).
threads_ns() { for p in "$@"; do for t in /proc/$p/task/*; do [ -r "$t/schedstat" ] && read -r x _ c <"$t/schedstat" && read -r n <"$t/comm" && echo "$n $x $c"; done; done | awk '{ t[$1] += $2; c[$1] += $3 } END { for (k in t) print k, t[k], c[k] }' | sort; }
# Times the given processes' threads were put on a CPU (see threads_ns).
runs() { threads_ns "$@" | awk '{ s += $3 } END { print s + 0 }'; }
TG="trafgen --dev vA --conf $L/frame.cfg -n $N -P 1 -Q"
EOF

# ---------------------------------------------------------------- netmapd's part
# One backend's TX and RX measurement, under `netmapd exec --nic-backend B`.
# $1 netmapd, $2 nm-client, $3 log dir, $4 packets, $5 round, $6 backend key (X or P).
cat >"$LOG/nm-part.sh" <<'EOF'
set -eu
d="$1"; c="$2"; L="$3"; N="$4"; round="$5"; K="$6"
. "$L/lib.sh"

# (a1) netmapd TX
b=$(stat vB rx_packets); bd=$(stat vA tx_dropped); t0=$(now)
"$c" pipe-tx --port vA --count "$N" --len 60 --burst 512 >"$L/a1$K.txt" 2>&1 || { cat "$L/a1$K.txt"; exit 11; }
t1=$(now); a=$(stat vB rx_packets); ad=$(stat vA tx_dropped)
# The sender's own time, from its first frame: the wall time would also count the
# port's creation, which for AF_XDP pins the whole buffer pool (about a second the
# first time: a fresh daemon per round makes every time the first).
secs=$(sed -n "s/.*packets in \([0-9.]*\) s.*/\1/p" "$L/a1$K.txt")
[ -n "$secs" ] || secs=$(echo "$t1 - $t0" | bc -l)
echo "A1$K round=$round frames=$((a - b)) secs=$secs drops=$((ad - bd)) wall=$(echo "$t1 - $t0" | bc -l)"
sleep 1

# (a3) the C sender (nm_open, pkt-gen's loop), timed the same way
b=$(stat vB rx_packets); bd=$(stat vA tx_dropped); t0=$(now)
"$L/nm_tx" vA "$N" 512 >"$L/a3$K.txt" 2>&1 || { cat "$L/a3$K.txt"; exit 21; }
t1=$(now); a=$(stat vB rx_packets); ad=$(stat vA tx_dropped)
secs=$(sed -n "s/.* packets in \([0-9.]*\) s.*/\1/p" "$L/a3$K.txt")
[ -n "$secs" ] || secs=$(echo "$t1 - $t0" | bc -l)
echo "A3$K round=$round frames=$((a - b)) secs=$secs drops=$((ad - bd)) wall=$(echo "$t1 - $t0" | bc -l)"
sleep 1

# (b1) netmapd RX of trafgen traffic; a TX-only registration keeps vB alive so that
# `netmapd status` still shows its counters after rx-count closes. The sender's
# count is trafgen's TX on vA: with AF_XDP the stack of vB does not count the frames.
"$c" hold --port vB >"$L/hold.txt" 2>&1 & h=$!
i=0; until grep -q holding "$L/hold.txt"; do i=$((i+1)); [ $i -gt 200 ] && exit 13; sleep 0.05; done
"$c" rx-count --port vB --idle-ms 1500 >"$L/b1$K.txt" 2>&1 & r=$!
i=0; until grep -q "rx-count ready" "$L/b1$K.txt"; do i=$((i+1)); [ $i -gt 200 ] && exit 14; sleep 0.05; done
b=$(stat vA tx_packets); threads_ns $PPID $r >"$L/b1-th0.txt"; c0=$(cpu_ns $PPID $r); t0=$(now)
$TG >"$L/b1-tg.txt" 2>&1 || { cat "$L/b1-tg.txt"; exit 15; }
t1=$(now); a=$(stat vA tx_packets)
sleep 0.3; c1=$(cpu_ns $PPID $r); threads_ns $PPID $r >"$L/b1-th1.txt"
wait $r || { cat "$L/b1$K.txt"; exit 16; }
# Where the receive CPU of netmapd goes, per thread name (the port worker nic-vB, the
# port-events relay, the client nm-client, ...).
join "$L/b1-th0.txt" "$L/b1-th1.txt" | awk -v r="$round" -v k="$K" '$4 - $2 > 0 { printf "B1T%s round=%d thread=%s ns=%.0f runs=%d\n", k, r, $1, $4 - $2, $5 - $3 }'
"$d" status --keys >"$L/b1$K-status.txt"
want=$([ "$K" = X ] && echo 1 || echo 0)
grep -q "^port=vB .* xdp=$want" "$L/b1$K-status.txt" || { echo "vB is not on the expected backend:"; cat "$L/b1$K-status.txt"; exit 20; }
kill -9 $h; wait $h 2>/dev/null || true
got=$(sed -n "s/.*rx-count port=vB frames=\([0-9]*\).*/\1/p" "$L/b1$K.txt")
drops=$(sed -n "s/^port=vB .* rx_drops=\([0-9]*\).*/\1/p" "$L/b1$K-status.txt")
echo "B1$K round=$round offered=$((a - b)) frames=$got secs=$(echo "$t1 - $t0" | bc -l) drops=$drops cpu_ns=$((c1 - c0))"
EOF

# ---------------------------------------------------------------- inside the namespace
# $1 netmapd, $2 nm-client, $3 log dir, $4 packets, $5 rounds.
cat >"$LOG/inner.sh" <<'EOF'
set -eu
d="$1"; c="$2"; L="$3"; N="$4"; R="$5"; X="$6"
. "$L/lib.sh"
for round in $(seq 1 "$R"); do

# (a1, b1) netmapd with the AF_XDP backend (X), then the AF_PACKET one (P): a daemon
# each, so that both run in every round.
for K in X P; do
	B=$([ "$K" = X ] && echo xdp || echo packet)
	"$d" exec --nic-backend "$B" -- sh "$L/nm-part.sh" "$d" "$c" "$L" "$N" "$round" "$K" 2>>"$L/daemon-$K.txt" || exit 10
	sleep 1
done

# (a2) trafgen TX
b=$(stat vB rx_packets); bd=$(stat vA tx_dropped); t0=$(now)
$TG >"$L/a2.txt" 2>&1 || { cat "$L/a2.txt"; exit 12; }
t1=$(now); a=$(stat vB rx_packets); ad=$(stat vA tx_dropped)
echo "A2 round=$round frames=$((a - b)) secs=$(echo "$t1 - $t0" | bc -l) drops=$((ad - bd))"
sleep 1

# (b2) netsniff-ng capture of the same traffic. SIGINT makes it stop and print its
# statistics (unblocked, in case a caller blocked it).
perl -MPOSIX -e "sigprocmask(SIG_UNBLOCK, POSIX::SigSet->new(SIGINT, SIGTERM, SIGHUP)) or die; exec @ARGV or die" \
	netsniff-ng --in vB --out /dev/null --silent -A -Q -N >"$L/b2.txt" 2>&1 & s=$!
i=0; until grep -q "Running" "$L/b2.txt"; do i=$((i+1)); [ $i -gt 200 ] && { cat "$L/b2.txt"; exit 19; }; sleep 0.05; done
sleep 1
b=$(stat vA tx_packets); c0=$(cpu_ns $s); w0=$(runs $s); t0=$(now)
$TG >"$L/b2-tg.txt" 2>&1 || { cat "$L/b2-tg.txt"; exit 17; }
t1=$(now); a=$(stat vA tx_packets)
sleep 0.3; c1=$(cpu_ns $s); w1=$(runs $s)
sleep 0.7
kill -INT $s; wait $s || true
tr -d '"\r' <"$L/b2.txt" >"$L/b2-stats.txt"
got=$(sed -n "s/^ *\([0-9]*\) *packets passed filter.*/\1/p" "$L/b2-stats.txt" | head -1)
drops=$(sed -n "s/^ *\([0-9]*\) *packets failed filter (out of space).*/\1/p" "$L/b2-stats.txt" | head -1)
[ -n "$got" ] && [ -n "$drops" ] || { echo "no statistics from netsniff-ng:"; cat "$L/b2.txt"; exit 18; }
echo "B2 round=$round offered=$((a - b)) frames=$got secs=$(echo "$t1 - $t0" | bc -l) drops=$drops cpu_ns=$((c1 - c0))"
echo "B2T round=$round thread=netsniff-ng runs=$((w1 - w0))"
sleep 1

# (b3) the AF_XDP receive path run by the receiving thread alone, no daemon
# (netif/examples/xsk_floor.rs): what a client reading the rings itself would cost.
"$X" vB >"$L/b3.txt" 2>&1 & x=$!
i=0; until grep -q "xsk-floor ready" "$L/b3.txt"; do i=$((i+1)); [ $i -gt 200 ] && { cat "$L/b3.txt"; exit 21; }; sleep 0.05; done
sleep 0.5
b=$(stat vA tx_packets); c0=$(cpu_ns $x); t0=$(now)
$TG >"$L/b3-tg.txt" 2>&1 || { cat "$L/b3-tg.txt"; exit 22; }
t1=$(now); a=$(stat vA tx_packets)
sleep 0.3; c1=$(cpu_ns $x)
wait $x || { cat "$L/b3.txt"; exit 23; }
got=$(sed -n "s/.*xsk-floor frames=\([0-9]*\).*/\1/p" "$L/b3.txt")
[ -n "$got" ] || { cat "$L/b3.txt"; exit 24; }
echo "B3 round=$round offered=$((a - b)) frames=$got secs=$(echo "$t1 - $t0" | bc -l) drops=$((a - b - got)) cpu_ns=$((c1 - c0))"
sleep 1
done
EOF

SETUP='set -eu
mount -t sysfs sysfs /sys
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip link add vA type veth peer name vB
ip link set vA up
ip link set vB up
exec sh "$3/inner.sh" "$1" "$2" "$3" "$4" "$5" "$6"
'
command -v bc >/dev/null || die "bc not found (apt-get install -y bc)"
command -v perl >/dev/null || die "perl not found"

echo "running (PACKETS=$PACKETS)..." >&2
timeout "$TIMEOUT" unshare -n -m sh -c "$SETUP" sh "$NETMAPD" "$NMC" "$LOG" "$PACKETS" "$ROUNDS" "$XSKF" \
	>"$LOG/out.txt" 2>"$LOG/daemon.txt" || {
	cat "$LOG/out.txt" >&2
	tail -20 "$LOG/daemon.txt" >&2
	die "measurement failed (logs in $LOG)"
}

# Where netmapd's receive CPU went, per backend and thread, per frame, and how often
# each thread was put on a CPU per 1000 frames (medians over the rounds): lines
# "<key> <thread> <ns> <runs>"; key N is netsniff-ng (runs only).
awk 'function med(a, n,    i, j, x) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
/^(B1[XP]|B2) round=/ { k = ($1 == "B2") ? "N" : substr($1, 3, 1); for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "round") r = kv[2]; if (kv[1] == "frames") f[k, r] = kv[2] } }
/^(B1T[XP]|B2T) round=/ { k = ($1 == "B2T") ? "N" : substr($1, 4, 1); delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	ns[k, v["thread"], v["round"]] = v["ns"]; ru[k, v["thread"], v["round"]] = v["runs"]; th[k, v["thread"]] = 1 }
END { for (kt in th) { split(kt, p, SUBSEP); k = p[1]; t = p[2]; n = 0
	for (fr in f) { split(fr, q, SUBSEP); if (q[1] == k && f[fr] > 0) { n++; a[n] = ns[k, t, q[2]] / f[fr]; b[n] = 1000 * ru[k, t, q[2]] / f[fr] } }
	m = med(a, n); w = med(b, n)
	if (m >= 1 || k == "N") printf "%s %s %.0f %.2f\n", k, t, m, w } }' "$LOG/out.txt" | sort -k1,1 -k3 -nr >"$LOG/threads.txt" || true

# Per-round figures: "<key> <round> <frames> <secs> <drops> <offered> <receiver cpu ns>".
awk '/^(A1X|A1P|A3X|A3P|A2|B1X|B1P|B2|B3) round=/ {
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
for k in A1X A1P A3X A3P A2 B1X B1P B2 B3; do
	[ "$(grep -c "^$k " "$LOG/rounds.txt")" -eq "$ROUNDS" ] || die "expected $ROUNDS $k results in $LOG/out.txt"
done

echo
echo "netmapd NIC benchmark: veth vA->vB, 60-byte frames, $PACKETS frames per run, $ROUNDS rounds, $(nproc) CPUs, kernel $(uname -r)"
printf '%-5s %-46s %10s %9s %9s %10s\n' "round" "measurement" "frames" "secs" "Mpps" "drops"
awk -v rounds="$ROUNDS" '
function median(a, n,    i, j, t) {
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function perframe(k, r) { return (cpu[k, r] + 0 > 0 && fr[k, r] > 0) ? cpu[k, r] / fr[k, r] : 0 }
BEGIN {
	name["A1X"] = "TX netmapd AF_XDP (pipe-tx vA, burst 512)"
	name["A1P"] = "TX netmapd AF_PACKET (pipe-tx vA, burst 512)"
	name["A3X"] = "TX netmapd AF_XDP (C nm_tx vA, burst 512)"
	name["A3P"] = "TX netmapd AF_PACKET (C nm_tx vA, burst 512)"
	name["A2"] = "TX trafgen (-P 1, qdisc bypass)"
	name["B1X"] = "RX netmapd AF_XDP (rx-count vB; trafgen)"
	name["B1P"] = "RX netmapd AF_PACKET (rx-count vB; trafgen)"
	name["B2"] = "RX netsniff-ng (vB -> /dev/null)"
	name["B3"] = "RX xsk_floor (AF_XDP rxsync, receiver alone)"
	split("A1X A1P A3X A3P A2 B1X B1P B2 B3", ks, " ")
}
{ mpps[$1, $2] = $3 / $4 / 1e6; fr[$1, $2] = $3; se[$1, $2] = $4; dr[$1, $2] = $5; of[$1, $2] = $6; cpu[$1, $2] = $7 }
END {
	for (r = 1; r <= rounds; r++) {
		for (i = 1; i <= 9; i++) {
			k = ks[i]
			printf "%-5d %-46s %10d %9.3f %9.4f %10d\n", r, name[k], fr[k, r], se[k, r], mpps[k, r], dr[k, r]
		}
		txx[r] = mpps["A1X", r] / mpps["A2", r]; txp[r] = mpps["A1P", r] / mpps["A2", r]
		tcx[r] = mpps["A3X", r] / mpps["A2", r]; tcp[r] = mpps["A3P", r] / mpps["A2", r]
		rxx[r] = mpps["B1X", r] / mpps["B2", r]; rxp[r] = mpps["B1P", r] / mpps["B2", r]
		printf "      round %d ratios to trafgen/netsniff-ng: TX xdp %.3f packet %.3f (C sender: xdp %.3f packet %.3f)  RX xdp %.3f packet %.3f\n", r, txx[r], txp[r], tcx[r], tcp[r], rxx[r], rxp[r]
		# schedstat may be missing (kernel without CONFIG_SCHED_INFO): then no CPU figure.
		x = perframe("B1X", r); p = perframe("B1P", r); n = perframe("B2", r); f = perframe("B3", r)
		if (x > 0 && p > 0 && n > 0 && f > 0) {
			cx[r] = x / n; cp[r] = p / n; cf[r] = f / n
			printf "      round %d receiver CPU per captured frame: netmapd AF_XDP %.0f ns, AF_PACKET %.0f ns (daemon + rx-count), netsniff-ng %.0f ns, xsk_floor %.0f ns\n", r, x, p, n, f
		} else { printf "      round %d receiver CPU per captured frame: not measured (no schedstat)\n", r; nocpu = 1 }
	}
	print "  TX frames = counted at vB (rx_packets delta); TX drops = vA tx_dropped delta"
	print "  RX drops = netmapd rx_drops / netsniff-ng \"failed filter (out of space)\"; RX Mpps = frames captured / sender wall time"
	printf "ratio TX netmapd/trafgen:      AF_XDP %.3f  AF_PACKET %.3f (medians of %d rounds)\n", median(txx, rounds), median(txp, rounds), rounds
	printf "ratio TX C sender (nm_open, pkt-gen loop)/trafgen: AF_XDP %.3f  AF_PACKET %.3f (medians of %d rounds)\n", median(tcx, rounds), median(tcp, rounds), rounds
	printf "ratio RX netmapd/netsniff-ng:  AF_XDP %.3f  AF_PACKET %.3f (medians of %d rounds)\n", median(rxx, rounds), median(rxp, rounds), rounds
	if (nocpu) print "receiver CPU per frame: not measured in every round (no schedstat)"
	else {
		printf "receiver CPU per frame, netmapd/netsniff-ng: AF_XDP %.2f  AF_PACKET %.2f (medians of %d rounds; lower is cheaper; not a rate)\n", median(cx, rounds), median(cp, rounds), rounds
		printf "receiver CPU per frame, xsk_floor/netsniff-ng: %.2f (the AF_XDP receive path in the receiving thread alone; median of %d rounds)\n", median(cf, rounds), rounds
	}
}' "$LOG/rounds.txt"
if [ -s "$LOG/threads.txt" ]; then
	for k in X P; do
		printf 'netmapd %s receiver CPU per frame by thread (median of %s rounds):' "$([ $k = X ] && echo AF_XDP || echo AF_PACKET)" "$ROUNDS"
		awk -v k=$k '$1 == k { printf " %s %s ns;", $2, $3 }' "$LOG/threads.txt"
		echo
	done
	printf 'times put on a CPU per 1000 captured frames (wake-ups and preemptions; median of %s rounds):' "$ROUNDS"
	awk '$1 == "N" { printf " netsniff-ng %s;", $4 }' "$LOG/threads.txt"
	awk '$1 != "N" && $4 > 0.01 { printf " %s %s %s;", ($1 == "X" ? "AF_XDP" : "AF_PACKET"), $2, $4 }' "$LOG/threads.txt"
	echo
fi
