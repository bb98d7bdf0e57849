/*
 * register -- NETMAP_REQ_REGISTER modes and reply fields (NETMAP-ABI.md §5.1,
 * §3.3, §4.3, §10.4, §10.6), on pipes and null ports; on a NIC with --nic IF.
 */
#include "common.h"

static const char *g_nic;
static char nb[64];

#define P(br, id) pname(nb, sizeof(nb), "ncreg", (br), (id))

static void pipe_all_nic_reply_fields(void)
{
	struct port p;
	struct nmreq_register r;

	reg_init(&r, NR_REG_ALL_NIC);
	if (!port_open_ok(&p, P('{', 1), &r))
		return;
	struct nmreq_register *o = &p.req;
	EXPECT_EQ(o->nr_tx_rings, 1, "nr_tx_rings (0 -> default 1)");
	EXPECT_EQ(o->nr_rx_rings, 1, "nr_rx_rings (0 -> default 1)");
	EXPECT_NE(o->nr_tx_slots, 0, "nr_tx_slots");
	EXPECT_NE(o->nr_rx_slots, 0, "nr_rx_slots");
	EXPECT_EQ(o->nr_host_tx_rings, 0, "nr_host_tx_rings (pipes have none)");
	EXPECT_EQ(o->nr_host_rx_rings, 0, "nr_host_rx_rings (pipes have none)");
	EXPECT_NE(o->nr_mem_id, 0, "nr_mem_id");
	EXPECT_NE(o->nr_memsize, 0, "nr_memsize");
	EXPECT(o->nr_offset < o->nr_memsize, "nr_offset %" PRIu64 " >= nr_memsize", o->nr_offset);
	EXPECT_EQ(o->nr_mode, NR_REG_ALL_NIC, "nr_mode (must not change)");
	EXPECT_EQ(o->nr_ringid, 0, "nr_ringid (must not change)");
	EXPECT_EQ(o->nr_flags, 0, "nr_flags (must not change)");
	EXPECT_EQ(o->nr_extra_bufs, 0, "nr_extra_bufs");
	port_close(&p);
}

static void pipe_netmap_if_fields(void)
{
	struct port p;

	if (!port_open_ok(&p, P('{', 2), NULL))
		return;
	struct netmap_if *n = p.nifp;
	EXPECT(strcmp(n->ni_name, nb) == 0, "ni_name: expected \"%s\", got \"%.16s\"", nb, n->ni_name);
	EXPECT_EQ(n->ni_tx_rings, 1, "ni_tx_rings");
	EXPECT_EQ(n->ni_rx_rings, 1, "ni_rx_rings");
	EXPECT_EQ(n->ni_host_tx_rings, 1, "ni_host_tx_rings (max(actual,1))");
	EXPECT_EQ(n->ni_host_rx_rings, 1, "ni_host_rx_rings (max(actual,1))");
	EXPECT_EQ(n->ni_bufs_head, 0, "ni_bufs_head without extra buffers");
	EXPECT_NE(n->ring_ofs[0], 0, "ring_ofs[0] (TX ring 0)");
	EXPECT_EQ(n->ring_ofs[1], 0, "ring_ofs[1] (host TX placeholder)");
	EXPECT_NE(n->ring_ofs[2], 0, "ring_ofs[2] (RX ring 0)");
	EXPECT_EQ(n->ring_ofs[3], 0, "ring_ofs[3] (host RX placeholder)");
	if (g_cur_failed)
		goto out;
	struct netmap_ring *t = txr(&p, 0), *rr = rxr(&p, 0);
	EXPECT_EQ(t->num_slots, p.req.nr_tx_slots, "TX num_slots vs nr_tx_slots");
	EXPECT_EQ(rr->num_slots, p.req.nr_rx_slots, "RX num_slots vs nr_rx_slots");
	EXPECT_EQ(t->dir, 1, "TX ring dir");
	EXPECT_EQ(rr->dir, 0, "RX ring dir");
	EXPECT_EQ(t->ringid, 0, "TX ringid");
	EXPECT_EQ(rr->ringid, 0, "RX ringid");
	EXPECT_EQ(t->nr_buf_size, 2048, "nr_buf_size");
out:
	port_close(&p);
}

