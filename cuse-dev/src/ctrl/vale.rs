//! VALE requests that manage ports (NETMAP-ABI.md §5.4, §10.3): VALE_NEWIF / DELIF
//! (persistent ports), VALE_ATTACH / DETACH (of persistent ports and of host
//! interfaces) and VALE_POLLING_ENABLE / DISABLE, plus their legacy `nr_cmd` forms
//! (§4.8).
//!
//! * **Persistent ports.** The kernel's `vale-ctl -n NAME` creates a network
//!   interface. netmapd creates no Linux interface: a detached persistent port is a
//!   *standalone* port, a hidden one-port switch adapter (`ValeSwitch::standalone`,
//!   registry key none, never listed) reachable by REGISTER as `NAME` / `netmap:NAME`.
//!   VALE_ATTACH `valeX:NAME` moves the port (its counts and header length) into
//!   switch `valeX`, where it keeps its slot while nobody has it open; it is then
//!   reachable as `valeX:NAME` or `NAME`. VALE_DETACH moves it back. Ports are moved
//!   only while nobody has them open (EBUSY otherwise), so no ring state is lost.
//! * **Attached NICs.** VALE_ATTACH `valeX:IF` opens IF through the existing
//!   AF_PACKET adapter and a switch port `valeX:IF` (plus `valeX:IF^` for the host
//!   rings with NIC_SW), each registered on an internal descriptor of the daemon
//!   itself, and starts a forwarding thread (what VALE_POLLING_ENABLE controls in
//!   netmap; here it always runs while attached): NIC RX → switch port TX (txsync =
//!   forwarding), switch port RX → NIC TX. It sleeps on the NIC sockets and on a
//!   datagram socket the switch side signals through a poll waker, with a 20 ms
//!   safety timeout. Clients then get EBUSY for `IF`, `valeX:IF` and pipes of `IF`.
//!   VALE_DETACH stops the thread and closes the internal descriptors, which returns
//!   every ring and buffer to the pool.

use super::nmreq::Request;
use super::register::{check_mem_id, einval};
use super::{ControlPlane, Errno, FdId, PollWaker, PortKey, State};
use netmap_abi as abi;
use netmap_abi::{
    Nmreq, NmreqPortHdr, NmreqRegister, NmreqValeAttach, NmreqValeDetach, NmreqValeNewif,
    NmreqValePolling,
};
use netmap_netif::af_packet::interface_exists;
use netmap_netif::nic::NicPort;
use netmap_netif::pipe::parse_pipe_name;
use netmap_netif::sync::sync_ring;
use netmap_netif::{parse_vale_name, Dir, PortCounts, ValeSwitch};
use netmap_pool::SharedMem;
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use zerocopy::{FromBytes, IntoBytes};

const EBUSY: Errno = Errno(libc::EBUSY);
const ENXIO: Errno = Errno(libc::ENXIO);

/// Longest persistent port name (netmap's IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;
/// Idle wait of a forwarding thread when no event arrives.
const IDLE_MS: i32 = 20;
/// Rounds one forwarding pass may make under the lock before letting others in.
const MAX_ROUNDS: usize = 16;

/// Persistent ports and attached NICs.
#[derive(Default)]
pub(crate) struct ValeState {
    /// Persistent port name → where it is.
    pub persistent: HashMap<String, Persistent>,
    /// Interface name → its attachment.
    pub nics: HashMap<String, NicAttach>,
}

/// Where a persistent port lives.
#[derive(Debug, Clone)]
pub(crate) enum Persistent {
    /// Not attached: the only port of this standalone adapter.
    Standalone(u64),
    /// A port of this switch.
    Attached(String),
}

/// A host interface attached to a switch.
pub(crate) struct NicAttach {
    pub switch: String,
    /// Internal descriptors: the NIC first, then the switch ports.
    pub fds: Vec<FdId>,
    /// Hardware RX rings of the NIC (POLLING_ENABLE MULTI_CPU checks against them).
    pub rx_rings: u32,
    /// The VALE_POLLING_ENABLE body while polling is "enabled".
    pub polling: Option<NmreqValePolling>,
    worker: Option<Worker>,
}

struct Worker {
    stop: Arc<AtomicBool>,
    kick: Arc<UnixDatagram>,
    handle: JoinHandle<()>,
}

/// Wakes a forwarding thread (installed as the poll waker of its switch ports).
struct KickWaker(Arc<UnixDatagram>);

impl PollWaker for KickWaker {
    fn wake(self: Box<Self>) {
        // A full socket buffer already holds a wake-up.
        let _ = self.0.send(&[1]);
    }
}

