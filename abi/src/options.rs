//! The NIOCCTRL option chain (NETMAP-ABI.md §3.7, §3.9).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `struct nmreq_option`: the 24-byte header every option starts with.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqOption {
    pub nro_next: u64,
    pub nro_reqtype: u32,
    pub nro_status: u32,
    pub nro_size: u64,
}
pub const NMREQ_OPTION_SIZE: usize = 24;
crate::assert_layout!(NmreqOption, size = NMREQ_OPTION_SIZE,
    nro_next @ 0, nro_reqtype @ 8, nro_status @ 12, nro_size @ 16);

/// `struct nmreq_opt_extmem`, 96 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqOptExtmem {
    pub nro_opt: NmreqOption,
    pub nro_usrptr: u64,
    pub nro_info: crate::NmreqPoolsInfo,
}
crate::assert_layout!(NmreqOptExtmem, size = 96, nro_opt @ 0, nro_usrptr @ 24, nro_info @ 32);

/// One entry of `nmreq_opt_sync_kloop_eventfds.eventfds[]`.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqOptEventfd {
    pub ioeventfd: i32,
    pub irqfd: i32,
}
crate::assert_layout!(NmreqOptEventfd, size = 8, ioeventfd @ 0, irqfd @ 4);

/// `struct nmreq_opt_csb`, 40 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqOptCsb {
    pub nro_opt: NmreqOption,
    pub csb_atok: u64,
    pub csb_ktoa: u64,
}
crate::assert_layout!(NmreqOptCsb, size = 40, nro_opt @ 0, csb_atok @ 24, csb_ktoa @ 32);

/// `struct nmreq_opt_sync_kloop_mode`, 32 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqOptSyncKloopMode {
    pub nro_opt: NmreqOption,
    pub mode: u32,
    pub pad: u32,
}
crate::assert_layout!(NmreqOptSyncKloopMode, size = 32, nro_opt @ 0, mode @ 24);

/// `struct nmreq_opt_offsets`, 56 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmreqOptOffsets {
    pub nro_opt: NmreqOption,
    pub nro_max_offset: u64,
    pub nro_initial_offset: u64,
    pub nro_offset_bits: u32,
    pub nro_tx_align: u32,
    pub nro_min_gap: u64,
}
crate::assert_layout!(NmreqOptOffsets, size = 56,
    nro_opt @ 0, nro_max_offset @ 24, nro_initial_offset @ 32, nro_offset_bits @ 40,
    nro_tx_align @ 44, nro_min_gap @ 48);

/// `struct nm_csb_atok`, 64 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmCsbAtok {
    pub head: u32,
    pub cur: u32,
    pub appl_need_kick: u32,
    pub sync_flags: u32,
    pub pad: [u32; 12],
}
crate::assert_layout!(NmCsbAtok, size = 64, head @ 0, cur @ 4, appl_need_kick @ 8, sync_flags @ 12, pad @ 16);

/// `struct nm_csb_ktoa`, 64 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NmCsbKtoa {
    pub hwcur: u32,
    pub hwtail: u32,
    pub kern_need_kick: u32,
    pub pad: [u32; 13],
}
crate::assert_layout!(NmCsbKtoa, size = 64, hwcur @ 0, hwtail @ 4, kern_need_kick @ 8, pad @ 12);

/// Size of the body (bytes after the 24-byte header) the kernel copies for a known
/// option type, given the option's `nro_size`. EXTMEM is 0: the default Linux build
/// does not compile the subsystem (§4.2). `None` for unknown types.
pub const fn opt_body_size(reqtype: u32, nro_size: u64) -> Option<u64> {
    match reqtype {
        crate::NETMAP_REQ_OPT_EXTMEM => Some(0),
        crate::NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS => Some(nro_size.saturating_sub(24)),
        crate::NETMAP_REQ_OPT_CSB => Some(16),
        crate::NETMAP_REQ_OPT_SYNC_KLOOP_MODE => Some(8),
        crate::NETMAP_REQ_OPT_OFFSETS => Some(32),
        _ => None,
    }
}
