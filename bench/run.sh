#!/usr/bin/env bash
# netmapd benchmark: pipe throughput and NIOCTXSYNC round trip, with a bare FUSE ioctl
# and a /dev/null ioctl as baselines, all measured in this one run, both unpinned and
# with the daemon and its clients confined to CPU 0 (`taskset -c 0` on the whole
# `netmapd exec` command).
#
# Also ping-pong latency (one 60-byte frame in flight, pkt-gen -f ping/-f pong style)
# over a pipe and over two VALE ports: median and 99th percentile round trip.
#
# usage: sudo bench/run.sh            (env: PACKETS=20000000 ITERS=200000 PINGS=20000 TIMEOUT=900)
#
# It prints figures; it judges nothing. It fails (non-zero) when it cannot measure:
# not root, no /dev/fuse, build failure, or a client error.
set -euo pipefail

PACKETS=${PACKETS:-20000000}
ITERS=${ITERS:-200000}
PINGS=${PINGS:-20000}
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
cargo build --release -p netmapd -p netmapd-tests >&2
TARGET=${CARGO_TARGET_DIR:-target}/release
NETMAPD=$(realpath "$TARGET/netmapd")
NMC=$(realpath "$TARGET/nm-client")
[ -x "$NETMAPD" ] || die "$NETMAPD not built"
[ -x "$NMC" ] || die "$NMC not built"

LOG=$(mktemp -d "${TMPDIR:-/tmp}/netmapd-bench.XXXXXX")
trap 'rm -rf "$LOG"' EXIT

# run_mode NAME [PREFIX...]: one fresh daemon, the pipe benchmark then the ioctl
# benchmark; the clients' key=value summary lines go to $LOG/NAME.out.
run_mode() {
	local name=$1
	shift
	echo "running $name..." >&2
	if ! timeout "$TIMEOUT" "$@" "$NETMAPD" exec -- sh -c '
		set -e
		"$1" bench-pipe --port "pp{0" --count "$2" --burst "$3" --len "$4"
		"$1" bench-pipe --port "vale0:a" --peer "vale0:b" --count "$2" --burst "$3" --len "$4" | sed "s/^bench-pipe /bench-vale /"
		"$1" bench-rtt --port "rtt{0" --iters "$5"
		"$1" bench-latency --port "lat{0" --iters "$6" | sed "s/^bench-latency /bench-lat-pipe /"
		"$1" bench-latency --port "vale1:ping" --peer "vale1:pong" --iters "$6" | sed "s/^bench-latency /bench-lat-vale /"
	' sh "$NMC" "$PACKETS" "$BURST" "$LEN" "$ITERS" "$PINGS" >"$LOG/$name.out" 2>"$LOG/$name.err"; then
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

run_mode unpinned
run_mode pinned taskset -c 0

echo "netmapd benchmark (same run)  [$(nproc) CPUs, $PACKETS packets, $ITERS ioctls per kind]"
for m in unpinned pinned; do
	label=$m
	[ "$m" = pinned ] && label="1 CPU"
	printf 'pipe throughput, %d B, burst %d, %-8s : %.2f Mpps\n' \
		"$LEN" "$BURST" "$label" "$(kv $m bench-pipe rx_mpps)"
done
for m in unpinned pinned; do
	label=$m
	[ "$m" = pinned ] && label="1 CPU"
	pipe=$(kv $m bench-pipe rx_mpps)
	vale=$(kv $m bench-vale rx_mpps)
	printf 'VALE 2-port forwarding, %d B, burst %d, %-8s : %.2f Mpps  (pipe %.2f Mpps, ratio %.2f)\n' \
		"$LEN" "$BURST" "$label" "$vale" "$pipe" "$(awk -v a="$vale" -v b="$pipe" 'BEGIN { printf "%.3f", a / b }')"
done
for m in unpinned pinned; do
	label=$m
	[ "$m" = pinned ] && label="1 CPU"
	printf 'NIOCTXSYNC round trip, %-8s : %6.1f us   bare FUSE ioctl: %6.1f us  ratio %.2f   /dev/null ioctl: %.3f us  ratio %.0f\n' \
		"$label" "$(kv $m bench-rtt txsync_us)" "$(kv $m bench-rtt bare_fuse_us)" \
		"$(kv $m bench-rtt ratio_fuse)" "$(kv $m bench-rtt devnull_us)" \
		"$(kv $m bench-rtt ratio_devnull)"
done
for m in unpinned pinned; do
	label=$m
	[ "$m" = pinned ] && label="1 CPU"
	printf 'ping-pong RTT, %-8s : pipe median %6.1f us  p99 %7.1f us   VALE median %6.1f us  p99 %7.1f us   (NIOCTXSYNC round trip %.1f us)\n' \
		"$label" "$(kv $m bench-lat-pipe median_us)" "$(kv $m bench-lat-pipe p99_us)" \
		"$(kv $m bench-lat-vale median_us)" "$(kv $m bench-lat-vale p99_us)" \
		"$(kv $m bench-rtt txsync_us)"
done