/// EBUSY for names that reach a NIC attached to a switch: `IF`, `valeX:IF`,
/// `valeX:IF^` and pipes of those (§10.3, §10.4).
pub(crate) fn check_not_attached(st: &State, name: &str) -> Result<(), Errno> {
    if st.vale.nics.is_empty() {
        return Ok(());
    }
    let base = match parse_pipe_name(name) {
        Some(Ok((parent, _, _))) => parent,
        _ => name,
    };
    let port = parse_vale_name(base).map_or(base, |(_, p)| p);
    let port = port.strip_suffix('^').unwrap_or(port);
    if st.vale.nics.contains_key(port) {
        tracing::debug!(name, "interface attached to a VALE switch");
        return Err(EBUSY);
    }
    Ok(())
}

/// REGISTER-style lookup of a persistent port by its bare name.
pub(crate) fn lookup_persistent(
    st: &State,
    name: &str,
) -> Option<Result<(u64, usize, bool), Errno>> {
    let found = match st.vale.persistent.get(name)? {
        Persistent::Standalone(aid) => Some((*aid, 0)),
        Persistent::Attached(sw) => st.switch_id(sw).and_then(|aid| {
            let ep = st.adapters.get(&aid)?.ad.as_vale()?.find_port(name)?;
            Some((aid, ep))
        }),
    };
    Some(found.map(|(a, e)| (a, e, false)).ok_or(ENXIO))
}

/// The adapter of switch `name`, created if absent (ENOMEM when all are in use).
fn switch_or_create(st: &mut State, name: &str) -> Result<u64, Errno> {
    if let Some(a) = st.switch_id(name) {
        return Ok(a);
    }
    if st.switches.iter().all(Option::is_some) {
        tracing::info!(name, "too many VALE switches");
        return Err(Errno(libc::ENOMEM));
    }
    Ok(st.add_adapter(
        Box::new(ValeSwitch::new(name)),
        PortKey::Vale(name.to_string()),
    ))
}

fn switch_mut(st: &mut State, aid: u64) -> Result<&mut ValeSwitch, Errno> {
    st.adapters
        .get_mut(&aid)
        .and_then(|s| s.ad.as_vale_mut())
        .ok_or(ENXIO)
}

/// `valeX:Y` split, EINVAL without the prefix or when malformed.
fn vale_parts(name: &str) -> Result<(String, String), Errno> {
    if !name.starts_with("vale") {
        return Err(einval("VALE request on a name without the vale prefix"));
    }
    let (sw, port) = parse_vale_name(name).ok_or_else(|| einval("malformed VALE name"))?;
    Ok((sw.to_string(), port.to_string()))
}

fn nproc() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

impl ControlPlane {
    /// Records the `Arc` this control plane lives in, so that NICs attached to VALE
    /// switches get a forwarding thread. [`ControlPlane::start_event_thread`] calls it;
    /// without it attached NICs forward nothing.
    pub fn enable_workers(self: &Arc<Self>) {
        let _ = self.me.set(Arc::downgrade(self));
    }

    /// VALE_ATTACH, VALE_DETACH, VALE_NEWIF, VALE_DELIF, VALE_POLLING_ENABLE/DISABLE.
    pub(crate) fn req_vale_manage(&self, req: &mut Request) -> Result<(), Errno> {
        match req.hdr.nr_reqtype {
            abi::NETMAP_REQ_VALE_NEWIF => self.req_vale_newif(req),
            abi::NETMAP_REQ_VALE_DELIF => self.vale_delif(&req.name),
            abi::NETMAP_REQ_VALE_ATTACH => self.req_vale_attach(req),
            abi::NETMAP_REQ_VALE_DETACH => {
                let idx = self.vale_detach(&req.name)?;
                req.body = NmreqValeDetach {
                    port_index: idx,
                    pad1: 0,
                }
                .as_bytes()
                .to_vec();
                Ok(())
            }
            abi::NETMAP_REQ_VALE_POLLING_ENABLE => self.req_vale_polling(req, true),
            abi::NETMAP_REQ_VALE_POLLING_DISABLE => self.req_vale_polling(req, false),
            t => {
                tracing::debug!(reqtype = t, "not a VALE management request");
                Err(Errno(libc::EINVAL))
            }
        }
    }

