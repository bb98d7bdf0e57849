/*
 * net/netmap.h -- netmapd compatibility header.
 *
 * Independent description of the userspace-visible netmap ABI, API version 14,
 * as served by netmapd on x86_64 Linux.  Layouts, constants and ioctl numbers
 * follow NETMAP-ABI.md (sections 1-4) of the netmapd project.  Programs written
 * for netmap's own headers compile against this file unchanged.
 *
 * The control path uses NIOCCTRL with a struct nmreq_header that points to a
 * request body and to a chain of options; the legacy path (NIOCREGIF,
 * NIOCGINFO) uses the fixed 60-byte struct nmreq.  After registration the
 * application mmap()s the shared region and finds its struct netmap_if at the
 * returned offset; the netmap_if lists every ring by its distance from itself.
 */
#ifndef NETMAPD_COMPAT_NET_NETMAP_H
#define NETMAPD_COMPAT_NET_NETMAP_H

#include <stdint.h>
#include <sys/types.h>		/* ssize_t */
#include <sys/time.h>		/* struct timeval */
#include <linux/ioctl.h>	/* _IO, _IOWR */

/* ------------------------------------------------------------------ */
/* Versions and sizes                                                 */

#define NETMAP_API		14	/* version spoken by these headers */
#define NETMAP_MIN_API		14	/* oldest version accepted */
#define NETMAP_MAX_API		15	/* newest version accepted by NIOCCTRL */

#define NM_CACHE_ALIGN		128
#define NETMAP_REQ_MAXSIZE	4096	/* body plus options staged per request */
#define NETMAP_REQ_IFNAMSIZ	64	/* nmreq_header.nr_name */
#define NM_IFRDATA_LEN		256	/* nm_ifreq payload */
#define NETMAP_MAX_FRAGS	64	/* most slots one packet may span */

/* Legacy names (struct nmreq, struct netmap_if) are 16 bytes, like IFNAMSIZ. */
#define NM_LEGACY_NAMSIZ	16

/* Port names starting with this prefix live on a VALE switch. */
#define NM_BDG_NAME		"vale"

/* ------------------------------------------------------------------ */
/* Shared memory objects                                              */

/* One descriptor of a ring: which buffer, how many bytes, and flags. */
struct netmap_slot {
	uint32_t buf_idx;	/* index of the buffer in the pool */
	uint16_t len;		/* valid bytes in the buffer */
	uint16_t flags;		/* NS_* below */
	uint64_t ptr;		/* NS_INDIRECT address, or offset bits */
};

/* slot flags */
#define NS_BUF_CHANGED		0x0001	/* buf_idx was replaced */
#define NS_REPORT		0x0002	/* ask for a TX completion report */
#define NS_FORWARD		0x0004	/* pass to the other side (NR_FORWARD) */
#define NS_NO_LEARN		0x0008	/* VALE: skip source MAC learning */
#define NS_INDIRECT		0x0010	/* VALE TX: payload is at ptr */
#define NS_MOREFRAG		0x0020	/* the packet continues in the next slot */
#define NS_TXMON		0x0040	/* monitor: copy seen on a TX ring */
#define NS_PORT_SHIFT		8
#define NS_PORT_MASK		(0xff << NS_PORT_SHIFT)

/* VALE RX rings: fragment count kept in the high byte of the flags */
#define NS_RFRAGS(s)		((((s)->flags) >> NS_PORT_SHIFT) & 0xff)

/*
 * Ring header.  Slots start right after it (offset 256).  The user advances
 * head and cur; the kernel side publishes tail.  Fields marked const are
 * written only by the netmap side.
 */
struct netmap_ring {
	const int64_t	buf_ofs;	/* buffer 0 is at (char *)ring + buf_ofs */
	const uint32_t	num_slots;
	const uint32_t	nr_buf_size;
	const uint16_t	ringid;
	const uint16_t	dir;		/* as stored by netmap: 1 = TX, 0 = RX */

