//! End-to-end tests: every scenario runs `netmapd exec -- <client…>` against a fresh
//! daemon in a private mount namespace and must exit 0.
//!
//! Needs root and /dev/fuse, and `netmapd` built in the same profile
//! (`cargo build --release -p netmapd`, or NETMAPD_BIN=…). Missing privileges fail
//! the tests loudly instead of skipping them.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use netmapd_tests::harness::{
    assert_success, netmapd_bin, netmapd_exec, netmapd_exec_no_preload, run,
};

const NM_CLIENT: &str = env!("CARGO_BIN_EXE_nm-client");

/// Per-case limit: each errno case is a handful of ioctls.
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

fn errno_case(name: &str) {
    let out = netmapd_exec([NM_CLIENT, "errno", name], CASE_TIMEOUT);
    assert_success(&out);
}

fn errno_case_no_preload(name: &str) {
    let out = netmapd_exec_no_preload([NM_CLIENT, "errno", name], CASE_TIMEOUT);
    assert_success(&out);
}

macro_rules! errno_tests {
    ($($name:ident),* $(,)?) => {
        /// One test per `nm-client errno` case, so a failure names the exact case
        /// (run preloaded, as `netmapd exec` runs programs by default).
        mod errno {
            $(
                #[test]
                fn $name() {
                    super::errno_case(stringify!($name));
                }
            )*
        }
        /// The same cases with every sync and poll through the daemon.
        mod errno_not_preloaded {
            $(
                #[test]
                fn $name() {
                    super::errno_case_no_preload(stringify!($name));
                }
            )*
        }
        const ERRNO_CASES: &[&str] = &[$(stringify!($name)),*];
    };
}

errno_tests! {
    version_13,
    version_16,
    reserved_nonzero,
    register_null_body,
    body_on_no_body_type,
    unknown_reqtype,
    bad_body_pointer,
    unsupported_option,
    infinite_options,
    infinite_options_offsets,
    option_reqtype_zero,
    options_overflow_eventfds,
    bad_option_pointer,
    register_twice,
    mode_default,
    mode_pipe_master,
    mode_pipe_slave,
    mode_99,
    pipe_nic_sw,
    pipe_empty_id,
    one_nic_out_of_range,
    exclusive_after_shared,
    shared_after_exclusive,
    null_mem_id_0,
    null_unknown_mem_id,
    unknown_interface,
    pools_info_empty_name,
    port_info_empty_name,
    port_info_unknown_mem_id,
    port_info_pipe,
    pools_info_pipe,
    legacy_version_13,
    legacy_version_16,
    legacy_extra_bufs,
    legacy_pipe_master_mode,
    legacy_ginfo,
    txsync_unregistered,
    rxsync_unregistered,
    unknown_ioctl,
    nioconfig,
    poll_unregistered,
    tx_head_beyond_tail_sync,
    tx_head_beyond_tail_poll,
    tx_head_out_of_range_sync,
    tx_head_out_of_range_poll,
    rx_head_beyond_tail_poll,
    rx_head_out_of_range_sync,
    register_pipe_defaults,
    two_fds_distinct_offsets,
    shared_mapping,
    tx_rings_only,
    rx_rings_only,
    extra_bufs,
    null_port,
    null_port_all_zero,
    null_port_sync,
    pipe_transfer_basic,
}

/// The macro list above and the client's own list must agree, or a case would
/// silently never run. Needs no daemon and no root.
#[test]
fn errno_case_list_matches_client() {
    let out = run(
        {
            let mut c = Command::new(NM_CLIENT);
            c.args(["errno", "--list"]);
            c
        },
        Duration::from_secs(10),
    );
    assert_success(&out);
    let client: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        client, ERRNO_CASES,
        "update errno_tests! in tests/tests/e2e.rs to match `nm-client errno --list`"
    );
}

/// Guards every other test: if `netmapd exec` did not pass the child's exit status
/// through, all of them would pass vacuously.
#[test]
fn exec_propagates_exit_status() {
    let out = netmapd_exec(
        ["sh", "-c", "test -e /dev/netmap || exit 9; exit 3"],
        CASE_TIMEOUT,
    );
    assert!(
        !out.timed_out && out.status.code() == Some(3),
        "expected exit status 3 from the child (9 = /dev/netmap missing)\n{}",
        out.describe()
    );
}

