/*
 * legacy -- NIOCREGIF / NIOCGINFO with struct nmreq (NETMAP-ABI.md §1, §5.6),
 * plus the legacy nm_open() helper of netmap_user.h (NETMAP_WITH_LIBS).
 */
#define NETMAP_WITH_LIBS
#include "common.h"

static void lreq(struct nmreq *q, const char *name, uint32_t flags)
{
	memset(q, 0, sizeof(*q));
	snprintf(q->nr_name, sizeof(q->nr_name), "%s", name);
	q->nr_version = NETMAP_API;
	q->nr_flags = flags;
}

static void *lmap(int fd, const struct nmreq *q)
{
	void *m = mmap(NULL, q->nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return m == MAP_FAILED ? NULL : m;
}

static void regif_pipe_fields(void)
{
	int fd = nm_dev_open();
	struct nmreq q;

	if (fd < 0)
		return;
	lreq(&q, "nclg{1", NR_REG_ALL_NIC);
	if (EXPECT_ERR(xioctl(fd, NIOCREGIF, &q), 0, "NIOCREGIF ALL_NIC on a pipe")) {
		EXPECT_NE(q.nr_tx_slots, 0, "nr_tx_slots");
		EXPECT_NE(q.nr_rx_slots, 0, "nr_rx_slots");
		EXPECT_EQ(q.nr_tx_rings, 1, "nr_tx_rings");
		EXPECT_EQ(q.nr_rx_rings, 1, "nr_rx_rings");
		EXPECT_NE(q.nr_arg2, 0, "nr_arg2 (mem_id)");
		EXPECT_NE(q.nr_memsize, 0, "nr_memsize");
		EXPECT(q.nr_offset < q.nr_memsize, "nr_offset %u >= nr_memsize %u", q.nr_offset, q.nr_memsize);
		EXPECT_EQ(q.nr_arg3, 0, "nr_arg3 (extra buffers)");
		EXPECT_EQ(q.nr_ringid, 0, "nr_ringid (not written)");
		EXPECT_EQ(q.nr_flags, NR_REG_ALL_NIC, "nr_flags (not written)");
		EXPECT_EQ(q.nr_version, NETMAP_API, "nr_version (not written)");
		char *m = lmap(fd, &q);
		if (EXPECT(m != NULL, "mmap: %s", strerror(errno))) {
			struct netmap_if *n = NETMAP_IF(m, q.nr_offset);
			EXPECT(strcmp(n->ni_name, "nclg{1") == 0, "ni_name \"%.16s\"", n->ni_name);
			EXPECT_NE(n->ring_ofs[0], 0, "TX ring bound");
			EXPECT_NE(n->ring_ofs[2], 0, "RX ring bound");
			munmap(m, q.nr_memsize);
		}
		EXPECT_ERR(xioctl(fd, NIOCREGIF, &q), EBUSY, "second NIOCREGIF on the fd");
	}
	close(fd);
}

static void regif_default_mode(void)
{
	int fd = nm_dev_open();
	struct nmreq q;

	if (fd < 0)
		return;
	lreq(&q, "nclg{2", 0);	/* mode 0, ringid 0 -> ALL_NIC */
	if (EXPECT_ERR(xioctl(fd, NIOCREGIF, &q), 0, "NIOCREGIF nr_flags 0")) {
		char *m = lmap(fd, &q);
		if (EXPECT(m != NULL, "mmap: %s", strerror(errno))) {
			struct netmap_if *n = NETMAP_IF(m, q.nr_offset);
			EXPECT_NE(n->ring_ofs[0], 0, "TX ring bound");
			EXPECT_NE(n->ring_ofs[2], 0, "RX ring bound");
			munmap(m, q.nr_memsize);
		}
		EXPECT_EQ(q.nr_flags, 0, "nr_flags (not written)");
	}
	close(fd);
}

static void regif_versions(void)
{
	static const struct { uint32_t v; int err; } t[] = {
		{ 13, EINVAL }, { 0, EINVAL }, { 14, 0 }, { 15, 0 }, { 16, 0 }, { 100, 0 },
	};
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int fd = nm_dev_open();
		struct nmreq q;
		char what[64];

		if (fd < 0)
			return;
		lreq(&q, "nclg{3", NR_REG_ALL_NIC);
		q.nr_version = t[i].v;
		snprintf(what, sizeof(what), "NIOCREGIF nr_version %u", t[i].v);
		int e = xioctl(fd, NIOCREGIF, &q);
		EXPECT_ERR(e, t[i].err, what);
		if (e == 0)
			EXPECT_EQ(q.nr_version, t[i].v, "nr_version not written back");
		close(fd);
	}
}

