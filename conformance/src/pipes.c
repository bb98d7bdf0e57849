/*
 * pipes -- netmap pipes (NETMAP-ABI.md §10.4).
 */
#include "common.h"

static char nb[64];
#define P(br, id) pname(nb, sizeof(nb), "ncpip", (br), (id))

static void partial_read(void)
{
	struct port m, s;

	if (!port_open_ok(&m, P('{', 1), NULL))
		return;
	if (!port_open_ok(&s, P('}', 1), NULL))
		goto out1;
	struct netmap_ring *t = txr(&m, 0), *r = rxr(&s, 0);
	queue_pkts(t, 2, 0, 100, NS_MOREFRAG);	/* two fragments, packet incomplete */
	EXPECT_EQ(txsync(m.fd), 0, "NIOCTXSYNC");
	EXPECT_EQ(rxsync(s.fd), 0, "NIOCRXSYNC");
	EXPECT_EQ(r->tail, 0, "expected tail (incomplete packet hidden)");
	queue_pkts(t, 1, 2, 50, 0);		/* last fragment */
	EXPECT_EQ(txsync(m.fd), 0, "NIOCTXSYNC");
	EXPECT_EQ(rxsync(s.fd), 0, "NIOCRXSYNC");
	if (EXPECT_EQ(r->tail, 3, "expected tail")) {
		EXPECT(r->slot[0].flags & NS_MOREFRAG, "slot 0 lost NS_MOREFRAG");
		EXPECT(r->slot[1].flags & NS_MOREFRAG, "slot 1 lost NS_MOREFRAG");
		EXPECT_EQ(r->slot[2].flags & NS_MOREFRAG, 0, "slot 2 NS_MOREFRAG");
		EXPECT_EQ(r->slot[0].len, 100, "fragment 0 len");
		EXPECT_EQ(r->slot[2].len, 50, "fragment 2 len");
		for (unsigned k = 0; k < 3; k++)
			EXPECT(check_pat(slot_buf(r, k), k, r->slot[k].len), "payload of fragment %u", k);
	}
	/* a complete packet followed by an incomplete one: only the first shows */
	queue_pkts(t, 1, 3, 60, 0);
	queue_pkts(t, 1, 4, 60, NS_MOREFRAG);
	EXPECT_EQ(txsync(m.fd), 0, "NIOCTXSYNC");
	EXPECT_EQ(rxsync(s.fd), 0, "NIOCRXSYNC");
	EXPECT_EQ(r->tail, 4, "expected tail (complete packet then open fragment)");
	port_close(&s);
out1:
	port_close(&m);
}

static void slot_sharing(void)
{
	struct port m, s;

	if (!port_open_ok(&m, P('{', 2), NULL))
		return;
	if (!port_open_ok(&s, P('}', 2), NULL))
		goto out1;
	struct netmap_ring *mt = txr(&m, 0), *mr = rxr(&m, 0), *st = txr(&s, 0), *sr = rxr(&s, 0);
	EXPECT_EQ(mt->num_slots, sr->num_slots, "master TX vs slave RX num_slots");
	for (uint32_t k = 0; k < mt->num_slots && !g_cur_failed; k++)
		EXPECT(mt->slot[k].buf_idx == sr->slot[k].buf_idx,
		    "slot %u: master TX buf %u, slave RX buf %u", k, mt->slot[k].buf_idx, sr->slot[k].buf_idx);
	for (uint32_t k = 0; k < st->num_slots && !g_cur_failed; k++)
		EXPECT(st->slot[k].buf_idx == mr->slot[k].buf_idx,
		    "slot %u: slave TX buf %u, master RX buf %u", k, st->slot[k].buf_idx, mr->slot[k].buf_idx);
	/* zero copy: the reader sees the writer's buffer, not a copy */
	queue_pkts(mt, 1, 9, 64, 0);
	EXPECT_EQ(txsync(m.fd), 0, "NIOCTXSYNC");
	EXPECT_EQ(rxsync(s.fd), 0, "NIOCRXSYNC");
	EXPECT_EQ(sr->slot[0].buf_idx, mt->slot[0].buf_idx, "received slot buffer (zero copy)");
	/* both directions work */
	queue_pkts(st, 2, 20, 70, 0);
	EXPECT_EQ(txsync(s.fd), 0, "slave NIOCTXSYNC");
	EXPECT_EQ(rxsync(m.fd), 0, "master NIOCRXSYNC");
	EXPECT_EQ(mr->tail, 2, "master RX tail (slave -> master)");
	port_close(&s);
out1:
	port_close(&m);
}

static void one_end_not_open(void)
{
	struct port m, s;

	if (!port_open_ok(&m, P('{', 3), NULL))
		return;
	struct netmap_ring *t = txr(&m, 0);
	uint32_t n = t->num_slots;
	EXPECT_EQ(queue_pkts(t, n, 0, 60, 0), n - 1, "writer can queue N-1 slots");
	EXPECT_EQ(txsync(m.fd), 0, "NIOCTXSYNC with the peer closed");
	EXPECT_EQ(rspace(t), 0, "writer space (tail stays put)");
	EXPECT_EQ(poll1(m.fd, POLLOUT, 0), 0, "poll(POLLOUT) with the peer not draining (revents)");
	if (!port_open_ok(&s, P('}', 3), NULL))
		goto out;
	struct netmap_ring *r = rxr(&s, 0);
	EXPECT_EQ(rxsync(s.fd), 0, "NIOCRXSYNC");
	if (EXPECT_EQ(r->tail, n - 1, "reader tail: nothing dropped")) {
		EXPECT(check_pat(slot_buf(r, 0), 0, 60), "payload of packet 0");
		EXPECT(check_pat(slot_buf(r, n - 2), n - 2, 60), "payload of the last packet");
	}
	release_all(r);
	EXPECT_EQ(rxsync(s.fd), 0, "releasing NIOCRXSYNC");
	EXPECT_EQ(txsync(m.fd), 0, "writer NIOCTXSYNC");
	EXPECT_EQ(rspace(t), n - 1, "writer space after the reader released everything");
	port_close(&s);
out:
	port_close(&m);
}

