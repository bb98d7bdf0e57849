//! `netmapd exec -- CMD`: a private mount namespace with its own `/dev/netmap`, a fresh
//! daemon serving it, and CMD run inside. Also the signal plumbing of the daemon.
//!
//! The private namespace gets a private tmpfs on `/dev` holding only the device nodes
//! programs commonly need, so the daemon's device file never appears in the host's
//! `/dev` and everything disappears with the namespace.
#![allow(unsafe_code)]

use crate::{DaemonOpts, Frontend};
use std::ffi::CString;
use std::io;
use std::process::{Command, ExitCode};

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_int, what: &str) -> io::Result<()> {
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

fn mount(
    src: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> io::Result<()> {
    let (s, t, f, d) = (cstr(src)?, cstr(target)?, cstr(fstype)?, cstr(data)?);
    // SAFETY: all pointers are valid NUL-terminated strings living across the call.
    let r = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), flags, d.as_ptr().cast()) };
    check(r, &format!("mount {fstype} on {target}"))
}

fn mknod(path: &str, major: u32, minor: u32) -> io::Result<()> {
    let p = cstr(path)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: `p` is a valid path string; mknod only reads it.
    let r = unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR | 0o666, dev) };
    check(r, &format!("mknod {path}"))
}

/// Enters a private mount namespace with a private `/dev`. Must run while the process
/// has a single thread (unshare(CLONE_NEWNS) refuses shared filesystem state).
pub fn enter_private_namespace(opts: &DaemonOpts) -> io::Result<()> {
    // SAFETY: unshare takes no pointers; it only changes this process's namespaces.
    let r = unsafe { libc::unshare(libc::CLONE_NEWNS) };
    check(r, "unshare(CLONE_NEWNS) (needs root)")?;
    mount("none", "/", "", libc::MS_REC | libc::MS_PRIVATE, "")?;
    mount(
        "tmpfs",
        "/dev",
        "tmpfs",
        libc::MS_NOSUID,
        "mode=0755,size=65536k",
    )?;
    if let Err(e) = populate_dev() {
        // A user namespace may mount but not mknod: give the program its /dev back.
        // SAFETY: a valid NUL-terminated path; umount2 only reads it.
        unsafe { libc::umount2(c"/dev".as_ptr(), libc::MNT_DETACH) };
        return Err(e);
    }
    if opts.status_socket.is_none() && std::env::var_os(crate::status::SOCKET_ENV).is_none() {
        // Single-threaded here, so changing the environment is sound.
        std::env::set_var(crate::status::SOCKET_ENV, "/dev/.netmapd-status.sock");
    }
    Ok(())
}

/// The device nodes and mounts of the private `/dev`.
fn populate_dev() -> io::Result<()> {
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
        ("fuse", 10, 229),
    ] {
        mknod(&format!("/dev/{name}"), major, minor)?;
    }
    // /dev/cuse for the CUSE front end (opening it loads the module on demand); a
    // kernel without CUSE makes this fail harmlessly.
    if let Err(e) = mknod("/dev/cuse", 10, 203) {
        tracing::debug!(%e, "no /dev/cuse in the private /dev");
    }
    std::fs::create_dir("/dev/net")?;
    mknod("/dev/net/tun", 10, 200)?;
    // A private devpts instance, so programs can open pseudo-terminals.
    std::fs::create_dir("/dev/pts")?;
    mount(
        "devpts",
        "/dev/pts",
        "devpts",
        libc::MS_NOSUID | libc::MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620",
    )?;
    std::os::unix::fs::symlink("pts/ptmx", "/dev/ptmx")?;
    std::fs::create_dir("/dev/shm")?;
    mount(
        "tmpfs",
        "/dev/shm",
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=1777",
    )?;
    for (l, t) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(t, format!("/dev/{l}"))?;
    }
    Ok(())
}

/// Decides between a private mount namespace (FUSE or CUSE) and the rootless preload
/// front end, entering the namespace in the first case. Returns why the preload front
/// end was chosen, or `None` in the namespace. Must run single-threaded.
pub fn choose_namespace(opts: &DaemonOpts) -> io::Result<Option<String>> {
    match opts.frontend {
        Frontend::Preload => Ok(Some("--frontend preload".into())),
        Frontend::Fuse | Frontend::Cuse => enter_private_namespace(opts).map(|()| None),
        Frontend::Auto => {
            if crate::daemon::euid() != 0 {
                return Ok(Some("not root".into()));
            }
            let dev_ok = |p: &str| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(p)
                    .is_ok()
            };
            if !dev_ok("/dev/fuse") && !std::path::Path::new("/dev/cuse").exists() {
                return Ok(Some("no usable /dev/fuse or /dev/cuse".into()));
            }
            match enter_private_namespace(opts) {
                Ok(()) => Ok(None),
                Err(e) => Ok(Some(format!("cannot mount ({e})"))),
            }
        }
    }
}

