//! NETMAP_REQ_REGISTER (NETMAP-ABI.md §5.1, §7.3, §7.4): port lookup, ring selection,
//! exclusivity, ring creation, the descriptor's netmap_if, extra buffers, and the
//! inverse — unregistering on close or when a late step fails.

use super::nmreq::{ReqOption, Request};
use super::{
    AdapterSlot, Binding, ControlPlane, Errno, FdId, PollWaker, PortKey, State, UserMemory,
};
use core::mem::{offset_of, size_of};
use netmap_abi as abi;
use netmap_abi::{NetmapIf, NmreqRegister};
use netmap_netif::af_packet::{interface_exists, NicConfig};
use netmap_netif::nic::NicPort;
use netmap_netif::null::NullPort;
use netmap_netif::pipe::{parse_pipe_name, PipePair, MAX_PIPES_PER_PARENT};
use netmap_netif::{Dir, PortCounts};
use netmap_pool::SharedMem;
use std::ops::Range;
use zerocopy::{FromBytes, IntoBytes};

/// Slot count of a pipe whose parent is not a real port (netmap creates a persistent
/// VALE port for it, whose default is 1024 slots).
pub(crate) const DEFAULT_PIPE_SLOTS: u32 = 1024;

pub(crate) fn einval(what: &str) -> Errno {
    tracing::debug!("EINVAL: {what}");
    Errno(libc::EINVAL)
}

/// The allocator a request names: 0 means "the port's own", 1 is the global one;
/// the daemon has no other.
pub(crate) fn check_mem_id(id: u16) -> Result<(), Errno> {
    if id > 1 {
        tracing::debug!(mem_id = id, "unknown allocator");
        return Err(Errno(libc::EINVAL));
    }
    Ok(())
}

/// Counts a REGISTER body asks for.
fn requested(reg: &NmreqRegister) -> PortCounts {
    PortCounts {
        tx_rings: u32::from(reg.nr_tx_rings),
        rx_rings: u32::from(reg.nr_rx_rings),
        tx_slots: reg.nr_tx_slots,
        rx_slots: reg.nr_rx_slots,
        host_tx_rings: u32::from(reg.nr_host_tx_rings),
        host_rx_rings: u32::from(reg.nr_host_rx_rings),
    }
}

/// Finds (or, with `create`, makes) the port a non-null request names.
/// Returns `(adapter, endpoint, created)`.
pub(crate) fn lookup(
    st: &mut State,
    nic: &NicConfig,
    name: &str,
    reg: &NmreqRegister,
    create: bool,
) -> Result<(u64, usize, bool), Errno> {
    if reg.nr_flags & super::monitor::MONITOR_FLAGS != 0 {
        // A new monitor of an existing, registered port (§10.5).
        return super::monitor::lookup_monitor(st, nic, name, reg);
    }
    // NICs attached to a switch (and their pipes) belong to the daemon (§10.3).
    super::vale::check_not_attached(st, name)?;
    if let Some(parsed) = parse_pipe_name(name) {
        // The parent (a NIC, a VALE port, or nothing) only provides a name here: the
        // pair has its own rings, with DEFAULT_PIPE_SLOTS when the request says 0.
        let (parent, master, id) = parsed?;
        let ep = if master { 0 } else { 1 };
        if let Some(&aid) = st.pipes.get(parent).and_then(|m| m.get(id)) {
            return Ok((aid, ep, false));
        }
        if !create {
            return Err(Errno(libc::ENODEV));
        }
        if st.pipes.get(parent).map_or(0, |m| m.len()) >= MAX_PIPES_PER_PARENT {
            return Err(einval("too many pipes on one parent"));
        }
        let pair = PipePair::new(
            parent,
            id,
            requested(reg),
            DEFAULT_PIPE_SLOTS,
            st.alloc.max_slots_per_ring(),
        );
        let aid = st.add_adapter(
            Box::new(pair),
            PortKey::Pipe(parent.to_string(), id.to_string()),
        );
        return Ok((aid, ep, true));
    }
    if name.starts_with("val") {
        return lookup_vale(st, name, reg, create);
    }
    if let Some(found) = super::vale::lookup_persistent(st, name) {
        return found;
    }
    if let Some(&aid) = st.nics.get(name) {
        return Ok((aid, 0, false));
    }
    if !create || !interface_exists(name) {
        tracing::info!(name, "no such interface");
        return Err(Errno(libc::ENXIO));
    }
    // Host ring counts asked for are honoured for a NIC nobody has open (§5.1); the
    // port is created here, so this is its first user.
    let nic = NicConfig {
        host_tx_rings: u32::from(reg.nr_host_tx_rings),
        host_rx_rings: u32::from(reg.nr_host_rx_rings),
        ..*nic
    };
    let port =
        NicPort::open(name, &nic, st.alloc.max_slots_per_ring(), nic.backend).map_err(|e| {
            tracing::info!(name, %e, "cannot open the interface");
            Errno::from(e)
        })?;
    let aid = st.add_adapter(Box::new(port), PortKey::Nic(name.to_string()));
    Ok((aid, 0, true))
}