static void pipe_requested_counts(void)
{
	struct port m, s;
	struct nmreq_register r;

	reg_init(&r, NR_REG_ALL_NIC);
	r.nr_tx_rings = 2;
	r.nr_rx_rings = 3;
	r.nr_tx_slots = 256;
	r.nr_rx_slots = 128;
	if (!port_open_ok(&m, P('{', 3), &r))
		return;
	EXPECT_EQ(m.req.nr_tx_rings, 2, "master nr_tx_rings");
	EXPECT_EQ(m.req.nr_rx_rings, 3, "master nr_rx_rings");
	EXPECT_EQ(m.req.nr_tx_slots, 256, "master nr_tx_slots");
	EXPECT_EQ(m.req.nr_rx_slots, 128, "master nr_rx_slots");
	EXPECT_EQ(m.nifp->ni_tx_rings, 2, "master ni_tx_rings");
	EXPECT_EQ(m.nifp->ni_rx_rings, 3, "master ni_rx_rings");
	if (!g_cur_failed) {
		for (unsigned i = 0; i < 2; i++)
			EXPECT_EQ(txr(&m, i)->num_slots, 256, "master TX ring num_slots");
		for (unsigned i = 0; i < 3; i++)
			EXPECT_EQ(rxr(&m, i)->num_slots, 128, "master RX ring num_slots");
	}
	/* the slave's counts are the master's, swapped; its own request is ignored */
	reg_init(&r, NR_REG_ALL_NIC);
	r.nr_tx_rings = 7;
	r.nr_tx_slots = 64;
	if (port_open_ok(&s, P('}', 3), &r)) {
		EXPECT_EQ(s.req.nr_tx_rings, 3, "slave nr_tx_rings (= master rx)");
		EXPECT_EQ(s.req.nr_rx_rings, 2, "slave nr_rx_rings (= master tx)");
		EXPECT_EQ(s.req.nr_tx_slots, 128, "slave nr_tx_slots (= master rx)");
		EXPECT_EQ(s.req.nr_rx_slots, 256, "slave nr_rx_slots (= master tx)");
		port_close(&s);
	}
	port_close(&m);
}

static void pipe_one_nic(void)
{
	struct port p;
	struct nmreq_register r;

	reg_init(&r, NR_REG_ONE_NIC);
	r.nr_tx_rings = 2;
	r.nr_rx_rings = 2;
	r.nr_ringid = 1;
	if (!port_open_ok(&p, P('{', 4), &r))
		return;
	const ssize_t *o = p.nifp->ring_ofs;
	/* TX 0,1 | host TX 2 | RX 3,4 | host RX 5 */
	EXPECT_EQ(o[0], 0, "ring_ofs of TX ring 0 (not bound)");
	EXPECT_NE(o[1], 0, "ring_ofs of TX ring 1 (bound)");
	EXPECT_EQ(o[2], 0, "ring_ofs of host TX");
	EXPECT_EQ(o[3], 0, "ring_ofs of RX ring 0 (not bound)");
	EXPECT_NE(o[4], 0, "ring_ofs of RX ring 1 (bound)");
	EXPECT_EQ(o[5], 0, "ring_ofs of host RX");
	EXPECT_EQ(p.req.nr_ringid, 1, "nr_ringid (must not change)");
	EXPECT_EQ(p.req.nr_mode, NR_REG_ONE_NIC, "nr_mode (must not change)");
	if (!g_cur_failed) {
		EXPECT_EQ(txr(&p, 1)->ringid, 1, "TX ring 1 ringid");
		EXPECT_EQ(rxr(&p, 1)->ringid, 1, "RX ring 1 ringid");
	}
	port_close(&p);
}

static void pipe_one_nic_half_out_of_range(void)
{
	struct port p;
	struct nmreq_register r;

	/* ringid 1 exists for TX only: RX silently uses ring 0 (§4.3) */
	reg_init(&r, NR_REG_ONE_NIC);
	r.nr_tx_rings = 2;
	r.nr_rx_rings = 1;
	r.nr_ringid = 1;
	if (!port_open_ok(&p, P('{', 5), &r))
		return;
	const ssize_t *o = p.nifp->ring_ofs;
	/* TX 0,1 | host TX 2 | RX 3 | host RX 4 */
	EXPECT_EQ(o[0], 0, "TX ring 0 not bound");
	EXPECT_NE(o[1], 0, "TX ring 1 bound");
	EXPECT_NE(o[3], 0, "RX ring 0 bound (fallback)");
	port_close(&p);
}

static void pipe_one_nic_out_of_range(void)
{
	struct port p;
	struct nmreq_register r;

	reg_init(&r, NR_REG_ONE_NIC);
	r.nr_ringid = 5;
	int e = port_open(&p, P('{', 6), &r);
	EXPECT_ERR(e, EINVAL, "ONE_NIC ringid 5 on a 1-ring pipe");
	if (!e)
		port_close(&p);
}

