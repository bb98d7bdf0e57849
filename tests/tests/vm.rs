//! VM tests: boot Debian's 6.12 cloud kernel under qemu-system-x86_64 (software
//! emulation) with an initramfs holding netmapd, nm-client and the needed modules,
//! run a test script inside, and read the verdict from the serial console
//! (`VM-VERDICT: PASS`). See vm/run.sh.
//!
//! Needs root, qemu-system-x86_64, busybox-static and cpio (`vm/install-deps.sh`
//! installs them), and network access to Debian's archive for the first kernel
//! download (cached in vm/cache afterwards). Anything missing fails the test loudly;
//! it is never skipped.

use std::process::Command;
use std::time::{Duration, Instant};

use netmapd_tests::harness::{build_debian_package, netmapd_bin, repo_root, run};

const NM_CLIENT: &str = env!("CARGO_BIN_EXE_nm-client");

/// Whole run: kernel download (first time), initramfs, boot and test under TCG.
const VM_RUN_TIMEOUT: Duration = Duration::from_secs(900);
/// Limit for the test script inside the VM, and for qemu (both below VM_RUN_TIMEOUT so
/// the in-VM and run.sh messages explain a hang before the harness kills everything).
const VM_TEST_TIMEOUT_S: u64 = 600;
const VM_QEMU_TIMEOUT_S: u64 = 780;

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// Fails loudly (never skips) when the VM cannot be run here.
fn require_vm_tools() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "\n\n*** VM tests need root (euid is {euid}): apt-get download/dpkg-deb of the kernel \
         and /dev/console in the initramfs. NOT skipping. ***\n"
    );
    for (tool, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("cpio", "cpio"),
        ("busybox", "busybox-static"),
        ("dpkg-deb", "dpkg"),
        ("apt-get", "apt"),
        ("mmdebstrap", "mmdebstrap"),
    ] {
        assert!(
            on_path(tool),
            "\n\n*** {tool} not found: run vm/install-deps.sh (apt-get install -y {pkg}). \
             NOT skipping. ***\n"
        );
    }
}

/// `vm/run.sh vm/tests/SCRIPT` with this build's netmapd and nm-client.
/// One VM at a time: they share the kernel cache (the first run downloads and extracts
/// it) and two TCG guests on a 2-CPU machine only slow each other down.
static VM_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn run_vm(script: &str, extra_files: &[String]) -> netmapd_tests::harness::Output {
    let _one_at_a_time = VM_LOCK.lock();
    require_vm_tools();
    let root = repo_root();
    let mut cmd = Command::new(root.join("vm/run.sh"));
    cmd.arg(root.join("vm/tests").join(script))
        .args(extra_files)
        .env("NETMAPD_BIN", netmapd_bin())
        .env("NM_CLIENT_BIN", NM_CLIENT)
        .env("VM_TEST_TIMEOUT", VM_TEST_TIMEOUT_S.to_string())
        .env("VM_TIMEOUT", VM_QEMU_TIMEOUT_S.to_string());
    run(cmd, VM_RUN_TIMEOUT)
}

