/*
 * nm_tx.c -- a C netmap sender for bench/nic.sh, written against this project's
 * compat headers and their legacy nm_open() library: it drives a port the way
 * pkt-gen's transmit loop does (poll for POLLOUT, fill up to a burst of slots
 * per TX ring with a prebuilt frame, move head and cur, let the next poll sync;
 * at the end a NIOCTXSYNC and a wait until the kernel has sent everything).
 *
 * Why: the NIC TX target compares a stock C netmap program to trafgen, and
 * stock pkt-gen cannot be built where its sources are out of reach.  This is
 * not pkt-gen, but it goes through the same C API, the same libc calls (poll,
 * ioctl, mmap) that the preload library intercepts, and the same ring
 * discipline, so what it measures is what an unmodified C program gets.
 *
 * usage: nm_tx IFNAME COUNT [BURST]   (60-byte frames, EtherType 0x88b5)
 * prints: "nm_tx: N packets in S s (M Mpps)", S from the first frame queued to
 * the last one completed.
 */
#define NETMAP_WITH_LIBS
#include <net/netmap_user.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Frames still queued on the port's TX rings (tail not yet past them). */
static unsigned
pending(struct nm_desc *d)
{
	unsigned i, n = 0;

	for (i = d->first_tx_ring; i <= d->last_tx_ring; i++) {
		struct netmap_ring *r = NETMAP_TXRING(d->nifp, i);

		n += r->num_slots - 1 - nm_ring_space(r);
	}
	return n;
}

int
main(int argc, char **argv)
{
	static const unsigned char hdr[14] = {
		0x02, 0x6e, 0x6d, 0x64, 0x00, 0x02,	/* destination */
		0x02, 0x6e, 0x6d, 0x64, 0x00, 0x01,	/* source */
		0x88, 0xb5,				/* local experimental */
	};
	unsigned char frame[60];
	char name[128];
	struct nm_desc *d;
	struct pollfd pfd;
	unsigned long long count, sent = 0;
	unsigned burst = 512, i, idle = 0;
	double t0 = 0, t1;

	if (argc < 3) {
		fprintf(stderr, "usage: nm_tx IFNAME COUNT [BURST]\n");
		return 2;
	}
	count = strtoull(argv[2], NULL, 10);
	if (argc > 3)
		burst = (unsigned)strtoul(argv[3], NULL, 10);
	memcpy(frame, hdr, sizeof(hdr));
	memset(frame + sizeof(hdr), 0x5a, sizeof(frame) - sizeof(hdr));
	snprintf(name, sizeof(name), "netmap:%s", argv[1]);
	d = nm_open(name, NULL, 0, NULL);
	if (d == NULL) {
		fprintf(stderr, "nm_tx: nm_open(%s): %s\n", name, strerror(errno));
		return 1;
	}
	pfd.fd = d->fd;
	while (sent < count) {
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, 2000) < 0) {
			fprintf(stderr, "nm_tx: poll: %s\n", strerror(errno));
			return 1;
		}
		if (pfd.revents & POLLERR) {
			fprintf(stderr, "nm_tx: poll gave POLLERR after %llu\n", sent);
			return 1;
		}
		if (!(pfd.revents & POLLOUT)) {
			if (++idle > 5) {
				fprintf(stderr, "nm_tx: no TX room for 10 s after %llu\n", sent);
				return 1;
			}
			continue;
		}
		idle = 0;
		for (i = d->first_tx_ring; i <= d->last_tx_ring && sent < count; i++) {
			struct netmap_ring *r = NETMAP_TXRING(d->nifp, i);
			unsigned n = nm_ring_space(r), cur = r->cur, k;

			if (n > burst)
				n = burst;
			if (n > count - sent)
				n = (unsigned)(count - sent);
			for (k = 0; k < n; k++) {
				struct netmap_slot *s = &r->slot[cur];

				memcpy(NETMAP_BUF(r, s->buf_idx), frame, sizeof(frame));
				s->len = sizeof(frame);
				s->flags = 0;
				cur = nm_ring_next(r, cur);
			}
			if (n > 0 && t0 == 0)
				t0 = now();
			r->head = r->cur = cur;
			sent += n;
		}
	}
	/* Flush, then wait until every frame has been completed. */
	for (i = 0; pending(d) > 0 && i < 20000; i++) {
		if (ioctl(d->fd, NIOCTXSYNC, NULL) < 0) {
			fprintf(stderr, "nm_tx: NIOCTXSYNC: %s\n", strerror(errno));
			return 1;
		}
		if (pending(d) > 0) {
			struct timespec ts = { 0, 100000 };

			nanosleep(&ts, NULL);
		}
	}
	if (pending(d) > 0) {
		fprintf(stderr, "nm_tx: %u frames never completed\n", pending(d));
		return 1;
	}
	t1 = now();
	printf("nm_tx: %llu packets in %.6f s (%.4f Mpps)\n", sent, t1 - t0,
	    sent / (t1 - t0) / 1e6);
	nm_close(d);
	return 0;
}
