/* compile.c -- both headers (with the legacy library) must build cleanly
 * with -Wall -Wextra -Werror in strict and GNU modes. */
#define NETMAP_WITH_LIBS
#include <net/netmap.h>
#include <net/netmap_user.h>
#include <net/netmap.h>		/* include guards */

static void
cb(unsigned char *arg, const struct nm_pkthdr *h, const unsigned char *buf)
{
	(void)arg; (void)h; (void)buf;
}

int
main(int argc, char **argv)
{
	struct nmreq_header hdr;
	struct nmreq_register reg;
	struct nmreq_opt_offsets off;
	struct nm_desc *d;

	memset(&hdr, 0, sizeof(hdr));
	memset(&reg, 0, sizeof(reg));
	memset(&off, 0, sizeof(off));
	hdr.nr_version = NETMAP_API;
	hdr.nr_reqtype = NETMAP_REQ_REGISTER;
	hdr.nr_body = (uintptr_t)&reg;
	hdr.nr_options = (uintptr_t)&off;
	off.nro_opt.nro_reqtype = NETMAP_REQ_OPT_OFFSETS;
	reg.nr_mode = NR_REG_ALL_NIC;
	reg.nr_flags = NR_EXCLUSIVE;
	if (argc > 5) {	/* never taken: only has to compile and link */
		d = nm_open(argv[1], NULL, 0, NULL);
		if (d != NULL) {
			struct netmap_ring *r = NETMAP_RXRING(d->nifp, 0);
			struct nm_pkthdr h;
			nm_inject(d, argv[2], 10);
			nm_dispatch(d, 1, cb, NULL);
			(void)nm_nextpkt(d, &h);
			(void)nm_ring_space(r);
			(void)nm_tx_pending(NETMAP_TXRING(d->nifp, 0));
			nm_pkt_copy(argv[3], NETMAP_BUF(r, r->slot[0].buf_idx), 64);
			(void)NETMAP_BUF_OFFSET(r, &r->slot[0]);
			ioctl(NETMAP_FD(d), NIOCCTRL, &hdr);
			nm_close(d);
		}
	}
	return hdr.nr_reqtype == NETMAP_REQ_REGISTER ? 0 : 1;
}