	uint32_t	head;		/* first slot owned by the application */
	uint32_t	cur;		/* wake-up point */
	const uint32_t	tail;		/* first slot owned by netmap */

	uint32_t	flags;		/* NR_TIMESTAMP, NR_FORWARD */

	const struct timeval ts;	/* time of the last rxsync */

	const uint64_t	offset_mask;	/* bits of slot.ptr holding an offset */
	const uint64_t	buf_align;

	/* opaque scratch area, on its own cache lines */
	char		sem[128] __attribute__((__aligned__(NM_CACHE_ALIGN)));

	struct netmap_slot slot[];	/* num_slots entries */
};

/* True when the application owns no slot (nothing to receive / no room). */
static inline int
nm_ring_empty(struct netmap_ring *ring)
{
	return ring->head == ring->tail;
}

/* ring flags */
#define NR_TIMESTAMP		0x0002	/* refresh ts on every sync */
#define NR_FORWARD		0x0004	/* honour NS_FORWARD */

/*
 * Per-registration descriptor of a port.  ring_ofs[] holds, relative to the
 * netmap_if itself, first the hardware TX rings, then the host TX rings,
 * then the hardware RX rings, then the host RX rings.  A zero entry means the
 * ring is not bound to this file descriptor.
 */
struct netmap_if {
	char		ni_name[NM_LEGACY_NAMSIZ];
	const uint32_t	ni_version;
	const uint32_t	ni_flags;	/* NI_PRIV_MEM */
	const uint32_t	ni_tx_rings;	/* hardware TX rings */
	const uint32_t	ni_rx_rings;	/* hardware RX rings */
	uint32_t	ni_bufs_head;	/* list of extra buffers */
	const uint32_t	ni_host_tx_rings;
	const uint32_t	ni_host_rx_rings;
	uint32_t	ni_spare1[3];
	const ssize_t	ring_ofs[];
};

#define NI_PRIV_MEM		0x1	/* region is private to this port */

/* ------------------------------------------------------------------ */
/* NIOCCTRL: header, options and request bodies                       */

struct nmreq_header {
	uint16_t	nr_version;	/* NETMAP_API */
	uint16_t	nr_reqtype;	/* NETMAP_REQ_* */
	uint32_t	nr_reserved;	/* must be zero */
	char		nr_name[NETMAP_REQ_IFNAMSIZ];
	uint64_t	nr_options;	/* address of the first nmreq_option */
	uint64_t	nr_body;	/* address of the request body */
};

enum {
	NETMAP_REQ_REGISTER = 1,		/* struct nmreq_register */
	NETMAP_REQ_PORT_INFO_GET = 2,		/* struct nmreq_port_info_get */
	NETMAP_REQ_VALE_ATTACH = 3,		/* struct nmreq_vale_attach */
	NETMAP_REQ_VALE_DETACH = 4,		/* struct nmreq_vale_detach */
	NETMAP_REQ_VALE_LIST = 5,		/* struct nmreq_vale_list */
	NETMAP_REQ_PORT_HDR_SET = 6,		/* struct nmreq_port_hdr */
	NETMAP_REQ_PORT_HDR_GET = 7,		/* struct nmreq_port_hdr */
	NETMAP_REQ_VALE_NEWIF = 8,		/* struct nmreq_vale_newif */
	NETMAP_REQ_VALE_DELIF = 9,		/* no body */
	NETMAP_REQ_VALE_POLLING_ENABLE = 10,	/* struct nmreq_vale_polling */
	NETMAP_REQ_VALE_POLLING_DISABLE = 11,	/* struct nmreq_vale_polling */
	NETMAP_REQ_POOLS_INFO_GET = 12,		/* struct nmreq_pools_info */
	NETMAP_REQ_SYNC_KLOOP_START = 13,	/* struct nmreq_sync_kloop_start */
	NETMAP_REQ_SYNC_KLOOP_STOP = 14,	/* no body */
	NETMAP_REQ_CSB_ENABLE = 15,		/* no body */
};