/// A VALE port `valeX:Y`: the switch is created on first use, the port (ephemeral)
/// when absent (§10.2).
fn lookup_vale(
    st: &mut State,
    name: &str,
    reg: &NmreqRegister,
    create: bool,
) -> Result<(u64, usize, bool), Errno> {
    let Some((sw, port)) = netmap_netif::parse_vale_name(name) else {
        // The kernel routes every "val…" name to VALE and fails those without a valid
        // "switch:" part while creating the port.
        tracing::debug!(name, "not a valid VALE name");
        return Err(Errno(libc::ENOMEM));
    };
    let aid = match st.switch_id(sw) {
        Some(a) => a,
        None => {
            if !create {
                return Err(Errno(libc::ENXIO));
            }
            if st.switches.iter().all(Option::is_some) {
                tracing::info!(sw, "too many VALE switches");
                return Err(Errno(libc::ENOMEM));
            }
            st.add_adapter(
                Box::new(netmap_netif::ValeSwitch::new(sw)),
                PortKey::Vale(sw.to_string()),
            )
        }
    };
    let max = st.alloc.max_slots_per_ring();
    let sw_ad = st
        .adapters
        .get_mut(&aid)
        .and_then(|s| s.ad.as_vale_mut())
        .ok_or(Errno(libc::ENXIO))?;
    if let Some(ep) = sw_ad.find_port(port) {
        return Ok((aid, ep, false));
    }
    // A persistent port not attached here stands for a kernel netdev (vale.rs).
    if create && (interface_exists(port) || st.vale.persistent.contains_key(port)) {
        tracing::info!(
            name,
            "an interface not attached to the switch (attach it with vale-ctl -a)"
        );
        st.drop_adapter_if_unused(aid, netmap_pool::SharedMem::empty());
        return Err(Errno(libc::EINVAL));
    }
    let res = sw_ad.port(port, requested(reg), max, create);
    match res {
        Ok(ep) => Ok((aid, ep, true)),
        Err(e) => {
            st.drop_adapter_if_unused(aid, netmap_pool::SharedMem::empty());
            Err(e.into())
        }
    }
}

/// Ring ranges a descriptor binds (netmap `netmap_interp_ringid`).
pub(crate) fn interp_ringid(
    mode: u32,
    ringid: u16,
    flags: u64,
    c: &PortCounts,
) -> Result<(Range<usize>, Range<usize>), Errno> {
    let ringid = u32::from(ringid);
    let mut out = [0..0, 0..0];
    for (slot, d) in out.iter_mut().zip(Dir::BOTH) {
        let excluded = match d {
            Dir::Tx => flags & abi::NR_RX_RINGS_ONLY != 0,
            Dir::Rx => flags & abi::NR_TX_RINGS_ONLY != 0,
        };
        if excluded {
            continue;
        }
        let (n, h) = match d {
            Dir::Tx => (c.tx_rings, c.host_tx_rings),
            Dir::Rx => (c.rx_rings, c.host_rx_rings),
        };
        let (lo, hi) = match mode {
            abi::NR_REG_ALL_NIC => (0, n),
            abi::NR_REG_SW | abi::NR_REG_NIC_SW | abi::NR_REG_ONE_SW
                if c.host_tx_rings == 0 && c.host_rx_rings == 0 =>
            {
                return Err(einval("host rings requested on a port without host rings"));
            }
            abi::NR_REG_SW => (n, n + h),
            abi::NR_REG_NIC_SW => (0, n + h),
            abi::NR_REG_ONE_NIC => {
                if ringid >= c.tx_rings && ringid >= c.rx_rings {
                    return Err(einval("ONE_NIC ring id out of range"));
                }
                let j = if ringid < n { ringid } else { 0 };
                (j, j + 1)
            }
            abi::NR_REG_ONE_SW => {
                if ringid >= c.host_tx_rings && ringid >= c.host_rx_rings {
                    return Err(einval("ONE_SW ring id out of range"));
                }
                let j = if ringid < h { ringid } else { 0 };
                (n + j, n + j + 1)
            }
            _ => return Err(einval("invalid register mode")),
        };
        *slot = lo as usize..hi as usize;
    }
    let [tx, rx] = out;
    Ok((tx, rx))
}

