//! `netmapd status`: a Unix socket on which the daemon writes a JSON snapshot of itself
//! ([`StatusReport`]), and the command that prints it as a table, as JSON, or as the
//! key=value lines of earlier versions, once or every second with rates (`--watch`).

use cuse_dev::ctrl::status::{PortStatus, StatusReport};
use cuse_dev::ctrl::ControlPlane;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const SOCKET_ENV: &str = "NETMAPD_STATUS_SOCKET";

pub fn default_socket() -> PathBuf {
    std::env::var_os(SOCKET_ENV).map_or_else(|| PathBuf::from("/run/netmapd.sock"), PathBuf::from)
}

pub struct StatusServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StatusServer {
    pub fn start(path: &Path, cp: Arc<ControlPlane>) -> std::io::Result<Self> {
        // A socket file left by a killed daemon would make bind fail.
        if UnixStream::connect(path).is_err() {
            let _ = std::fs::remove_file(path);
        }
        let l = UnixListener::bind(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::Builder::new()
            .name("status".into())
            .spawn(move || {
                for c in l.incoming() {
                    if st.load(Ordering::Acquire) {
                        break;
                    }
                    if let Ok(mut c) = c {
                        match serde_json::to_vec(&cp.status_report()) {
                            Ok(j) => {
                                let _ = c.write_all(&j);
                            }
                            Err(e) => tracing::warn!(%e, "status not serialised"),
                        }
                    }
                }
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How `netmapd status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Keys,
}

fn fetch(path: &Path) -> Result<StatusReport, String> {
    let mut s = String::new();
    UnixStream::connect(path)
        .and_then(|mut c| c.read_to_string(&mut s))
        .map_err(|e| format!("cannot reach the daemon at {}: {e}", path.display()))?;
    serde_json::from_str(&s).map_err(|e| format!("unreadable status from {}: {e}", path.display()))
}

/// Packets per second of each port between two snapshots, by name.
type Rates = std::collections::HashMap<String, (Option<f64>, Option<f64>)>;

fn rates(prev: &StatusReport, now: &StatusReport, secs: f64) -> Rates {
    let mut r = Rates::new();
    for p in &now.ports {
        let Some(q) = prev.ports.iter().find(|q| q.name == p.name) else {
            continue;
        };
        let (tx, rx) = p.packets();
        let (ptx, prx) = q.packets();
        let rate = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) if secs > 0.0 => Some(a.saturating_sub(b) as f64 / secs),
            _ => None,
        };
        r.insert(p.name.clone(), (rate(tx, ptx), rate(rx, prx)));
    }
    r
}

fn num(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn rate(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"))
}

/// The human table: a summary line, pool occupancy, then one row per port.
pub fn table(r: &StatusReport, rates: Option<&Rates>) -> String {
    let mut s = format!(
        "netmapd: {} MiB region ({}), {} descriptors open, {} registered, {} sync loops, {} daemon syncs\n\n",
        r.memsize >> 20,
        r.backing,
        r.clients,
        r.registered,
        r.sync_loops,
        r.daemon_syncs
    );
    s.push_str(&format!(
        "{:<6} {:>8} {:>8} {:>8}\n",
        "POOL", "USED", "FREE", "TOTAL"
    ));
    for (n, p) in [
        ("if", r.pools.ifs),
        ("ring", r.pools.ring),
        ("buf", r.pools.buf),
    ] {
        s.push_str(&format!(
            "{n:<6} {:>8} {:>8} {:>8}\n",
            p.used(),
            p.free,
            p.total
        ));
    }
    s.push('\n');
    let mut head = format!(
        "{:<24} {:<8} {:>5} {:>10} {:>10} {:>12} {:>12} {:>8}",
        "PORT", "KIND", "USERS", "TX RINGS", "RX RINGS", "TX PKTS", "RX PKTS", "DROPS"
    );
    if rates.is_some() {
        head.push_str(&format!(" {:>10} {:>10}", "TX PPS", "RX PPS"));
    }
    s.push_str(head.trim_end());
    s.push('\n');
    if r.ports.is_empty() {
        s.push_str("(no ports)\n");
    }
    for p in &r.ports {
        s.push_str(&port_row(p, rates));
        s.push('\n');
    }
    s
}

fn port_row(p: &PortStatus, rates: Option<&Rates>) -> String {
    let (tx, rx) = p.packets();
    let mut row = format!(
        "{:<24} {:<8} {:>5} {:>10} {:>10} {:>12} {:>12} {:>8}",
        p.name,
        p.kind,
        p.users,
        format!("{}x{}", p.tx_rings, p.tx_slots),
        format!("{}x{}", p.rx_rings, p.rx_slots),
        num(tx),
        num(rx),
        num(p.drops())
    );
    if let Some(rates) = rates {
        let (t, r) = rates.get(&p.name).copied().unwrap_or((None, None));
        row.push_str(&format!(" {:>10} {:>10}", rate(t), rate(r)));
    }
    row
}

fn render(r: &StatusReport, f: Format, rates: Option<&Rates>) -> String {
    match f {
        Format::Table => table(r, rates),
        Format::Keys => r.to_keys(),
        Format::Json => {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            if let (Some(rates), Some(ports)) =
                (rates, v.get_mut("ports").and_then(|p| p.as_array_mut()))
            {
                for p in ports {
                    let name = p
                        .get("name")
                        .and_then(|n| n.as_str())
                        .unwrap_or("")
                        .to_string();
                    if let Some((t, x)) = rates.get(&name) {
                        p["tx_pps"] = serde_json::json!(t);
                        p["rx_pps"] = serde_json::json!(x);
                    }
                }
            }
            format!("{v}\n")
        }
    }
}

/// The client side: prints what the daemon reports, once, or every second with rates
/// (`watch`; `count` snapshots, or until interrupted).
pub fn print(path: &Path, format: Format, watch: bool, count: Option<u64>) -> ExitCode {
    let mut prev: Option<(StatusReport, std::time::Instant)> = None;
    let mut shown = 0u64;
    loop {
        let r = match fetch(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("netmapd status: {e}");
                return ExitCode::FAILURE;
            }
        };
        let now = std::time::Instant::now();
        // The first snapshot of a watch has no rates yet: its columns show "-".
        let rt = prev.as_ref().map_or_else(Rates::new, |(p, t)| {
            rates(p, &r, now.duration_since(*t).as_secs_f64())
        });
        let out = render(&r, format, watch.then_some(&rt));
        if watch && format == Format::Table {
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                // Home and clear, as watch(1) does.
                print!("\x1b[H\x1b[2J");
            }
        }
        print!("{out}");
        let _ = std::io::stdout().flush();
        shown += 1;
        if !watch || count.is_some_and(|c| shown >= c) {
            return ExitCode::SUCCESS;
        }
        prev = Some((r, now));
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn report(tx: u64) -> StatusReport {
        let mut c = BTreeMap::new();
        c.insert("tx_packets".to_string(), tx);
        c.insert("rx_drops".to_string(), 1);
        StatusReport {
            memsize: 64 << 20,
            backing: "memfd".into(),
            ports: vec![
                PortStatus {
                    name: "vale0:a".into(),
                    kind: "Vale".into(),
                    users: 1,
                    tx_rings: 1,
                    rx_rings: 1,
                    tx_slots: 1024,
                    rx_slots: 1024,
                    counters: c,
                },
                PortStatus {
                    name: "pp{0".into(),
                    kind: "Pipe".into(),
                    ..PortStatus::default()
                },
            ],
            ..StatusReport::default()
        }
    }

    #[test]
    fn table_columns_and_rates() {
        let a = report(100);
        let b = report(600);
        let rt = rates(&a, &b, 0.5);
        let t = table(&b, Some(&rt));
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("netmapd: 64 MiB region (memfd)"),
            "{t}"
        );
        let head = lines
            .iter()
            .find(|l| l.starts_with("PORT"))
            .expect("header");
        for col in [
            "KIND", "USERS", "TX RINGS", "RX RINGS", "TX PKTS", "RX PKTS", "DROPS", "TX PPS",
            "RX PPS",
        ] {
            assert!(head.contains(col), "{col} missing: {head}");
        }
        let vale = lines
            .iter()
            .find(|l| l.starts_with("vale0:a"))
            .expect("vale row");
        let f: Vec<&str> = vale.split_whitespace().collect();
        assert_eq!(
            f,
            ["vale0:a", "Vale", "1", "1x1024", "1x1024", "600", "-", "1", "1000", "-"]
        );
        let pipe = lines
            .iter()
            .find(|l| l.starts_with("pp{0"))
            .expect("pipe row");
        assert!(pipe.split_whitespace().skip(5).all(|c| c == "-"), "{pipe}");
        let j = render(&b, Format::Json, Some(&rt));
        let v: serde_json::Value = serde_json::from_str(&j).expect("json");
        assert_eq!(v["ports"][0]["tx_pps"], serde_json::json!(1000.0));
        assert_eq!(v["ports"][1]["tx_pps"], serde_json::Value::Null);
    }
}