enum {
	NETMAP_REQ_OPT_EXTMEM = 1,		/* struct nmreq_opt_extmem */
	NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS = 2,	/* struct nmreq_opt_sync_kloop_eventfds */
	NETMAP_REQ_OPT_CSB = 3,			/* struct nmreq_opt_csb */
	NETMAP_REQ_OPT_SYNC_KLOOP_MODE = 4,	/* struct nmreq_opt_sync_kloop_mode */
	NETMAP_REQ_OPT_OFFSETS = 5,		/* struct nmreq_opt_offsets */
	NETMAP_REQ_OPT_MAX = 6,			/* first unknown option type */
};

/* Common head of every option; options form a singly linked list. */
struct nmreq_option {
	uint64_t	nro_next;	/* address of the next option, or 0 */
	uint32_t	nro_reqtype;	/* NETMAP_REQ_OPT_* */
	uint32_t	nro_status;	/* out: 0 or an errno value */
	uint64_t	nro_size;	/* whole option size (variable ones) */
};

/* NETMAP_REQ_REGISTER */
struct nmreq_register {
	uint64_t	nr_offset;	/* out: netmap_if position in the region */
	uint64_t	nr_memsize;	/* out: region size */
	uint32_t	nr_tx_slots;
	uint32_t	nr_rx_slots;
	uint16_t	nr_tx_rings;
	uint16_t	nr_rx_rings;
	uint16_t	nr_host_tx_rings;
	uint16_t	nr_host_rx_rings;
	uint16_t	nr_mem_id;
	uint16_t	nr_ringid;	/* ring index for the ONE_* modes */
	uint32_t	nr_mode;	/* NR_REG_* */
	uint32_t	nr_extra_bufs;
	/* 4 bytes of padding precede the 64-bit flags */
	uint64_t	nr_flags;	/* NR_* flags below */
};

/* registration modes (also the low nibble of the legacy nr_flags) */
enum {
	NR_REG_DEFAULT = 0,
	NR_REG_ALL_NIC = 1,
	NR_REG_SW = 2,
	NR_REG_NIC_SW = 3,
	NR_REG_ONE_NIC = 4,
	NR_REG_PIPE_MASTER = 5,	/* legacy only: "name{N" */
	NR_REG_PIPE_SLAVE = 6,	/* legacy only: "name}N" */
	NR_REG_NULL = 7,
	NR_REG_ONE_SW = 8,
};
#define NR_REG_MASK		0xf

/* registration flags */
#define NR_MONITOR_TX		0x100
#define NR_MONITOR_RX		0x200
#define NR_ZCOPY_MON		0x400
#define NR_EXCLUSIVE		0x800
#define NR_RX_RINGS_ONLY	0x2000
#define NR_TX_RINGS_ONLY	0x4000
#define NR_ACCEPT_VNET_HDR	0x8000
#define NR_DO_RX_POLL		0x10000
#define NR_NO_TX_POLL		0x20000

/* NETMAP_REQ_PORT_INFO_GET */
struct nmreq_port_info_get {
	uint64_t	nr_memsize;
	uint32_t	nr_tx_slots;
	uint32_t	nr_rx_slots;
	uint16_t	nr_tx_rings;
	uint16_t	nr_rx_rings;
	uint16_t	nr_host_tx_rings;
	uint16_t	nr_host_rx_rings;
	uint16_t	nr_mem_id;
	uint16_t	pad[3];
};

/* NETMAP_REQ_VALE_ATTACH */
struct nmreq_vale_attach {
	struct nmreq_register reg;
	uint32_t	port_index;	/* out */
	uint32_t	pad1;
};

/* NETMAP_REQ_VALE_DETACH */
struct nmreq_vale_detach {
	uint32_t	port_index;	/* out */
	uint32_t	pad1;
};

