//! Hand-made seed inputs (written to `fuzz/corpus/<target>/seed-*` by
//! `examples/gen_corpus.rs`, replayed by `tests/tests/fuzz_smoke.rs`).

use crate::BASE;
use netmap_abi as abi;
use netmap_abi::{NmreqHeader, NmreqOption, NmreqPortInfoGet, NmreqRegister};
use zerocopy::IntoBytes;

/// `(target, name, input)` of every seed.
pub fn all() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut v = Vec::new();
    for (n, s) in nmreq_ctrl() {
        v.push(("nmreq_ctrl", n, s));
    }
    for (n, s) in options_chain() {
        v.push(("options_chain", n, s));
    }
    for (n, s) in ring_sync() {
        v.push(("ring_sync", n, s));
    }
    for (n, s) in kring_window() {
        v.push(("kring_window", n, s));
    }
    v
}

fn hdr(reqtype: u16, name: &str, body: bool, options: u64) -> NmreqHeader {
    let mut h = NmreqHeader {
        nr_reqtype: reqtype,
        nr_body: if body { BASE } else { 0 },
        nr_options: options,
        ..Default::default()
    };
    abi::set_cname(&mut h.nr_name, name);
    h
}

fn pipe_reg(mode: u32) -> NmreqRegister {
    NmreqRegister {
        nr_tx_slots: 8,
        nr_rx_slots: 8,
        nr_tx_rings: 1,
        nr_rx_rings: 1,
        nr_mode: mode,
        nr_extra_bufs: 2,
        ..Default::default()
    }
}

fn ctrl_input(sel: u8, h: &NmreqHeader, mem: &[u8]) -> Vec<u8> {
    let mut v = vec![sel];
    v.extend_from_slice(h.as_bytes());
    v.extend_from_slice(mem);
    v
}

fn opt(next: u64, reqtype: u32, size: u64) -> Vec<u8> {
    NmreqOption {
        nro_next: next,
        nro_reqtype: reqtype,
        nro_status: 0,
        nro_size: size,
    }
    .as_bytes()
    .to_vec()
}

fn legacy(sel: u8, name: &str, flags: u32, ringid: u16) -> Vec<u8> {
    let mut r = abi::Nmreq {
        nr_version: abi::NETMAP_API,
        nr_flags: flags,
        nr_ringid: ringid,
        nr_arg3: 1,
        ..Default::default()
    };
    abi::set_cname(&mut r.nr_name, name);
    let mut v = vec![sel];
    v.extend_from_slice(r.as_bytes());
    v.resize(1 + abi::NMREQ_HEADER_SIZE, 0);
    v
}

pub fn nmreq_ctrl() -> Vec<(&'static str, Vec<u8>)> {
    let reg = pipe_reg(abi::NR_REG_ALL_NIC);
    let reg_hdr = hdr(abi::NETMAP_REQ_REGISTER, "s{0", true, 0);
    let info = NmreqPortInfoGet::default();
    // REGISTER with two options: OFFSETS (24 + 32 bytes) then SYNC_KLOOP_MODE (24 + 8).
    let o1 = BASE + 56;
    let o2 = o1 + 56;
    let mut chain = reg.as_bytes().to_vec();
    chain.extend(opt(o2, abi::NETMAP_REQ_OPT_OFFSETS, 56));
    chain.extend([0u8; 32]);
    chain.extend(opt(0, abi::NETMAP_REQ_OPT_SYNC_KLOOP_MODE, 32));
    chain.extend([0u8; 8]);
    // A chain that points at itself.
    let mut looped = reg.as_bytes().to_vec();
    looped.extend(opt(o1, abi::NETMAP_REQ_OPT_CSB, 40));
    looped.extend([0u8; 16]);
    let null = NmreqRegister {
        nr_mem_id: 1,
        ..pipe_reg(abi::NR_REG_NULL)
    };
    vec![
        ("register-pipe", ctrl_input(0, &reg_hdr, reg.as_bytes())),
        (
            "register-pipe-twice-2fds-sync",
            ctrl_input(4 | 8 | 16, &reg_hdr, reg.as_bytes()),
        ),
        (
            "register-pipe-slave",
            ctrl_input(
                16,
                &hdr(abi::NETMAP_REQ_REGISTER, "s}3", true, 0),
                reg.as_bytes(),
            ),
        ),
        (
            "register-null",
            ctrl_input(
                16,
                &hdr(abi::NETMAP_REQ_REGISTER, "n", true, 0),
                null.as_bytes(),
            ),
        ),
        (
            "port-info-get",
            ctrl_input(
                0,
                &hdr(abi::NETMAP_REQ_PORT_INFO_GET, "s{0", true, 0),
                info.as_bytes(),
            ),
        ),
        (
            "pools-info-get",
            ctrl_input(
                0,
                &hdr(abi::NETMAP_REQ_POOLS_INFO_GET, "s{0", true, 0),
                &[0u8; 64],
            ),
        ),
        (
            "register-2-options",
            ctrl_input(0, &hdr(abi::NETMAP_REQ_REGISTER, "s{0", true, o1), &chain),
        ),
        (
            "register-option-loop",
            ctrl_input(0, &hdr(abi::NETMAP_REQ_REGISTER, "s{0", true, o1), &looped),
        ),
        (
            "csb-enable",
            ctrl_input(
                0,
                &hdr(abi::NETMAP_REQ_CSB_ENABLE, "s{0", false, o1 - 56),
                &looped[56..],
            ),
        ),
        (
            "legacy-regif-pipe",
            legacy(2 | 16, "s", abi::NR_REG_PIPE_MASTER, 0),
        ),
        (
            "legacy-regif-one-nic",
            legacy(2, "s{1", 0, abi::NETMAP_HW_RING),
        ),
        ("legacy-ginfo", legacy(3, "s{0", 0, 0)),
    ]
}

