//! Unrestricted CUSE ioctls without `process_vm_*`: the FUSE_IOCTL_RETRY planner.
//!
//! A CUSE ioctl first reaches the daemon with the raw argument pointer and no data. The
//! daemon answers FUSE_IOCTL_RETRY naming the caller's memory it wants copied in and
//! out; the kernel re-sends the ioctl with the in-regions' bytes concatenated, and so
//! on, until the daemon gives the final answer, whose data the kernel scatters over the
//! out-regions.
//!
//! The daemon keeps no state between the rounds. Each round replays the request's
//! copy-in ([`nmreq_user_regions`]) over a `Discovery` memory that hands out the
//! supplied bytes in the order the reads ask for them: the plan is deterministic, so
//! the n-th new region read in this round is the n-th region requested in the previous
//! one. A read beyond the supplied bytes is a *miss*: the round answers RETRY with every
//! region so far plus the miss. When a round's plan runs to its end (success or a
//! copy-in error) with every read served, the request is executed over the same memory,
//! its writes land in a copy of the supplied bytes, and the final reply sends that copy
//! back through the same list (out-regions = in-regions), so bytes the request did not
//! write are written back unchanged.
//!
//! Termination: every RETRY adds one region, and the copy-in reads at most the header,
//! the body and the option headers and bodies admitted by the staging-buffer rules
//! (a looping chain re-reads regions it already has and ends in EMSGSIZE or EINVAL).
//! Regions that follow each other in memory are merged, so an array of options costs one
//! iovec. If a request still needs more iovecs than one retry may carry
//! ([`MAX_SPANS`]), it is served through the caller's memory directly
//! (`direct`: `process_vm_readv/writev`).
//!
//! Error equivalence with the FUSE front end: header checks, EMSGSIZE/EINVAL from the
//! staging rules and the request's own errors are computed by the same code over the
//! same bytes. A bad pointer makes the kernel fail the retried ioctl with EFAULT
//! before the daemon sees it: the same errno, but the option headers copied so far are
//! not written back with status 0 as the FUSE path does.

use crate::ctrl::{nmreq_user_regions, ControlPlane, Errno, FdId, NoMemory, UserMemory};
use netmap_abi as abi;
use std::cell::{Cell, RefCell};

/// In-iovecs + out-iovecs of one retry are limited to 256 (FUSE_IOCTL_MAX_IOV) and we
/// name every region in both lists.
pub const MAX_SPANS: usize = 128;
/// Bytes of one retry (the kernel allows 32 pages per direction).
pub const MAX_BYTES: usize = 64 << 10;

/// A region of the caller's memory named in a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub addr: u64,
    pub len: usize,
}

impl Span {
    fn end(&self) -> u64 {
        self.addr + self.len as u64
    }
}

/// What to answer one CUSE ioctl request with.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// FUSE_IOCTL_RETRY with these regions as both in- and out-iovecs.
    Retry(Vec<Span>),
    /// The final answer: the ioctl returns `result` (0 or −errno) and `data` is
    /// scattered over the out-regions of the last retry, in order.
    Reply { result: i32, data: Vec<u8> },
    /// Fail with this errno, copying nothing out.
    Error(i32),
}

/// The part of the control plane the planner drives (a trait so tests can count calls).
pub trait IoctlTarget {
    fn ioctl(&self, fd: FdId, cmd: u32, arg: &[u8], um: &dyn UserMemory) -> Result<Vec<u8>, Errno>;
}

impl IoctlTarget for ControlPlane {
    fn ioctl(&self, fd: FdId, cmd: u32, arg: &[u8], um: &dyn UserMemory) -> Result<Vec<u8>, Errno> {
        ControlPlane::ioctl(self, fd, cmd, arg, um)
    }
}

/// Size of the fixed argument of the ioctls that carry one (0: no argument).
fn arg_size(cmd: u32) -> usize {
    match cmd {
        abi::NIOCCTRL | abi::NIOCREGIF | abi::NIOCGINFO | abi::NIOCCONFIG => {
            ((cmd >> 16) & 0x3fff) as usize
        }
        _ => 0,
    }
}

/// One round of an unrestricted ioctl: `arg` is the caller's raw argument, `in_buf`
/// the bytes the kernel supplied for the previous round's regions (empty on the first
/// round), `out_size` the total size of its out-regions. `caller` reaches the caller's
/// memory directly; it is used only for requests too large for a retry.
pub fn step(
    target: &dyn IoctlTarget,
    fd: FdId,
    cmd: u32,
    arg: u64,
    in_buf: &[u8],
    out_size: usize,
    caller: &dyn UserMemory,
) -> Step {
    let size = arg_size(cmd);
    if size == 0 || arg == 0 {
        // Sync ioctls, unknown commands, and a NULL argument (EINVAL, as netmap).
        return match target.ioctl(fd, cmd, &[], &NoMemory) {
            Ok(out) => Step::Reply {
                result: 0,
                data: if size == 0 { Vec::new() } else { out },
            },
            Err(e) => Step::Error(e.0),
        };
    }
    let hdr = Span {
        addr: arg,
        len: size,
    };
    if in_buf.len() < size {
        return Step::Retry(vec![hdr]);
    }
    if cmd != abi::NIOCCTRL {
        // Legacy NIOCREGIF / NIOCGINFO and NIOCCONFIG: a plain in/out struct.
        return match target.ioctl(fd, cmd, &in_buf[..size], &NoMemory) {
            Ok(mut out) => {
                out.resize(size, 0);
                Step::Reply {
                    result: 0,
                    data: out,
                }
            }
            Err(e) => Step::Error(e.0),
        };
    }
    let mem = Discovery::new(hdr, in_buf);
    // Only the misses matter; the plan's own result is reproduced by the execution.
    let _ = nmreq_user_regions(&in_buf[..size], &mem);
    if let Some(miss) = mem.miss.get() {
        let spans = mem.spans_with(miss);
        let bytes: usize = spans.iter().map(|s| s.len).sum();
        if spans.len() > MAX_SPANS || bytes > MAX_BYTES {
            tracing::debug!(
                spans = spans.len(),
                bytes,
                "NIOCCTRL too scattered for a retry; using the caller's memory directly"
            );
            return direct(target, fd, &in_buf[..size], arg, caller);
        }
        return Step::Retry(spans);
    }
    if mem.consumed.get() != in_buf.len() || out_size != in_buf.len() {
        // The caller changed its request between rounds: ask again for what the
        // current bytes need.
        tracing::debug!("NIOCCTRL changed between retries");
        return Step::Retry(mem.spans_with_none());
    }
    mem.frozen.set(true);
    let res = target.ioctl(fd, cmd, &in_buf[..size], &mem);
    let result = match res {
        Ok(h) => match mem.write(arg, &h) {
            Ok(()) => 0,
            Err(e) => -e.0,
        },
        Err(e) => -e.0,
    };
    Step::Reply {
        result,
        data: mem.image.into_inner(),
    }
}