static void pipe_rings_only_flags(void)
{
	struct port p;
	struct nmreq_register r;

	reg_init(&r, NR_REG_ALL_NIC);
	r.nr_flags = NR_TX_RINGS_ONLY;
	if (port_open_ok(&p, P('{', 7), &r)) {
		EXPECT_NE(p.nifp->ring_ofs[0], 0, "TX_RINGS_ONLY: TX ring bound");
		EXPECT_EQ(p.nifp->ring_ofs[2], 0, "TX_RINGS_ONLY: RX ring not bound");
		EXPECT_EQ(p.req.nr_flags, NR_TX_RINGS_ONLY, "nr_flags unchanged");
		EXPECT_EQ(rxsync(p.fd), 0, "RXSYNC with no RX ring bound");
		port_close(&p);
	}
	reg_init(&r, NR_REG_ALL_NIC);
	r.nr_flags = NR_RX_RINGS_ONLY;
	if (port_open_ok(&p, P('}', 7), &r)) {
		EXPECT_EQ(p.nifp->ring_ofs[0], 0, "RX_RINGS_ONLY: TX ring not bound");
		EXPECT_NE(p.nifp->ring_ofs[2], 0, "RX_RINGS_ONLY: RX ring bound");
		EXPECT_EQ(txsync(p.fd), 0, "TXSYNC with no TX ring bound");
		port_close(&p);
	}
}

static void pipe_invalid_modes(void)
{
	static const struct { uint32_t mode; const char *what; } t[] = {
		{ NR_REG_DEFAULT, "mode DEFAULT (0) via NIOCCTRL" },
		{ NR_REG_SW, "mode SW on a pipe" },
		{ NR_REG_NIC_SW, "mode NIC_SW on a pipe" },
		{ NR_REG_ONE_SW, "mode ONE_SW on a pipe" },
		{ NR_REG_PIPE_MASTER, "mode PIPE_MASTER via NIOCCTRL" },
		{ NR_REG_PIPE_SLAVE, "mode PIPE_SLAVE via NIOCCTRL" },
		{ 99, "mode 99" },
	};
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct port p;
		struct nmreq_register r;

		reg_init(&r, t[i].mode);
		int e = port_open(&p, P('{', 8), &r);
		EXPECT_ERR(e, EINVAL, t[i].what);
		if (!e)
			port_close(&p);
	}
}

static void register_twice_ebusy(void)
{
	struct port p;
	struct nmreq_register r;

	if (!port_open_ok(&p, P('{', 9), NULL))
		return;
	reg_init(&r, NR_REG_ALL_NIC);
	EXPECT_ERR(ctrl(p.fd, NETMAP_REQ_REGISTER, nb, &r, NULL), EBUSY,
	    "second REGISTER on the same fd");
	port_close(&p);
}

static void two_fds_own_netmap_if(void)
{
	struct port a, b;

	if (!port_open_ok(&a, P('{', 10), NULL))
		return;
	if (port_open_ok(&b, nb, NULL)) {
		EXPECT_NE(a.req.nr_offset, b.req.nr_offset, "nr_offset of a second fd on the same port");
		EXPECT_EQ(a.req.nr_mem_id, b.req.nr_mem_id, "nr_mem_id of both fds");
		/* both netmap_ifs point at the same rings */
		EXPECT_EQ((int64_t)a.req.nr_offset + a.nifp->ring_ofs[0],
		    (int64_t)b.req.nr_offset + b.nifp->ring_ofs[0], "region offset of TX ring 0");
		EXPECT_EQ((int64_t)a.req.nr_offset + a.nifp->ring_ofs[2],
		    (int64_t)b.req.nr_offset + b.nifp->ring_ofs[2], "region offset of RX ring 0");
		port_close(&b);
	}
	port_close(&a);
}

