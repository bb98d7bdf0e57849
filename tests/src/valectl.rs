//! VALE management from the application side, for the e2e tests: `nm-client vale-ctl`
//! issues the same NIOCCTRL sequences as netmap's `vale-ctl` (NETMAP-ABI.md §10.3),
//! and `nm-client vale-learn` checks learning and flooding across three ports.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use netmap_abi::{
    set_cname, NmreqHeader, NmreqRegister, NmreqValeAttach, NmreqValeDetach, NmreqValeList,
    NmreqValeNewif, NmreqValePolling, NETMAP_POLLING_MODE_SINGLE_CPU, NETMAP_REQ_VALE_ATTACH,
    NETMAP_REQ_VALE_DELIF, NETMAP_REQ_VALE_DETACH, NETMAP_REQ_VALE_LIST, NETMAP_REQ_VALE_NEWIF,
    NETMAP_REQ_VALE_POLLING_DISABLE, NETMAP_REQ_VALE_POLLING_ENABLE, NR_REG_ALL_NIC, NR_REG_NIC_SW,
};

use crate::sys::{self, errno_name, errno_of, Errno};
use crate::Port;

type R = Result<(), String>;

/// One NIOCCTRL on a fresh descriptor (as vale-ctl does); `body` is updated in place.
fn ctl<T: zerocopy::IntoBytes + zerocopy::FromBytes>(
    t: u16,
    name: &str,
    body: Option<&mut T>,
) -> Result<NmreqHeader, Errno> {
    let fd = sys::open_netmap().map_err(|e| Errno(errno_of(&e)))?;
    let mut hdr = NmreqHeader {
        nr_reqtype: t,
        nr_body: body.map_or(0, |b| b as *mut T as u64),
        ..NmreqHeader::default()
    };
    set_cname(&mut hdr.nr_name, name);
    // SAFETY: nr_body is 0 or points to a live, exclusively borrowed body of the type
    // the request uses; no options.
    unsafe { sys::nioctrl(fd.as_raw_fd(), &mut hdr) }.map(|()| hdr)
}

fn report(what: &str, r: Result<String, Errno>) -> R {
    match r {
        Ok(s) => {
            println!("{what}: ok{s}");
            Ok(())
        }
        Err(e) => {
            println!("{what}: {}", errno_name(e.0));
            Err(format!("{what} failed: {e}"))
        }
    }
}

/// `vale-ctl -n NAME | -a valeX:NAME | -h valeX:NAME | -d valeX:NAME | -r NAME |
/// -l [valeX:port] | -p NAME | -P NAME | -o NAME`. Prints `<op>: ok…` or
/// `<op>: ERRNO` (exit status 1). `-o` is not vale-ctl's: it REGISTERs NAME (ALL_NIC).
pub fn vale_ctl(args: &[String]) -> R {
    let (op, name) = match args {
        [op] if op == "-l" => (op.as_str(), ""),
        [op, name] => (op.as_str(), name.as_str()),
        _ => return Err("vale-ctl: one option and one name".into()),
    };
    let attach = |mode: u32| {
        let mut b = NmreqValeAttach {
            reg: NmreqRegister {
                nr_mode: mode,
                ..Default::default()
            },
            ..Default::default()
        };
        ctl(NETMAP_REQ_VALE_ATTACH, name, Some(&mut b))
            .map(|_| format!(" port_index={}", b.port_index))
    };
    let polling = |t: u16| {
        let mut b = NmreqValePolling {
            nr_mode: NETMAP_POLLING_MODE_SINGLE_CPU,
            nr_first_cpu_id: 0,
            nr_num_polling_cpus: 1,
            pad1: 0,
        };
        ctl(t, name, Some(&mut b)).map(|_| String::new())
    };
    let r = match op {
        "-n" => {
            let mut b = NmreqValeNewif::default();
            ctl(NETMAP_REQ_VALE_NEWIF, name, Some(&mut b)).map(|_| {
                format!(
                    " tx_slots={} rx_slots={} tx_rings={} rx_rings={}",
                    b.nr_tx_slots, b.nr_rx_slots, b.nr_tx_rings, b.nr_rx_rings
                )
            })
        }
        "-a" => attach(NR_REG_ALL_NIC),
        "-h" => attach(NR_REG_NIC_SW),
        "-d" => {
            let mut b = NmreqValeDetach::default();
            ctl(NETMAP_REQ_VALE_DETACH, name, Some(&mut b))
                .map(|_| format!(" port_index={}", b.port_index))
        }
        "-r" => ctl::<NmreqValeDetach>(NETMAP_REQ_VALE_DELIF, name, None).map(|_| String::new()),
        "-p" => polling(NETMAP_REQ_VALE_POLLING_ENABLE),
        "-P" => polling(NETMAP_REQ_VALE_POLLING_DISABLE),
        "-o" => Port::register(name, NR_REG_ALL_NIC, 0, 0, 0, 0, 0, 0, 0)
            .map(|_| String::new())
            .map_err(|e| Errno(errno_of(&e))),
        "-l" if !name.is_empty() => {
            let mut b = NmreqValeList::default();
            ctl(NETMAP_REQ_VALE_LIST, name, Some(&mut b))
                .map(|_| format!(" bridge={} port={}", b.nr_bridge_idx, b.nr_port_idx))
        }
        "-l" => {
            // Enumeration: empty name, port index bumped after each hit, until ENOENT.
            let mut b = NmreqValeList::default();
            let mut out = String::new();
            loop {
                match ctl(NETMAP_REQ_VALE_LIST, "", Some(&mut b)) {
                    Ok(h) => {
                        out.push_str(&format!(" {}", netmap_abi::cname(&h.nr_name)));
                        b.nr_port_idx += 1;
                    }
                    Err(Errno(libc::ENOENT)) => break Ok(out),
                    Err(e) => break Err(e),
                }
            }
        }
        _ => return Err(format!("vale-ctl: unknown option {op}")),
    };
    report(&format!("{op} {name}"), r)
}