/// Serves a NIOCCTRL through the caller's memory (no retry).
fn direct(
    target: &dyn IoctlTarget,
    fd: FdId,
    hdr: &[u8],
    arg: u64,
    caller: &dyn UserMemory,
) -> Step {
    match target
        .ioctl(fd, abi::NIOCCTRL, hdr, caller)
        .and_then(|h| caller.write(arg, &h))
    {
        Ok(()) => Step::Reply {
            result: 0,
            data: Vec::new(),
        },
        Err(e) => Step::Error(e.0),
    }
}

/// The caller's memory as far as the kernel has supplied it (see the module doc).
struct Discovery<'a> {
    in_buf: &'a [u8],
    /// Regions in request order, with their offset in `in_buf`.
    spans: RefCell<Vec<(Span, usize)>>,
    consumed: Cell<usize>,
    miss: Cell<Option<Span>>,
    /// No more regions may be discovered (execution pass).
    frozen: Cell<bool>,
    /// `in_buf` with the request's writes applied.
    image: RefCell<Vec<u8>>,
}

impl<'a> Discovery<'a> {
    fn new(hdr: Span, in_buf: &'a [u8]) -> Self {
        Self {
            in_buf,
            spans: RefCell::new(vec![(hdr, 0)]),
            consumed: Cell::new(hdr.len),
            miss: Cell::new(None),
            frozen: Cell::new(false),
            image: RefCell::new(in_buf.to_vec()),
        }
    }

    /// Where `[addr, addr+len)` lies in `in_buf`, if one region holds all of it.
    fn find(&self, addr: u64, len: usize) -> Option<usize> {
        let end = addr.checked_add(len as u64)?;
        self.spans
            .borrow()
            .iter()
            .find(|(s, _)| s.addr <= addr && end <= s.end())
            .map(|(s, off)| off + (addr - s.addr) as usize)
    }

    /// The region list with `extra` appended, merged into the last region when it
    /// follows it in memory (the same rule [`UserMemory::read`] applies on replay).
    fn spans_with(&self, extra: Span) -> Vec<Span> {
        let mut v = self.spans_with_none();
        match v.last_mut() {
            Some(last) if last.end() == extra.addr => last.len += extra.len,
            _ => v.push(extra),
        }
        v
    }

    fn spans_with_none(&self) -> Vec<Span> {
        self.spans.borrow().iter().map(|(s, _)| *s).collect()
    }
}

impl UserMemory for Discovery<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if buf.is_empty() {
            return Ok(());
        }
        let len = buf.len();
        if addr.checked_add(len as u64).is_none() {
            return Err(Errno(libc::EFAULT));
        }
        if let Some(off) = self.find(addr, len) {
            buf.copy_from_slice(&self.in_buf[off..off + len]);
            return Ok(());
        }
        if self.frozen.get() {
            tracing::warn!(addr, len, "NIOCCTRL read outside the planned regions");
            return Err(Errno(libc::EFAULT));
        }
        let off = self.consumed.get();
        if self.miss.get().is_some() || off + len > self.in_buf.len() {
            self.miss
                .set(Some(self.miss.get().unwrap_or(Span { addr, len })));
            return Err(Errno(libc::EFAULT));
        }
        {
            let mut spans = self.spans.borrow_mut();
            match spans.last_mut() {
                Some((last, _)) if last.end() == addr => last.len += len,
                _ => spans.push((Span { addr, len }, off)),
            }
        }
        self.consumed.set(off + len);
        buf.copy_from_slice(&self.in_buf[off..off + len]);
        Ok(())
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        if data.is_empty() {
            return Ok(());
        }
        let Some(end) = addr.checked_add(data.len() as u64) else {
            return Err(Errno(libc::EFAULT));
        };
        if self.find(addr, data.len()).is_none() {
            tracing::warn!(
                addr,
                len = data.len(),
                "NIOCCTRL write outside the planned regions"
            );
            return Err(Errno(libc::EFAULT));
        }
        // Overlapping regions are all written back: keep every copy identical.
        let mut image = self.image.borrow_mut();
        for (s, off) in self.spans.borrow().iter() {
            let lo = addr.max(s.addr);
            let hi = end.min(s.end());
            if lo < hi {
                let dst = off + (lo - s.addr) as usize;
                let src = (lo - addr) as usize;
                let n = (hi - lo) as usize;
                image[dst..dst + n].copy_from_slice(&data[src..src + n]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