static void exclusive_conflicts(void)
{
	struct port a, b;
	struct nmreq_register r;
	int e;

	/* exclusive after shared */
	if (!port_open_ok(&a, P('{', 11), NULL))
		return;
	reg_init(&r, NR_REG_ALL_NIC);
	r.nr_flags = NR_EXCLUSIVE;
	e = port_open(&b, nb, &r);
	EXPECT_ERR(e, EBUSY, "EXCLUSIVE open of a ring that has users");
	if (!e)
		port_close(&b);
	port_close(&a);

	/* shared after exclusive */
	if (!port_open_ok(&a, P('{', 12), &r))
		return;
	EXPECT_EQ(a.req.nr_flags, NR_EXCLUSIVE, "nr_flags unchanged");
	e = port_open(&b, nb, NULL);
	EXPECT_ERR(e, EBUSY, "open of an exclusively owned ring");
	if (!e)
		port_close(&b);
	port_close(&a);
	/* the owner is gone: a plain open works again */
	if (port_open_ok(&b, nb, NULL))
		port_close(&b);
}

static void null_port_reply_fields(void)
{
	struct port p;
	struct nmreq_register r;

	reg_init(&r, NR_REG_NULL);
	r.nr_mem_id = 1;
	r.nr_tx_rings = 10;
	r.nr_rx_rings = 5;
	r.nr_tx_slots = 256;
	r.nr_rx_slots = 100;
	if (!port_open_ok(&p, "ncnull", &r))
		return;
	EXPECT_EQ(p.req.nr_mem_id, 1, "nr_mem_id");
	EXPECT_EQ(p.req.nr_tx_rings, 10, "nr_tx_rings");
	EXPECT_EQ(p.req.nr_rx_rings, 5, "nr_rx_rings");
	EXPECT_EQ(p.req.nr_tx_slots, 256, "nr_tx_slots");
	EXPECT_EQ(p.req.nr_rx_slots, 100, "nr_rx_slots");
	EXPECT_EQ(p.req.nr_host_tx_rings, 0, "nr_host_tx_rings");
	EXPECT_EQ(p.req.nr_host_rx_rings, 0, "nr_host_rx_rings");
	EXPECT_EQ(p.req.nr_mode, NR_REG_NULL, "nr_mode unchanged");
	EXPECT_NE(p.req.nr_memsize, 0, "nr_memsize");
	EXPECT_EQ(p.nifp->ni_tx_rings, 10, "ni_tx_rings");
	EXPECT_EQ(p.nifp->ni_rx_rings, 5, "ni_rx_rings");
	if (!g_cur_failed) {
		for (unsigned i = 0; i < 10; i++) {
			struct netmap_ring *t = txr(&p, i);
			EXPECT_EQ(t->num_slots, 256, "TX num_slots");
			EXPECT_EQ(t->tail, 255, "fresh TX tail (N-1)");
			EXPECT_EQ(t->head, 0, "fresh TX head");
		}
		for (unsigned i = 0; i < 5; i++)
			EXPECT_EQ(rxr(&p, i)->num_slots, 100, "RX num_slots");
		EXPECT_EQ(txsync(p.fd), 0, "NIOCTXSYNC on a null port");
		EXPECT_EQ(rxsync(p.fd), 0, "NIOCRXSYNC on a null port");
	}
	port_close(&p);
}

static void null_port_all_zero(void)
{
	struct port p;
	struct nmreq_register r;

	reg_init(&r, NR_REG_NULL);
	r.nr_mem_id = 1;
	if (!port_open_ok(&p, "ncnull0", &r))
		return;
	EXPECT_EQ(p.req.nr_tx_rings, 0, "nr_tx_rings");
	EXPECT_EQ(p.req.nr_rx_rings, 0, "nr_rx_rings");
	EXPECT_EQ(p.req.nr_tx_slots, 0, "nr_tx_slots");
	EXPECT_EQ(p.req.nr_rx_slots, 0, "nr_rx_slots");
	EXPECT_EQ(p.req.nr_mem_id, 1, "nr_mem_id");
	port_close(&p);
}

static void null_port_mem_id_errors(void)
{
	struct port p;
	struct nmreq_register r;
	int e;

	reg_init(&r, NR_REG_NULL);
	e = port_open(&p, "ncnull1", &r);
	EXPECT_ERR(e, EINVAL, "null port with nr_mem_id 0");
	if (!e)
		port_close(&p);
	reg_init(&r, NR_REG_NULL);
	r.nr_mem_id = 4000;
	e = port_open(&p, "ncnull2", &r);
	EXPECT_ERR(e, EINVAL, "null port with unknown nr_mem_id");
	if (!e)
		port_close(&p);
}

static void unknown_interface_enxio(void)
{
	struct port p;
	int e = port_open(&p, "ncnoexist0", NULL);
	EXPECT_ERR(e, ENXIO, "REGISTER of a non-existent interface");
	if (!e)
		port_close(&p);
}

/* --------------------------- NIC (--nic) ---------------------------- */

