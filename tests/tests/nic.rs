//! NIC ports over a veth pair: every test runs in a private network namespace
//! (`unshare -n -m`, with this namespace's sysfs mounted on /sys so the daemon sees the
//! veth's queues) holding `vA <-> vB`, and a fresh daemon (`netmapd exec`) inside it.
//! Host interfaces are never touched.
//!
//! Needs root, /dev/fuse, `ip` and `unshare`; missing ones fail the tests loudly
//! instead of skipping them. (REGISTER of a nonexistent interface → ENXIO is covered
//! by the `errno::unknown_interface` case in e2e.rs.)

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use netmapd_tests::harness::{assert_success, netmapd_bin, require_privileges, run, Output};

const NM_CLIENT: &str = env!("CARGO_BIN_EXE_nm-client");

/// Pacing of the 1M-frame streams: a quarter of what a 2-CPU VM sustains (about
/// 400 kpps unpaced with 60-byte frames), so the receiving port never drops.
const STREAM_RATE: u64 = 100_000;

fn require_tools() {
    require_privileges();
    for tool in ["ip", "unshare"] {
        let ok = Command::new(tool)
            .arg(if tool == "ip" { "-V" } else { "--version" })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "\n\n*** `{tool}` is missing (needed for the veth tests: apt-get install -y \
             iproute2 util-linux). NOT skipping. ***\n"
        );
    }
}

/// Runs `script` with `$1` = netmapd and `$2` = nm-client under `netmapd exec`, in a
/// new network + mount namespace holding the veth pair vA/vB (both up, IPv6 off so
/// the kernel sends no ND/MLD frames). `queues` > 1 gives both ends that many TX and
/// RX queues.
fn veth_run(queues: u32, script: &str, timeout: Duration) -> Output {
    veth_run_on("auto", queues, script, timeout)
}

/// [`veth_run`] with the daemon's `--nic-backend` given.
fn veth_run_on(backend: &str, queues: u32, script: &str, timeout: Duration) -> Output {
    require_tools();
    let q = if queues > 1 {
        format!("numtxqueues {queues} numrxqueues {queues}")
    } else {
        String::new()
    };
    let setup = format!(
        r#"set -u
mount -t sysfs sysfs /sys || exit 90
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || exit 91
ip link add vA {q} type veth peer name vB {q} || exit 92
ip link set vA up && ip link set vB up || exit 93
exec "$1" exec --nic-backend "$4" -- sh -c "$3" sh "$1" "$2"
"#
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-n", "-m", "sh", "-c", &setup, "sh"])
        .arg(netmapd_bin())
        .arg(NM_CLIENT)
        .arg(script)
        .arg(backend);
    run(cmd, timeout)
}

/// The `key=value` fields of the `port=NAME …` line in a `netmapd status` text.
fn port_fields(status: &str, port: &str) -> Option<BTreeMap<String, String>> {
    let prefix = format!("port={port} ");
    let line = status.lines().find(|l| l.starts_with(&prefix))?;
    Some(
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Text between `=== name` and the next `===` line.
fn section<'a>(out: &'a Output, name: &str) -> &'a str {
    let start = format!("=== {name}\n");
    out.stdout
        .split_once(&start)
        .unwrap_or_else(|| panic!("no {start:?} in the output\n{}", out.describe()))
        .1
        .split("\n===")
        .next()
        .unwrap_or("")
}

/// 1,000,000 frames vA→vB, then 1,000,000 vB→vA, varying lengths (60..1514), paced,
/// each checked for loss/reordering/corruption; the receiving port must report
/// rx_drops=0 in `netmapd status` (a TX-only registration keeps the port, and so its
/// counters, alive after the receiver exits). Both clients are preloaded (the default of
/// `netmapd exec`), so this is the in-process NIC path: no sync may reach the daemon.
fn veth_1m_each_way_on(backend: &str) {
    let script = format!(
        r#"d="$1"; c="$2"; N=1000000; t=$(mktemp -d)
one() {{ src=$1; dst=$2
  "$c" hold --port "$dst" > "$t/hold" 2>&1 & h=$!
  i=0; until grep -q holding "$t/hold"; do i=$((i+1)); [ $i -gt 200 ] && {{ cat "$t/hold"; return 5; }}; sleep 0.05; done
  "$c" pipe-rx --port "$dst" --count $N --max-len 1514 --ignore-foreign > "$t/rx" 2>&1 & rx=$!
  sleep 1
  "$c" pipe-tx --port "$src" --count $N --max-len 1514 --burst 64 --rate {STREAM_RATE} > "$t/tx" 2>&1; txs=$?
  wait $rx; rxs=$?
  "$d" status --keys > "$t/st" 2>&1
  kill -9 $h; wait $h 2>/dev/null
  cat "$t/tx" "$t/rx"
  echo "=== status $src->$dst"; cat "$t/st"; echo "=== end"
  ip -s link show "$dst"
  echo "$src->$dst: pipe-tx exit=$txs pipe-rx exit=$rxs"
  [ $rxs -eq 0 ] || echo "$src->$dst: the receiver saw loss at {STREAM_RATE} pps: counters above; the rings hold over 100 ms of this traffic, so this test needs a quiet machine"
  [ $txs -eq 0 ] && [ $rxs -eq 0 ]
}}
one vA vB || exit 1
one vB vA || exit 2
"#
    );
    let out = veth_run_on(backend, 1, &script, Duration::from_secs(300));
    assert_success(&out);
    // Traffic, closes and the daemon's stop log no error.
    assert_no_error_logged(&out);
    for (src, dst) in [("vA", "vB"), ("vB", "vA")] {
        assert!(
            out.stdout
                .contains(&format!("pipe-tx {src}: sent 1000000 packets"))
                && out
                    .stdout
                    .contains(&format!("pipe-rx {dst}: received 1000000 packets")),
            "missing sender/receiver summary for {src}->{dst}\n{}",
            out.describe()
        );
        let st = section(&out, &format!("status {src}->{dst}"));
        // Both clients are preloaded: their NIC syncs ran in process (the port
        // worker moved the frames), none reached the daemon.
        assert!(
            st.contains("daemon_syncs=0\n"),
            "NIC syncs of preloaded clients reached the daemon ({src}->{dst})\n{}",
            out.describe()
        );
        let f = port_fields(st, dst)
            .unwrap_or_else(|| panic!("no port={dst} line in status\n{}", out.describe()));
        assert_eq!(
            f.get("rx_drops").map(String::as_str),
            Some("0"),
            "receiving port {dst} dropped frames at {STREAM_RATE} pps (status line: {st:?}); \
             the capture ring holds over 100 ms of this traffic, so a drop means the \
             daemon's receive thread was starved that long: this test needs a quiet \
             machine\n{}",
            out.describe()
        );
        let want = if backend == "xdp" { "1" } else { "0" };
        assert_eq!(
            f.get("xdp").map(String::as_str),
            Some(want),
            "port {dst} is not on the {backend} backend (status line: {st:?})"
        );
        let rx: u64 = f["rx_packets"].parse().expect("rx_packets");
        assert!(rx >= 1_000_000, "{dst} rx_packets={rx}\n{}", out.describe());
    }
    println!("{}", out.stdout);
}

/// The 1M-frame streams through the AF_XDP backend: frames leave from the netmap
/// buffers and arrive exchanged into the receiver's slots.
#[test]
fn veth_1m_each_way_xdp() {
    veth_1m_each_way_on("xdp");
}

/// The same through the AF_PACKET backend.
#[test]
fn veth_1m_each_way_packet() {
    veth_1m_each_way_on("packet");
}

/// No ERROR line in the daemon's log, but for fuser's report that a reply found no
/// request to answer: the kernel drops the request of a process SIGKILLed while it
/// waited (here: a sender killed while its REGISTER waited behind the first XDP
/// port's creation, which pins the whole buffer pool: about a second the first time).
#[track_caller]
fn assert_no_error_logged(out: &Output) {
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains(" ERROR "))
        .filter(|l| !l.contains("Failed to send FUSE reply: No such file or directory"))
        .collect();
    assert!(errors.is_empty(), "errors logged:\n{}", errors.join("\n"));
}