    /// VALE_NEWIF: a persistent port `NAME` (no vale prefix, < 16 bytes) with the
    /// body's counts (ephemeral defaults for zeros); the body gets the counts used.
    fn req_vale_newif(&self, req: &mut Request) -> Result<(), Errno> {
        let mut b = NmreqValeNewif::read_from_bytes(&req.body).map_err(|_| Errno(libc::EINVAL))?;
        let name = req.name.as_str();
        if name.is_empty() || name.len() > MAX_IFNAME || name.starts_with("vale") {
            return Err(einval(
                "VALE_NEWIF name empty, too long or with the vale prefix",
            ));
        }
        check_mem_id(b.nr_mem_id)?;
        let mut st = self.lock();
        if st.vale.persistent.contains_key(name)
            || st.nics.contains_key(name)
            || interface_exists(name)
        {
            tracing::debug!(name, "VALE_NEWIF: exists");
            return Err(Errno(libc::EEXIST));
        }
        let req_counts = PortCounts {
            tx_rings: u32::from(b.nr_tx_rings),
            rx_rings: u32::from(b.nr_rx_rings),
            tx_slots: b.nr_tx_slots,
            rx_slots: b.nr_rx_slots,
            host_tx_rings: 0,
            host_rx_rings: 0,
        };
        let sw = ValeSwitch::standalone(name, req_counts, st.alloc.max_slots_per_ring())?;
        let c = netmap_netif::Adapter::endpoints(&sw)[0].counts;
        let aid = st.add_adapter(Box::new(sw), PortKey::None);
        st.vale
            .persistent
            .insert(name.to_string(), Persistent::Standalone(aid));
        tracing::info!(name, ?c, "persistent VALE port created");
        b.nr_tx_rings = c.tx_rings as u16;
        b.nr_rx_rings = c.rx_rings as u16;
        b.nr_tx_slots = c.tx_slots;
        b.nr_rx_slots = c.rx_slots;
        b.nr_mem_id = 1;
        req.body = b.as_bytes().to_vec();
        Ok(())
    }

    /// VALE_DELIF: ENXIO for an unknown name, EINVAL for an interface that is not a
    /// persistent VALE port, EBUSY while attached or open.
    fn vale_delif(&self, name: &str) -> Result<(), Errno> {
        let mut st = self.lock();
        let Some(p) = st.vale.persistent.get(name).cloned() else {
            if st.nics.contains_key(name) || interface_exists(name) {
                return Err(einval(
                    "VALE_DELIF on an interface that is no persistent port",
                ));
            }
            tracing::debug!(name, "VALE_DELIF: no such interface");
            return Err(ENXIO);
        };
        let Persistent::Standalone(aid) = p else {
            tracing::debug!(name, "VALE_DELIF: port attached to a switch");
            return Err(EBUSY);
        };
        let sw = switch_mut(&mut st, aid)?;
        if netmap_netif::Adapter::endpoints(sw)[0].users > 0 {
            tracing::debug!(name, "VALE_DELIF: port open");
            return Err(EBUSY);
        }
        sw.set_persistent(0, false)?;
        st.drop_adapter_if_unused(aid, self.mem());
        st.vale.persistent.remove(name);
        tracing::info!(name, "persistent VALE port deleted");
        Ok(())
    }

    fn req_vale_attach(&self, req: &mut Request) -> Result<(), Errno> {
        let mut b = NmreqValeAttach::read_from_bytes(&req.body).map_err(|_| Errno(libc::EINVAL))?;
        let (sw, port) = vale_parts(&req.name)?;
        check_mem_id(b.reg.nr_mem_id)?;
        let (persistent, attached) = {
            let st = self.lock();
            (
                st.vale.persistent.contains_key(&port),
                st.vale.nics.contains_key(&port),
            )
        };
        let idx = if attached {
            tracing::debug!(name = %req.name, "interface already attached");
            return Err(EBUSY);
        } else if persistent {
            self.attach_persistent(&sw, &port)?
        } else if interface_exists(&port) {
            self.attach_nic(&sw, &port, &b.reg)?
        } else {
            return Err(einval(
                "VALE_ATTACH of a name that is neither an interface nor a persistent port",
            ));
        };
        b.port_index = idx;
        req.body = b.as_bytes().to_vec();
        Ok(())
    }

