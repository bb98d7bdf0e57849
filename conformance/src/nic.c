/*
 * nic -- a host interface (veth) through /dev/netmap (NETMAP-ABI.md §10.1):
 * PORT_INFO_GET, frames sent through netmap arriving at the peer, frames
 * sent by the peer arriving in the netmap RX ring.  Needs --nic IF (and
 * --peer PEER for the traffic checks).
 */
#include "common.h"
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <time.h>

#define ETYPE 0x88b5	/* local experimental ethertype */
#define FLEN 120
#define NFRAMES 3

static const char *g_nic, *g_peer;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void mk_frame(char *f, unsigned seq)
{
	memset(f, 0xff, 6);				/* broadcast */
	memcpy(f + 6, "\x02\x00\x00\x6e\x6d\x63", 6);
	f[12] = (char)(ETYPE >> 8);
	f[13] = (char)(ETYPE & 0xff);
	fill_pat(f + 14, seq, FLEN - 14);
}

static int is_ours(const char *f, unsigned len, unsigned *seq)
{
	if (len < FLEN || (unsigned char)f[12] != (ETYPE >> 8) || (unsigned char)f[13] != (ETYPE & 0xff))
		return 0;
	for (unsigned s = 0; s < 1000; s++)
		if (check_pat(f + 14, s, FLEN - 14)) {
			*seq = s;
			return 1;
		}
	return 0;
}

static int raw_socket(const char *ifname)
{
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETYPE));
	if (!EXPECT(s >= 0, "AF_PACKET socket: %s", strerror(errno)))
		return -1;
	struct sockaddr_ll sa;
	memset(&sa, 0, sizeof(sa));
	sa.sll_family = AF_PACKET;
	sa.sll_protocol = htons(ETYPE);
	sa.sll_ifindex = (int)if_nametoindex(ifname);
	if (!EXPECT(sa.sll_ifindex > 0, "no interface %s", ifname) ||
	    !EXPECT(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind to %s: %s", ifname, strerror(errno))) {
		close(s);
		return -1;
	}
	return s;
}

static void port_info(void)
{
	int fd = nm_dev_open();
	struct nmreq_port_info_get pi;

	if (fd < 0)
		return;
	memset(&pi, 0, sizeof(pi));
	if (EXPECT_ERR(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, g_nic, &pi, NULL), 0, "PORT_INFO_GET")) {
		EXPECT_NE(pi.nr_memsize, 0, "nr_memsize");
		EXPECT_NE(pi.nr_mem_id, 0, "nr_mem_id");
		EXPECT_NE(pi.nr_tx_slots, 0, "nr_tx_slots");
		EXPECT_NE(pi.nr_rx_slots, 0, "nr_rx_slots");
		EXPECT_NE(pi.nr_tx_rings, 0, "nr_tx_rings");
		EXPECT_NE(pi.nr_rx_rings, 0, "nr_rx_rings");
	}
	struct nmreq_pools_info pl;
	memset(&pl, 0, sizeof(pl));
	if (EXPECT_ERR(ctrl(fd, NETMAP_REQ_POOLS_INFO_GET, g_nic, &pl, NULL), 0, "POOLS_INFO_GET")) {
		EXPECT_EQ(pl.nr_memsize, pi.nr_memsize, "pools nr_memsize vs port info");
		EXPECT_NE(pl.nr_buf_pool_objtotal, 0, "nr_buf_pool_objtotal");
	}
	close(fd);
}

