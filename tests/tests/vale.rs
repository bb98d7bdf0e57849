//! VALE switches end to end: learning and flooding across three ports, persistent
//! ports managed with vale-ctl-equivalent requests (`nm-client vale-ctl`, no
//! reference binary needed), and a veth end attached to a switch carrying traffic
//! both ways (NETMAP-ABI.md §10.2, §10.3). Needs root and /dev/fuse; the veth test
//! also `ip` and `unshare`, and runs in a private network namespace.

use std::process::Command;
use std::time::Duration;

use netmapd_tests::harness::{
    assert_success, netmapd_bin, netmapd_exec, netmapd_exec_no_preload, require_privileges, run,
};

const NM_CLIENT: &str = env!("CARGO_BIN_EXE_nm-client");

#[test]
fn learning_and_flooding_across_three_ports() {
    // All three ports in one preloaded process: every sync runs in the process
    // (the switch forwards in the sender's txsync), none reaches the daemon.
    let script = r#"d="$1"; c="$2"
"$c" vale-learn vale7 || exit 1
"$d" status --keys | grep '^daemon_syncs='"#;
    let out = netmapd_exec(
        [
            "sh",
            "-c",
            script,
            "sh",
            &netmapd_bin().to_string_lossy(),
            NM_CLIENT,
        ],
        Duration::from_secs(60),
    );
    assert_success(&out);
    assert!(out.stdout.contains("vale-learn: ok"), "{}", out.describe());
    assert!(
        out.stdout.contains("daemon_syncs=0\n"),
        "preloaded VALE syncs reached the daemon\n{}",
        out.describe()
    );
}

/// The same through the daemon only (no preload library anywhere).
#[test]
fn learning_and_flooding_not_preloaded() {
    let out = netmapd_exec_no_preload([NM_CLIENT, "vale-learn", "vale7"], Duration::from_secs(60));
    assert_success(&out);
    assert!(out.stdout.contains("vale-learn: ok"), "{}", out.describe());
}

/// Each port in a process of its own, preloaded or not, both ways round: senders
/// forwarding in their process deliver to receivers served by the daemon and the
/// other way, learning is shared (a MAC learned by one kind of sender directs the
/// other kind's frames), payloads checked.
#[test]
fn learning_and_flooding_mixed() {
    for modes in ["pre,plain,pre", "plain,pre,plain"] {
        let script = format!(
            r#"d="$1"; c="$2"
lib=$("$d" preload-path) || exit 9
"$c" vale-learn vale6 --modes {modes} --preload "$lib" || exit 1
"$d" status --keys | grep '^daemon_syncs='"#
        );
        let out = netmapd_exec_no_preload(
            [
                "sh",
                "-c",
                &script,
                "sh",
                &netmapd_bin().to_string_lossy(),
                NM_CLIENT,
            ],
            Duration::from_secs(60),
        );
        assert_success(&out);
        assert!(
            out.stdout.contains("vale-learn: ok"),
            "{modes}: {}",
            out.describe()
        );
        assert!(
            !out.stdout.contains("daemon_syncs=0\n"),
            "{modes}: the plain ports' syncs must reach the daemon\n{}",
            out.describe()
        );
    }
}

/// The request sequence of `vale-ctl -n per0; -a vale0:per0; -l; -d; -r` and the
/// errnos of the usual mistakes.
#[test]
fn persistent_port_with_vale_ctl_requests() {
    let script = r#"c="$1"
x() { echo "+ $*"; "$c" vale-ctl "$@"; }
# Frames sent before the receiver has registered are lost (as on a wire): wait for it.
up() { i=0; until "$d" status --keys | grep -q "^$1"; do i=$((i+1)); [ $i -gt 400 ] && { echo "receiver $1 never registered"; return 1; }; sleep 0.05; done; }
x -n per0 || exit 1
x -n per0 && exit 2
x -a vale0:per0 || exit 3
x -a vale0:per0 && exit 4
x -l || exit 5
x -l vale0:per0 || exit 6
x -o per0 || exit 7
x -o vale0:per0 || exit 8
x -r per0 && exit 9
x -d vale0:per0 || exit 10
x -d vale0:per0 && exit 11
x -a per0 && exit 12
x -a vale0:nosuch && exit 13
x -r per0 || exit 14
x -r per0 && exit 15
exit 0
"#;
    let out = netmapd_exec(
        ["sh", "-c", script, "sh", NM_CLIENT],
        Duration::from_secs(60),
    );
    assert_success(&out);
    for want in [
        "-n per0: ok tx_slots=1024 rx_slots=1024 tx_rings=1 rx_rings=1",
        "-n per0: EEXIST",
        "-a vale0:per0: ok port_index=0",
        "-a vale0:per0: EBUSY",
        "-l : ok vale0:per0",
        "-l vale0:per0: ok bridge=0 port=0",
        "-r per0: EBUSY",
        "-d vale0:per0: ok port_index=0",
        "-d vale0:per0: ENXIO",
        "-a per0: EINVAL",
        "-a vale0:nosuch: EINVAL",
        "-r per0: ok",
        "-r per0: ENXIO",
    ] {
        assert!(
            out.stdout.contains(want),
            "missing {want:?}\n{}",
            out.describe()
        );
    }
}