    /// Moves the standalone persistent port `port` into switch `sw`.
    fn attach_persistent(&self, sw: &str, port: &str) -> Result<u32, Errno> {
        let mut st = self.lock();
        let max = st.alloc.max_slots_per_ring();
        let hid = match st.vale.persistent.get(port) {
            Some(Persistent::Standalone(a)) => *a,
            Some(Persistent::Attached(_)) => {
                tracing::debug!(port, "persistent port already attached");
                return Err(EBUSY);
            }
            None => return Err(ENXIO),
        };
        let hsw = switch_mut(&mut st, hid)?;
        let e = &netmap_netif::Adapter::endpoints(hsw)[0];
        if e.users > 0 {
            tracing::debug!(port, "persistent port open: cannot attach");
            return Err(EBUSY);
        }
        let (counts, hdr) = (e.counts, hsw.hdr_len(0));
        let sw_aid = switch_or_create(&mut st, sw)?;
        let vs = switch_mut(&mut st, sw_aid)?;
        let res = if vs.find_port(port).is_some() {
            Err(EBUSY)
        } else {
            vs.port(port, counts, max, true).map_err(Errno::from)
        };
        let ep = match res {
            Ok(ep) => ep,
            Err(e) => {
                st.drop_adapter_if_unused(sw_aid, self.mem());
                return Err(e);
            }
        };
        vs.set_persistent(ep, true)?;
        vs.set_hdr_len(ep, hdr, self.mem())?;
        switch_mut(&mut st, hid)?.set_persistent(0, false)?;
        st.drop_adapter_if_unused(hid, self.mem());
        st.vale
            .persistent
            .insert(port.to_string(), Persistent::Attached(sw.to_string()));
        tracing::info!(sw, port, ep, "persistent port attached");
        Ok(ep as u32)
    }

    /// VALE_DETACH `valeX:Y` (also the legacy form); returns the port slot.
    fn vale_detach(&self, name: &str) -> Result<u32, Errno> {
        let (sw, port) = vale_parts(name)?;
        let mut st = self.lock();
        let sw_aid = st.switch_id(&sw).ok_or(ENXIO)?;
        let ep = switch_mut(&mut st, sw_aid)?.find_port(&port).ok_or(ENXIO)?;
        if st.vale.nics.get(&port).is_some_and(|a| a.switch == sw) {
            drop(st);
            self.detach_nic(&port)?;
            return Ok(ep as u32);
        }
        let vs = switch_mut(&mut st, sw_aid)?;
        if !vs.is_persistent(ep) {
            return Err(einval("VALE_DETACH of an ephemeral port"));
        }
        let e = &netmap_netif::Adapter::endpoints(vs)[ep];
        if e.users > 0 {
            tracing::debug!(name, "persistent port open: cannot detach");
            return Err(EBUSY);
        }
        let (counts, hdr) = (e.counts, vs.hdr_len(ep));
        let max = st.alloc.max_slots_per_ring();
        let mut standalone = ValeSwitch::standalone(&port, counts, max)?;
        standalone.set_hdr_len(0, hdr, self.mem())?;
        let vs = switch_mut(&mut st, sw_aid)?;
        vs.set_persistent(ep, false)?;
        vs.remove_port(ep)?;
        let hid = st.add_adapter(Box::new(standalone), PortKey::None);
        st.vale
            .persistent
            .insert(port.clone(), Persistent::Standalone(hid));
        st.drop_adapter_if_unused(sw_aid, self.mem());
        tracing::info!(sw, port, "persistent port detached");
        Ok(ep as u32)
    }