/// A 60-byte frame `dst ← src` carrying `tag`.
fn frame(dst: [u8; 6], src: [u8; 6], tag: &str) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&crate::frame::eth_header(
        dst,
        src,
        crate::frame::ETHERTYPE_EXPERIMENTAL,
    ));
    f.extend_from_slice(tag.as_bytes());
    f.resize(60, 0);
    f
}

fn mac(i: u8) -> [u8; 6] {
    [0x02, 0x6e, 0x6d, 0x64, 0x10, i]
}

fn send(p: &Port, f: &[u8]) -> R {
    let t = p.tx_ring(0).ok_or("no TX ring")?;
    let k = t.cur();
    t.write_buf(t.slot_buf_idx(k), 0, f);
    t.set_slot_len(k, f.len() as u16);
    t.set_slot_flags(k, 0);
    t.advance(t.next(k));
    p.txsync().map_err(|e| format!("txsync: {e}"))
}

/// Every frame waiting on `p` (after a short wait for the first one).
fn recv_all(p: &Port, wait: Duration) -> Result<Vec<Vec<u8>>, String> {
    let deadline = Instant::now() + wait;
    let r = p.rx_ring(0).ok_or("no RX ring")?;
    loop {
        p.rxsync().map_err(|e| format!("rxsync: {e}"))?;
        if r.head() != r.tail() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut out = Vec::new();
    let mut k = r.head();
    while k != r.tail() {
        let mut b = vec![0u8; usize::from(r.slot_len(k))];
        r.read_buf(r.slot_buf_idx(k), &mut b);
        out.push(b);
        k = r.next(k);
    }
    r.advance(k);
    p.rxsync().map_err(|e| format!("rxsync: {e}"))?;
    Ok(out)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2).unwrap_or(""), 16))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad hex {s:?}: {e}"))
}

/// `nm-client port-agent --port NAME`: registers NAME and serves one line per request
/// on stdin: `send HEX` (one frame, txsync; answers `sent`), `recv MS` (the frames
/// waiting, after up to MS ms for the first: one `got HEX` line each, then `end`).
/// [`vale_learn`] drives one agent per port so that each port can live in a process
/// of its own, with or without the preload library.
pub fn port_agent(name: &str) -> R {
    use std::io::BufRead;
    let p = Port::register(name, NR_REG_ALL_NIC, 0, 0, 0, 0, 0, 0, 0)
        .map_err(|e| format!("REGISTER {name}: {e}"))?;
    let mut out = std::io::stdout().lock();
    let io = |e: std::io::Error| e.to_string();
    writeln!(out, "ready").map_err(io)?;
    out.flush().map_err(io)?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(io)?;
        match line.split_once(' ') {
            Some(("send", h)) => {
                send(&p, &unhex(h)?)?;
                writeln!(out, "sent").map_err(io)?;
            }
            Some(("recv", ms)) => {
                let ms: u64 = ms.parse().map_err(|e| format!("recv {ms:?}: {e}"))?;
                for f in recv_all(&p, Duration::from_millis(ms))? {
                    writeln!(out, "got {}", hex(&f)).map_err(io)?;
                }
                writeln!(out, "end").map_err(io)?;
            }
            _ => return Err(format!("port-agent: bad request {line:?}")),
        }
        out.flush().map_err(io)?;
    }
    Ok(())
}

/// One port of [`vale_learn`]: registered here, or served by a [`port_agent`] child.
enum LearnPort {
    Local(Port),
    Agent {
        child: std::process::Child,
        to: std::process::ChildStdin,
        from: std::io::BufReader<std::process::ChildStdout>,
    },
}

