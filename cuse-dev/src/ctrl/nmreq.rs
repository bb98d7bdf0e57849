//! NIOCCTRL: header checks, body and option-chain copy-in and copy-out, dispatch
//! (NETMAP-ABI.md §5). The copy-in reproduces the kernel's staging-buffer accounting
//! exactly, because applications (and ctrl-api-test #19–22) observe which error a
//! looping or oversized chain produces.

use super::{ControlPlane, Errno, FdId, UserMemory};
use netmap_abi as abi;
use netmap_abi::{NmreqHeader, NmreqOption};
use zerocopy::{FromBytes, IntoBytes};

/// Kernel staging buffer: saved pointers, body, option table, then per option its
/// saved next pointer, header and known body.
const STAGING: usize = 8 * 8 + abi::NETMAP_REQ_MAXSIZE + 6 * 8;
const OPT_OVERHEAD: usize = 8 + abi::NMREQ_OPTION_SIZE;

/// One option copied from the caller.
#[derive(Debug, Clone)]
pub(crate) struct ReqOption {
    /// Where it lives in the caller (for write-back).
    pub uaddr: u64,
    /// Header as read; `nro_next` keeps the caller's value, `nro_status` is ours.
    pub hdr: NmreqOption,
    /// Body of a known type (bytes after the header).
    pub body: Vec<u8>,
}

/// The decoded request handed to the request handlers.
pub(crate) struct Request {
    pub hdr: NmreqHeader,
    pub name: String,
    pub body: Vec<u8>,
    pub opts: Vec<ReqOption>,
}

impl Request {
    /// The first option of `reqtype`, if any (duplicates were refused at copy-in).
    pub fn option_mut(&mut self, reqtype: u32) -> Option<&mut ReqOption> {
        self.opts.iter_mut().find(|o| o.hdr.nro_reqtype == reqtype)
    }
}

/// Writes option headers back with their current status (copy-in failure path).
fn write_back_headers(opts: &[ReqOption], um: &dyn UserMemory) {
    for o in opts {
        if let Err(e) = um.write(o.uaddr, o.hdr.as_bytes()) {
            tracing::debug!(addr = o.uaddr, %e, "option write-back failed");
        }
    }
}

/// Copies the option chain in, following the kernel's rules (§5 step 4).
pub(crate) fn copy_in_options(
    first: u64,
    body_size: usize,
    um: &dyn UserMemory,
) -> Result<Vec<ReqOption>, Errno> {
    let mut used = 16 + body_size + 48;
    let mut rqsz = body_size;
    let mut opts: Vec<ReqOption> = Vec::new();
    let mut seen: [Option<usize>; abi::NETMAP_REQ_OPT_MAX as usize] =
        [None; abi::NETMAP_REQ_OPT_MAX as usize];
    let mut ptr = first;
    let fail = |opts: &[ReqOption], e: i32| {
        write_back_headers(opts, um);
        Err(Errno(e))
    };
    while ptr != 0 {
        if used + OPT_OVERHEAD > STAGING {
            tracing::debug!(
                options = opts.len(),
                "option chain does not fit the staging buffer (loop?)"
            );
            return Err(Errno(libc::EMSGSIZE));
        }
        let mut raw = [0u8; abi::NMREQ_OPTION_SIZE];
        if let Err(e) = um.read(ptr, &mut raw) {
            return fail(&opts, e.0);
        }
        let Ok(mut hdr) = NmreqOption::read_from_bytes(&raw) else {
            return fail(&opts, libc::EFAULT);
        };
        hdr.nro_status = 0;
        used += OPT_OVERHEAD;
        rqsz += abi::NMREQ_OPTION_SIZE;
        let t = hdr.nro_reqtype;
        let next = hdr.nro_next;
        opts.push(ReqOption {
            uaddr: ptr,
            hdr,
            body: Vec::new(),
        });
        let me = opts.len() - 1;
        if t == 0 {
            tracing::debug!("option with type 0");
            opts[me].hdr.nro_status = libc::EINVAL as u32;
            return fail(&opts, libc::EINVAL);
        }
        if let Some(bsz) = abi::opt_body_size(t, hdr.nro_size) {
            if let Some(prev) = seen[t as usize] {
                tracing::debug!(reqtype = t, "option given twice");
                opts[prev].hdr.nro_status = libc::EINVAL as u32;
                opts[me].hdr.nro_status = libc::EINVAL as u32;
                return fail(&opts, libc::EINVAL);
            }
            seen[t as usize] = Some(me);
            let bsz = bsz as usize;
            if bsz > abi::NETMAP_REQ_MAXSIZE
                || hdr.nro_size > abi::NETMAP_REQ_MAXSIZE as u64
                || rqsz + bsz > abi::NETMAP_REQ_MAXSIZE
                || used + bsz > STAGING
            {
                tracing::debug!(reqtype = t, nro_size = hdr.nro_size, "option too large");
                return fail(&opts, libc::EMSGSIZE);
            }
            let mut body = vec![0u8; bsz];
            if let Err(e) = um.read(ptr + abi::NMREQ_OPTION_SIZE as u64, &mut body) {
                return fail(&opts, e.0);
            }
            opts[me].body = body;
            rqsz += bsz;
            used += bsz;
        }
        ptr = next;
    }
    Ok(opts)
}

