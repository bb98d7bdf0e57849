/*
 * ctrl -- NIOCCTRL header checks (NETMAP-ABI.md §1, §2, §5 steps 1-3).
 * (The error-path write-back of nr_reserved = 1 is deliberately not tested.)
 */
#include "common.h"

static int info_with(int fd, struct nmreq_header *h)
{
	return xioctl(fd, NIOCCTRL, h);
}

static void version_bounds(void)
{
	int fd = nm_dev_open();
	struct nmreq_header h;
	struct nmreq_port_info_get pi;

	if (fd < 0)
		return;
	static const struct { uint16_t v; int err; const char *what; } t[] = {
		{ 13, EINVAL, "nr_version 13" },
		{ 0, EINVAL, "nr_version 0" },
		{ 16, EINVAL, "nr_version 16" },
		{ 14, 0, "nr_version 14" },
		{ 15, 0, "nr_version 15" },
	};
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&pi, 0, sizeof(pi));
		hdr_init(&h, NETMAP_REQ_PORT_INFO_GET, "", &pi, NULL);
		h.nr_version = t[i].v;
		EXPECT_ERR(info_with(fd, &h), t[i].err, t[i].what);
	}
	close(fd);
}

static void version_checked_first(void)
{
	int fd = nm_dev_open();
	struct nmreq_header h;

	if (fd < 0)
		return;
	/* bad version + bad reserved + missing body: version wins, still EINVAL,
	 * and the register must not have happened */
	hdr_init(&h, NETMAP_REQ_REGISTER, "ncctl{1", NULL, NULL);
	h.nr_version = 13;
	EXPECT_ERR(info_with(fd, &h), EINVAL, "version 13 on REGISTER without body");
	close(fd);
}

static void reserved_nonzero(void)
{
	int fd = nm_dev_open();
	struct nmreq_header h;
	struct nmreq_port_info_get pi;

	if (fd < 0)
		return;
	memset(&pi, 0, sizeof(pi));
	hdr_init(&h, NETMAP_REQ_PORT_INFO_GET, "", &pi, NULL);
	h.nr_reserved = 1;
	EXPECT_ERR(info_with(fd, &h), EINVAL, "nr_reserved 1");
	hdr_init(&h, NETMAP_REQ_PORT_INFO_GET, "", &pi, NULL);
	h.nr_reserved = 0x80000000u;
	EXPECT_ERR(info_with(fd, &h), EINVAL, "nr_reserved 0x80000000");
	close(fd);
}

static void body_presence(void)
{
	int fd = nm_dev_open();
	struct nmreq_header h;
	uint64_t junk[8] = { 0 };

	if (fd < 0)
		return;
	hdr_init(&h, NETMAP_REQ_REGISTER, "ncctl{2", NULL, NULL);
	EXPECT_ERR(info_with(fd, &h), EINVAL, "REGISTER with nr_body 0");
	hdr_init(&h, NETMAP_REQ_PORT_INFO_GET, "", NULL, NULL);
	EXPECT_ERR(info_with(fd, &h), EINVAL, "PORT_INFO_GET with nr_body 0");
	hdr_init(&h, NETMAP_REQ_POOLS_INFO_GET, "ncctl{2", NULL, NULL);
	EXPECT_ERR(info_with(fd, &h), EINVAL, "POOLS_INFO_GET with nr_body 0");
	/* a body-less request type given a body */
	hdr_init(&h, NETMAP_REQ_SYNC_KLOOP_STOP, "", junk, NULL);
	EXPECT_ERR(info_with(fd, &h), EINVAL, "body-less request type (14) with a body");
	/* the fd must still be usable: nothing was registered */
	struct nmreq_register r;
	reg_init(&r, NR_REG_ALL_NIC);
	EXPECT_ERR(ctrl(fd, NETMAP_REQ_REGISTER, "ncctl{3", &r, NULL), 0,
	    "REGISTER on the same fd afterwards");
	close(fd);
}

static void unknown_reqtype(void)
{
	int fd = nm_dev_open();
	struct nmreq_header h;

	if (fd < 0)
		return;
	hdr_init(&h, 99, "ncctl{4", NULL, NULL);
	EXPECT_ERR(info_with(fd, &h), EINVAL, "reqtype 99");
	hdr_init(&h, 0, "ncctl{4", NULL, NULL);
	EXPECT_ERR(info_with(fd, &h), EINVAL, "reqtype 0");
	close(fd);
}

static void bad_body_pointer(void)
{
	int fd = nm_dev_open();
	struct nmreq_header h;

	if (fd < 0)
		return;
	hdr_init(&h, NETMAP_REQ_PORT_INFO_GET, "", (void *)(uintptr_t)0x10, NULL);
	EXPECT_ERR(info_with(fd, &h), EFAULT, "PORT_INFO_GET with nr_body 0x10");
	close(fd);
}

static void header_after_success(void)
{
	int fd = nm_dev_open();
	struct nmreq_header h;
	struct nmreq_port_info_get pi;

	if (fd < 0)
		return;
	memset(&pi, 0, sizeof(pi));
	hdr_init(&h, NETMAP_REQ_PORT_INFO_GET, "ncctl}5", &pi, NULL);
	if (EXPECT_ERR(info_with(fd, &h), 0, "PORT_INFO_GET on a pipe")) {
		EXPECT_EQ(h.nr_version, NETMAP_API, "nr_version after the call");
		EXPECT_EQ(h.nr_reqtype, NETMAP_REQ_PORT_INFO_GET, "nr_reqtype after the call");
		EXPECT_EQ(h.nr_reserved, 0, "nr_reserved after a successful call");
		EXPECT_EQ(h.nr_body, (uint64_t)(uintptr_t)&pi, "nr_body after the call");
		EXPECT_EQ(h.nr_options, 0, "nr_options after the call");
		EXPECT(strcmp(h.nr_name, "ncctl}5") == 0, "nr_name changed to \"%s\"", h.nr_name);
	}
	close(fd);
}

static void unknown_ioctl(void)
{
	int fd = nm_dev_open();

	if (fd < 0)
		return;
	EXPECT_ERR(xioctl(fd, _IO('i', 147), NULL), EOPNOTSUPP, "ioctl 'i' 147 (unused)");
	EXPECT_ERR(xioctl(fd, _IO('i', 160), NULL), EOPNOTSUPP, "ioctl 'i' 160");
	close(fd);
}

static void sync_unregistered(void)
{
	int fd = nm_dev_open();

	if (fd < 0)
		return;
	EXPECT_ERR(txsync(fd), ENXIO, "NIOCTXSYNC on an unregistered fd");
	EXPECT_ERR(rxsync(fd), ENXIO, "NIOCRXSYNC on an unregistered fd");
	close(fd);
}

int main(void)
{
	suite_init("ctrl");
	RUN(version_bounds);
	RUN(version_checked_first);
	RUN(reserved_nonzero);
	RUN(body_presence);
	RUN(unknown_reqtype);
	RUN(bad_body_pointer);
	RUN(header_after_success);
	RUN(unknown_ioctl);
	RUN(sync_unregistered);
	return suite_end();
}