impl LearnPort {
    /// `how`: "local", or "pre"/"plain" for an agent with/without `preload`.
    fn open(name: &str, how: &str, preload: Option<&str>) -> Result<Self, String> {
        use std::io::BufRead;
        if how == "local" {
            return Ok(Self::Local(
                Port::register(name, NR_REG_ALL_NIC, 0, 0, 0, 0, 0, 0, 0)
                    .map_err(|e| format!("REGISTER {name}: {e}"))?,
            ));
        }
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["port-agent", "--port", name])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        match (how, preload) {
            ("pre", Some(lib)) => {
                cmd.env("LD_PRELOAD", lib);
            }
            ("pre", None) => {
                return Err("an agent with the preload library needs --preload LIB".into())
            }
            ("plain", _) => {
                cmd.env_remove("LD_PRELOAD");
            }
            _ => return Err(format!("unknown port mode {how:?} (local, pre, plain)")),
        }
        let mut child = cmd.spawn().map_err(|e| format!("port-agent {name}: {e}"))?;
        let to = child.stdin.take().ok_or("no agent stdin")?;
        let mut from = std::io::BufReader::new(child.stdout.take().ok_or("no agent stdout")?);
        let mut l = String::new();
        from.read_line(&mut l).map_err(|e| e.to_string())?;
        if l.trim() != "ready" {
            return Err(format!("port-agent {name} did not start: {l:?}"));
        }
        Ok(Self::Agent { child, to, from })
    }

    fn send(&mut self, f: &[u8]) -> R {
        use std::io::BufRead;
        match self {
            Self::Local(p) => send(p, f),
            Self::Agent { to, from, .. } => {
                writeln!(to, "send {}", hex(f)).map_err(|e| e.to_string())?;
                let mut l = String::new();
                from.read_line(&mut l).map_err(|e| e.to_string())?;
                (l.trim() == "sent")
                    .then_some(())
                    .ok_or(format!("agent: {l:?}"))
            }
        }
    }

    fn recv_all(&mut self, wait: Duration) -> Result<Vec<Vec<u8>>, String> {
        use std::io::BufRead;
        match self {
            Self::Local(p) => recv_all(p, wait),
            Self::Agent { to, from, .. } => {
                writeln!(to, "recv {}", wait.as_millis()).map_err(|e| e.to_string())?;
                let mut got = Vec::new();
                loop {
                    let mut l = String::new();
                    if from.read_line(&mut l).map_err(|e| e.to_string())? == 0 {
                        return Err("agent exited".into());
                    }
                    match l.trim().split_once(' ') {
                        Some(("got", h)) => got.push(unhex(h)?),
                        _ if l.trim() == "end" => return Ok(got),
                        _ => return Err(format!("agent: {l:?}")),
                    }
                }
            }
        }
    }
}

impl Drop for LearnPort {
    fn drop(&mut self) {
        if let Self::Agent { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Learning bridge across ports a, b, c of `switch` (NETMAP-ABI.md §10.2): broadcasts
/// and unknown unicasts flood to every other port, learned unicasts go to one port,
/// payloads arrive intact. `modes` says where each port lives: "local" (this process)
/// or an agent process with ("pre", `preload` is the library) or without ("plain")
/// the preload library.
pub fn vale_learn(switch: &str, modes: [&str; 3], preload: Option<&str>) -> R {
    let mut ports = Vec::new();
    for (p, how) in ["a", "b", "c"].iter().zip(modes) {
        ports.push(LearnPort::open(&format!("{switch}:{p}"), how, preload)?);
    }
    let short = Duration::from_millis(300);
    // (sender, dst, tag, expected receivers)
    let steps: [(usize, [u8; 6], &str, &[usize]); 6] = [
        (0, crate::frame::BROADCAST, "a broadcast", &[1, 2]),
        (1, mac(0), "b to a (learned)", &[0]),
        (2, mac(9), "c to unknown", &[0, 1]),
        (0, mac(1), "a to b (learned)", &[1]),
        (0, mac(2), "a to c (learned)", &[2]),
        (2, mac(0), "c to a", &[0]),
    ];
    for (from, dst, tag, want) in steps {
        let f = frame(dst, mac(from as u8), tag);
        ports[from].send(&f)?;
        for (i, p) in ports.iter_mut().enumerate() {
            let got = p.recv_all(if want.contains(&i) {
                Duration::from_secs(2)
            } else {
                short
            })?;
            let expect: Vec<Vec<u8>> = if want.contains(&i) {
                vec![f.clone()]
            } else {
                Vec::new()
            };
            if got != expect {
                return Err(format!(
                    "{tag}: port {i} got {} frame(s), expected {} (payload checked)",
                    got.len(),
                    expect.len()
                ));
            }
        }
        println!("vale-learn: {tag}: delivered to {want:?}");
    }
    println!("vale-learn: ok modes={modes:?}");
    Ok(())
}
