#!/usr/bin/env bash
# Short fuzz run for CI: every target for FUZZ_SECONDS (default 30) seconds, starting
# from the committed corpus. New inputs go to a temporary directory (the committed
# corpus is read only); a crash leaves its reproducer in fuzz/artifacts/<target>/ and
# makes the script fail.
set -euo pipefail
cd "$(dirname "$0")"
secs="${FUZZ_SECONDS:-30}"
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
targets=$(cargo fuzz list)
cargo fuzz build
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for t in $targets; do
  mkdir -p "$tmp/$t"
  echo "== $t (${secs}s)"
  if ! cargo fuzz run "$t" "$tmp/$t" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
      >"$tmp/$t.log" 2>&1; then
    tail -n 60 "$tmp/$t.log"
    echo "fuzz target $t failed; reproducer in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  grep -E '^stat::number_of_executed_units' "$tmp/$t.log" || true
done
