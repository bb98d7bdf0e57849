//! Control-plane tests of the VALE management requests (vale.rs): NEWIF, DELIF,
//! ATTACH, DETACH, POLLING_ENABLE/DISABLE, their legacy forms, and pipes of VALE ports.

use super::*;
use netmap_abi::{
    Nmreq, NmreqValeAttach, NmreqValeDetach, NmreqValeList, NmreqValeNewif, NmreqValePolling,
};

const EEXIST: Errno = Errno(libc::EEXIST);
const ENOENT: Errno = Errno(libc::ENOENT);

/// A NIOCCTRL with a body; returns the body as written back.
fn req<T>(cp: &ControlPlane, um: &FakeMem, t: u16, name: &str, body: &T) -> Result<T, Errno>
where
    T: IntoBytes + FromBytes + zerocopy::Immutable,
{
    let fd = cp.open();
    let addr = um.put(body.as_bytes());
    let res = ctrl(cp, fd, &header(t, name, addr, 0), um);
    cp.release(fd);
    res.map(|_| um.get(addr))
}

fn newif(cp: &ControlPlane, um: &FakeMem, name: &str) -> Result<NmreqValeNewif, Errno> {
    req(
        cp,
        um,
        netmap_abi::NETMAP_REQ_VALE_NEWIF,
        name,
        &NmreqValeNewif::default(),
    )
}

fn delif(cp: &ControlPlane, um: &FakeMem, name: &str) -> Result<(), Errno> {
    let fd = cp.open();
    let res = ctrl(
        cp,
        fd,
        &header(netmap_abi::NETMAP_REQ_VALE_DELIF, name, 0, 0),
        um,
    );
    cp.release(fd);
    res.map(|_| ())
}

fn attach_mode(
    cp: &ControlPlane,
    um: &FakeMem,
    name: &str,
    mode: u32,
    ringid: u16,
) -> Result<u32, Errno> {
    let b = NmreqValeAttach {
        reg: NmreqRegister {
            nr_mode: mode,
            nr_ringid: ringid,
            ..Default::default()
        },
        port_index: 0xffff,
        pad1: 0,
    };
    req(cp, um, netmap_abi::NETMAP_REQ_VALE_ATTACH, name, &b).map(|b| b.port_index)
}

fn attach(cp: &ControlPlane, um: &FakeMem, name: &str) -> Result<u32, Errno> {
    attach_mode(cp, um, name, netmap_abi::NR_REG_ALL_NIC, 0)
}

fn detach(cp: &ControlPlane, um: &FakeMem, name: &str) -> Result<u32, Errno> {
    let b = NmreqValeDetach {
        port_index: 0xffff,
        pad1: 0,
    };
    req(cp, um, netmap_abi::NETMAP_REQ_VALE_DETACH, name, &b).map(|b| b.port_index)
}

fn polling(cp: &ControlPlane, um: &FakeMem, name: &str, on: bool) -> Result<(), Errno> {
    let b = NmreqValePolling {
        nr_mode: netmap_abi::NETMAP_POLLING_MODE_SINGLE_CPU,
        nr_first_cpu_id: 0,
        nr_num_polling_cpus: 1,
        pad1: 0,
    };
    let t = if on {
        netmap_abi::NETMAP_REQ_VALE_POLLING_ENABLE
    } else {
        netmap_abi::NETMAP_REQ_VALE_POLLING_DISABLE
    };
    req(cp, um, t, name, &b).map(|_| ())
}

fn list(cp: &ControlPlane, um: &FakeMem, name: &str) -> Result<NmreqValeList, Errno> {
    req(
        cp,
        um,
        netmap_abi::NETMAP_REQ_VALE_LIST,
        name,
        &NmreqValeList::default(),
    )
}

fn vale_req() -> NmreqRegister {
    reg_req(netmap_abi::NR_REG_ALL_NIC, 0, 0)
}

/// A broadcast frame (dst ff:…, src `02:00:00:00:00:src`) carrying `tag`.
fn frame(dst: [u8; 6], src: u8, tag: &str) -> Vec<u8> {
    let mut f = etherparse::Ethernet2Header {
        source: [2, 0, 0, 0, 0, src],
        destination: dst,
        ether_type: etherparse::EtherType(0x88b5),
    }
    .to_bytes()
    .to_vec();
    f.extend_from_slice(tag.as_bytes());
    f.resize(60, 0);
    f
}