/* NETMAP_REQ_VALE_LIST */
struct nmreq_vale_list {
	uint16_t	nr_bridge_idx;
	uint16_t	pad1;
	uint32_t	nr_port_idx;
};

/* NETMAP_REQ_PORT_HDR_SET / NETMAP_REQ_PORT_HDR_GET */
struct nmreq_port_hdr {
	uint32_t	nr_hdr_len;
	uint32_t	pad1;
};

/* NETMAP_REQ_VALE_NEWIF */
struct nmreq_vale_newif {
	uint32_t	nr_tx_slots;
	uint32_t	nr_rx_slots;
	uint16_t	nr_tx_rings;
	uint16_t	nr_rx_rings;
	uint16_t	nr_mem_id;
	uint16_t	pad1;
};

/* NETMAP_REQ_VALE_POLLING_ENABLE / _DISABLE */
struct nmreq_vale_polling {
	uint32_t	nr_mode;	/* NETMAP_POLLING_MODE_* */
	uint32_t	nr_first_cpu_id;
	uint32_t	nr_num_polling_cpus;
	uint32_t	pad1;
};
#define NETMAP_POLLING_MODE_SINGLE_CPU	1
#define NETMAP_POLLING_MODE_MULTI_CPU	2

/* NETMAP_REQ_POOLS_INFO_GET (also inside the EXTMEM option) */
struct nmreq_pools_info {
	uint64_t	nr_memsize;
	uint16_t	nr_mem_id;
	uint16_t	pad1[3];
	uint64_t	nr_if_pool_offset;
	uint32_t	nr_if_pool_objtotal;
	uint32_t	nr_if_pool_objsize;
	uint64_t	nr_ring_pool_offset;
	uint32_t	nr_ring_pool_objtotal;
	uint32_t	nr_ring_pool_objsize;
	uint64_t	nr_buf_pool_offset;
	uint32_t	nr_buf_pool_objtotal;
	uint32_t	nr_buf_pool_objsize;
};

/* NETMAP_REQ_SYNC_KLOOP_START */
struct nmreq_sync_kloop_start {
	uint32_t	sleep_us;
	uint32_t	pad1;
};

/* --- option payloads --- */

struct nmreq_opt_extmem {
	struct nmreq_option	nro_opt;
	uint64_t		nro_usrptr;	/* start of the user memory */
	struct nmreq_pools_info	nro_info;
};

struct nmreq_opt_sync_kloop_eventfds {
	struct nmreq_option	nro_opt;	/* nro_size = 24 + 8 * N */
	struct {
		int32_t	ioeventfd;
		int32_t	irqfd;
	} eventfds[];				/* one per bound ring, TX first */
};

struct nmreq_opt_csb {
	struct nmreq_option	nro_opt;
	uint64_t		csb_atok;	/* array of struct nm_csb_atok */
	uint64_t		csb_ktoa;	/* array of struct nm_csb_ktoa */
};

struct nmreq_opt_sync_kloop_mode {
	struct nmreq_option	nro_opt;
	uint32_t		mode;		/* NM_OPT_SYNC_KLOOP_DIRECT_* */
};
#define NM_OPT_SYNC_KLOOP_DIRECT_TX	(1 << 0)
#define NM_OPT_SYNC_KLOOP_DIRECT_RX	(1 << 1)

struct nmreq_opt_offsets {
	struct nmreq_option	nro_opt;
	uint64_t		nro_max_offset;
	uint64_t		nro_initial_offset;
	uint32_t		nro_offset_bits;
	uint32_t		nro_tx_align;
	uint64_t		nro_min_gap;
};

/* Shared control blocks, one 64-byte entry per bound ring. */
struct nm_csb_atok {			/* application to kernel */
	uint32_t	head;
	uint32_t	cur;
	uint32_t	appl_need_kick;
	uint32_t	sync_flags;
	uint32_t	pad[12];
};