    /// Attaches host interface `ifname` to switch `sw` (mode ALL_NIC or NIC_SW, ring
    /// id 0) and starts its forwarding thread.
    fn attach_nic(&self, sw: &str, ifname: &str, reg: &NmreqRegister) -> Result<u32, Errno> {
        if !matches!(reg.nr_mode, abi::NR_REG_ALL_NIC | abi::NR_REG_NIC_SW) || reg.nr_ringid != 0 {
            return Err(einval("NIC attach needs ALL_NIC or NIC_SW and ring id 0"));
        }
        let host = reg.nr_mode == abi::NR_REG_NIC_SW;
        let fds: Vec<FdId> = (0..if host { 3 } else { 2 }).map(|_| self.open()).collect();
        let mut wakers = Vec::new();
        let res = {
            let mut st = self.lock();
            self.attach_nic_locked(&mut st, sw, ifname, host, &fds, &mut wakers)
        };
        super::fire(wakers);
        let (idx, plan) = match res {
            Ok(r) => r,
            Err(e) => {
                for fd in fds {
                    self.release(fd);
                }
                return Err(e);
            }
        };
        let worker = match self.me.get().and_then(Weak::upgrade) {
            Some(me) => match spawn_worker(&me, ifname, plan) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::error!(%e, ifname, "cannot start the forwarding thread");
                    None
                }
            },
            None => {
                tracing::warn!(
                    ifname,
                    "no worker threads (enable_workers): NIC attached without forwarding"
                );
                None
            }
        };
        if let Some(a) = self.lock().vale.nics.get_mut(ifname) {
            a.worker = worker;
        }
        tracing::info!(sw, ifname, host, "interface attached");
        Ok(idx)
    }

    fn attach_nic_locked(
        &self,
        st: &mut State,
        sw: &str,
        ifname: &str,
        host: bool,
        fds: &[FdId],
        wakers: &mut Vec<Box<dyn PollWaker>>,
    ) -> Result<(u32, Plan), Errno> {
        let mem = self.mem();
        if st.nics.contains_key(ifname) {
            tracing::debug!(ifname, "interface open by a client: cannot attach");
            return Err(EBUSY);
        }
        let hname = format!("{ifname}^");
        let sw_aid = switch_or_create(st, sw)?;
        let vs = switch_mut(st, sw_aid)?;
        if vs.find_port(ifname).is_some() || vs.find_port(&hname).is_some() {
            st.drop_adapter_if_unused(sw_aid, mem);
            return Err(EBUSY);
        }
        let max = st.alloc.max_slots_per_ring();
        let nic = match NicPort::open(ifname, &self.nic_config(), max, self.cfg.nic_backend) {
            Ok(n) => n,
            Err(e) => {
                st.drop_adapter_if_unused(sw_aid, mem);
                return Err(e.into());
            }
        };
        let nc = netmap_netif::Adapter::endpoints(&nic)[0].counts;
        let nic_aid = st.add_adapter(Box::new(nic), PortKey::Nic(ifname.to_string()));
        let mut nreg = NmreqRegister {
            nr_mode: if host {
                abi::NR_REG_NIC_SW
            } else {
                abi::NR_REG_ALL_NIC
            },
            ..Default::default()
        };
        if let Err(e) = self.bind_new(st, fds[0], nic_aid, 0, &mut nreg, &mut [], mem, wakers) {
            st.forget_unused_port(nic_aid, 0, mem);
            st.drop_adapter_if_unused(sw_aid, mem);
            return Err(e);
        }
        let mut plan = Plan::default();
        let names: Vec<&str> = if host {
            vec![ifname, &hname]
        } else {
            vec![ifname]
        };
        let mut first = 0;
        for (i, pname) in names.into_iter().enumerate() {
            let counts = PortCounts {
                tx_rings: 1,
                rx_rings: 1,
                tx_slots: nc.rx_slots,
                rx_slots: nc.tx_slots,
                host_tx_rings: 0,
                host_rx_rings: 0,
            };
            let ep = switch_mut(st, sw_aid)?.port(pname, counts, max, true)?;
            let mut sreg = NmreqRegister {
                nr_mode: abi::NR_REG_ALL_NIC,
                ..Default::default()
            };
            if let Err(e) =
                self.bind_new(st, fds[1 + i], sw_aid, ep, &mut sreg, &mut [], mem, wakers)
            {
                st.forget_unused_port(sw_aid, ep, mem);
                return Err(e);
            }
            // Hardware rings ↔ port IF, host rings ↔ port IF^.
            let (rx, tx) = if i == 0 {
                (0..nc.rx_rings as usize, 0)
            } else {
                (
                    nc.rx_rings as usize..nc.rx_rings as usize + 1,
                    nc.tx_rings as usize,
                )
            };
            for r in rx {
                plan.links.push(Link {
                    from: (nic_aid, 0, r),
                    to: (sw_aid, ep, 0),
                });
            }
            plan.links.push(Link {
                from: (sw_aid, ep, 0),
                to: (nic_aid, 0, tx),
            });
            plan.sw_fds.push(fds[1 + i]);
            if i == 0 {
                first = ep;
            }
        }
        plan.event_fds = st
            .adapters
            .get(&nic_aid)
            .map(|s| s.ad.event_fds().into_iter().map(|(fd, _, _)| fd).collect())
            .unwrap_or_default();
        st.vale.nics.insert(
            ifname.to_string(),
            NicAttach {
                switch: sw.to_string(),
                fds: fds.to_vec(),
                rx_rings: nc.rx_rings,
                polling: None,
                worker: None,
            },
        );
        st.refresh_inproc(self.mem());
        Ok((first as u32, plan))
    }

    /// Stops the forwarding thread of `ifname` and closes its internal descriptors.
    fn detach_nic(&self, ifname: &str) -> Result<(), Errno> {
        let (worker, fds) = {
            let mut st = self.lock();
            let a = st.vale.nics.get_mut(ifname).ok_or(ENXIO)?;
            if a.polling.is_some() {
                tracing::debug!(ifname, "VALE_DETACH with polling enabled");
                return Err(EBUSY);
            }
            (a.worker.take(), a.fds.clone())
        };
        if let Some(w) = worker {
            w.stop.store(true, Ordering::Release);
            let _ = w.kick.send(&[1]);
            if w.handle.join().is_err() {
                tracing::error!(ifname, "forwarding thread panicked");
            }
        }
        for fd in fds {
            self.release(fd);
        }
        {
            let mut st = self.lock();
            st.vale.nics.remove(ifname);
            st.refresh_inproc(self.mem());
        }
        tracing::info!(ifname, "interface detached");
        Ok(())
    }

    /// VALE_POLLING_ENABLE/DISABLE (§5.4): only attached NICs; the state is recorded,
    /// the forwarding thread runs regardless. The body is echoed unchanged.
    fn req_vale_polling(&self, req: &mut Request, enable: bool) -> Result<(), Errno> {
        let b = NmreqValePolling::read_from_bytes(&req.body).map_err(|_| Errno(libc::EINVAL))?;
        let (sw, port) = vale_parts(&req.name)?;
        let mut st = self.lock();
        let sw_aid = st.switch_id(&sw).ok_or(ENXIO)?;
        switch_mut(&mut st, sw_aid)?.find_port(&port).ok_or(ENXIO)?;
        let Some(a) = st.vale.nics.get_mut(&port).filter(|a| a.switch == sw) else {
            tracing::debug!(name = %req.name, "polling on a port that is not an attached NIC");
            return Err(Errno(libc::EOPNOTSUPP));
        };
        if !enable {
            if a.polling.take().is_none() {
                tracing::debug!(name = %req.name, "polling not enabled");
                return Err(Errno(libc::EFAULT));
            }
            return Ok(());
        }
        if a.polling.is_some() {
            tracing::debug!(name = %req.name, "polling already enabled");
            return Err(Errno(libc::EFAULT));
        }
        let (n, first, ncpu) = (b.nr_num_polling_cpus, b.nr_first_cpu_id, nproc());
        if n < 1 || n >= ncpu || first >= ncpu {
            return Err(einval("polling CPUs out of range"));
        }
        match b.nr_mode {
            abi::NETMAP_POLLING_MODE_SINGLE_CPU if n != 1 => {
                return Err(einval("SINGLE_CPU polling needs exactly one CPU"))
            }
            abi::NETMAP_POLLING_MODE_SINGLE_CPU => {}
            abi::NETMAP_POLLING_MODE_MULTI_CPU if first.saturating_add(n) > a.rx_rings => {
                return Err(einval("MULTI_CPU polling: more CPUs than RX rings"))
            }
            abi::NETMAP_POLLING_MODE_MULTI_CPU => {}
            _ => return Err(einval("unknown polling mode")),
        }
        a.polling = Some(b);
        Ok(())
    }

    /// Legacy NIOCREGIF with `nr_cmd` 1, 2, 5, 6, 7, 10, 11, 12 (§4.8).
    pub(crate) fn legacy_vale(&self, mut r: Nmreq, name: &str) -> Result<Vec<u8>, Errno> {
        let mut hdr = abi::NmreqHeader::default();
        abi::set_cname(&mut hdr.nr_name, name);
        let mut req = Request {
            hdr,
            name: name.to_string(),
            body: Vec::new(),
            opts: Vec::new(),
        };
        match r.nr_cmd {
            abi::NETMAP_BDG_ATTACH => {
                let host = r.nr_arg1 & abi::NETMAP_BDG_HOST != 0;
                let b = NmreqValeAttach {
                    reg: NmreqRegister {
                        nr_tx_slots: r.nr_tx_slots,
                        nr_rx_slots: r.nr_rx_slots,
                        nr_tx_rings: r.nr_tx_rings,
                        nr_rx_rings: r.nr_rx_rings,
                        nr_mem_id: r.nr_arg2,
                        nr_ringid: r.nr_ringid & abi::NETMAP_RING_MASK,
                        nr_mode: if host {
                            abi::NR_REG_NIC_SW
                        } else {
                            abi::NR_REG_ALL_NIC
                        },
                        ..Default::default()
                    },
                    port_index: 0,
                    pad1: 0,
                };
                req.hdr.nr_reqtype = abi::NETMAP_REQ_VALE_ATTACH;
                req.body = b.as_bytes().to_vec();
                self.req_vale_attach(&mut req)?;
            }
            abi::NETMAP_BDG_DETACH => {
                self.vale_detach(name)?;
            }
            abi::NETMAP_BDG_VNET_HDR => {
                req.hdr.nr_reqtype = abi::NETMAP_REQ_PORT_HDR_SET;
                req.body = NmreqPortHdr {
                    nr_hdr_len: r.nr_arg1.into(),
                    pad1: 0,
                }
                .as_bytes()
                .to_vec();
                self.req_vale_other(&mut req)?;
            }
            abi::NETMAP_VNET_HDR_GET => {
                req.hdr.nr_reqtype = abi::NETMAP_REQ_PORT_HDR_GET;
                req.body = NmreqPortHdr::default().as_bytes().to_vec();
                self.req_port_hdr_get(&mut req)?;
                let b = NmreqPortHdr::read_from_bytes(&req.body).map_err(|_| ENXIO)?;
                r.nr_arg1 = b.nr_hdr_len as u16;
            }
            abi::NETMAP_BDG_NEWIF => {
                let b = NmreqValeNewif {
                    nr_tx_slots: r.nr_tx_slots,
                    nr_rx_slots: r.nr_rx_slots,
                    nr_tx_rings: r.nr_tx_rings,
                    nr_rx_rings: r.nr_rx_rings,
                    nr_mem_id: r.nr_arg2,
                    pad1: 0,
                };
                req.body = b.as_bytes().to_vec();
                self.req_vale_newif(&mut req)?;
                let b = NmreqValeNewif::read_from_bytes(&req.body).map_err(|_| ENXIO)?;
                r.nr_tx_slots = b.nr_tx_slots;
                r.nr_rx_slots = b.nr_rx_slots;
                r.nr_tx_rings = b.nr_tx_rings;
                r.nr_rx_rings = b.nr_rx_rings;
                r.nr_arg2 = b.nr_mem_id;
            }
            abi::NETMAP_BDG_DELIF => self.vale_delif(name)?,
            abi::NETMAP_BDG_POLLING_ON | abi::NETMAP_BDG_POLLING_OFF => {
                let mode = match r.nr_flags & abi::NR_REG_MASK {
                    abi::NR_REG_ALL_NIC => abi::NETMAP_POLLING_MODE_SINGLE_CPU,
                    abi::NR_REG_ONE_NIC => abi::NETMAP_POLLING_MODE_MULTI_CPU,
                    _ => 0,
                };
                req.body = NmreqValePolling {
                    nr_mode: mode,
                    nr_first_cpu_id: u32::from(r.nr_ringid & abi::NETMAP_RING_MASK),
                    nr_num_polling_cpus: u32::from(r.nr_arg1),
                    pad1: 0,
                }
                .as_bytes()
                .to_vec();
                self.req_vale_polling(&mut req, r.nr_cmd == abi::NETMAP_BDG_POLLING_ON)?;
            }
            c => {
                tracing::debug!(nr_cmd = c, "legacy command not translated");
                return Err(Errno(libc::EINVAL));
            }
        }
        Ok(r.as_bytes().to_vec())
    }
}