/// vA attached to vale0 (NIC_SW): frames from the VALE port vale0:p leave through vA
/// and arrive on vB (AF_PACKET through netmapd), frames sent on vB arrive on vale0:q;
/// vA is EBUSY while attached; polling on/off is validated; detach gives everything
/// back (same free buffer count as before).
#[test]
fn veth_attached_to_a_switch() {
    require_privileges();
    let script = r#"set -u
d="$1"; c="$2"; t=$(mktemp -d); N=3000
x() { echo "+ $*"; "$c" vale-ctl "$@"; }
# Frames sent before the receiver has registered are lost (as on a wire): wait for it.
up() { i=0; until "$d" status --keys | grep -q "^$1"; do i=$((i+1)); [ $i -gt 400 ] && { echo "receiver $1 never registered"; return 1; }; sleep 0.05; done; }
"$d" status --keys > "$t/st0"
x -h vale0:vA || exit 1
x -a vale0:vA && exit 2
x -o vA && exit 3
x -o vale0:vA && exit 4
x -l || exit 5
if [ "$(nproc)" -ge 2 ]; then
x -p vale0:vA || exit 6
x -p vale0:vA && exit 7
x -d vale0:vA && exit 8
x -P vale0:vA || exit 9
x -P vale0:vA && exit 10
else echo "polling checks skipped: one CPU"; fi
# The path vale0:p -> vA -> vB (and back) has bounded queues that drop when a thread
# is starved (VALE RX ring of the switch port, NIC TX ring, the veth, the capture
# ring): the guarantee is that what arrives is intact and in order, and that every
# frame lost is counted where it was dropped; leg1/leg2 sum those counters.
sf() { "$d" status --keys | awk -v p="port=$1" -v k="$2" '$1 == p { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == k) v = a[2] } } END { print v + 0 }'; }
# Kernel drop counters of this network namespace (/sys shows the host's).
kd() { awk -v i="$1" -v f="$2" '{ gsub(":", " "); $0 = $0 } $1 == i { print (f == "rx_dropped" ? $5 : $13) }' /proc/net/dev; }
leg1() { echo $(( $(sf vale0:vA rx_drops) + $(sf vA tx_errors) - $(sf vA host_tx_drops) + $(sf vB rx_drops) + $(kd vA tx_dropped) + $(kd vB rx_dropped) )); }
leg2() { echo $(( $(sf vA rx_drops) + $(sf vale0:vA tx_drops) + $(sf vale0:q rx_drops) + $(kd vB tx_dropped) + $(kd vA rx_dropped) )); }
check() { # LEG FILE BASE
  lost=$(sed -n 's/.* lost=\([0-9]*\).*/\1/p' "$2"); now=$($1)
  echo "$1: lost=$lost counted=$((now - $3))"
  [ -n "$lost" ] && [ "$lost" -eq $((now - $3)) ] || { echo "$1: $lost frames lost but $((now - $3)) counted"; "$d" status --keys; return 1; }
  [ "$lost" -eq 0 ] || echo "$1: NOTE $lost of $N frames dropped at 20 kpps (counted above): the machine was too busy for the forwarding threads"
}
# The holders keep the receiving ports, and so their counters, alive after the
# receivers close (vale0:q only from leg 2 on: it would get leg 1's flooded frames).
"$c" hold --port vB > /dev/null & h1=$!
up "port=vB " || exit 19
b1=$(leg1)
"$c" pipe-rx --port vB --count $N --len 60 --ignore-foreign --lossy --idle-ms 3000 > "$t/rx1" 2>&1 & rx=$!
until "$d" status --keys | grep '^port=vB ' | grep -q ' users=2 '; do sleep 0.05; done
"$c" pipe-tx --port vale0:p --count $N --len 60 --burst 16 --rate 20000 || exit 11
wait $rx || { cat "$t/rx1"; exit 12; }
cat "$t/rx1"
check leg1 "$t/rx1" "$b1" || exit 21
"$c" hold --port vale0:q > /dev/null & h2=$!
up "port=vale0:q " || exit 20
b2=$(leg2)
"$c" pipe-rx --port vale0:q --count $N --len 60 --ignore-foreign --lossy --idle-ms 3000 > "$t/rx2" 2>&1 & rx=$!
until "$d" status --keys | grep '^port=vale0:q ' | grep -q ' users=2 '; do sleep 0.05; done
"$c" pipe-tx --port vB --count $N --len 60 --burst 16 --rate 20000 || exit 13
wait $rx || { cat "$t/rx2"; exit 14; }
cat "$t/rx2"
check leg2 "$t/rx2" "$b2" || exit 22
kill $h1 $h2; wait $h1 $h2 2>/dev/null
x -d vale0:vA || exit 15
x -l
x -o vA || exit 16
# The killed holders' descriptors are released by the kernel's FUSE RELEASE, which
# may arrive after `wait` returns: give it up to 5 s, as the other pool checks do.
i=0
while :; do
  "$d" status --keys > "$t/st1"
  [ "$(grep '^buf_free=' "$t/st0")" = "$(grep '^buf_free=' "$t/st1")" ] && break
  i=$((i+1)); [ $i -gt 50 ] && break
  sleep 0.1
done
grep '^buf_free=' "$t/st0" "$t/st1"
[ "$(grep '^buf_free=' "$t/st0")" = "$(grep '^buf_free=' "$t/st1")" ] || exit 17
grep -q '^ports=0$' "$t/st1" || { cat "$t/st1"; exit 18; }
echo veth-vale-ok
"#;
    let setup = r#"set -u
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || exit 91
ip link add vA type veth peer name vB || exit 92
ip link set vA up && ip link set vB up || exit 93
exec "$1" exec -- sh -c "$3" sh "$1" "$2"
"#;
    let mut cmd = Command::new("unshare");
    cmd.args(["-n", "sh", "-c", setup, "sh"])
        .arg(netmapd_bin())
        .arg(NM_CLIENT)
        .arg(script);
    let out = run(cmd, Duration::from_secs(120));
    assert_success(&out);
    assert!(out.stdout.contains("veth-vale-ok"), "{}", out.describe());
    let polling = !out.stdout.contains("polling checks skipped");
    let polling_wants: &[&str] = if polling {
        &[
            "-p vale0:vA: EFAULT",
            "-d vale0:vA: EBUSY",
            "-P vale0:vA: EFAULT",
        ]
    } else {
        &[]
    };
    for want in polling_wants.iter().copied().chain([
        "-h vale0:vA: ok port_index=0",
        "-a vale0:vA: EBUSY",
        "-o vA: EBUSY",
        "-o vale0:vA: EBUSY",
        "-l : ok vale0:vA vale0:vA^",
        "-d vale0:vA: ok port_index=0",
        "-o vA: ok",
    ]) {
        assert!(
            out.stdout.contains(want),
            "missing {want:?}\n{}",
            out.describe()
        );
    }
    assert!(
        out.stdout.contains("leg1: lost=") && out.stdout.contains("leg2: lost="),
        "{}",
        out.describe()
    );
}

/// An unpaced preloaded sender into a receiver that cannot keep up: frames are dropped
/// (and counted) but never reordered. Older frames the daemon holds in its backlog for
/// the receiver's ring must not be overtaken by newer ones a client delivers itself
/// (seen before the fix: a frame arrived with an older sequence number than the one
/// before it). bench-pipe's receiver fails on any backward sequence number.
#[test]
fn overrun_receiver_sees_no_reordering() {
    let script = r#"c="$1"
for i in 1 2 3; do
  "$c" bench-pipe --port vale5:a --peer vale5:b --count 20000000 --burst 512 --len 60 || exit $i
done"#;
    let out = netmapd_exec(
        ["sh", "-c", script, "sh", NM_CLIENT],
        Duration::from_secs(300),
    );
    assert_success(&out);
    assert_eq!(
        out.stdout.matches("bench-pipe packets=20000000").count(),
        3,
        "{}",
        out.describe()
    );
}
