//! Mounting the device file, and cleaning up after a daemon that died.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// FUSE mounts currently at `path` according to /proc/self/mountinfo.
pub fn fuse_mounts_at(path: &Path) -> io::Result<usize> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let want = path.as_os_str().as_bytes();
    Ok(info
        .lines()
        .filter(|l| {
            let mut f = l.split(' ');
            let mnt = f.nth(4).map(unescape);
            let fstype = l.split(" - ").nth(1).and_then(|r| r.split(' ').next());
            mnt.as_deref() == Some(want) && fstype.is_some_and(|t| t.starts_with("fuse"))
        })
        .count())
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Detaches a mount point (`umount2(MNT_DETACH)`).
pub fn detach(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let r = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes FUSE mounts left at `path` by a daemon that was killed (its mount answers
/// ENOTCONN to everyone until it is unmounted). Returns how many were removed.
pub fn clean_stale(path: &Path) -> io::Result<usize> {
    let mut n = 0;
    while fuse_mounts_at(path)? > 0 {
        detach(path)?;
        n += 1;
        if n > 64 {
            return Err(io::Error::other(
                "mounts at the device path keep reappearing",
            ));
        }
    }
    if n > 0 {
        tracing::warn!(path = %path.display(), count = n, "removed stale netmapd mounts");
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape("/a\\040b"), b"/a b");
        assert_eq!(unescape("/dev/netmap"), b"/dev/netmap");
    }
}
