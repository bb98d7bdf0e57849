/*
 * net/netmap_user.h -- netmapd compatibility header, application side.
 *
 * Address arithmetic over the shared netmap region (netmap_if -> rings ->
 * buffers) and ring index helpers.  Defining NETMAP_WITH_LIBS before the
 * include also provides the small pcap-like legacy library: nm_open(),
 * nm_close(), nm_mmap(), nm_inject(), nm_dispatch(), nm_nextpkt().
 *
 * Written for netmapd from NETMAP-ABI.md; every helper is static inline, so
 * unused ones cost nothing and raise no warnings.
 */
#ifndef NETMAPD_COMPAT_NET_NETMAP_USER_H
#define NETMAPD_COMPAT_NET_NETMAP_USER_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <ctype.h>
#include <sys/types.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <net/if.h>		/* IFNAMSIZ for applications */
#ifndef IFNAMSIZ		/* strict ISO modes hide it; same spelling as glibc */
#define IFNAMSIZ IF_NAMESIZE
#endif

#include <net/netmap.h>

#ifndef likely
#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#endif

#define NETMAP_DEVICE_NAME	"/dev/netmap"

/* ------------------------------------------------------------------ */
/* Locating objects inside the mapped region                          */

/* (type)(base + byte offset) */
#define _NETMAP_OFFSET(type, base, ofs) \
	((type)(void *)((char *)(base) + (ofs)))

/* the netmap_if at offset ofs from the start of the mapping */
#define NETMAP_IF(base, ofs)	_NETMAP_OFFSET(struct netmap_if *, base, ofs)

/* TX ring i (host TX rings follow the hardware ones) */
#define NETMAP_TXRING(nifp, i) \
	_NETMAP_OFFSET(struct netmap_ring *, nifp, (nifp)->ring_ofs[(i)])

/* RX ring i: the RX entries come after all TX entries, host ones included */
#define NETMAP_RXRING(nifp, i) \
	_NETMAP_OFFSET(struct netmap_ring *, nifp, (nifp)->ring_ofs[(i) + \
	    (nifp)->ni_tx_rings + (nifp)->ni_host_tx_rings])

/* address of buffer idx, reached through any ring of the same region */
#define NETMAP_BUF(ring, idx) \
	((char *)(ring) + (ring)->buf_ofs + (size_t)(idx) * (ring)->nr_buf_size)

/* inverse of NETMAP_BUF */
#define NETMAP_BUF_IDX(ring, buf) \
	(((char *)(buf) - ((char *)(ring) + (ring)->buf_ofs)) / \
	    (ring)->nr_buf_size)

/*
 * OFFSETS option: the low bits of slot->ptr selected by ring->offset_mask
 * hold the distance of the payload from the start of the buffer.
 */
#define NETMAP_ROFFSET(ring, slot)	((slot)->ptr & (ring)->offset_mask)

#define NETMAP_WOFFSET(ring, slot, ofs) do {				\
	uint64_t _nm_m = (ring)->offset_mask;				\
	(slot)->ptr = ((slot)->ptr & ~_nm_m) | ((uint64_t)(ofs) & _nm_m); \
} while (0)

#define NETMAP_BUF_OFFSET(ring, slot) \
	(NETMAP_BUF(ring, (slot)->buf_idx) + NETMAP_ROFFSET(ring, slot))

static inline uint64_t
nm_get_offset(const struct netmap_ring *ring, const struct netmap_slot *slot)
{
	return slot->ptr & ring->offset_mask;
}

static inline void
nm_write_offset(const struct netmap_ring *ring, struct netmap_slot *slot,
    uint64_t ofs)
{
	slot->ptr = (slot->ptr & ~ring->offset_mask) | (ofs & ring->offset_mask);
}

/* ------------------------------------------------------------------ */
/* Ring indices                                                       */

/* the slot index after i, wrapping at num_slots */
static inline uint32_t
nm_ring_next(struct netmap_ring *ring, uint32_t i)
{
	i++;
	return i == ring->num_slots ? 0 : i;
}