/// Whether `prog` (a path, or a name looked up in PATH) is a statically linked ELF
/// executable: no PT_INTERP program header, so no dynamic loader to preload into.
/// Scripts and unreadable files are not judged (`false`).
pub fn is_static_elf(prog: &str) -> bool {
    let path = if prog.contains('/') {
        Some(std::path::PathBuf::from(prog))
    } else {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(prog))
                .find(|c| c.is_file())
        })
    };
    let Some(bytes) = path.and_then(|p| std::fs::read(p).ok()) else {
        return false;
    };
    elf_is_static(&bytes)
}

/// [`is_static_elf`] on a file's bytes (64- and 32-bit little-endian ELF).
fn elf_is_static(b: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if b.len() < 52 || &b[..4] != b"\x7fELF" || b[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let (phoff, phentsize, phnum) = match b[4] {
        2 => (u64_at(32), u16_at(54), u16_at(56)),
        1 => (u32_at(28).map(u64::from), u16_at(42), u16_at(44)),
        _ => return false,
    };
    let (Some(phoff), Some(size), Some(num)) = (phoff, phentsize, phnum) else {
        return false;
    };
    // ET_EXEC or ET_DYN only.
    if !matches!(u16_at(16), Some(2 | 3)) {
        return false;
    }
    !(0..usize::from(num)).any(|i| {
        let o = phoff as usize + i * usize::from(size);
        u32_at(o) == Some(PT_INTERP)
    })
}

/// Blocks the termination signals in this thread (and the threads it spawns later),
/// so that they can be taken synchronously with [`wait_signal`].
pub fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it in place, and
    // pthread_sigmask reads it. A zeroed sigset_t is a valid starting value.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits for one of the signals in `set`.
pub fn wait_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: `set` is an initialised signal set and `sig` a valid out pointer.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

/// Runs CMD against a fresh daemon and returns its exit status.
/// File name of the preload library (built by `cargo build --release`, next to the
/// `netmapd` binary).
pub const PRELOAD_LIB: &str = "libnetmapd_preload.so";

/// Where the preload library is: `$NETMAPD_PRELOAD_LIB`, else beside this binary, else
/// in `../lib/netmapd/` from it (installed).
pub fn preload_library() -> Result<std::path::PathBuf, String> {
    if let Some(p) = std::env::var_os("NETMAPD_PRELOAD_LIB") {
        let p = std::path::PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("NETMAPD_PRELOAD_LIB={} is not a file", p.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("locating netmapd: {e}"))?;
    let p = exe.with_file_name(PRELOAD_LIB);
    // Installed (the Debian package): /usr/bin/netmapd, /usr/lib/netmapd/<lib>.
    let installed = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|prefix| prefix.join("lib/netmapd").join(PRELOAD_LIB));
    if p.is_file() {
        Ok(p)
    } else if let Some(i) = installed.filter(|i| i.is_file()) {
        Ok(i)
    } else {
        Err(format!(
            "{} not found beside {} (build it: cargo build --release -p netmapd-preload)",
            PRELOAD_LIB,
            exe.display()
        ))
    }
}

/// The preload front end's files for one exec: a private directory under the
/// temporary directory holding the client socket and the status socket.
struct RootlessDir(std::path::PathBuf);

impl RootlessDir {
    fn create() -> io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let d = std::env::temp_dir().join(format!("netmapd-exec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::DirBuilder::new().mode(0o700).create(&d)?;
        Ok(Self(d))
    }
}

impl Drop for RootlessDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs CMD against a fresh daemon and returns its exit status. `rootless` is why the
/// preload front end serves it (no namespace was entered), or `None`.
pub fn run(
    opts: &DaemonOpts,
    command: &[String],
    preload: bool,
    mut rootless: Option<String>,
) -> ExitCode {
    let _set = block_signals();
    let Some((prog, args)) = command.split_first() else {
        return ExitCode::from(125);
    };
    // A CUSE device name is global to the machine: use one of our own, so a daemon
    // serving the host's /dev/netmap (or another exec) does not collide with us.
    let mut opts = opts.clone();
    if opts.cuse_name.is_none() {
        opts.cuse_name = Some(format!("netmapd-exec-{}", std::process::id()));
    }
    let mut dir = None;
    let daemon = loop {
        if let Some(why) = &rootless {
            if !preload {
                eprintln!("netmapd exec: the preload front end ({why}) is the preload library itself: drop --no-preload / NETMAPD_NO_PRELOAD");
                return ExitCode::from(125);
            }
            if is_static_elf(prog) {
                eprintln!(
                    "netmapd exec: {prog} is statically linked, so the preload library cannot be loaded into it, \
                     and without root or /dev/fuse there is no kernel device ({why}). Run it as root \
                     (FUSE passthrough on Linux >= 6.9, or CUSE), or link it dynamically."
                );
                return ExitCode::from(126);
            }
            let d = match RootlessDir::create() {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("netmapd exec: creating a directory for the daemon's sockets: {e}");
                    return ExitCode::from(125);
                }
            };
            opts.frontend = Frontend::Preload;
            if opts.socket.is_none() {
                opts.socket = Some(d.0.join("netmap.sock"));
            }
            if opts.status_socket.is_none() {
                opts.status_socket = Some(d.0.join("status.sock"));
            }
            tracing::info!(reason = %why, "netmapd exec: front end preload (no kernel device)");
            dir = Some(d);
        }
        match crate::daemon::start(&opts) {
            Ok(d) => break d,
            Err(crate::daemon::DaemonError::NoFrontend { fuse, cuse })
                if rootless.is_none() && opts.frontend == Frontend::Auto =>
            {
                rootless = Some(format!("FUSE: {fuse}; CUSE: {cuse}"));
            }
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(125);
            }
        }
    };
    if rootless.is_none() {
        tracing::info!(frontend = ?opts.frontend, "netmapd exec: front end with a kernel device");
    }
    let opts = &opts;
    let mut cmd = Command::new(prog);
    cmd.args(args);
    if rootless.is_some() {
        let sock = crate::daemon::socket_path(opts);
        cmd.env(netmap_abi::sock::SOCKET_ENV, &sock);
        cmd.env(crate::status::SOCKET_ENV, opts.status_socket());
    }
    if preload {
        match preload_library() {
            Ok(lib) => {
                let mut v = lib.into_os_string();
                if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|o| !o.is_empty()) {
                    v.push(" ");
                    v.push(old);
                }
                tracing::info!(ld_preload = ?v, "in-process data path preloaded");
                cmd.env("LD_PRELOAD", v);
            }
            Err(e) if rootless.is_some() => {
                eprintln!("netmapd exec: {e}: the preload front end cannot run without it");
                return ExitCode::from(125);
            }
            Err(e) => tracing::warn!("{e}; running without the in-process data path"),
        }
    }
    // The daemon blocks the termination signals to take them with sigwait; the child
    // must start with them deliverable again.
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (sigemptyset, sigaddset, pthread_sigmask) on a local set.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(&mut set, s);
            }
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let status = cmd.status();
    // The command's descriptors are closed; let their teardown finish.
    daemon.drain(std::time::Duration::from_secs(2));
    daemon.stop();
    drop(dir);
    match status {
        Ok(s) => match s.code() {
            Some(c) => ExitCode::from(c.clamp(0, 255) as u8),
            None => {
                use std::os::unix::process::ExitStatusExt;
                ExitCode::from(128u8.saturating_add(s.signal().unwrap_or(0) as u8))
            }
        },
        Err(e) => {
            eprintln!("netmapd exec: cannot run {prog}: {e}");
            ExitCode::from(127)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::elf_is_static;

    /// A minimal 64-bit ELF executable header with one program header of type `pt`.
    fn elf(pt: u32) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // 64-bit
        b[5] = 1; // little-endian
        b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        b[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        b[64..68].copy_from_slice(&pt.to_le_bytes());
        b
    }

    #[test]
    fn static_and_dynamic_elf() {
        assert!(elf_is_static(&elf(1)), "PT_LOAD only: static");
        assert!(!elf_is_static(&elf(3)), "PT_INTERP: dynamic");
        let me = std::fs::read("/proc/self/exe").expect("own executable");
        assert!(!elf_is_static(&me), "the test binary is dynamic");
        assert!(
            !elf_is_static(b"#!/bin/sh\necho hi\n"),
            "a script is not judged"
        );
        let mut short = elf(1);
        short.truncate(70);
        assert!(!elf_is_static(&short[..40]), "too short to be ELF");
    }
}