/// The command `netmapd exec` runs ends with a NIC client's exit: the daemon waits
/// for that last close (a port teardown, tens of milliseconds of socket closes) to
/// finish and be answered before it unmounts, so nothing fails and nothing logs an
/// error.
#[test]
fn exec_ends_with_nic_client() {
    let out = veth_run(
        1,
        r#"exec "$2" pipe-tx --port vA --count 100000 --len 60 --burst 512"#,
        Duration::from_secs(60),
    );
    assert_success(&out);
    assert!(
        out.stdout.contains("pipe-tx vA: sent 100000 packets"),
        "{}",
        out.describe()
    );
    assert_no_error_logged(&out);
}

#[test]
fn multiqueue_veth() {
    multiqueue_veth_on("auto");
}

/// As [`multiqueue_veth`], through the AF_PACKET backend (four rings in one fanout
/// group, each read by the preloaded receiver itself).
#[test]
fn multiqueue_veth_packet() {
    multiqueue_veth_on("packet");
}

/// 4-queue veth: ring layout of ALL_NIC / ONE_NIC 2 (`nm-client nic
/// multiqueue_layout`), then 40,000 frames over 256 UDP flows sent on vB through a
/// plain AF_PACKET socket arrive on vA spread over all 4 RX rings, none lost.
fn multiqueue_veth_on(backend: &str) {
    let script = r#"d="$1"; c="$2"; t=$(mktemp -d)
"$c" nic multiqueue_layout --if vA || exit 1
"$c" mq-rx --if vA --count 40000 --spread > "$t/rx" 2>&1 & rx=$!
i=0; until grep -q 'mq-rx ready' "$t/rx"; do i=$((i+1)); [ $i -gt 200 ] && { cat "$t/rx"; exit 2; }; sleep 0.05; done
"$c" flows-tx --if vB --count 40000 --flows 256 --rate 50000 || exit 3
wait $rx; rxs=$?
cat "$t/rx"
[ $rxs -eq 0 ] || exit 4
"#;
    let out = veth_run_on(backend, 4, script, Duration::from_secs(120));
    assert_success(&out);
    assert!(
        out.stdout.contains("mq-rx vA: ring_counts=") && out.stdout.contains("total=40000"),
        "{}",
        out.describe()
    );
    println!("{}", out.stdout);
}

#[test]
fn link_down_up_and_delete_mid_traffic() {
    link_down_up_and_delete_on("auto");
}

