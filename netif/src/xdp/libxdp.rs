//! libxdp, loaded at run time, and the four AF_XDP rings it sets up.
//!
//! libxdp (xdp-tools) owns the parts that need BPF: it loads its default XSK program
//! (redirect a queue's frames to the socket bound to it, pass the rest to the stack),
//! attaches it to the interface (native XDP where the driver has it, generic XDP
//! otherwise; through its multi-program dispatcher when the kernel allows, else on its
//! own), and puts each socket in the program's map. We call five of its functions.
//!
//! Why at run time, as libfuse3 for the CUSE front end: every build then has the XDP
//! backend, it needs only the runtime package (libxdp1, no headers, no clang), and a
//! machine without it still serves NIC ports through AF_PACKET with a log line saying
//! why.
//!
//! The ring accessors that xsk.h provides as inline functions are written here: four
//! single-producer single-consumer rings shared with the kernel, a producer and a
//! consumer index each (acquire/release), entries read and written volatile.
//! Unsafe code lives here and in `queue.rs`: calls into libxdp and accesses to the
//! rings the kernel shares with us.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The runtime library's soname (Debian package libxdp1).
pub const LIBXDP: &str = "libxdp.so.1";

/// `struct xsk_ring_prod` / `struct xsk_ring_cons` (xsk.h): filled by libxdp, pointers
/// into the socket's ring mappings.
#[repr(C)]
#[derive(Debug)]
pub struct XskRing {
    cached_prod: u32,
    cached_cons: u32,
    mask: u32,
    size: u32,
    producer: *mut u32,
    consumer: *mut u32,
    ring: *mut c_void,
    flags: *mut u32,
}

impl Default for XskRing {
    fn default() -> Self {
        Self {
            cached_prod: 0,
            cached_cons: 0,
            mask: 0,
            size: 0,
            producer: std::ptr::null_mut(),
            consumer: std::ptr::null_mut(),
            ring: std::ptr::null_mut(),
            flags: std::ptr::null_mut(),
        }
    }
}

// SAFETY: the pointers lead into mappings owned by the socket or UMEM this ring belongs
// to, which live as long as it; the ring is used by one thread at a time (the port's
// owner, under the control plane's lock).
unsafe impl Send for XskRing {}

/// `struct xdp_desc` (linux/if_xdp.h): an RX or TX descriptor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
}

const XDP_RING_NEED_WAKEUP: u32 = 1;

impl XskRing {
    fn prod_idx(&self) -> &AtomicU32 {
        // SAFETY: `producer` points to the ring's aligned u32 producer index in its
        // mapping (set by libxdp at creation, valid while the ring lives); the kernel
        // accesses it atomically too.
        unsafe { AtomicU32::from_ptr(self.producer) }
    }

    fn cons_idx(&self) -> &AtomicU32 {
        // SAFETY: as `prod_idx`, for the consumer index.
        unsafe { AtomicU32::from_ptr(self.consumer) }
    }

    /// Whether the kernel asks for a wake-up call (XDP_USE_NEED_WAKEUP).
    pub fn needs_wakeup(&self) -> bool {
        if self.flags.is_null() {
            return true;
        }
        // SAFETY: `flags` points to the ring's aligned u32 flags word in its mapping.
        let f = unsafe { AtomicU32::from_ptr(self.flags) }.load(Ordering::Relaxed);
        f & XDP_RING_NEED_WAKEUP != 0
    }

    /// Producer: how many of `n` entries can be written now.
    pub fn free(&mut self, n: u32) -> u32 {
        let free = self.cached_cons.wrapping_sub(self.cached_prod);
        if free >= n {
            return free;
        }
        self.cached_cons = self
            .cons_idx()
            .load(Ordering::Acquire)
            .wrapping_add(self.size);
        self.cached_cons.wrapping_sub(self.cached_prod)
    }

    /// Producer: writes a fill/completion address at position `i` past the last
    /// submitted one (`i` < what [`Self::free`] allowed).
    #[inline]
    pub fn put_addr(&mut self, i: u32, addr: u64) {
        let pos = (self.cached_prod.wrapping_add(i) & self.mask) as usize;
        // SAFETY: `ring` is the ring's entry array of `size` u64 entries (a fill
        // ring), `pos` <= mask < size; the entry is ours until submitted.
        unsafe { std::ptr::write_volatile((self.ring as *mut u64).add(pos), addr) }
    }

