/*
 * info -- NETMAP_REQ_PORT_INFO_GET and NETMAP_REQ_POOLS_INFO_GET
 * (NETMAP-ABI.md §5.2, §5.3, §7.1), including the empty-name rules.
 */
#include "common.h"

static char nb[64];
#define P(br, id) pname(nb, sizeof(nb), "ncinf", (br), (id))

static void port_info_pipe(void)
{
	int fd = nm_dev_open();
	struct nmreq_port_info_get pi;

	if (fd < 0)
		return;
	memset(&pi, 0, sizeof(pi));
	int e = ctrl(fd, NETMAP_REQ_PORT_INFO_GET, P('}', 1), &pi, NULL);
	if (EXPECT_ERR(e, 0, "PORT_INFO_GET on a pipe (unregistered fd)")) {
		EXPECT_NE(pi.nr_memsize, 0, "nr_memsize");
		EXPECT_NE(pi.nr_mem_id, 0, "nr_mem_id");
		EXPECT_NE(pi.nr_tx_slots, 0, "nr_tx_slots");
		EXPECT_NE(pi.nr_rx_slots, 0, "nr_rx_slots");
		EXPECT_EQ(pi.nr_tx_rings, 1, "nr_tx_rings");
		EXPECT_EQ(pi.nr_rx_rings, 1, "nr_rx_rings");
		EXPECT_EQ(pi.nr_host_tx_rings, 0, "nr_host_tx_rings");
		EXPECT_EQ(pi.nr_host_rx_rings, 0, "nr_host_rx_rings");
	}
	close(fd);
}

static void port_info_matches_register(void)
{
	struct port p;
	struct nmreq_port_info_get pi;

	if (!port_open_ok(&p, P('{', 2), NULL))
		return;
	int fd = nm_dev_open();
	if (fd >= 0) {
		memset(&pi, 0, sizeof(pi));
		int e = ctrl(fd, NETMAP_REQ_PORT_INFO_GET, nb, &pi, NULL);
		if (EXPECT_ERR(e, 0, "PORT_INFO_GET on an open pipe end")) {
			EXPECT_EQ(pi.nr_memsize, p.req.nr_memsize, "nr_memsize vs REGISTER");
			EXPECT_EQ(pi.nr_mem_id, p.req.nr_mem_id, "nr_mem_id vs REGISTER");
			EXPECT_EQ(pi.nr_tx_slots, p.req.nr_tx_slots, "nr_tx_slots vs REGISTER");
			EXPECT_EQ(pi.nr_rx_slots, p.req.nr_rx_slots, "nr_rx_slots vs REGISTER");
			EXPECT_EQ(pi.nr_tx_rings, p.req.nr_tx_rings, "nr_tx_rings vs REGISTER");
			EXPECT_EQ(pi.nr_rx_rings, p.req.nr_rx_rings, "nr_rx_rings vs REGISTER");
		}
		/* also answered on the registered fd itself */
		memset(&pi, 0, sizeof(pi));
		e = ctrl(p.fd, NETMAP_REQ_PORT_INFO_GET, nb, &pi, NULL);
		if (EXPECT_ERR(e, 0, "PORT_INFO_GET on a registered fd"))
			EXPECT_EQ(pi.nr_memsize, p.req.nr_memsize, "nr_memsize (registered fd)");
		close(fd);
	}
	port_close(&p);
}

static void port_info_empty_name(void)
{
	int fd = nm_dev_open();
	struct nmreq_port_info_get pi;

	if (fd < 0)
		return;
	memset(&pi, 0, sizeof(pi));
	pi.nr_tx_slots = 777;
	pi.nr_rx_slots = 778;
	pi.nr_tx_rings = 77;
	pi.nr_rx_rings = 78;
	pi.nr_host_tx_rings = 79;
	pi.nr_host_rx_rings = 80;
	int e = ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &pi, NULL);
	if (EXPECT_ERR(e, 0, "PORT_INFO_GET with empty name, mem_id 0")) {
		EXPECT_NE(pi.nr_memsize, 0, "nr_memsize");
		EXPECT_EQ(pi.nr_mem_id, 1, "nr_mem_id (0 means 1)");
		EXPECT_EQ(pi.nr_tx_slots, 777, "nr_tx_slots (must come back as sent)");
		EXPECT_EQ(pi.nr_rx_slots, 778, "nr_rx_slots (must come back as sent)");
		EXPECT_EQ(pi.nr_tx_rings, 77, "nr_tx_rings (must come back as sent)");
		EXPECT_EQ(pi.nr_rx_rings, 78, "nr_rx_rings (must come back as sent)");
		EXPECT_EQ(pi.nr_host_tx_rings, 79, "nr_host_tx_rings (must come back as sent)");
		EXPECT_EQ(pi.nr_host_rx_rings, 80, "nr_host_rx_rings (must come back as sent)");
	}
	close(fd);
}

static void port_info_empty_name_by_mem_id(void)
{
	struct port p;
	struct nmreq_port_info_get pi;

	if (!port_open_ok(&p, P('{', 3), NULL))
		return;
	int fd = nm_dev_open();
	if (fd >= 0) {
		memset(&pi, 0, sizeof(pi));
		pi.nr_mem_id = p.req.nr_mem_id;
		int e = ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &pi, NULL);
		if (EXPECT_ERR(e, 0, "PORT_INFO_GET, empty name, the pipe's mem_id")) {
			EXPECT_EQ(pi.nr_memsize, p.req.nr_memsize, "nr_memsize of that allocator");
			EXPECT_EQ(pi.nr_mem_id, p.req.nr_mem_id, "nr_mem_id");
		}
		close(fd);
	}
	port_close(&p);
}

