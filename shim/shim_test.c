/* Tests of libnetmap-shim.so: device detection with fake devices, and mmap redirection
 * through LD_PRELOAD (run by `make test`). */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "netmap_shim.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); exit(1); } } while (0)

int main(int argc, char **argv)
{
	char dir[] = "/tmp/netmap-shim-test-XXXXXX";
	char dev[256], region[256], other[256];
	long pg = sysconf(_SC_PAGESIZE);
	int fd, ofd, nfd, zfd;
	char *p;

	(void)argc; (void)argv;
	CHECK(mkdtemp(dir));
	snprintf(dev, sizeof dev, "%s/netmap", dir);
	snprintf(region, sizeof region, "%s/region", dir);
	snprintf(other, sizeof other, "%s/other", dir);

	/* A fake FUSE-style device (regular file) and an unrelated file. */
	fd = open(dev, O_RDWR | O_CREAT, 0600);
	ofd = open(other, O_RDWR | O_CREAT, 0600);
	CHECK(fd >= 0 && ofd >= 0);
	CHECK(ftruncate(ofd, 4 * pg) == 0);
	CHECK(netmap_shim_is_device(fd, dev) == 1);
	CHECK(netmap_shim_is_device(ofd, dev) == 0);
	CHECK(netmap_shim_is_device(-1, dev) == 0);
	CHECK(netmap_shim_is_device(fd, "/nonexistent/netmap") == 0);

	/* Character devices: /dev/null stands in for the CUSE device. */
	nfd = open("/dev/null", O_RDWR);
	zfd = open("/dev/zero", O_RDWR);
	CHECK(nfd >= 0 && zfd >= 0);
	CHECK(netmap_shim_is_device(nfd, "/dev/null") == 1);
	CHECK(netmap_shim_is_device(zfd, "/dev/null") == 0);
	CHECK(netmap_shim_is_device(nfd, dev) == 0);
	CHECK(netmap_shim_is_device(fd, "/dev/null") == 0);

	/* The region: page i starts with the byte 'A' + i. */
	{
		int rfd = open(region, O_RDWR | O_CREAT, 0600);
		CHECK(rfd >= 0);
		CHECK(ftruncate(rfd, 4 * pg) == 0);
		for (int i = 0; i < 4; i++)
			CHECK(pwrite(rfd, &(char){'A' + i}, 1, i * pg) == 1);
		close(rfd);
	}
	setenv("NETMAPD_DEVICE", dev, 1);
	setenv("NETMAPD_REGION", region, 1);

	/* Through the exported mmap (the preloaded one when run with LD_PRELOAD). */
	p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, pg);
	CHECK(p != MAP_FAILED);
	CHECK(p[0] == 'B' && p[pg] == 'C');
	p[1] = 'x';
	CHECK(munmap(p, 2 * pg) == 0);
	p = mmap64(NULL, pg, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED && p[0] == 'A');
	munmap(p, pg);
	/* Shared with the region file. */
	{
		int rfd = open(region, O_RDONLY);
		char c = 0;
		CHECK(pread(rfd, &c, 1, pg + 1) == 1 && c == 'x');
		close(rfd);
	}
	/* Other files and anonymous memory are untouched. */
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, ofd, 0);
	CHECK(p != MAP_FAILED && p[0] == 0);
	munmap(p, pg);
	p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED && p[0] == 0);
	munmap(p, pg);
	/* Errors pass through: bad fd. */
	errno = 0;
	CHECK(mmap(NULL, pg, PROT_READ, MAP_SHARED, 12345, 0) == MAP_FAILED && errno == EBADF);
	/* A missing region falls back to the real mmap of the device. */
	setenv("NETMAPD_REGION", "/nonexistent/region", 1);
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, nfd, 0);
	(void)p; /* /dev/null: ENODEV from the kernel, as without the shim */

	unlink(dev); unlink(region); unlink(other); rmdir(dir);
	printf("shim tests passed\n");
	return 0;
}
