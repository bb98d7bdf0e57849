/*
 * ring -- ring protocol, validation and re-init (NETMAP-ABI.md §7.3, §8).
 */
#include "common.h"

static char nb[64];
#define P(br, id) pname(nb, sizeof(nb), "ncrng", (br), (id))

/* an open master/slave pair */
struct pair { struct port m, s; };

static int pair_open(struct pair *pp, unsigned id)
{
	if (!port_open_ok(&pp->m, P('{', id), NULL))
		return 0;
	if (!port_open_ok(&pp->s, P('}', id), NULL)) {
		port_close(&pp->m);
		return 0;
	}
	return 1;
}

static void pair_close(struct pair *pp)
{
	port_close(&pp->s);
	port_close(&pp->m);
}

static void initial_state(void)
{
	struct pair pp;

	if (!pair_open(&pp, 1))
		return;
	struct netmap_ring *t = txr(&pp.m, 0), *r = rxr(&pp.m, 0);
	uint32_t n = t->num_slots;
	EXPECT_EQ(t->head, 0, "TX head");
	EXPECT_EQ(t->cur, 0, "TX cur");
	EXPECT_EQ(t->tail, n - 1, "TX tail (N-1)");
	EXPECT_EQ(r->head, 0, "RX head");
	EXPECT_EQ(r->cur, 0, "RX cur");
	EXPECT_EQ(r->tail, 0, "RX tail");
	EXPECT_EQ(t->flags, 0, "TX ring flags");
	EXPECT_EQ(t->offset_mask, 0, "TX offset_mask");
	EXPECT_EQ(t->buf_align, 0, "TX buf_align");
	for (uint32_t k = 0; k < n && !g_cur_failed; k++) {
		EXPECT_EQ(t->slot[k].len, t->nr_buf_size, "fresh TX slot len (= buffer size)");
		EXPECT_EQ(t->slot[k].flags, 0, "fresh TX slot flags");
		EXPECT(t->slot[k].buf_idx >= 2, "TX slot %u has reserved buf_idx %u", k, t->slot[k].buf_idx);
	}
	for (uint32_t k = 0; k < r->num_slots && !g_cur_failed; k++) {
		EXPECT_EQ(r->slot[k].len, r->nr_buf_size, "fresh RX slot len (= buffer size)");
		EXPECT(r->slot[k].buf_idx >= 2, "RX slot %u has reserved buf_idx %u", k, r->slot[k].buf_idx);
	}
	/* TX and RX rings of one end hold distinct buffers */
	for (uint32_t k = 0; k < n && k < r->num_slots && !g_cur_failed; k++)
		EXPECT_NE(t->slot[k].buf_idx, r->slot[k].buf_idx, "TX/RX slot buffer shared");
	pair_close(&pp);
}

static void send_receive_release(void)
{
	struct pair pp;

	if (!pair_open(&pp, 2))
		return;
	struct netmap_ring *t = txr(&pp.m, 0), *r = rxr(&pp.s, 0);
	uint32_t n = t->num_slots;
	EXPECT_EQ(queue_pkts(t, 3, 10, 60, 0), 3, "queued packets");
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC");
	EXPECT_EQ(r->tail, 0, "reader tail before its own rxsync");
	EXPECT_EQ(rxsync(pp.s.fd), 0, "NIOCRXSYNC");
	if (!EXPECT_EQ(r->tail, 3, "reader tail after rxsync"))
		goto out;
	for (unsigned k = 0; k < 3; k++) {
		EXPECT_EQ(r->slot[k].len, 60, "received len");
		EXPECT(check_pat(slot_buf(r, k), 10 + k, 60), "payload of packet %u", k);
	}
	EXPECT(r->ts.tv_sec != 0 || r->ts.tv_usec != 0, "ring->ts not set by rxsync");
	/* writer's tail moves only after the reader released and the writer synced */
	EXPECT_EQ(t->tail, n - 1, "writer tail before release");
	release_all(r);
	EXPECT_EQ(rxsync(pp.s.fd), 0, "releasing NIOCRXSYNC");
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC after release");
	EXPECT_EQ(t->tail, 2, "writer tail after release (head-1)");
	EXPECT_EQ(t->head, 3, "writer head (never written by the kernel)");
out:
	pair_close(&pp);
}