/// As [`link_down_up_and_delete_mid_traffic`], through the AF_PACKET backend (its RX
/// ring read by the preloaded receiver itself, whose socket then carries the error).
#[test]
fn link_down_up_and_delete_mid_traffic_packet() {
    link_down_up_and_delete_on("packet");
}

/// Link down while a paced sender streams on vA: the sender gets POLLERR/an error
/// (no hang) and the daemon lives on; link up: a new stream works; link deleted
/// mid-traffic: both clients fail, closing works, the pools return to their initial
/// free counts, and the daemon still serves a pipe.
fn link_down_up_and_delete_on(backend: &str) {
    let script = r#"d="$1"; c="$2"; t=$(mktemp -d)
free() { "$d" status --keys | grep -E '^(if|ring|buf)_free=' | sort; }
alive() { "$d" status --keys > /dev/null 2>&1 || { echo "daemon does not answer status after $1"; exit 20; }; }
free > "$t/before" || exit 1
# 1. link down mid-traffic
timeout 60 "$c" pipe-rx --port vB --count 100000000 --len 60 --ignore-foreign > "$t/rx1" 2>&1 & rx=$!
sleep 0.5
timeout 60 "$c" pipe-tx --port vA --count 100000000 --len 60 --burst 64 --rate 100000 > "$t/tx1" 2>&1 & tx=$!
sleep 1
ip link set vA down
wait $tx; txs=$?; wait $rx; rxs=$?
echo "down: pipe-tx exit=$txs pipe-rx exit=$rxs"; cat "$t/tx1" "$t/rx1"
[ $txs -eq 124 ] && { echo "sender hung after link down"; exit 11; }
[ $txs -eq 0 ] && { echo "sender finished 100M frames?"; exit 12; }
[ $rxs -eq 124 ] && { echo "receiver hung after link down"; exit 13; }
alive "link down"
# 2. link up: traffic works again
ip link set vA up
sleep 0.5
timeout 60 "$c" pipe-rx --port vB --count 20000 --max-len 1514 --ignore-foreign > "$t/rx2" 2>&1 & rx=$!
sleep 0.5
timeout 60 "$c" pipe-tx --port vA --count 20000 --max-len 1514 --burst 64 --rate 100000 > "$t/tx2" 2>&1; txs=$?
wait $rx; rxs=$?
echo "up: pipe-tx exit=$txs pipe-rx exit=$rxs"; cat "$t/tx2" "$t/rx2"
[ $txs -eq 0 ] && [ $rxs -eq 0 ] || { echo "traffic after link up failed"; exit 21; }
# 3. delete the link mid-traffic
timeout 60 "$c" pipe-rx --port vB --count 100000000 --len 60 --ignore-foreign > "$t/rx3" 2>&1 & rx=$!
sleep 0.5
timeout 60 "$c" pipe-tx --port vA --count 100000000 --len 60 --burst 64 --rate 100000 > "$t/tx3" 2>&1 & tx=$!
sleep 1
"$d" status --keys > "$t/during"
ip link del vA || exit 30
wait $tx; txs=$?; wait $rx; rxs=$?
echo "del: pipe-tx exit=$txs pipe-rx exit=$rxs"; cat "$t/tx3" "$t/rx3"
[ $txs -eq 124 ] && { echo "sender hung after link delete"; exit 31; }
[ $txs -eq 0 ] && { echo "sender finished 100M frames?"; exit 32; }
[ $rxs -eq 124 ] && { echo "receiver hung after link delete"; exit 33; }
alive "link delete"
i=0
while :; do
  free > "$t/after"
  cmp -s "$t/before" "$t/after" && break
  i=$((i+1)); [ $i -gt 50 ] && break
  sleep 0.1
done
echo "=== before"; cat "$t/before"; echo "=== during"; cat "$t/during"; echo "=== after"; cat "$t/after"; echo "=== end"
cmp -s "$t/before" "$t/after" || { echo "pool free counts not restored"; exit 40; }
"$c" errno pipe_transfer_basic || { echo "daemon no longer serves a pipe"; exit 41; }
echo "link test done"
"#;
    let out = veth_run_on(backend, 1, script, Duration::from_secs(240));
    assert_success(&out);
    assert!(out.stdout.contains("link test done"), "{}", out.describe());
    // The sender must have been told by POLLERR or an ioctl error, not a stall timeout.
    for phase in ["down:", "del:"] {
        let text = out.stdout.split_once(phase).map(|x| x.1).unwrap_or("");
        let tx_msg = text.lines().find(|l| l.contains("nm-client pipe-tx"));
        assert!(
            tx_msg.is_some_and(|l| !l.contains("no TX slot freed")),
            "after {phase} the sender should fail with POLLERR or an error, got {tx_msg:?}\n{}",
            out.describe()
        );
    }
    println!("{}", out.stdout);
}

macro_rules! nic_cases {
    ($($name:ident),* $(,)?) => {
        /// ctrl-api-test cases 1–5 and 38–43 (NETMAP-ABI.md §13) against vA, one
        /// daemon per case and backend (AF_XDP, then AF_PACKET).
        mod nic_register_fields {
            $(
                #[test]
                fn $name() {
                    let script = concat!("\"$2\" nic ", stringify!($name), " --if vA");
                    for backend in ["xdp", "packet"] {
                        let out = super::veth_run_on(
                            backend,
                            1,
                            script,
                            std::time::Duration::from_secs(60),
                        );
                        super::assert_success(&out);
                    }
                }
            )*
        }
        const NIC_CASES: &[&str] = &[$(stringify!($name)),*];
    };
}