static void nic_all_nic_reply_fields(void)
{
	struct port p;
	struct nmreq_register r;

	reg_init(&r, NR_REG_ALL_NIC);
	if (!port_open_ok(&p, g_nic, &r))
		return;
	struct nmreq_register *o = &p.req;
	EXPECT(o->nr_tx_rings >= 1, "nr_tx_rings is 0");
	EXPECT(o->nr_rx_rings >= 1, "nr_rx_rings is 0");
	EXPECT_NE(o->nr_tx_slots, 0, "nr_tx_slots");
	EXPECT_NE(o->nr_rx_slots, 0, "nr_rx_slots");
	EXPECT_EQ(o->nr_host_tx_rings, 1, "nr_host_tx_rings");
	EXPECT_EQ(o->nr_host_rx_rings, 1, "nr_host_rx_rings");
	EXPECT_NE(o->nr_mem_id, 0, "nr_mem_id");
	EXPECT_NE(o->nr_memsize, 0, "nr_memsize");
	EXPECT_EQ(o->nr_mode, NR_REG_ALL_NIC, "nr_mode unchanged");
	EXPECT_EQ(o->nr_ringid, 0, "nr_ringid unchanged");
	EXPECT_EQ(o->nr_flags, 0, "nr_flags unchanged");
	EXPECT_EQ(o->nr_extra_bufs, 0, "nr_extra_bufs");
	if (g_cur_failed)
		goto out;
	struct netmap_if *n = p.nifp;
	unsigned T = n->ni_tx_rings, R = n->ni_rx_rings;
	EXPECT(strncmp(n->ni_name, g_nic, 15) == 0, "ni_name: expected \"%s\", got \"%.16s\"", g_nic, n->ni_name);
	EXPECT_EQ(T, o->nr_tx_rings, "ni_tx_rings vs nr_tx_rings");
	EXPECT_EQ(R, o->nr_rx_rings, "ni_rx_rings vs nr_rx_rings");
	EXPECT_EQ(n->ni_host_tx_rings, 1, "ni_host_tx_rings");
	EXPECT_EQ(n->ni_host_rx_rings, 1, "ni_host_rx_rings");
	for (unsigned i = 0; i < T; i++)
		EXPECT_NE(n->ring_ofs[i], 0, "ring_ofs of a hw TX ring");
	EXPECT_EQ(n->ring_ofs[T], 0, "ring_ofs of host TX ring (ALL_NIC)");
	for (unsigned i = 0; i < R; i++)
		EXPECT_NE(n->ring_ofs[T + 1 + i], 0, "ring_ofs of a hw RX ring");
	EXPECT_EQ(n->ring_ofs[T + 1 + R], 0, "ring_ofs of host RX ring (ALL_NIC)");
	if (g_cur_failed)
		goto out;
	struct netmap_ring *t = txr(&p, 0), *rr = rxr(&p, 0);
	EXPECT_EQ(t->num_slots, o->nr_tx_slots, "TX num_slots");
	EXPECT_EQ(rr->num_slots, o->nr_rx_slots, "RX num_slots");
	EXPECT_EQ(t->dir, 1, "TX dir");
	EXPECT_EQ(rr->dir, 0, "RX dir");
	EXPECT_EQ(t->head, 0, "fresh TX head");
	EXPECT_EQ(t->tail, t->num_slots - 1, "fresh TX tail");
out:
	port_close(&p);
}

static void nic_one_nic_ring0(void)
{
	struct port p;
	struct nmreq_register r;

	reg_init(&r, NR_REG_ONE_NIC);
	if (!port_open_ok(&p, g_nic, &r))
		return;
	unsigned T = p.nifp->ni_tx_rings, R = p.nifp->ni_rx_rings;
	EXPECT_NE(p.nifp->ring_ofs[0], 0, "TX ring 0 bound");
	for (unsigned i = 1; i <= T; i++)
		EXPECT_EQ(p.nifp->ring_ofs[i], 0, "other TX / host TX ring not bound");
	EXPECT_NE(p.nifp->ring_ofs[T + 1], 0, "RX ring 0 bound");
	for (unsigned i = 1; i <= R; i++)
		EXPECT_EQ(p.nifp->ring_ofs[T + 1 + i], 0, "other RX / host RX ring not bound");
	EXPECT_EQ(p.req.nr_mode, NR_REG_ONE_NIC, "nr_mode unchanged");
	port_close(&p);
}