static void tx_head_out_of_range(void)
{
	struct pair pp;

	if (!pair_open(&pp, 3))
		return;
	struct netmap_ring *t = txr(&pp.m, 0);
	uint32_t n = t->num_slots;
	queue_pkts(t, 2, 0, 60, 0);
	EXPECT_EQ(txsync(pp.m.fd), 0, "valid NIOCTXSYNC");
	t->head = n + 5;
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC with head >= N (still returns 0)");
	EXPECT_EQ(t->head, 2, "head reset to hwcur");
	EXPECT_EQ(t->cur, 2, "cur reset to hwcur");
	EXPECT_EQ(t->tail, n - 1, "tail reset to hwtail");
	/* the ring keeps working */
	EXPECT_EQ(queue_pkts(t, 1, 5, 60, 0), 1, "queue after re-init");
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC after re-init");
	EXPECT_EQ(rxsync(pp.s.fd), 0, "reader NIOCRXSYNC");
	EXPECT_EQ(rxr(&pp.s, 0)->tail, 3, "reader sees the 3 valid packets only");
	pair_close(&pp);
}

static void tx_cur_out_of_range(void)
{
	struct pair pp;

	if (!pair_open(&pp, 4))
		return;
	struct netmap_ring *t = txr(&pp.m, 0);
	uint32_t n = t->num_slots;
	t->cur = n;
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC with cur == N");
	EXPECT_EQ(t->head, 0, "head after re-init");
	EXPECT_EQ(t->cur, 0, "cur after re-init");
	EXPECT_EQ(t->tail, n - 1, "tail after re-init");
	pair_close(&pp);
}

static void tx_head_backwards(void)
{
	struct pair pp;

	if (!pair_open(&pp, 5))
		return;
	struct netmap_ring *t = txr(&pp.m, 0);
	queue_pkts(t, 4, 0, 60, 0);
	EXPECT_EQ(txsync(pp.m.fd), 0, "valid NIOCTXSYNC");
	t->head = t->cur = 1;	/* inconsistent but < N: reset or kept (§8.4) */
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC with head moved backwards");
	EXPECT(t->head == 4 || t->head == 1, "head after re-init: expected 4 (reset) or 1 (kept), got %u",
	    t->head);
	t->head = t->cur = 4;
	EXPECT_EQ(queue_pkts(t, 1, 9, 60, 0), 1, "queue after re-init");
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC after re-init");
	EXPECT_EQ(rxsync(pp.s.fd), 0, "reader NIOCRXSYNC");
	EXPECT_EQ(rxr(&pp.s, 0)->tail, 5, "reader sees 5 packets");
	pair_close(&pp);
}

static void rx_head_out_of_range(void)
{
	struct pair pp;

	if (!pair_open(&pp, 6))
		return;
	struct netmap_ring *t = txr(&pp.m, 0), *r = rxr(&pp.s, 0);
	uint32_t n = r->num_slots;
	queue_pkts(t, 3, 0, 60, 0);
	EXPECT_EQ(txsync(pp.m.fd), 0, "writer NIOCTXSYNC");
	r->head = n + 1;
	EXPECT_EQ(rxsync(pp.s.fd), 0, "NIOCRXSYNC with head >= N (still returns 0)");
	EXPECT_EQ(r->head, 0, "RX head reset to hwcur");
	EXPECT_EQ(r->cur, 0, "RX cur reset to hwcur");
	/* the sync still runs (or the next one delivers): the 3 packets are there */
	EXPECT_EQ(rxsync(pp.s.fd), 0, "NIOCRXSYNC");
	EXPECT_EQ(r->tail, 3, "RX tail after re-init + sync");
	pair_close(&pp);
}