static void send_to_peer(void)
{
	struct port p;
	char f[FLEN];
	int s = raw_socket(g_peer);

	if (s < 0)
		return;
	if (!port_open_ok(&p, g_nic, NULL))
		goto out;
	usleep(100 * 1000);
	struct netmap_ring *t = txr(&p, 0);
	for (unsigned i = 0; i < NFRAMES; i++) {
		if (!EXPECT(t->head != t->tail, "TX ring full"))
			goto out2;
		struct netmap_slot *sl = &t->slot[t->head];
		mk_frame(NETMAP_BUF(t, sl->buf_idx), i);
		sl->len = FLEN;
		sl->flags = 0;
		t->head = t->cur = rnext(t, t->head);
	}
	EXPECT_EQ(txsync(p.fd), 0, "NIOCTXSYNC");
	unsigned got = 0, seen[NFRAMES] = { 0 };
	double t0 = now_ms();
	while (got < NFRAMES && now_ms() - t0 < 3000) {
		struct pollfd pfd = { .fd = s, .events = POLLIN };
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		ssize_t n = recv(s, f, sizeof(f), MSG_DONTWAIT);
		unsigned seq;
		if (n > 0 && is_ours(f, (unsigned)n, &seq) && seq < NFRAMES && !seen[seq]) {
			seen[seq] = 1;
			got++;
		}
	}
	EXPECT_EQ(got, NFRAMES, "frames received by the peer");
	/* every TX slot is eventually completed (pkt-gen waits for this) */
	t0 = now_ms();
	while (rnext(t, t->tail) != t->head && now_ms() - t0 < 2000) {
		(void)txsync(p.fd);
		usleep(1000);
	}
	EXPECT_EQ(rnext(t, t->tail), t->head, "TX completion: next(tail) vs head");
out2:
	port_close(&p);
out:
	close(s);
}

static void receive_from_peer(void)
{
	struct port p;
	char f[FLEN];
	int s = raw_socket(g_peer);

	if (s < 0)
		return;
	if (!port_open_ok(&p, g_nic, NULL))
		goto out;
	usleep(100 * 1000);
	struct sockaddr_ll sa;
	memset(&sa, 0, sizeof(sa));
	sa.sll_family = AF_PACKET;
	sa.sll_protocol = htons(ETYPE);
	sa.sll_ifindex = (int)if_nametoindex(g_peer);
	sa.sll_halen = 6;
	memset(sa.sll_addr, 0xff, 6);
	for (unsigned i = 0; i < NFRAMES; i++) {
		mk_frame(f, 10 + i);
		ssize_t n = sendto(s, f, FLEN, 0, (struct sockaddr *)&sa, sizeof(sa));
		EXPECT_EQ(n, FLEN, "sendto on the peer");
	}
	unsigned got = 0, seen[NFRAMES] = { 0 };
	double t0 = now_ms();
	while (got < NFRAMES && now_ms() - t0 < 3000) {
		int rv = poll1(p.fd, POLLIN, 200);
		if (!EXPECT(rv >= 0 && !(rv & POLLERR), "poll(POLLIN): revents %#x", rv))
			break;
		for (unsigned ri = 0; ri < p.nifp->ni_rx_rings; ri++) {
			struct netmap_ring *r = rxr(&p, ri);
			while (r->head != r->tail) {
				struct netmap_slot *sl = &r->slot[r->head];
				unsigned seq;
				if (is_ours(NETMAP_BUF(r, sl->buf_idx), sl->len, &seq) && seq >= 10 &&
				    seq < 10 + NFRAMES && !seen[seq - 10]) {
					seen[seq - 10] = 1;
					got++;
					EXPECT_EQ(sl->len, FLEN, "received frame length");
				}
				r->head = r->cur = rnext(r, r->head);
			}
		}
	}
	EXPECT_EQ(got, NFRAMES, "frames from the peer in the netmap RX ring");
	port_close(&p);
out:
	close(s);
}

int main(int argc, char **argv)
{
	suite_init("nic");
	parse_nic_args(argc, argv, &g_nic, &g_peer);

	if (!g_nic) {
		skip_check("port_info", "not run (no --nic given)");
		skip_check("send_to_peer", "not run (no --nic given)");
		skip_check("receive_from_peer", "not run (no --nic given)");
		return 0;
	}
	RUN(port_info);
	if (g_peer) {
		RUN(send_to_peer);
		RUN(receive_from_peer);
	} else {
		skip_check("send_to_peer", "not run (no --peer given)");
		skip_check("receive_from_peer", "not run (no --peer given)");
	}
	return suite_end();
}
