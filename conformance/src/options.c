/*
 * options -- option-chain copy-in rules (NETMAP-ABI.md §5 step 4-6).
 */
#include "common.h"

static char nb[64];
#define P(br, id) pname(nb, sizeof(nb), "ncopt", (br), (id))

#define OPT_UNKNOWN 1234u

static void opt_init(struct nmreq_option *o, uint32_t type, void *next)
{
	memset(o, 0, sizeof(*o));
	o->nro_reqtype = type;
	o->nro_next = (uint64_t)(uintptr_t)next;
	o->nro_status = 0xdead;
}

static void unknown_option_register(void)
{
	int fd = nm_dev_open();
	struct nmreq_option o;
	struct nmreq_register r;

	if (fd < 0)
		return;
	opt_init(&o, OPT_UNKNOWN, NULL);
	reg_init(&r, NR_REG_ALL_NIC);
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_REGISTER, P('{', 1), &r, &o), EOPNOTSUPP,
	    "REGISTER with an unknown option");
	EXPECT_ERR((int)o.nro_status, EOPNOTSUPP, "nro_status of the unknown option");
	EXPECT_EQ(o.nro_next, 0, "nro_next (must come back unchanged)");
	EXPECT_EQ(o.nro_reqtype, OPT_UNKNOWN, "nro_reqtype (must come back unchanged)");
	/* the registration was undone: the same fd can register again */
	reg_init(&r, NR_REG_ALL_NIC);
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_REGISTER, nb, &r, NULL), 0,
	    "REGISTER on the same fd after the EOPNOTSUPP failure");
	close(fd);
}

static void unknown_option_other_request(void)
{
	int fd = nm_dev_open();
	struct nmreq_option o;
	struct nmreq_port_info_get pi;

	if (fd < 0)
		return;
	opt_init(&o, OPT_UNKNOWN, NULL);
	memset(&pi, 0, sizeof(pi));
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &pi, &o), 0,
	    "PORT_INFO_GET with an unknown option (only REGISTER rejects leftovers)");
	EXPECT_ERR((int)o.nro_status, EOPNOTSUPP, "nro_status of the unconsumed option");
	EXPECT_NE(pi.nr_memsize, 0, "nr_memsize (body written back on success)");
	close(fd);
}

static void unconsumed_option_failed_register(void)
{
	int fd = nm_dev_open();
	struct nmreq_option o;
	struct nmreq_register r;

	if (fd < 0)
		return;
	opt_init(&o, OPT_UNKNOWN, NULL);
	reg_init(&r, NR_REG_ALL_NIC);
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_REGISTER, "ncnoexist0", &r, &o), ENXIO,
	    "REGISTER of an unknown interface with an option");
	EXPECT_ERR((int)o.nro_status, EOPNOTSUPP, "nro_status after a failed REGISTER");
	close(fd);
}

static void self_linked_unknown(void)
{
	int fd = nm_dev_open();
	struct nmreq_option o;
	struct nmreq_register r;

	if (fd < 0)
		return;
	opt_init(&o, OPT_UNKNOWN, NULL);
	o.nro_next = (uint64_t)(uintptr_t)&o;
	reg_init(&r, NR_REG_ALL_NIC);
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_REGISTER, P('{', 2), &r, &o), EMSGSIZE,
	    "self-linked unknown option");
	EXPECT_EQ(o.nro_next, (uint64_t)(uintptr_t)&o, "nro_next unchanged");
	close(fd);
}

static int chain_register(unsigned n, unsigned id)
{
	struct nmreq_option *v = calloc(n, sizeof(*v));
	struct nmreq_register r;
	int fd, e;

	if (!v)
		return ENOMEM;
	for (unsigned i = 0; i < n; i++)
		opt_init(&v[i], OPT_UNKNOWN + i, i + 1 < n ? &v[i + 1] : NULL);
	fd = nm_dev_open();
	if (fd < 0) {
		free(v);
		return -1;
	}
	reg_init(&r, NR_REG_ALL_NIC);
	e = ctrl(fd, NETMAP_REQ_REGISTER, P('{', id), &r, v);
	close(fd);
	free(v);
	return e;
}

static void staging_capacity_127_128(void)
{
	/* 56-byte body: 127 unknown options fit in the staging buffer, 128 don't */
	EXPECT_ERR(chain_register(127, 3), EOPNOTSUPP, "REGISTER with 127 unknown options");
	EXPECT_ERR(chain_register(128, 4), EMSGSIZE, "REGISTER with 128 unknown options");
}

