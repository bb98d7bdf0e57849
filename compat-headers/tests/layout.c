/*
 * layout.c -- checks every size, field offset, constant and ioctl number of
 * NETMAP-ABI.md sections 1-4 against the compat headers.  Everything is
 * checked at compile time (_Static_assert) and printed again at run time.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdalign.h>
#include <net/netmap_user.h>

static int checked;

#define SIZE(T, n) \
	_Static_assert(sizeof(struct T) == (n), "sizeof " #T); \
	static void chk_size_##T(void) { \
		printf("size   %-34s %4zu\n", #T, sizeof(struct T)); checked++; }

#define ALIGN(T, n) \
	_Static_assert(alignof(struct T) == (n), "alignof " #T); \
	static void chk_align_##T(void) { \
		printf("align  %-34s %4zu\n", #T, alignof(struct T)); checked++; }

#define OFF(T, f, n) \
	_Static_assert(offsetof(struct T, f) == (n), "offsetof " #T "." #f);

#define FSZ(T, f, n) \
	_Static_assert(sizeof(((struct T *)0)->f) == (n), "field size " #T "." #f);

/* offset and size of a field in one go */
#define F(T, f, o, s) OFF(T, f, o) FSZ(T, f, s)

#define CONST(name, v) _Static_assert((name) == (v), #name);

/* ---- 3.1 netmap_slot ---- */
SIZE(netmap_slot, 16) ALIGN(netmap_slot, 8)
F(netmap_slot, buf_idx, 0, 4) F(netmap_slot, len, 4, 2)
F(netmap_slot, flags, 6, 2) F(netmap_slot, ptr, 8, 8)

/* ---- 3.2 netmap_ring ---- */
SIZE(netmap_ring, 256) ALIGN(netmap_ring, 128)
F(netmap_ring, buf_ofs, 0, 8) F(netmap_ring, num_slots, 8, 4)
F(netmap_ring, nr_buf_size, 12, 4) F(netmap_ring, ringid, 16, 2)
F(netmap_ring, dir, 18, 2) F(netmap_ring, head, 20, 4)
F(netmap_ring, cur, 24, 4) F(netmap_ring, tail, 28, 4)
F(netmap_ring, flags, 32, 4) F(netmap_ring, ts, 40, 16)
F(netmap_ring, offset_mask, 56, 8) F(netmap_ring, buf_align, 64, 8)
F(netmap_ring, sem, 128, 128) OFF(netmap_ring, slot, 256)
_Static_assert(offsetof(struct netmap_ring, ts.tv_sec) == 40, "ts.tv_sec");
_Static_assert(offsetof(struct netmap_ring, ts.tv_usec) == 48, "ts.tv_usec");
_Static_assert(sizeof(((struct netmap_ring *)0)->slot[0]) == 16, "slot[]");

/* ---- 3.3 netmap_if ---- */
SIZE(netmap_if, 56) ALIGN(netmap_if, 8)
F(netmap_if, ni_name, 0, 16) F(netmap_if, ni_version, 16, 4)
F(netmap_if, ni_flags, 20, 4) F(netmap_if, ni_tx_rings, 24, 4)
F(netmap_if, ni_rx_rings, 28, 4) F(netmap_if, ni_bufs_head, 32, 4)
F(netmap_if, ni_host_tx_rings, 36, 4) F(netmap_if, ni_host_rx_rings, 40, 4)
F(netmap_if, ni_spare1, 44, 12) OFF(netmap_if, ring_ofs, 56)
_Static_assert(sizeof(((struct netmap_if *)0)->ring_ofs[0]) == 8, "ring_ofs[]");

/* ---- 3.4 nmreq (legacy) ---- */
SIZE(nmreq, 60) ALIGN(nmreq, 4)
F(nmreq, nr_name, 0, 16) F(nmreq, nr_version, 16, 4)
F(nmreq, nr_offset, 20, 4) F(nmreq, nr_memsize, 24, 4)
F(nmreq, nr_tx_slots, 28, 4) F(nmreq, nr_rx_slots, 32, 4)
F(nmreq, nr_tx_rings, 36, 2) F(nmreq, nr_rx_rings, 38, 2)
F(nmreq, nr_ringid, 40, 2) F(nmreq, nr_cmd, 42, 2)
F(nmreq, nr_arg1, 44, 2) F(nmreq, nr_arg2, 46, 2)
F(nmreq, nr_arg3, 48, 4) F(nmreq, nr_flags, 52, 4)
F(nmreq, spare2, 56, 4)

