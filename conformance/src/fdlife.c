/*
 * fdlife -- a netmap descriptor's life as a file: epoll on it, dup, fork and
 * exec (NETMAP-ABI.md §9; the device-file semantics every front end must keep).
 *
 * With the kernel module these are plain file semantics: epoll sleeps in the
 * device's poll, a dup or a forked child shares the open file and therefore
 * the registration, and an exec keeps a descriptor without FD_CLOEXEC.
 */
#include "common.h"
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>

static char nb[64];
#define P(br, id) pname(nb, sizeof(nb), "ncfdl", (br), (id))

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

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct later { int fd; int what; struct netmap_ring *r; };

static void *later_fn(void *arg)
{
	struct later *l = arg;
	usleep(200 * 1000);
	if (l->what == 0) {		/* send one packet */
		queue_pkts(l->r, 1, 0, 60, 0);
		(void)txsync(l->fd);
	} else {			/* release everything received */
		(void)rxsync(l->fd);
		release_all(l->r);
		(void)rxsync(l->fd);
	}
	return NULL;
}

/* Waits for packets on the RX ring of s (up to 2 s); returns how many. */
static unsigned wait_rx(struct port *s, unsigned want)
{
	struct netmap_ring *r = rxr(s, 0);
	double t0 = now_ms();
	unsigned n = 0;

	while (now_ms() - t0 < 2000) {
		(void)poll1(s->fd, POLLIN, 100);
		n = (r->tail - r->head + r->num_slots) % r->num_slots;
		if (n >= want)
			break;
	}
	return n;
}

static void epoll_rx_wakeup(void)
{
	struct pair pp;
	pthread_t th;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0xfeed };
	struct epoll_event out[4];

	if (!pair_open(&pp, 1))
		return;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!EXPECT(ep >= 0, "epoll_create1: %s", ename(errno)))
		goto done;
	EXPECT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, pp.s.fd, &ev), 0, "epoll_ctl ADD");
	EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0, "epoll_wait(0) on an empty RX ring");
	struct later l = { pp.m.fd, 0, txr(&pp.m, 0) };
	pthread_create(&th, NULL, later_fn, &l);
	double t0 = now_ms();
	int n = epoll_wait(ep, out, 4, 3000);
	double dt = now_ms() - t0;
	pthread_join(th, NULL);
	if (EXPECT(n == 1, "blocked epoll_wait woken by the peer: %d events after %.0f ms", n, dt)) {
		EXPECT(out[0].events & EPOLLIN, "events %#x without EPOLLIN", out[0].events);
		EXPECT(out[0].data.u64 == 0xfeed, "the event's data is not the one given");
	}
	EXPECT(dt >= 100 && dt < 2500, "blocked epoll_wait took %.0f ms", dt);
	/* level-triggered: still readable until released */
	EXPECT_EQ(epoll_wait(ep, out, 4, 0), 1, "epoll_wait(0) while the packet is unreleased");
	(void)rxsync(pp.s.fd);
	release_all(rxr(&pp.s, 0));
	(void)rxsync(pp.s.fd);
	EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0, "epoll_wait(0) after releasing");
	EXPECT_EQ(epoll_ctl(ep, EPOLL_CTL_DEL, pp.s.fd, NULL), 0, "epoll_ctl DEL");
	close(ep);
done:
	pair_close(&pp);
}

static void epoll_tx_wakeup(void)
{
	struct pair pp;
	pthread_t th;
	struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = 7 };
	struct epoll_event out[4];

	if (!pair_open(&pp, 2))
		return;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!EXPECT(ep >= 0, "epoll_create1: %s", ename(errno)))
		goto done;
	EXPECT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, pp.m.fd, &ev), 0, "epoll_ctl ADD");
	EXPECT_EQ(epoll_wait(ep, out, 4, 0), 1, "epoll_wait(0) on a fresh TX ring");
	struct netmap_ring *t = txr(&pp.m, 0);
	queue_pkts(t, t->num_slots, 1, 60, 0);
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC");
	EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0, "epoll_wait(0) on a full TX ring");
	struct later l = { pp.s.fd, 1, rxr(&pp.s, 0) };
	pthread_create(&th, NULL, later_fn, &l);
	double t0 = now_ms();
	int n = epoll_wait(ep, out, 4, 3000);
	double dt = now_ms() - t0;
	pthread_join(th, NULL);
	if (EXPECT(n == 1, "blocked epoll_wait(EPOLLOUT) woken by the reader: %d events after %.0f ms", n, dt))
		EXPECT(out[0].events & EPOLLOUT, "events %#x without EPOLLOUT", out[0].events);
	EXPECT(dt < 2500, "blocked epoll_wait(EPOLLOUT) took %.0f ms", dt);
	close(ep);
