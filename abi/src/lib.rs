//! The netmap userspace ABI (API 14) as Rust types.
//!
//! Everything here is a fact measured against netmap's own headers on x86_64 Linux
//! (see `shared/NETMAP-ABI.md`): ioctl numbers, constants and `#[repr(C)]` layouts.
//! Every struct carries compile-time assertions on its size and on each field offset,
//! so a typo here fails the build instead of silently corrupting a client's memory.
//!
//! Holes the C compiler leaves as padding are spelled out as explicit `_pad` fields so
//! that the structs can be converted to and from bytes with `zerocopy`.
#![deny(unsafe_code)]

pub mod consts;
pub mod ioctl;
pub mod nmreq;
pub mod options;
pub mod ring;
pub mod sock;

pub use consts::*;
pub use ioctl::*;
pub use nmreq::*;
pub use options::*;
pub use ring::*;

/// Asserts `size_of` and the offset of every listed field at compile time.
#[macro_export]
macro_rules! assert_layout {
    ($ty:ty, size = $size:expr, $($field:ident @ $off:expr),* $(,)?) => {
        const _: () = {
            assert!(::core::mem::size_of::<$ty>() == $size);
            $(assert!(::core::mem::offset_of!($ty, $field) == $off);)*
        };
    };
}

/// Copies a Rust string into a fixed C name field, NUL padded and always terminated.
pub fn set_cname(dst: &mut [u8], name: &str) {
    dst.fill(0);
    let n = name.len().min(dst.len().saturating_sub(1));
    dst[..n].copy_from_slice(&name.as_bytes()[..n]);
}

/// Reads a fixed C name field up to its first NUL (lossy for non-UTF-8 bytes).
pub fn cname(src: &[u8]) -> String {
    let end = src.iter().position(|&b| b == 0).unwrap_or(src.len());
    String::from_utf8_lossy(&src[..end]).into_owned()
}