/// Writes a fresh netmap_if for a binding.
fn write_nifp(
    mem: SharedMem,
    off: usize,
    objsize: usize,
    name: &str,
    c: &PortCounts,
    b: &Binding,
    rings: &dyn Fn(Dir, usize) -> Option<usize>,
) -> Result<(), Errno> {
    let htx = c.host_tx_rings.max(1) as usize;
    let hrx = c.host_rx_rings.max(1) as usize;
    let entries = c.tx_rings as usize + htx + c.rx_rings as usize + hrx;
    if size_of::<NetmapIf>() + 8 * entries > objsize {
        tracing::warn!(entries, objsize, "too many rings for one netmap_if object");
        return Err(Errno(libc::ENOMEM));
    }
    mem.fill(off, objsize, 0)?;
    let mut nifp = NetmapIf {
        ni_tx_rings: c.tx_rings,
        ni_rx_rings: c.rx_rings,
        ni_host_tx_rings: htx as u32,
        ni_host_rx_rings: hrx as u32,
        ..Default::default()
    };
    abi::set_cname(&mut nifp.ni_name, name);
    mem.write_bytes(off, nifp.as_bytes())?;
    let rel = |r: usize| (r as i64) - (off as i64);
    let mut k = 0;
    // Hardware rings then host rings, per direction; a ring that is not bound (or, for
    // the placeholder host ring of a port without host stack, does not exist) is 0.
    for (d, n, h) in [
        (Dir::Tx, c.tx_rings as usize, htx),
        (Dir::Rx, c.rx_rings as usize, hrx),
    ] {
        for i in 0..n + h {
            let v = if b.rings(d).contains(&i) {
                rings(d, i).map_or(0, rel)
            } else {
                0
            };
            mem.write_i64(off + abi::if_ring_ofs_offset(k), v)?;
            k += 1;
        }
    }
    Ok(())
}

/// Allocates up to `n` extra buffers, linked through their first word, and returns
/// `(head, count)`. Running out is not an error: the count says how many (§7.4).
fn extra_bufs_alloc(st: &mut State, mem: SharedMem, n: u32) -> (u32, u32) {
    let mut head = 0u32;
    let mut got = 0;
    while got < n {
        let Ok(b) = st.alloc.buf_pool.alloc() else {
            break;
        };
        let written = st.alloc.buf_offset(b).map(|o| mem.write_u32(o, head));
        if !matches!(written, Some(Ok(()))) {
            let _ = st.alloc.buf_pool.free(b);
            break;
        }
        head = b;
        got += 1;
    }
    (head, got)
}

/// Frees the extra-buffer list starting at the netmap_if's current `ni_bufs_head`,
/// stopping at an index outside the pool or a buffer already free (§7.4). The client
/// wrote the list, so every link is checked; the walk cannot loop since each step
/// frees a buffer.
fn extra_bufs_free(st: &mut State, mem: SharedMem, nifp_off: usize) {
    let Ok(mut idx) = mem.read_u32(nifp_off + offset_of!(NetmapIf, ni_bufs_head)) else {
        return;
    };
    let total = st.alloc.buf_pool.objtotal();
    let live =
        |st: &State, idx: u32| idx >= 2 && idx < total && st.alloc.buf_pool.is_allocated(idx);
    if !live(st, idx) {
        // No list (the usual case): no need for the scan of every ring below.
        let _ = mem.write_u32(nifp_off + offset_of!(NetmapIf, ni_bufs_head), 0);
        return;
    }
    let keep = st.keep_set(mem, None);
    while live(st, idx) {
        let Some(o) = st.alloc.buf_offset(idx) else {
            break;
        };
        let next = mem.read_u32(o).unwrap_or(0);
        if keep.contains(idx) {
            // Swapped into a live ring (or another list): still in use, stop here.
            break;
        }
        let _ = mem.write_u32(o, 0);
        if st.alloc.buf_pool.free(idx).is_err() {
            break;
        }
        idx = next;
    }
    let _ = mem.write_u32(nifp_off + offset_of!(NetmapIf, ni_bufs_head), 0);
}