nic_cases! {
    port_info_get,
    register_nic_sw,
    register_all_nic,
    register_sw,
    register_one_nic,
    legacy_regif_default,
    legacy_regif_all_nic,
    legacy_regif_12,
    legacy_regif_sw,
    legacy_regif_future,
    legacy_regif_extra_bufs,
}

/// Every `nm-client nic` case runs somewhere: the register-field ones above, and
/// multiqueue_layout in `multiqueue_veth`. Needs no daemon and no root.
#[test]
fn nic_case_list_matches_client() {
    let out = run(
        {
            let mut c = Command::new(NM_CLIENT);
            c.args(["nic", "--list"]);
            c
        },
        Duration::from_secs(10),
    );
    assert_success(&out);
    let client: Vec<&str> = out.stdout.lines().collect();
    let mut want: Vec<&str> = NIC_CASES.to_vec();
    want.push("multiqueue_layout");
    assert_eq!(
        client, want,
        "update nic_cases! in tests/tests/nic.rs to match `nm-client nic --list`"
    );
}

#[test]
fn monitors_of_nic_ports() {
    monitors_of_nic_ports_on("auto");
}

/// As [`monitors_of_nic_ports`], through the AF_PACKET backend.
#[test]
fn monitors_of_nic_ports_packet() {
    monitors_of_nic_ports_on("packet");
}

