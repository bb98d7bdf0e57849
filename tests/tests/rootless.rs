//! The rootless (preload) front end end to end: `netmapd exec` run by an unprivileged
//! user (`setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all`) in a
//! private `/dev` holding no `fuse` or `cuse` node, and inside a user namespace where
//! mounts are refused. No kernel device exists: the preload library connects the
//! program's `open("/dev/netmap")` to the daemon's socket.
//!
//! The test process itself needs root (to build the private `/dev` and to drop to
//! nobody) and util-linux's `setpriv` and `unshare`; it fails loudly without them.
//! Binaries are copied to a world-readable directory first, since the checkout may
//! live where nobody cannot read (e.g. under /root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use netmapd_tests::harness::{
    assert_success, netmapd_bin, repo_root, require_privileges, run, Output,
};

const NM_CLIENT: &str = env!("CARGO_BIN_EXE_nm-client");

/// A world-readable copy of netmapd, the preload library, nm-client and the built C
/// conformance suite.
fn kit() -> &'static Path {
    static KIT: OnceLock<PathBuf> = OnceLock::new();
    KIT.get_or_init(|| {
        require_privileges();
        for tool in ["setpriv", "unshare", "make", "gcc"] {
            let ok = Command::new(tool)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                ok,
                "\n\n*** `{tool}` is missing (util-linux / build-essential). NOT skipping. ***\n"
            );
        }
        let mut mk = Command::new("make");
        mk.arg("-C").arg(repo_root().join("conformance"));
        assert_success(&run(mk, Duration::from_secs(300)));
        let tmp = std::env::temp_dir();
        // Kits of earlier runs whose process is gone.
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("netmapd-rootless-kit-") {
                    if !Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let dir = tmp.join(format!("netmapd-rootless-kit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conformance")).expect("kit dir");
        let d = netmapd_bin();
        let lib = d.with_file_name("libnetmapd_preload.so");
        let copies: Vec<(PathBuf, PathBuf)> = vec![
            (d.clone(), dir.join("netmapd")),
            (lib, dir.join("libnetmapd_preload.so")),
            (NM_CLIENT.into(), dir.join("nm-client")),
            (
                repo_root().join("conformance/run.sh"),
                dir.join("conformance/run.sh"),
            ),
        ];
        for (from, to) in copies {
            std::fs::copy(&from, &to)
                .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
        }
        let mut cp = Command::new("cp");
        cp.arg("-r")
            .arg(repo_root().join("conformance/build"))
            .arg(dir.join("conformance/build"));
        assert_success(&run(cp, Duration::from_secs(30)));
        let mut ch = Command::new("chmod");
        ch.args(["-R", "a+rX"]).arg(&dir);
        assert_success(&run(ch, Duration::from_secs(30)));
        dir
    })
}

/// `unshare -m sh -c SCRIPT sh`, the caller adding SCRIPT's arguments: SCRIPT gives the
/// new mount namespace a private `/dev` holding only `nodes` (`name:major:minor`
/// character devices, mode 666), then runs `then`.
fn private_dev(nodes: &str, then: &str) -> Command {
    let script = format!(
        r#"set -u
mount --make-rprivate / && mount -t tmpfs -o mode=755 tmpfs /dev || exit 90
for n in {nodes}; do
  IFS=: read -r f a b <<EOF
$n
EOF
  mknod -m 666 /dev/$f c $a $b || exit 91
done
{then}
"#
    );
    let mut c = Command::new("unshare");
    c.args(["-m", "sh", "-c", &script, "sh"]);
    c
}

/// Runs `cmd` as nobody with no capabilities, in a private mount namespace whose
/// `/dev` holds only null, zero, urandom and a private /dev/shm: no /dev/fuse, no
/// /dev/cuse. `wrap` goes between setpriv and the command (e.g. `unshare -U -r`).
fn as_nobody(wrap: &[&str], cmd: &[&str], timeout: Duration) -> Output {
    as_nobody_with(&["--inh-caps=-all"], wrap, cmd, timeout)
}

/// [`as_nobody`] with other setpriv capability options.
fn as_nobody_with(caps: &[&str], wrap: &[&str], cmd: &[&str], timeout: Duration) -> Output {
    let k = kit();
    let mut c = private_dev(
        "null:1:3 zero:1:5 urandom:1:9",
        r#"mkdir -m 1777 /dev/shm || exit 92
exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@""#,
    );
    c.args(caps);
    c.args(wrap);
    c.arg(k.join("netmapd")).arg("exec").arg("--");
    c.args(cmd);
    c.current_dir(k);
    run(c, timeout)
}

fn nm(k: &str) -> String {
    kit().join(k).to_string_lossy().into_owned()
}