/// What a forwarding thread moves: each link copies frames from an RX ring of one
/// port into a TX ring of another and syncs it.
#[derive(Default)]
struct Plan {
    links: Vec<Link>,
    /// Internal descriptors of the switch ports (their poll wakers kick the thread).
    sw_fds: Vec<FdId>,
    /// NIC sockets whose readiness means work.
    event_fds: Vec<std::os::fd::RawFd>,
}

/// `(adapter, endpoint, ring)` pairs.
struct Link {
    from: (u64, usize, usize),
    to: (u64, usize, usize),
}

fn spawn_worker(cp: &Arc<ControlPlane>, ifname: &str, plan: Plan) -> std::io::Result<Worker> {
    let (kick, wait) = UnixDatagram::pair()?;
    kick.set_nonblocking(true)?;
    wait.set_nonblocking(true)?;
    let epoll = super::sys::Epoll::new()?;
    for &fd in &plan.event_fds {
        epoll.add(fd, 0)?;
    }
    epoll.add(wait.as_raw_fd(), 1)?;
    let kick = Arc::new(kick);
    let stop = Arc::new(AtomicBool::new(false));
    let weak = Arc::downgrade(cp);
    let (k2, s2) = (kick.clone(), stop.clone());
    let handle = std::thread::Builder::new()
        .name(format!("vale-{ifname}"))
        .spawn(move || forward_loop(weak, plan, epoll, wait, k2, s2))?;
    Ok(Worker { stop, kick, handle })
}