done:
	pair_close(&pp);
}

/* A netmap descriptor and a pipe in one epoll set: each reports its own events. */
static void epoll_mixed_set(void)
{
	struct pair pp;
	int p[2];
	struct epoll_event out[4];

	if (!pair_open(&pp, 3))
		return;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!EXPECT(ep >= 0 && pipe(p) == 0, "epoll_create1/pipe: %s", ename(errno)))
		goto done;
	struct epoll_event e1 = { .events = EPOLLIN, .data.u64 = 1 };
	struct epoll_event e2 = { .events = EPOLLIN, .data.u64 = 2 };
	EXPECT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, pp.s.fd, &e1), 0, "epoll_ctl ADD netmap");
	EXPECT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e2), 0, "epoll_ctl ADD pipe");
	EXPECT_EQ(epoll_wait(ep, out, 4, 50), 0, "epoll_wait(50 ms) with nothing ready");
	(void)!write(p[1], "x", 1);
	int n = epoll_wait(ep, out, 4, 1000);
	EXPECT(n == 1 && out[0].data.u64 == 2, "a ready pipe: %d events, first data %llu", n,
	    n > 0 ? (unsigned long long)out[0].data.u64 : 0ULL);
	queue_pkts(txr(&pp.m, 0), 1, 0, 60, 0);
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC");
	n = epoll_wait(ep, out, 4, 1000);
	int seen = 0;
	for (int i = 0; i < n; i++)
		seen |= 1 << out[i].data.u64;
	EXPECT(n == 2 && seen == 6, "pipe and netmap both ready: %d events (mask %#x)", n, seen);
	close(p[0]);
	close(p[1]);
	close(ep);
done:
	pair_close(&pp);
}

/* A dup shares the registration; it outlives closing the original. */
static void dup_shares_registration(void)
{
	struct pair pp;

	if (!pair_open(&pp, 4))
		return;
	int d = dup(pp.m.fd);
	if (!EXPECT(d >= 0, "dup: %s", ename(errno)))
		goto done;
	queue_pkts(txr(&pp.m, 0), 2, 0, 60, 0);
	EXPECT_EQ(txsync(d), 0, "NIOCTXSYNC on the dup");
	EXPECT_EQ(wait_rx(&pp.s, 2), 2, "packets sent through the dup");
	close(pp.m.fd);
	pp.m.fd = d;
	queue_pkts(txr(&pp.m, 0), 1, 2, 60, 0);
	EXPECT_EQ(txsync(d), 0, "NIOCTXSYNC on the dup after closing the original");
	EXPECT_EQ(wait_rx(&pp.s, 3), 3, "packets after closing the original");
	EXPECT_EQ(poll1(d, POLLOUT, 0) & POLLOUT, POLLOUT, "poll(POLLOUT) on the dup");
done:
	pair_close(&pp);
}

/* A forked child shares the registration and the mapping. */
static void fork_shares_registration(void)
{
	struct pair pp;

	if (!pair_open(&pp, 5))
		return;
	pid_t c = fork();
	if (c == 0) {
		struct netmap_ring *t = txr(&pp.m, 0);
		queue_pkts(t, 5, 0, 60, 0);
		_exit(txsync(pp.m.fd) == 0 && poll1(pp.m.fd, POLLOUT, 1000) > 0 ? 0 : 1);
	}
	int st = -1;
	if (!EXPECT(c > 0, "fork: %s", ename(errno)))
		goto done;
	waitpid(c, &st, 0);
	EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's sync failed (status %#x)", st);
	EXPECT_EQ(wait_rx(&pp.s, 5), 5, "packets the child sent");
	/* the child's exit closed its copy only: the registration stays */
	struct netmap_ring *t = txr(&pp.m, 0);
	EXPECT_EQ(t->head, 5, "TX head as the child left it");
	queue_pkts(t, 1, 5, 60, 0);
	EXPECT_EQ(txsync(pp.m.fd), 0, "NIOCTXSYNC in the parent after the child exited");
	EXPECT_EQ(wait_rx(&pp.s, 6), 6, "packets after the child exited");
done:
	pair_close(&pp);
}

