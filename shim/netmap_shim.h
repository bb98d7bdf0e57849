/* Internals of libnetmap-shim.so, exported for its tests. */
#ifndef NETMAP_SHIM_H
#define NETMAP_SHIM_H
#include <stddef.h>
#include <sys/types.h>

/* 1 if fd is the netmap device at `device` (same char device, or same file). */
int netmap_shim_is_device(int fd, const char *device);
/* mmap(), redirected to `region` when fd is the device at `device`. */
void *netmap_shim_map(void *addr, size_t len, int prot, int flags, int fd, off_t off,
		      const char *device, const char *region);
#endif
