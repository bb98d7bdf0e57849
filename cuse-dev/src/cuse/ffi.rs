//! libfuse3's CUSE low-level API: hand-written declarations, the C callbacks, and safe
//! wrappers ([`Req`], [`PollHandle`], [`Session`]) for the policy in the parent module.
//!
//! Only pointers libfuse hands us are dereferenced, and only the fields whose offsets
//! the `layout_matches_the_installed_headers` test checks against the installed headers
//! (`fuse_file_info.fh` at 16 and `.poll_events` at 32 are the same in libfuse 3.14
//! and 3.17).
#![allow(unsafe_code)]

use super::retry::{Span, Step};
use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::io;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;

#[repr(C)]
struct FuseReqOpaque {
    _p: [u8; 0],
}
type FuseReqT = *mut FuseReqOpaque;

#[repr(C)]
struct FuseSession {
    _p: [u8; 0],
}
#[repr(C)]
struct FusePollhandle {
    _p: [u8; 0],
}
#[repr(C)]
struct FuseConnInfo {
    _p: [u8; 0],
}
#[repr(C)]
struct FuseLoopConfig {
    _p: [u8; 0],
}

/// The leading fields of `struct fuse_file_info` (libfuse owns the whole struct).
#[repr(C)]
struct FuseFileInfo {
    flags: c_int,
    bits: c_uint,
    padding2: c_uint,
    fh: u64,
    lock_owner: u64,
    poll_events: u32,
}

#[repr(C)]
struct FuseCtx {
    uid: libc::uid_t,
    gid: libc::gid_t,
    pid: libc::pid_t,
    umask: libc::mode_t,
}

#[repr(C)]
struct CuseInfo {
    dev_major: c_uint,
    dev_minor: c_uint,
    dev_info_argc: c_uint,
    dev_info_argv: *const *const c_char,
    flags: c_uint,
}

#[repr(C)]
struct FuseArgs {
    argc: c_int,
    argv: *mut *mut c_char,
    allocated: c_int,
}

type FiOp = unsafe extern "C" fn(FuseReqT, *mut FuseFileInfo);

#[repr(C)]
struct CuseLowlevelOps {
    init: Option<unsafe extern "C" fn(*mut c_void, *mut FuseConnInfo)>,
    init_done: Option<unsafe extern "C" fn(*mut c_void)>,
    destroy: Option<unsafe extern "C" fn(*mut c_void)>,
    open: Option<FiOp>,
    read: Option<unsafe extern "C" fn(FuseReqT, usize, libc::off_t, *mut FuseFileInfo)>,
    write: Option<
        unsafe extern "C" fn(FuseReqT, *const c_char, usize, libc::off_t, *mut FuseFileInfo),
    >,
    flush: Option<FiOp>,
    release: Option<FiOp>,
    fsync: Option<unsafe extern "C" fn(FuseReqT, c_int, *mut FuseFileInfo)>,
    ioctl: Option<
        unsafe extern "C" fn(
            FuseReqT,
            c_int,
            *mut c_void,
            *mut FuseFileInfo,
            c_uint,
            *const c_void,
            usize,
            usize,
        ),
    >,
    poll: Option<unsafe extern "C" fn(FuseReqT, *mut FuseFileInfo, *mut FusePollhandle)>,
}

const CUSE_UNRESTRICTED_IOCTL: c_uint = 1;

/// The libfuse3 shared object, as packaged by every distribution (Debian: libfuse3-3).
pub const LIBFUSE3: &str = "libfuse3.so.3";