static void nic_one_nic_out_of_range(void)
{
	struct port p;
	struct nmreq_register r;
	unsigned T = 0, R = 0;

	if (!port_open_ok(&p, g_nic, NULL))
		return;
	T = p.req.nr_tx_rings;
	R = p.req.nr_rx_rings;
	port_close(&p);
	reg_init(&r, NR_REG_ONE_NIC);
	r.nr_ringid = (uint16_t)(T > R ? T : R);
	int e = port_open(&p, g_nic, &r);
	EXPECT_ERR(e, EINVAL, "ONE_NIC with ringid >= ring counts");
	if (!e)
		port_close(&p);
}

static void nic_host_ring_modes(void)
{
	struct port p;
	struct nmreq_register r;

	reg_init(&r, NR_REG_NIC_SW);
	if (port_open_ok(&p, g_nic, &r)) {
		unsigned T = p.nifp->ni_tx_rings, R = p.nifp->ni_rx_rings;
		EXPECT_NE(p.nifp->ring_ofs[0], 0, "NIC_SW: TX ring 0 bound");
		EXPECT_NE(p.nifp->ring_ofs[T], 0, "NIC_SW: host TX ring bound");
		EXPECT_NE(p.nifp->ring_ofs[T + 1], 0, "NIC_SW: RX ring 0 bound");
		EXPECT_NE(p.nifp->ring_ofs[T + 1 + R], 0, "NIC_SW: host RX ring bound");
		EXPECT_EQ(p.req.nr_host_tx_rings, 1, "NIC_SW: nr_host_tx_rings");
		EXPECT_EQ(p.req.nr_host_rx_rings, 1, "NIC_SW: nr_host_rx_rings");
		if (!g_cur_failed)
			EXPECT_EQ(NETMAP_TXRING(p.nifp, T)->ringid, T, "host TX ring's ringid (= T)");
		port_close(&p);
	}
	reg_init(&r, NR_REG_SW);
	if (port_open_ok(&p, g_nic, &r)) {
		unsigned T = p.nifp->ni_tx_rings, R = p.nifp->ni_rx_rings;
		EXPECT_EQ(p.nifp->ring_ofs[0], 0, "SW: TX ring 0 not bound");
		EXPECT_NE(p.nifp->ring_ofs[T], 0, "SW: host TX ring bound");
		EXPECT_EQ(p.nifp->ring_ofs[T + 1], 0, "SW: RX ring 0 not bound");
		EXPECT_NE(p.nifp->ring_ofs[T + 1 + R], 0, "SW: host RX ring bound");
		port_close(&p);
	}
	reg_init(&r, NR_REG_ONE_SW);
	if (port_open_ok(&p, g_nic, &r)) {
		unsigned T = p.nifp->ni_tx_rings, R = p.nifp->ni_rx_rings;
		EXPECT_NE(p.nifp->ring_ofs[T], 0, "ONE_SW 0: host TX ring bound");
		EXPECT_NE(p.nifp->ring_ofs[T + 1 + R], 0, "ONE_SW 0: host RX ring bound");
		port_close(&p);
	}
}

int main(int argc, char **argv)
{
	suite_init("register");
	parse_nic_args(argc, argv, &g_nic, NULL);

	RUN(pipe_all_nic_reply_fields);
	RUN(pipe_netmap_if_fields);
	RUN(pipe_requested_counts);
	RUN(pipe_one_nic);
	RUN(pipe_one_nic_half_out_of_range);
	RUN(pipe_one_nic_out_of_range);
	RUN(pipe_rings_only_flags);
	RUN(pipe_invalid_modes);
	RUN(register_twice_ebusy);
	RUN(two_fds_own_netmap_if);
	RUN(exclusive_conflicts);
	RUN(null_port_reply_fields);
	RUN(null_port_all_zero);
	RUN(null_port_mem_id_errors);
	RUN(unknown_interface_enxio);

	static const struct { void (*fn)(void); const char *name; } nic[] = {
		{ nic_all_nic_reply_fields, "nic_all_nic_reply_fields" },
		{ nic_one_nic_ring0, "nic_one_nic_ring0" },
		{ nic_one_nic_out_of_range, "nic_one_nic_out_of_range" },
		{ nic_host_ring_modes, "nic_host_ring_modes" },
	};
	for (unsigned i = 0; i < sizeof(nic) / sizeof(nic[0]); i++) {
		if (g_nic)
			run_check(nic[i].fn, nic[i].name);
		else
			skip_check(nic[i].name, "not run (no --nic given)");
	}
	return suite_end();
}
