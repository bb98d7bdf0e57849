//! `nm-client`: a netmap application for the e2e tests, speaking the raw
//! /dev/netmap ABI like pkt-gen or ctrl-api-test would.
//!
//! ```text
//! nm-client pipe-tx --port NAME (--count N | --duration SECS) [--burst 512] [--len L | --max-len M] [--rate PPS [--rate-bursts]] [--stream ID]
//! nm-client pipe-rx --port NAME (--count N | --until-idle MS) [--len L | --max-len M] [--ignore-foreign] [--lossy [--idle-ms MS]] [--stream ID]
//! nm-client pipe-kill-victim --port NAME
//! nm-client errno CASE | --list | --all
//! nm-client bench-rtt [--iters 200000] [--port 'rtt{0']
//! nm-client bench-latency [--iters 20000] [--port 'lat{0'] [--peer 'lat}0']
//! nm-client bench-pipe [--count 20000000] [--burst 512] [--len 60] [--port 'pp{0']
//! nm-client nic CASE --if IFNAME | nic --list
//! nm-client flows-tx --if IFNAME --count N [--flows 256] [--rate PPS]
//! nm-client mq-rx --if IFNAME --count N [--spread]
//! nm-client hold --port NAME
//! nm-client kloop-hold --port NAME
//! nm-client rx-count --port NAME [--count N] [--idle-ms 1000]
//! nm-client one-nic-rx --if IFNAME --ring I --idle-ms MS
//! nm-client udp-send --to IP:PORT --count N
//! nm-client udp-count --bind IP:PORT --ms MS
//! nm-client monitor-rx --port NAME --flags r|t|rt|z --count N [--len L | --max-len M] [--stream ID]
//! ```
//! `pipe-tx`/`pipe-rx` work on any port (pipe end or NIC such as "vA"); on a NIC use
//! `--rate` to pace the sender below what the receiver sustains and
//! `--ignore-foreign` to skip frames the kernel injects (they lack our marker).
//! Exit status 0 means the scenario behaved exactly as NETMAP-ABI.md says.

use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use netmapd_tests::cases::{self, CASES};
use netmapd_tests::payload::{Payload, MAX_LEN, MIN_LEN};
use netmapd_tests::{bench, monitor, nic, stream};

const USAGE: &str = "usage:
  nm-client pipe-tx --port NAME (--count N | --duration SECS) [--burst 512] [--len L | --max-len M] [--rate PPS [--rate-bursts]] [--stream ID]
  nm-client pipe-rx --port NAME (--count N | --until-idle MS) [--len L | --max-len M] [--ignore-foreign] [--lossy [--idle-ms MS]] [--stream ID]
  nm-client pipe-kill-victim --port NAME
  nm-client errno CASE | --list | --all
  nm-client bench-rtt [--iters 200000] [--port 'rtt{0']
  nm-client bench-latency [--iters 20000] [--port 'lat{0'] [--peer 'lat}0']
  nm-client bench-pipe [--count 20000000] [--burst 512] [--len 60] [--port 'pp{0'] [--peer NAME]
  nm-client nic CASE --if IFNAME | nic --list
  nm-client flows-tx --if IFNAME --count N [--flows 256] [--rate PPS]
  nm-client mq-rx --if IFNAME --count N [--spread]
  nm-client hold --port NAME
  nm-client kloop-hold --port NAME
  nm-client rx-count --port NAME [--count N] [--idle-ms 1000]
  nm-client one-nic-rx --if IFNAME --ring I --idle-ms MS
  nm-client udp-send --to IP:PORT --count N
  nm-client udp-count --bind IP:PORT --ms MS
  nm-client vale-ctl -n NAME | -a|-h|-d valeX:NAME | -r NAME | -l [valeX:port] | -p|-P valeX:IF | -o NAME
  nm-client vale-learn [SWITCH] [--modes local,pre,plain] [--preload LIB]
  nm-client port-agent --port NAME
  nm-client monitor-rx --port NAME --flags r|t|rt|z --count N [--len L | --max-len M] [--stream ID]";

/// `pipe-rx --until-idle`: how long to wait for the first packet (many clients may be
/// starting at once on a small machine).
const UNTIL_IDLE_FIRST_WAIT: Duration = Duration::from_secs(30);