/// Parses `key=value` lines (the `netmapd status` format).
fn parse_status(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

const STATUS_KEYS: &[&str] = &[
    "if_free",
    "ring_free",
    "buf_free",
    "if_total",
    "ring_total",
    "buf_total",
    "backing",
    "clients",
];

#[test]
fn status_reports_pools() {
    let netmapd = netmapd_bin();
    let out = netmapd_exec(
        [netmapd.as_os_str(), "status".as_ref(), "--keys".as_ref()],
        CASE_TIMEOUT,
    );
    assert_success(&out);
    let st = parse_status(&out.stdout);
    for k in STATUS_KEYS {
        assert!(
            st.contains_key(*k),
            "`netmapd status` lacks {k}=\n{}",
            out.describe()
        );
    }
    // §7.2 default global allocator.
    assert_eq!(st["if_total"], "100", "{}", out.describe());
    assert_eq!(st["ring_total"], "200", "{}", out.describe());
    assert_eq!(st["buf_total"], "163840", "{}", out.describe());
}

/// `netmapd status` after traffic through a VALE switch: the JSON parsed, the table's
/// columns and row, and two `--watch` snapshots with rate columns.
#[test]
fn status_table_json_and_watch_after_traffic() {
    let script = r#"d="$1"; c="$2"
"$c" rx-count --port vale9:b --idle-ms 3000 > /dev/null & rx=$!
i=0; until "$d" status --keys | grep -q '^port=vale9:b '; do i=$((i+1)); [ $i -gt 200 ] && exit 3; sleep 0.02; done
"$c" pipe-tx --port vale9:a --count 1000 > /dev/null || exit 4
"$c" rx-count --port 'sp}0' --idle-ms 3000 > /dev/null & prx=$!
i=0; until "$d" status --keys | grep -q '^port=sp}0 '; do i=$((i+1)); [ $i -gt 200 ] && exit 8; sleep 0.02; done
"$c" pipe-tx --port 'sp{0' --count 500 > /dev/null || exit 9
echo "=== json"; "$d" status --json || exit 5
echo "=== table"; "$d" status || exit 6
echo "=== watch"; "$d" status --watch --count 2 || exit 7
echo "=== end"
kill $rx $prx; wait $rx $prx 2>/dev/null; exit 0"#;
    let d = netmapd_bin();
    let out = netmapd_exec(
        ["sh", "-c", script, "sh", &d.to_string_lossy(), NM_CLIENT],
        CASE_TIMEOUT,
    );
    assert_success(&out);
    let part = |a: &str, b: &str| -> String {
        let s = out.stdout.split(a).nth(1).unwrap_or_default();
        s.split(b).next().unwrap_or_default().to_string()
    };
    let v: serde_json::Value = serde_json::from_str(part("=== json\n", "=== table").trim())
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e}):\n{}", out.describe()));
    assert_eq!(v["pools"]["buf"]["total"], 163840, "{v}");
    assert_eq!(v["pools"]["if"]["total"], 100, "{v}");
    let ports = v["ports"].as_array().expect("ports array");
    let b = ports
        .iter()
        .find(|p| p["name"] == "vale9:b")
        .unwrap_or_else(|| panic!("no vale9:b in {v}"));
    assert_eq!(b["kind"], "Vale");
    assert_eq!(b["users"], 1);
    assert_eq!(b["counters"]["rx_packets"], 1000, "{v}");
    assert_eq!(b["counters"]["rx_drops"], 0, "{v}");
    // A pipe counts what each end's TX rings handed over, whoever ran the sync (here
    // the preloaded clients): the slave received what the master sent.
    let slave = ports
        .iter()
        .find(|p| p["name"] == "sp}0")
        .unwrap_or_else(|| panic!("no sp}}0 in {v}"));
    assert_eq!(slave["kind"], "Pipe");
    assert_eq!(slave["counters"]["rx_packets"], 500, "{v}");
    assert_eq!(slave["counters"]["tx_packets"], 0, "{v}");
    let table = part("=== table\n", "=== watch");
    let head = table
        .lines()
        .find(|l| l.starts_with("PORT"))
        .unwrap_or_else(|| panic!("no header:\n{table}"));
    let cols: Vec<&str> = head
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cols,
        ["PORT", "KIND", "USERS", "TX RINGS", "RX RINGS", "TX PKTS", "RX PKTS", "DROPS"],
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("vale9:b "))
        .unwrap_or_else(|| panic!("no vale9:b row:\n{table}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        ["vale9:b", "Vale", "1", "1x1024", "1x1024", "0", "1000", "0"],
        "{table}"
    );
    for pool in ["if", "ring", "buf"] {
        assert!(
            table
                .lines()
                .any(|l| l.split_whitespace().next() == Some(pool)),
            "no {pool} pool line:\n{table}"
        );
    }
    let watch = part("=== watch\n", "=== end");
    let heads: Vec<&str> = watch.lines().filter(|l| l.starts_with("PORT")).collect();
    assert_eq!(heads.len(), 2, "two snapshots expected:\n{watch}");
    assert!(
        heads
            .iter()
            .all(|h| h.contains("TX PPS") && h.contains("RX PPS")),
        "{watch}"
    );
    let last = watch
        .lines()
        .rfind(|l| l.starts_with("vale9:b "))
        .unwrap_or_default();
    let f: Vec<&str> = last.split_whitespace().collect();
    assert_eq!(f.len(), 10, "{watch}");
    assert_eq!(
        &f[8..],
        ["0", "0"],
        "no traffic during the watch: rates 0\n{watch}"
    );
}