    /// Producer: writes a TX descriptor at position `i` past the last submitted one.
    #[inline]
    pub fn put_desc(&mut self, i: u32, d: Desc) {
        let pos = (self.cached_prod.wrapping_add(i) & self.mask) as usize;
        // SAFETY: `ring` is the TX ring's array of `size` 16-byte xdp_desc entries
        // (u64 addr, u32 len, u32 options), `pos` < size; ours until submitted.
        unsafe {
            let e = (self.ring as *mut u8).add(pos * 16);
            std::ptr::write_volatile(e as *mut u64, d.addr);
            std::ptr::write_volatile(e.add(8) as *mut u32, d.len);
            std::ptr::write_volatile(e.add(12) as *mut u32, 0);
        }
    }

    /// Producer: entries submitted that the kernel has not taken yet.
    pub fn unconsumed(&self) -> u32 {
        self.cached_prod
            .wrapping_sub(self.cons_idx().load(Ordering::Acquire))
    }

    /// Producer: hands `n` written entries to the kernel.
    #[inline]
    pub fn submit(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.cached_prod = self.cached_prod.wrapping_add(n);
        self.prod_idx().store(self.cached_prod, Ordering::Release);
    }

    /// Consumer: how many entries (at most `n`) are ready.
    #[inline]
    pub fn ready(&mut self, n: u32) -> u32 {
        let mut avail = self.cached_prod.wrapping_sub(self.cached_cons);
        if avail == 0 {
            self.cached_prod = self.prod_idx().load(Ordering::Acquire);
            avail = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        avail.min(n)
    }

    /// Consumer: the address at position `i` past the last released entry.
    #[inline]
    pub fn get_addr(&self, i: u32) -> u64 {
        let pos = (self.cached_cons.wrapping_add(i) & self.mask) as usize;
        // SAFETY: a completion ring's u64 entry array, `pos` < size; published by the
        // kernel before the producer index we loaded with acquire.
        unsafe { std::ptr::read_volatile((self.ring as *const u64).add(pos)) }
    }

    /// Consumer: the RX descriptor at position `i` past the last released entry.
    #[inline]
    pub fn get_desc(&self, i: u32) -> Desc {
        let pos = (self.cached_cons.wrapping_add(i) & self.mask) as usize;
        // SAFETY: the RX ring's 16-byte xdp_desc array, `pos` < size; published by the
        // kernel before the producer index we loaded with acquire.
        unsafe {
            let e = (self.ring as *const u8).add(pos * 16);
            Desc {
                addr: std::ptr::read_volatile(e as *const u64),
                len: std::ptr::read_volatile(e.add(8) as *const u32),
            }
        }
    }

    /// Consumer: gives `n` read entries back to the kernel.
    #[inline]
    pub fn release(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.cons_idx().store(self.cached_cons, Ordering::Release);
    }

    /// Entries in the ring (0 if it was never set up).
    pub fn size(&self) -> u32 {
        self.size
    }

    /// A ring over a mapping the caller made of a socket's ring (`base`, laid out as
    /// `off` says, `size` entries, a power of two): what a client process that took
    /// the daemon's socket uses, with the same accessors as libxdp's rings.
    /// `producer`: a ring we write (fill), else one we read (RX).
    ///
    /// # Safety
    /// `base` must be a live mapping of that ring, holding `off.desc` plus `size`
    /// entries, that outlives the returned value.
    pub unsafe fn over(base: *mut u8, off: &RingOffset, size: u32, producer: bool) -> Self {
        // SAFETY: offsets inside the mapping, per the caller's contract.
        let mut r = unsafe {
            Self {
                cached_prod: 0,
                cached_cons: 0,
                mask: size - 1,
                size,
                producer: base.add(off.producer as usize).cast(),
                consumer: base.add(off.consumer as usize).cast(),
                ring: base.add(off.desc as usize).cast(),
                flags: base.add(off.flags as usize).cast(),
            }
        };
        r.resync(producer);
        r
    }

    /// Reloads the cached indices from the shared ones: after another process used
    /// the ring (a client that read it itself, or the daemon before it).
    pub fn resync(&mut self, producer: bool) {
        if self.producer.is_null() {
            return;
        }
        let (p, c) = (
            self.prod_idx().load(Ordering::Acquire),
            self.cons_idx().load(Ordering::Acquire),
        );
        if producer {
            self.cached_prod = p;
            self.cached_cons = c.wrapping_add(self.size);
        } else {
            self.cached_prod = p;
            self.cached_cons = c;
        }
    }
}

/// `struct xdp_ring_offset` (linux/if_xdp.h).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct RingOffset {
    pub producer: u64,
    pub consumer: u64,
    pub desc: u64,
    pub flags: u64,
}

/// `struct xdp_mmap_offsets`: where each ring's parts lie in its mapping.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct MmapOffsets {
    pub rx: RingOffset,
    pub tx: RingOffset,
    pub fill: RingOffset,
    pub comp: RingOffset,
}