/// The front end `netmapd exec` chose, from its log line.
fn assert_preload_chosen(out: &Output, reason: &str) {
    assert!(
        out.stderr.contains("front end preload") && out.stderr.contains(reason),
        "netmapd exec did not say it chose the preload front end ({reason}):\n{}",
        out.describe()
    );
}

fn pipe_script(count: u64) -> String {
    format!(
        r#"c="$1"
"$c" pipe-rx --port 'rl}}0' --count {count} & rx=$!
"$c" pipe-tx --port 'rl{{0' --count {count}; txs=$?
wait $rx; rxs=$?
echo "pipe-tx exit=$txs pipe-rx exit=$rxs"
[ $txs -eq 0 ] && [ $rxs -eq 0 ]"#
    )
}

fn assert_pipe_ok(out: &Output, count: u64) {
    assert_success(out);
    assert!(
        out.stdout.contains(&format!("received {count} packets")),
        "receiver did not get every packet:\n{}",
        out.describe()
    );
    assert!(
        out.stdout.contains("all in order and intact"),
        "payload check failed:\n{}",
        out.describe()
    );
}

#[test]
fn pipe_10m_packets_as_nobody() {
    let s = pipe_script(10_000_000);
    let c = nm("nm-client");
    let out = as_nobody(&[], &["sh", "-c", &s, "sh", &c], Duration::from_secs(600));
    println!("{}", out.stdout);
    assert_preload_chosen(&out, "not root");
    assert_pipe_ok(&out, 10_000_000);
}

#[test]
fn pipe_in_a_user_namespace_where_mounts_are_refused() {
    // Root inside the namespace, but it owns no mount namespace: mount(2) is refused,
    // and /dev/fuse (root-only outside) cannot be opened.
    let s = format!("mount -t tmpfs none /tmp 2>/dev/null && {{ echo 'mount was allowed'; exit 9; }}; id -u; {}", pipe_script(1_000_000));
    let c = nm("nm-client");
    let out = as_nobody(
        &["unshare", "-U", "-r"],
        &["sh", "-c", &s, "sh", &c],
        Duration::from_secs(300),
    );
    println!("{}", out.stdout);
    assert!(
        out.stdout.starts_with("0\n"),
        "not root inside the namespace:\n{}",
        out.describe()
    );
    assert_preload_chosen(&out, "/dev/fuse");
    assert_pipe_ok(&out, 1_000_000);
}

/// Root without any capability, as a container's root is (the namespace is refused),
/// running the README's CI recipe literally: `netmapd exec -- make check` in a
/// project whose `check` target runs netmap traffic.
#[test]
fn ci_recipe_as_root_without_capabilities() {
    let k = kit();
    let proj = k.join("project");
    std::fs::create_dir_all(&proj).expect("project dir");
    let c = nm("nm-client");
    std::fs::write(
        proj.join("Makefile"),
        format!(
            "check:\n\t{c} pipe-rx --port 'ci}}0' --count 1000000 & rx=$$!; \\\n\t{c} pipe-tx --port 'ci{{0' --count 1000000 && wait $$rx\n"
        ),
    )
    .expect("Makefile");
    let mut cmd = private_dev(
        "null:1:3 zero:1:5 urandom:1:9 fuse:10:229",
        r#"cd "$1" && shift
exec setpriv --bounding-set=-all --inh-caps=-all "$@""#,
    );
    cmd.arg(&proj)
        .arg(k.join("netmapd"))
        .args(["exec", "--", "make", "check"]);
    let out = run(cmd, Duration::from_secs(300));
    println!("{}", out.stdout);
    assert_preload_chosen(&out, "cannot mount");
    assert_pipe_ok(&out, 1_000_000);
}

#[test]
fn vale_learning_and_flooding_as_nobody() {
    let c = nm("nm-client");
    let out = as_nobody(&[], &[&c, "vale-learn", "valerl"], Duration::from_secs(120));
    assert_success(&out);
    assert!(out.stdout.contains("vale-learn: ok"), "{}", out.describe());
}

/// The C conformance suite, which covers poll/select/epoll wake-ups (poll, fdlife),
/// extra buffers, fork/dup/exec sharing a registration (fdlife), sync loops (csb).
#[test]
fn conformance_suite_as_nobody() {
    let r = nm("conformance/run.sh");
    let out = as_nobody(&[], &[&r], Duration::from_secs(600));
    println!("{}", out.stdout);
    assert_success(&out);
    assert!(
        out.stdout.contains(" passed, 0 failed"),
        "no summary line:\n{}",
        out.describe()
    );
    for area in ["fdlife", "extrabufs", "poll", "csb"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(area) && l.contains("PASS")),
            "no {area} check ran:\n{}",
            out.describe()
        );
    }
}