/// Monitors of a NIC whose clients sync in process: `vA/t` sees every frame the
/// preloaded sender transmits, `vB/r` every frame the preloaded receiver gets, exactly
/// once, in order and intact (a watched port's syncs take the daemon's path, which
/// feeds monitors), and the receiver still gets the whole stream.
fn monitors_of_nic_ports_on(backend: &str) {
    let n = 20_000;
    let script = format!(
        r#"d="$1"; c="$2"; n={n}; t=$(mktemp -d)
"$c" pipe-rx --port vB --count $n --len 60 --ignore-foreign > "$t/rx" 2>&1 & rx=$!
"$c" hold --port vA > "$t/hold" 2>&1 & h=$!
i=0; until grep -q holding "$t/hold"; do i=$((i+1)); [ $i -gt 200 ] && exit 6; sleep 0.05; done
"$c" monitor-rx --port vA --flags t --count $n --len 60 > "$t/t" 2>&1 & m1=$!
"$c" monitor-rx --port vB --flags r --count $n --len 60 > "$t/r" 2>&1 & m2=$!
i=0
until grep -q 'monitor-rx ready' "$t/t" && grep -q 'monitor-rx ready' "$t/r"; do
  i=$((i+1))
  if [ $i -gt 400 ]; then echo "monitors not ready"; tail -n +1 "$t"/*; kill -9 $rx $h $m1 $m2; exit 4; fi
  sleep 0.05
done
"$c" pipe-tx --port vA --count $n --len 60 --burst 64 --rate 20000 > "$t/tx" 2>&1; txs=$?
wait $rx; s1=$?; wait $m1; s2=$?; wait $m2; s3=$?
kill $h; wait $h 2>/dev/null
for f in tx rx t r; do echo "=== $f"; cat "$t/$f"; done
echo "exit tx=$txs rx=$s1 t=$s2 r=$s3"
[ $txs -eq 0 ] && [ $s1 -eq 0 ] && [ $s2 -eq 0 ] && [ $s3 -eq 0 ]"#
    );
    let out = veth_run_on(backend, 1, &script, Duration::from_secs(180));
    assert_success(&out);
    for want in [
        format!("vA/t: received {n} frames (tx {n}, rx 0)"),
        format!("vB/r: received {n} frames (tx 0, rx {n})"),
        format!("pipe-rx vB: received {n} packets"),
    ] {
        assert!(
            out.stdout.contains(&want),
            "missing {want:?}\n{}",
            out.describe()
        );
    }
}

/// Preloaded NIC senders SIGKILLed mid-traffic, 30 times (many inside an in-process
/// txsync, holding vA's TX busy flag, or with frames handed to the port worker and not
/// yet sent): afterwards a fresh sender's 20,000 frames all reach vB, intact and in
/// order, the port worker still serves vA in process, and the pools are whole once
/// everyone is gone.
#[test]
fn preloaded_nic_senders_killed_mid_traffic() {
    let script = r#"d="$1"; c="$2"; t=$(mktemp -d)
free() { "$d" status --keys | grep -E '^(if|ring|buf)_free=' | sort; }
free > "$t/before" || exit 1
"$c" hold --port vA > "$t/hold" 2>&1 & h=$!
i=0; until grep -q holding "$t/hold"; do i=$((i+1)); [ $i -gt 200 ] && exit 2; sleep 0.05; done
"$c" rx-count --port vB --idle-ms 60000 > "$t/sink" 2>&1 & s=$!
k=0; killed=0
while [ $k -lt 30 ]; do
  "$c" pipe-tx --port vA --duration 60 --len 60 --burst 64 > /dev/null 2>&1 & p=$!
  sleep 0.$((1 + k % 3))
  kill -KILL $p && killed=$((killed + 1)); wait $p 2>/dev/null
  k=$((k+1))
done
echo "killed=$killed"
kill $s; wait $s 2>/dev/null
# A sender killed between moving the ring's head and its sync leaves frames that the
# next sync of the ring sends, as with the kernel: a one-frame sender makes that sync
# now, and with vB closed they all reach vB's stack; wait until that stops.
"$c" pipe-tx --port vA --count 1 --len 60 > /dev/null 2>&1 || exit 3
p0=-1; i=0; while :; do p1=$(cat /sys/class/net/vB/statistics/rx_packets); [ "$p1" = "$p0" ] && break; p0=$p1; i=$((i+1)); [ $i -gt 100 ] && break; sleep 0.2; done
timeout 60 "$c" pipe-rx --port vB --count 20000 --len 60 --ignore-foreign > "$t/rx" 2>&1 & rx=$!
sleep 0.5
timeout 60 "$c" pipe-tx --port vA --count 20000 --len 60 --burst 64 --rate 20000 > "$t/tx" 2>&1; txs=$?
wait $rx; rxs=$?
cat "$t/tx" "$t/rx"
"$d" status --keys | grep -E '^daemon_syncs=|^port=vA '
kill $h; wait $h 2>/dev/null
i=0
while :; do
  free > "$t/after"
  cmp -s "$t/before" "$t/after" && break
  i=$((i+1)); [ $i -gt 50 ] && break
  sleep 0.1
done
cmp -s "$t/before" "$t/after" || { echo "pool free counts not restored"; cat "$t/before" "$t/after"; exit 40; }
echo "fresh: pipe-tx exit=$txs pipe-rx exit=$rxs"
[ $txs -eq 0 ] && [ $rxs -eq 0 ]
"#;
    let out = veth_run(1, script, Duration::from_secs(300));
    assert_success(&out);
    assert!(out.stdout.contains("killed=30"), "{}", out.describe());
    assert!(
        out.stdout.contains("pipe-rx vB: received 20000 packets"),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout.contains("daemon_syncs=0\n"),
        "the port worker no longer serves vA's preloaded clients in process\n{}",
        out.describe()
    );
    assert_no_error_logged(&out);
}

/// Preloaded receivers that read vB's AF_XDP queue themselves, SIGKILLed mid-traffic
/// 30 times (many inside their sync, holding the ring's busy flag, some between
/// placing a frame and releasing its descriptor) while a sender streams and another
/// client holds the port: each time the next reader takes the queue over, or the
/// daemon, noticing the reader is gone, reads it again (at least after the last);
/// afterwards a fresh receiver gets a fresh sender's 20,000 frames,
/// intact and in order, reading the queue itself, and the pools are whole once
/// everyone is gone (no buffer lost in the held map, the rings or the kernel).
#[test]
fn xdp_readers_killed_mid_traffic() {
    readers_killed_mid_traffic("xdp");
}

/// As [`xdp_readers_killed_mid_traffic`], with readers copying from vB's AF_PACKET
/// TPACKET_V3 ring themselves (killed mid-copy, with a block half read): the next
/// reader or the daemon goes on from the position in the ring's state block.
#[test]
fn packet_readers_killed_mid_traffic() {
    readers_killed_mid_traffic("packet");
}

fn readers_killed_mid_traffic(backend: &str) {
    let script = r#"d="$1"; c="$2"; t=$(mktemp -d)
free() { "$d" status --keys | grep -E '^(if|ring|buf)_free=' | sort; }
free > "$t/before" || exit 1
"$c" hold --port vB > "$t/hold" 2>&1 & h=$!
i=0; until grep -q holding "$t/hold"; do i=$((i+1)); [ $i -gt 200 ] && exit 2; sleep 0.05; done
"$c" pipe-tx --port vA --duration 60 --len 60 --burst 64 --rate 200000 > /dev/null 2>&1 & p=$!
k=0; killed=0
while [ $k -lt 30 ]; do
  "$c" rx-count --port vB --idle-ms 60000 > "$t/rc" 2>&1 & r=$!
  sleep 0.$((1 + k % 3))
  kill -KILL $r && killed=$((killed + 1)); wait $r 2>/dev/null
  k=$((k+1))
done
echo "killed=$killed"
kill -KILL $p; wait $p 2>/dev/null
"$d" status --keys | grep '^port=vB '
sleep 0.5
# Frames of the killed stream still queued in the kernel's RX ring (it holds
# thousands) are drained first: read until 300 ms pass without one.
timeout 10 "$c" rx-count --port vB --idle-ms 300 > "$t/drain" 2>&1; cat "$t/drain"
timeout 60 "$c" pipe-rx --port vB --count 20000 --len 60 --ignore-foreign > "$t/rx" 2>&1 & rx=$!
sleep 0.5
timeout 60 "$c" pipe-tx --port vA --count 20000 --len 60 --burst 64 --rate 20000 > "$t/tx" 2>&1; txs=$?
wait $rx; rxs=$?
cat "$t/tx" "$t/rx"
"$d" status --keys | grep '^port=vB '
kill $h; wait $h 2>/dev/null
i=0
while :; do
  free > "$t/after"
  cmp -s "$t/before" "$t/after" && break
  i=$((i+1)); [ $i -gt 50 ] && break
  sleep 0.1
done
cmp -s "$t/before" "$t/after" || { echo "pool free counts not restored"; cat "$t/before" "$t/after"; exit 40; }
echo "fresh: pipe-tx exit=$txs pipe-rx exit=$rxs"
[ $txs -eq 0 ] && [ $rxs -eq 0 ]
"#;
    let out = veth_run_on(backend, 1, script, Duration::from_secs(300));
    assert_success(&out);
    assert!(out.stdout.contains("killed=30"), "{}", out.describe());
    assert!(
        out.stdout.contains("pipe-rx vB: received 20000 packets"),
        "{}",
        out.describe()
    );
    let gone = out
        .stderr
        .matches("the process reading a NIC queue itself is gone")
        .count();
    assert!(
        gone >= 1,
        "the daemon never noticed a dead reader\n{}",
        out.describe()
    );
    // The fresh receiver read the queue itself: the in-client count grew by nearly
    // its 20,000 frames between the two status lines (the port worker may move the
    // first few, before the receiver's first sync claims the queue).
    let counts: Vec<u64> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("port=vB "))
        .filter_map(|l| port_fields(l, "vB")?.get("rx_in_client")?.parse().ok())
        .collect();
    assert!(
        counts.len() == 2 && counts[1] >= counts[0] + 19_000,
        "rx_in_client {counts:?}\n{}",
        out.describe()
    );
}

/// One NIC port, two kinds of client at once: a preloaded sender (syncs in process,
/// the port worker transmits) with a receiver that is not preloaded (every sync through
/// the daemon), then the other way round; every frame arrives, in order and intact,
/// and the plain side's syncs do reach the daemon.
#[test]
fn preloaded_and_plain_clients_on_one_nic() {
    let script = r#"d="$1"; c="$2"; t=$(mktemp -d); n=20000
[ -n "${LD_PRELOAD:-}" ] || { echo "netmapd exec set no LD_PRELOAD"; exit 9; }
one() { tx_env=$1; rx_env=$2
  env $rx_env "$c" pipe-rx --port vB --count $n --len 60 --ignore-foreign > "$t/rx" 2>&1 & rx=$!
  sleep 0.5
  env $tx_env "$c" pipe-tx --port vA --count $n --len 60 --burst 64 --rate 20000 > "$t/tx" 2>&1; txs=$?
  wait $rx; rxs=$?
  cat "$t/tx" "$t/rx"
  "$d" status --keys | grep '^daemon_syncs='
  echo "tx[$tx_env] rx[$rx_env]: pipe-tx exit=$txs pipe-rx exit=$rxs"
  [ $txs -eq 0 ] && [ $rxs -eq 0 ]
}
one "LD_PRELOAD=$LD_PRELOAD" "-u LD_PRELOAD" || exit 1
one "-u LD_PRELOAD" "LD_PRELOAD=$LD_PRELOAD" || exit 2
"#;
    let out = veth_run(1, script, Duration::from_secs(180));
    assert_success(&out);
    assert_eq!(
        out.stdout
            .matches("pipe-rx vB: received 20000 packets")
            .count(),
        2,
        "{}",
        out.describe()
    );
    let syncs: Vec<u64> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("daemon_syncs=")?.parse().ok())
        .collect();
    assert!(
        syncs.len() == 2 && syncs[0] > 0 && syncs[1] > syncs[0],
        "the plain client's syncs must reach the daemon in both runs: {syncs:?}\n{}",
        out.describe()
    );
    assert_no_error_logged(&out);
}

/// A receiver served through the daemon (not preloaded) whose ring fills while it is
/// stopped: the port worker fills the ring, finds it full and leaves its stream mode,
/// and the rest waits in the kernel; after SIGCONT the receiver's polls hand the slots
/// back and get every frame, in order and intact. (While a stream comes in, a poll only
/// hands slots back and the worker brings the frames: `preloaded_and_plain_clients_on_
/// one_nic` covers that path, and fails when the release is left out of it.)
fn plain_receiver_stopped_on(backend: &str) {
    let script = r#"d="$1"; c="$2"; t=$(mktemp -d); n=5000
env -u LD_PRELOAD "$c" pipe-rx --port vB --count $n --max-len 1514 --ignore-foreign > "$t/rx" 2>&1 & rx=$!
sleep 1
kill -STOP $rx
"$c" pipe-tx --port vA --count $n --max-len 1514 --burst 64 --rate 50000 > "$t/tx" 2>&1; txs=$?
sleep 0.5
"$d" status --keys | grep '^port=vB '
kill -CONT $rx
wait $rx; rxs=$?
cat "$t/tx" "$t/rx"
"$d" status --keys | grep '^daemon_syncs='
echo "pipe-tx exit=$txs pipe-rx exit=$rxs"
[ $txs -eq 0 ] && [ $rxs -eq 0 ]
"#;
    let out = veth_run_on(backend, 1, script, Duration::from_secs(120));
    assert_success(&out);
    assert!(
        out.stdout.contains("pipe-rx vB: received 5000 packets"),
        "{}",
        out.describe()
    );
    // While the receiver was stopped the worker filled its ring (1024 slots), and the
    // rest waited in the kernel.
    let st = out
        .stdout
        .lines()
        .find(|l| l.starts_with("port=vB "))
        .unwrap_or_else(|| panic!("no port=vB line\n{}", out.describe()));
    let f = port_fields(st, "vB").expect("port=vB fields");
    let want = if backend == "xdp" { "1" } else { "0" };
    assert_eq!(f.get("xdp").map(String::as_str), Some(want), "{st}");
    assert_eq!(f.get("rx_drops").map(String::as_str), Some("0"), "{st}");
    assert_no_error_logged(&out);
}

#[test]
fn plain_receiver_stopped_while_its_ring_fills() {
    plain_receiver_stopped_on("xdp");
}

#[test]
fn plain_receiver_stopped_while_its_ring_fills_packet() {
    plain_receiver_stopped_on("packet");
}

/// Runs the stack-visibility scenario with `backend` (vB moved to a namespace of its
/// own): 100 UDP datagrams vB→vA reach a UDP socket of vA's stack before anyone
/// registers vA; 100 more sent while a netmap
/// client holds vA (counting frames); 100 more after it closed. Returns the output.
fn stack_visibility(backend: &str) -> Output {
    let script = r#"d="$1"; c="$2"; t=$(mktemp -d)
# vB goes to a namespace of its own, so that datagrams to vA's address cross the wire
# (with both ends in one namespace the kernel would deliver them locally).
mb=$(cat /sys/class/net/vB/address); ma=$(cat /sys/class/net/vA/address)
n=nmpeer$$; trap "ip netns del $n 2>/dev/null" EXIT
ip netns add $n && ip link set vB netns $n || exit 2
P="ip netns exec $n"
ip addr add 10.9.0.1/24 dev vA && $P ip addr add 10.9.0.2/24 dev vB && $P ip link set vB up || exit 3
$P ip neigh replace 10.9.0.1 lladdr "$ma" dev vB nud permanent || exit 4
ip neigh replace 10.9.0.2 lladdr "$mb" dev vA nud permanent || exit 4
phase() {
  "$c" udp-count --bind 10.9.0.1:9000 --ms 1500 > "$t/u" 2>&1 & u=$!
  i=0; until grep -q "udp-count ready" "$t/u"; do i=$((i+1)); [ $i -gt 200 ] && exit 5; sleep 0.05; done
  $P "$c" udp-send --to 10.9.0.1:9000 --count 100 || exit 6
  wait $u; echo "stack $1: $(sed -n 's/.*received //p' "$t/u")"
}
phase before
"$c" rx-count --port vA --idle-ms 4000 > "$t/rc" 2>&1 & r=$!
i=0; until grep -q "rx-count ready" "$t/rc"; do i=$((i+1)); [ $i -gt 200 ] && exit 7; sleep 0.05; done
"$d" status --keys | grep '^port=vA '
phase during
wait $r; echo "netmap during: $(sed -n 's/.*frames=\([0-9]*\).*/\1/p' "$t/rc")"
phase after
"#;
    let out = veth_run_on(backend, 1, script, Duration::from_secs(120));
    assert_success(&out);
    out
}

/// The number after `prefix` on its line of `out`'s stdout.
fn count_after(out: &Output, prefix: &str) -> u64 {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix:?} line\n{}", out.describe()))
}