/* ---- 3.5 nm_ifreq ---- */
SIZE(nm_ifreq, 272) ALIGN(nm_ifreq, 1)
F(nm_ifreq, nifr_name, 0, 16) F(nm_ifreq, data, 16, 256)

/* ---- 3.6 nmreq_header ---- */
SIZE(nmreq_header, 88) ALIGN(nmreq_header, 8)
F(nmreq_header, nr_version, 0, 2) F(nmreq_header, nr_reqtype, 2, 2)
F(nmreq_header, nr_reserved, 4, 4) F(nmreq_header, nr_name, 8, 64)
F(nmreq_header, nr_options, 72, 8) F(nmreq_header, nr_body, 80, 8)

/* ---- 3.7 nmreq_option ---- */
SIZE(nmreq_option, 24) ALIGN(nmreq_option, 8)
F(nmreq_option, nro_next, 0, 8) F(nmreq_option, nro_reqtype, 8, 4)
F(nmreq_option, nro_status, 12, 4) F(nmreq_option, nro_size, 16, 8)

/* ---- 3.8 request bodies ---- */
SIZE(nmreq_register, 56) ALIGN(nmreq_register, 8)
F(nmreq_register, nr_offset, 0, 8) F(nmreq_register, nr_memsize, 8, 8)
F(nmreq_register, nr_tx_slots, 16, 4) F(nmreq_register, nr_rx_slots, 20, 4)
F(nmreq_register, nr_tx_rings, 24, 2) F(nmreq_register, nr_rx_rings, 26, 2)
F(nmreq_register, nr_host_tx_rings, 28, 2) F(nmreq_register, nr_host_rx_rings, 30, 2)
F(nmreq_register, nr_mem_id, 32, 2) F(nmreq_register, nr_ringid, 34, 2)
F(nmreq_register, nr_mode, 36, 4) F(nmreq_register, nr_extra_bufs, 40, 4)
F(nmreq_register, nr_flags, 48, 8)

SIZE(nmreq_port_info_get, 32) ALIGN(nmreq_port_info_get, 8)
F(nmreq_port_info_get, nr_memsize, 0, 8) F(nmreq_port_info_get, nr_tx_slots, 8, 4)
F(nmreq_port_info_get, nr_rx_slots, 12, 4) F(nmreq_port_info_get, nr_tx_rings, 16, 2)
F(nmreq_port_info_get, nr_rx_rings, 18, 2) F(nmreq_port_info_get, nr_host_tx_rings, 20, 2)
F(nmreq_port_info_get, nr_host_rx_rings, 22, 2) F(nmreq_port_info_get, nr_mem_id, 24, 2)
F(nmreq_port_info_get, pad, 26, 6)

SIZE(nmreq_vale_attach, 64) ALIGN(nmreq_vale_attach, 8)
F(nmreq_vale_attach, reg, 0, 56) F(nmreq_vale_attach, port_index, 56, 4)
F(nmreq_vale_attach, pad1, 60, 4)

SIZE(nmreq_vale_detach, 8) ALIGN(nmreq_vale_detach, 4)
F(nmreq_vale_detach, port_index, 0, 4) F(nmreq_vale_detach, pad1, 4, 4)

SIZE(nmreq_vale_list, 8) ALIGN(nmreq_vale_list, 4)
F(nmreq_vale_list, nr_bridge_idx, 0, 2) F(nmreq_vale_list, pad1, 2, 2)
F(nmreq_vale_list, nr_port_idx, 4, 4)

SIZE(nmreq_port_hdr, 8) ALIGN(nmreq_port_hdr, 4)
F(nmreq_port_hdr, nr_hdr_len, 0, 4) F(nmreq_port_hdr, pad1, 4, 4)

SIZE(nmreq_vale_newif, 16) ALIGN(nmreq_vale_newif, 4)
F(nmreq_vale_newif, nr_tx_slots, 0, 4) F(nmreq_vale_newif, nr_rx_slots, 4, 4)
F(nmreq_vale_newif, nr_tx_rings, 8, 2) F(nmreq_vale_newif, nr_rx_rings, 10, 2)
F(nmreq_vale_newif, nr_mem_id, 12, 2) F(nmreq_vale_newif, pad1, 14, 2)