/// Sends `f` from `tx_fd` and checks that `rx_fd` receives exactly it.
fn send_recv(cp: &ControlPlane, tx: (&Client, FdId), rx: (&Client, FdId), f: &[u8]) {
    tx.0.tx(0).fill(&[(f, 0)]);
    txsync(cp, tx.1);
    rxsync(cp, rx.1);
    let r = rx.0.rx(0);
    assert_eq!(
        r.tail(),
        (r.head() + 1) % r.num_slots(),
        "one frame arrived"
    );
    let s = r.slot(r.head());
    assert_eq!(r.read_buf(s.buf_idx, usize::from(s.len)), f);
    r.advance(r.tail());
    rxsync(cp, rx.1);
}

#[test]
fn newif_errors_and_defaults() {
    let cp = new_cp();
    let um = FakeMem::new();
    assert_eq!(
        newif(&cp, &um, "vale0:x").unwrap_err(),
        EINVAL,
        "vale prefix"
    );
    assert_eq!(newif(&cp, &um, "").unwrap_err(), EINVAL, "empty name");
    assert_eq!(
        newif(&cp, &um, "0123456789abcdef").unwrap_err(),
        EINVAL,
        "16 characters"
    );
    let bad_mem = NmreqValeNewif {
        nr_mem_id: 7,
        ..Default::default()
    };
    assert_eq!(
        req(&cp, &um, netmap_abi::NETMAP_REQ_VALE_NEWIF, "p", &bad_mem).unwrap_err(),
        EINVAL
    );
    let b = newif(&cp, &um, "0123456789abcde").expect("15 characters");
    assert_eq!(
        (
            b.nr_tx_rings,
            b.nr_rx_rings,
            b.nr_tx_slots,
            b.nr_rx_slots,
            b.nr_mem_id
        ),
        (1, 1, 1024, 1024, 1)
    );
    // Exists: EEXIST, body not written back.
    let mine = NmreqValeNewif {
        nr_tx_slots: 64,
        ..Default::default()
    };
    let addr = um.put(mine.as_bytes());
    let fd = cp.open();
    let h = header(
        netmap_abi::NETMAP_REQ_VALE_NEWIF,
        "0123456789abcde",
        addr,
        0,
    );
    assert_eq!(ctrl(&cp, fd, &h, &um).unwrap_err(), EEXIST);
    assert_eq!(um.get::<NmreqValeNewif>(addr), mine);
    // An existing host interface also exists already.
    assert_eq!(newif(&cp, &um, "lo").unwrap_err(), EEXIST);
    cp.release(fd);
    // Requested counts are used.
    let asked = NmreqValeNewif {
        nr_tx_slots: 64,
        nr_rx_slots: 32,
        nr_tx_rings: 2,
        nr_rx_rings: 3,
        ..Default::default()
    };
    let b = req(&cp, &um, netmap_abi::NETMAP_REQ_VALE_NEWIF, "sized", &asked).unwrap();
    assert_eq!(
        (b.nr_tx_rings, b.nr_rx_rings, b.nr_tx_slots, b.nr_rx_slots),
        (2, 3, 64, 32)
    );
    let mut info = netmap_abi::NmreqPortInfoGet::default();
    info = req(
        &cp,
        &um,
        netmap_abi::NETMAP_REQ_PORT_INFO_GET,
        "sized",
        &info,
    )
    .unwrap();
    assert_eq!((info.nr_tx_rings, info.nr_rx_slots), (2, 32));
    delif(&cp, &um, "sized").unwrap();
    delif(&cp, &um, "0123456789abcde").unwrap();
}

