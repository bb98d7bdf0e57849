/*
 * poll -- poll()/select() semantics (NETMAP-ABI.md §9, §10.6).
 */
#include "common.h"
#include <pthread.h>
#include <time.h>

static char nb[64];
#define P(br, id) pname(nb, sizeof(nb), "ncpol", (br), (id))

struct pair { struct port m, s; };

static int pair_open_flags(struct pair *pp, unsigned id, uint64_t mflags)
{
	struct nmreq_register r;

	reg_init(&r, NR_REG_ALL_NIC);
	r.nr_flags = mflags;
	if (!port_open_ok(&pp->m, P('{', id), &r))
		return 0;
	if (!port_open_ok(&pp->s, P('}', id), NULL)) {
		port_close(&pp->m);
		return 0;
	}
	return 1;
}
#define pair_open(pp, id) pair_open_flags((pp), (id), 0)

static void pair_close(struct pair *pp)
{
	port_close(&pp->s);
	port_close(&pp->m);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void unregistered_pollerr(void)
{
	int fd = nm_dev_open();

	if (fd < 0)
		return;
	int rv = poll1(fd, POLLIN | POLLOUT, 0);
	EXPECT(rv > 0 && (rv & POLLERR), "poll on an unregistered fd: revents %#x, expected POLLERR", rv);
	close(fd);
}

static void tx_ready_rx_not(void)
{
	struct pair pp;

	if (!pair_open(&pp, 1))
		return;
	int rv = poll1(pp.m.fd, POLLOUT, 0);
	EXPECT(rv > 0 && (rv & POLLOUT), "poll(POLLOUT) on a fresh TX ring: revents %#x", rv);
	rv = poll1(pp.s.fd, POLLIN, 0);
	EXPECT_EQ(rv, 0, "poll(POLLIN, 0) on an empty RX ring (revents)");
	double t0 = now_ms();
	rv = poll1(pp.s.fd, POLLIN, 200);
	double dt = now_ms() - t0;
	EXPECT_EQ(rv, 0, "poll(POLLIN, 200ms) on an empty RX ring (revents)");
	EXPECT(dt >= 150, "poll(POLLIN, 200ms) returned after %.0f ms", dt);
	pair_close(&pp);
}

static void rx_ready_after_send(void)
{
	struct pair pp;

	if (!pair_open(&pp, 2))
		return;
	queue_pkts(txr(&pp.m, 0), 3, 0, 60, 0);
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC");
	int rv = poll1(pp.s.fd, POLLIN, 1000);
	EXPECT(rv > 0 && (rv & POLLIN), "poll(POLLIN) after the peer sent: revents %#x", rv);
	EXPECT_EQ(rxr(&pp.s, 0)->tail, 3, "RX tail after poll (poll syncs)");
	pair_close(&pp);
}

static void readiness_is_cur_vs_tail(void)
{
	struct pair pp;

	if (!pair_open(&pp, 3))
		return;
	struct netmap_ring *r = rxr(&pp.s, 0);
	queue_pkts(txr(&pp.m, 0), 3, 0, 60, 0);
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC");
	EXPECT_EQ(rxsync(pp.s.fd), 0, "NIOCRXSYNC");
	if (!EXPECT_EQ(r->tail, 3, "RX tail"))
		goto out;
	/* packets below cur do not count: head 0, cur = tail -> not ready */
	r->cur = r->tail;
	int rv = poll1(pp.s.fd, POLLIN, 0);
	EXPECT_EQ(rv, 0, "poll(POLLIN) with cur == tail, head behind (revents)");
	/* cur behind tail -> ready at once, without new data */
	r->cur = 1;
	rv = poll1(pp.s.fd, POLLIN, 0);
	EXPECT(rv > 0 && (rv & POLLIN), "poll(POLLIN) with cur != tail: revents %#x", rv);
out:
	pair_close(&pp);
}

static void poll_flushes_tx(void)
{
	struct pair pp;

	if (!pair_open(&pp, 4))
		return;
	queue_pkts(txr(&pp.m, 0), 2, 0, 60, 0);
	(void)poll1(pp.m.fd, POLLIN, 0);	/* default: TX pass runs anyway */
	EXPECT_EQ(rxsync(pp.s.fd), 0, "NIOCRXSYNC");
	EXPECT_EQ(rxr(&pp.s, 0)->tail, 2, "packets flushed by the writer's poll(POLLIN)");
	pair_close(&pp);
}

static void no_tx_poll(void)
{
	struct pair pp;

	if (!pair_open_flags(&pp, 5, NR_NO_TX_POLL))
		return;
	queue_pkts(txr(&pp.m, 0), 2, 0, 60, 0);
	(void)poll1(pp.m.fd, POLLIN, 0);
	EXPECT_EQ(rxsync(pp.s.fd), 0, "NIOCRXSYNC");
	EXPECT_EQ(rxr(&pp.s, 0)->tail, 0, "NR_NO_TX_POLL: poll(POLLIN) must not flush TX");
	int rv = poll1(pp.m.fd, POLLOUT, 0);
	EXPECT(rv > 0 && (rv & POLLOUT), "poll(POLLOUT): revents %#x", rv);
	EXPECT_EQ(rxsync(pp.s.fd), 0, "NIOCRXSYNC");
	EXPECT_EQ(rxr(&pp.s, 0)->tail, 2, "NR_NO_TX_POLL: poll(POLLOUT) flushes TX");
	pair_close(&pp);
}

struct later { int fd; int what; struct netmap_ring *r; };

static void *later_fn(void *arg)
{
	struct later *l = arg;
	usleep(200 * 1000);
	if (l->what == 0) {		/* send one packet */
		queue_pkts(l->r, 1, 0, 60, 0);
		(void)txsync(l->fd);
	} else {			/* release everything received */
		(void)rxsync(l->fd);
		release_all(l->r);
		(void)rxsync(l->fd);
	}
	return NULL;
}

static void blocking_poll_wakeups(void)
{
	struct pair pp;
	pthread_t th;

	if (!pair_open(&pp, 6))
		return;
	/* reader blocks, writer sends 200 ms later */
	struct later l = { pp.m.fd, 0, txr(&pp.m, 0) };
	pthread_create(&th, NULL, later_fn, &l);
	double t0 = now_ms();
	int rv = poll1(pp.s.fd, POLLIN, 3000);
	double dt = now_ms() - t0;
	pthread_join(th, NULL);
	EXPECT(rv > 0 && (rv & POLLIN), "blocked poll(POLLIN) woken by the peer: revents %#x after %.0f ms",
	    rv, dt);
	EXPECT(dt < 2500, "blocked poll(POLLIN) took %.0f ms", dt);
	/* writer fills the ring and blocks, reader releases 200 ms later */
	struct netmap_ring *t = txr(&pp.m, 0);
	queue_pkts(t, t->num_slots, 1, 60, 0);
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC");
	rv = poll1(pp.m.fd, POLLOUT, 0);
	EXPECT_EQ(rv, 0, "poll(POLLOUT) on a full TX ring (revents)");
	struct later l2 = { pp.s.fd, 1, rxr(&pp.s, 0) };
	pthread_create(&th, NULL, later_fn, &l2);
	t0 = now_ms();
	rv = poll1(pp.m.fd, POLLOUT, 3000);
	dt = now_ms() - t0;
	pthread_join(th, NULL);
	EXPECT(rv > 0 && (rv & POLLOUT), "blocked poll(POLLOUT) woken by the reader: revents %#x after %.0f ms",
	    rv, dt);
	EXPECT(dt < 2500, "blocked poll(POLLOUT) took %.0f ms", dt);
	pair_close(&pp);
}

static void select_works(void)
{
	struct pair pp;
	fd_set rs, ws;
	struct timeval tv;

	if (!pair_open(&pp, 7))
		return;
	FD_ZERO(&ws);
	FD_SET(pp.m.fd, &ws);
	tv.tv_sec = 1;
	tv.tv_usec = 0;
	int n = select(pp.m.fd + 1, NULL, &ws, NULL, &tv);
	EXPECT(n == 1 && FD_ISSET(pp.m.fd, &ws), "select() writable on a fresh TX ring: %d", n);
	FD_ZERO(&rs);
	FD_SET(pp.s.fd, &rs);
	tv.tv_sec = 0;
	tv.tv_usec = 0;
	n = select(pp.s.fd + 1, &rs, NULL, NULL, &tv);
	EXPECT_EQ(n, 0, "select() readable on an empty RX ring");
	queue_pkts(txr(&pp.m, 0), 1, 0, 60, 0);
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC");
	FD_ZERO(&rs);
	FD_SET(pp.s.fd, &rs);
	tv.tv_sec = 1;
	tv.tv_usec = 0;
	n = select(pp.s.fd + 1, &rs, NULL, NULL, &tv);
	EXPECT(n == 1 && FD_ISSET(pp.s.fd, &rs), "select() readable after the peer sent: %d", n);
	EXPECT_EQ(rxr(&pp.s, 0)->tail, 1, "RX tail after select");
	pair_close(&pp);
}

static void null_port_readiness(void)
{
	struct port p;
	struct nmreq_register r;

	reg_init(&r, NR_REG_NULL);
	r.nr_mem_id = 1;
	r.nr_tx_rings = r.nr_rx_rings = 1;
	r.nr_tx_slots = r.nr_rx_slots = 4;
	if (!port_open_ok(&p, "ncpolnull", &r))
		return;
	int rv = poll1(p.fd, POLLOUT, 0);
	EXPECT(rv > 0 && (rv & POLLOUT), "null port poll(POLLOUT): revents %#x", rv);
	EXPECT_EQ(queue_pkts(txr(&p, 0), 4, 0, 60, 0), 3, "null port TX accepts N-1 slots");
	rv = poll1(p.fd, POLLOUT, 0);
	EXPECT_EQ(rv, 0, "null port poll(POLLOUT) with cur at N-1 (revents)");
	rv = poll1(p.fd, POLLIN, 0);
	EXPECT_EQ(rv, 0, "null port poll(POLLIN) (revents)");
	EXPECT_EQ(txr(&p, 0)->tail, 3, "null port TX tail stays N-1");
	port_close(&p);
}

static void no_rx_ring_never_readable(void)
{
	struct port p;
	struct nmreq_register r;

	reg_init(&r, NR_REG_ALL_NIC);
	r.nr_flags = NR_TX_RINGS_ONLY;
	if (!port_open_ok(&p, P('{', 8), &r))
		return;
	int rv = poll1(p.fd, POLLIN, 0);
	EXPECT_EQ(rv, 0, "poll(POLLIN) on a TX_RINGS_ONLY fd (revents)");
	rv = poll1(p.fd, POLLOUT, 0);
	EXPECT(rv > 0 && (rv & POLLOUT), "poll(POLLOUT) on a TX_RINGS_ONLY fd: revents %#x", rv);
	port_close(&p);
}

int main(void)
{
	suite_init("poll");
	RUN(unregistered_pollerr);
	RUN(tx_ready_rx_not);
	RUN(rx_ready_after_send);
	RUN(readiness_is_cur_vs_tail);
	RUN(poll_flushes_tx);
	RUN(no_tx_poll);
	RUN(blocking_poll_wakeups);
	RUN(select_works);
	RUN(null_port_readiness);
	RUN(no_rx_ring_never_readable);
	return suite_end();
}