/// Undoes a registration: extra buffers, netmap_if, ring users, and the port itself
/// when this was its last user.
pub(crate) fn unbind(
    st: &mut State,
    b: &Binding,
    fd: FdId,
    mem: SharedMem,
    wakers: &mut Vec<Box<dyn PollWaker>>,
) {
    extra_bufs_free(st, mem, b.nifp_off);
    match st.alloc.if_pool.obj_index(b.nifp_off) {
        Some(i) => {
            if let Err(e) = st.alloc.if_pool.free(i) {
                tracing::error!(%e, "freeing netmap_if");
            }
        }
        None => tracing::error!(off = b.nifp_off, "netmap_if offset is not an if object"),
    }
    if let Some(slot) = st.adapters.get_mut(&b.adapter) {
        slot.fds.retain(|&f| f != fd);
        let ep = &mut slot.ad.endpoints_mut()[b.ep];
        for d in Dir::BOTH {
            for k in &mut ep.krings_mut(d)[b.rings(d)] {
                k.users = k.users.saturating_sub(1);
                if b.exclusive {
                    k.exclusive = false;
                }
            }
        }
        ep.users = ep.users.saturating_sub(1);
        let ep_idle = ep.users == 0;
        if ep_idle {
            st.monitors.parent_released(b.adapter, b.ep);
        }
        // The peer of a closing pipe end may be waiting for slots that will now never
        // be released; wake everyone on the adapter so they re-evaluate.
        let wake_all = netmap_netif::Wake::one(0, Dir::Tx).with(1, Dir::Tx);
        st.collect_wakers(b.adapter, wake_all, wakers);
        if ep_idle && st.adapters.get(&b.adapter).is_some_and(|s| s.ad.in_use()) {
            let keep = st.keep_set_except(mem, Some(b.adapter), Some(b.ep));
            let State {
                alloc, adapters, ..
            } = st;
            if let Some(slot) = adapters.get_mut(&b.adapter) {
                slot.ad.endpoint_released(b.ep, alloc, mem, &keep);
            }
        }
    }
    st.drop_adapter_if_unused(b.adapter, mem);
}

/// Applies the OFFSETS option to the bound rings (§5.1).
fn apply_offsets(
    st: &mut State,
    mem: SharedMem,
    b: &Binding,
    o: &mut ReqOption,
) -> Result<(), Errno> {
    let Ok(mut opt) = abi::NmreqOptOffsets::read_from_bytes(&[o.hdr.as_bytes(), &o.body].concat())
    else {
        return Err(Errno(libc::EINVAL));
    };
    let buf_size = u64::from(st.alloc.buf_size());
    let bits = opt.nro_offset_bits;
    let fail = |o: &mut ReqOption, what: &str| {
        o.hdr.nro_status = libc::EINVAL as u32;
        Err(einval(what))
    };
    if bits > 64 {
        return fail(o, "offset bits above 64");
    }
    let mask = if bits == 0 || bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    if opt.nro_max_offset > buf_size || opt.nro_max_offset > mask {
        return fail(o, "max offset larger than a buffer or than the offset bits");
    }
    if opt.nro_initial_offset > opt.nro_max_offset {
        return fail(o, "initial offset above max offset");
    }
    let Some(slot) = st.adapters.get_mut(&b.adapter) else {
        return Err(Errno(libc::ENXIO));
    };
    let ep = &slot.ad.endpoints()[b.ep];
    for d in Dir::BOTH {
        for k in &ep.krings(d)[b.rings(d)] {
            let Ok(rv) = netmap_netif::adapter::view(mem, k) else {
                continue;
            };
            mem.write_u64(rv.offset() + offset_of!(abi::NetmapRing, offset_mask), mask)?;
            if k.users == 1 {
                for s in 0..k.num_slots {
                    let mut sl = rv.slot(s)?;
                    sl.ptr = opt.nro_initial_offset;
                    rv.set_slot(s, &sl)?;
                }
            }
        }
    }
    opt.nro_opt = o.hdr;
    opt.nro_opt.nro_status = 0;
    o.hdr.nro_status = 0;
    o.body = opt.as_bytes()[abi::NMREQ_OPTION_SIZE..].to_vec();
    Ok(())
}