static void pair_survives_either_end(void)
{
	struct port m, s;

	if (!port_open_ok(&m, P('{', 4), NULL))
		return;
	queue_pkts(txr(&m, 0), 3, 40, 60, 0);
	EXPECT_EQ(txsync(m.fd), 0, "NIOCTXSYNC");
	if (!port_open_ok(&s, P('}', 4), NULL)) {
		port_close(&m);
		return;
	}
	port_close(&m);		/* writer gone, slave still open */
	struct netmap_ring *r = rxr(&s, 0);
	EXPECT_EQ(rxsync(s.fd), 0, "NIOCRXSYNC after the writer closed");
	if (EXPECT_EQ(r->tail, 3, "reader tail after the writer closed"))
		EXPECT(check_pat(slot_buf(r, 2), 42, 60), "payload after the writer closed");
	release_all(r);
	EXPECT_EQ(rxsync(s.fd), 0, "releasing NIOCRXSYNC");
	/* the writer end comes back and finds its ring as it left it */
	if (port_open_ok(&m, P('{', 4), NULL)) {
		struct netmap_ring *t = txr(&m, 0);
		EXPECT_EQ(t->head, 3, "reopened writer TX head");
		EXPECT_EQ(t->cur, 3, "reopened writer TX cur");
		EXPECT_EQ(txsync(m.fd), 0, "NIOCTXSYNC");
		EXPECT_EQ(t->tail, 2, "reopened writer TX tail after release");
		queue_pkts(t, 1, 50, 60, 0);
		EXPECT_EQ(txsync(m.fd), 0, "NIOCTXSYNC");
		EXPECT_EQ(rxsync(s.fd), 0, "NIOCRXSYNC");
		EXPECT_EQ(r->tail, 4, "reader tail after the reopened writer sent");
		port_close(&m);
	}
	port_close(&s);
}

static void destroyed_when_both_closed(void)
{
	struct port m, s;

	if (!port_open_ok(&m, P('{', 5), NULL))
		return;
	if (!port_open_ok(&s, P('}', 5), NULL)) {
		port_close(&m);
		return;
	}
	queue_pkts(txr(&m, 0), 5, 0, 60, 0);
	EXPECT_EQ(txsync(m.fd), 0, "NIOCTXSYNC");
	port_close(&s);
	port_close(&m);
	if (!port_open_ok(&m, P('{', 5), NULL))
		return;
	if (port_open_ok(&s, P('}', 5), NULL)) {
		struct netmap_ring *t = txr(&m, 0), *r = rxr(&s, 0);
		EXPECT_EQ(t->head, 0, "fresh pair TX head");
		EXPECT_EQ(t->tail, t->num_slots - 1, "fresh pair TX tail");
		EXPECT_EQ(rxsync(s.fd), 0, "NIOCRXSYNC");
		EXPECT_EQ(r->tail, 0, "fresh pair RX tail (old packets gone)");
		port_close(&s);
	}
	port_close(&m);
}

static void pipes_are_independent(void)
{
	struct port a, b, c;

	if (!port_open_ok(&a, P('{', 6), NULL))
		return;
	if (!port_open_ok(&b, P('}', 7), NULL))
		goto out1;
	if (!port_open_ok(&c, P('}', 6), NULL))
		goto out2;
	queue_pkts(txr(&a, 0), 2, 0, 60, 0);
	EXPECT_EQ(txsync(a.fd), 0, "NIOCTXSYNC");
	EXPECT_EQ(rxsync(b.fd), 0, "NIOCRXSYNC");
	EXPECT_EQ(rxsync(c.fd), 0, "NIOCRXSYNC");
	EXPECT_EQ(rxr(&b, 0)->tail, 0, "another pipe id received data");
	EXPECT_EQ(rxr(&c, 0)->tail, 2, "the connected end's RX tail");
	port_close(&c);
out2:
	port_close(&b);
out1:
	port_close(&a);
}

static void multi_ring_pairing(void)
{
	struct port m, s;
	struct nmreq_register r;

	reg_init(&r, NR_REG_ALL_NIC);
	r.nr_tx_rings = 2;
	r.nr_rx_rings = 2;
	if (!port_open_ok(&m, P('{', 8), &r))
		return;
	if (!port_open_ok(&s, P('}', 8), NULL))
		goto out;
	/* master TX ring i is connected to slave RX ring i */
	queue_pkts(txr(&m, 1), 2, 0, 60, 0);
	queue_pkts(txr(&m, 0), 1, 5, 60, 0);
	EXPECT_EQ(txsync(m.fd), 0, "NIOCTXSYNC");
	EXPECT_EQ(rxsync(s.fd), 0, "NIOCRXSYNC");
	EXPECT_EQ(rxr(&s, 0)->tail, 1, "slave RX ring 0 tail");
	EXPECT_EQ(rxr(&s, 1)->tail, 2, "slave RX ring 1 tail");
	port_close(&s);
out:
	port_close(&m);
}

int main(void)
{
	suite_init("pipes");
	RUN(partial_read);
	RUN(slot_sharing);
	RUN(one_end_not_open);
	RUN(pair_survives_either_end);
	RUN(destroyed_when_both_closed);
	RUN(pipes_are_independent);
	RUN(multi_ring_pairing);
	return suite_end();
}