static void regif_extra_bufs(void)
{
	int fd = nm_dev_open();
	struct nmreq q;

	if (fd < 0)
		return;
	lreq(&q, "nclg{4", NR_REG_ALL_NIC);
	q.nr_arg3 = 20;
	if (EXPECT_ERR(xioctl(fd, NIOCREGIF, &q), 0, "NIOCREGIF with 20 extra buffers")) {
		EXPECT_EQ(q.nr_arg3, 20, "nr_arg3");
		char *m = lmap(fd, &q);
		if (EXPECT(m != NULL, "mmap: %s", strerror(errno))) {
			struct netmap_if *n = NETMAP_IF(m, q.nr_offset);
			struct netmap_ring *r = NETMAP_TXRING(n, 0);
			unsigned cnt = 0;
			for (uint32_t i = n->ni_bufs_head; i != 0 && cnt < 100; cnt++)
				i = *(uint32_t *)NETMAP_BUF(r, i);
			EXPECT_EQ(cnt, 20, "length of the ni_bufs_head list");
			munmap(m, q.nr_memsize);
		}
	}
	close(fd);
}

static void regif_pipe_modes(void)
{
	int fm = nm_dev_open(), fs = nm_dev_open();
	struct nmreq qm, qs;

	if (fm < 0 || fs < 0)
		goto out;
	/* "nclg" + PIPE_MASTER ringid 5 == "nclg{5"; PIPE_SLAVE == "nclg}5" */
	lreq(&qm, "nclg", NR_REG_PIPE_MASTER);
	qm.nr_ringid = 5;
	lreq(&qs, "nclg", NR_REG_PIPE_SLAVE);
	qs.nr_ringid = 5;
	if (!EXPECT_ERR(xioctl(fm, NIOCREGIF, &qm), 0, "NIOCREGIF PIPE_MASTER 5"))
		goto out;
	if (!EXPECT_ERR(xioctl(fs, NIOCREGIF, &qs), 0, "NIOCREGIF PIPE_SLAVE 5"))
		goto out;
	EXPECT_EQ(qm.nr_flags, NR_REG_PIPE_MASTER, "nr_flags (not written)");
	EXPECT_EQ(qm.nr_ringid, 5, "nr_ringid (not written)");
	char *mm = lmap(fm, &qm), *ms = lmap(fs, &qs);
	if (EXPECT(mm && ms, "mmap failed")) {
		struct netmap_if *nm = NETMAP_IF(mm, qm.nr_offset), *ns = NETMAP_IF(ms, qs.nr_offset);
		EXPECT(strcmp(nm->ni_name, "nclg{5") == 0, "master ni_name \"%.16s\"", nm->ni_name);
		EXPECT(strcmp(ns->ni_name, "nclg}5") == 0, "slave ni_name \"%.16s\"", ns->ni_name);
		/* connected: master TX slot k and slave RX slot k share a buffer */
		EXPECT_EQ(NETMAP_RXRING(ns, 0)->slot[0].buf_idx, NETMAP_TXRING(nm, 0)->slot[0].buf_idx,
		    "slave RX slot 0 buf_idx vs master TX slot 0");
	}
	if (mm)
		munmap(mm, qm.nr_memsize);
	if (ms)
		munmap(ms, qs.nr_memsize);
out:
	if (fm >= 0)
		close(fm);
	if (fs >= 0)
		close(fs);
}

