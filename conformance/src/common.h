/*
 * common.h -- shared helpers of the netmap ABI conformance suite.
 *
 * Every program is one "area".  A check is a function run through RUN():
 * it calls EXPECT()/EXPECT_EQ() (both evaluate to 1 on success, 0 on
 * failure, so a check can bail out early) and ends up printing exactly one
 * line:
 *     PASS area.check
 *     FAIL area.check: <first failed expectation>
 *     SKIP area.check: <reason>          (not run; never counted as passed)
 * The program exits 1 if any check failed.
 *
 * Only the raw ABI is used: open/ioctl/mmap/poll on /dev/netmap (path can be
 * overridden with $NETMAP_DEVICE).
 */
#ifndef CONFORMANCE_COMMON_H
#define CONFORMANCE_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/time.h>
#include <unistd.h>

#include <net/netmap.h>
#include <net/netmap_user.h>

#define UNUSED __attribute__((unused))

/* ---------------------------------------------------------------- */
/* check bookkeeping                                                */

static const char *g_area = "?";
static char g_check[96];
static char g_msg[512];
static int g_cur_failed;
static int g_nfail;
static int g_timeout = 20;	/* seconds per check */

static void on_alarm(int sig)
{
	(void)sig;
	/* async-signal-safe enough for a test: plain write + _exit */
	char line[256];
	int n = snprintf(line, sizeof(line), "FAIL %s.%s: timed out after %d s\n",
	    g_area, g_check, g_timeout);
	if (n > 0)
		(void)!write(1, line, (size_t)n);
	_exit(1);
}

static UNUSED void suite_init(const char *area)
{
	g_area = area;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);
}

static void note_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note_fail(const char *fmt, ...)
{
	va_list ap;

	if (g_cur_failed++)
		return;	/* keep the first message */
	va_start(ap, fmt);
	vsnprintf(g_msg, sizeof(g_msg), fmt, ap);
	va_end(ap);
}

#define EXPECT(cond, ...) __extension__ ({				\
	int ok_ = !!(cond);						\
	if (!ok_)							\
		note_fail(__VA_ARGS__);					\
	ok_;								\
})
#define EXPECT_EQ(got, want, what)					\
	EXPECT((long long)(got) == (long long)(want),			\
	    "%s: expected %lld, got %lld", (what),			\
	    (long long)(want), (long long)(got))
#define EXPECT_NE(got, notwant, what)					\
	EXPECT((long long)(got) != (long long)(notwant),		\
	    "%s: expected anything but %lld", (what), (long long)(notwant))

static UNUSED const char *ename(int e)
{
	static char buf[32];

	switch (e) {
	case 0: return "success";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EIO: return "EIO";
	case ENXIO: return "ENXIO";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOTTY: return "ENOTTY";
	case ENOSYS: return "ENOSYS";
	case EMSGSIZE: return "EMSGSIZE";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	default:
		snprintf(buf, sizeof(buf), "errno %d", e);
		return buf;
	}
}

#define EXPECT_ERR(got, want, what)					\
	EXPECT((got) == (want), "%s: expected %s, got %s", (what),	\
	    ename(want), ename(got))

static void run_check(void (*fn)(void), const char *name)
{
	snprintf(g_check, sizeof(g_check), "%s", name);
	g_cur_failed = 0;
	g_msg[0] = '\0';
	alarm((unsigned)g_timeout);
	fn();
	alarm(0);
	if (g_cur_failed) {
		printf("FAIL %s.%s: %s\n", g_area, name, g_msg);
		g_nfail++;
	} else {
		printf("PASS %s.%s\n", g_area, name);
	}
}
#define RUN(fn) run_check(fn, #fn)

static UNUSED void skip_check(const char *name, const char *why)
{
	printf("SKIP %s.%s: %s\n", g_area, name, why);
}

static UNUSED int suite_end(void)
{
	return g_nfail ? 1 : 0;
}

/* ---------------------------------------------------------------- */
/* raw ABI helpers                                                  */

static UNUSED const char *dev_path(void)
{
	const char *p = getenv("NETMAP_DEVICE");
	return p && *p ? p : "/dev/netmap";
}

static UNUSED int nm_dev_open(void)
{
	int fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	if (fd < 0)
		note_fail("open(%s): %s", dev_path(), strerror(errno));
	return fd;
}

/* Header for NIOCCTRL with version 14. */
static UNUSED void hdr_init(struct nmreq_header *h, uint16_t type, const char *name,
    void *body, void *opts)
{
	memset(h, 0, sizeof(*h));
	h->nr_version = NETMAP_API;
	h->nr_reqtype = type;
	if (name)
		snprintf(h->nr_name, sizeof(h->nr_name), "%s", name);
	h->nr_body = (uint64_t)(uintptr_t)body;
	h->nr_options = (uint64_t)(uintptr_t)opts;
}

/* ioctl returning 0 or errno */
static UNUSED int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) == 0 ? 0 : errno;
}

static UNUSED int ctrl(int fd, uint16_t type, const char *name, void *body, void *opts)
{
	struct nmreq_header h;

	hdr_init(&h, type, name, body, opts);
	return xioctl(fd, NIOCCTRL, &h);
}

static UNUSED int txsync(int fd) { return ioctl(fd, NIOCTXSYNC, NULL) == 0 ? 0 : errno; }
static UNUSED int rxsync(int fd) { return ioctl(fd, NIOCRXSYNC, NULL) == 0 ? 0 : errno; }

static UNUSED void reg_init(struct nmreq_register *r, uint32_t mode)
{
	memset(r, 0, sizeof(*r));
	r->nr_mode = mode;
}