/// Declares the libfuse3 functions we call: a table of function pointers filled by
/// `dlopen`/`dlsym` at the first CUSE start, and one `unsafe fn` per entry with the C
/// name and signature so the call sites read like C.
///
/// Why at run time and not linked: a link-time dependency made the CUSE front end a
/// property of the *build machine* (a build made before libfuse3-dev was installed had
/// no CUSE at all, and cargo never re-ran the check after the install). Loaded at run
/// time, every build has the CUSE front end, it needs only the runtime library
/// (libfuse3-3, no headers, no pkg-config), and `--frontend cuse` says clearly when
/// that library is missing.
macro_rules! fuse3_api {
    ($( fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty ; )*) => {
        #[allow(non_snake_case)]
        struct Fuse3 {
            $( $name: unsafe extern "C" fn($($ty),*) -> $ret, )*
            /// Keeps the library mapped for as long as the pointers above live.
            _lib: libloading::Library,
        }

        impl Fuse3 {
            fn load() -> Result<Self, String> {
                // SAFETY: libfuse3's initialisers only set up its own state; loading it
                // runs no code of ours.
                let lib = unsafe { libloading::Library::new(LIBFUSE3) }
                    .map_err(|e| e.to_string())?;
                $(
                    // SAFETY: the symbol is libfuse3's public function of that name, whose
                    // C prototype (fuse_lowlevel.h, cuse_lowlevel.h) is the type given.
                    let $name = *unsafe {
                        lib.get::<unsafe extern "C" fn($($ty),*) -> $ret>(
                            concat!(stringify!($name), "\0").as_bytes(),
                        )
                    }
                    .map_err(|e| format!("{}: {e}", stringify!($name)))?;
                )*
                Ok(Self { $($name,)* _lib: lib })
            }
        }

        $(
            #[allow(clippy::unused_unit)]
            /// Calls libfuse3's function of the same name.
            ///
            /// # Safety
            /// As the C function's contract; the library must have been loaded by
            /// [`load_libfuse3`] (every caller runs after a session started).
            unsafe fn $name($($arg: $ty),*) -> $ret {
                // SAFETY: forwarded to the caller (see the function's contract).
                unsafe { (api().$name)($($arg),*) }
            }
        )*
    };
}

fuse3_api! {
    fn cuse_lowlevel_new(
        args: *mut FuseArgs,
        ci: *const CuseInfo,
        clop: *const CuseLowlevelOps,
        userdata: *mut c_void,
    ) -> *mut FuseSession;
    fn fuse_session_mount(se: *mut FuseSession, mountpoint: *const c_char) -> c_int;
    fn fuse_session_loop(se: *mut FuseSession) -> c_int;
    fn fuse_session_loop_mt_312(se: *mut FuseSession, cfg: *mut FuseLoopConfig) -> c_int;
    fn fuse_loop_cfg_create() -> *mut FuseLoopConfig;
    fn fuse_loop_cfg_set_max_threads(cfg: *mut FuseLoopConfig, value: c_uint) -> ();
    fn fuse_loop_cfg_set_clone_fd(cfg: *mut FuseLoopConfig, value: c_uint) -> ();
    fn fuse_session_exit(se: *mut FuseSession) -> ();
    fn fuse_req_ctx(req: FuseReqT) -> *const FuseCtx;
    fn fuse_reply_err(req: FuseReqT, err: c_int) -> c_int;
    fn fuse_reply_open(req: FuseReqT, fi: *const FuseFileInfo) -> c_int;
    fn fuse_reply_ioctl_retry(
        req: FuseReqT,
        in_iov: *const libc::iovec,
        in_count: usize,
        out_iov: *const libc::iovec,
        out_count: usize,
    ) -> c_int;
    fn fuse_reply_ioctl(req: FuseReqT, result: c_int, buf: *const c_void, size: usize) -> c_int;
    fn fuse_reply_poll(req: FuseReqT, revents: c_uint) -> c_int;
    fn fuse_lowlevel_notify_poll(ph: *mut FusePollhandle) -> c_int;
    fn fuse_pollhandle_destroy(ph: *mut FusePollhandle) -> ();
}

static FUSE3: std::sync::OnceLock<Result<Fuse3, String>> = std::sync::OnceLock::new();

/// Loads libfuse3 once per process; the error names the library and what failed.
pub fn load_libfuse3() -> Result<(), String> {
    match FUSE3.get_or_init(Fuse3::load) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.clone()),
    }
}

/// The loaded library. Every libfuse3 call happens inside a session, which exists only
/// after [`load_libfuse3`] succeeded; anything else is a bug in this module.
fn api() -> &'static Fuse3 {
    match FUSE3.get() {
        Some(Ok(f)) => f,
        _ => panic!("libfuse3 called before load_libfuse3 succeeded"),
    }
}

/// What the CUSE device does; the parent module implements it over the control plane.
pub trait Handler: Send + Sync {
    /// The kernel registered the device (CUSE_INIT answered).
    fn init_done(&self);
    /// A new open; returns the file handle.
    fn open(&self) -> u64;
    fn release(&self, fh: u64);
    /// One ioctl round (see [`super::retry::step`]); `pid` is the calling thread.
    fn ioctl(&self, pid: u32, fh: u64, cmd: u32, arg: u64, in_buf: &[u8], out_size: usize) -> Step;
    /// Returns the ready events; keeps `ph` (or drops it) as the control plane decides.
    fn poll(&self, fh: u64, events: u32, ph: Option<PollHandle>) -> u32;
}