static void port_info_errors(void)
{
	int fd = nm_dev_open();
	struct nmreq_port_info_get pi;

	if (fd < 0)
		return;
	memset(&pi, 0, sizeof(pi));
	pi.nr_mem_id = 4000;
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &pi, NULL), EINVAL,
	    "PORT_INFO_GET, empty name, unknown mem_id");
	memset(&pi, 0, sizeof(pi));
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "ncnoexist0", &pi, NULL), ENXIO,
	    "PORT_INFO_GET of an unknown interface");
	close(fd);
}

static void pools_info_pipe(void)
{
	struct port p;
	struct nmreq_pools_info pl;

	if (!port_open_ok(&p, P('{', 4), NULL))
		return;
	int fd = nm_dev_open();
	if (fd < 0)
		goto out;
	memset(&pl, 0, sizeof(pl));
	int e = ctrl(fd, NETMAP_REQ_POOLS_INFO_GET, nb, &pl, NULL);
	if (!EXPECT_ERR(e, 0, "POOLS_INFO_GET on a pipe"))
		goto out2;
	EXPECT_EQ(pl.nr_memsize, p.req.nr_memsize, "nr_memsize vs REGISTER");
	EXPECT_EQ(pl.nr_mem_id, p.req.nr_mem_id, "nr_mem_id vs REGISTER");
	EXPECT_NE(pl.nr_if_pool_objtotal, 0, "nr_if_pool_objtotal");
	EXPECT_NE(pl.nr_if_pool_objsize, 0, "nr_if_pool_objsize");
	EXPECT_NE(pl.nr_ring_pool_offset, 0, "nr_ring_pool_offset");
	EXPECT_NE(pl.nr_ring_pool_objtotal, 0, "nr_ring_pool_objtotal");
	EXPECT_NE(pl.nr_ring_pool_objsize, 0, "nr_ring_pool_objsize");
	EXPECT_NE(pl.nr_buf_pool_offset, 0, "nr_buf_pool_offset");
	EXPECT_NE(pl.nr_buf_pool_objtotal, 0, "nr_buf_pool_objtotal");
	EXPECT_EQ(pl.nr_buf_pool_objsize, 2048, "nr_buf_pool_objsize");
	EXPECT_EQ(pl.nr_if_pool_offset, 0, "nr_if_pool_offset");
	EXPECT(pl.nr_if_pool_offset + (uint64_t)pl.nr_if_pool_objtotal * pl.nr_if_pool_objsize
	    <= pl.nr_ring_pool_offset, "if pool overlaps the ring pool");
	EXPECT(pl.nr_ring_pool_offset + (uint64_t)pl.nr_ring_pool_objtotal * pl.nr_ring_pool_objsize
	    <= pl.nr_buf_pool_offset, "ring pool overlaps the buffer pool");
	EXPECT(pl.nr_buf_pool_offset + (uint64_t)pl.nr_buf_pool_objtotal * pl.nr_buf_pool_objsize
	    <= pl.nr_memsize, "buffer pool ends beyond nr_memsize");
	if (g_cur_failed)
		goto out2;
	/* the mapped objects lie where the pools say */
	EXPECT(p.req.nr_offset < pl.nr_ring_pool_offset, "netmap_if (nr_offset %" PRIu64
	    ") outside the if pool", p.req.nr_offset);
	int64_t ring_off = (int64_t)p.req.nr_offset + p.nifp->ring_ofs[0];
	EXPECT(ring_off >= (int64_t)pl.nr_ring_pool_offset && ring_off < (int64_t)pl.nr_buf_pool_offset,
	    "TX ring at region offset %" PRId64 " outside the ring pool", ring_off);
	EXPECT_EQ(ring_off + txr(&p, 0)->buf_ofs, pl.nr_buf_pool_offset,
	    "ring offset + buf_ofs vs nr_buf_pool_offset");
	EXPECT_EQ(txr(&p, 0)->nr_buf_size, pl.nr_buf_pool_objsize, "ring nr_buf_size vs buf objsize");
out2:
	close(fd);
out:
	port_close(&p);
}

static void pools_info_empty_name(void)
{
	int fd = nm_dev_open();
	struct nmreq_pools_info pl;

	if (fd < 0)
		return;
	memset(&pl, 0, sizeof(pl));
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_POOLS_INFO_GET, "", &pl, NULL), ENXIO,
	    "POOLS_INFO_GET with an empty name");
	memset(&pl, 0, sizeof(pl));
	pl.nr_mem_id = 1;
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_POOLS_INFO_GET, "", &pl, NULL), ENXIO,
	    "POOLS_INFO_GET with an empty name and mem_id 1");
	close(fd);
}

static void pools_info_unknown_interface(void)
{
	int fd = nm_dev_open();
	struct nmreq_pools_info pl;

	if (fd < 0)
		return;
	memset(&pl, 0, sizeof(pl));
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_POOLS_INFO_GET, "ncnoexist0", &pl, NULL), ENXIO,
	    "POOLS_INFO_GET of an unknown interface");
	close(fd);
}

int main(void)
{
	suite_init("info");
	RUN(port_info_pipe);
	RUN(port_info_matches_register);
	RUN(port_info_empty_name);
	RUN(port_info_empty_name_by_mem_id);
	RUN(port_info_errors);
	RUN(pools_info_pipe);
	RUN(pools_info_empty_name);
	RUN(pools_info_unknown_interface);
	return suite_end();
}
