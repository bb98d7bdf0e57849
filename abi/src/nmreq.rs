//! Request structures: the legacy `nmreq`, `nm_ifreq`, `nmreq_header` and the bodies
//! of every NIOCCTRL request type (NETMAP-ABI.md §3.4–§3.8).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Legacy `struct nmreq` (NIOCGINFO / NIOCREGIF), 60 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Nmreq {
    pub nr_name: [u8; 16],
    pub nr_version: u32,
    pub nr_offset: u32,
    pub nr_memsize: u32,
    pub nr_tx_slots: u32,
    pub nr_rx_slots: u32,
    pub nr_tx_rings: u16,
    pub nr_rx_rings: u16,
    pub nr_ringid: u16,
    pub nr_cmd: u16,
    pub nr_arg1: u16,
    pub nr_arg2: u16,
    pub nr_arg3: u32,
    pub nr_flags: u32,
    pub spare2: [u32; 1],
}
pub const NMREQ_SIZE: usize = 60;
crate::assert_layout!(Nmreq, size = NMREQ_SIZE,
    nr_name @ 0, nr_version @ 16, nr_offset @ 20, nr_memsize @ 24, nr_tx_slots @ 28,
    nr_rx_slots @ 32, nr_tx_rings @ 36, nr_rx_rings @ 38, nr_ringid @ 40, nr_cmd @ 42,
    nr_arg1 @ 44, nr_arg2 @ 46, nr_arg3 @ 48, nr_flags @ 52, spare2 @ 56);

/// `struct nm_ifreq` (NIOCCONFIG), 272 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NmIfreq {
    pub nifr_name: [u8; 16],
    pub data: [u8; 256],
}
pub const NM_IFREQ_SIZE: usize = 272;
crate::assert_layout!(NmIfreq, size = NM_IFREQ_SIZE, nifr_name @ 0, data @ 16);

/// `struct nmreq_header` (NIOCCTRL), 88 bytes; body and options are user pointers.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NmreqHeader {
    pub nr_version: u16,
    pub nr_reqtype: u16,
    pub nr_reserved: u32,
    pub nr_name: [u8; 64],
    pub nr_options: u64,
    pub nr_body: u64,
}
pub const NMREQ_HEADER_SIZE: usize = 88;
crate::assert_layout!(NmreqHeader, size = NMREQ_HEADER_SIZE,
    nr_version @ 0, nr_reqtype @ 2, nr_reserved @ 4, nr_name @ 8, nr_options @ 72, nr_body @ 80);

impl Default for NmreqHeader {
    fn default() -> Self {
        Self {
            nr_version: crate::NETMAP_API as u16,
            nr_reqtype: 0,
            nr_reserved: 0,
            nr_name: [0; 64],
            nr_options: 0,
            nr_body: 0,
        }
    }
}

/// `struct nmreq_register` (REGISTER), 56 bytes with a hole at 44.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqRegister {
    pub nr_offset: u64,
    pub nr_memsize: u64,
    pub nr_tx_slots: u32,
    pub nr_rx_slots: u32,
    pub nr_tx_rings: u16,
    pub nr_rx_rings: u16,
    pub nr_host_tx_rings: u16,
    pub nr_host_rx_rings: u16,
    pub nr_mem_id: u16,
    pub nr_ringid: u16,
    pub nr_mode: u32,
    pub nr_extra_bufs: u32,
    pub _pad0: u32,
    pub nr_flags: u64,
}
crate::assert_layout!(NmreqRegister, size = 56,
    nr_offset @ 0, nr_memsize @ 8, nr_tx_slots @ 16, nr_rx_slots @ 20, nr_tx_rings @ 24,
    nr_rx_rings @ 26, nr_host_tx_rings @ 28, nr_host_rx_rings @ 30, nr_mem_id @ 32,
    nr_ringid @ 34, nr_mode @ 36, nr_extra_bufs @ 40, nr_flags @ 48);

/// `struct nmreq_port_info_get` (PORT_INFO_GET), 32 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqPortInfoGet {
    pub nr_memsize: u64,
    pub nr_tx_slots: u32,
    pub nr_rx_slots: u32,
    pub nr_tx_rings: u16,
    pub nr_rx_rings: u16,
    pub nr_host_tx_rings: u16,
    pub nr_host_rx_rings: u16,
    pub nr_mem_id: u16,
    pub pad: [u16; 3],
}
crate::assert_layout!(NmreqPortInfoGet, size = 32,
    nr_memsize @ 0, nr_tx_slots @ 8, nr_rx_slots @ 12, nr_tx_rings @ 16, nr_rx_rings @ 18,
    nr_host_tx_rings @ 20, nr_host_rx_rings @ 22, nr_mem_id @ 24, pad @ 26);

/// `struct nmreq_vale_attach`, 64 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqValeAttach {
    pub reg: NmreqRegister,
    pub port_index: u32,
    pub pad1: u32,
}
crate::assert_layout!(NmreqValeAttach, size = 64, reg @ 0, port_index @ 56, pad1 @ 60);