/// AF_XDP takes the interface's frames from the stack, as a NIC in netmap mode: while
/// vA is registered, datagrams sent to it reach the netmap client and not a UDP
/// socket of vA's stack; before and after, the stack gets them all.
#[test]
fn xdp_takes_frames_from_the_stack_while_registered() {
    let out = stack_visibility("xdp");
    println!("{}", out.stdout);
    assert!(
        out.stdout.contains(" xdp=1"),
        "vA not on AF_XDP\n{}",
        out.describe()
    );
    assert_eq!(
        count_after(&out, "stack before: "),
        100,
        "{}",
        out.describe()
    );
    assert_eq!(count_after(&out, "stack during: "), 0, "{}", out.describe());
    assert!(
        count_after(&out, "netmap during: ") >= 100,
        "the netmap client missed datagrams\n{}",
        out.describe()
    );
    assert_eq!(
        count_after(&out, "stack after: "),
        100,
        "{}",
        out.describe()
    );
}

/// The AF_PACKET backend only taps the interface: the stack keeps getting every
/// datagram while the netmap client sees them too (the README says so).
#[test]
fn packet_backend_leaves_frames_to_the_stack() {
    let out = stack_visibility("packet");
    assert!(
        out.stdout.contains(" xdp=0"),
        "vA not on AF_PACKET\n{}",
        out.describe()
    );
    for phase in ["before", "during", "after"] {
        assert_eq!(
            count_after(&out, &format!("stack {phase}: ")),
            100,
            "{}",
            out.describe()
        );
    }
    assert!(
        count_after(&out, "netmap during: ") >= 100,
        "{}",
        out.describe()
    );
}