/* TX: non-zero while some slots handed to netmap are not yet completed */
static inline int
nm_tx_pending(struct netmap_ring *ring)
{
	return nm_ring_next(ring, ring->tail) != ring->head;
}

/* number of slots the application owns: from head up to tail */
static inline uint32_t
nm_ring_space(struct netmap_ring *ring)
{
	uint32_t n = ring->tail + ring->num_slots - ring->head;
	return n >= ring->num_slots ? n - ring->num_slots : n;
}

/*
 * Packet copy: lengths that are a multiple of 64 below 1 KiB are moved in
 * whole 8-byte words, everything else goes through memcpy.  Both buffers
 * must be large enough for the rounded length (netmap buffers are).
 */
static inline void
nm_pkt_copy(const void *src, void *dst, int len)
{
	const uint64_t *s = (const uint64_t *)src;
	uint64_t *d = (uint64_t *)dst;
	int words;

	if (len <= 0)
		return;
	if (len >= 1024 || (len & 63) != 0) {
		memcpy(dst, src, (size_t)len);
		return;
	}
	for (words = len / 8; words > 0; words--)
		*d++ = *s++;
}

/* ------------------------------------------------------------------ */
/* Diagnostics                                                        */

#ifndef ND
#include <stdio.h>
#define ND(fmt, ...)	do { } while (0)
#define D(fmt, ...) do {						\
	struct timeval _nm_tv;						\
	gettimeofday(&_nm_tv, NULL);					\
	fprintf(stderr, "%03d.%06d %s [%d] " fmt "\n",			\
	    (int)(_nm_tv.tv_sec % 1000), (int)_nm_tv.tv_usec,		\
	    __func__, __LINE__, ##__VA_ARGS__);				\
} while (0)
/* D(), at most lps times per second from this call site */
#define RD(lps, fmt, ...) do {						\
	static time_t _nm_sec;						\
	static int _nm_cnt;						\
	struct timeval _nm_now;						\
	gettimeofday(&_nm_now, NULL);					\
	if (_nm_sec != _nm_now.tv_sec) {				\
		_nm_sec = _nm_now.tv_sec;				\
		_nm_cnt = 0;						\
	}								\
	if (_nm_cnt++ < (lps))						\
		D(fmt, ##__VA_ARGS__);					\
} while (0)
#endif /* ND */

/* ------------------------------------------------------------------ */
/* Legacy pcap-like library                                           */

#ifdef NETMAP_WITH_LIBS
#ifndef HAVE_NETMAP_WITH_LIBS
#define HAVE_NETMAP_WITH_LIBS

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

struct nm_desc;

/* Per-packet metadata; starts like pcap's packet header. */
struct nm_pkthdr {
	struct timeval	ts;
	uint32_t	caplen;		/* bytes contiguous at buf */
	uint32_t	len;		/* packet length over all fragments */
	uint64_t	flags;		/* NM_MORE_PKTS */
	struct nm_desc	*d;
	struct netmap_slot *slot;
	uint8_t		*buf;
};
#define NM_MORE_PKTS	1	/* more packets follow in this dispatch */

/* Counters, shaped like pcap's. */
struct nm_stat {
	unsigned int	ps_recv;
	unsigned int	ps_drop;
	unsigned int	ps_ifdrop;
};

#define NM_ERRBUF_SIZE	512

struct nm_desc {
	struct nm_desc	*self;		/* == itself once valid */
	int		fd;
	void		*mem;		/* start of the mapped region */
	size_t		memsize;
	int		done_mmap;	/* mem was mapped by this descriptor */
	struct netmap_if *nifp;
	uint16_t	first_tx_ring, last_tx_ring, cur_tx_ring;
	uint16_t	first_rx_ring, last_rx_ring, cur_rx_ring;
	struct nmreq	req;		/* as sent to / returned by NIOCREGIF */
	struct nm_pkthdr hdr;		/* scratch header for nm_dispatch() */

