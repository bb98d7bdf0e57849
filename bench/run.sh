#!/usr/bin/env bash
# netmapd benchmark: pipe throughput and NIOCTXSYNC round trip, with a bare FUSE ioctl
# and a /dev/null ioctl as baselines, all measured in this one run, both unpinned and
# with the daemon and its clients confined to CPU 0 (`taskset -c 0` on the whole
# `netmapd exec` command).
#
# Also ping-pong latency (one 60-byte frame in flight, pkt-gen -f ping/-f pong style)
# over a pipe and over two VALE ports: median and 99th percentile round trip.
#
# Each figure is taken twice: through the daemon (FUSE, `netmapd exec --no-preload`)
# and with the preload library (syncs and poll in the client's process).
#
# usage: sudo bench/run.sh            (env: PACKETS=20000000 ITERS=200000 PINGS=20000
#                                       B1_PACKETS=2000000 B1_FUSE_PACKETS=200000 TIMEOUT=900)
#
# It prints figures; it judges nothing. It fails (non-zero) when it cannot measure:
# not root, no /dev/fuse, build failure, or a client error.
set -euo pipefail

PACKETS=${PACKETS:-20000000}
ITERS=${ITERS:-200000}
PINGS=${PINGS:-20000}
B1_PACKETS=${B1_PACKETS:-2000000}
B1_FUSE_PACKETS=${B1_FUSE_PACKETS:-200000}
TIMEOUT=${TIMEOUT:-900}
BURST=512
LEN=60