/* A registered and mapped descriptor. */
struct port {
	int fd;
	struct nmreq_register req;	/* as returned by REGISTER */
	char *mem;
	size_t memsize;
	struct netmap_if *nifp;
};

/*
 * Opens /dev/netmap, registers name with *r (NULL: ALL_NIC defaults) and
 * maps the region.  Returns 0 or the errno (of REGISTER, open or mmap); on
 * error the port is closed again.
 */
static UNUSED int port_open_opts(struct port *p, const char *name,
    const struct nmreq_register *r, void *opts)
{
	int e;

	memset(p, 0, sizeof(*p));
	p->fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	if (p->fd < 0)
		return errno;
	if (r)
		p->req = *r;
	else
		reg_init(&p->req, NR_REG_ALL_NIC);
	e = ctrl(p->fd, NETMAP_REQ_REGISTER, name, &p->req, opts);
	if (e) {
		close(p->fd);
		p->fd = -1;
		return e;
	}
	p->memsize = (size_t)p->req.nr_memsize;
	p->mem = mmap(NULL, p->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
	if (p->mem == MAP_FAILED) {
		e = errno;
		p->mem = NULL;
		close(p->fd);
		p->fd = -1;
		return e;
	}
	p->nifp = NETMAP_IF(p->mem, p->req.nr_offset);
	return 0;
}

static UNUSED int port_open(struct port *p, const char *name, const struct nmreq_register *r)
{
	return port_open_opts(p, name, r, NULL);
}

/* Same, failing the current check with a message if it does not work. */
static UNUSED int port_open_ok(struct port *p, const char *name, const struct nmreq_register *r)
{
	int e = port_open(p, name, r);
	return EXPECT(e == 0, "REGISTER %s: %s", name, ename(e));
}

static UNUSED void port_close(struct port *p)
{
	if (p->mem)
		munmap(p->mem, p->memsize);
	if (p->fd >= 0)
		close(p->fd);
	p->mem = NULL;
	p->fd = -1;
}

static UNUSED struct netmap_ring *txr(struct port *p, unsigned i)
{
	return NETMAP_TXRING(p->nifp, i);
}

static UNUSED struct netmap_ring *rxr(struct port *p, unsigned i)
{
	return NETMAP_RXRING(p->nifp, i);
}

static UNUSED uint32_t rnext(const struct netmap_ring *r, uint32_t i)
{
	return i + 1 == r->num_slots ? 0 : i + 1;
}

static UNUSED uint32_t rspace(const struct netmap_ring *r)
{
	int64_t d = (int64_t)r->tail - (int64_t)r->head;
	return (uint32_t)(d < 0 ? d + r->num_slots : d);
}

static UNUSED char *slot_buf(struct netmap_ring *r, uint32_t slot)
{
	return NETMAP_BUF(r, r->slot[slot].buf_idx);
}

/* The tail field is const in the header (kernel-written); tests poke it. */
static UNUSED void set_tail(struct netmap_ring *r, uint32_t v)
{
	*(volatile uint32_t *)&r->tail = v;
}

/* Payload byte j of packet seq. */
static UNUSED unsigned char pat(unsigned seq, unsigned j)
{
	return (unsigned char)(seq * 31u + j * 7u + 1u);
}

static UNUSED void fill_pat(char *buf, unsigned seq, unsigned len)
{
	for (unsigned j = 0; j < len; j++)
		buf[j] = (char)pat(seq, j);
}

static UNUSED int check_pat(const char *buf, unsigned seq, unsigned len)
{
	for (unsigned j = 0; j < len; j++)
		if ((unsigned char)buf[j] != pat(seq, j))
			return 0;
	return 1;
}

/*
 * Queues n packets on TX ring r starting at head (packet seq0+k, length len,
 * slot flags fl) and advances head = cur.  Returns how many fitted.
 */
static UNUSED unsigned queue_pkts(struct netmap_ring *r, unsigned n, unsigned seq0,
    uint16_t len, uint16_t fl)
{
	unsigned k;
	uint32_t h = r->head;

	for (k = 0; k < n && h != r->tail; k++) {
		struct netmap_slot *s = &r->slot[h];
		fill_pat(NETMAP_BUF(r, s->buf_idx), seq0 + k, len);
		s->len = len;
		s->flags = fl;
		h = rnext(r, h);
	}
	r->head = r->cur = h;
	return k;
}

/* Releases everything received on RX ring r (head = cur = tail). */
static UNUSED void release_all(struct netmap_ring *r)
{
	r->head = r->cur = r->tail;
}

/* poll one fd; returns revents, or -1 on poll error */
static UNUSED int poll1(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events, .revents = 0 };
	int n = poll(&pfd, 1, timeout_ms);
	if (n < 0)
		return -1;
	return n == 0 ? 0 : pfd.revents;
}

/* unique-ish pipe ids within a run of one program */
static UNUSED const char *pname(char *buf, size_t sz, const char *parent, char br, unsigned id)
{
	snprintf(buf, sz, "%s%c%u", parent, br, id);
	return buf;
}

/* Parses "--nic IF" / "--peer IF" from argv (either may be absent). */
static UNUSED void parse_nic_args(int argc, char **argv, const char **nic, const char **peer)
{
	*nic = NULL;
	if (peer)
		*peer = NULL;
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--nic") == 0)
			*nic = argv[++i];
		else if (strcmp(argv[i], "--peer") == 0 && peer)
			*peer = argv[++i];
	}
	if (*nic && !**nic)
		*nic = NULL;
	if (peer && *peer && !**peer)
		*peer = NULL;
}

#endif /* CONFORMANCE_COMMON_H */
