//! The C compatibility headers in `compat-headers/` (`<net/netmap.h>`,
//! `<net/netmap_user.h>`): their layout matches NETMAP-ABI.md, they build cleanly in
//! strict C modes, `make install` produces a usable pkg-config package, and a legacy
//! `nm_open()` program built against the installed headers works under `netmapd exec`.
//!
//! Needs gcc and make (missing tools fail the tests, they are not skipped); the last test
//! also needs root, /dev/fuse and the release `netmapd` like the other e2e tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netmapd_tests::harness::{assert_success, netmapd_bin, netmapd_exec, repo_root, run, Output};

const NM_CLIENT: &str = env!("CARGO_BIN_EXE_nm-client");

const BUILD_TIMEOUT: Duration = Duration::from_secs(120);
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn compat_dir() -> PathBuf {
    let d = repo_root().join("compat-headers");
    assert!(
        d.join("Makefile").is_file(),
        "{} has no Makefile",
        d.display()
    );
    d
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "netmapd-compat-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()));
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fails loudly (never skips) when a required tool is missing.
fn require_tool(tool: &str, why: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "\n\n*** `{tool}` is not available: {why}. Install it (e.g. apt-get install \
         build-essential). NOT skipping. ***\n"
    );
}

fn tool_present(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// `make -C compat-headers <args…>` with gcc as the compiler and build products in `build`.
fn make(build: &Path, args: &[&str]) -> Output {
    require_tool("make", "the compat-headers checks are driven by make");
    require_tool("gcc", "the compat-headers checks compile C test programs");
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(compat_dir())
        .arg("CC=gcc")
        .arg(format!("BUILDDIR={}", build.display()))
        .args(args);
    run(cmd, BUILD_TIMEOUT)
}

#[test]
fn layout_matches_abi() {
    let build = TempDir::new("layout");
    let out = make(build.path(), &["check-layout"]);
    assert_success(&out);
    assert!(
        out.stdout.contains("layout: OK"),
        "layout test did not report OK\n{}",
        out.describe()
    );
    for needle in [
        "NIOCGINFO=0xc03c6991",
        "NIOCREGIF=0xc03c6992",
        "NIOCCTRL=0xc0586997",
        "NIOCCONFIG=0xc1106996",
    ] {
        assert!(
            out.stdout.contains(needle),
            "missing {needle}\n{}",
            out.describe()
        );
    }
}

#[test]
fn headers_compile_strict_c11_and_gnu99() {
    let build = TempDir::new("compile");
    let out = make(build.path(), &["check-compile"]);
    assert_success(&out);
}

/// Installs the headers and netmap.pc under a temporary prefix and returns the compiler
/// flags to use them (from `pkg-config --cflags netmap`, or, without pkg-config, the
/// `-I` the .pc file announces after checking it points at the installed headers).
fn install_and_cflags(prefix: &Path, build: &Path) -> Vec<String> {
    let out = make(build, &["install", &format!("PREFIX={}", prefix.display())]);
    assert_success(&out);

    let incdir = prefix.join("include");
    for h in ["netmap.h", "netmap_user.h"] {
        let p = incdir.join("net").join(h);
        assert!(p.is_file(), "make install did not install {}", p.display());
    }
    let pcdirs = [prefix.join("lib/pkgconfig"), prefix.join("share/pkgconfig")];
    let pcdir = pcdirs
        .iter()
        .find(|d| d.join("netmap.pc").is_file())
        .unwrap_or_else(|| panic!("netmap.pc not installed under {}", prefix.display()))
        .clone();
    let pc = std::fs::read_to_string(pcdir.join("netmap.pc")).expect("read netmap.pc");
    assert!(
        pc.lines().any(|l| l.trim() == "Name: netmap"),
        "netmap.pc lacks 'Name: netmap':\n{pc}"
    );
    let cflags_line = pc
        .lines()
        .find(|l| l.starts_with("Cflags:"))
        .unwrap_or_else(|| panic!("netmap.pc has no Cflags:\n{pc}"));
    assert!(
        cflags_line.contains("-I${includedir}"),
        "Cflags must be -I${{includedir}}: {cflags_line}"
    );
    let includedir = pc
        .lines()
        .find_map(|l| l.strip_prefix("includedir="))
        .unwrap_or_else(|| panic!("netmap.pc has no includedir=:\n{pc}"))
        .replace("${prefix}", &prefix.display().to_string());
    assert_eq!(
        Path::new(includedir.trim()),
        incdir.as_path(),
        "netmap.pc includedir does not point at the installed headers"
    );

    if tool_present("pkg-config") {
        let o = Command::new("pkg-config")
            .args(["--cflags", "netmap"])
            .env("PKG_CONFIG_PATH", &pcdir)
            .output()
            .expect("run pkg-config");
        assert!(
            o.status.success(),
            "pkg-config --cflags netmap failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let flags: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let want = format!("-I{}", incdir.display());
        assert!(
            flags.contains(&want),
            "pkg-config --cflags netmap gave {flags:?}, expected {want}"
        );
        flags
    } else {
        eprintln!(
            "pkg-config not found: using -I{} from netmap.pc",
            incdir.display()
        );
        vec![format!("-I{}", incdir.display())]
    }
}

#[test]
fn installed_headers_nm_open_pipe_under_daemon() {
    require_tool(
        "gcc",
        "nmopen.c must be compiled against the installed headers",
    );
    // Fail early (before building) if the daemon is missing.
    let _ = netmapd_bin();

    let tmp = TempDir::new("nmopen");
    let prefix = tmp.path().join("prefix");
    let build = tmp.path().join("build");
    let cflags = install_and_cflags(&prefix, &build);

    // Build nmopen.c with only the installed headers on the include path.
    let bin = tmp.path().join("nmopen");
    let mut cc = Command::new("gcc");
    cc.args(["-std=gnu99", "-Wall", "-Wextra", "-Werror", "-O2"])
        .args(&cflags)
        .arg(compat_dir().join("tests/nmopen.c"))
        .arg("-o")
        .arg(&bin);
    let out = run(cc, BUILD_TIMEOUT);
    assert_success(&out);

    let out = netmapd_exec([&bin], RUN_TIMEOUT);
    assert_success(&out);
    for needle in [
        "nmopen: opened pp/pp",
        "mem_id 1 slots 1024",
        "nmopen: nm_dispatch received 8 packets",
        "nmopen: nm_nextpkt received 1000 bytes",
        "nmopen: fragmented packet of 3000 bytes",
        "nmopen: OK",
    ] {
        assert!(
            out.stdout.contains(needle),
            "expected {needle:?} in the output\n{}",
            out.describe()
        );
    }
}

/// bench/nm_tx.c (the C sender `bench/nic.sh` measures beside trafgen) builds against
/// the headers and sends 1,000 frames through a pipe under `netmapd exec`, preloaded,
/// to `nm-client rx-count` on the other end; it fails unless every frame completed
/// (a pipe's TX slots complete when the receiver releases them: the receiver runs
/// until idle, not to a count, so that its last poll releases the last batch).
#[test]
fn bench_c_sender_builds_and_sends() {
    require_tool("gcc", "bench/nm_tx.c is built with it");
    let _ = netmapd_bin();
    let tmp = TempDir::new("nmtx");
    let bin = tmp.path().join("nm_tx");
    let mut cc = Command::new("gcc");
    cc.args(["-std=gnu99", "-Wall", "-Wextra", "-Werror", "-O2"])
        .arg(format!("-I{}", compat_dir().join("include").display()))
        .arg(repo_root().join("bench/nm_tx.c"))
        .arg("-o")
        .arg(&bin);
    let out = run(cc, BUILD_TIMEOUT);
    assert_success(&out);
    let script = format!(
        "{nmc} rx-count --port 'pp}}7' --idle-ms 1000 > {log} & r=$!\n\
         i=0; until grep -q 'rx-count ready' {log}; do i=$((i+1)); [ $i -gt 200 ] && exit 3; sleep 0.05; done\n\
         {tx} 'pp{{7' 1000 64 || exit 4\n\
         wait $r || exit 5\n\
         cat {log}\n",
        nmc = NM_CLIENT,
        log = tmp.path().join("rx.txt").display(),
        tx = bin.display(),
    );
    let out = netmapd_exec(["sh", "-c", script.as_str()], RUN_TIMEOUT);
    assert_success(&out);
    for needle in ["nm_tx: 1000 packets in", "rx-count port=pp}7 frames=1000 "] {
        assert!(
            out.stdout.contains(needle),
            "expected {needle:?} in the output\n{}",
            out.describe()
        );
    }
}