static void staging_overflow_eventfds(void)
{
	enum { N = 99 };
	struct nmreq_option *v = calloc(N, sizeof(*v));
	struct nmreq_opt_sync_kloop_eventfds *ev = calloc(1, 1000);
	struct nmreq_register r;
	int fd;

	if (!v || !ev) {
		note_fail("out of memory");
		goto out;
	}
	for (unsigned i = 0; i < N; i++)
		opt_init(&v[i], NETMAP_REQ_OPT_MAX, i + 1 < N ? (void *)&v[i + 1] : (void *)ev);
	opt_init(&ev->nro_opt, NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS, NULL);
	ev->nro_opt.nro_size = 1000;
	fd = nm_dev_open();
	if (fd < 0)
		goto out;
	reg_init(&r, NR_REG_ALL_NIC);
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_REGISTER, P('{', 5), &r, v), EMSGSIZE,
	    "99 options of type 6 + EVENTFDS with nro_size 1000");
	close(fd);
out:
	free(v);
	free(ev);
}

static void known_option_oversized(void)
{
	int fd = nm_dev_open();
	struct nmreq_opt_offsets off;
	struct nmreq_register r;

	if (fd < 0)
		return;
	memset(&off, 0, sizeof(off));
	opt_init(&off.nro_opt, NETMAP_REQ_OPT_OFFSETS, NULL);
	off.nro_opt.nro_size = 5000;
	reg_init(&r, NR_REG_ALL_NIC);
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_REGISTER, P('{', 6), &r, &off), EMSGSIZE,
	    "OFFSETS option with nro_size 5000");
	close(fd);
}

static void duplicate_known_option(void)
{
	int fd = nm_dev_open();
	struct nmreq_opt_sync_kloop_mode a, b;
	struct nmreq_register r;

	if (fd < 0)
		return;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	opt_init(&a.nro_opt, NETMAP_REQ_OPT_SYNC_KLOOP_MODE, &b);
	opt_init(&b.nro_opt, NETMAP_REQ_OPT_SYNC_KLOOP_MODE, NULL);
	reg_init(&r, NR_REG_ALL_NIC);
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_REGISTER, P('{', 7), &r, &a), EINVAL,
	    "two SYNC_KLOOP_MODE options");
	EXPECT_ERR((int)a.nro_opt.nro_status, EINVAL, "status of the first copy");
	EXPECT_ERR((int)b.nro_opt.nro_status, EINVAL, "status of the duplicate");
	EXPECT_EQ(a.nro_opt.nro_next, (uint64_t)(uintptr_t)&b, "nro_next of the first copy");
	/* nothing was registered */
	reg_init(&r, NR_REG_ALL_NIC);
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_REGISTER, nb, &r, NULL), 0,
	    "REGISTER on the same fd afterwards");
	close(fd);
}

static void self_linked_known_option(void)
{
	int fd = nm_dev_open();
	struct nmreq_opt_offsets off;
	struct nmreq_register r;

	if (fd < 0)
		return;
	memset(&off, 0, sizeof(off));
	opt_init(&off.nro_opt, NETMAP_REQ_OPT_OFFSETS, &off);
	reg_init(&r, NR_REG_ALL_NIC);
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_REGISTER, P('{', 8), &r, &off), EINVAL,
	    "self-linked OFFSETS option");
	EXPECT_ERR((int)off.nro_opt.nro_status, EINVAL, "nro_status");
	close(fd);
}

static void option_type_zero(void)
{
	int fd = nm_dev_open();
	struct nmreq_option a, z;
	struct nmreq_register r;

	if (fd < 0)
		return;
	opt_init(&a, OPT_UNKNOWN, &z);
	opt_init(&z, 0, NULL);
	reg_init(&r, NR_REG_ALL_NIC);
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_REGISTER, P('{', 9), &r, &a), EINVAL,
	    "option with nro_reqtype 0");
	EXPECT_ERR((int)z.nro_status, EINVAL, "status of the type-0 option");
	EXPECT_ERR((int)a.nro_status, 0, "status of the option copied before it");
	close(fd);
}

static void bad_option_pointer(void)
{
	int fd = nm_dev_open();
	struct nmreq_register r;

	if (fd < 0)
		return;
	reg_init(&r, NR_REG_ALL_NIC);
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_REGISTER, P('{', 10), &r, (void *)(uintptr_t)0x10), EFAULT,
	    "nr_options 0x10");
	close(fd);
}

int main(void)
{
	suite_init("options");
	RUN(unknown_option_register);
	RUN(unknown_option_other_request);
	RUN(unconsumed_option_failed_register);
	RUN(self_linked_unknown);
	RUN(staging_capacity_127_128);
	RUN(staging_overflow_eventfds);
	RUN(known_option_oversized);
	RUN(duplicate_known_option);
	RUN(self_linked_known_option);
	RUN(option_type_zero);
	RUN(bad_option_pointer);
	return suite_end();
}