/// Which ends of a pipe stream run with the preload library (in-process syncs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Preload {
    Both,
    Neither,
    SenderOnly,
    ReceiverOnly,
}

/// Runs a sender and a receiver as two processes on the two ends of one pipe and
/// checks both exit statuses, and where the syncs ran: `daemon_syncs` in `netmapd
/// status` counts the sync ioctls and polls the daemon served.
fn pipe_stream_with(count: u64, extra: &str, timeout: Duration, preload: Preload) {
    let (tx_env, rx_env) = match preload {
        Preload::Both | Preload::Neither => ("", ""),
        Preload::SenderOnly => ("LD_PRELOAD=$lib", ""),
        Preload::ReceiverOnly => ("", "LD_PRELOAD=$lib"),
    };
    let script = format!(
        r#"d="$1"; c="$2"; lib=$("$d" preload-path) || exit 9
env {rx_env} "$c" pipe-rx --port 'pp}}0' --count {count} {extra} & rx=$!
env {tx_env} "$c" pipe-tx --port 'pp{{0' --count {count} {extra} & tx=$!
wait "$tx"; txs=$?
wait "$rx"; rxs=$?
echo "pipe-tx exit=$txs pipe-rx exit=$rxs"
"$d" status --keys | grep '^daemon_syncs='
[ "$txs" -eq 0 ] && [ "$rxs" -eq 0 ]"#
    );
    let d = netmapd_bin();
    let args = ["sh", "-c", &script, "sh", &d.to_string_lossy(), NM_CLIENT];
    let out = if preload == Preload::Both {
        netmapd_exec(args, timeout)
    } else {
        netmapd_exec_no_preload(args, timeout)
    };
    assert_success(&out);
    assert!(
        out.stdout.contains(&format!("sent {count} packets"))
            && out.stdout.contains(&format!("received {count} packets")),
        "missing sender/receiver summary\n{}",
        out.describe()
    );
    let syncs: u64 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("daemon_syncs=")?.parse().ok())
        .unwrap_or_else(|| panic!("no daemon_syncs in status\n{}", out.describe()));
    // A burst is at most 512 packets: a side on the kernel path costs the daemon at
    // least one sync per burst, a preloaded side none (it may kick the daemon when
    // its peer sleeps in the kernel, at most once per sync of that peer).
    let per_side = count / 512;
    match preload {
        Preload::Both => assert!(
            syncs < 100,
            "preloaded on both ends, yet the daemon served {syncs} syncs\n{}",
            out.describe()
        ),
        _ => assert!(
            syncs >= per_side,
            "{preload:?}: the daemon served only {syncs} syncs for {count} packets\n{}",
            out.describe()
        ),
    }
    println!("{preload:?}: daemon_syncs={syncs}\n{}", out.stdout);
}

fn pipe_stream(count: u64, extra: &str, timeout: Duration) {
    pipe_stream_with(count, extra, timeout, Preload::Both);
}

/// Quick streaming smoke test: 100k minimum-size packets in small bursts.
#[test]
fn pipe_100k_small_packets() {
    pipe_stream(100_000, "--len 60 --burst 64", Duration::from_secs(120));
}