#[test]
fn delif_errors() {
    let cp = new_cp();
    let um = FakeMem::new();
    // A body is refused by the generic checks.
    let fd = cp.open();
    let addr = um.put(&[0u8; 8]);
    let h = header(netmap_abi::NETMAP_REQ_VALE_DELIF, "x", addr, 0);
    assert_eq!(ctrl(&cp, fd, &h, &um).unwrap_err(), EINVAL);
    cp.release(fd);
    assert_eq!(delif(&cp, &um, "nosuchport").unwrap_err(), ENXIO);
    assert_eq!(
        delif(&cp, &um, "lo").unwrap_err(),
        EINVAL,
        "not a VALE port"
    );
    // An ephemeral VALE port is no interface.
    let (e, _) = open_reg(&cp, &um, "vale0:eph", &vale_req());
    assert_eq!(delif(&cp, &um, "vale0:eph").unwrap_err(), ENXIO);
    cp.release(e);
    newif(&cp, &um, "per1").unwrap();
    let (p, r) = open_reg(&cp, &um, "per1", &vale_req());
    assert_eq!(Client::new(&cp, &r).nifp().ni_name[..5], *b"per1\0");
    assert_eq!(delif(&cp, &um, "per1").unwrap_err(), EBUSY, "open");
    cp.release(p);
    attach(&cp, &um, "vale0:per1").unwrap();
    assert_eq!(delif(&cp, &um, "per1").unwrap_err(), EBUSY, "attached");
    detach(&cp, &um, "vale0:per1").unwrap();
    delif(&cp, &um, "per1").unwrap();
    assert_eq!(delif(&cp, &um, "per1").unwrap_err(), ENXIO, "gone");
    assert_eq!(
        register(&cp, &um, cp.open(), "per1", &vale_req()).unwrap_err(),
        ENXIO
    );
}

