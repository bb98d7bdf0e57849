//! Daemon lifecycle in a private mount namespace (`unshare -m`, private tmpfs `/dev`):
//! SIGTERM unmounts and removes everything the daemon created; after SIGKILL the dead
//! mount makes clients fail fast (no hang), and the next daemon recovers the path at
//! once without a manual unmount.

use std::process::Command;
use std::time::Duration;

use netmapd_tests::harness::{assert_success, netmapd_bin, require_privileges, run};

const NM_CLIENT: &str = env!("CARGO_BIN_EXE_nm-client");

fn in_private_ns(script: &str) -> netmapd_tests::harness::Output {
    netmapd_tests::harness::in_private_ns(script, NM_CLIENT)
}

#[test]
fn sigterm_unmounts_and_leaves_nothing() {
    let out = in_private_ns(
        r#"
"$d" & p=$!
wait_mounted || exit 1
"$c" errno register_pipe_defaults || { echo "client failed against a live daemon"; exit 2; }
kill -TERM $p; wait $p; st=$?
[ $st -eq 0 ] || { echo "daemon exit status $st after SIGTERM"; exit 3; }
mounted && { echo "mount left behind"; exit 4; }
[ -e /dev/netmap ] && { echo "/dev/netmap left behind"; exit 5; }
[ -e /dev/.st.sock ] && { echo "status socket left behind"; exit 6; }
echo clean
"#,
    );
    assert_success(&out);
    assert!(out.stdout.contains("clean"), "{}", out.describe());
}

#[test]
fn sigkill_then_restart_recovers() {
    let out = in_private_ns(
        r#"
"$d" & p=$!
wait_mounted || exit 1
kill -KILL $p; wait $p 2>/dev/null
mounted || { echo "expected the dead mount to remain after SIGKILL"; exit 2; }
# A client of the dead mount must get an error quickly, not hang.
timeout 10 "$c" errno register_pipe_defaults >/dev/null 2>&1; st=$?
[ $st -eq 124 ] && { echo "client hung on the dead mount"; exit 3; }
[ $st -eq 0 ] && { echo "client succeeded on a dead mount?"; exit 4; }
"$d" & p=$!
wait_mounted || exit 5
n=$(grep -c ' /dev/netmap .* - fuse' /proc/self/mountinfo)
[ "$n" -eq 1 ] || { echo "expected exactly one mount, found $n"; exit 6; }
"$c" errno register_pipe_defaults || { echo "client failed after recovery"; exit 7; }
kill -TERM $p; wait $p
echo recovered
"#,
    );
    assert_success(&out);
    assert!(out.stdout.contains("recovered"), "{}", out.describe());
}

/// `--frontend auto` on this machine (Linux with FUSE passthrough) serves through FUSE.
#[test]
fn frontend_auto_picks_fuse_here() {
    let mut cmd = Command::new(netmapd_bin());
    cmd.args(["exec", "--frontend", "auto", "--", "true"]);
    require_privileges();
    let out = run(cmd, Duration::from_secs(60));
    assert_success(&out);
    assert!(
        out.stderr.contains("frontend=\"fuse\""),
        "expected the FUSE front end to be picked\n{}",
        out.describe()
    );
}