	struct netmap_ring *some_ring;	/* any bound ring, for NETMAP_BUF */
	void		*buf_start;	/* first buffer of the region */
	void		*buf_end;	/* end of the region */

	int		snaplen;	/* pcap_open_live() style parameters */
	int		promisc;
	int		to_ms;
	char		*errbuf;

	uint32_t	if_flags;
	uint32_t	if_reqcap;
	uint32_t	if_curcap;

	struct nm_stat	st;
	char		msg[NM_ERRBUF_SIZE];
};

#define P2NMD(p)		((const struct nm_desc *)(p))
#define IS_NETMAP_DESC(d)	((d) != NULL && P2NMD(d)->self == P2NMD(d))
#define NETMAP_FD(d)		(P2NMD(d)->fd)

typedef void (*nm_cb_t)(unsigned char *, const struct nm_pkthdr *,
    const unsigned char *);

/*
 * nm_open() flags.  The low 16 bits are reserved; NETMAP_NO_TX_POLL and
 * NETMAP_DO_RX_POLL may be passed there and are OR-ed into nr_ringid.
 * The others copy fields from the parent descriptor (arg).
 */
enum {
	NM_OPEN_NO_MMAP =	0x040000,	/* share the parent's mapping */
	NM_OPEN_IFNAME =	0x080000,	/* nr_name, nr_ringid, nr_flags */
	NM_OPEN_ARG1 =		0x100000,
	NM_OPEN_ARG2 =		0x200000,	/* memory allocator id */
	NM_OPEN_ARG3 =		0x400000,	/* extra buffers */
	NM_OPEN_RING_CFG =	0x800000,	/* ring and slot counts */
};

#define NM_PARSE_ERRLEN	96

