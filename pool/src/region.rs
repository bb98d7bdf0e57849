//! The shared-memory backing of one allocator.
//!
//! The daemon and every client map the same file: the daemon through its own `mmap`, the
//! clients through FUSE passthrough of [`Region::file`]. Huge pages are preferred because
//! the default region is 327 MiB and clients touch it at packet rate (TLB pressure), but
//! they need a private tmpfs mount (root), so plain `memfd` is the fallback.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::shmem::SharedMem;

/// Huge tmpfs mounts are sized in 2 MiB units (the huge page size on x86_64/aarch64).
const HUGE_PAGE: usize = 2 << 20;

/// Distinguishes temp dirs of regions created concurrently by the same process.
static REGION_SEQ: AtomicU32 = AtomicU32::new(0);

/// What kind of memory backs a [`Region`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// A file on a private `huge=always` tmpfs mount (transparent huge pages).
    HugeTmpfs,
    /// An anonymous `memfd_create` file (regular pages).
    Memfd,
    /// A file at a path other processes open (under the CUSE front end the preload library maps it).
    Published,
}

/// Errors creating a [`Region`].
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    /// A system call failed.
    #[error("region I/O error: {0}")]
    Io(#[from] io::Error),
    /// A zero-length region cannot be mapped.
    #[error("region length must be non-zero")]
    ZeroLength,
    /// `mmap` of the backing file failed.
    #[error("mmap of {len} bytes failed: {source}")]
    Mmap { len: usize, source: io::Error },
}