/// `--key value` options after the subcommand.
struct Opts {
    port: Option<String>,
    /// bench-pipe: the receiving port when it is not the pipe peer of --port
    /// (e.g. two VALE ports); the receiver then tolerates (and counts) loss, since a
    /// switch drops when the destination ring is full instead of blocking the sender.
    peer: Option<String>,
    lossy: bool,
    count: Option<u64>,
    burst: u32,
    len: Option<usize>,
    max_len: usize,
    iters: Option<u64>,
    /// Pacing of pipe-tx / flows-tx in packets per second (None or 0 = unpaced).
    rate: Option<u64>,
    ignore_foreign: bool,
    /// pipe-tx: pace in whole bursts as pkt-gen's `-R` does (see [`stream::Pacing`]).
    rate_bursts: bool,
    ifname: Option<String>,
    flows: u32,
    spread: bool,
    idle_ms: u64,
    /// pipe-tx: stop queueing after this many seconds (the count is printed).
    duration: Option<u64>,
    /// pipe-rx: stop after this many ms without a new packet (once one arrived).
    until_idle: Option<u64>,
    /// Payload stream id (sender and receiver must agree).
    stream: u32,
    /// monitor-rx: the `/FLAGS` letters (r, t, z).
    flags: Option<String>,
}

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        port: None,
        peer: None,
        lossy: false,
        count: None,
        burst: 512,
        len: None,
        max_len: MAX_LEN,
        iters: None,
        rate: None,
        ignore_foreign: false,
        rate_bursts: false,
        ifname: None,
        flows: 256,
        spread: false,
        idle_ms: 1000,
        duration: None,
        until_idle: None,
        stream: 0,
        flags: None,
    };
    let mut it = args.iter();
    while let Some(k) = it.next() {
        // Flags without a value.
        match k.as_str() {
            "--ignore-foreign" => {
                o.ignore_foreign = true;
                continue;
            }
            "--rate-bursts" => {
                o.rate_bursts = true;
                continue;
            }
            "--spread" => {
                o.spread = true;
                continue;
            }
            "--lossy" => {
                o.lossy = true;
                continue;
            }
            _ => {}
        }
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{k} {v}: {e}"));
        match k.as_str() {
            "--port" => o.port = Some(v.clone()),
            "--flags" => o.flags = Some(v.clone()),
            "--peer" => o.peer = Some(v.clone()),
            "--count" => o.count = Some(num(v)?),
            "--burst" => o.burst = num(v)?.clamp(1, u32::MAX as u64) as u32,
            "--len" => o.len = Some(num(v)? as usize),
            "--max-len" => o.max_len = num(v)? as usize,
            "--iters" => o.iters = Some(num(v)?),
            "--rate" => o.rate = Some(num(v)?),
            "--idle-ms" => o.idle_ms = num(v)?,
            "--duration" => o.duration = Some(num(v)?),
            "--until-idle" => o.until_idle = Some(num(v)?),
            "--stream" => o.stream = u32::try_from(num(v)?).map_err(|e| format!("{k}: {e}"))?,
            "--if" => o.ifname = Some(v.clone()),
            "--flows" => o.flows = num(v)?.clamp(1, 65_536) as u32,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(o)
}

fn need<T: Clone>(v: &Option<T>, what: &str) -> Result<T, String> {
    v.clone().ok_or_else(|| format!("missing {what}"))
}

fn pipe_tx(o: &Opts) -> Result<(), String> {
    let name = need(&o.port, "--port")?;
    let duration = o.duration.map(Duration::from_secs);
    let count = match duration {
        Some(_) => o.count.unwrap_or(u64::MAX),
        None => need(&o.count, "--count or --duration")?,
    };
    let payload = Payload::for_stream(o.len, o.max_len, o.stream)?;
    let port = stream::open_end(&name)?;
    let pacing = match o.rate.filter(|&r| r > 0) {
        None => stream::Pacing::None,
        Some(r) if o.rate_bursts => stream::Pacing::Bursts(r),
        Some(r) => stream::Pacing::Smooth(r),
    };
    let st = stream::send_until(&port, count, duration, o.burst, &payload, pacing)?;
    let paced = match pacing {
        stream::Pacing::Smooth(r) => format!(", paced at {r} pps"),
        stream::Pacing::Bursts(r) => format!(", paced at {r} pps in bursts of {}", o.burst),
        stream::Pacing::None => String::new(),
    };
    println!(
        "pipe-tx {name}: sent {} packets in {:.3} s ({:.3} Mpps{paced})",
        st.packets,
        st.elapsed.as_secs_f64(),
        st.mpps()
    );
    Ok(())
}

fn pipe_rx(o: &Opts) -> Result<(), String> {
    let name = need(&o.port, "--port")?;
    let payload = Payload::for_stream(o.len, o.max_len, o.stream)?;
    let st = match o.until_idle {
        Some(ms) => {
            if o.ignore_foreign {
                return Err("--until-idle does not support --ignore-foreign".into());
            }
            let port = stream::open_end(&name)?;
            stream::receive_until_idle(
                &port,
                &payload,
                Duration::from_millis(ms),
                UNTIL_IDLE_FIRST_WAIT,
            )?
        }
        None if o.lossy => {
            let count = need(&o.count, "--count")?;
            let port = stream::open_end(&name)?;
            stream::receive_lossy(
                &port,
                count,
                &payload,
                o.ignore_foreign,
                Duration::from_millis(o.idle_ms.max(1)),
                UNTIL_IDLE_FIRST_WAIT,
            )?
        }
        None => {
            let count = need(&o.count, "--count or --until-idle")?;
            let port = stream::open_end(&name)?;
            stream::receive_filtered(&port, count, &payload, o.ignore_foreign)?
        }
    };
    if o.lossy {
        println!(
            "pipe-rx {name}: received {} packets in order and intact, lost={}{}",
            st.packets,
            st.lost,
            if o.ignore_foreign {
                format!(" (ignored {} foreign frames)", st.foreign)
            } else {
                String::new()
            }
        );
        return Ok(());
    }
    println!(
        "pipe-rx {name}: received {} packets in {:.3} s ({:.3} Mpps), all in order and intact{}",
        st.packets,
        st.elapsed.as_secs_f64(),
        st.mpps(),
        if o.ignore_foreign {
            format!(" (ignored {} foreign frames)", st.foreign)
        } else {
            String::new()
        }
    );
    Ok(())
}

fn monitor_rx(o: &Opts) -> Result<(), String> {
    let name = need(&o.port, "--port")?;
    let letters = need(&o.flags, "--flags")?;
    let count = need(&o.count, "--count")?;
    let payload = Payload::for_stream(o.len, o.max_len, o.stream)?;
    let line = monitor::monitor_rx(&name, &letters, count, &payload)?;
    println!("{line}");
    Ok(())
}

fn bench_rtt(o: &Opts) -> Result<(), String> {
    let port = o.port.clone().unwrap_or_else(|| "rtt{0".into());
    let f = bench::rtt(&port, o.iters.unwrap_or(200_000))?;
    println!("{}", f.line());
    Ok(())
}

fn bench_latency(o: &Opts) -> Result<(), String> {
    let port = o.port.clone().unwrap_or_else(|| "lat{0".into());
    let peer = match &o.peer {
        Some(p) => p.clone(),
        None => stream::peer_name(&port)?,
    };
    let f = netmapd_tests::latency::latency(&port, &peer, o.iters.unwrap_or(20_000))?;
    println!("{}", f.line(&port, &peer));
    Ok(())
}

/// Packet length of the pipe benchmark: `--len`, default 60 (the minimum frame).
fn bench_len(o: &Opts) -> Result<usize, String> {
    let len = o.len.unwrap_or(MIN_LEN);
    if (MIN_LEN..=MAX_LEN).contains(&len) {
        Ok(len)
    } else {
        Err(format!("--len {len} not in [{MIN_LEN}, {MAX_LEN}]"))
    }
}

fn bench_pipe_side(o: &Opts, tx: bool) -> Result<(), String> {
    let name = need(&o.port, "--port")?;
    let count = need(&o.count, "--count")?;
    let len = bench_len(o)?;
    let port = stream::open_end(&name)?;
    let st = if tx {
        bench::send(&port, count, o.burst, len)?
    } else {
        bench::receive(&port, count, len, o.lossy)?
    };
    println!(
        "{} packets={} secs={:.6} mpps={:.4} polls={} lost={}",
        if tx { "bench-pipe-tx" } else { "bench-pipe-rx" },
        st.packets,
        st.elapsed.as_secs_f64(),
        st.mpps(),
        st.polls,
        st.lost
    );
    Ok(())
}

/// Value of `key=` in a `key=value` line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// Runs a receiver and a sender as two child processes (this binary's
/// `bench-pipe-rx` / `bench-pipe-tx`) on the two ends of one pipe.
fn bench_pipe(o: &Opts) -> Result<(), String> {
    let name = o.port.clone().unwrap_or_else(|| "pp{0".into());
    let peer = match &o.peer {
        Some(p) => p.clone(),
        None => stream::peer_name(&name)?,
    };
    let count = o.count.unwrap_or(20_000_000);
    let len = bench_len(o)?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let lossy = o.peer.is_some();
    let spawn = |sub: &str, port: &str| {
        Command::new(&exe)
            .args([sub, "--port", port, "--count", &count.to_string()])
            .args(if lossy { &["--lossy"][..] } else { &[][..] })
            .args(["--burst", &o.burst.to_string(), "--len", &len.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {sub}: {e}"))
    };
    let rx = spawn("bench-pipe-rx", &peer)?;
    let tx = spawn("bench-pipe-tx", &name)?;
    let finish = |c: std::process::Child, sub: &str| -> Result<String, String> {
        let out = c
            .wait_with_output()
            .map_err(|e| format!("wait {sub}: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!("{sub} failed ({}): {text}", out.status));
        }
        text.lines()
            .find(|l| l.starts_with(sub))
            .map(str::to_string)
            .ok_or_else(|| format!("{sub} printed no summary: {text:?}"))
    };
    let tx_line = finish(tx, "bench-pipe-tx");
    let rx_line = finish(rx, "bench-pipe-rx");
    let (tx_line, rx_line) = (tx_line?, rx_line?);
    let get = |l: &str, k: &str| field(l, k).unwrap_or("?").to_string();
    println!(
        "bench-pipe packets={count} len={len} burst={} rx_mpps={} tx_mpps={} rx_secs={} \
         rx_polls={} tx_polls={} rx_lost={}",
        o.burst,
        get(&rx_line, "mpps"),
        get(&tx_line, "mpps"),
        get(&rx_line, "secs"),
        get(&rx_line, "polls"),
        get(&tx_line, "polls"),
        get(&rx_line, "lost"),
    );
    Ok(())
}

fn run_case(c: &cases::Case) -> bool {
    match (c.run)() {
        Ok(()) => {
            println!("ok   {}: {}", c.name, c.what);
            true
        }
        Err(e) => {
            println!("FAIL {}: {}\n     {e}", c.name, c.what);
            false
        }
    }
}

fn errno_cmd(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("--list") => {
            for c in CASES {
                println!("{}", c.name);
            }
            Ok(())
        }
        Some("--all") => {
            // Handy for manual runs; the test suite runs one case per daemon instead.
            let failed: Vec<_> = CASES
                .iter()
                .filter(|c| !run_case(c))
                .map(|c| c.name)
                .collect();
            if failed.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} case(s) failed: {}",
                    failed.len(),
                    failed.join(" ")
                ))
            }
        }
        Some(name) => {
            let c = cases::find(name)
                .ok_or_else(|| format!("unknown case {name:?} (see errno --list)"))?;
            if run_case(c) {
                Ok(())
            } else {
                Err(format!("case {name} failed"))
            }
        }
        None => Err("errno needs a CASE, --list or --all".into()),
    }
}