struct nm_csb_ktoa {			/* kernel to application */
	uint32_t	hwcur;
	uint32_t	hwtail;
	uint32_t	kern_need_kick;
	uint32_t	pad[13];
};

/* Memory ordering helpers for the CSB protocol. */
static inline void
nm_stst_barrier(void)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void
nm_ldld_barrier(void)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

/*
 * Publish new ring pointers.  cur goes out before head, so the reader can
 * never observe a head that is ahead of the cur it reads afterwards.
 */
static inline void
nm_sync_kloop_appl_write(struct nm_csb_atok *atok, uint32_t cur, uint32_t head)
{
	nm_stst_barrier();
	atok->cur = cur;
	nm_stst_barrier();
	atok->head = head;
}

/* Fetch the kernel's ring pointers: hwtail first, then hwcur. */
static inline void
nm_sync_kloop_appl_read(struct nm_csb_ktoa *ktoa, uint32_t *hwtail,
    uint32_t *hwcur)
{
	*hwtail = ktoa->hwtail;
	nm_ldld_barrier();
	*hwcur = ktoa->hwcur;
	nm_ldld_barrier();
}

/* ------------------------------------------------------------------ */
/* Legacy interface (NIOCREGIF, NIOCGINFO, NIOCCONFIG)                */

struct nmreq {
	char		nr_name[NM_LEGACY_NAMSIZ];
	uint32_t	nr_version;
	uint32_t	nr_offset;	/* out */
	uint32_t	nr_memsize;	/* out */
	uint32_t	nr_tx_slots;
	uint32_t	nr_rx_slots;
	uint16_t	nr_tx_rings;
	uint16_t	nr_rx_rings;
	uint16_t	nr_ringid;	/* ring number | NETMAP_* bits */
	uint16_t	nr_cmd;		/* 0 or NETMAP_BDG_* */
	uint16_t	nr_arg1;
	uint16_t	nr_arg2;	/* memory allocator id */
	uint32_t	nr_arg3;	/* extra buffers */
	uint32_t	nr_flags;	/* NR_REG_* | NR_* */
	uint32_t	spare2[1];
};

/* bits of the legacy nr_ringid */
#define NETMAP_RING_MASK	0x0fff
#define NETMAP_NO_TX_POLL	0x1000
#define NETMAP_SW_RING		0x2000
#define NETMAP_HW_RING		0x4000
#define NETMAP_DO_RX_POLL	0x8000

/* legacy nr_cmd values */
#define NETMAP_BDG_ATTACH	1
#define NETMAP_BDG_DETACH	2
#define NETMAP_BDG_REGOPS	3
#define NETMAP_BDG_LIST		4	/* with NIOCGINFO */
#define NETMAP_BDG_VNET_HDR	5
#define NETMAP_BDG_NEWIF	6
#define NETMAP_BDG_DELIF	7
#define NETMAP_PT_HOST_CREATE	8
#define NETMAP_PT_HOST_DELETE	9
#define NETMAP_BDG_POLLING_ON	10
#define NETMAP_BDG_POLLING_OFF	11
#define NETMAP_VNET_HDR_GET	12
#define NETMAP_BDG_HOST		1	/* nr_arg1 for NETMAP_BDG_ATTACH */

/* NIOCCONFIG argument */
struct nm_ifreq {
	char	nifr_name[NM_LEGACY_NAMSIZ];
	char	data[NM_IFRDATA_LEN];
};

/* ------------------------------------------------------------------ */
/* ioctl commands (type 'i')                                          */

#define NIOCGINFO	_IOWR('i', 145, struct nmreq)
#define NIOCREGIF	_IOWR('i', 146, struct nmreq)
#define NIOCTXSYNC	_IO('i', 148)
#define NIOCRXSYNC	_IO('i', 149)
#define NIOCCONFIG	_IOWR('i', 150, struct nm_ifreq)
#define NIOCCTRL	_IOWR('i', 151, struct nmreq_header)

#endif /* NETMAPD_COMPAT_NET_NETMAP_H */