/// `struct nmreq_vale_detach`, 8 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqValeDetach {
    pub port_index: u32,
    pub pad1: u32,
}
crate::assert_layout!(NmreqValeDetach, size = 8, port_index @ 0, pad1 @ 4);

/// `struct nmreq_vale_list`, 8 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqValeList {
    pub nr_bridge_idx: u16,
    pub pad1: u16,
    pub nr_port_idx: u32,
}
crate::assert_layout!(NmreqValeList, size = 8, nr_bridge_idx @ 0, pad1 @ 2, nr_port_idx @ 4);

/// `struct nmreq_port_hdr` (PORT_HDR_SET/GET), 8 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqPortHdr {
    pub nr_hdr_len: u32,
    pub pad1: u32,
}
crate::assert_layout!(NmreqPortHdr, size = 8, nr_hdr_len @ 0, pad1 @ 4);

/// `struct nmreq_vale_newif`, 16 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqValeNewif {
    pub nr_tx_slots: u32,
    pub nr_rx_slots: u32,
    pub nr_tx_rings: u16,
    pub nr_rx_rings: u16,
    pub nr_mem_id: u16,
    pub pad1: u16,
}
crate::assert_layout!(NmreqValeNewif, size = 16,
    nr_tx_slots @ 0, nr_rx_slots @ 4, nr_tx_rings @ 8, nr_rx_rings @ 10, nr_mem_id @ 12, pad1 @ 14);

/// `struct nmreq_vale_polling`, 16 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqValePolling {
    pub nr_mode: u32,
    pub nr_first_cpu_id: u32,
    pub nr_num_polling_cpus: u32,
    pub pad1: u32,
}
crate::assert_layout!(NmreqValePolling, size = 16,
    nr_mode @ 0, nr_first_cpu_id @ 4, nr_num_polling_cpus @ 8, pad1 @ 12);

/// `struct nmreq_pools_info` (POOLS_INFO_GET, also inside the EXTMEM option), 64 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqPoolsInfo {
    pub nr_memsize: u64,
    pub nr_mem_id: u16,
    pub pad1: [u16; 3],
    pub nr_if_pool_offset: u64,
    pub nr_if_pool_objtotal: u32,
    pub nr_if_pool_objsize: u32,
    pub nr_ring_pool_offset: u64,
    pub nr_ring_pool_objtotal: u32,
    pub nr_ring_pool_objsize: u32,
    pub nr_buf_pool_offset: u64,
    pub nr_buf_pool_objtotal: u32,
    pub nr_buf_pool_objsize: u32,
}
crate::assert_layout!(NmreqPoolsInfo, size = 64,
    nr_memsize @ 0, nr_mem_id @ 8, pad1 @ 10, nr_if_pool_offset @ 16, nr_if_pool_objtotal @ 24,
    nr_if_pool_objsize @ 28, nr_ring_pool_offset @ 32, nr_ring_pool_objtotal @ 40,
    nr_ring_pool_objsize @ 44, nr_buf_pool_offset @ 48, nr_buf_pool_objtotal @ 56,
    nr_buf_pool_objsize @ 60);

/// `struct nmreq_sync_kloop_start`, 8 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqSyncKloopStart {
    pub sleep_us: u32,
    pub pad1: u32,
}
crate::assert_layout!(NmreqSyncKloopStart, size = 8, sleep_us @ 0, pad1 @ 4);

/// Body size the kernel copies for a request type (unknown types: 0). §4.1.
pub const fn req_body_size(reqtype: u16) -> usize {
    use core::mem::size_of;
    match reqtype {
        crate::NETMAP_REQ_REGISTER => size_of::<NmreqRegister>(),
        crate::NETMAP_REQ_PORT_INFO_GET => size_of::<NmreqPortInfoGet>(),
        crate::NETMAP_REQ_VALE_ATTACH => size_of::<NmreqValeAttach>(),
        crate::NETMAP_REQ_VALE_DETACH => size_of::<NmreqValeDetach>(),
        crate::NETMAP_REQ_VALE_LIST => size_of::<NmreqValeList>(),
        crate::NETMAP_REQ_PORT_HDR_SET | crate::NETMAP_REQ_PORT_HDR_GET => {
            size_of::<NmreqPortHdr>()
        }
        crate::NETMAP_REQ_VALE_NEWIF => size_of::<NmreqValeNewif>(),
        crate::NETMAP_REQ_VALE_POLLING_ENABLE | crate::NETMAP_REQ_VALE_POLLING_DISABLE => {
            size_of::<NmreqValePolling>()
        }
        crate::NETMAP_REQ_POOLS_INFO_GET => size_of::<NmreqPoolsInfo>(),
        crate::NETMAP_REQ_SYNC_KLOOP_START => size_of::<NmreqSyncKloopStart>(),
        _ => 0,
    }
}