impl ControlPlane {
    pub(crate) fn req_register(
        &self,
        fd: FdId,
        req: &mut Request,
        um: &dyn UserMemory,
    ) -> Result<(), Errno> {
        let mut reg = NmreqRegister::read_from_bytes(&req.body).map_err(|_| Errno(libc::EINVAL))?;
        let name = req.name.clone();
        self.do_register(fd, &name, &mut reg, &mut req.opts, um)?;
        req.body = reg.as_bytes().to_vec();
        Ok(())
    }

    /// Starts the data-path thread of a NIC port with rings, once (when the control
    /// plane runs its worker threads: not in unit tests without them).
    fn start_nic_worker(&self, st: &mut State, aid: u64, mem: SharedMem) {
        let Some(me) = self.me.get() else { return };
        let Some(slot) = st.adapters.get_mut(&aid) else {
            return;
        };
        if slot.nic_worker.is_some() || slot.ad.kind() != netmap_netif::PortKind::Nic {
            return;
        }
        let e = &slot.ad.endpoints()[0];
        let Some(off) = e.tx.first().and_then(|k| k.ring_off) else {
            return;
        };
        let bell = netmap_netif::kstate::KState::new(mem, off).doorbell_offset();
        match super::nicworker::NicWorker::spawn(me.clone(), aid, off, bell, &e.name) {
            Ok(w) => {
                self.nic_bells.lock().insert(aid, (w.ring0, w.doorbell));
                slot.nic_worker = Some(w);
            }
            Err(e) => {
                tracing::warn!(%e, "no NIC worker thread: clients sync this port through the daemon")
            }
        }
    }

    /// REGISTER proper, shared with the legacy NIOCREGIF.
    pub(crate) fn do_register(
        &self,
        fd: FdId,
        name: &str,
        reg: &mut NmreqRegister,
        opts: &mut [ReqOption],
        um: &dyn UserMemory,
    ) -> Result<(), Errno> {
        let mem = self.mem();
        let mut wakers = Vec::new();
        let res = {
            let mut guard = self.lock();
            let st = &mut *guard;
            let r = self.register_locked(st, fd, name, reg, opts, mem, um, &mut wakers);
            st.refresh_inproc(mem);
            r
        };
        super::fire(wakers);
        if let Ok(()) = &res {
            tracing::debug!(fd, name, offset = reg.nr_offset, "registered");
        }
        res
    }