SIZE(nmreq_vale_polling, 16) ALIGN(nmreq_vale_polling, 4)
F(nmreq_vale_polling, nr_mode, 0, 4) F(nmreq_vale_polling, nr_first_cpu_id, 4, 4)
F(nmreq_vale_polling, nr_num_polling_cpus, 8, 4) F(nmreq_vale_polling, pad1, 12, 4)

SIZE(nmreq_pools_info, 64) ALIGN(nmreq_pools_info, 8)
F(nmreq_pools_info, nr_memsize, 0, 8) F(nmreq_pools_info, nr_mem_id, 8, 2)
F(nmreq_pools_info, pad1, 10, 6)
F(nmreq_pools_info, nr_if_pool_offset, 16, 8) F(nmreq_pools_info, nr_if_pool_objtotal, 24, 4)
F(nmreq_pools_info, nr_if_pool_objsize, 28, 4)
F(nmreq_pools_info, nr_ring_pool_offset, 32, 8) F(nmreq_pools_info, nr_ring_pool_objtotal, 40, 4)
F(nmreq_pools_info, nr_ring_pool_objsize, 44, 4)
F(nmreq_pools_info, nr_buf_pool_offset, 48, 8) F(nmreq_pools_info, nr_buf_pool_objtotal, 56, 4)
F(nmreq_pools_info, nr_buf_pool_objsize, 60, 4)

SIZE(nmreq_sync_kloop_start, 8) ALIGN(nmreq_sync_kloop_start, 4)
F(nmreq_sync_kloop_start, sleep_us, 0, 4) F(nmreq_sync_kloop_start, pad1, 4, 4)

/* ---- 3.9 options ---- */
SIZE(nmreq_opt_extmem, 96) ALIGN(nmreq_opt_extmem, 8)
F(nmreq_opt_extmem, nro_opt, 0, 24) F(nmreq_opt_extmem, nro_usrptr, 24, 8)
F(nmreq_opt_extmem, nro_info, 32, 64)

SIZE(nmreq_opt_sync_kloop_eventfds, 24) ALIGN(nmreq_opt_sync_kloop_eventfds, 8)
F(nmreq_opt_sync_kloop_eventfds, nro_opt, 0, 24)
OFF(nmreq_opt_sync_kloop_eventfds, eventfds, 24)
F(nmreq_opt_sync_kloop_eventfds, eventfds[0], 24, 8)
F(nmreq_opt_sync_kloop_eventfds, eventfds[0].ioeventfd, 24, 4)
F(nmreq_opt_sync_kloop_eventfds, eventfds[0].irqfd, 28, 4)
F(nmreq_opt_sync_kloop_eventfds, eventfds[1].ioeventfd, 32, 4)

SIZE(nmreq_opt_csb, 40) ALIGN(nmreq_opt_csb, 8)
F(nmreq_opt_csb, nro_opt, 0, 24) F(nmreq_opt_csb, csb_atok, 24, 8)
F(nmreq_opt_csb, csb_ktoa, 32, 8)

SIZE(nmreq_opt_sync_kloop_mode, 32) ALIGN(nmreq_opt_sync_kloop_mode, 8)
F(nmreq_opt_sync_kloop_mode, nro_opt, 0, 24) F(nmreq_opt_sync_kloop_mode, mode, 24, 4)

SIZE(nmreq_opt_offsets, 56) ALIGN(nmreq_opt_offsets, 8)
F(nmreq_opt_offsets, nro_opt, 0, 24) F(nmreq_opt_offsets, nro_max_offset, 24, 8)
F(nmreq_opt_offsets, nro_initial_offset, 32, 8) F(nmreq_opt_offsets, nro_offset_bits, 40, 4)
F(nmreq_opt_offsets, nro_tx_align, 44, 4) F(nmreq_opt_offsets, nro_min_gap, 48, 8)

SIZE(nm_csb_atok, 64)
F(nm_csb_atok, head, 0, 4) F(nm_csb_atok, cur, 4, 4)
F(nm_csb_atok, appl_need_kick, 8, 4) F(nm_csb_atok, sync_flags, 12, 4)
F(nm_csb_atok, pad, 16, 48)