/* Registers a pipe end on fd (already open) and closes it; 0 or the errno. */
static int register_and_close(int fd, unsigned id)
{
	struct nmreq_register r;

	reg_init(&r, NR_REG_ALL_NIC);
	int e = ctrl(fd, NETMAP_REQ_REGISTER, P('{', id), &r, NULL);
	close(fd);
	return e;
}

/* The device reached through a symbolic link, and relative to a directory. */
static void open_by_other_names(void)
{
	char link[64];

	snprintf(link, sizeof(link), "/tmp/ncfdl-link-%d", (int)getpid());
	(void)unlink(link);
	if (!EXPECT(symlink(dev_path(), link) == 0, "symlink: %s", ename(errno)))
		return;
	int fd = open(link, O_RDWR);
	if (EXPECT(fd >= 0, "open through a symlink: %s", ename(errno)))
		EXPECT_EQ(register_and_close(fd, 7), 0, "REGISTER on a descriptor opened through a symlink");
	(void)unlink(link);

	const char *dev = dev_path();
	const char *slash = strrchr(dev, '/');
	if (!EXPECT(slash && slash != dev, "device path %s has no directory", dev))
		return;
	char dir[256];
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - dev), dev);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (!EXPECT(dfd >= 0, "open %s: %s", dir, ename(errno)))
		return;
	fd = openat(dfd, slash + 1, O_RDWR);
	if (EXPECT(fd >= 0, "openat(dirfd, \"%s\"): %s", slash + 1, ename(errno)))
		EXPECT_EQ(register_and_close(fd, 8), 0, "REGISTER on a descriptor from openat");
	close(dfd);
}

/*
 * An exec'd program keeps a descriptor without FD_CLOEXEC, still registered:
 * it maps the region again and sends through the inherited registration.
 */
static const char *g_self;

static void exec_keeps_descriptor(void)
{
	struct pair pp;
	char a1[32], a2[32], a3[32];

	if (!pair_open(&pp, 6))
		return;
	EXPECT_EQ(fcntl(pp.m.fd, F_SETFD, 0), 0, "clearing FD_CLOEXEC");
	snprintf(a1, sizeof(a1), "%d", pp.m.fd);
	snprintf(a2, sizeof(a2), "%zu", pp.m.memsize);
	snprintf(a3, sizeof(a3), "%llu", (unsigned long long)pp.m.req.nr_offset);
	pid_t c = fork();
	if (c == 0) {
		execl(g_self, g_self, "--exec-child", a1, a2, a3, (char *)NULL);
		_exit(127);
	}
	int st = -1;
	if (!EXPECT(c > 0, "fork: %s", ename(errno)))
		goto done;
	waitpid(c, &st, 0);
	EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the exec'd child failed (status %#x)", st);
	EXPECT_EQ(wait_rx(&pp.s, 4), 4, "packets the exec'd child sent");
done:
	pair_close(&pp);
}

/* The exec'd side of exec_keeps_descriptor. */
static int exec_child(char **argv)
{
	int fd = atoi(argv[2]);
	size_t memsize = strtoul(argv[3], NULL, 10);
	uint64_t off = strtoull(argv[4], NULL, 10);
	char *mem = mmap(NULL, memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (mem == MAP_FAILED) {
		fprintf(stderr, "exec child: mmap: %s\n", strerror(errno));
		return 2;
	}
	struct netmap_if *nifp = NETMAP_IF(mem, off);
	struct netmap_ring *t = NETMAP_TXRING(nifp, 0);
	queue_pkts(t, 4, 0, 60, 0);
	if (ioctl(fd, NIOCTXSYNC, NULL) != 0) {
		fprintf(stderr, "exec child: NIOCTXSYNC: %s\n", strerror(errno));
		return 3;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--exec-child") == 0)
		return exec_child(argv);
	g_self = "/proc/self/exe";
	static char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		g_self = self;
	}
	suite_init("fdlife");
	RUN(epoll_rx_wakeup);
	RUN(epoll_tx_wakeup);
	RUN(epoll_mixed_set);
	RUN(dup_shares_registration);
	RUN(fork_shares_registration);
	RUN(exec_keeps_descriptor);
	RUN(open_by_other_names);
	return suite_end();
}