static void regif_unsupported_cmd(void)
{
	int fd = nm_dev_open();
	struct nmreq q;

	if (fd < 0)
		return;
	lreq(&q, "nclg{6", NR_REG_ALL_NIC);
	q.nr_cmd = 3;	/* NETMAP_BDG_REGOPS: not translated */
	EXPECT_ERR(xioctl(fd, NIOCREGIF, &q), EINVAL, "NIOCREGIF nr_cmd 3");
	close(fd);
}

static void ginfo(void)
{
	int fd = nm_dev_open();
	struct nmreq q;

	if (fd < 0)
		return;
	lreq(&q, "nclg{7", 0);
	if (EXPECT_ERR(xioctl(fd, NIOCGINFO, &q), 0, "NIOCGINFO on a pipe")) {
		EXPECT_NE(q.nr_memsize, 0, "nr_memsize");
		EXPECT_NE(q.nr_tx_slots, 0, "nr_tx_slots");
		EXPECT_NE(q.nr_rx_slots, 0, "nr_rx_slots");
		EXPECT_EQ(q.nr_tx_rings, 1, "nr_tx_rings");
		EXPECT_EQ(q.nr_rx_rings, 1, "nr_rx_rings");
		EXPECT_NE(q.nr_arg2, 0, "nr_arg2 (mem_id)");
	}
	lreq(&q, "ncnoexist0", 0);
	EXPECT_ERR(xioctl(fd, NIOCGINFO, &q), ENXIO, "NIOCGINFO of an unknown interface");
	lreq(&q, "nclg{7", 0);
	q.nr_version = 13;
	EXPECT_ERR(xioctl(fd, NIOCGINFO, &q), EINVAL, "NIOCGINFO nr_version 13");
	close(fd);
}

static void nm_open_pipe_traffic(void)
{
	struct nm_desc *m = nm_open("netmap:nclg{8", NULL, 0, NULL);
	struct nm_desc *s = NULL;
	char pkt[64];

	if (!EXPECT(m != NULL, "nm_open(netmap:nclg{8): %s", strerror(errno)))
		return;
	s = nm_open("netmap:nclg}8", NULL, 0, NULL);
	if (!EXPECT(s != NULL, "nm_open(netmap:nclg}8): %s", strerror(errno)))
		goto out;
	for (unsigned i = 0; i < 3; i++) {
		fill_pat(pkt, 100 + i, sizeof(pkt));
		EXPECT_EQ(nm_inject(m, pkt, sizeof(pkt)), sizeof(pkt), "nm_inject");
	}
	EXPECT_EQ(txsync(NETMAP_FD(m)), 0, "NIOCTXSYNC");
	int rv = poll1(NETMAP_FD(s), POLLIN, 2000);
	if (!EXPECT(rv > 0 && (rv & POLLIN), "poll(POLLIN) on the slave: revents %#x", rv))
		goto out;
	for (unsigned i = 0; i < 3; i++) {
		struct nm_pkthdr h;
		const unsigned char *b = nm_nextpkt(s, &h);
		if (!EXPECT(b != NULL, "nm_nextpkt: packet %u missing", i))
			break;
		EXPECT_EQ(h.len, sizeof(pkt), "packet length");
		EXPECT(check_pat((const char *)b, 100 + i, sizeof(pkt)), "payload of packet %u", i);
	}
out:
	if (s)
		nm_close(s);
	nm_close(m);
}

int main(void)
{
	suite_init("legacy");
	RUN(regif_pipe_fields);
	RUN(regif_default_mode);
	RUN(regif_versions);
	RUN(regif_extra_bufs);
	RUN(regif_pipe_modes);
	RUN(regif_unsupported_cmd);
	RUN(ginfo);
	RUN(nm_open_pipe_traffic);
	return suite_end();
}
