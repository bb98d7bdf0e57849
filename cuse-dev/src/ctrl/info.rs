//! Information requests (PORT_INFO_GET, POOLS_INFO_GET, PORT_HDR_GET) and the
//! answers for request types whose port kinds the daemon does not have yet, given with
//! the errno the kernel returns in the same situation wherever that is determined.

use super::nmreq::Request;
use super::register::{einval, lookup};
use super::{ControlPlane, Errno};
use netmap_abi as abi;
use netmap_abi::{NmreqPoolsInfo, NmreqPortHdr, NmreqPortInfoGet, NmreqRegister, NmreqValeList};
use netmap_netif::PortCounts;
use zerocopy::{FromBytes, IntoBytes};

impl ControlPlane {
    /// Looks a port up as REGISTER would (ALL_NIC, the body's counts) and returns its
    /// counts; a port created only to answer is destroyed again at once.
    fn port_counts(&self, name: &str, reg: &NmreqRegister) -> Result<PortCounts, Errno> {
        let nic = self.nic_config();
        let mut st = self.lock();
        let (aid, ep, _) = lookup(&mut st, &nic, name, reg, true)?;
        let counts = st.adapters.get(&aid).map(|s| s.ad.endpoints()[ep].counts);
        st.forget_unused_port(aid, ep, self.mem());
        counts.ok_or(Errno(libc::ENXIO))
    }

    pub(crate) fn req_port_info(&self, req: &mut Request) -> Result<(), Errno> {
        let mut b =
            NmreqPortInfoGet::read_from_bytes(&req.body).map_err(|_| Errno(libc::EINVAL))?;
        let memsize = self.lock().alloc.memsize() as u64;
        if req.name.is_empty() {
            super::register::check_mem_id(b.nr_mem_id)?;
            b.nr_memsize = memsize;
            b.nr_mem_id = 1;
        } else {
            super::register::check_mem_id(b.nr_mem_id)?;
            let reg = NmreqRegister {
                nr_tx_slots: b.nr_tx_slots,
                nr_rx_slots: b.nr_rx_slots,
                nr_tx_rings: b.nr_tx_rings,
                nr_rx_rings: b.nr_rx_rings,
                nr_host_tx_rings: b.nr_host_tx_rings,
                nr_host_rx_rings: b.nr_host_rx_rings,
                nr_mem_id: b.nr_mem_id,
                nr_mode: abi::NR_REG_ALL_NIC,
                ..Default::default()
            };
            let c = self.port_counts(&req.name, &reg)?;
            b.nr_memsize = memsize;
            b.nr_mem_id = 1;
            b.nr_tx_rings = c.tx_rings as u16;
            b.nr_rx_rings = c.rx_rings as u16;
            b.nr_tx_slots = c.tx_slots;
            b.nr_rx_slots = c.rx_slots;
            b.nr_host_tx_rings = c.host_tx_rings as u16;
            b.nr_host_rx_rings = c.host_rx_rings as u16;
        }
        req.body = b.as_bytes().to_vec();
        Ok(())
    }

    pub(crate) fn req_pools_info(&self, req: &mut Request) -> Result<(), Errno> {
        let mut b = NmreqPoolsInfo::read_from_bytes(&req.body).map_err(|_| Errno(libc::EINVAL))?;
        if req.name.is_empty() {
            tracing::debug!("POOLS_INFO_GET without a port name");
            return Err(Errno(libc::ENXIO));
        }
        super::register::check_mem_id(b.nr_mem_id)?;
        let reg = NmreqRegister {
            nr_mem_id: b.nr_mem_id,
            nr_mode: abi::NR_REG_ALL_NIC,
            ..Default::default()
        };
        self.port_counts(&req.name, &reg)?;
        let p = self.lock().alloc.pools_info();
        b = NmreqPoolsInfo {
            nr_memsize: p.memsize,
            nr_mem_id: p.mem_id,
            pad1: [0; 3],
            nr_if_pool_offset: p.if_pool_offset,
            nr_if_pool_objtotal: p.if_pool_objtotal,
            nr_if_pool_objsize: p.if_pool_objsize,
            nr_ring_pool_offset: p.ring_pool_offset,
            nr_ring_pool_objtotal: p.ring_pool_objtotal,
            nr_ring_pool_objsize: p.ring_pool_objsize,
            nr_buf_pool_offset: p.buf_pool_offset,
            nr_buf_pool_objtotal: p.buf_pool_objtotal,
            nr_buf_pool_objsize: p.buf_pool_objsize,
        };
        req.body = b.as_bytes().to_vec();
        Ok(())
    }