fn nic_cmd(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("--list") => {
            for c in nic::NIC_CASES {
                println!("{}", c.name);
            }
            Ok(())
        }
        Some(name) => {
            let c =
                nic::find(name).ok_or_else(|| format!("unknown case {name:?} (see nic --list)"))?;
            let o = parse_opts(&args[1..])?;
            let ifname = need(&o.ifname, "--if")?;
            match (c.run)(&ifname) {
                Ok(()) => {
                    println!("ok   {} on {ifname}: {}", c.name, c.what);
                    Ok(())
                }
                Err(e) => Err(format!("FAIL {} on {ifname}: {}\n     {e}", c.name, c.what)),
            }
        }
        None => Err("nic needs a CASE or --list".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let r = match cmd.as_str() {
        "pipe-tx" => parse_opts(rest).and_then(|o| pipe_tx(&o)),
        "pipe-rx" => parse_opts(rest).and_then(|o| pipe_rx(&o)),
        "pipe-kill-victim" => parse_opts(rest)
            .and_then(|o| need(&o.port, "--port"))
            .and_then(|p| stream::victim(&p)),
        "errno" => errno_cmd(rest),
        "nic" => nic_cmd(rest),
        "flows-tx" => parse_opts(rest).and_then(|o| {
            nic::flows_tx(
                &need(&o.ifname, "--if")?,
                need(&o.count, "--count")?,
                o.flows,
                o.rate.unwrap_or(0),
            )
        }),
        "mq-rx" => parse_opts(rest).and_then(|o| {
            nic::mq_rx(
                &need(&o.ifname, "--if")?,
                need(&o.count, "--count")?,
                o.spread,
            )
        }),
        "one-nic-rx" => match rest {
            [i, ifname, r, ring, m, ms] if i == "--if" && r == "--ring" && m == "--idle-ms" => {
                match (ring.parse(), ms.parse()) {
                    (Ok(ring), Ok(ms)) => nic::one_nic_rx(ifname, ring, ms),
                    _ => Err("--ring and --idle-ms take numbers".into()),
                }
            }
            _ => Err("one-nic-rx --if IFNAME --ring I --idle-ms MS".into()),
        },
        "udp-send" => match rest {
            [k, to, c, n] if k == "--to" && c == "--count" => n
                .parse()
                .map_err(|e| format!("--count: {e}"))
                .and_then(|n| nic::udp_send(to, n)),
            _ => Err("udp-send --to IP:PORT --count N".into()),
        },
        "udp-count" => match rest {
            [k, addr, m, ms] if k == "--bind" && m == "--ms" => ms
                .parse()
                .map_err(|e| format!("--ms: {e}"))
                .and_then(|ms| nic::udp_count(addr, ms)),
            _ => Err("udp-count --bind IP:PORT --ms MS".into()),
        },
        "rx-count" => parse_opts(rest).and_then(|o| {
            nic::rx_count(
                &need(&o.port, "--port")?,
                o.count.unwrap_or(u64::MAX),
                o.idle_ms,
            )
        }),
        "monitor-rx" => parse_opts(rest).and_then(|o| monitor_rx(&o)),
        "kloop-hold" => parse_opts(rest)
            .and_then(|o| need(&o.port, "--port"))
            .and_then(|p| netmapd_tests::kloop::hold(&p)),
        "hold" => parse_opts(rest)
            .and_then(|o| need(&o.port, "--port"))
            .and_then(|p| nic::hold(&p)),
        "bench-rtt" => parse_opts(rest).and_then(|o| bench_rtt(&o)),
        "bench-latency" => parse_opts(rest).and_then(|o| bench_latency(&o)),
        "bench-pong" => parse_opts(rest).and_then(|o| {
            netmapd_tests::latency::pong(&need(&o.port, "--port")?, need(&o.count, "--count")?)
        }),
        "bench-pipe" => parse_opts(rest).and_then(|o| bench_pipe(&o)),
        "bench-pipe-tx" => parse_opts(rest).and_then(|o| bench_pipe_side(&o, true)),
        "bench-pipe-rx" => parse_opts(rest).and_then(|o| bench_pipe_side(&o, false)),
        "vale-ctl" => netmapd_tests::valectl::vale_ctl(rest),
        "vale-learn" => {
            let sw = rest
                .first()
                .filter(|a| !a.starts_with('-'))
                .map_or("vale0", |s| s);
            let opt = |k: &str| rest.windows(2).find(|w| w[0] == k).map(|w| w[1].as_str());
            let modes: Vec<&str> = opt("--modes")
                .unwrap_or("local,local,local")
                .split(',')
                .collect();
            match <[&str; 3]>::try_from(modes) {
                Ok(m) => netmapd_tests::valectl::vale_learn(sw, m, opt("--preload")),
                Err(_) => Err("--modes takes three comma-separated modes".into()),
            }
        }
        "port-agent" => match rest {
            [k, name] if k == "--port" => netmapd_tests::valectl::port_agent(name),
            _ => Err("port-agent --port NAME".into()),
        },
        "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown subcommand {other:?}\n{USAGE}")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nm-client {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}