/// The socket option level of AF_XDP (linux/socket.h).
pub const SOL_XDP: c_int = 283;
/// `getsockopt(SOL_XDP, XDP_MMAP_OFFSETS)`.
pub const XDP_MMAP_OFFSETS: c_int = 1;
/// mmap page offsets of the RX ring and the fill ring (linux/if_xdp.h).
pub const XDP_PGOFF_RX_RING: i64 = 0;
pub const XDP_UMEM_PGOFF_FILL_RING: i64 = 0x1_0000_0000;

/// `struct xsk_umem_config`, with room for fields later libxdp versions append (they
/// read the structure whole; zeros are their defaults).
#[repr(C)]
#[derive(Debug, Default)]
pub struct UmemConfig {
    pub fill_size: u32,
    pub comp_size: u32,
    pub frame_size: u32,
    pub frame_headroom: u32,
    pub flags: u32,
    pub _later: [u32; 8],
}

/// `struct xsk_socket_config`, with the same room.
#[repr(C)]
#[derive(Debug, Default)]
pub struct SocketConfig {
    pub rx_size: u32,
    pub tx_size: u32,
    pub libxdp_flags: u32,
    pub xdp_flags: u32,
    pub bind_flags: u16,
    pub _later: [u16; 15],
}

pub const XDP_COPY: u16 = 1 << 1;
pub const XDP_ZEROCOPY: u16 = 1 << 2;
pub const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
pub const XDP_UMEM_UNALIGNED_CHUNK_FLAG: u32 = 1;
/// Headroom the kernel leaves before a received frame in a chunk.
pub const XDP_PACKET_HEADROOM: u64 = 256;

type PrintFn = unsafe extern "C" fn(c_int, *const c_char, *mut c_void) -> c_int;

/// The libxdp functions we call.
pub struct Api {
    umem_create: unsafe extern "C" fn(
        *mut *mut c_void,
        *mut c_void,
        u64,
        *mut XskRing,
        *mut XskRing,
        *const UmemConfig,
    ) -> c_int,
    socket_create: unsafe extern "C" fn(
        *mut *mut c_void,
        *const c_char,
        u32,
        *mut c_void,
        *mut XskRing,
        *mut XskRing,
        *const SocketConfig,
    ) -> c_int,
    socket_fd: unsafe extern "C" fn(*const c_void) -> c_int,
    socket_delete: unsafe extern "C" fn(*mut c_void),
    umem_delete: unsafe extern "C" fn(*mut c_void) -> c_int,
    /// Keeps the library mapped for as long as the pointers above live.
    _lib: libloading::Library,
}

/// libxdp's messages go to our log (the format string only: its arguments are a
/// `va_list` Rust cannot format) instead of the daemon's stderr.
unsafe extern "C" fn log_print(level: c_int, fmt: *const c_char, _ap: *mut c_void) -> c_int {
    // Warnings only (level 0): the rest is libbpf's ELF-loading chatter, and the
    // format strings say little without their arguments.
    if fmt.is_null() || level > 0 {
        return 0;
    }
    // SAFETY: libxdp passes a NUL-terminated format string.
    let s = unsafe { CStr::from_ptr(fmt) }.to_string_lossy();
    tracing::debug!(level, msg = s.trim_end(), "libxdp");
    0
}

fn load() -> Result<Api, String> {
    // SAFETY: libxdp's initialisers only set up its own state.
    let lib = unsafe { libloading::Library::new(LIBXDP) }.map_err(|e| e.to_string())?;
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the symbol is libxdp's public function of that name (xsk.h,
            // libxdp.h), whose C prototype is the field's type.
            *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                .map_err(|e| format!("{}: {e}", $name))?
        };
    }
    let set_print: unsafe extern "C" fn(Option<PrintFn>) -> Option<PrintFn> =
        sym!("libxdp_set_print");
    // SAFETY: installs a callback with libxdp's print signature; it lives forever.
    unsafe { set_print(Some(log_print)) };
    // libbpf (libxdp's own dependency, loaded with it) prints to stderr too.
    // SAFETY: as above; libbpf_set_print has the same callback signature.
    if let Ok(bpf) = unsafe { libloading::Library::new("libbpf.so.1") } {
        // SAFETY: libbpf's public function of that name (libbpf.h).
        let sp = unsafe {
            bpf.get::<unsafe extern "C" fn(Option<PrintFn>) -> Option<PrintFn>>(
                b"libbpf_set_print\0",
            )
        };
        if let Ok(sp) = sp {
            // SAFETY: as for libxdp's.
            unsafe { sp(Some(log_print)) };
        }
        // Kept loaded for the daemon's lifetime, as libxdp keeps it.
        std::mem::forget(bpf);
    }
    Ok(Api {
        umem_create: sym!("xsk_umem__create"),
        socket_create: sym!("xsk_socket__create"),
        socket_fd: sym!("xsk_socket__fd"),
        socket_delete: sym!("xsk_socket__delete"),
        umem_delete: sym!("xsk_umem__delete"),
        _lib: lib,
    })
}