/// Copy-out (§5 step 6): body only on success; every option header always; an
/// option body only on success with status 0.
fn copy_out(req: &Request, ok: bool, um: &dyn UserMemory) -> Result<(), Errno> {
    let mut res = Ok(());
    if ok && !req.body.is_empty() {
        res = um.write(req.hdr.nr_body, &req.body);
    }
    for o in &req.opts {
        if let Err(e) = um.write(o.uaddr, o.hdr.as_bytes()) {
            tracing::debug!(addr = o.uaddr, %e, "option write-back failed");
            res = Err(e);
        }
        if ok && o.hdr.nro_status == 0 && !o.body.is_empty() {
            if let Err(e) = um.write(o.uaddr + abi::NMREQ_OPTION_SIZE as u64, &o.body) {
                res = Err(e);
            }
        }
    }
    res
}

/// Header checks of §5 steps 1–3: returns the decoded header and the body size.
fn check_header(fd: FdId, arg: &[u8]) -> Result<(NmreqHeader, usize), Errno> {
    let Ok(hdr) = NmreqHeader::read_from_bytes(arg) else {
        tracing::debug!(len = arg.len(), "NIOCCTRL argument of the wrong size");
        return Err(Errno(libc::EINVAL));
    };
    let v = u32::from(hdr.nr_version);
    if !(abi::NETMAP_MIN_API..=abi::NETMAP_MAX_API).contains(&v) {
        tracing::debug!(fd, version = v, "NIOCCTRL: unsupported API version");
        return Err(Errno(libc::EINVAL));
    }
    if hdr.nr_reserved != 0 {
        tracing::debug!(fd, "NIOCCTRL: nr_reserved is not zero");
        return Err(Errno(libc::EINVAL));
    }
    let bsz = abi::req_body_size(hdr.nr_reqtype);
    if (bsz > 0) != (hdr.nr_body != 0) {
        tracing::debug!(
            fd,
            reqtype = hdr.nr_reqtype,
            body = hdr.nr_body,
            "NIOCCTRL: body presence does not match the request type"
        );
        return Err(Errno(libc::EINVAL));
    }
    Ok((hdr, bsz))
}

/// A range of the caller's memory that NIOCCTRL reads during copy-in and may write
/// during copy-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserRegion {
    pub addr: u64,
    pub len: usize,
}

/// Lets reads through and drops writes (planning must have no effect on the caller).
struct ReadOnly<'a>(&'a dyn UserMemory);

impl UserMemory for ReadOnly<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.0.read(addr, buf)
    }
    fn write(&self, _addr: u64, _data: &[u8]) -> Result<(), Errno> {
        Ok(())
    }
}

