//! The FUSE front end: `/dev/netmap` as a FUSE filesystem whose root is one regular
//! file, mounted directly over the path (the mount point's type decides the root's
//! type, so mounting over a regular file gives a regular-file root).
//!
//! * open → a new control-plane descriptor, answered with FOPEN_PASSTHROUGH onto the
//!   region's backing file: the client's `mmap` then maps the shared region itself,
//!   with no daemon round trip and no page-cache copy;
//! * ioctl → the control plane, with the caller's memory reached through
//!   `process_vm_readv/writev` on the request's pid (FUSE only moves the 60/88-byte
//!   argument of these restricted ioctls);
//! * poll → answered at once; a not-ready answer leaves the kernel's poll handle with
//!   the descriptor, and a peer's progress fires it;
//! * release → the descriptor's registration is undone.
//!
//! This module only translates; it knows nothing of netmap beyond the ioctl numbers'
//! argument sizes.

pub mod mount;
mod order;

use crate::ctrl::{ControlPlane, PollWaker, ProcessMemory};
use fuser::{
    BackingId, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, INodeNo, InitFlags,
    IoctlFlags, KernelConfig, LockOwner, OpenFlags, PollEvents, PollFlags, PollNotifier, ReplyAttr,
    ReplyEmpty, ReplyIoctl, ReplyOpen, ReplyPoll, Request,
};
use order::{Handling, Order};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Attributes of the device file.
#[derive(Debug, Clone, Copy)]
pub struct DeviceAttr {
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
}

impl Default for DeviceAttr {
    fn default() -> Self {
        Self {
            mode: 0o600,
            uid: 0,
            gid: 0,
        }
    }
}

/// The fuser filesystem serving the netmap device file.
pub struct NetmapFs {
    cp: Arc<ControlPlane>,
    attr: DeviceAttr,
    /// The passthrough backing id of the region file, registered on the first open
    /// and kept for the daemon's lifetime (one backing per inode).
    backing: Mutex<Option<BackingId>>,
    started: SystemTime,
    /// Told whether INIT succeeded (passthrough granted), if someone asked.
    init_report: Option<std::sync::mpsc::Sender<bool>>,
    /// Keeps a close ahead of the control requests its process sends after it.
    order: Order,
}

struct FuseWaker(PollNotifier);

impl PollWaker for FuseWaker {
    fn wake(self: Box<Self>) {
        if let Err(e) = self.0.notify() {
            tracing::debug!(%e, "poll notification not delivered");
        }
    }
}

const ROOT: INodeNo = INodeNo(1);
const TTL: Duration = Duration::from_secs(3600);

impl NetmapFs {
    pub fn new(cp: Arc<ControlPlane>, attr: DeviceAttr) -> Self {
        Self {
            cp,
            attr,
            backing: Mutex::new(None),
            started: SystemTime::now(),
            init_report: None,
            order: Order::default(),
        }
    }

    /// Sends `true` once the kernel's INIT was accepted with passthrough, `false` if
    /// it was refused (the kernel does not offer FUSE_PASSTHROUGH): lets a caller fall
    /// back to another front end.
    pub fn with_init_report(mut self, tx: std::sync::mpsc::Sender<bool>) -> Self {
        self.init_report = Some(tx);
        self
    }

    fn file_attr(&self) -> FileAttr {
        FileAttr {
            ino: ROOT,
            size: self.cp.region_len() as u64,
            blocks: 0,
            atime: self.started,
            mtime: self.started,
            ctime: self.started,
            crtime: self.started,
            kind: FileType::RegularFile,
            perm: self.attr.mode,
            nlink: 1,
            uid: self.attr.uid,
            gid: self.attr.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }
}

/// INIT: passthrough with stack depth 1, or an error if the kernel cannot.
fn init_passthrough(config: &mut KernelConfig) -> std::io::Result<()> {
    config
        .add_capabilities(InitFlags::FUSE_PASSTHROUGH)
        .map_err(|missing| {
            tracing::error!(
                ?missing,
                "the kernel does not offer FUSE passthrough (needs Linux >= 6.9)"
            );
            std::io::Error::from_raw_os_error(libc::ENOSYS)
        })?;
    if let Err(max) = config.set_max_stack_depth(1) {
        tracing::error!(max, "cannot set the passthrough stack depth");
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    // RELEASE is a background request; past max_background the kernel holds it back
    // while later requests go ahead, and a program exiting with many descriptors open
    // queues one per descriptor. The room keeps every close queued in order (order.rs).
    if let Err(nearest) = config.set_max_background(4096) {
        tracing::warn!(nearest, "max_background refused");
    }
    Ok(())
}

impl Filesystem for NetmapFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let res = init_passthrough(config);
        if let Some(tx) = self.init_report.take() {
            let _ = tx.send(res.is_ok());
        }
        res
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino == ROOT {
            reply.attr(&TTL, &self.file_attr());
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _in = self.order.enter(Handling::Other);
        if ino != ROOT {
            reply.error(Errno::ENOENT);
            return;
        }
        let mut backing = self.backing.lock();
        if backing.is_none() {
            match reply.open_backing(self.cp.region_file()) {
                Ok(id) => *backing = Some(id),
                Err(e) => {
                    tracing::error!(%e, "FUSE_DEV_IOC_BACKING_OPEN failed: cannot share the region");
                    reply.error(Errno::EIO);
                    return;
                }
            }
        }
        let Some(id) = backing.as_ref() else {
            reply.error(Errno::EIO);
            return;
        };
        let fd = self.cp.open();
        tracing::debug!(fd, pid = req.pid(), "open");
        reply.opened_passthrough(FileHandle(fd), FopenFlags::FOPEN_NOFLUSH, id);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _in = self.order.enter(Handling::Release);
        tracing::debug!(fd = fh.0, "release");
        let _closing = self.cp.closing();
        self.cp.release(fh.0);
        reply.ok();
    }

    /// No extended attributes; ENOSYS makes the kernel stop asking.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &std::ffi::OsStr,
        _size: u32,
        reply: fuser::ReplyXattr,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn ioctl(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: IoctlFlags,
        cmd: u32,
        in_data: &[u8],
        out_size: u32,
        reply: ReplyIoctl,
    ) {
        let _in = self.order.enter(Handling::Other);
        if order::waits_for_closes(cmd) {
            self.order.barrier();
        }
        let um = ProcessMemory::new(req.pid());
        match self.cp.ioctl(fh.0, cmd, in_data, &um) {
            Ok(mut out) => {
                out.resize(out_size as usize, 0);
                reply.ioctl(0, &out);
            }
            Err(e) => reply.error(Errno::from_i32(e.0)),
        }
    }

    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        ph: PollNotifier,
        events: PollEvents,
        flags: PollFlags,
        reply: ReplyPoll,
    ) {
        let _in = self.order.enter(Handling::Other);
        let waker: Option<Box<dyn PollWaker>> =
            if flags.contains(PollFlags::FUSE_POLL_SCHEDULE_NOTIFY) {
                Some(Box::new(FuseWaker(ph)))
            } else {
                None
            };
        let revents = self.cp.poll(fh.0, events.bits(), waker);
        reply.poll(PollEvents::from_bits_retain(revents));
    }
}