/// A client SIGKILLed mid-traffic (and one holding rings, buffers and extra buffers):
/// the pools come back whole, and a new pair carries traffic afterwards.
#[test]
fn client_killed_mid_traffic_as_nobody() {
    let script = r#"d="$1"; c="$2"
t=$(mktemp -d) || exit 5
free() { "$d" status --keys | grep -E '^(if|ring|buf)_free='; }
free > "$t/before" || { echo "status failed"; exit 3; }
"$c" pipe-rx --port 'kq}0' --count 100000000 > /dev/null 2>&1 & rx=$!
"$c" pipe-tx --port 'kq{0' --count 100000000 > /dev/null 2>&1 & tx=$!
"$c" pipe-kill-victim --port 'kv{0' > "$t/victim" 2>&1 & v=$!
i=0
while ! grep -q 'victim ready' "$t/victim"; do
  i=$((i+1)); [ $i -gt 400 ] && { echo "victim not ready"; cat "$t/victim"; exit 4; }
  sleep 0.05
done
sleep 0.5
kill -9 $tx $v $rx; wait $tx $v $rx 2>/dev/null
i=0
until free > "$t/after" && cmp -s "$t/before" "$t/after"; do
  i=$((i+1)); [ $i -gt 50 ] && { echo "pools not restored"; cat "$t/before" "$t/after"; exit 6; }
  sleep 0.1
done
echo "pools restored"
"$c" pipe-rx --port 'kq}0' --count 100000 & rx=$!
"$c" pipe-tx --port 'kq{0' --count 100000 || exit 7
wait $rx || exit 8
rm -rf "$t""#;
    let (d, c) = (nm("netmapd"), nm("nm-client"));
    let out = as_nobody(
        &[],
        &["sh", "-c", script, "sh", &d, &c],
        Duration::from_secs(300),
    );
    println!("{}", out.stdout);
    assert_success(&out);
    assert!(out.stdout.contains("pools restored"), "{}", out.describe());
    assert!(
        out.stdout.contains("all in order and intact"),
        "{}",
        out.describe()
    );
}

/// NIC ports: refused with EPERM and a log line naming CAP_NET_RAW without it; they
/// work (AF_PACKET, as the user may not lock the AF_XDP pool) with it.
#[test]
fn nic_port_needs_cap_net_raw() {
    let c = nm("nm-client");
    // rx-count waits for traffic: it is enough that it got its rings.
    let script = format!("timeout 2 {c} rx-count --port lo --idle-ms 100; echo rc=$?");
    let cmd = ["sh", "-c", script.as_str()];
    let out = as_nobody(&[], &cmd, Duration::from_secs(60));
    assert!(out.stdout.contains("rc=1"), "{}", out.describe());
    assert!(
        out.stderr.contains("Operation not permitted") && out.stderr.contains("need CAP_NET_RAW"),
        "{}",
        out.describe()
    );
    let out = as_nobody_with(
        &["--inh-caps=-all,+net_raw", "--ambient-caps=+net_raw"],
        &[],
        &cmd,
        Duration::from_secs(60),
    );
    assert_success(&out);
    assert!(
        out.stdout.contains("rx-count ready: lo"),
        "{}",
        out.describe()
    );
}

/// A statically linked program cannot be preloaded: exec says so and does not run it.
#[test]
fn static_binary_is_refused_with_a_message() {
    let k = kit();
    let src = k.join("static-prog.c");
    std::fs::write(
        &src,
        "void _start(void) { __asm__ volatile(\"mov $60, %eax\\n xor %edi, %edi\\n syscall\"); }\n",
    )
    .expect("write source");
    let bin = k.join("static-prog");
    let mut cc = Command::new("gcc");
    cc.args(["-nostdlib", "-static", "-o"]).arg(&bin).arg(&src);
    assert_success(&run(cc, Duration::from_secs(60)));
    let mut ch = Command::new("chmod");
    ch.arg("a+rx").arg(&bin);
    assert_success(&run(ch, Duration::from_secs(10)));
    let b = bin.to_string_lossy().into_owned();
    let out = as_nobody(&[], &[&b], Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(126), "{}", out.describe());
    assert!(
        out.stderr.contains("statically linked"),
        "no message naming the cause:\n{}",
        out.describe()
    );
    // A dynamic program is not refused (the same exec with /bin/true).
    let out = as_nobody(&[], &["true"], Duration::from_secs(30));
    assert_success(&out);
}

/// `--frontend preload` as root: the same front end, forced.
#[test]
fn preload_front_end_forced_as_root() {
    require_privileges();
    let s = pipe_script(1_000_000);
    let mut cmd = Command::new(netmapd_bin());
    cmd.args([
        "exec",
        "--frontend",
        "preload",
        "--",
        "sh",
        "-c",
        &s,
        "sh",
        NM_CLIENT,
    ]);
    let out = run(cmd, Duration::from_secs(300));
    assert_preload_chosen(&out, "--frontend preload");
    assert_pipe_ok(&out, 1_000_000);
}
