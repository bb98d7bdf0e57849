//! Monitor ports end to end (NETMAP-ABI.md §10.5): a pipe stream between two processes
//! watched by `/t`, `/r`, `/rt` and `/z` monitors in four more processes, each of which
//! must see every frame exactly once, in order and intact, with NS_TXMON on the TX
//! copies; afterwards the pools are back to where they started.
//!
//! Needs root and /dev/fuse, and `netmapd` built in the same profile (see e2e.rs).

use std::time::Duration;

use netmapd_tests::harness::{assert_success, netmapd_bin, netmapd_exec};

const NM_CLIENT: &str = env!("CARGO_BIN_EXE_nm-client");

#[test]
fn monitors_see_a_pipe_stream() {
    let count = 10_000;
    let script = format!(
        r#"d="$1"; c="$2"; n={count}
t=$(mktemp -d) || exit 5
snap() {{ "$d" status --keys > "$1" || {{ echo "netmapd status failed" >&2; exit 3; }}; }}
free() {{ grep -E '^(if|ring|buf)_free=' "$1"; }}
snap "$t/before"
"$c" pipe-rx --port 'mon}}0' --count $n > "$t/rx" 2>&1 & rx=$!
"$c" hold --port 'mon{{0' > "$t/hold" 2>&1 & h=$!
"$c" monitor-rx --port 'mon{{0' --flags t --count $n > "$t/t" 2>&1 & m1=$!
"$c" monitor-rx --port 'mon}}0' --flags r --count $n > "$t/r" 2>&1 & m2=$!
"$c" monitor-rx --port 'mon{{0' --flags rt --count $n > "$t/rt" 2>&1 & m3=$!
"$c" monitor-rx --port 'mon{{0' --flags z --count $n > "$t/z" 2>&1 & m4=$!
i=0
until grep -q 'monitor-rx ready' "$t/t" && grep -q 'monitor-rx ready' "$t/r" \
   && grep -q 'monitor-rx ready' "$t/rt" && grep -q 'monitor-rx ready' "$t/z"; do
  i=$((i+1))
  if [ $i -gt 400 ]; then echo "monitors not ready"; tail -n +1 "$t"/*; kill -9 $rx $h $m1 $m2 $m3 $m4; exit 4; fi
  sleep 0.05
done
"$c" pipe-tx --port 'mon{{0' --count $n --rate 10000 > "$t/tx" 2>&1; txs=$?
wait $rx; rxs=$?
wait $m1; s1=$?; wait $m2; s2=$?; wait $m3; s3=$?; wait $m4; s4=$?
kill $h; wait $h 2>/dev/null
for f in tx rx t r rt z; do echo "=== $f"; cat "$t/$f"; done
echo "exit tx=$txs rx=$rxs t=$s1 r=$s2 rt=$s3 z=$s4"
free "$t/before" > "$t/bf"
i=0
while :; do
  snap "$t/after"; free "$t/after" > "$t/af"
  cmp -s "$t/bf" "$t/af" && break
  i=$((i+1)); [ $i -gt 50 ] && {{ echo "pools not restored"; cat "$t/bf" "$t/af"; exit 6; }}
  sleep 0.1
done
echo "pools restored"
rm -rf "$t"
[ $txs -eq 0 ] && [ $rxs -eq 0 ] && [ $s1 -eq 0 ] && [ $s2 -eq 0 ] && [ $s3 -eq 0 ] && [ $s4 -eq 0 ]"#
    );
    let netmapd = netmapd_bin();
    let out = netmapd_exec(
        [
            "sh".as_ref(),
            "-c".as_ref(),
            script.as_ref(),
            "sh".as_ref(),
            netmapd.as_os_str(),
            NM_CLIENT.as_ref(),
        ],
        Duration::from_secs(180),
    );
    assert_success(&out);
    for (flags, tx, rx) in [
        ("t", count, 0),
        ("r", 0, count),
        ("rt", count, 0),
        ("z", count, 0),
    ] {
        let want = format!("/{flags}: received {count} frames (tx {tx}, rx {rx})");
        assert!(
            out.stdout.contains(&want),
            "missing {want:?}\n{}",
            out.describe()
        );
    }
    assert!(out.stdout.contains("pools restored"), "{}", out.describe());
    println!("{}", out.stdout);
}

/// Monitors of VALE ports while the switch's clients forward and receive in their own
/// process: `valem:a/t` sees every frame a sends, `valem:b/r` every frame b receives,
/// exactly once, intact (a watched port's syncs take the daemon's path, which feeds
/// monitors); the unwatched receiver c gets the same stream in process.
#[test]
fn monitors_see_a_vale_stream() {
    let count = 10_000;
    let script = format!(
        r#"d="$1"; c="$2"; n={count}
t=$(mktemp -d) || exit 5
"$c" pipe-rx --port valem:b --count $n > "$t/rxb" 2>&1 & rb=$!
"$c" pipe-rx --port valem:c --count $n > "$t/rxc" 2>&1 & rc=$!
"$c" hold --port valem:a > "$t/hold" 2>&1 & h=$!
i=0; until grep -q holding "$t/hold"; do i=$((i+1)); [ $i -gt 200 ] && exit 6; sleep 0.05; done
"$c" monitor-rx --port valem:a --flags t --count $n > "$t/t" 2>&1 & m1=$!
"$c" monitor-rx --port valem:b --flags r --count $n > "$t/r" 2>&1 & m2=$!
i=0
until grep -q 'monitor-rx ready' "$t/t" && grep -q 'monitor-rx ready' "$t/r"; do
  i=$((i+1))
  if [ $i -gt 400 ]; then echo "monitors not ready"; tail -n +1 "$t"/*; kill -9 $rb $rc $h $m1 $m2; exit 4; fi
  sleep 0.05
done
"$c" pipe-tx --port valem:a --count $n --rate 10000 > "$t/tx" 2>&1; txs=$?
wait $rb; s1=$?; wait $rc; s2=$?; wait $m1; s3=$?; wait $m2; s4=$?
kill $h; wait $h 2>/dev/null
for f in tx rxb rxc t r; do echo "=== $f"; cat "$t/$f"; done
rm -rf "$t"
echo "exit tx=$txs rxb=$s1 rxc=$s2 t=$s3 r=$s4"
[ $txs -eq 0 ] && [ $s1 -eq 0 ] && [ $s2 -eq 0 ] && [ $s3 -eq 0 ] && [ $s4 -eq 0 ]"#
    );
    let netmapd = netmapd_bin();
    let out = netmapd_exec(
        [
            "sh".as_ref(),
            "-c".as_ref(),
            script.as_ref(),
            "sh".as_ref(),
            netmapd.as_os_str(),
            NM_CLIENT.as_ref(),
        ],
        Duration::from_secs(180),
    );
    assert_success(&out);
    for want in [
        format!("/t: received {count} frames (tx {count}, rx 0)"),
        format!("/r: received {count} frames (tx 0, rx {count})"),
        format!("pipe-rx valem:b: received {count} packets"),
        format!("pipe-rx valem:c: received {count} packets"),
    ] {
        assert!(
            out.stdout.contains(&want),
            "missing {want:?}\n{}",
            out.describe()
        );
    }
}
