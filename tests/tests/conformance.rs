//! The C ABI conformance suite (`conformance/`), built with make/gcc against the
//! compat headers and run by `conformance/run.sh` against a fresh netmapd
//! (`netmapd exec`). Needs root, /dev/fuse, gcc and make; nothing is skipped.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use netmapd_tests::harness::{assert_success, netmapd_bin, netmapd_exec, repo_root, run};

const SUITE_TIMEOUT: Duration = Duration::from_secs(600);

/// `make -C <repo>/conformance`, once per test binary; fails loudly if gcc or make
/// is missing.
fn build_suite() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            for tool in ["make", "gcc"] {
                let ok = Command::new(tool)
                    .arg("--version")
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false);
                assert!(
                    ok,
                    "\n\n*** `{tool}` is missing: the conformance suite is C, built with \
                     make + gcc. Install them (e.g. apt-get install build-essential). \
                     NOT skipping. ***\n"
                );
            }
            let dir = repo_root().join("conformance");
            let mut cmd = Command::new("make");
            cmd.arg("-C").arg(&dir);
            let out = run(cmd, Duration::from_secs(300));
            assert_success(&out);
            dir.join("run.sh")
        })
        .clone()
}

#[test]
fn conformance_suite() {
    let runner = build_suite();
    let out = netmapd_exec([runner.as_os_str()], SUITE_TIMEOUT);
    println!("{}", out.stdout);
    assert_success(&out);
    assert!(
        out.stdout.contains(" passed, 0 failed"),
        "no summary line:\n{}",
        out.describe()
    );
}

/// The suite once more with every sync and poll through the daemon (the default run
/// above is preloaded).
#[test]
fn conformance_suite_not_preloaded() {
    let runner = build_suite();
    let out = netmapd_tests::harness::netmapd_exec_no_preload([runner.as_os_str()], SUITE_TIMEOUT);
    println!("{}", out.stdout);
    assert_success(&out);
    assert!(
        out.stdout.contains(" passed, 0 failed"),
        "no summary line:\n{}",
        out.describe()
    );
}

#[test]
fn conformance_suite_with_veth() {
    conformance_with_veth("xdp");
}

/// The NIC checks once more through the AF_PACKET backend.
#[test]
fn conformance_suite_with_veth_packet() {
    conformance_with_veth("packet");
}

fn conformance_with_veth(backend: &str) {
    let runner = build_suite();
    let script = format!(
        "ip link add cA type veth peer name cB && ip link set cA up && ip link set cB up && \
         sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && {} --nic cA --peer cB",
        runner.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.arg("-n").arg(netmapd_bin()).args([
        "exec",
        "--nic-backend",
        backend,
        "--",
        "sh",
        "-c",
        &script,
    ]);
    netmapd_tests::harness::require_privileges();
    let out = run(cmd, SUITE_TIMEOUT);
    println!("{}", out.stdout);
    assert_success(&out);
    assert!(
        !out.stdout.contains("NOT RUN"),
        "some checks were not run although --nic/--peer were given:\n{}",
        out.describe()
    );
}

/// A close is handled before the next control request of its process, as with a
/// kernel device, even when the FUSE worker that read the RELEASE is preempted: the
/// pipes program (which closes both ends of a pipe and registers it again, expecting a
/// fresh pair) 400 times with both CPUs kept busy. Before the front end ordered them,
/// 1 to 13 runs in 200 found the old pipe under such load.
#[test]
fn close_is_handled_before_the_next_register_under_load() {
    build_suite();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hogs: Vec<_> = (0..3)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let prog = repo_root().join("conformance/build/pipes");
    let script = format!(
        "fails=0; for i in $(seq 400); do out=$({} 2>&1); rc=$?; \
         if [ $rc != 0 ] || echo \"$out\" | grep -a FAIL; then fails=$((fails+1)); fi; \
         done; echo fails=$fails; [ $fails = 0 ]",
        prog.display()
    );
    let out = netmapd_tests::harness::netmapd_exec_no_preload(
        ["sh", "-c", &script],
        Duration::from_secs(300),
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in hogs {
        h.join().expect("hog thread");
    }
    println!("{}", out.stdout);
    assert_success(&out);
}