pub fn options_chain() -> Vec<(&'static str, Vec<u8>)> {
    // link, reqtype, size selector, body length / 4, body
    let mut two = vec![0u8, 0];
    two.extend([0, 5, 0, 8]);
    two.extend([0u8; 32]);
    two.extend([2, 4, 0, 2]);
    two.extend([0u8; 8]);
    let mut selfloop = vec![0u8, 0];
    selfloop.extend([3, 3, 0, 4]);
    selfloop.extend([0u8; 16]);
    let mut huge = vec![0u8, 2];
    huge.extend([0, 2, 3, 0]);
    huge.extend([2, 5, 0, 8]);
    huge.extend([0u8; 32]);
    let mut csb = vec![0u8, 4];
    csb.extend([2, 3, 0, 4]);
    csb.extend([0u8; 16]);
    vec![
        ("register-2-options", two),
        ("self-loop", selfloop),
        ("huge-size", huge),
        ("csb-enable", csb),
    ]
}

pub fn ring_sync() -> Vec<(&'static str, Vec<u8>)> {
    let op = |act: u8, end: u8| (act << 1) | end;
    // Master sends 3 slots, slave receives and returns them, both poll.
    let mut fwd = vec![0u8, 0];
    fwd.extend([op(7, 0), 0, 3, op(4, 0), op(5, 1), op(6, 1), 1]);
    fwd.extend([op(7, 1), 1, 3, op(5, 1), op(4, 0), op(6, 0), 2]);
    // Multi-fragment packet (NS_MOREFRAG on the first two slots), the first slot with
    // the invalid buffer 0, the last one with a swapped-in buffer (NS_BUF_CHANGED).
    let mut frag = vec![1u8, 1];
    let slots: [(u32, u16); 3] = [
        (0, abi::NS_MOREFRAG),
        (100, abi::NS_MOREFRAG),
        (101, abi::NS_BUF_CHANGED),
    ];
    for (i, (buf, flags)) in slots.into_iter().enumerate() {
        frag.extend([op(3, 0), 0, i as u8, 0]);
        frag.extend(buf.to_le_bytes());
        frag.extend(60u16.to_le_bytes());
        frag.extend(flags.to_le_bytes());
    }
    frag.extend([op(7, 0), 0, 3, op(4, 0), op(5, 1), op(7, 1), 1, 3, op(5, 1)]);
    // Bad head past the tail, sync, then re-register the slave.
    let mut bad = vec![0u8, 4];
    bad.extend([op(0, 0), 0]);
    bad.extend(1000u32.to_le_bytes());
    bad.extend([op(4, 0), op(10, 1), 0, op(6, 1), 3]);
    vec![
        ("forward", fwd),
        ("morefrag", frag),
        ("bad-head-reregister", bad),
    ]
}

pub fn kring_window() -> Vec<(&'static str, Vec<u8>)> {
    let enc = |sel: u8, v: [u32; 5]| {
        let mut b = vec![sel];
        for x in v {
            b.extend(x.to_le_bytes());
        }
        b
    };
    vec![
        ("linear", enc(0, [8, 0, 7, 3, 7])),
        ("wrapped", enc(0, [8, 6, 2, 7, 1])),
        (
            "big",
            enc(0x80, [u32::MAX, u32::MAX - 2, 1, 0, u32::MAX - 1]),
        ),
    ]
}
