//! The legacy API (NIOCREGIF / NIOCGINFO with `struct nmreq`), translated to the new
//! requests as netmap_legacy.c does (NETMAP-ABI.md §1, §5.6).

use super::{ControlPlane, Errno, FdId};
use netmap_abi as abi;
use netmap_abi::{Nmreq, NmreqRegister};
use zerocopy::{FromBytes, IntoBytes};

impl ControlPlane {
    pub(crate) fn legacy(&self, fd: FdId, cmd: u32, arg: &[u8]) -> Result<Vec<u8>, Errno> {
        let Ok(mut r) = Nmreq::read_from_bytes(arg) else {
            return Err(Errno(libc::EINVAL));
        };
        if r.nr_version < abi::NETMAP_MIN_API {
            tracing::debug!(
                fd,
                version = r.nr_version,
                "legacy request with an old API version"
            );
            return Err(Errno(libc::EINVAL));
        }
        r.nr_name[abi::IFNAMSIZ - 1] = 0;
        let name = abi::cname(&r.nr_name);
        if cmd == abi::NIOCGINFO {
            return self.legacy_info(r, &name);
        }
        match r.nr_cmd {
            0 => self.legacy_regif(fd, r, name),
            abi::NETMAP_PT_HOST_CREATE | abi::NETMAP_PT_HOST_DELETE => Err(Errno(libc::ENOMEM)),
            abi::NETMAP_BDG_REGOPS | abi::NETMAP_BDG_LIST => Err(Errno(libc::EINVAL)),
            c if c > abi::NETMAP_VNET_HDR_GET => Err(Errno(libc::EINVAL)),
            _ => self.legacy_vale(r, &name),
        }
    }

    fn legacy_regif(&self, fd: FdId, mut r: Nmreq, mut name: String) -> Result<Vec<u8>, Errno> {
        let ringid = r.nr_ringid;
        let mut mode = r.nr_flags & abi::NR_REG_MASK;
        let mut ring = ringid & abi::NETMAP_RING_MASK;
        if mode == abi::NR_REG_DEFAULT {
            mode = if ringid & abi::NETMAP_SW_RING != 0 {
                abi::NR_REG_SW
            } else if ringid & abi::NETMAP_HW_RING != 0 {
                abi::NR_REG_ONE_NIC
            } else {
                abi::NR_REG_ALL_NIC
            };
        }
        if matches!(mode, abi::NR_REG_PIPE_MASTER | abi::NR_REG_PIPE_SLAVE) {
            let b = if mode == abi::NR_REG_PIPE_MASTER {
                '{'
            } else {
                '}'
            };
            name = format!("{name}{b}{ring}");
            mode = abi::NR_REG_ALL_NIC;
            ring = 0;
        }
        let mut flags = u64::from(r.nr_flags & !abi::NR_REG_MASK);
        if ringid & abi::NETMAP_NO_TX_POLL != 0 {
            flags |= abi::NR_NO_TX_POLL;
        }
        if ringid & abi::NETMAP_DO_RX_POLL != 0 {
            flags |= abi::NR_DO_RX_POLL;
        }
        let mut reg = NmreqRegister {
            nr_tx_slots: r.nr_tx_slots,
            nr_rx_slots: r.nr_rx_slots,
            nr_tx_rings: r.nr_tx_rings,
            nr_rx_rings: r.nr_rx_rings,
            nr_mem_id: r.nr_arg2,
            nr_ringid: ring,
            nr_mode: mode,
            nr_extra_bufs: r.nr_arg3,
            nr_flags: flags,
            ..Default::default()
        };
        self.do_register(fd, &name, &mut reg, &mut [], &super::NoMemory)?;
        r.nr_offset = reg.nr_offset as u32;
        r.nr_memsize = reg.nr_memsize as u32;
        r.nr_tx_slots = reg.nr_tx_slots;
        r.nr_rx_slots = reg.nr_rx_slots;
        r.nr_tx_rings = reg.nr_tx_rings;
        r.nr_rx_rings = reg.nr_rx_rings;
        r.nr_arg2 = reg.nr_mem_id;
        r.nr_arg3 = reg.nr_extra_bufs;
        Ok(r.as_bytes().to_vec())
    }

    fn legacy_info(&self, mut r: Nmreq, name: &str) -> Result<Vec<u8>, Errno> {
        if r.nr_cmd == abi::NETMAP_BDG_LIST {
            if !name.is_empty() && !name.starts_with("vale") {
                return Err(Errno(libc::EINVAL));
            }
            return Err(Errno(libc::ENOENT));
        }
        let mut hdr = abi::NmreqHeader::default();
        abi::set_cname(&mut hdr.nr_name, name);
        let b = abi::NmreqPortInfoGet {
            nr_tx_slots: r.nr_tx_slots,
            nr_rx_slots: r.nr_rx_slots,
            nr_tx_rings: r.nr_tx_rings,
            nr_rx_rings: r.nr_rx_rings,
            nr_mem_id: r.nr_arg2,
            ..Default::default()
        };
        let mut req = super::nmreq::Request {
            hdr,
            name: name.to_string(),
            body: b.as_bytes().to_vec(),
            opts: Vec::new(),
        };
        self.req_port_info(&mut req)?;
        let b =
            abi::NmreqPortInfoGet::read_from_bytes(&req.body).map_err(|_| Errno(libc::EINVAL))?;
        r.nr_memsize = b.nr_memsize as u32;
        r.nr_tx_slots = b.nr_tx_slots;
        r.nr_rx_slots = b.nr_rx_slots;
        r.nr_tx_rings = b.nr_tx_rings;
        r.nr_rx_rings = b.nr_rx_rings;
        r.nr_arg2 = b.nr_mem_id;
        Ok(r.as_bytes().to_vec())
    }
}