static void rx_head_beyond_tail(void)
{
	struct pair pp;

	if (!pair_open(&pp, 7))
		return;
	struct netmap_ring *t = txr(&pp.m, 0), *r = rxr(&pp.s, 0);
	queue_pkts(t, 2, 0, 60, 0);
	EXPECT_EQ(txsync(pp.m.fd), 0, "writer NIOCTXSYNC");
	EXPECT_EQ(rxsync(pp.s.fd), 0, "reader NIOCRXSYNC");
	r->head = r->cur = 10;	/* < N but beyond tail (2): reset or kept (§8.4) */
	EXPECT_EQ(rxsync(pp.s.fd), 0, "NIOCRXSYNC with head beyond tail");
	EXPECT(r->head == 0 || r->head == 10, "RX head after re-init: expected 0 (reset) or 10 (kept), got %u",
	    r->head);
	pair_close(&pp);
}

static void poll_pollerr_on_invalid_head(void)
{
	struct pair pp;

	if (!pair_open(&pp, 8))
		return;
	struct netmap_ring *t = txr(&pp.m, 0), *r = rxr(&pp.s, 0);
	t->head = t->num_slots + 3;
	int rv = poll1(pp.m.fd, POLLOUT, 0);
	EXPECT(rv >= 0 && (rv & POLLERR), "poll(POLLOUT) with TX head >= N: revents %#x, expected POLLERR", rv);
	EXPECT_EQ(t->head, 0, "TX head reset");
	rv = poll1(pp.m.fd, POLLOUT, 0);
	EXPECT(rv > 0 && (rv & POLLOUT) && !(rv & POLLERR), "poll(POLLOUT) after re-init: revents %#x", rv);
	r->cur = r->num_slots + 3;
	rv = poll1(pp.s.fd, POLLIN, 0);
	EXPECT(rv >= 0 && (rv & POLLERR), "poll(POLLIN) with RX cur >= N: revents %#x, expected POLLERR", rv);
	EXPECT_EQ(r->cur, 0, "RX cur reset");
	pair_close(&pp);
}

static void tail_overwrite_restored(void)
{
	struct pair pp;

	if (!pair_open(&pp, 9))
		return;
	struct netmap_ring *t = txr(&pp.m, 0);
	uint32_t n = t->num_slots;
	set_tail(t, 7);
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC after the user overwrote tail");
	EXPECT_EQ(t->tail, n - 1, "tail restored");
	pair_close(&pp);
}

static void full_ring_n_minus_1(void)
{
	struct pair pp;

	if (!pair_open(&pp, 10))
		return;
	struct netmap_ring *t = txr(&pp.m, 0), *r = rxr(&pp.s, 0);
	uint32_t n = t->num_slots;
	EXPECT_EQ(queue_pkts(t, n, 0, 60, 0), n - 1, "TX slots available on a fresh ring");
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC");
	EXPECT_EQ(rspace(t), 0, "writer space after queueing N-1");
	EXPECT_EQ(rxsync(pp.s.fd), 0, "reader NIOCRXSYNC");
	EXPECT_EQ(rspace(r), n - 1, "reader sees N-1 packets");
	EXPECT_EQ(r->tail, n - 1, "reader tail");
	pair_close(&pp);
}

int main(void)
{
	suite_init("ring");
	RUN(initial_state);
	RUN(send_receive_release);
	RUN(tx_head_out_of_range);
	RUN(tx_cur_out_of_range);
	RUN(tx_head_backwards);
	RUN(rx_head_out_of_range);
	RUN(rx_head_beyond_tail);
	RUN(poll_pollerr_on_invalid_head);
	RUN(tail_overwrite_restored);
	RUN(full_ring_n_minus_1);
	return suite_end();
}
