/*
 * csb -- CSB mode and the sync loop (NETMAP-ABI.md §5.5): the CSB option at
 * REGISTER, syncs refused in CSB mode, and a SYNC_KLOOP_START running in a
 * thread of its own that carries packets both ways over a pipe until
 * SYNC_KLOOP_STOP.
 */
#include "common.h"
#include <pthread.h>
#include <sys/eventfd.h>

static char nb[64];
#define P(br, id) pname(nb, sizeof(nb), "nccsb", (br), (id))

/* CSB arrays for two rings (TX then RX) and the option naming them. */
struct csb {
	struct nm_csb_atok atok[2] __attribute__((aligned(64)));
	struct nm_csb_ktoa ktoa[2] __attribute__((aligned(64)));
	struct nmreq_opt_csb opt;
};

static void csb_init(struct csb *c)
{
	memset(c, 0, sizeof(*c));
	c->opt.nro_opt.nro_reqtype = NETMAP_REQ_OPT_CSB;
	c->opt.nro_opt.nro_size = sizeof(c->opt);
	c->opt.csb_atok = (uint64_t)(uintptr_t)c->atok;
	c->opt.csb_ktoa = (uint64_t)(uintptr_t)c->ktoa;
}

static int csb_open(struct port *p, const char *name, struct csb *c)
{
	struct nmreq_register r;

	reg_init(&r, NR_REG_ALL_NIC);
	r.nr_flags = NR_EXCLUSIVE;
	csb_init(c);
	return port_open_opts(p, name, &r, &c->opt);
}

static void register_initialises_csb(void)
{
	static struct csb c;
	struct port m;
	int e = csb_open(&m, P('{', 1), &c);

	if (!EXPECT(e == 0, "REGISTER with CSB: %s", ename(e)))
		return;
	EXPECT_EQ(c.opt.nro_opt.nro_status, 0, "CSB option status");
	uint32_t slots = txr(&m, 0)->num_slots;
	EXPECT_EQ(c.atok[0].head, 0, "atok TX head");
	EXPECT_EQ(c.atok[0].appl_need_kick, 1, "atok TX appl_need_kick");
	EXPECT_EQ(c.atok[0].sync_flags, 1, "atok TX sync_flags");
	EXPECT_EQ(c.ktoa[0].hwtail, slots - 1, "ktoa TX hwtail");
	EXPECT_EQ(c.ktoa[1].hwtail, 0, "ktoa RX hwtail");
	EXPECT_EQ(c.ktoa[1].kern_need_kick, 1, "ktoa RX kern_need_kick");
	EXPECT_ERR(txsync(m.fd), EBUSY, "NIOCTXSYNC in CSB mode");
	EXPECT_ERR(rxsync(m.fd), EBUSY, "NIOCRXSYNC in CSB mode");
	EXPECT(poll1(m.fd, POLLIN | POLLOUT, 0) & POLLERR, "poll in CSB mode gives POLLERR");
	port_close(&m);
}

static void csb_needs_exclusive(void)
{
	static struct csb c;
	struct nmreq_register r;
	struct port m;

	reg_init(&r, NR_REG_ALL_NIC);
	csb_init(&c);
	EXPECT_ERR(port_open_opts(&m, P('{', 2), &r, &c.opt), EINVAL, "CSB without NR_EXCLUSIVE");
	EXPECT_EQ(c.opt.nro_opt.nro_status, EINVAL, "CSB option status");
	/* the refused registration left the pipe free */
	if (port_open_ok(&m, P('{', 2), NULL))
		port_close(&m);
}

struct loop_arg {
	int fd;
	void *opts;
	int err;
};

static void *loop_thread(void *v)
{
	struct loop_arg *a = v;
	struct nmreq_sync_kloop_start s = { .sleep_us = 100 };

	a->err = ctrl(a->fd, NETMAP_REQ_SYNC_KLOOP_START, "", &s, a->opts);
	return NULL;
}

/* Waits up to 5 s for *p to become v. */
static int wait_u32(volatile uint32_t *p, uint32_t v)
{
	for (int i = 0; i < 5000; i++) {
		if (__atomic_load_n(p, __ATOMIC_ACQUIRE) == v)
			return 1;
		usleep(1000);
	}
	return 0;
}