struct Userdata {
    handler: Arc<dyn Handler>,
}

/// One request, answered exactly once by one of the `reply_*` methods.
pub struct Req(FuseReqT);

impl Req {
    /// The calling thread's id (in the daemon's pid namespace; 0 if invisible).
    pub fn pid(&self) -> u32 {
        // SAFETY: self.0 is a live request (not yet answered); fuse_req_ctx returns a
        // pointer into it, valid until the reply.
        let ctx = unsafe { fuse_req_ctx(self.0) };
        if ctx.is_null() {
            return 0;
        }
        // SAFETY: non-null pointer to the request's context, checked above.
        unsafe { (*ctx).pid as u32 }
    }

    pub fn reply_err(self, errno: i32) {
        // SAFETY: answers the live request once (self is consumed).
        unsafe { fuse_reply_err(self.0, errno) };
    }

    pub fn reply_ioctl(self, result: i32, data: &[u8]) {
        // SAFETY: data is valid for data.len() bytes; answers the request once.
        unsafe { fuse_reply_ioctl(self.0, result, data.as_ptr().cast(), data.len()) };
    }

    /// FUSE_IOCTL_RETRY with `spans` as both the in- and the out-iovecs.
    pub fn reply_retry(self, spans: &[Span]) {
        let iov: Vec<libc::iovec> = spans
            .iter()
            .map(|s| libc::iovec {
                iov_base: s.addr as usize as *mut c_void,
                iov_len: s.len,
            })
            .collect();
        // SAFETY: iov is valid for iov.len() entries during the call (libfuse copies
        // the addresses into its reply; they are the caller's, never dereferenced here).
        unsafe { fuse_reply_ioctl_retry(self.0, iov.as_ptr(), iov.len(), iov.as_ptr(), iov.len()) };
    }
}

/// A kernel poll handle: notify it once, or drop it.
pub struct PollHandle(NonNull<FusePollhandle>);

// SAFETY: a poll handle is a heap object libfuse hands over to us; notifying and
// destroying it from another thread is how libfuse's own examples use it.
unsafe impl Send for PollHandle {}

impl PollHandle {
    pub fn notify(self) {
        // SAFETY: the handle is live until Drop (below) destroys it.
        let rc = unsafe { fuse_lowlevel_notify_poll(self.0.as_ptr()) };
        if rc != 0 {
            tracing::debug!(rc, "CUSE poll notification not delivered");
        }
    }
}

impl Drop for PollHandle {
    fn drop(&mut self) {
        // SAFETY: we own the handle and destroy it exactly once.
        unsafe { fuse_pollhandle_destroy(self.0.as_ptr()) };
    }
}

/// Runs `f`, turning a panic into EIO for the request instead of unwinding into C.
fn guarded(req: FuseReqT, f: impl FnOnce(Req)) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(Req(req)))).is_err() {
        tracing::error!("panic while serving a CUSE request");
        // SAFETY: the panicking handler never answered (replies consume Req and are
        // the handler's last action), so the request is still live.
        unsafe { fuse_reply_err(req, libc::EIO) };
    }
}

/// The handler of this process's session.
fn handler() -> &'static dyn Handler {
    let ud = USERDATA.load(std::sync::atomic::Ordering::Acquire);
    assert!(!ud.is_null(), "CUSE callback before the session started");
    // SAFETY: USERDATA is set once, before the session exists, to a Box that is never
    // freed, so the pointer is valid for the rest of the process.
    unsafe { &*ud }.handler.as_ref()
}

static USERDATA: std::sync::atomic::AtomicPtr<Userdata> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

unsafe extern "C" fn cb_init_done(userdata: *mut c_void) {
    // SAFETY: userdata is the leaked Userdata passed to cuse_lowlevel_new.
    let ud = unsafe { &*(userdata as *const Userdata) };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ud.handler.init_done()));
}

unsafe extern "C" fn cb_open(req: FuseReqT, fi: *mut FuseFileInfo) {
    let h = handler();
    guarded(req, |r| {
        let fh = h.open();
        // SAFETY: fi points to libfuse's fuse_file_info for this request; fh is at the
        // offset checked by the layout test.
        unsafe { (*fi).fh = fh };
        // SAFETY: answers the request once with the same fi.
        unsafe { fuse_reply_open(r.0, fi) };
    });
}