SIZE(nm_csb_ktoa, 64)
F(nm_csb_ktoa, hwcur, 0, 4) F(nm_csb_ktoa, hwtail, 4, 4)
F(nm_csb_ktoa, kern_need_kick, 8, 4) F(nm_csb_ktoa, pad, 12, 52)

/* ---- 1. versions and sizes ---- */
CONST(NETMAP_API, 14) CONST(NETMAP_MIN_API, 14) CONST(NETMAP_MAX_API, 15)
CONST(NM_CACHE_ALIGN, 128) CONST(NETMAP_REQ_MAXSIZE, 4096)
CONST(NETMAP_REQ_IFNAMSIZ, 64) CONST(NETMAP_MAX_FRAGS, 64)
CONST(NM_IFRDATA_LEN, 256) CONST(IFNAMSIZ, 16) CONST(NM_LEGACY_NAMSIZ, 16)

/* ---- 2. ioctls ---- */
CONST(NIOCGINFO, 0xc03c6991u) CONST(NIOCREGIF, 0xc03c6992u)
CONST(NIOCTXSYNC, 0x00006994u) CONST(NIOCRXSYNC, 0x00006995u)
CONST(NIOCCONFIG, 0xc1106996u) CONST(NIOCCTRL, 0xc0586997u)

/* ---- 4.1 request types ---- */
CONST(NETMAP_REQ_REGISTER, 1) CONST(NETMAP_REQ_PORT_INFO_GET, 2)
CONST(NETMAP_REQ_VALE_ATTACH, 3) CONST(NETMAP_REQ_VALE_DETACH, 4)
CONST(NETMAP_REQ_VALE_LIST, 5) CONST(NETMAP_REQ_PORT_HDR_SET, 6)
CONST(NETMAP_REQ_PORT_HDR_GET, 7) CONST(NETMAP_REQ_VALE_NEWIF, 8)
CONST(NETMAP_REQ_VALE_DELIF, 9) CONST(NETMAP_REQ_VALE_POLLING_ENABLE, 10)
CONST(NETMAP_REQ_VALE_POLLING_DISABLE, 11) CONST(NETMAP_REQ_POOLS_INFO_GET, 12)
CONST(NETMAP_REQ_SYNC_KLOOP_START, 13) CONST(NETMAP_REQ_SYNC_KLOOP_STOP, 14)
CONST(NETMAP_REQ_CSB_ENABLE, 15)

/* ---- 4.2 options ---- */
CONST(NETMAP_REQ_OPT_EXTMEM, 1) CONST(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS, 2)
CONST(NETMAP_REQ_OPT_CSB, 3) CONST(NETMAP_REQ_OPT_SYNC_KLOOP_MODE, 4)
CONST(NETMAP_REQ_OPT_OFFSETS, 5) CONST(NETMAP_REQ_OPT_MAX, 6)
CONST(NM_OPT_SYNC_KLOOP_DIRECT_TX, 1) CONST(NM_OPT_SYNC_KLOOP_DIRECT_RX, 2)
CONST(NETMAP_POLLING_MODE_SINGLE_CPU, 1) CONST(NETMAP_POLLING_MODE_MULTI_CPU, 2)

/* ---- 4.3 modes ---- */
CONST(NR_REG_DEFAULT, 0) CONST(NR_REG_ALL_NIC, 1) CONST(NR_REG_SW, 2)
CONST(NR_REG_NIC_SW, 3) CONST(NR_REG_ONE_NIC, 4) CONST(NR_REG_PIPE_MASTER, 5)
CONST(NR_REG_PIPE_SLAVE, 6) CONST(NR_REG_NULL, 7) CONST(NR_REG_ONE_SW, 8)
CONST(NR_REG_MASK, 0xf)

/* ---- 4.4 register flags ---- */
CONST(NR_MONITOR_TX, 0x100) CONST(NR_MONITOR_RX, 0x200) CONST(NR_ZCOPY_MON, 0x400)
CONST(NR_EXCLUSIVE, 0x800) CONST(NR_RX_RINGS_ONLY, 0x2000)
CONST(NR_TX_RINGS_ONLY, 0x4000) CONST(NR_ACCEPT_VNET_HDR, 0x8000)
CONST(NR_DO_RX_POLL, 0x10000) CONST(NR_NO_TX_POLL, 0x20000)