/// 10 million packets of varying length (60..2048) over "pp{0" -> "pp}0": no loss,
/// no reordering, no corruption; both ends preloaded (syncs in the clients).
#[test]
fn pipe_10m_packets() {
    pipe_stream(10_000_000, "", Duration::from_secs(900));
}

/// The same through the daemon only (what static or unpreloaded programs get).
#[test]
fn pipe_10m_packets_not_preloaded() {
    pipe_stream_with(10_000_000, "", Duration::from_secs(900), Preload::Neither);
}

/// A preloaded sender and a receiver on the kernel path share the pipe's state.
#[test]
fn pipe_10m_packets_preloaded_sender_kernel_receiver() {
    pipe_stream_with(
        10_000_000,
        "",
        Duration::from_secs(900),
        Preload::SenderOnly,
    );
}

/// The reverse: a sender on the kernel path, a preloaded receiver.
#[test]
fn pipe_10m_packets_kernel_sender_preloaded_receiver() {
    pipe_stream_with(
        10_000_000,
        "",
        Duration::from_secs(900),
        Preload::ReceiverOnly,
    );
}

/// A client killed with SIGKILL while holding rings, buffers, extra buffers and
/// netmap_ifs must give all of them back to the pools.
#[test]
fn kill_client_restores_pool() {
    let script = r#"d="$1"; c="$2"
t=$(mktemp -d) || exit 5
snap() { "$d" status --keys > "$1" || { echo "netmapd status failed" >&2; exit 3; }; }
free() { grep -E '^(if|ring|buf)_free=' "$1"; }
snap "$t/before"
"$c" pipe-kill-victim --port 'kv{0' > "$t/victim" 2>&1 & v=$!
i=0
while ! grep -q 'victim ready' "$t/victim"; do
  i=$((i+1))
  if [ $i -gt 400 ] || ! kill -0 "$v" 2>/dev/null; then
    echo "victim did not get ready:"; cat "$t/victim"; kill -9 "$v" 2>/dev/null; exit 4
  fi
  sleep 0.05
done
cat "$t/victim"
sleep 0.5
snap "$t/during"
kill -9 "$v"; wait "$v" 2>/dev/null
sleep 0.2
free "$t/before" > "$t/bf"
i=0
while :; do
  snap "$t/after"; free "$t/after" > "$t/af"
  cmp -s "$t/bf" "$t/af" && break
  i=$((i+1)); [ $i -gt 50 ] && break
  sleep 0.1
done
for s in before during after; do echo "=== $s"; cat "$t/$s"; done
echo "=== end"
rm -rf "$t""#;
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
        Duration::from_secs(120),
    );
    assert_success(&out);
    let section = |name: &str| {
        let start = format!("=== {name}\n");
        let s = out
            .stdout
            .split_once(&start)
            .unwrap_or_else(|| panic!("no {start:?} in output\n{}", out.describe()))
            .1;
        parse_status(s.split("\n===").next().unwrap_or(""))
    };
    let (before, during, after) = (section("before"), section("during"), section("after"));
    let num = |m: &BTreeMap<String, String>, k: &str| -> u64 {
        m.get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("status lacks numeric {k}\n{}", out.describe()))
    };
    for k in ["if_free", "ring_free", "buf_free"] {
        assert!(
            num(&during, k) < num(&before, k),
            "{k} did not drop while the victim held its ports (so the test proves nothing)\n{}",
            out.describe()
        );
        assert_eq!(
            num(&after, k),
            num(&before, k),
            "{k} not restored after SIGKILL of the client\n{}",
            out.describe()
        );
    }
}

/// The latency benchmark's ping-pong (bench/run.sh) works over a pipe and over VALE:
/// every frame comes back with its own sequence number, one at a time. It prints
/// figures; nothing about speed is judged here.
#[test]
fn ping_pong_over_a_pipe_and_vale() {
    let script = r#"set -e
"$1" bench-latency --iters 500
"$1" bench-latency --iters 500 --port vale3:ping --peer vale3:pong
"#;
    let out = netmapd_exec(
        ["sh", "-c", script, "sh", NM_CLIENT],
        Duration::from_secs(120),
    );
    assert_success(&out);
    for want in [
        "bench-latency port=lat{0 peer=lat}0 iters=500 median_us=",
        "bench-latency port=vale3:ping peer=vale3:pong iters=500 median_us=",
    ] {
        assert!(
            out.stdout.contains(want),
            "missing {want:?}\n{}",
            out.describe()
        );
    }
}