    #[allow(clippy::too_many_arguments)]
    fn register_locked(
        &self,
        st: &mut State,
        fd: FdId,
        name: &str,
        reg: &mut NmreqRegister,
        opts: &mut [ReqOption],
        mem: SharedMem,
        um: &dyn UserMemory,
        wakers: &mut Vec<Box<dyn PollWaker>>,
    ) -> Result<(), Errno> {
        match st.fds.get(&fd) {
            Some(f) if f.binding.is_some() => {
                tracing::debug!(fd, "descriptor already registered");
                return Err(Errno(libc::EBUSY));
            }
            Some(_) => {}
            None => return Err(Errno(libc::EBADF)),
        }
        check_mem_id(reg.nr_mem_id)?;
        if matches!(
            reg.nr_mode,
            abi::NR_REG_PIPE_MASTER | abi::NR_REG_PIPE_SLAVE
        ) {
            return Err(einval(
                "PIPE_MASTER/PIPE_SLAVE modes are only accepted by the legacy API",
            ));
        }
        let (aid, ep) = if reg.nr_mode == abi::NR_REG_NULL {
            if reg.nr_mem_id == 0 {
                return Err(einval("null port without a mem_id"));
            }
            let counts = PortCounts {
                host_tx_rings: 0,
                host_rx_rings: 0,
                ..requested(reg)
            };
            let max = st.alloc.max_slots_per_ring();
            if counts.tx_slots > max || counts.rx_slots > max {
                tracing::warn!(max, "null port slots do not fit a ring object");
                return Err(Errno(libc::ENOMEM));
            }
            (
                st.add_adapter(Box::new(NullPort::new(name, counts)), PortKey::None),
                0,
            )
        } else {
            let (aid, ep, _) = lookup(st, &self.nic_config(), name, reg, true)?;
            (aid, ep)
        };
        let res = self.bind_new(st, fd, aid, ep, reg, opts, mem, wakers);
        if res.is_err() {
            st.forget_unused_port(aid, ep, mem);
        }
        let b = res?;
        // CSB option: validated after the registration, which it undoes on failure.
        if let Some(o) = opts
            .iter_mut()
            .find(|o| o.hdr.nro_reqtype == abi::NETMAP_REQ_OPT_CSB)
        {
            match super::kloop::csb_setup(st, &b, o, um) {
                Ok(csb) => {
                    if let Some(bind) = st.fds.get_mut(&fd).and_then(|f| f.binding.as_mut()) {
                        bind.csb = csb;
                    }
                }
                Err(e) => {
                    tracing::debug!(fd, errno = e.0, "REGISTER: CSB option refused");
                    if let Some(f) = st.fds.get_mut(&fd) {
                        f.binding = None;
                    }
                    unbind(st, &b, fd, mem, wakers);
                    return Err(e);
                }
            }
        }
        // Leftover options nobody consumed make the whole registration fail.
        if let Some(o) = opts
            .iter()
            .find(|o| o.hdr.nro_status == libc::EOPNOTSUPP as u32)
        {
            tracing::info!(
                fd,
                reqtype = o.hdr.nro_reqtype,
                "REGISTER with an unsupported option"
            );
            if let Some(f) = st.fds.get_mut(&fd) {
                f.binding = None;
            }
            unbind(st, &b, fd, mem, wakers);
            return Err(Errno(libc::EOPNOTSUPP));
        }
        // As the kernel, a zero-copy monitor request reports both directions (§5.1).
        if reg.nr_mode != abi::NR_REG_NULL && reg.nr_flags & abi::NR_ZCOPY_MON != 0 {
            reg.nr_flags |= abi::NR_MONITOR_TX | abi::NR_MONITOR_RX;
        }
        Ok(())
    }