unsafe extern "C" fn cb_release(req: FuseReqT, fi: *mut FuseFileInfo) {
    let h = handler();
    // SAFETY: fi is libfuse's fuse_file_info for this request.
    let fh = unsafe { (*fi).fh };
    guarded(req, |r| {
        h.release(fh);
        r.reply_err(0);
    });
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn cb_ioctl(
    req: FuseReqT,
    cmd: c_int,
    arg: *mut c_void,
    fi: *mut FuseFileInfo,
    _flags: c_uint,
    in_buf: *const c_void,
    in_bufsz: usize,
    out_bufsz: usize,
) {
    let h = handler();
    // SAFETY: fi is libfuse's fuse_file_info for this request.
    let fh = unsafe { (*fi).fh };
    let data: &[u8] = if in_buf.is_null() || in_bufsz == 0 {
        &[]
    } else {
        // SAFETY: libfuse passes the request's in-data, valid for in_bufsz bytes until
        // the reply; we only read it before replying.
        unsafe { std::slice::from_raw_parts(in_buf.cast::<u8>(), in_bufsz) }
    };
    guarded(req, |r| {
        match h.ioctl(
            r.pid(),
            fh,
            cmd as u32,
            arg as usize as u64,
            data,
            out_bufsz,
        ) {
            Step::Retry(spans) => r.reply_retry(&spans),
            Step::Reply { result, data } => r.reply_ioctl(result, &data),
            Step::Error(e) => r.reply_err(e),
        }
    });
}

unsafe extern "C" fn cb_poll(req: FuseReqT, fi: *mut FuseFileInfo, ph: *mut FusePollhandle) {
    let h = handler();
    // SAFETY: fi is libfuse's fuse_file_info for this request.
    let (fh, events) = unsafe { ((*fi).fh, (*fi).poll_events) };
    let ph = NonNull::new(ph).map(PollHandle);
    guarded(req, |r| {
        let revents = h.poll(fh, events, ph);
        // SAFETY: answers the request once.
        unsafe { fuse_reply_poll(r.0, revents) };
    });
}

static OPS: CuseLowlevelOps = CuseLowlevelOps {
    init: None,
    init_done: Some(cb_init_done),
    destroy: None,
    open: Some(cb_open),
    read: None,
    write: None,
    flush: None,
    release: Some(cb_release),
    fsync: None,
    ioctl: Some(cb_ioctl),
    poll: Some(cb_poll),
};

struct SessionPtr(*mut FuseSession);
// SAFETY: fuse_session_exit may be called from any thread (it sets a flag).
unsafe impl Send for SessionPtr {}
// SAFETY: see Send; the pointer is only passed to fuse_session_exit.
unsafe impl Sync for SessionPtr {}

/// A running CUSE session (one per process: the device's callbacks are process-wide).
pub struct Session {
    se: SessionPtr,
}

impl Session {
    /// Registers the character device `devname` through `cuse` (an open `/dev/cuse`)
    /// and serves it with `threads` libfuse worker threads.
    pub fn start(
        handler: Arc<dyn Handler>,
        cuse: OwnedFd,
        devname: &str,
        threads: usize,
    ) -> io::Result<Session> {
        let inval = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_string());
        load_libfuse3().map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))?;
        let ud = Box::into_raw(Box::new(Userdata { handler }));
        if USERDATA
            .compare_exchange(
                std::ptr::null_mut(),
                ud,
                std::sync::atomic::Ordering::AcqRel,
                std::sync::atomic::Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: ud was created above and never shared.
            drop(unsafe { Box::from_raw(ud) });
            return Err(io::Error::other(
                "a CUSE session already runs in this process",
            ));
        }
        let info = CString::new(format!("DEVNAME={devname}")).map_err(|_| inval("device name"))?;
        let info_argv = [info.as_ptr()];
        let ci = CuseInfo {
            dev_major: 0,
            dev_minor: 0,
            dev_info_argc: 1,
            dev_info_argv: info_argv.as_ptr(),
            flags: CUSE_UNRESTRICTED_IOCTL,
        };
        let prog = CString::new("netmapd").map_err(|_| inval("argv"))?;
        let mut argv = [prog.as_ptr() as *mut c_char, std::ptr::null_mut()];
        let mut args = FuseArgs {
            argc: 1,
            argv: argv.as_mut_ptr(),
            allocated: 0,
        };
        // SAFETY: every pointer is valid for the call; libfuse copies the device info
        // and the ops; ud stays alive for the process lifetime.
        let se = unsafe { cuse_lowlevel_new(&mut args, &ci, &OPS, ud.cast()) };
        if se.is_null() {
            return Err(io::Error::other("cuse_lowlevel_new failed"));
        }
        let fd = cuse.into_raw_fd();
        let mnt = CString::new(format!("/dev/fd/{fd}")).map_err(|_| inval("fd"))?;
        // SAFETY: se is a new session; "/dev/fd/N" makes libfuse adopt the open fd.
        if unsafe { fuse_session_mount(se, mnt.as_ptr()) } != 0 {
            return Err(io::Error::other("fuse_session_mount(/dev/fd/N) failed"));
        }
        let loop_se = SessionPtr(se);
        let threads = threads.max(1) as c_uint;
        std::thread::Builder::new()
            .name("cuse-loop".into())
            .spawn(move || {
                let se = loop_se;
                let rc = if threads == 1 {
                    // SAFETY: se is a mounted session, never destroyed.
                    unsafe { fuse_session_loop(se.0) }
                } else {
                    // SAFETY: as above; the config is created, used and leaked here.
                    unsafe {
                        let cfg = fuse_loop_cfg_create();
                        fuse_loop_cfg_set_max_threads(cfg, threads);
                        fuse_loop_cfg_set_clone_fd(cfg, 0);
                        fuse_session_loop_mt_312(se.0, cfg)
                    }
                };
                tracing::info!(rc, "CUSE session loop ended");
            })?;
        Ok(Session { se: SessionPtr(se) })
    }

    /// Asks the loop to end. Its threads finish when their next request arrives or
    /// the process exits (which also unregisters the device).
    pub fn exit(&self) {
        // SAFETY: the session is never destroyed, so the pointer stays valid.
        unsafe { fuse_session_exit(self.se.0) };
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    /// The struct offsets this module relies on, checked against the installed libfuse3
    /// headers with the system C compiler. `./run-tests` installs libfuse3-dev; without
    /// the headers this test fails (it cannot check anything) rather than pass.
    #[test]
    fn layout_matches_the_installed_headers() {
        let pc = Command::new("pkg-config")
            .args(["--cflags", "fuse3"])
            .output()
            .expect("pkg-config (install pkg-config and libfuse3-dev)");
        assert!(
            pc.status.success(),
            "pkg-config knows no fuse3: install libfuse3-dev ({})",
            String::from_utf8_lossy(&pc.stderr)
        );
        let cflags = String::from_utf8_lossy(&pc.stdout).into_owned();
        let dir = std::env::temp_dir().join(format!("netmapd-fuse-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let src = dir.join("fuse_layout.c");
        std::fs::write(
            &src,
            r#"#define FUSE_USE_VERSION 312
#include <stddef.h>
#include <fuse_lowlevel.h>
#include <cuse_lowlevel.h>
_Static_assert(offsetof(struct fuse_file_info, fh) == 16, "fuse_file_info.fh");
_Static_assert(offsetof(struct fuse_file_info, poll_events) == 32, "fuse_file_info.poll_events");
_Static_assert(offsetof(struct fuse_ctx, pid) == 8, "fuse_ctx.pid");
_Static_assert(sizeof(struct cuse_info) == 32, "cuse_info");
_Static_assert(sizeof(struct cuse_lowlevel_ops) == 11 * sizeof(void *), "cuse_lowlevel_ops");
_Static_assert(offsetof(struct cuse_lowlevel_ops, ioctl) == 9 * sizeof(void *), "ioctl op");
_Static_assert(FUSE_IOCTL_MAX_IOV == 256, "FUSE_IOCTL_MAX_IOV");
_Static_assert(CUSE_UNRESTRICTED_IOCTL == 1, "CUSE_UNRESTRICTED_IOCTL");
"#,
        )
        .expect("write the layout check");
        let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .arg("-fsyntax-only")
            .args(cflags.split_whitespace())
            .arg(&src)
            .output()
            .expect("a C compiler (gcc)");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "libfuse3's headers disagree with cuse/ffi.rs:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The runtime library loads and has every function we call.
    #[test]
    fn libfuse3_loads_with_every_symbol() {
        super::load_libfuse3().expect("libfuse3.so.3 (install libfuse3-3)");
    }
}