static void kloop_carries_packets(void)
{
	static struct csb c;
	struct port m, s;
	int e = csb_open(&m, P('{', 3), &c);

	if (!EXPECT(e == 0, "REGISTER with CSB: %s", ename(e)))
		return;
	if (!port_open_ok(&s, P('}', 3), NULL))
		goto out1;
	int irq = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!EXPECT(irq >= 0, "eventfd: %s", strerror(errno)))
		goto out2;
	struct {
		struct nmreq_option o;
		int32_t fds[2][2];
	} ev;
	memset(&ev, 0, sizeof(ev));
	ev.o.nro_reqtype = NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS;
	ev.o.nro_size = sizeof(ev);
	ev.fds[0][0] = -1;	/* TX: no eventfds */
	ev.fds[0][1] = -1;
	ev.fds[1][0] = -1;	/* RX: an irqfd */
	ev.fds[1][1] = irq;
	struct loop_arg a = { .fd = m.fd, .opts = &ev, .err = -1 };
	pthread_t th;
	if (!EXPECT(pthread_create(&th, NULL, loop_thread, &a) == 0, "pthread_create"))
		goto out3;

	/* 64 packets out through the CSB: the loop's sync hands them to the slave */
	struct netmap_ring *t = txr(&m, 0), *r = rxr(&s, 0);
	unsigned n = queue_pkts(t, 64, 0, 60, 0);	/* sets the ring's head/cur, ignored in CSB mode */
	nm_sync_kloop_appl_write(&c.atok[0], n, n);
	if (EXPECT(wait_u32(&c.ktoa[0].hwcur, n), "ktoa hwcur never reached %u (is %u)", n, c.ktoa[0].hwcur)) {
		EXPECT_EQ(rxsync(s.fd), 0, "slave NIOCRXSYNC");
		EXPECT_EQ(r->tail, n, "slave RX tail");
		for (unsigned k = 0; k < n && !g_cur_failed; k++)
			EXPECT(check_pat(slot_buf(r, k), k, 60), "payload of packet %u", k);
	}
	/* 5 packets back: they show in ktoa hwtail of the RX entry, with an irq */
	queue_pkts(txr(&s, 0), 5, 100, 70, 0);
	EXPECT_EQ(txsync(s.fd), 0, "slave NIOCTXSYNC");
	if (EXPECT(wait_u32(&c.ktoa[1].hwtail, 5), "ktoa RX hwtail never reached 5 (is %u)", c.ktoa[1].hwtail)) {
		struct netmap_ring *mr = rxr(&m, 0);
		for (unsigned k = 0; k < 5 && !g_cur_failed; k++)
			EXPECT(check_pat(slot_buf(mr, k), 100 + k, 70), "payload of returned packet %u", k);
		uint64_t v = 0;
		int got = 0;
		for (int i = 0; i < 5000 && !got; i++) {
			got = read(irq, &v, sizeof(v)) == (ssize_t)sizeof(v);
			if (!got)
				usleep(1000);
		}
		EXPECT(got && v >= 1, "irqfd not signalled");
	}
	/* a second loop on the same descriptor is refused while the first runs */
	struct nmreq_sync_kloop_start s2 = { .sleep_us = 100 };
	EXPECT_ERR(ctrl(m.fd, NETMAP_REQ_SYNC_KLOOP_START, "", &s2, NULL), EBUSY, "second SYNC_KLOOP_START");
	EXPECT_EQ(ctrl(m.fd, NETMAP_REQ_SYNC_KLOOP_STOP, "", NULL, NULL), 0, "SYNC_KLOOP_STOP");
	pthread_join(th, NULL);
	EXPECT_EQ(a.err, 0, "SYNC_KLOOP_START result");
	EXPECT_EQ(ev.o.nro_status, 0, "EVENTFDS option status");
out3:
	close(irq);
out2:
	port_close(&s);
out1:
	port_close(&m);
}

static void kloop_needs_csb(void)
{
	struct port m;
	struct nmreq_sync_kloop_start s = { .sleep_us = 100 };

	if (!port_open_ok(&m, P('{', 4), NULL))
		return;
	EXPECT_ERR(ctrl(m.fd, NETMAP_REQ_SYNC_KLOOP_START, "", &s, NULL), EINVAL, "SYNC_KLOOP_START without CSB");
	port_close(&m);
}

int main(void)
{
	suite_init("csb");
	RUN(register_initialises_csb);
	RUN(csb_needs_exclusive);
	RUN(kloop_carries_packets);
	RUN(kloop_needs_csb);
	return suite_end();
}