    /// Everything from ring selection to the reply fields; on error nothing of the
    /// descriptor's stays allocated (the caller drops a port created for it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn bind_new(
        &self,
        st: &mut State,
        fd: FdId,
        aid: u64,
        ep: usize,
        reg: &mut NmreqRegister,
        opts: &mut [ReqOption],
        mem: SharedMem,
        wakers: &mut Vec<Box<dyn PollWaker>>,
    ) -> Result<Binding, Errno> {
        let State {
            alloc, adapters, ..
        } = st;
        let slot: &mut AdapterSlot = adapters.get_mut(&aid).ok_or(Errno(libc::ENXIO))?;
        let kind = slot.ad.kind();
        if slot.ad.as_vale().is_some_and(|v| v.hdr_len(ep) != 0)
            && reg.nr_flags & abi::NR_ACCEPT_VNET_HDR == 0
        {
            tracing::debug!(
                fd,
                "port has a virtio-net header and the client does not accept it"
            );
            return Err(Errno(libc::EIO));
        }
        let counts = slot.ad.endpoints()[ep].counts;
        let both_only = reg.nr_flags & (abi::NR_TX_RINGS_ONLY | abi::NR_RX_RINGS_ONLY)
            == (abi::NR_TX_RINGS_ONLY | abi::NR_RX_RINGS_ONLY);
        let mode = match kind {
            netmap_netif::PortKind::Null => abi::NR_REG_ALL_NIC,
            netmap_netif::PortKind::Pipe => {
                if !matches!(reg.nr_mode, abi::NR_REG_ALL_NIC | abi::NR_REG_ONE_NIC) {
                    return Err(einval("pipes accept only ALL_NIC and ONE_NIC"));
                }
                reg.nr_mode
            }
            // VALE ports have no host rings: SW/NIC_SW/ONE_SW fail in interp_ringid.
            // Monitors have no host rings either (SW modes fail the same way).
            netmap_netif::PortKind::Nic
            | netmap_netif::PortKind::Vale
            | netmap_netif::PortKind::Monitor => reg.nr_mode,
        };
        let (tx, rx) = if both_only {
            (0..0, 0..0)
        } else {
            interp_ringid(mode, reg.nr_ringid, reg.nr_flags, &counts)?
        };
        let exclusive = reg.nr_flags & abi::NR_EXCLUSIVE != 0;
        {
            let e = &slot.ad.endpoints()[ep];
            for (d, r) in [(Dir::Tx, &tx), (Dir::Rx, &rx)] {
                for k in &e.krings(d)[r.clone()] {
                    if k.exclusive || (exclusive && k.users > 0) {
                        tracing::debug!(fd, ring = k.id, dir = ?d, "ring busy (exclusive)");
                        return Err(Errno(libc::EBUSY));
                    }
                }
            }
        }
        let is_nic = slot.ad.kind() == netmap_netif::PortKind::Nic;
        slot.ad.krings_create(ep, alloc, mem).map_err(|e| {
            let en = Errno::from(e);
            if is_nic && en.0 == libc::EPERM {
                tracing::error!(
                    "NIC ports need CAP_NET_RAW (AF_PACKET; AF_XDP also CAP_NET_ADMIN and \
                     CAP_BPF), which this daemon does not have: run it as root or give it \
                     those capabilities; pipes, VALE, null ports and monitors need none"
                );
            }
            en
        })?;
        let watch = !slot.ad.event_fds().is_empty() && slot.watched.is_empty();
        let nifp_idx = alloc.if_pool.alloc().map_err(|_| {
            tracing::warn!("netmap_if pool exhausted");
            Errno(libc::ENOMEM)
        })?;
        let nifp_off = alloc
            .if_pool
            .obj_offset(nifp_idx)
            .ok_or(Errno(libc::ENOMEM))?;
        let b = Binding {
            adapter: aid,
            ep,
            tx,
            rx,
            flags: reg.nr_flags,
            nifp_off,
            exclusive,
            csb: None,
        };
        let e = &slot.ad.endpoints()[ep];
        let ring_of = |d: Dir, i: usize| e.krings(d).get(i).and_then(|k| k.ring_off);
        if let Err(err) = write_nifp(
            mem,
            nifp_off,
            alloc.if_pool.objsize() as usize,
            &e.name,
            &counts,
            &b,
            &ring_of,
        ) {
            let _ = alloc.if_pool.free(nifp_idx);
            return Err(err);
        }
        let e = &mut slot.ad.endpoints_mut()[ep];
        for d in Dir::BOTH {
            for k in &mut e.krings_mut(d)[b.rings(d)] {
                k.users += 1;
                k.exclusive |= exclusive;
            }
        }
        e.users += 1;
        slot.fds.push(fd);
        if let Some(f) = st.fds.get_mut(&fd) {
            f.binding = Some(b.clone());
        }
        if watch {
            st.watch_events(&self.events, aid);
        }
        self.start_nic_worker(st, aid, mem);
        if let Some(o) = opts
            .iter_mut()
            .find(|o| o.hdr.nro_reqtype == abi::NETMAP_REQ_OPT_OFFSETS)
        {
            if let Err(err) = apply_offsets(st, mem, &b, o) {
                if let Some(f) = st.fds.get_mut(&fd) {
                    f.binding = None;
                }
                unbind(st, &b, fd, mem, wakers);
                return Err(err);
            }
        }
        let (head, got) = extra_bufs_alloc(st, mem, reg.nr_extra_bufs);
        mem.write_u32(nifp_off + offset_of!(NetmapIf, ni_bufs_head), head)?;
        reg.nr_extra_bufs = got;
        reg.nr_offset = nifp_off as u64;
        reg.nr_memsize = st.alloc.memsize() as u64;
        reg.nr_mem_id = 1;
        reg.nr_tx_rings = counts.tx_rings as u16;
        reg.nr_rx_rings = counts.rx_rings as u16;
        reg.nr_tx_slots = counts.tx_slots;
        reg.nr_rx_slots = counts.rx_slots;
        reg.nr_host_tx_rings = counts.host_tx_rings as u16;
        reg.nr_host_rx_rings = counts.host_rx_rings as u16;
        Ok(b)
    }
}