/// Owns the backing file and a `MAP_SHARED` read/write mapping of it (memmap2's
/// `MmapRaw`: a raw pointer mapping, since other processes write it concurrently and
/// no Rust reference to its bytes may exist; only [`SharedMem`] touches them).
#[derive(Debug)]
pub struct Region {
    file: File,
    map: memmap2::MmapRaw,
    backing: Backing,
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// Undoes the steps of a huge tmpfs setup in reverse order; which steps ran is tracked so
/// a failure midway leaves nothing behind on the host.
struct HugeSetup {
    dir: PathBuf,
    dir_created: bool,
    mounted: bool,
    file_path: Option<PathBuf>,
}

impl HugeSetup {
    fn cleanup(&mut self) -> io::Result<()> {
        let mut first_err = None;
        if let Some(path) = self.file_path.take() {
            if let Err(e) = fs::remove_file(&path) {
                first_err.get_or_insert(e);
            }
        }
        if self.mounted {
            self.mounted = false;
            match cstring(&self.dir) {
                Ok(c) => {
                    // SAFETY: c is a valid NUL-terminated path; umount2 has no memory effects.
                    let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                    if rc != 0 {
                        first_err.get_or_insert(io::Error::last_os_error());
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if self.dir_created {
            self.dir_created = false;
            if let Err(e) = fs::remove_dir(&self.dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for HugeSetup {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "huge tmpfs cleanup failed");
        }
    }
}

/// Creates a `len`-byte file on a private huge-page tmpfs and detaches the mount, leaving
/// only the open file.
fn create_huge_file(len: usize) -> io::Result<File> {
    let seq = REGION_SEQ.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("netmapd-region-{}-{}", std::process::id(), seq));
    let mut setup = HugeSetup {
        dir,
        dir_created: false,
        mounted: false,
        file_path: None,
    };
    fs::DirBuilder::new().mode(0o700).create(&setup.dir)?;
    setup.dir_created = true;

    let size = len
        .checked_next_multiple_of(HUGE_PAGE)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "region too large"))?;
    let opts = CString::new(format!("huge=always,mode=0600,size={size}"))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad mount options"))?;
    let dir_c = cstring(&setup.dir)?;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            dir_c.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            opts.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    setup.mounted = true;

    let path = setup.dir.join("region");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    setup.file_path = Some(path);
    file.set_len(len as u64)?;
    // Unlink, detach and remove the dir now: the open File keeps the tmpfs alive.
    setup.cleanup()?;
    Ok(file)
}

/// Creates an anonymous memfd of `len` bytes, sealed against changes of size: the
/// rootless front end hands this very file to clients, and one that shrank it would
/// make every later access of the daemon's mapping past the new end a SIGBUS.
fn create_memfd(len: usize) -> io::Result<File> {
    // SAFETY: the name is a valid NUL-terminated string; flags are valid.
    let fd = unsafe {
        libc::memfd_create(
            c"netmapd-region".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by memfd_create and is owned by nobody else.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(len as u64)?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: F_ADD_SEALS on our own memfd with a plain integer argument.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

impl Region {
    /// Creates and maps a region of `len` bytes, on huge pages if `prefer_huge` and the
    /// host allows it, otherwise on a memfd (the reason is logged at warn level).
    pub fn create(len: usize, prefer_huge: bool) -> Result<Region, RegionError> {
        if len == 0 {
            return Err(RegionError::ZeroLength);
        }
        let huge = if prefer_huge {
            match create_huge_file(len) {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::warn!(error = %e, "huge pages unavailable, falling back to memfd");
                    None
                }
            }
        } else {
            None
        };
        let (file, backing) = match huge {
            Some(f) => (f, Backing::HugeTmpfs),
            None => (create_memfd(len)?, Backing::Memfd),
        };
        Self::map(file, len, backing)
    }

    /// Maps `len` bytes of `file` shared and read/write.
    fn map(file: File, len: usize, backing: Backing) -> Result<Region, RegionError> {
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_raw(&file)
            .map_err(|source| RegionError::Mmap { len, source })?;
        tracing::info!(len, ?backing, "shared region created");
        Ok(Region { file, map, backing })
    }

    /// Creates and maps a region of `len` bytes backed by a new file at `path` (which
    /// must not exist), with permission bits `mode`. Unlike [`Region::create`] the file
    /// stays reachable by name, so processes that cannot get the region through the
    /// device (CUSE has no mmap) can open and map it; the caller removes it when done.
    /// On a tmpfs whose `shmem_enabled` is `advise`, `prefer_huge` asks for huge pages
    /// with `MADV_HUGEPAGE` on the daemon's mapping.
    pub fn create_at(
        len: usize,
        path: &Path,
        mode: u32,
        prefer_huge: bool,
    ) -> Result<Region, RegionError> {
        use std::os::unix::fs::PermissionsExt;
        if len == 0 {
            return Err(RegionError::ZeroLength);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)?;
        let setup = (|| {
            // The umask may have cleared bits of `mode`.
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            file.set_len(len as u64)
        })();
        if let Err(e) = setup {
            let _ = fs::remove_file(path);
            return Err(e.into());
        }
        let region = match Self::map(file, len, Backing::Published) {
            Ok(r) => r,
            Err(e) => {
                let _ = fs::remove_file(path);
                return Err(e);
            }
        };
        if prefer_huge {
            if let Err(e) = region.map.advise(memmap2::Advice::HugePage) {
                tracing::debug!(error = %e, "MADV_HUGEPAGE refused");
            }
        }
        Ok(region)
    }

    /// The backing file, handed to FUSE as the passthrough file so clients map the same
    /// pages.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Length of the region in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Always false (zero-length regions are rejected); provided for API completeness.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Which kind of memory backs the region.
    pub fn backing(&self) -> Backing {
        self.backing
    }

    /// Bounds-checked volatile accessor for the whole region.
    pub fn shmem(&self) -> SharedMem<'_> {
        // SAFETY: the mapping is valid for len bytes, readable and writable, until the
        // MmapRaw is dropped with self, which cannot happen while the returned value
        // borrows self.
        unsafe { SharedMem::from_raw(self.map.as_mut_ptr(), self.map.len()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Maps `file` a second time, independently of the Region, to prove MAP_SHARED.
    fn second_map(file: &File, len: usize) -> memmap2::MmapRaw {
        memmap2::MmapOptions::new()
            .len(len)
            .map_raw(file)
            .expect("second mapping")
    }

    fn check_shared(r: &Region) {
        let m = r.shmem();
        assert_eq!(m.len(), r.len());
        let last = r.len() - 8;
        m.write_u64(0, 0x1122_3344_5566_7788).expect("write");
        m.write_u64(last, 0xfeed).expect("write");
        m.store_u32_release(4096, 99).expect("store");
        let second = second_map(r.file(), r.len());
        {
            // SAFETY: `second` maps r.len() bytes and is dropped only after this block.
            let other = unsafe { SharedMem::from_raw(second.as_mut_ptr(), r.len()) };
            assert_eq!(other.read_u64(0), Ok(0x1122_3344_5566_7788));
            assert_eq!(other.read_u64(last), Ok(0xfeed));
            assert_eq!(other.load_u32_acquire(4096), Ok(99));
            other.write_bytes(100, b"hello").expect("write");
        }
        let mut b = [0u8; 5];
        m.read_bytes(100, &mut b).expect("read");
        assert_eq!(&b, b"hello");
        drop(second);
        assert!(m.read_u8(r.len()).is_err());
        assert!(m.read_u64(usize::MAX - 3).is_err());
        assert!(m.write_bytes(usize::MAX, &[0]).is_err());
    }

    #[test]
    fn memfd_region() {
        let r = Region::create(3 * 4096 + 100, false).expect("region");
        assert_eq!(r.backing(), Backing::Memfd);
        assert_eq!(r.file().metadata().expect("meta").len(), 3 * 4096 + 100);
        check_shared(&r);
        // Clients get this file (rootless front end): its size cannot change.
        for len in [4096, 1 << 30] {
            let e = r
                .file()
                .set_len(len)
                .expect_err("a sealed memfd changed size");
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "set_len({len})");
        }
    }

    #[test]
    fn huge_region_or_fallback() {
        let len = 4 << 20;
        let r = Region::create(len, true).expect("region");
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        println!(
            "prefer_huge region backing: {:?} (euid root: {root})",
            r.backing()
        );
        check_shared(&r);
        // Nothing may be left behind in the temp dir either way.
        let leftovers: Vec<_> = fs::read_dir(std::env::temp_dir())
            .expect("tmp")
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("netmapd-region-{}-", std::process::id()))
            })
            .collect();
        assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    }

    #[test]
    fn published_region_is_shared_through_its_path() {
        let path = std::env::temp_dir().join(format!("netmapd-pub-test-{}", std::process::id()));
        let _ = fs::remove_file(&path);
        let r = Region::create_at(2 * 4096, &path, 0o640, true).expect("region");
        assert_eq!(r.backing(), Backing::Published);
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(&path).expect("published file");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        assert_eq!(meta.len(), 2 * 4096);
        check_shared(&r);
        assert!(
            Region::create_at(4096, &path, 0o600, false).is_err(),
            "must not reuse a file"
        );
        fs::remove_file(&path).expect("remove");
    }

    #[test]
    fn zero_length_rejected() {
        assert!(matches!(
            Region::create(0, false),
            Err(RegionError::ZeroLength)
        ));
    }

    #[test]
    fn region_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Region>();
        assert_send_sync::<SharedMem<'static>>();
    }

    /// `populate` makes exactly the pages under the range present (rounded out to
    /// whole pages, clipped to the window) and changes no byte; a second mapping of
    /// the file sees them resident too (they are the file's pages, which clients map).
    #[test]
    fn populate_makes_pages_present() {
        let len = 64 * 4096;
        let r = Region::create(len, false).unwrap();
        let m = r.shmem();
        m.write_u32(10 * 4096, 0xfeed).unwrap();
        let resident = |map: *mut u8| {
            let mut v = vec![0u8; len / 4096];
            // SAFETY: map is a page-aligned mapping of len bytes; v has a byte per page.
            let rc = unsafe { libc::mincore(map.cast(), len, v.as_mut_ptr()) };
            assert_eq!(rc, 0);
            v.iter().map(|b| b & 1 == 1).collect::<Vec<bool>>()
        };
        let before = resident(r.map.as_mut_ptr());
        assert!(before[10] && !before[3] && !before[4] && !before[5]);
        m.populate(3 * 4096 + 100, 4096).unwrap();
        m.populate(63 * 4096 + 5, 1 << 20).unwrap();
        m.populate(len + 4096, 10).unwrap();
        let other = second_map(r.file(), len);
        let after = resident(other.as_mut_ptr());
        for p in [3, 4, 10, 63] {
            assert!(after[p], "page {p} present");
        }
        // A tmpfs that puts files on huge pages brings in the whole huge page.
        let huge = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
            .is_ok_and(|s| {
                ["[always]", "[force]", "[within_size]"]
                    .iter()
                    .any(|m| s.contains(m))
            });
        if !huge {
            let want: Vec<usize> = (0..64).filter(|&p| after[p]).collect();
            assert_eq!(want, vec![3, 4, 10, 63], "nothing else");
        }
        assert_eq!(m.read_u32(10 * 4096).unwrap(), 0xfeed);
        assert_eq!(m.read_u32(3 * 4096 + 100).unwrap(), 0);
    }
}
