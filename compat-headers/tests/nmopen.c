/*
 * nmopen.c -- legacy nm_open() library against a live /dev/netmap.
 *
 * Opens both ends of pipe 1 of port "pp" ("netmap:pp{1" master with its own
 * mapping, "netmap:pp}1" slave sharing it through NM_OPEN_NO_MMAP), injects
 * packets on the master, and receives them on the slave with nm_dispatch()
 * and nm_nextpkt() after poll().  Prints "nmopen: OK ..." on success.
 */
#define NETMAP_WITH_LIBS
#include <net/netmap_user.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPKTS 8

#define FAIL(...) do {							\
	fprintf(stderr, "nmopen: FAIL: " __VA_ARGS__);			\
	fprintf(stderr, "\n");						\
	exit(1);							\
} while (0)

struct rx_state {
	int count;
	int more_flags;
	unsigned seen;		/* bit i = packet i arrived intact */
};

struct rx_big {
	uint32_t len, caplen;
	int ok;
};

static void
fill(unsigned char *p, size_t len, int i)
{
	size_t k;

	for (k = 0; k < len; k++)
		p[k] = (unsigned char)(i * 31 + k);
}

static int
verify(const unsigned char *p, size_t len)
{
	size_t k;
	int i = p[0] / 31;

	for (k = 0; k < len; k++)
		if (p[k] != (unsigned char)(i * 31 + k))
			return -1;
	return i;
}

static size_t
pkt_len(int i)
{
	return 60 + (size_t)i * 100;
}

static void
on_packet(unsigned char *arg, const struct nm_pkthdr *h, const unsigned char *buf)
{
	struct rx_state *st = (struct rx_state *)(void *)arg;
	int i = verify(buf, h->len);

	if (i < 0 || h->len != pkt_len(i) || h->caplen != h->len)
		FAIL("bad packet in nm_dispatch (len %u)", h->len);
	if (h->flags & NM_MORE_PKTS)
		st->more_flags++;
	st->seen |= 1u << i;
	st->count++;
}

static void
on_big(unsigned char *arg, const struct nm_pkthdr *h, const unsigned char *buf)
{
	struct rx_big *rb = (struct rx_big *)(void *)arg;

	rb->len = h->len;
	rb->caplen = h->caplen;
	rb->ok = verify(buf, h->caplen) == 5 && !(h->flags & NM_MORE_PKTS) &&
	    h->slot != NULL && (h->slot->flags & NS_MOREFRAG);
}

static void
wait_in(struct nm_desc *d)
{
	struct pollfd pfd = { .fd = NETMAP_FD(d), .events = POLLIN };
	int n = poll(&pfd, 1, 5000);

	if (n != 1 || !(pfd.revents & POLLIN))
		FAIL("poll(POLLIN) returned %d revents 0x%x", n, pfd.revents);
}