/// The last `VM-VERDICT: …` line of a run's console (anywhere on its line: SeaBIOS'
/// escapes may precede it).
fn verdict(out: &netmapd_tests::harness::Output) -> String {
    out.stdout
        .lines()
        .rev()
        .find_map(|l| l.find("VM-VERDICT: ").map(|i| &l[i..]))
        .unwrap_or("(no VM-VERDICT line)")
        .to_string()
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// netmapd's FUSE passthrough front end on a real 6.12 kernel: a 1,000,000-packet
/// netmap pipe and every `nm-client errno` case, each under `netmapd exec` in the VM.
#[test]
fn vm_fuse_frontend_debian_6_12() {
    let start = Instant::now();
    let out = run_vm("fuse-pipe.sh", &[]);
    let verdict = verdict(&out);
    assert!(
        out.success() && verdict == "VM-VERDICT: PASS",
        "\nVM verdict: {verdict}\n{}",
        out.describe()
    );
    assert!(
        out.stdout.contains("received 1000000 packets")
            && out.stdout.contains("sent 1000000 packets"),
        "PASS without both pipe clients' reports?\n{}",
        out.describe()
    );
    assert!(
        out.stdout.contains("auto picked fuse"),
        "--frontend auto did not pick FUSE on a 6.12 kernel\n{}",
        out.describe()
    );
    eprintln!(
        "VM test passed in {:.1} s; console tail:\n{}",
        start.elapsed().as_secs_f64(),
        tail(&out.stdout, 12)
    );
}

/// The CUSE front end on a real CUSE kernel: `netmapd --frontend cuse` registers a
/// character device, clients map the region through the preload library (which also
/// runs their pipe syncs in process), a 1,000,000-packet pipe moves with none lost and
/// every errno case passes.
#[test]
fn vm_cuse_frontend_debian_6_12() {
    let lib = netmapd_bin().with_file_name("libnetmapd_preload.so");
    assert!(
        lib.is_file(),
        "{} missing: build the workspace (cargo build --release)",
        lib.display()
    );
    let out = run_vm(
        "cuse-pipe.sh",
        &[format!("{}:/lib/libnetmapd_preload.so", lib.display())],
    );
    let verdict = verdict(&out);
    assert!(
        out.success() && verdict == "VM-VERDICT: PASS",
        "\nVM verdict: {verdict}\n{}",
        out.describe()
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("serving") && l.contains("frontend") && l.contains("\"cuse\""))
            && out.stdout.contains("received 1000000 packets")
            && out.stdout.contains("sent 1000000 packets"),
        "PASS without the CUSE front end and both pipe reports?\n{}",
        out.describe()
    );
}

/// The Debian package on a fresh Debian 12 with systemd (the whole system is the VM's
/// initramfs, vm/build-debian-image.sh): `dpkg -i` gives an enabled, active
/// netmapd.service serving /dev/netmap (a pipe carries 100,000 packets through it),
/// /etc/default/netmapd's mode applies on restart, and `systemctl stop` ends it cleanly
/// with the mount gone.
#[test]
fn vm_debian_package_gives_a_running_service() {
    let _one_at_a_time = VM_LOCK.lock();
    require_vm_tools();
    let root = repo_root();
    let deb = build_debian_package();
    let mut k = Command::new(root.join("vm/fetch-kernel.sh"));
    k.current_dir(&root);
    assert!(
        run(k, Duration::from_secs(600)).success(),
        "fetching the kernel"
    );
    let image =
        std::env::temp_dir().join(format!("netmapd-deb-vm-{}.initrd.gz", std::process::id()));
    let mut img = Command::new(root.join("vm/build-debian-image.sh"));
    img.arg(&image)
        .arg(&deb)
        .arg(root.join("vm/tests/deb-service.sh"))
        .arg(NM_CLIENT);
    let made = run(img, Duration::from_secs(900));
    assert!(made.success(), "{}", made.describe());
    let mut cmd = Command::new(root.join("vm/run.sh"));
    cmd.arg(root.join("vm/tests/deb-service.sh"))
        .env("VM_INITRD", &image)
        .env("VM_TIMEOUT", VM_QEMU_TIMEOUT_S.to_string());
    let out = run(cmd, VM_RUN_TIMEOUT);
    let _ = std::fs::remove_file(&image);
    let verdict = verdict(&out);
    assert!(
        out.success() && verdict == "VM-VERDICT: PASS",
        "\nVM verdict: {verdict}\n{}",
        out.describe()
    );
    for want in [
        "netmapd.service active",
        "received 100000 packets",
        "mode 660 applied",
        "deb-service: all passed",
    ] {
        assert!(
            out.stdout.contains(want),
            "{want} missing\n{}",
            out.describe()
        );
    }
    eprintln!(
        "Debian package VM test passed; console tail:\n{}",
        tail(&out.stdout, 12)
    );
}
