//! netmapd as a system service: the readiness notification systemd's `Type=notify`
//! waits for (observed on a fake NOTIFY_SOCKET), and the Debian package's contents
//! (`pkg/build-deb.sh`). Needs root (a private mount namespace for the FUSE daemon).

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use netmapd_tests::harness::{
    assert_success, build_debian_package, netmapd_bin, require_privileges, run,
};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netmapd-svc-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The next datagram on `sock`, within `within`.
fn next_message(sock: &UnixDatagram, within: Duration) -> Option<String> {
    sock.set_read_timeout(Some(within)).ok()?;
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// The FUSE daemon, as the unit runs it: READY=1 only once /dev/netmap is mounted and
/// answers, STOPPING=1 on SIGTERM, and a clean exit (no mount left).
#[test]
fn readiness_is_notified_once_the_device_is_served() {
    require_privileges();
    let dir = tmpdir("notify");
    let notify = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&notify).expect("bind the fake notify socket");
    let go = dir.join("go");
    let script = r#"set -u
mount --make-rprivate / && mount -t tmpfs tmpfs /dev || exit 90
mknod -m 666 /dev/null c 1 3 && mknod -m 600 /dev/fuse c 10 229 || exit 91
"$1" --status-socket "$3/st.sock" --log warn & pid=$!
until [ -e "$2" ]; do kill -0 $pid 2>/dev/null || { echo "daemon died"; exit 92; }; sleep 0.02; done
grep -q ' /dev/netmap .* - fuse' /proc/self/mountinfo && echo "mounted=yes" || echo "mounted=no"
"$1" status --keys --status-socket "$3/st.sock" | grep -q '^if_total=' && echo "answers=yes"
kill -TERM $pid; wait $pid; echo "exit=$?"
grep -q ' /dev/netmap ' /proc/self/mountinfo && echo "left a mount" || echo "unmounted=yes""#;
    let mut c = Command::new("unshare");
    c.args(["-m", "sh", "-c", script, "sh"])
        .arg(netmapd_bin())
        .arg(&go)
        .arg(&dir)
        .env("NOTIFY_SOCKET", &notify)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().expect("spawn");
    let ready = next_message(&sock, Duration::from_secs(30));
    std::fs::write(&go, b"").expect("go");
    let stopping = next_message(&sock, Duration::from_secs(30));
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ready = ready.unwrap_or_else(|| panic!("no READY=1\n{stdout}\n{stderr}"));
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(
        ready
            .lines()
            .any(|l| l.starts_with("STATUS=serving /dev/netmap")),
        "{ready}"
    );
    assert!(
        stdout.contains("mounted=yes") && stdout.contains("answers=yes"),
        "READY=1 came before the device was served:\n{stdout}\n{stderr}"
    );
    assert_eq!(
        stopping.as_deref().map(str::trim),
        Some("STOPPING=1"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("exit=0") && stdout.contains("unmounted=yes"),
        "{stdout}\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The preload front end (what a user-level service would run) notifies too, once its
/// socket accepts connections.
#[test]
fn readiness_of_the_preload_front_end() {
    let dir = tmpdir("notify-preload");
    let notify = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&notify).expect("bind the fake notify socket");
    let s = dir.join("netmap.sock");
    let mut c = Command::new(netmapd_bin());
    c.args(["--frontend", "preload", "--log", "warn", "--socket"])
        .arg(&s)
        .arg("--status-socket")
        .arg(dir.join("st.sock"))
        .env("NOTIFY_SOCKET", &notify)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let ready = next_message(&sock, Duration::from_secs(30));
    let exists = s.exists();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let stopping = next_message(&sock, Duration::from_secs(30));
    let st = child.wait().expect("wait");
    let ready = ready.expect("no READY=1");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(ready.contains("preload front end"), "{ready}");
    assert!(exists, "READY=1 before the socket existed");
    assert_eq!(stopping.as_deref().map(str::trim), Some("STOPPING=1"));
    assert!(st.success(), "{st:?}");
    assert!(!s.exists(), "socket left behind");
    let _ = std::fs::remove_dir_all(dir);
}

/// `pkg/build-deb.sh` builds the package; its files and unit are what the README says.
#[test]
fn debian_package_contents() {
    require_privileges();
    let deb = build_debian_package();
    let mut c = Command::new("dpkg-deb");
    c.arg("--contents").arg(&deb);
    let list = run(c, Duration::from_secs(60));
    assert_success(&list);
    for f in [
        "./usr/bin/netmapd",
        "./usr/lib/netmapd/libnetmapd_preload.so",
        "./usr/include/net/netmap.h",
        "./usr/include/net/netmap_user.h",
        "./usr/include/net/netmap_legacy.h",
        "./usr/share/pkgconfig/netmap.pc",
        "./usr/share/man/man1/netmapd.1.gz",
        "./usr/share/bash-completion/completions/netmapd",
        "./usr/share/zsh/vendor-completions/_netmapd",
        "./usr/share/fish/vendor_completions.d/netmapd.fish",
        "./usr/lib/systemd/system/netmapd.service",
        "./etc/default/netmapd",
    ] {
        assert!(
            list.stdout.lines().any(|l| l.ends_with(f)),
            "{f} not in the package:\n{}",
            list.stdout
        );
    }
    let x = tmpdir("deb");
    let mut c = Command::new("dpkg-deb");
    c.arg("-x").arg(&deb).arg(&x);
    assert_success(&run(c, Duration::from_secs(60)));
    let unit = std::fs::read_to_string(x.join("usr/lib/systemd/system/netmapd.service"))
        .expect("unit file");
    for l in [
        "Type=notify",
        "EnvironmentFile=-/etc/default/netmapd",
        "ExecStart=/usr/bin/netmapd",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.contains(l), "unit lacks {l}:\n{unit}");
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let mut v = Command::new("systemd-analyze");
        v.args(["verify", "--man=no"])
            .arg(x.join("usr/lib/systemd/system/netmapd.service"))
            .env("SYSTEMD_LOG_LEVEL", "warning");
        let o = run(v, Duration::from_secs(60));
        // verify complains about the ExecStart binary not existing at /usr/bin on this
        // machine; anything else is a unit syntax error.
        let bad: Vec<&str> = o
            .stderr
            .lines()
            .filter(|l| !l.contains("/usr/bin/netmapd") && !l.trim().is_empty())
            .collect();
        assert!(bad.is_empty(), "systemd-analyze verify:\n{}", o.stderr);
    } else {
        println!("systemd-analyze not installed: unit syntax not verified");
    }
    let man = x.join("usr/share/man/man1/netmapd.1.gz");
    assert!(
        std::fs::metadata(&man).is_ok_and(|m| m.len() > 500),
        "empty man page"
    );
    let pc = std::fs::read_to_string(x.join("usr/share/pkgconfig/netmap.pc")).expect("netmap.pc");
    assert!(
        pc.contains("Cflags:") && pc.contains("Name: netmap"),
        "{pc}"
    );
    let _ = std::fs::remove_dir_all(x);
}
