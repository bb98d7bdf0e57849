/*
 * extrabufs -- extra buffers (NETMAP-ABI.md §7.4): count, list walk, return
 * on close, partial allocation when the pool runs dry.
 */
#include "common.h"

static int pool_bufs(const char *name, uint32_t *total)
{
	int fd = nm_dev_open();
	struct nmreq_pools_info pl;

	if (fd < 0)
		return 0;
	memset(&pl, 0, sizeof(pl));
	int e = ctrl(fd, NETMAP_REQ_POOLS_INFO_GET, name, &pl, NULL);
	close(fd);
	*total = pl.nr_buf_pool_objtotal;
	return EXPECT_ERR(e, 0, "POOLS_INFO_GET");
}

static unsigned walk(struct port *p, uint32_t *out, unsigned max)
{
	struct netmap_ring *r = txr(p, 0);
	unsigned n = 0;

	for (uint32_t i = p->nifp->ni_bufs_head; i != 0 && n < max; n++) {
		if (out)
			out[n] = i;
		i = *(uint32_t *)(void *)NETMAP_BUF(r, i);
	}
	return n;
}

static void count_and_walk(void)
{
	struct port p;
	struct nmreq_register rq;
	uint32_t total = 0, v[8];

	reg_init(&rq, NR_REG_ALL_NIC);
	rq.nr_extra_bufs = 5;
	if (!port_open_ok(&p, "ncxb{1", &rq))
		return;
	if (!pool_bufs("ncxb{1", &total))
		goto out;
	EXPECT_EQ(p.req.nr_extra_bufs, 5, "nr_extra_bufs");
	EXPECT_NE(p.nifp->ni_bufs_head, 0, "ni_bufs_head");
	unsigned n = walk(&p, v, 8);
	if (!EXPECT_EQ(n, 5, "list length (ends at index 0)"))
		goto out;
	struct netmap_ring *t = txr(&p, 0), *r = rxr(&p, 0);
	for (unsigned i = 0; i < n; i++) {
		EXPECT(v[i] >= 2 && v[i] < total, "extra buffer %u out of [2,%u)", v[i], total);
		for (unsigned j = 0; j < i; j++)
			EXPECT(v[i] != v[j], "extra buffer %u listed twice", v[i]);
		for (uint32_t k = 0; k < t->num_slots; k++)
			EXPECT(t->slot[k].buf_idx != v[i], "extra buffer %u also in TX slot %u", v[i], k);
		for (uint32_t k = 0; k < r->num_slots; k++)
			EXPECT(r->slot[k].buf_idx != v[i], "extra buffer %u also in RX slot %u", v[i], k);
	}
out:
	port_close(&p);
}

static void none_requested(void)
{
	struct port p;

	if (!port_open_ok(&p, "ncxb{2", NULL))
		return;
	EXPECT_EQ(p.req.nr_extra_bufs, 0, "nr_extra_bufs");
	EXPECT_EQ(p.nifp->ni_bufs_head, 0, "ni_bufs_head");
	port_close(&p);
}

static void returned_on_close(void)
{
	struct port keep, a, b;
	struct nmreq_register rq;
	uint32_t va[8], vb[8];

	/* keeps the parent (and its allocator) alive between the two opens */
	if (!port_open_ok(&keep, "ncxb{9", NULL))
		return;
	reg_init(&rq, NR_REG_ALL_NIC);
	rq.nr_extra_bufs = 8;
	if (!port_open_ok(&a, "ncxb{3", &rq))
		goto out;
	unsigned na = walk(&a, va, 8);
	port_close(&a);
	if (!port_open_ok(&b, "ncxb{3", &rq))
		goto out;
	unsigned nb_ = walk(&b, vb, 8);
	port_close(&b);
	EXPECT_EQ(na, 8, "first list length");
	EXPECT_EQ(nb_, 8, "second list length");
	/* lowest-free allocation: the freed buffers are handed out again */
	for (unsigned i = 0; i < 8 && i < na && i < nb_; i++) {
		int found = 0;
		for (unsigned j = 0; j < nb_; j++)
			found |= va[i] == vb[j];
		EXPECT(found, "extra buffer %u was not returned on close", va[i]);
	}
out:
	port_close(&keep);
}

/*
 * The pool must be one of fixed size when the request arrives. In the kernel a pipe
 * whose parent does not exist gets an auto-created parent with a private allocator
 * sized *for the request* (extra buffers included), which then grants everything; so
 * a "keep" pipe is opened first: its parent's allocator exists and has its size, and
 * the big request on a sibling pipe shares it (pipes use their parent's allocator).
 * netmapd's pipes use the global allocator, also of fixed size. Both must then grant
 * part of the request, and give it all back on close.
 */
static void pool_runs_dry(void)
{
	struct port keep, p;
	struct nmreq_register rq;
	uint32_t total = 0;

	if (!port_open_ok(&keep, "ncxb{8", NULL))
		return;
	if (!pool_bufs("ncxb{4", &total))
		goto out;
	reg_init(&rq, NR_REG_ALL_NIC);
	rq.nr_extra_bufs = total + 1000;
	if (!port_open_ok(&p, "ncxb{4", &rq))
		goto out;
	uint32_t got = p.req.nr_extra_bufs;
	EXPECT(got > 0 && got < total, "nr_extra_bufs %u: expected 0 < n < %u (the pool of the "
	       "open parent)", got, total);
	EXPECT_EQ(walk(&p, NULL, total + 1), got, "list length vs nr_extra_bufs");
	port_close(&p);
	/* everything came back: a normal registration with extra buffers works */
	reg_init(&rq, NR_REG_ALL_NIC);
	rq.nr_extra_bufs = 100;
	if (port_open_ok(&p, "ncxb{5", &rq)) {
		EXPECT_EQ(p.req.nr_extra_bufs, 100, "nr_extra_bufs after the big list was freed");
		port_close(&p);
	}
out:
	port_close(&keep);
}

int main(void)
{
	suite_init("extrabufs");
	RUN(count_and_walk);
	RUN(none_requested);
	RUN(returned_on_close);
	RUN(pool_runs_dry);
	return suite_end();
}