fn forward_loop(
    weak: Weak<ControlPlane>,
    plan: Plan,
    epoll: super::sys::Epoll,
    wait: UnixDatagram,
    kick: Arc<UnixDatagram>,
    stop: Arc<AtomicBool>,
) {
    let mut tokens = Vec::new();
    let mut drain = [0u8; 64];
    while !stop.load(Ordering::Acquire) {
        let Some(cp) = weak.upgrade() else { break };
        let mut wakers = Vec::new();
        let moved = {
            let mut st = cp.lock();
            let mem = cp.mem();
            let mut moved = 0;
            for _ in 0..MAX_ROUNDS {
                let n: usize = plan
                    .links
                    .iter()
                    .map(|l| move_frames(&mut st, mem, l, &mut wakers))
                    .sum();
                moved += n;
                if n == 0 {
                    break;
                }
            }
            if moved == 0 {
                for fd in &plan.sw_fds {
                    if let Some(f) = st.fds.get_mut(fd) {
                        f.waker = Some(Box::new(KickWaker(kick.clone())));
                    }
                }
            }
            moved
        };
        super::fire(wakers);
        drop(cp);
        if moved == 0 {
            if let Err(e) = epoll.wait(&mut tokens, IDLE_MS) {
                tracing::error!(%e, "epoll_wait failed; forwarding stops");
                break;
            }
            while wait.recv(&mut drain).is_ok() {}
        }
    }
}