    /// PORT_HDR_GET never creates a port: an absent pipe pair is ENODEV, an absent
    /// VALE port ENXIO. Only VALE ports have a header length.
    pub(crate) fn req_port_hdr_get(&self, req: &mut Request) -> Result<(), Errno> {
        let nic = self.nic_config();
        let mut st = self.lock();
        let reg = NmreqRegister {
            nr_mode: abi::NR_REG_ALL_NIC,
            ..Default::default()
        };
        let (aid, ep, _) = lookup(&mut st, &nic, &req.name, &reg, false)?;
        let len = st
            .adapters
            .get(&aid)
            .and_then(|s| s.ad.as_vale())
            .map_or(0, |sw| sw.hdr_len(ep));
        req.body = NmreqPortHdr {
            nr_hdr_len: len,
            pad1: 0,
        }
        .as_bytes()
        .to_vec();
        Ok(())
    }

    /// PORT_HDR_SET: VALE ports only (others ENXIO), lengths 0, 10 or 12.
    fn req_port_hdr_set(&self, req: &mut Request) -> Result<(), Errno> {
        let b = NmreqPortHdr::read_from_bytes(&req.body).map_err(|_| Errno(libc::EINVAL))?;
        let mut st = self.lock();
        let Some((sw, port)) = netmap_netif::parse_vale_name(&req.name) else {
            tracing::debug!(name = %req.name, "PORT_HDR_SET on a port that is not a VALE port");
            return Err(Errno(libc::ENXIO));
        };
        let aid = st.switch_id(sw).ok_or(Errno(libc::ENXIO))?;
        let sw_ad = st
            .adapters
            .get_mut(&aid)
            .and_then(|s| s.ad.as_vale_mut())
            .ok_or(Errno(libc::ENXIO))?;
        let ep = sw_ad.find_port(port).ok_or(Errno(libc::ENXIO))?;
        sw_ad.set_hdr_len(ep, b.nr_hdr_len, self.mem())?;
        Ok(())
    }

    /// VALE_LIST (§5.4): by name, the switch and port slots (port 255 if absent,
    /// ENOENT if the switch is); with an empty name, the next port at or after the
    /// body's (bridge, port) indices, whose full name goes into the header.
    pub(crate) fn req_vale_list(&self, req: &mut Request) -> Result<(), Errno> {
        let mut b = NmreqValeList::read_from_bytes(&req.body).map_err(|_| Errno(libc::EINVAL))?;
        let st = self.lock();
        if !req.name.is_empty() {
            if !req.name.starts_with("vale") {
                return Err(einval("VALE_LIST on a name without the vale prefix"));
            }
            let (sw, port) = netmap_netif::parse_vale_name(&req.name).ok_or(Errno(libc::EINVAL))?;
            let (bi, aid) = st
                .switches
                .iter()
                .enumerate()
                .find_map(|(i, s)| s.as_ref().filter(|(n, _)| n == sw).map(|(_, a)| (i, *a)))
                .ok_or(Errno(libc::ENOENT))?;
            let pi = st
                .adapters
                .get(&aid)
                .and_then(|s| s.ad.as_vale())
                .and_then(|v| v.find_port(port))
                .map_or(255, |p| p as u32);
            b.nr_bridge_idx = bi as u16;
            b.nr_port_idx = pi;
        } else {
            let mut found = None;
            for (bi, s) in st
                .switches
                .iter()
                .enumerate()
                .skip(usize::from(b.nr_bridge_idx))
            {
                let Some((_, aid)) = s else { continue };
                let Some(v) = st.adapters.get(aid).and_then(|s| s.ad.as_vale()) else {
                    continue;
                };
                let first = if bi == usize::from(b.nr_bridge_idx) {
                    b.nr_port_idx
                } else {
                    0
                };
                if let Some((pi, name)) = v.list().into_iter().find(|(p, _)| *p >= first) {
                    found = Some((bi, pi, name));
                    break;
                }
            }
            let (bi, pi, name) = found.ok_or(Errno(libc::ENOENT))?;
            b.nr_bridge_idx = bi as u16;
            b.nr_port_idx = pi;
            abi::set_cname(&mut req.hdr.nr_name, &name);
        }
        req.body = b.as_bytes().to_vec();
        Ok(())
    }

    /// The other VALE requests: names without the VALE prefix get the kernel's EINVAL;
    /// PORT_HDR_SET is answered here, the rest in vale.rs.
    pub(crate) fn req_vale_other(&self, req: &mut Request) -> Result<(), Errno> {
        let t = req.hdr.nr_reqtype;
        let vale_named = matches!(
            t,
            abi::NETMAP_REQ_VALE_ATTACH
                | abi::NETMAP_REQ_VALE_DETACH
                | abi::NETMAP_REQ_VALE_POLLING_ENABLE
                | abi::NETMAP_REQ_VALE_POLLING_DISABLE
        );
        if vale_named && !req.name.starts_with("vale") {
            return Err(einval("VALE request on a name without the vale prefix"));
        }
        match t {
            abi::NETMAP_REQ_PORT_HDR_SET => self.req_port_hdr_set(req),
            _ => self.req_vale_manage(req),
        }
    }
}
