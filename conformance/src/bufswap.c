/*
 * bufswap -- zero-copy buffer swapping with NS_BUF_CHANGED between pipe
 * slots and extra buffers (NETMAP-ABI.md §7.4, §8.5, §10.4).
 */
#include "common.h"

static uint32_t *link_word(struct netmap_ring *r, uint32_t idx)
{
	return (uint32_t *)(void *)NETMAP_BUF(r, idx);
}

/* pops one buffer off the fd's extra-buffer list (0 if empty) */
static uint32_t xb_pop(struct port *p, struct netmap_ring *r)
{
	uint32_t i = p->nifp->ni_bufs_head;
	if (i)
		p->nifp->ni_bufs_head = *link_word(r, i);
	return i;
}

static void xb_push(struct port *p, struct netmap_ring *r, uint32_t i)
{
	*link_word(r, i) = p->nifp->ni_bufs_head;
	p->nifp->ni_bufs_head = i;
}

static void swap_tx_to_peer_rx(void)
{
	struct port m, s;
	struct nmreq_register rq;

	reg_init(&rq, NR_REG_ALL_NIC);
	rq.nr_extra_bufs = 2;
	if (!port_open_ok(&m, "ncbs{1", &rq))
		return;
	if (!port_open_ok(&s, "ncbs}1", NULL))
		goto out1;
	if (!EXPECT_EQ(m.req.nr_extra_bufs, 2, "nr_extra_bufs"))
		goto out;
	EXPECT_EQ(m.req.nr_mem_id, s.req.nr_mem_id, "both ends share one allocator");
	struct netmap_ring *t = txr(&m, 0), *r = rxr(&s, 0);
	uint32_t h = t->head;
	uint32_t e = xb_pop(&m, t), old = t->slot[h].buf_idx;
	if (!EXPECT(e >= 2, "extra buffer index %u", e))
		goto out;
	fill_pat(NETMAP_BUF(t, e), 77, 100);
	t->slot[h].buf_idx = e;
	t->slot[h].len = 100;
	t->slot[h].flags = NS_BUF_CHANGED;
	xb_push(&m, t, old);
	t->head = t->cur = rnext(t, h);
	EXPECT_EQ(txsync(m.fd), 0, "NIOCTXSYNC");
	EXPECT_EQ(t->slot[h].flags & NS_BUF_CHANGED, 0, "NS_BUF_CHANGED cleared on the consumed TX slot");
	EXPECT_EQ(rxsync(s.fd), 0, "NIOCRXSYNC");
	if (!EXPECT_EQ(r->tail, rnext(r, h), "reader tail"))
		goto out;
	EXPECT_EQ(r->slot[h].buf_idx, e, "reader's RX slot buf_idx (the swapped-in buffer)");
	EXPECT(r->slot[h].flags & NS_BUF_CHANGED, "reader's RX slot lacks NS_BUF_CHANGED (flags %#x)",
	    r->slot[h].flags);
	EXPECT_EQ(r->slot[h].len, 100, "reader's RX slot len");
	EXPECT(check_pat(slot_buf(r, h), 77, 100), "payload seen by the reader");
	/* the extra list now holds the old slot buffer and the other extra one */
	uint32_t cnt = 0, sawold = 0;
	for (uint32_t i = m.nifp->ni_bufs_head; i && cnt < 10; cnt++) {
		sawold |= i == old;
		i = *link_word(t, i);
	}
	EXPECT_EQ(cnt, 2, "extra list length after the swap");
	EXPECT(sawold, "old slot buffer %u not in the extra list", old);
out:
	port_close(&s);
out1:
	port_close(&m);
}

static void swap_rx_back_to_writer(void)
{
	struct port m, s;
	struct nmreq_register rq;

	if (!port_open_ok(&m, "ncbs{2", NULL))
		return;
	reg_init(&rq, NR_REG_ALL_NIC);
	rq.nr_extra_bufs = 1;
	if (!port_open_ok(&s, "ncbs}2", &rq))
		goto out1;
	if (!EXPECT_EQ(s.req.nr_extra_bufs, 1, "reader nr_extra_bufs"))
		goto out;
	struct netmap_ring *t = txr(&m, 0), *r = rxr(&s, 0);
	queue_pkts(t, 1, 5, 80, 0);
	EXPECT_EQ(txsync(m.fd), 0, "NIOCTXSYNC");
	EXPECT_EQ(rxsync(s.fd), 0, "NIOCRXSYNC");
	if (!EXPECT_EQ(r->tail, 1, "reader tail"))
		goto out;
	/* reader keeps the packet buffer, gives its extra buffer back instead */
	uint32_t pkt = r->slot[0].buf_idx, e = xb_pop(&s, r);
	if (!EXPECT(e >= 2, "reader extra buffer %u", e))
		goto out;
	r->slot[0].buf_idx = e;
	r->slot[0].flags |= NS_BUF_CHANGED;
	EXPECT(check_pat(NETMAP_BUF(r, pkt), 5, 80), "kept packet payload");
	xb_push(&s, r, pkt);
	release_all(r);
	EXPECT_EQ(rxsync(s.fd), 0, "releasing NIOCRXSYNC");
	EXPECT_EQ(txsync(m.fd), 0, "writer NIOCTXSYNC");
	EXPECT_EQ(t->tail, 0, "writer tail after release");
	EXPECT_EQ(t->slot[0].buf_idx, e, "writer's TX slot now holds the reader's buffer");
	EXPECT(t->slot[0].flags & NS_BUF_CHANGED, "writer's TX slot lacks NS_BUF_CHANGED (flags %#x)",
	    t->slot[0].flags);
	EXPECT_EQ(r->slot[0].flags & NS_BUF_CHANGED, 0, "NS_BUF_CHANGED cleared on the released RX slot");
	/* the writer can reuse the swapped buffer right away */
	t->slot[0].flags = 0;
	set_tail(t, t->tail);
	queue_pkts(t, 1, 6, 90, 0);
	EXPECT_EQ(txsync(m.fd), 0, "NIOCTXSYNC");
	EXPECT_EQ(rxsync(s.fd), 0, "NIOCRXSYNC");
	if (EXPECT_EQ(r->tail, 2, "reader tail after the second packet")) {
		EXPECT_EQ(r->slot[1].len, 90, "second packet len");
		EXPECT(check_pat(slot_buf(r, 1), 6, 90), "second packet payload");
	}
out:
	port_close(&s);
out1:
	port_close(&m);
}

int main(void)
{
	suite_init("bufswap");
	RUN(swap_tx_to_peer_rx);
	RUN(swap_rx_back_to_writer);
	return suite_end();
}
