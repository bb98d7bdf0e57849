//! Helpers for the integration tests: find the binaries, insist on the privileges the
//! daemon needs, and run `netmapd exec -- …` with a timeout and captured output.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `netmapd` binary: `$NETMAPD_BIN`, else next to the test executable's `deps/`
/// directory (…/target/release/deps/e2e-xxx → …/target/release/netmapd), i.e. the
/// same profile as the tests.
pub fn netmapd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NETMAPD_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "NETMAPD_BIN={} does not exist", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable is not in <target>/<profile>/deps");
    let p = profile_dir.join("netmapd");
    assert!(
        p.is_file(),
        "netmapd binary not found at {} — build it with `cargo build --release -p netmapd` \
         (same profile as the tests) or set NETMAPD_BIN",
        p.display()
    );
    p
}

/// The repository's root (the tests crate lives in it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Builds the Debian package with `pkg/build-deb.sh` (cargo-deb) and returns the path it
/// prints on its last `package: PATH` line.
pub fn build_debian_package() -> PathBuf {
    let root = repo_root();
    let mut b = Command::new(root.join("pkg/build-deb.sh"));
    b.current_dir(&root);
    let out = run(b, Duration::from_secs(1200));
    assert_success(&out);
    let deb = out
        .stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("package: "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no `package: PATH` line:\n{}", out.describe()));
    assert!(deb.is_file(), "{} missing", deb.display());
    deb
}

/// Fails loudly (never skips) when the daemon cannot work: it needs root for the
/// mount namespace and /dev/fuse to serve /dev/netmap.
pub fn require_privileges() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "\n\n*** netmapd e2e tests need root (euid is {euid}): netmapd exec creates a mount \
         namespace and a FUSE device. Run them with sudo. NOT skipping. ***\n"
    );
    assert!(
        Path::new("/dev/fuse").exists(),
        "\n\n*** /dev/fuse is missing: load the fuse module (modprobe fuse) or give the \
         container --device /dev/fuse. NOT skipping. ***\n"
    );
}

/// Outcome of a finished (or killed) subprocess.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub command: String,
}

impl Output {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    /// Everything a failure message needs.
    pub fn describe(&self) -> String {
        let how = if self.timed_out {
            "TIMED OUT (killed)".to_string()
        } else if let Some(sig) = self.status.signal() {
            format!("killed by signal {sig}")
        } else {
            format!("exit status {:?}", self.status.code())
        };
        format!(
            "command: {}\nresult: {how}\n--- stdout ---\n{}\n--- stderr ---\n{}\n",
            self.command, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with output captured, killing its whole process group after `timeout`
/// (so a hung daemon or client cannot hang the test suite).
pub fn run(mut cmd: Command, timeout: Duration) -> Output {
    let command = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let pgid = child.id() as i32;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > timeout {
            timed_out = true;
            // SAFETY: kill(2) on the process group this function created; no memory involved.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !timed_out {
        // Reap stragglers of the group (e.g. a daemon left behind) so pipes close.
        // SAFETY: as above; ESRCH when the group is already gone is fine.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
        timed_out,
        command,
    }
}

/// `netmapd exec -- <args…>` with a timeout; checks privileges and binaries first.
pub fn netmapd_exec<I, S>(args: I, timeout: Duration) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    require_privileges();
    let mut cmd = Command::new(netmapd_bin());
    cmd.arg("exec").arg("--").args(args);
    run(cmd, timeout)
}

/// [`netmapd_exec`] without the preload library: every sync and poll goes through the
/// daemon (what static and unpreloaded programs get).
pub fn netmapd_exec_no_preload<I, S>(args: I, timeout: Duration) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    require_privileges();
    let mut cmd = Command::new(netmapd_bin());
    cmd.arg("exec").arg("--no-preload").arg("--").args(args);
    run(cmd, timeout)
}

/// Asserts success, printing the command's output otherwise.
#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(out.success(), "\n{}", out.describe());
}

/// Runs `script` with `$1` = netmapd and `$2` = `nm_client` in a new private mount
/// namespace whose `/dev` holds only null, zero, urandom and fuse, for tests that run
/// the daemon themselves (signals, restarts). The script may use `mounted` (a FUSE
/// mount on /dev/netmap exists), `wait_mounted` (the daemon answers `status`) and `ms`
/// (milliseconds since the epoch).
pub fn in_private_ns(script: &str, nm_client: &str) -> Output {
    require_privileges();
    let prologue = r#"set -u
mount --make-rprivate / && mount -t tmpfs tmpfs /dev || exit 90
mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/zero c 1 5 && mknod -m 666 /dev/urandom c 1 9 && mknod -m 600 /dev/fuse c 10 229 || exit 91
d="$1"; c="$2"; export NETMAPD_STATUS_SOCKET=/dev/.st.sock
mounted() { grep -q ' /dev/netmap .* - fuse' /proc/self/mountinfo; }
wait_mounted() { i=0; until mounted && "$d" status --keys >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 200 ] && { echo "daemon did not come up"; return 1; }; sleep 0.05; done; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }
"#;
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c"])
        .arg(format!("{prologue}{script}"))
        .arg("sh")
        .arg(netmapd_bin())
        .arg(nm_client);
    run(cmd, Duration::from_secs(120))
}