int
main(void)
{
	struct nm_desc *tx, *rx, *bad;
	unsigned char pkt[2048];
	struct rx_state st = { 0, 0, 0 };
	struct nm_pkthdr h;
	unsigned char *buf;
	int i, got;

	/* names nm_open does not handle: NULL with errno 0 */
	errno = 123;
	bad = nm_open("eth0", NULL, 0, NULL);
	if (bad != NULL || errno != 0)
		FAIL("non-netmap name: %p errno %d", (void *)bad, errno);
	/* malformed suffix: EINVAL */
	bad = nm_open("netmap:pp{1/q", NULL, 0, NULL);
	if (bad != NULL || errno != EINVAL)
		FAIL("bad flag accepted (errno %d)", errno);

	tx = nm_open("netmap:pp{1", NULL, 0, NULL);
	if (tx == NULL)
		FAIL("nm_open(netmap:pp{1): %s", strerror(errno));
	if (!IS_NETMAP_DESC(tx) || !tx->done_mmap || tx->mem == NULL || tx->nifp == NULL)
		FAIL("master descriptor not mapped");
	if ((tx->req.nr_flags & NR_REG_MASK) != NR_REG_PIPE_MASTER ||
	    (tx->req.nr_ringid & NETMAP_RING_MASK) != 1)
		FAIL("master request: flags 0x%x ringid %u", tx->req.nr_flags,
		    tx->req.nr_ringid);
	if (tx->memsize != tx->req.nr_memsize || tx->req.nr_arg2 == 0)
		FAIL("memsize %zu/%u memid %u", tx->memsize, tx->req.nr_memsize,
		    tx->req.nr_arg2);
	if (tx->first_tx_ring != 0 || tx->last_tx_ring != 0 ||
	    tx->first_rx_ring != 0 || tx->last_rx_ring != 0)
		FAIL("pipe ring range");
	if (NETMAP_TXRING(tx->nifp, 0)->num_slots != tx->req.nr_tx_slots)
		FAIL("TX ring 0 slots %u vs %u", NETMAP_TXRING(tx->nifp, 0)->num_slots,
		    tx->req.nr_tx_slots);

	rx = nm_open("netmap:pp}1", NULL, NM_OPEN_NO_MMAP, tx);
	if (rx == NULL)
		FAIL("nm_open(netmap:pp}1): %s", strerror(errno));
	if (rx->done_mmap || rx->mem != tx->mem || rx->nifp == NULL)
		FAIL("slave does not share the master's mapping");
	if ((rx->req.nr_flags & NR_REG_MASK) != NR_REG_PIPE_SLAVE)
		FAIL("slave mode 0x%x", rx->req.nr_flags);
	printf("nmopen: opened %s/%s memsize %zu mem_id %u slots %u\n",
	    tx->req.nr_name, rx->req.nr_name, tx->memsize, tx->req.nr_arg2,
	    tx->req.nr_tx_slots);

	/* round 1: NPKTS packets through nm_dispatch */
	for (i = 0; i < NPKTS; i++) {
		fill(pkt, pkt_len(i), i);
		if (nm_inject(tx, pkt, pkt_len(i)) != (int)pkt_len(i))
			FAIL("nm_inject %d", i);
	}
	if (ioctl(NETMAP_FD(tx), NIOCTXSYNC, NULL) != 0)
		FAIL("NIOCTXSYNC: %s", strerror(errno));
	while (st.count < NPKTS) {
		wait_in(rx);
		got = nm_dispatch(rx, 0, on_packet, (unsigned char *)&st);
		if (got <= 0)
			FAIL("nm_dispatch returned %d", got);
	}
	if (st.count != NPKTS || st.seen != (1u << NPKTS) - 1)
		FAIL("dispatch saw %d packets, mask 0x%x", st.count, st.seen);
	printf("nmopen: nm_dispatch received %d packets\n", st.count);

	/* round 2: one packet through nm_nextpkt */
	fill(pkt, 1000, 3);
	if (nm_inject(tx, pkt, 1000) != 1000)
		FAIL("nm_inject (round 2)");
	if (ioctl(NETMAP_FD(tx), NIOCTXSYNC, NULL) != 0)
		FAIL("NIOCTXSYNC: %s", strerror(errno));
	wait_in(rx);
	buf = nm_nextpkt(rx, &h);
	if (buf == NULL || h.len != 1000 || verify(buf, h.len) != 3)
		FAIL("nm_nextpkt");
	if (nm_nextpkt(rx, &h) != NULL)
		FAIL("nm_nextpkt returned an extra packet");
	printf("nmopen: nm_nextpkt received %u bytes\n", h.len);

	/* round 3: a packet larger than one buffer travels as an NS_MOREFRAG chain */
	{
		static unsigned char big[3000];
		struct netmap_ring *r = NETMAP_TXRING(tx->nifp, 0);
		uint32_t first = r->cur;
		struct rx_big rb = { 0, 0, 0 };

		fill(big, sizeof(big), 5);
		if (nm_inject(tx, big, sizeof(big)) != (int)sizeof(big))
			FAIL("nm_inject (3000 bytes)");
		if (r->slot[first].len != r->nr_buf_size ||
		    !(r->slot[first].flags & NS_MOREFRAG) ||
		    r->slot[nm_ring_next(r, first)].len != sizeof(big) - r->nr_buf_size ||
		    (r->slot[nm_ring_next(r, first)].flags & NS_MOREFRAG))
			FAIL("fragment chain on the TX ring");
		if (ioctl(NETMAP_FD(tx), NIOCTXSYNC, NULL) != 0)
			FAIL("NIOCTXSYNC: %s", strerror(errno));
		wait_in(rx);
		{
			struct netmap_ring *rr = NETMAP_RXRING(rx->nifp, 0);
			struct netmap_slot *s0 = &rr->slot[rr->cur];
			struct netmap_slot *s1 = &rr->slot[nm_ring_next(rr, rr->cur)];

			if (nm_ring_space(rr) < 2 || !(s0->flags & NS_MOREFRAG))
				FAIL("RX chain: space %u flags 0x%x", nm_ring_space(rr),
				    s0->flags);
			if (verify((unsigned char *)NETMAP_BUF(rr, s0->buf_idx), s0->len) != 5 ||
			    memcmp(NETMAP_BUF(rr, s1->buf_idx), big + s0->len, s1->len) != 0)
				FAIL("RX chain payload");
		}
		got = nm_dispatch(rx, 1, on_big, (unsigned char *)&rb);
		if (got != 1 || rb.len != sizeof(big) || !rb.ok ||
		    rb.caplen < r->nr_buf_size || rb.caplen > rb.len)
			FAIL("nm_dispatch of a chain: got %d len %u caplen %u", got,
			    rb.len, rb.caplen);
		printf("nmopen: fragmented packet of %u bytes (caplen %u)\n",
		    rb.len, rb.caplen);
	}

	/* release the RX slots and check the TX side drained */
	if (ioctl(NETMAP_FD(rx), NIOCRXSYNC, NULL) != 0)
		FAIL("NIOCRXSYNC: %s", strerror(errno));
	if (ioctl(NETMAP_FD(tx), NIOCTXSYNC, NULL) != 0)
		FAIL("NIOCTXSYNC: %s", strerror(errno));

	if (nm_close(rx) != 0 || nm_close(tx) != 0)
		FAIL("nm_close");
	printf("nmopen: OK\n");
	return 0;
}
