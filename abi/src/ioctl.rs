//! ioctl command numbers (Linux `_IOC` encoding, NETMAP-ABI.md §2).

const IOC_NONE: u32 = 0;
const IOC_READ_WRITE: u32 = 3;

/// Linux `_IOC(dir, type, nr, size)`.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

pub const NIOCGINFO: u32 = ioc(IOC_READ_WRITE, b'i', 145, crate::NMREQ_SIZE);
pub const NIOCREGIF: u32 = ioc(IOC_READ_WRITE, b'i', 146, crate::NMREQ_SIZE);
pub const NIOCTXSYNC: u32 = ioc(IOC_NONE, b'i', 148, 0);
pub const NIOCRXSYNC: u32 = ioc(IOC_NONE, b'i', 149, 0);
pub const NIOCCONFIG: u32 = ioc(IOC_READ_WRITE, b'i', 150, crate::NM_IFREQ_SIZE);
pub const NIOCCTRL: u32 = ioc(IOC_READ_WRITE, b'i', 151, crate::NMREQ_HEADER_SIZE);

/// netmapd's own command (not netmap's): a client that ran a sync in its own process
/// found a poller of the peer waiting in the kernel (FUSE/CUSE poll) and asks the
/// daemon to wake it. No argument; on any other `/dev/netmap` it is an unknown ioctl.
pub const NIOC_NMD_KICK: u32 = ioc(IOC_NONE, b'i', 0xd0, 0);

/// Size of the argument struct the kernel copies for `cmd` (the `_IOC_SIZE` bits).
pub const fn ioc_size(cmd: u32) -> usize {
    ((cmd >> 16) & 0x3fff) as usize
}

// The values measured from netmap's headers; the encoder above must agree with them.
const _: () = {
    assert!(NIOCGINFO == 0xc03c6991);
    assert!(NIOCREGIF == 0xc03c6992);
    assert!(NIOCTXSYNC == 0x00006994);
    assert!(NIOCRXSYNC == 0x00006995);
    assert!(NIOCCONFIG == 0xc1106996);
    assert!(NIOCCTRL == 0xc0586997);
};
