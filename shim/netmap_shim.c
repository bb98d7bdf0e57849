/*
 * libnetmap-shim.so — LD_PRELOAD library that lets netmap programs mmap() a
 * /dev/netmap served by netmapd's CUSE front end.
 *
 * CUSE character devices have no mmap (the kernel answers ENODEV). netmapd, in CUSE
 * mode, publishes the shared region as a file (default /dev/shm/netmapd-region). This
 * library replaces mmap() and mmap64(): when the descriptor is the netmap device, the
 * same mapping (address hint, length, protection, flags, offset) is made of the region
 * file instead; every other call goes to the kernel unchanged. Nothing else a program
 * does is touched.
 *
 * "The netmap device" means: fstat(fd) matches stat(device path) — same character
 * device number (CUSE, or the kernel module), or the same file (a FUSE-served
 * /dev/netmap regular file, with or without passthrough: without passthrough a
 * MAP_SHARED mapping of the FUSE file would not be shared with the daemon).
 *
 * Environment:
 *   NETMAPD_DEVICE  device path            (default /dev/netmap)
 *   NETMAPD_REGION  published region file  (default /dev/shm/netmapd-region)
 *   NETMAPD_SHIM_DEBUG=1  log each redirected mapping to stderr
 * If the region file cannot be opened, the real mmap() runs (and fails with ENODEV
 * on a CUSE device, as without the shim).
 *
 * Limits: dynamically linked programs only (LD_PRELOAD); mmap through raw
 * syscall(SYS_mmap) or io_uring is not seen; the real mapping is made with the mmap
 * system call directly (other interposers of mmap below us are bypassed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "netmap_shim.h"

#define DEFAULT_DEVICE "/dev/netmap"
#define DEFAULT_REGION "/dev/shm/netmapd-region"

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return (v && *v) ? v : dflt;
}

static void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
#if defined(SYS_mmap2) && !defined(__x86_64__) && !defined(__aarch64__)
	/* 32-bit ABIs: offset in 4096-byte units. */
	if (off & 4095) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	return (void *)syscall(SYS_mmap2, addr, len, prot, flags, fd, (long)(off >> 12));
#else
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
#endif
}

int netmap_shim_is_device(int fd, const char *device)
{
	struct stat f, d;

	if (fd < 0 || fstat(fd, &f) != 0)
		return 0;
	if (!S_ISCHR(f.st_mode) && !S_ISREG(f.st_mode))
		return 0;
	if (stat(device, &d) != 0)
		return 0;
	if (S_ISCHR(f.st_mode))
		return S_ISCHR(d.st_mode) && f.st_rdev == d.st_rdev;
	return S_ISREG(d.st_mode) && f.st_dev == d.st_dev && f.st_ino == d.st_ino;
}

void *netmap_shim_map(void *addr, size_t len, int prot, int flags, int fd, off_t off,
		      const char *device, const char *region)
{
	int rfd, saved;
	void *p;

	if ((flags & MAP_ANONYMOUS) || !netmap_shim_is_device(fd, device))
		return sys_mmap(addr, len, prot, flags, fd, off);
	rfd = open(region, ((prot & PROT_WRITE) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (rfd < 0) {
		if (getenv("NETMAPD_SHIM_DEBUG"))
			fprintf(stderr, "netmap-shim: cannot open %s (%s); plain mmap\n",
				region, strerror(errno));
		return sys_mmap(addr, len, prot, flags, fd, off);
	}
	p = sys_mmap(addr, len, prot, flags, rfd, off);
	saved = errno;
	close(rfd);
	if (getenv("NETMAPD_SHIM_DEBUG"))
		fprintf(stderr, "netmap-shim: mmap(fd %d, len %zu, off %lld) -> %s: %p\n",
			fd, len, (long long)off, region, p);
	errno = saved;
	return p;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return netmap_shim_map(addr, len, prot, flags, fd, off,
			       env_or("NETMAPD_DEVICE", DEFAULT_DEVICE),
			       env_or("NETMAPD_REGION", DEFAULT_REGION));
}

#if !defined(__USE_FILE_OFFSET64) || defined(__LP64__)
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	return netmap_shim_map(addr, len, prot, flags, fd, (off_t)off,
			       env_or("NETMAPD_DEVICE", DEFAULT_DEVICE),
			       env_or("NETMAPD_REGION", DEFAULT_REGION));
}
#endif