/// libxdp, loaded once; the error says why it cannot be used.
pub fn api() -> Result<&'static Api, String> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// A UMEM: a memory area registered with the kernel, and its fill and completion
/// rings. Deleted on drop (after the sockets that use it).
#[derive(Debug)]
pub struct Umem {
    ptr: *mut c_void,
    pub fill: XskRing,
    pub comp: XskRing,
}

// SAFETY: the handle and rings are used by one thread at a time (see XskRing).
unsafe impl Send for Umem {}

impl Umem {
    /// Registers `len` bytes at `area` (page aligned).
    ///
    /// # Safety
    /// `area..area+len` must stay mapped, and be memory the kernel may write into, for
    /// as long as the UMEM lives.
    pub unsafe fn create(
        api: &Api,
        area: *mut u8,
        len: u64,
        cfg: &UmemConfig,
    ) -> std::io::Result<Box<Self>> {
        let mut u = Box::new(Self {
            ptr: std::ptr::null_mut(),
            fill: XskRing::default(),
            comp: XskRing::default(),
        });
        let (fill, comp): (*mut XskRing, *mut XskRing) = (&mut u.fill, &mut u.comp);
        // SAFETY: out-pointers to live fields (boxed: their addresses stay put, and
        // libxdp keeps them for the socket's later use); the area's contract is the
        // caller's; the config is a live structure at least as large as libxdp reads.
        let rc =
            unsafe { (api.umem_create)(&mut u.ptr, area as *mut c_void, len, fill, comp, cfg) };
        if rc < 0 {
            return Err(std::io::Error::from_raw_os_error(-rc));
        }
        Ok(u)
    }
}

impl Drop for Umem {
    fn drop(&mut self) {
        if self.ptr.is_null() {
            return;
        }
        if let Ok(api) = api() {
            // SAFETY: a UMEM libxdp created, whose sockets were deleted before (the
            // owner drops sockets first); never used again.
            let rc = unsafe { (api.umem_delete)(self.ptr) };
            if rc < 0 {
                tracing::error!(rc, "xsk_umem__delete failed: the UMEM stays registered");
            }
        }
    }
}

/// An AF_XDP socket bound to one queue of an interface, with its RX and TX rings.
#[derive(Debug)]
pub struct Socket {
    ptr: *mut c_void,
    pub rx: XskRing,
    pub tx: XskRing,
    fd: c_int,
}

// SAFETY: as Umem.
unsafe impl Send for Socket {}

impl Socket {
    /// Creates the socket on `ifname` queue `queue` over `umem` (which must outlive
    /// it), loading and attaching libxdp's program if the interface has none yet.
    pub fn create(
        api: &Api,
        ifname: &str,
        queue: u32,
        umem: &mut Umem,
        cfg: &SocketConfig,
    ) -> std::io::Result<Box<Self>> {
        let name = std::ffi::CString::new(ifname)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut s = Box::new(Self {
            ptr: std::ptr::null_mut(),
            rx: XskRing::default(),
            tx: XskRing::default(),
            fd: -1,
        });
        let rx: *mut XskRing = if cfg.rx_size > 0 {
            &mut s.rx
        } else {
            std::ptr::null_mut()
        };
        let tx: *mut XskRing = if cfg.tx_size > 0 {
            &mut s.tx
        } else {
            std::ptr::null_mut()
        };
        // SAFETY: out-pointers to live boxed fields; the name is NUL-terminated; the
        // UMEM handle is live; the config is as large as libxdp reads.
        let rc =
            unsafe { (api.socket_create)(&mut s.ptr, name.as_ptr(), queue, umem.ptr, rx, tx, cfg) };
        if rc < 0 {
            return Err(std::io::Error::from_raw_os_error(-rc));
        }
        // SAFETY: a socket libxdp just created.
        s.fd = unsafe { (api.socket_fd)(s.ptr) };
        Ok(s)
    }

    pub fn fd(&self) -> c_int {
        self.fd
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if self.ptr.is_null() {
            return;
        }
        if let Ok(api) = api() {
            // SAFETY: a socket libxdp created, never used again. The last socket of an
            // interface detaches libxdp's program too.
            unsafe { (api.socket_delete)(self.ptr) };
        }
    }
}
