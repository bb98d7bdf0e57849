#!/usr/bin/env bash
# netmap ABI conformance runner: runs every program of the suite against the
# /dev/netmap of this mount namespace (netmapd or the kernel module) and
# prints a pass/fail table.
#
#   run.sh [--nic IFNAME [--peer PEERIF]] [--builddir DIR]
#
# Without --nic the NIC checks are reported as "not run (no --nic given)";
# they are never counted as passed.  Exit status 1 if any check failed (or a
# program crashed / printed nothing), else 0.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
builddir="${BUILDDIR:-$here/build}"
nic=""
peer=""
per_prog_timeout="${CONFORMANCE_TIMEOUT:-180}"

while [ $# -gt 0 ]; do
	case "$1" in
	--nic) nic="${2:-}"; shift 2 || { echo "--nic needs an argument" >&2; exit 2; } ;;
	--peer) peer="${2:-}"; shift 2 || { echo "--peer needs an argument" >&2; exit 2; } ;;
	--builddir) builddir="${2:-}"; shift 2 || { echo "--builddir needs an argument" >&2; exit 2; } ;;
	-h|--help) sed -n '2,10p' "$0"; exit 0 ;;
	*) echo "unknown argument: $1" >&2; exit 2 ;;
	esac
done

# fixed order: cheap header checks first, NIC last
progs=(ctrl info register options legacy ring bufswap extrabufs poll fdlife pipes csb nic)

args=()
[ -n "$nic" ] && args+=(--nic "$nic")
[ -n "$peer" ] && args+=(--peer "$peer")

errfile="$(mktemp)"
trap 'rm -f "$errfile"' EXIT
rows=()
npass=0
nfail=0
nskip=0
skipreasons=""

for p in "${progs[@]}"; do
	exe="$builddir/$p"
	if [ ! -x "$exe" ]; then
		rows+=("$p|(build)|FAIL|$exe missing: run make -C $here")
		nfail=$((nfail + 1))
		continue
	fi
	out="$(timeout -k 5 "$per_prog_timeout" "$exe" "${args[@]}" 2>"$errfile")"
	rc=$?
	seen=0
	prog_fail=0
	while IFS= read -r line; do
		case "$line" in
		"PASS "*|"FAIL "*|"SKIP "*) ;;
		*) continue ;;
		esac
		verdict="${line%% *}"
		rest="${line#* }"
		name="${rest%%:*}"
		msg=""
		[ "$name" != "$rest" ] && msg="${rest#*: }"
		area="${name%%.*}"
		check="${name#*.}"
		seen=$((seen + 1))
		case "$verdict" in
		PASS) npass=$((npass + 1)); rows+=("$area|$check|PASS|") ;;
		FAIL) nfail=$((nfail + 1)); prog_fail=1; rows+=("$area|$check|FAIL|$msg") ;;
		SKIP) nskip=$((nskip + 1)); rows+=("$area|$check|$msg|")
		      case "$skipreasons" in *"$msg"*) ;; *) skipreasons="${skipreasons:+$skipreasons; }$msg" ;; esac ;;
		esac
	done <<<"$out"
	if [ "$rc" -ne 0 ] && [ "$prog_fail" -eq 0 ]; then
		why="exit status $rc"
		[ "$rc" -eq 124 ] && why="timed out after ${per_prog_timeout}s"
		[ "$rc" -gt 128 ] && [ "$rc" -ne 124 ] && why="killed by signal $((rc - 128))"
		err="$(tail -n 3 "$errfile" | tr '\n' ' ')"
		rows+=("$p|(program)|FAIL|$why after $seen checks${err:+; stderr: $err}")
		nfail=$((nfail + 1))
	elif [ "$seen" -eq 0 ]; then
		rows+=("$p|(program)|FAIL|printed no result")
		nfail=$((nfail + 1))
	fi
done

dev="${NETMAP_DEVICE:-/dev/netmap}"
echo "netmap ABI conformance against $dev${nic:+ (nic $nic${peer:+, peer $peer})}"
printf '%-10s %-38s %s\n' "AREA" "CHECK" "RESULT"
printf '%-10s %-38s %s\n' "----------" "--------------------------------------" "------"
for r in "${rows[@]}"; do
	IFS='|' read -r area check res msg <<<"$r"
	if [ -n "$msg" ]; then
		printf '%-10s %-38s %s: %s\n' "$area" "$check" "$res" "$msg"
	else
		printf '%-10s %-38s %s\n' "$area" "$check" "$res"
	fi
done
echo
summary="$npass passed, $nfail failed"
if [ "$nskip" -gt 0 ]; then
	summary="$summary; $nskip NOT RUN: ${skipreasons//not run /} (not counted as passed)"
fi
echo "$summary"

if [ "$nfail" -gt 0 ] || [ "$npass" -eq 0 ]; then
	exit 1
fi
exit 0