/* every character of [s, e) is a letter, a digit or '_' */
static inline int
nm_ident_span_(const char *s, const char *e)
{
	for (; s < e; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

/* decimal number at *pp (none means 0); advances *pp; -1 if too large */
static inline long
nm_read_num_(const char **pp)
{
	const char *p = *pp;
	long v = 0;

	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (*p - '0');
		if (v > 0xffffff)
			return -1;
		p++;
	}
	*pp = p;
	return v;
}

/*
 * Decode "netmap:NAME[MODE][/FLAGS][@MEMID]" or "valeX:PORT[...]" into req:
 * nr_name, and OR-ed into nr_flags / nr_ringid the mode, flags and ring.
 * Returns 0, or -1 with errno set and a message in err.
 */
static inline int
nm_parse_spec_(const char *spec, struct nmreq *req, char *err)
{
	const char *name, *p, *colon;
	uint32_t mode = NR_REG_ALL_NIC, flags = 0;
	long ring = 0, memid = 0, v;
	size_t len;
	const char *why;

	if (spec[0] == 'v') {
		name = spec;			/* VALE names keep the prefix */
	} else {
		name = spec + 7;		/* skip "netmap:" */
	}
	for (p = name; *p != '\0' && strchr("-*^{}/@", *p) == NULL; p++)
		;
	len = (size_t)(p - name);

	if (spec[0] == 'v') {
		colon = (const char *)memchr(name, ':', len);
		if (colon == NULL) {
			why = "VALE name without ':'";
			goto bad;
		}
		if (!nm_ident_span_(name + 4, colon) ||
		    !nm_ident_span_(colon + 1, p)) {
			why = "invalid VALE switch or port name";
			goto bad;
		}
	}
	if (len == 0) {
		why = "empty port name";
		goto bad;
	}
	if (len >= sizeof(req->nr_name)) {
		why = "port name too long";
		goto bad;
	}

	/* optional ring selector */
	switch (*p) {
	case '^':
		mode = NR_REG_SW;
		p++;
		break;
	case '*':
		mode = NR_REG_NIC_SW;
		p++;
		break;
	case '-':
	case '{':
	case '}':
		mode = *p == '-' ? NR_REG_ONE_NIC :
		    *p == '{' ? NR_REG_PIPE_MASTER : NR_REG_PIPE_SLAVE;
		p++;
		ring = nm_read_num_(&p);
		if (ring < 0 || ring >= NETMAP_RING_MASK) {
			why = "ring number out of range";
			goto bad;
		}
		break;
	default:
		break;
	}

	/* then any sequence of "/flags" and "@memid" */
	while (*p != '\0') {
		if (*p == '/') {
			p++;
			if (*p == '\0') {
				why = "'/' without flags";
				goto bad;
			}
			for (; *p != '\0' && *p != '@'; p++) {
				switch (*p) {
				case 'x': flags |= NR_EXCLUSIVE; break;
				case 'z': flags |= NR_ZCOPY_MON; break;
				case 't': flags |= NR_MONITOR_TX; break;
				case 'r': flags |= NR_MONITOR_RX; break;
				case 'R': flags |= NR_RX_RINGS_ONLY; break;
				case 'T': flags |= NR_TX_RINGS_ONLY; break;
				default:
					why = "unknown flag";
					goto bad;
				}
			}
		} else if (*p == '@') {
			p++;
			if (memid != 0) {
				why = "memory id given twice";
				goto bad;
			}
			v = nm_read_num_(&p);
			if (v <= 0 || v > 0xffff) {
				why = "memory id must be a number > 0";
				goto bad;
			}
			memid = v;
		} else {
			why = "unexpected character after the port name";
			goto bad;
		}
	}

	memcpy(req->nr_name, name, len);
	req->nr_name[len] = '\0';
	req->nr_flags |= mode | flags;
	req->nr_ringid |= (uint16_t)ring;
	req->nr_arg2 = (uint16_t)memid;
	return 0;

bad:
	if (err != NULL)
		snprintf(err, NM_PARSE_ERRLEN, "%s", why);
	errno = EINVAL;
	return -1;
}

/*
 * Make d->mem point at the region: reuse the parent's mapping when it maps
 * the same allocator, otherwise mmap() d->fd.  Then locate nifp & co.
 */
static inline int
nm_mmap(struct nm_desc *d, const struct nm_desc *parent)
{
	struct netmap_ring *r;
	uint32_t host_tx;

	if (d->done_mmap)
		return 0;
	if (IS_NETMAP_DESC(parent) && parent->mem != NULL &&
	    parent->req.nr_arg2 == d->req.nr_arg2) {
		d->mem = parent->mem;
		d->memsize = parent->memsize;
	} else {
		void *m = mmap(NULL, d->req.nr_memsize, PROT_READ | PROT_WRITE,
		    MAP_SHARED, d->fd, 0);
		if (m == MAP_FAILED)
			return EINVAL;
		d->mem = m;
		d->memsize = d->req.nr_memsize;
		d->done_mmap = 1;
	}

	d->nifp = NETMAP_IF(d->mem, d->req.nr_offset);
	/* first bound ring: RX if there is one, else TX */
	host_tx = d->nifp->ni_host_tx_rings;
	if (d->nifp->ring_ofs[d->first_rx_ring + d->nifp->ni_tx_rings +
	    host_tx] != 0)
		r = NETMAP_RXRING(d->nifp, d->first_rx_ring);
	else
		r = NETMAP_TXRING(d->nifp, d->first_tx_ring);
	d->some_ring = r;
	d->buf_start = NETMAP_BUF(r, 0);
	d->buf_end = (char *)d->mem + d->memsize;
	return 0;
}

/* Undo nm_open(): unmap (if this descriptor mapped), close, free. */
static inline int
nm_close(struct nm_desc *d)
{
	if (d == NULL || d->self != d)
		return EINVAL;
	if (d->done_mmap && d->mem != NULL)
		munmap(d->mem, d->memsize);
	if (d->fd >= 0)
		close(d->fd);
	memset(d, 0, sizeof(*d));
	free(d);
	return 0;
}

/* Ring ranges bound by the registration mode (legacy struct nmreq). */
static inline void
nm_set_ring_range_(struct nm_desc *d)
{
	const struct nmreq *q = &d->req;
	uint16_t ring = q->nr_ringid & NETMAP_RING_MASK;
	uint16_t htx = 1, hrx = 1;

	if (d->nifp != NULL) {
		if (d->nifp->ni_host_tx_rings > 0)
			htx = (uint16_t)d->nifp->ni_host_tx_rings;
		if (d->nifp->ni_host_rx_rings > 0)
			hrx = (uint16_t)d->nifp->ni_host_rx_rings;
	}
	switch (q->nr_flags & NR_REG_MASK) {
	case NR_REG_ALL_NIC:
		d->first_tx_ring = 0;
		d->last_tx_ring = q->nr_tx_rings ? q->nr_tx_rings - 1 : 0;
		d->first_rx_ring = 0;
		d->last_rx_ring = q->nr_rx_rings ? q->nr_rx_rings - 1 : 0;
		break;
	case NR_REG_SW:
		d->first_tx_ring = q->nr_tx_rings;
		d->last_tx_ring = q->nr_tx_rings + htx - 1;
		d->first_rx_ring = q->nr_rx_rings;
		d->last_rx_ring = q->nr_rx_rings + hrx - 1;
		break;
	case NR_REG_NIC_SW:
		d->first_tx_ring = 0;
		d->last_tx_ring = q->nr_tx_rings + htx - 1;
		d->first_rx_ring = 0;
		d->last_rx_ring = q->nr_rx_rings + hrx - 1;
		break;
	case NR_REG_ONE_NIC:
		d->first_tx_ring = d->last_tx_ring = ring;
		d->first_rx_ring = d->last_rx_ring = ring;
		break;
	case NR_REG_ONE_SW:
		d->first_tx_ring = d->last_tx_ring = q->nr_tx_rings + ring;
		d->first_rx_ring = d->last_rx_ring = q->nr_rx_rings + ring;
		break;
	default:	/* pipe ends, null ports: a single ring pair */
		d->first_tx_ring = d->last_tx_ring = 0;
		d->first_rx_ring = d->last_rx_ring = 0;
		break;
	}
}

/*
 * Open a port by name ("netmap:..." or "vale..."; anything else returns
 * NULL with errno 0).  req, if given, seeds the struct nmreq; flags and arg
 * (a parent descriptor) control what is inherited, see NM_OPEN_*.
 */
static inline struct nm_desc *
nm_open(const char *ifname, const struct nmreq *req, uint64_t flags,
    const struct nm_desc *arg)
{
	const struct nm_desc *parent = IS_NETMAP_DESC(arg) ? arg : NULL;
	struct nm_desc *d;
	char err[NM_PARSE_ERRLEN] = "";
	int saved;

	if (strncmp(ifname, "netmap:", 7) != 0 &&
	    strncmp(ifname, NM_BDG_NAME, strlen(NM_BDG_NAME)) != 0) {
		errno = 0;
		return NULL;
	}

	d = (struct nm_desc *)calloc(1, sizeof(*d));
	if (d == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	d->self = d;
	d->fd = -1;
	if (req != NULL)
		d->req = *req;

	if (!(flags & NM_OPEN_IFNAME) && nm_parse_spec_(ifname, &d->req, err) < 0)
		goto fail;

	d->req.nr_version = NETMAP_API;
	d->req.nr_ringid &= NETMAP_RING_MASK;

	if (parent != NULL) {
		const struct nmreq *pq = &parent->req;

		if (flags & NM_OPEN_ARG1)
			d->req.nr_arg1 = pq->nr_arg1;
		if (flags & NM_OPEN_ARG2)
			d->req.nr_arg2 = pq->nr_arg2;
		if (flags & NM_OPEN_ARG3)
			d->req.nr_arg3 = pq->nr_arg3;
		if (flags & NM_OPEN_RING_CFG) {
			d->req.nr_tx_slots = pq->nr_tx_slots;
			d->req.nr_rx_slots = pq->nr_rx_slots;
			d->req.nr_tx_rings = pq->nr_tx_rings;
			d->req.nr_rx_rings = pq->nr_rx_rings;
		}
		if (flags & NM_OPEN_IFNAME) {
			memcpy(d->req.nr_name, pq->nr_name, sizeof(d->req.nr_name));
			d->req.nr_ringid = pq->nr_ringid;
			d->req.nr_flags = pq->nr_flags;
		}
	}
	d->req.nr_ringid |= (uint16_t)(flags & (NETMAP_NO_TX_POLL | NETMAP_DO_RX_POLL));

	d->fd = open(NETMAP_DEVICE_NAME, O_RDWR);
	if (d->fd < 0) {
		snprintf(err, sizeof(err), "cannot open %s: %s",
		    NETMAP_DEVICE_NAME, strerror(errno));
		goto fail;
	}
	if (ioctl(d->fd, NIOCREGIF, &d->req) != 0) {
		snprintf(err, sizeof(err), "NIOCREGIF: %s", strerror(errno));
		goto fail;
	}

	nm_set_ring_range_(d);
	/* with a parent the mapping is always set up (shared when possible) */
	if (!(flags & NM_OPEN_NO_MMAP) || parent != NULL) {
		if (nm_mmap(d, parent) != 0) {
			snprintf(err, sizeof(err), "mmap: %s", strerror(errno));
			goto fail;
		}
		nm_set_ring_range_(d);	/* now with the real host ring counts */
	}
	d->cur_tx_ring = d->first_tx_ring;
	d->cur_rx_ring = d->first_rx_ring;
	return d;

fail:
	saved = errno != 0 ? errno : EINVAL;
	if (err[0] != '\0')
		fprintf(stderr, "nm_open(%s): %s\n", ifname, err);
	nm_close(d);
	errno = saved;
	return NULL;
}

/*
 * Queue one packet on the first TX ring (round robin from cur_tx_ring) with
 * room for it; packets larger than a buffer use NS_MOREFRAG chains.  Returns
 * size, or 0 when no ring has room.  The caller flushes (poll/NIOCTXSYNC).
 */
static inline int
nm_inject(struct nm_desc *d, const void *buf, size_t size)
{
	unsigned int nrings, k;
	uint16_t ri = d->cur_tx_ring;

	if (d->nifp == NULL)
		return 0;
	nrings = (unsigned int)(d->last_tx_ring - d->first_tx_ring) + 1;
	for (k = 0; k < nrings; k++, ri++) {
		struct netmap_ring *ring;
		const char *src = (const char *)buf;
		size_t left = size, bsz, need, room;
		uint32_t i;

		if (ri > d->last_tx_ring || ri < d->first_tx_ring)
			ri = d->first_tx_ring;
		ring = NETMAP_TXRING(d->nifp, ri);
		bsz = ring->nr_buf_size;
		need = size == 0 ? 1 : (size + bsz - 1) / bsz;
		room = (ring->tail + ring->num_slots - ring->cur) % ring->num_slots;
		if (room < need)
			continue;

		for (i = ring->cur;; i = nm_ring_next(ring, i)) {
			struct netmap_slot *s = &ring->slot[i];
			size_t chunk = left < bsz ? left : bsz;

			memcpy(NETMAP_BUF(ring, s->buf_idx), src, chunk);
			s->len = (uint16_t)chunk;
			src += chunk;
			left -= chunk;
			if (left == 0) {
				s->flags = 0;
				break;
			}
			s->flags = NS_MOREFRAG;
		}
		ring->cur = ring->head = nm_ring_next(ring, i);
		d->cur_tx_ring = ri;
		return (int)size;
	}
	return 0;
}

/*
 * Take the packet (possibly several NS_MOREFRAG slots) at ring->cur, fill
 * len/caplen/ts/slot/buf of h, and release its slots.  caplen covers the
 * bytes that are contiguous in memory from the first buffer on.
 */
static inline void
nm_take_packet_(struct netmap_ring *ring, struct nm_pkthdr *h)
{
	uint32_t i = ring->cur;
	struct netmap_slot *s = &ring->slot[i];
	char *expect;
	int contiguous = 1;

	h->slot = s;
	h->buf = (uint8_t *)NETMAP_BUF(ring, s->buf_idx);
	h->len = h->caplen = s->len;
	expect = (char *)h->buf + ring->nr_buf_size;
	while (s->flags & NS_MOREFRAG) {
		int full = s->len == ring->nr_buf_size;

		i = nm_ring_next(ring, i);
		if (i == ring->tail)
			break;		/* incomplete chain: stop at tail */
		s = &ring->slot[i];
		h->len += s->len;
		if (contiguous && full && NETMAP_BUF(ring, s->buf_idx) == expect) {
			h->caplen += s->len;
			expect += ring->nr_buf_size;
		} else {
			contiguous = 0;
		}
	}
	h->ts = ring->ts;
	ring->cur = ring->head = nm_ring_next(ring, i);
}

/*
 * Deliver up to cnt packets (cnt <= 0: all available) to cb, like
 * pcap_dispatch().  Every header but the last carries NM_MORE_PKTS.
 * The RX slots are released to netmap at the next sync.
 */
static inline int
nm_dispatch(struct nm_desc *d, int cnt, nm_cb_t cb, unsigned char *arg)
{
	unsigned int nrings, k;
	uint16_t ri = d->cur_rx_ring;
	int got = 0, pending = 0;

	if (d->nifp == NULL)
		return 0;
	d->hdr.d = d;
	d->hdr.flags = NM_MORE_PKTS;
	nrings = (unsigned int)(d->last_rx_ring - d->first_rx_ring) + 1;
	for (k = 0; k < nrings && (cnt <= 0 || got < cnt); k++, ri++) {
		struct netmap_ring *ring;

		if (ri > d->last_rx_ring || ri < d->first_rx_ring)
			ri = d->first_rx_ring;
		ring = NETMAP_RXRING(d->nifp, ri);
		while (ring->cur != ring->tail && (cnt <= 0 || got < cnt)) {
			if (pending)	/* a later packet exists: flag stays */
				cb(arg, &d->hdr, d->hdr.buf);
			d->cur_rx_ring = ri;
			nm_take_packet_(ring, &d->hdr);
			pending = 1;
			got++;
		}
	}
	if (pending) {
		d->hdr.flags = 0;
		cb(arg, &d->hdr, d->hdr.buf);
	}
	return got;
}

/*
 * Return the next received packet (buffer address) and fill ts, len and
 * caplen of hdr, or NULL when every bound RX ring is empty.
 */
static inline unsigned char *
nm_nextpkt(struct nm_desc *d, struct nm_pkthdr *hdr)
{
	unsigned int nrings, k;
	uint16_t ri = d->cur_rx_ring;

	if (d->nifp == NULL)
		return NULL;
	nrings = (unsigned int)(d->last_rx_ring - d->first_rx_ring) + 1;
	for (k = 0; k < nrings; k++, ri++) {
		struct netmap_ring *ring;
		struct netmap_slot *s;

		if (ri > d->last_rx_ring || ri < d->first_rx_ring)
			ri = d->first_rx_ring;
		ring = NETMAP_RXRING(d->nifp, ri);
		if (ring->cur == ring->tail)
			continue;
		s = &ring->slot[ring->cur];
		hdr->ts = ring->ts;
		hdr->len = hdr->caplen = s->len;
		ring->cur = ring->head = nm_ring_next(ring, ring->cur);
		d->cur_rx_ring = ri;
		return (unsigned char *)NETMAP_BUF(ring, s->buf_idx);
	}
	return NULL;
}

#endif /* HAVE_NETMAP_WITH_LIBS */
#endif /* NETMAP_WITH_LIBS */

#endif /* NETMAPD_COMPAT_NET_NETMAP_USER_H */