/* ---- 4.5 slot flags ---- */
CONST(NS_BUF_CHANGED, 0x1) CONST(NS_REPORT, 0x2) CONST(NS_FORWARD, 0x4)
CONST(NS_NO_LEARN, 0x8) CONST(NS_INDIRECT, 0x10) CONST(NS_MOREFRAG, 0x20)
CONST(NS_TXMON, 0x40) CONST(NS_PORT_SHIFT, 8) CONST(NS_PORT_MASK, 0xff00)

/* ---- 4.6 ring / if flags ---- */
CONST(NR_TIMESTAMP, 0x2) CONST(NR_FORWARD, 0x4) CONST(NI_PRIV_MEM, 0x1)

/* ---- 4.7 legacy ringid bits ---- */
CONST(NETMAP_RING_MASK, 0x0fff) CONST(NETMAP_NO_TX_POLL, 0x1000)
CONST(NETMAP_SW_RING, 0x2000) CONST(NETMAP_HW_RING, 0x4000)
CONST(NETMAP_DO_RX_POLL, 0x8000)

/* ---- 4.8 legacy commands ---- */
CONST(NETMAP_BDG_ATTACH, 1) CONST(NETMAP_BDG_DETACH, 2) CONST(NETMAP_BDG_REGOPS, 3)
CONST(NETMAP_BDG_LIST, 4) CONST(NETMAP_BDG_VNET_HDR, 5) CONST(NETMAP_BDG_NEWIF, 6)
CONST(NETMAP_BDG_DELIF, 7) CONST(NETMAP_PT_HOST_CREATE, 8)
CONST(NETMAP_PT_HOST_DELETE, 9) CONST(NETMAP_BDG_POLLING_ON, 10)
CONST(NETMAP_BDG_POLLING_OFF, 11) CONST(NETMAP_VNET_HDR_GET, 12)
CONST(NETMAP_BDG_HOST, 1)

/* ---- run-time part: print and re-check the essentials ---- */

static int failures;

#define EXPECT(what, got, want) do {					\
	unsigned long long _g = (unsigned long long)(got);		\
	unsigned long long _w = (unsigned long long)(want);		\
	checked++;							\
	if (_g != _w) {							\
		printf("MISMATCH %s: %llu (0x%llx), expected %llu (0x%llx)\n", \
		    what, _g, _g, _w, _w);				\
		failures++;						\
	}								\
} while (0)

/* helpers of netmap_user.h on a fake region */
static void
check_helpers(void)
{
	static union {
		char bytes[1 << 16];
		uint64_t align;
	} region __attribute__((aligned(4096)));
	struct netmap_if *nifp = NETMAP_IF(region.bytes, 1024);
	ssize_t *ofs = (ssize_t *)(uintptr_t)nifp->ring_ofs;
	uint32_t *u = (uint32_t *)(void *)nifp;
	struct netmap_ring *tx, *rx;
	struct netmap_slot *s;
	char *b;

	/* 1 hw TX, 1 host TX, 1 hw RX, 1 host RX */
	u[6] = 1; u[7] = 1; u[9] = 1; u[10] = 1;
	ofs[0] = 4096 - 1024;		/* TX 0 */
	ofs[2] = 8192 - 1024;		/* RX 0 is entry 0 + 1 + 1 */
	tx = NETMAP_TXRING(nifp, 0);
	rx = NETMAP_RXRING(nifp, 0);
	EXPECT("NETMAP_TXRING", (char *)tx - region.bytes, 4096);
	EXPECT("NETMAP_RXRING", (char *)rx - region.bytes, 8192);

	*(int64_t *)(void *)tx = 16384 - 4096;			/* buf_ofs */
	((uint32_t *)(void *)tx)[2] = 8;			/* num_slots */
	((uint32_t *)(void *)tx)[3] = 2048;			/* nr_buf_size */
	b = NETMAP_BUF(tx, 3);
	EXPECT("NETMAP_BUF", b - region.bytes, 16384 + 3 * 2048);
	EXPECT("NETMAP_BUF_IDX", NETMAP_BUF_IDX(tx, b), 3);
	EXPECT("nm_ring_next(6)", nm_ring_next(tx, 6), 7);
	EXPECT("nm_ring_next(7)", nm_ring_next(tx, 7), 0);

	((uint32_t *)(void *)tx)[7] = 2;			/* tail */
	tx->head = 6;
	EXPECT("nm_ring_space wrap", nm_ring_space(tx), 4);
	tx->head = 2;
	EXPECT("nm_ring_space empty", nm_ring_space(tx), 0);
	EXPECT("nm_ring_empty", nm_ring_empty(tx), 1);
	tx->head = 3;
	EXPECT("nm_tx_pending all done", nm_tx_pending(tx), 0);
	tx->head = 5;
	EXPECT("nm_tx_pending busy", nm_tx_pending(tx), 1);

	*(uint64_t *)(void *)((char *)tx + 56) = 0xff;		/* offset_mask */
	s = &tx->slot[1];
	s->buf_idx = 2;
	s->ptr = 0x1234500;
	NETMAP_WOFFSET(tx, s, 0x42);
	EXPECT("NETMAP_WOFFSET keeps high bits", s->ptr, 0x1234542);
	EXPECT("NETMAP_ROFFSET", NETMAP_ROFFSET(tx, s), 0x42);
	EXPECT("nm_get_offset", nm_get_offset(tx, s), 0x42);
	nm_write_offset(tx, s, 0x1ff);
	EXPECT("nm_write_offset", s->ptr, 0x12345ff);
	EXPECT("NETMAP_BUF_OFFSET", NETMAP_BUF_OFFSET(tx, s) - region.bytes,
	    16384 + 2 * 2048 + 0xff);
	EXPECT("slot[1] position", (char *)s - (char *)tx, 256 + 16);
}