#[test]
fn attach_detach_errors() {
    let cp = new_cp();
    let um = FakeMem::new();
    newif(&cp, &um, "per2").unwrap();
    assert_eq!(
        attach(&cp, &um, "per2").unwrap_err(),
        EINVAL,
        "no vale prefix"
    );
    assert_eq!(attach(&cp, &um, "vale0:").unwrap_err(), EINVAL);
    assert_eq!(
        attach(&cp, &um, "vale0:nothere").unwrap_err(),
        EINVAL,
        "unknown"
    );
    let bad_mem = NmreqValeAttach {
        reg: NmreqRegister {
            nr_mode: netmap_abi::NR_REG_ALL_NIC,
            nr_mem_id: 9,
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        req(
            &cp,
            &um,
            netmap_abi::NETMAP_REQ_VALE_ATTACH,
            "vale0:per2",
            &bad_mem
        )
        .unwrap_err(),
        EINVAL
    );
    // NICs: ALL_NIC or NIC_SW with ring id 0 only (checked before the interface is
    // touched).
    for (mode, ringid) in [
        (netmap_abi::NR_REG_ONE_NIC, 0),
        (netmap_abi::NR_REG_SW, 0),
        (netmap_abi::NR_REG_ALL_NIC, 1),
    ] {
        assert_eq!(
            attach_mode(&cp, &um, "vale0:lo", mode, ringid).unwrap_err(),
            EINVAL
        );
    }
    // An open persistent port cannot be attached.
    let (p, _) = open_reg(&cp, &um, "per2", &vale_req());
    assert_eq!(attach(&cp, &um, "vale0:per2").unwrap_err(), EBUSY);
    cp.release(p);
    // Any mode is fine for a persistent port.
    let idx = attach_mode(&cp, &um, "vale0:per2", netmap_abi::NR_REG_ONE_NIC, 3).unwrap();
    assert_eq!(attach(&cp, &um, "vale0:per2").unwrap_err(), EBUSY, "twice");
    assert_eq!(
        attach(&cp, &um, "vale1:per2").unwrap_err(),
        EBUSY,
        "elsewhere"
    );
    let l = list(&cp, &um, "vale0:per2").unwrap();
    assert_eq!(l.nr_port_idx, idx);
    // Detach errors.
    assert_eq!(
        detach(&cp, &um, "per2").unwrap_err(),
        EINVAL,
        "no vale prefix"
    );
    assert_eq!(
        detach(&cp, &um, "vale9:per2").unwrap_err(),
        ENXIO,
        "no switch"
    );
    assert_eq!(
        detach(&cp, &um, "vale0:nope").unwrap_err(),
        ENXIO,
        "no port"
    );
    let (e, _) = open_reg(&cp, &um, "vale0:eph", &vale_req());
    assert_eq!(
        detach(&cp, &um, "vale0:eph").unwrap_err(),
        EINVAL,
        "ephemeral"
    );
    cp.release(e);
    let (p, _) = open_reg(&cp, &um, "vale0:per2", &vale_req());
    assert_eq!(detach(&cp, &um, "vale0:per2").unwrap_err(), EBUSY, "open");
    cp.release(p);
    // The switch survives with only the persistent port in it.
    assert_eq!(list(&cp, &um, "vale0:per2").unwrap().nr_port_idx, idx);
    assert_eq!(detach(&cp, &um, "vale0:per2").unwrap(), idx);
    assert_eq!(
        list(&cp, &um, "vale0:per2").unwrap_err(),
        ENOENT,
        "switch gone"
    );
    assert_eq!(detach(&cp, &um, "vale0:per2").unwrap_err(), ENXIO, "twice");
    delif(&cp, &um, "per2").unwrap();
}

#[test]
fn polling_errors() {
    let cp = new_cp();
    let um = FakeMem::new();
    assert_eq!(polling(&cp, &um, "per3", true).unwrap_err(), EINVAL);
    assert_eq!(polling(&cp, &um, "vale0:x", true).unwrap_err(), ENXIO);
    let (e, _) = open_reg(&cp, &um, "vale0:eph", &vale_req());
    assert_eq!(polling(&cp, &um, "vale0:x", false).unwrap_err(), ENXIO);
    assert_eq!(
        polling(&cp, &um, "vale0:eph", true).unwrap_err(),
        EOPNOTSUPP
    );
    assert_eq!(
        polling(&cp, &um, "vale0:eph", false).unwrap_err(),
        EOPNOTSUPP
    );
    cp.release(e);
}

#[test]
fn persistent_port_lifecycle_with_traffic() {
    let cp = new_cp();
    let um = FakeMem::new();
    let base = cp.pool_counts();
    newif(&cp, &um, "per0").unwrap();
    // Standalone: reachable by its bare name; "vale0:per0" is refused (it stands for
    // an interface not attached there).
    let (p, r) = open_reg(&cp, &um, "per0", &vale_req());
    assert_eq!((r.nr_tx_slots, r.nr_rx_rings), (1024, 1));
    cp.release(p);
    assert_eq!(
        register(&cp, &um, cp.open(), "vale0:per0", &vale_req()).unwrap_err(),
        EINVAL
    );
    let idx = attach(&cp, &um, "vale0:per0").unwrap();
    // Reachable as "per0" and "vale0:per0" (same port) now.
    let (a, ar) = open_reg(&cp, &um, "vale0:a", &vale_req());
    let (p, pr) = open_reg(&cp, &um, "per0", &vale_req());
    let (ac, pc) = (Client::new(&cp, &ar), Client::new(&cp, &pr));
    assert_eq!(&pc.nifp().ni_name[..11], b"vale0:per0\0");
    let bcast = frame([0xff; 6], 1, "flood from a");
    send_recv(&cp, (&ac, a), (&pc, p), &bcast);
    // per0 learned nothing yet: reply to a's MAC goes to a (learned by flooding).
    let reply = frame([2, 0, 0, 0, 0, 1], 2, "unicast to a");
    send_recv(&cp, (&pc, p), (&ac, a), &reply);
    let uni = frame([2, 0, 0, 0, 0, 2], 1, "unicast to per0");
    send_recv(&cp, (&ac, a), (&pc, p), &uni);
    let fd = cp.open();
    assert_eq!(
        register(&cp, &um, fd, "vale0:per0", &vale_req()).map(|r| r.nr_rx_slots),
        Ok(1024),
        "a second user of the attached port"
    );
    cp.release(fd);
    cp.release(p);
    cp.release(a);
    assert_eq!(detach(&cp, &um, "vale0:per0").unwrap(), idx);
    // Standalone again.
    let (p, _) = open_reg(&cp, &um, "per0", &vale_req());
    cp.release(p);
    delif(&cp, &um, "per0").unwrap();
    assert_eq!(cp.pool_counts(), base, "everything returned");
    assert_eq!(cp.lock().adapters.len(), 0, "no adapter left");
}

#[test]
fn pipes_of_vale_ports() {
    let cp = new_cp();
    let um = FakeMem::new();
    let base = cp.pool_counts();
    let (m, mc, s, sc) = pipe_pair(&cp, &um, "vale0:a", 0);
    assert_eq!(&mc.nifp().ni_name[..10], b"vale0:a{1\0");
    let f = frame([0xff; 6], 1, "through a VALE pipe");
    send_recv(&cp, (&mc, m), (&sc, s), &f);
    cp.release(m);
    cp.release(s);
    // Default slots of a pipe of a VALE parent: 1024.
    let fd = cp.open();
    let r = register(
        &cp,
        &um,
        fd,
        "valeX1:Y4{p",
        &NmreqRegister {
            nr_mode: netmap_abi::NR_REG_ALL_NIC,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.nr_tx_slots, 1024);
    cp.release(fd);
    assert_eq!(cp.pool_counts(), base);
}

fn legacy(
    cp: &ControlPlane,
    fd: FdId,
    cmd: u16,
    name: &str,
    f: impl FnOnce(&mut Nmreq),
) -> Result<Nmreq, Errno> {
    let mut r = Nmreq {
        nr_version: 14,
        nr_cmd: cmd,
        ..Default::default()
    };
    netmap_abi::set_cname(&mut r.nr_name, name);
    f(&mut r);
    let out = cp.ioctl(fd, netmap_abi::NIOCREGIF, r.as_bytes(), &NoMemory)?;
    Ok(Nmreq::read_from_bytes(&out).unwrap())
}

#[test]
fn legacy_vale_commands() {
    let cp = new_cp();
    let um = FakeMem::new();
    let fd = cp.open();
    use netmap_abi as a;
    let r = legacy(&cp, fd, a::NETMAP_BDG_NEWIF, "lper", |r| {
        r.nr_tx_slots = 128
    })
    .unwrap();
    assert_eq!(
        (r.nr_tx_slots, r.nr_rx_slots, r.nr_tx_rings, r.nr_arg2),
        (128, 1024, 1, 1)
    );
    assert_eq!(
        legacy(&cp, fd, a::NETMAP_BDG_NEWIF, "lper", |_| {}).unwrap_err(),
        EEXIST
    );
    legacy(&cp, fd, a::NETMAP_BDG_ATTACH, "vale3:lper", |_| {}).unwrap();
    assert!(list(&cp, &um, "vale3:lper").unwrap().nr_port_idx < 255);
    legacy(&cp, fd, a::NETMAP_BDG_VNET_HDR, "vale3:lper", |r| {
        r.nr_arg1 = 12
    })
    .unwrap();
    let r = legacy(&cp, fd, a::NETMAP_VNET_HDR_GET, "vale3:lper", |_| {}).unwrap();
    assert_eq!(r.nr_arg1, 12);
    assert_eq!(
        legacy(&cp, fd, a::NETMAP_BDG_VNET_HDR, "vale3:lper", |r| r
            .nr_arg1 =
            11)
        .unwrap_err(),
        EINVAL
    );
    assert_eq!(
        legacy(&cp, fd, a::NETMAP_BDG_POLLING_ON, "vale3:lper", |r| {
            r.nr_flags = a::NR_REG_ALL_NIC;
            r.nr_arg1 = 1;
        })
        .unwrap_err(),
        EOPNOTSUPP,
        "polling is for NICs only"
    );
    assert_eq!(
        legacy(&cp, fd, a::NETMAP_BDG_POLLING_OFF, "lper", |_| {}).unwrap_err(),
        EINVAL
    );
    assert_eq!(
        legacy(&cp, fd, a::NETMAP_BDG_DELIF, "lper", |_| {}).unwrap_err(),
        EBUSY
    );
    legacy(&cp, fd, a::NETMAP_BDG_DETACH, "vale3:lper", |_| {}).unwrap();
    // The header length travels with the port.
    let r = legacy(&cp, fd, a::NETMAP_VNET_HDR_GET, "lper", |_| {}).unwrap();
    assert_eq!(r.nr_arg1, 12);
    legacy(&cp, fd, a::NETMAP_BDG_DELIF, "lper", |_| {}).unwrap();
    assert_eq!(
        legacy(&cp, fd, a::NETMAP_BDG_DELIF, "lper", |_| {}).unwrap_err(),
        ENXIO
    );
    assert_eq!(
        legacy(&cp, fd, a::NETMAP_BDG_ATTACH, "vale3:nothing", |_| {}).unwrap_err(),
        EINVAL
    );
    cp.release(fd);
}
