//! `nm-client`: a netmap application for the e2e tests, speaking the raw
//! /dev/netmap ABI like pkt-gen or ctrl-api-test would.
//!
//! ```text
//! nm-client pipe-tx --port NAME --count N [--burst 512] [--len L | --max-len M]
//! nm-client pipe-rx --port NAME --count N [--len L | --max-len M]
//! nm-client pipe-kill-victim --port NAME
//! nm-client errno CASE | --list | --all
//! ```
//! Exit status 0 means the scenario behaved exactly as NETMAP-ABI.md says.

use std::process::ExitCode;

use netmapd_tests::cases::{self, CASES};
use netmapd_tests::payload::{Payload, MAX_LEN};
use netmapd_tests::stream;

const USAGE: &str = "usage:
  nm-client pipe-tx --port NAME --count N [--burst 512] [--len L | --max-len M]
  nm-client pipe-rx --port NAME --count N [--len L | --max-len M]
  nm-client pipe-kill-victim --port NAME
  nm-client errno CASE | --list | --all";

/// `--key value` options after the subcommand.
struct Opts {
    port: Option<String>,
    count: Option<u64>,
    burst: u32,
    len: Option<usize>,
    max_len: usize,
}

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        port: None,
        count: None,
        burst: 512,
        len: None,
        max_len: MAX_LEN,
    };
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{k} {v}: {e}"));
        match k.as_str() {
            "--port" => o.port = Some(v.clone()),
            "--count" => o.count = Some(num(v)?),
            "--burst" => o.burst = num(v)?.clamp(1, u32::MAX as u64) as u32,
            "--len" => o.len = Some(num(v)? as usize),
            "--max-len" => o.max_len = num(v)? as usize,
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
    let count = need(&o.count, "--count")?;
    let payload = Payload::new(o.len, o.max_len)?;
    let port = stream::open_end(&name)?;
    let st = stream::send(&port, count, o.burst, &payload)?;
    println!(
        "pipe-tx {name}: sent {} packets in {:.3} s ({:.3} Mpps)",
        st.packets,
        st.elapsed.as_secs_f64(),
        st.mpps()
    );
    Ok(())
}

fn pipe_rx(o: &Opts) -> Result<(), String> {
    let name = need(&o.port, "--port")?;
    let count = need(&o.count, "--count")?;
    let payload = Payload::new(o.len, o.max_len)?;
    let port = stream::open_end(&name)?;
    let st = stream::receive(&port, count, &payload)?;
    println!(
        "pipe-rx {name}: received {} packets in {:.3} s ({:.3} Mpps), all in order and intact",
        st.packets,
        st.elapsed.as_secs_f64(),
        st.mpps()
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
