//! `netmapd exec -- CMD`: a private mount namespace with its own `/dev/netmap`, a fresh
//! daemon serving it, and CMD run inside. Also the signal plumbing of the daemon.
//!
//! The private namespace gets a private tmpfs on `/dev` holding only the device nodes
//! programs commonly need, so the daemon's device file never appears in the host's
//! `/dev` and everything disappears with the namespace.
#![allow(unsafe_code)]

use crate::DaemonOpts;
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
    if opts.status_socket.is_none() && std::env::var_os(crate::status::SOCKET_ENV).is_none() {
        // Single-threaded here, so changing the environment is sound.
        std::env::set_var(crate::status::SOCKET_ENV, "/dev/.netmapd-status.sock");
    }
    Ok(())
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

/// Where the preload library is: `$NETMAPD_PRELOAD_LIB`, else beside this binary.
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
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found beside {} (build it: cargo build --release -p netmapd-preload)",
            PRELOAD_LIB,
            exe.display()
        ))
    }
}

pub fn run(opts: &DaemonOpts, command: &[String], preload: bool) -> ExitCode {
    let _set = block_signals();
    // A CUSE device name is global to the machine: use one of our own, so a daemon
    // serving the host's /dev/netmap (or another exec) does not collide with us.
    let mut opts = opts.clone();
    if opts.cuse_name.is_none() {
        opts.cuse_name = Some(format!("netmapd-exec-{}", std::process::id()));
    }
    let opts = &opts;
    let daemon = match crate::daemon::start(opts) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(125);
        }
    };
    let Some((prog, args)) = command.split_first() else {
        return ExitCode::from(125);
    };
    let mut cmd = Command::new(prog);
    cmd.args(args);
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