int
main(void)
{
#define RUN(T) chk_size_##T(); chk_align_##T();
	RUN(netmap_slot) RUN(netmap_ring) RUN(netmap_if) RUN(nmreq) RUN(nm_ifreq)
	RUN(nmreq_header) RUN(nmreq_option) RUN(nmreq_register)
	RUN(nmreq_port_info_get) RUN(nmreq_vale_attach) RUN(nmreq_vale_detach)
	RUN(nmreq_vale_list) RUN(nmreq_port_hdr) RUN(nmreq_vale_newif)
	RUN(nmreq_vale_polling) RUN(nmreq_pools_info) RUN(nmreq_sync_kloop_start)
	RUN(nmreq_opt_extmem) RUN(nmreq_opt_sync_kloop_eventfds) RUN(nmreq_opt_csb)
	RUN(nmreq_opt_sync_kloop_mode) RUN(nmreq_opt_offsets)
	chk_size_nm_csb_atok(); chk_size_nm_csb_ktoa();

	EXPECT("netmap_ring.sem", offsetof(struct netmap_ring, sem), 128);
	EXPECT("netmap_ring.slot", offsetof(struct netmap_ring, slot), 256);
	EXPECT("netmap_if.ring_ofs", offsetof(struct netmap_if, ring_ofs), 56);
	EXPECT("nmreq_register.nr_flags", offsetof(struct nmreq_register, nr_flags), 48);
	EXPECT("NIOCGINFO", NIOCGINFO, 0xc03c6991u);
	EXPECT("NIOCREGIF", NIOCREGIF, 0xc03c6992u);
	EXPECT("NIOCTXSYNC", NIOCTXSYNC, 0x6994u);
	EXPECT("NIOCRXSYNC", NIOCRXSYNC, 0x6995u);
	EXPECT("NIOCCONFIG", NIOCCONFIG, 0xc1106996u);
	EXPECT("NIOCCTRL", NIOCCTRL, 0xc0586997u);
	printf("ioctl  NIOCGINFO=0x%08lx NIOCREGIF=0x%08lx NIOCTXSYNC=0x%08lx\n"
	    "       NIOCRXSYNC=0x%08lx NIOCCONFIG=0x%08lx NIOCCTRL=0x%08lx\n",
	    (unsigned long)NIOCGINFO, (unsigned long)NIOCREGIF,
	    (unsigned long)NIOCTXSYNC, (unsigned long)NIOCRXSYNC,
	    (unsigned long)NIOCCONFIG, (unsigned long)NIOCCTRL);

	check_helpers();

	if (failures) {
		printf("layout: %d FAILURE(S)\n", failures);
		return 1;
	}
	printf("layout: OK (%d run-time checks; offsets/constants verified at compile time)\n",
	    checked);
	return 0;
}