/// Plans a NIOCCTRL without executing it: runs the header checks and the copy-in of
/// the body and the option chain exactly as [`ControlPlane::ioctl`] does (same reads,
/// same order, same errors), with every write dropped and no request handled.
///
/// Every read of a NIOCCTRL happens during this copy-in, before any side effect, and
/// the copy-out writes only into regions read here (header, body, each option header
/// and known option body). A transport that must name the caller's memory in advance
/// (CUSE's FUSE_IOCTL_RETRY) runs this over the memory it has so far, learns of the next
/// region when a read misses, and executes the request once the plan completes.
///
/// Returns the regions read, in read order (the header itself, held in `arg`, is not
/// among them), or the errno the request would fail with during copy-in.
pub fn nmreq_user_regions(arg: &[u8], um: &dyn UserMemory) -> Result<Vec<UserRegion>, Errno> {
    let (hdr, bsz) = check_header(0, arg)?;
    let ro = ReadOnly(um);
    let mut regions = Vec::new();
    if bsz > 0 {
        let mut body = vec![0u8; bsz];
        ro.read(hdr.nr_body, &mut body)?;
        regions.push(UserRegion {
            addr: hdr.nr_body,
            len: bsz,
        });
    }
    let opts = copy_in_options(hdr.nr_options, bsz, &ro)?;
    regions.extend(opts.iter().map(|o| UserRegion {
        addr: o.uaddr,
        len: abi::NMREQ_OPTION_SIZE + o.body.len(),
    }));
    Ok(regions)
}

impl ControlPlane {
    /// NIOCCTRL entry point: returns the 88-byte header to copy back.
    pub(crate) fn nmreq_ctrl(
        &self,
        fd: FdId,
        arg: &[u8],
        um: &dyn UserMemory,
    ) -> Result<Vec<u8>, Errno> {
        let (mut hdr, bsz) = check_header(fd, arg)?;
        let mut body = vec![0u8; bsz];
        um.read(hdr.nr_body, &mut body)?;
        let mut opts = copy_in_options(hdr.nr_options, bsz, um)?;
        for o in &mut opts {
            o.hdr.nro_status = libc::EOPNOTSUPP as u32;
        }
        hdr.nr_name[abi::NETMAP_REQ_IFNAMSIZ - 1] = 0;
        let mut req = Request {
            name: abi::cname(&hdr.nr_name),
            hdr,
            body,
            opts,
        };
        let res = self.dispatch(fd, &mut req, um);
        if let Err(e) = &res {
            tracing::debug!(fd, reqtype = req.hdr.nr_reqtype, name = %req.name, errno = e.0, "NIOCCTRL failed: {e}");
        }
        let out = copy_out(&req, res.is_ok(), um);
        res?;
        out?;
        Ok(req.hdr.as_bytes().to_vec())
    }

    fn dispatch(&self, fd: FdId, req: &mut Request, um: &dyn UserMemory) -> Result<(), Errno> {
        match req.hdr.nr_reqtype {
            abi::NETMAP_REQ_REGISTER => self.req_register(fd, req, um),
            abi::NETMAP_REQ_PORT_INFO_GET => self.req_port_info(req),
            abi::NETMAP_REQ_POOLS_INFO_GET => self.req_pools_info(req),
            abi::NETMAP_REQ_PORT_HDR_GET => self.req_port_hdr_get(req),
            abi::NETMAP_REQ_VALE_LIST => self.req_vale_list(req),
            abi::NETMAP_REQ_PORT_HDR_SET
            | abi::NETMAP_REQ_VALE_ATTACH
            | abi::NETMAP_REQ_VALE_DETACH
            | abi::NETMAP_REQ_VALE_NEWIF
            | abi::NETMAP_REQ_VALE_DELIF
            | abi::NETMAP_REQ_VALE_POLLING_ENABLE
            | abi::NETMAP_REQ_VALE_POLLING_DISABLE => self.req_vale_other(req),
            abi::NETMAP_REQ_SYNC_KLOOP_START => self.req_kloop_start(fd, req, um),
            abi::NETMAP_REQ_SYNC_KLOOP_STOP => self.req_kloop_stop(fd),
            abi::NETMAP_REQ_CSB_ENABLE => self.req_csb_enable(fd, req, um),
            t => {
                tracing::debug!(reqtype = t, "unknown request type");
                Err(Errno(libc::EINVAL))
            }
        }
    }
}