/// AF_XDP ring i is queue i: on a 4-queue veth, 40,000 frames over 256 flows arrive
/// spread over vA's 4 RX rings, and each ring's count equals what the kernel redirected
/// from queue i (veth's per-queue `rx_queue_i_xdp_redirect`, read with ethtool).
#[test]
fn xdp_rings_are_the_interface_queues() {
    let script = r#"d="$1"; c="$2"; t=$(mktemp -d)
command -v ethtool >/dev/null || { echo "ethtool missing (apt-get install -y ethtool)"; exit 9; }
"$c" mq-rx --if vA --count 40000 --spread > "$t/rx" 2>&1 & rx=$!
i=0; until grep -q 'mq-rx ready' "$t/rx"; do i=$((i+1)); [ $i -gt 200 ] && { cat "$t/rx"; exit 2; }; sleep 0.05; done
"$c" flows-tx --if vB --count 40000 --flows 256 --rate 50000 || exit 3
ethtool -S vA > "$t/eth"
wait $rx; rxs=$?
cat "$t/rx"
for q in 0 1 2 3; do echo "queue $q: $(sed -n "s/^ *rx_queue_${q}_xdp_redirect: *//p" "$t/eth")"; done
[ $rxs -eq 0 ] || exit 4
"#;
    let out = veth_run_on("xdp", 4, script, Duration::from_secs(120));
    assert_success(&out);
    println!("{}", out.stdout);
    let rings: Vec<u64> = out
        .stdout
        .lines()
        .find_map(|l| l.split("ring_counts=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    assert_eq!(rings.len(), 4, "no ring counts\n{}", out.describe());
    for (q, &n) in rings.iter().enumerate() {
        let redirected = count_after(&out, &format!("queue {q}: "));
        assert_eq!(
            n,
            redirected,
            "ring {q} got {n} frames but queue {q} redirected {redirected}\n{}",
            out.describe()
        );
    }
}

/// An interface whose queue another program already holds through AF_XDP (here a
/// second netmapd with `--nic-backend xdp`): a daemon with `--nic-backend xdp` fails
/// the REGISTER with EBUSY and says why; one with `auto` falls back to AF_PACKET,
/// with a warning naming the cause, and the port works.
#[test]
fn xdp_queue_held_by_another_program() {
    require_tools();
    let script = r#"set -u
mount -t sysfs sysfs /sys || exit 90
ip link add vA type veth peer name vB && ip link set vA up && ip link set vB up || exit 92
d="$1"; c="$2"; t=$(mktemp -d)
"$d" exec --nic-backend xdp -- "$c" hold --port vA > "$t/other" 2>&1 & o=$!
i=0; until grep -q holding "$t/other"; do i=$((i+1)); [ $i -gt 200 ] && { cat "$t/other"; exit 3; }; sleep 0.05; done
"$d" exec --nic-backend xdp -- "$c" hold --port vA > "$t/xdp" 2>&1; echo "xdp-only exit=$?"
cat "$t/xdp"
"$d" exec -- sh -c '"$2" hold --port vA > "$3/mine" 2>&1 & m=$!
  i=0; until grep -q holding "$3/mine"; do i=$((i+1)); [ $i -gt 200 ] && { cat "$3/mine"; exit 4; }; sleep 0.05; done
  "$1" status --keys | grep "^port=vA "; kill $m; wait $m 2>/dev/null; exit 0' sh "$d" "$c" "$t"; echo "auto exit=$?"
pkill -9 -P $o; kill -9 $o 2>/dev/null; wait $o 2>/dev/null
exit 0
"#;
    let mut cmd = Command::new("unshare");
    cmd.args(["-n", "-m", "sh", "-c", script, "sh"])
        .arg(netmapd_bin())
        .arg(NM_CLIENT);
    let out = run(cmd, Duration::from_secs(120));
    assert_success(&out);
    println!("{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("xdp-only exit=1")
            && out.stdout.contains("Device or resource busy")
            && out.stdout.contains("another program holds"),
        "the xdp-only daemon did not fail with EBUSY and a reason\n{}",
        out.describe()
    );
    assert!(
        out.stdout.contains("auto exit=0") && out.stdout.contains(" xdp=0 "),
        "the auto daemon did not fall back to AF_PACKET\n{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("using AF_PACKET"),
        "no fallback warning\n{}",
        out.describe()
    );
}

/// ONE_NIC ring *i* through AF_XDP is queue *i*: on a 4-queue veth, four clients each
/// register one ring alone (ONE_NIC 0..3); 40,000 frames over 256 flows are sent on
/// vB; each client's count equals what the kernel redirected from its queue (veth's
/// `rx_queue_i_xdp_redirect`), and together they got every frame.
#[test]
fn xdp_one_nic_ring_is_its_queue() {
    let script = r#"d="$1"; c="$2"; t=$(mktemp -d)
command -v ethtool >/dev/null || { echo "ethtool missing (apt-get install -y ethtool)"; exit 9; }
for q in 0 1 2 3; do
  "$c" one-nic-rx --if vA --ring $q --idle-ms 1500 > "$t/r$q" 2>&1 &
  eval p$q=\$!
  i=0; until grep -q 'one-nic-rx ready' "$t/r$q"; do i=$((i+1)); [ $i -gt 200 ] && { cat "$t/r$q"; exit 2; }; sleep 0.05; done
done
"$c" flows-tx --if vB --count 40000 --flows 256 --rate 50000 || exit 3
wait $p0 $p1 $p2 $p3
ethtool -S vA > "$t/eth"
for q in 0 1 2 3; do cat "$t/r$q"; echo "queue $q: $(sed -n "s/^ *rx_queue_${q}_xdp_redirect: *//p" "$t/eth")"; done
"#;
    let out = veth_run_on("xdp", 4, script, Duration::from_secs(120));
    assert_success(&out);
    println!("{}", out.stdout);
    let mut total = 0;
    for q in 0..4 {
        let got = count_after(&out, &format!("one-nic-rx vA ring={q} frames="));
        let redirected = count_after(&out, &format!("queue {q}: "));
        assert_eq!(
            got,
            redirected,
            "ONE_NIC ring {q} got {got} frames but queue {q} redirected {redirected}\n{}",
            out.describe()
        );
        assert!(got > 0, "ring {q} received nothing\n{}", out.describe());
        total += got;
    }
    assert_eq!(total, 40_000, "{}", out.describe());
}