/// Runs the generic sync of one ring as a client would, collecting peers' wakers.
fn sync(
    st: &mut State,
    (aid, ep, ring): (u64, usize, usize),
    d: Dir,
    mem: SharedMem,
    wakers: &mut Vec<Box<dyn PollWaker>>,
) {
    let lim = st.buf_limits();
    let Some(slot) = st.adapters.get_mut(&aid) else {
        return;
    };
    match sync_ring(slot.ad.as_mut(), ep, d, ring, mem, lim) {
        Ok(r) => st.collect_wakers(aid, r.wake, wakers),
        Err(e) => tracing::debug!(%e, ?d, ring, "forwarding sync failed"),
    }
}

fn ring_view<'a>(
    st: &State,
    mem: SharedMem<'a>,
    (aid, ep, ring): (u64, usize, usize),
    d: Dir,
) -> Option<(netmap_netif::RingView<'a>, u32)> {
    let k = st
        .adapters
        .get(&aid)?
        .ad
        .endpoints()
        .get(ep)?
        .krings(d)
        .get(ring)?;
    Some((netmap_netif::adapter::view(mem, k).ok()?, k.num_slots))
}

/// rxsync `from`, copy what it holds into the free TX slots of `to`, txsync `to`.
/// Returns the number of slots consumed.
fn move_frames(
    st: &mut State,
    mem: SharedMem,
    l: &Link,
    wakers: &mut Vec<Box<dyn PollWaker>>,
) -> usize {
    sync(st, l.from, Dir::Rx, mem, wakers);
    let pending = ring_view(st, mem, l.from, Dir::Rx)
        .is_some_and(|(v, _)| matches!((v.head(), v.tail()), (Ok(h), Ok(t)) if h != t));
    if !pending {
        return 0;
    }
    // Reclaims completed TX slots (a NIC's transmissions) before filling them.
    sync(st, l.to, Dir::Tx, mem, wakers);
    let (Some((src, sn)), Some((dst, dn))) = (
        ring_view(st, mem, l.from, Dir::Rx),
        ring_view(st, mem, l.to, Dir::Tx),
    ) else {
        return 0;
    };
    let copy = || -> Result<usize, netmap_pool::OutOfBounds> {
        let (mut s, stail) = (src.head()?, src.tail()?);
        let (mut d, dtail) = (dst.head()?, dst.tail()?);
        let size = st.alloc.buf_size();
        let mut n = 0;
        while s != stail && d != dtail && s < sn && d < dn {
            let slot = src.slot(s)?;
            let di = dst.slot_buf_idx(d)?;
            if let (Some(so), Some(dof)) =
                (st.alloc.buf_offset(slot.buf_idx), st.alloc.buf_offset(di))
            {
                if u32::from(slot.len) <= size {
                    mem.copy_within(so, dof, usize::from(slot.len))?;
                    dst.set_slot_buf_len(d, di, slot.len)?;
                    dst.set_slot_flags(d, slot.flags & abi::NS_MOREFRAG)?;
                    d = if d + 1 == dn { 0 } else { d + 1 };
                }
            }
            s = if s + 1 == sn { 0 } else { s + 1 };
            n += 1;
        }
        src.set_head(s)?;
        src.set_cur(s)?;
        dst.set_head(d)?;
        dst.set_cur(d)?;
        Ok(n)
    };
    let n = match copy() {
        Ok(n) => n,
        Err(e) => {
            tracing::debug!(%e, "forwarding copy failed");
            0
        }
    };
    if n > 0 {
        sync(st, l.to, Dir::Tx, mem, wakers);
    }
    n
}