die() {
	echo "bench/run.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] ||
	die "must run as root (netmapd exec creates a mount namespace and serves /dev/netmap over FUSE) — NOT skipping"
[ -c /dev/fuse ] ||
	die "/dev/fuse is missing: modprobe fuse, or give the container --device /dev/fuse — NOT skipping"
command -v taskset >/dev/null || die "taskset (util-linux) not found"
command -v timeout >/dev/null || die "timeout (coreutils) not found"

cd "$(dirname "$0")/.."
echo "building release binaries..." >&2
cargo build --release -p netmapd -p netmapd-tests -p netmapd-preload >&2
TARGET=${CARGO_TARGET_DIR:-target}/release
NETMAPD=$(realpath "$TARGET/netmapd")
NMC=$(realpath "$TARGET/nm-client")
[ -x "$NETMAPD" ] || die "$NETMAPD not built"
[ -x "$NMC" ] || die "$NMC not built"

LOG=$(mktemp -d "${TMPDIR:-/tmp}/netmapd-bench.XXXXXX")
trap 'rm -rf "$LOG"' EXIT

# run_mode NAME EXEC_FLAGS [PREFIX...]: one fresh daemon (`netmapd exec EXEC_FLAGS`:
# "--no-preload" for the kernel path through FUSE, "" for the preload library), the
# pipe benchmark (with the daemon's CPU time around it), VALE, the burst-1 pipe, the
# ioctl benchmark and the ping-pongs; the clients' key=value summary lines go to
# $LOG/NAME.out.
run_mode() {
	local name=$1 flags=$2 b1=$B1_PACKETS
	shift 2
	[ "$flags" = --no-preload ] && b1=$B1_FUSE_PACKETS
	echo "running $name..." >&2
	# shellcheck disable=SC2086
	if ! timeout "$TIMEOUT" "$@" "$NETMAPD" exec $flags -- sh -c '
		set -e
		cpu() { awk "{ print \$14 + \$15 }" /proc/$PPID/stat; }
		c0=$(cpu)
		"$1" bench-pipe --port "pp{0" --count "$2" --burst "$3" --len "$4"
		c1=$(cpu)
		echo "bench-dcpu ticks=$((c1 - c0)) hz=$(getconf CLK_TCK) packets=$2"
		"$1" bench-pipe --port "vale0:a" --peer "vale0:b" --count "$2" --burst "$3" --len "$4" | sed "s/^bench-pipe /bench-vale /"
		"$1" bench-pipe --port "b1{0" --count "$7" --burst 1 --len "$4" | sed "s/^bench-pipe /bench-b1 /"
		"$1" bench-rtt --port "rtt{0" --iters "$5"
		"$1" bench-latency --port "lat{0" --iters "$6" | sed "s/^bench-latency /bench-lat-pipe /"
		"$1" bench-latency --port "vale1:ping" --peer "vale1:pong" --iters "$6" | sed "s/^bench-latency /bench-lat-vale /"
	' sh "$NMC" "$PACKETS" "$BURST" "$LEN" "$ITERS" "$PINGS" "$b1" >"$LOG/$name.out" 2>"$LOG/$name.err"; then
		echo "--- stdout ($name) ---" >&2
		cat "$LOG/$name.out" >&2
		echo "--- stderr ($name) ---" >&2
		cat "$LOG/$name.err" >&2
		die "$name run failed"
	fi
}

# kv NAME PREFIX KEY: value of KEY= on the line of $LOG/NAME.out starting with PREFIX.
kv() {
	local v
	v=$(awk -v p="$2" -v k="$3" '$1 == p { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == k) print a[2] } }' "$LOG/$1.out")
	[ -n "$v" ] || die "no $3= in the $2 line of the $1 run: $(cat "$LOG/$1.out")"
	echo "$v"
}

run_mode fuse "--no-preload"
run_mode fuse1 "--no-preload" taskset -c 0
run_mode pre ""
run_mode pre1 "" taskset -c 0

# dcpu NAME: the daemon's CPU milliseconds per million pipe packets of that run.
dcpu() {
	awk -v t="$(kv "$1" bench-dcpu ticks)" -v hz="$(kv "$1" bench-dcpu hz)" -v n="$(kv "$1" bench-dcpu packets)" \
		'BEGIN { printf "%.1f", t * 1000 / hz / (n / 1e6) }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "netmapd benchmark (same run)  [$(nproc) CPUs, $PACKETS packets, $ITERS ioctls per kind, $PINGS ping-pongs]"
echo "columns: kernel path through FUSE (--no-preload) unpinned | on 1 CPU || preloaded (in-process syncs) unpinned | on 1 CPU"
row() { # LABEL FORMAT PREFIX KEY
	printf "%-52s" "$1"
	for m in fuse fuse1 pre pre1; do
		printf " | $2" "$(kv $m "$3" "$4")"
	done
	echo
}
row "pipe, 60 B, burst 512 (Mpps)" "%8.2f" bench-pipe rx_mpps
row "VALE 2 ports, 60 B, burst 512, received (Mpps)" "%8.2f" bench-vale rx_mpps
row "pipe, 60 B, burst 1: a sync per packet (Mpps)" "%8.3f" bench-b1 rx_mpps
row "NIOCTXSYNC with nothing to do (us)" "%8.3f" bench-rtt txsync_us
row "/dev/null ioctl, same process (us)" "%8.3f" bench-rtt devnull_us
row "NIOCTXSYNC / /dev/null ioctl" "%8.1f" bench-rtt ratio_devnull
row "bare FUSE ioctl (us)" "%8.1f" bench-rtt bare_fuse_us
row "ping-pong RTT over a pipe, median (us)" "%8.2f" bench-lat-pipe median_us
row "ping-pong RTT over a pipe, p99 (us)" "%8.1f" bench-lat-pipe p99_us
row "ping-pong RTT over VALE, median (us)" "%8.2f" bench-lat-vale median_us
row "ping-pong RTT over VALE, p99 (us)" "%8.1f" bench-lat-vale p99_us
printf "%-52s" "daemon CPU per million pipe packets (ms)"
for m in fuse fuse1 pre pre1; do printf " | %8s" "$(dcpu $m)"; done
echo
echo "preloaded / FUSE, unpinned: pipe $(ratio "$(kv pre bench-pipe rx_mpps)" "$(kv fuse bench-pipe rx_mpps)")x, burst-1 $(ratio "$(kv pre bench-b1 rx_mpps)" "$(kv fuse bench-b1 rx_mpps)")x, ping-pong median $(ratio "$(kv fuse bench-lat-pipe median_us)" "$(kv pre bench-lat-pipe median_us)")x faster"
