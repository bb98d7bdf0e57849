//! What `netmapd status` reports: one structured snapshot of the control plane (pools,
//! descriptors, ports and their counters), serialised as JSON on the status socket so
//! that the CLI can print a table, JSON for scripts, or the historical key=value lines.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Objects of one pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolUse {
    pub free: u64,
    pub total: u64,
}

impl PoolUse {
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.free)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pools {
    #[serde(rename = "if")]
    pub ifs: PoolUse,
    pub ring: PoolUse,
    pub buf: PoolUse,
}

/// One port (one endpoint of an adapter: a pipe end, a VALE port, a NIC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    pub name: String,
    pub kind: String,
    pub users: u32,
    pub tx_rings: u32,
    pub rx_rings: u32,
    pub tx_slots: u32,
    pub rx_slots: u32,
    /// The port's own counters (packets, bytes, drops, ...); empty for ports that keep
    /// none.
    pub counters: BTreeMap<String, u64>,
}

impl PortStatus {
    /// A counter, if the port keeps it.
    pub fn counter(&self, k: &str) -> Option<u64> {
        self.counters.get(k).copied()
    }

    /// Packets sent and received, where the port counts them (monitors count frames).
    pub fn packets(&self) -> (Option<u64>, Option<u64>) {
        (
            self.counter("tx_packets").or(self.counter("tx_frames")),
            self.counter("rx_packets").or(self.counter("rx_frames")),
        )
    }

    /// Every drop counter of the port added up, if it has any.
    pub fn drops(&self) -> Option<u64> {
        let mut any = false;
        let mut sum = 0u64;
        for (k, v) in &self.counters {
            if k == "drops" || k.ends_with("_drops") {
                any = true;
                sum = sum.saturating_add(*v);
            }
        }
        any.then_some(sum)
    }
}

/// A snapshot of the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub backing: String,
    pub memsize: u64,
    /// Open descriptors.
    pub clients: u64,
    pub registered: u64,
    pub csb: u64,
    pub sync_loops: u64,
    /// Syncs and polls the daemon ran (the rest ran in the clients).
    pub daemon_syncs: u64,
    pub pools: Pools,
    /// Adapters (a pipe pair or a switch counts once).
    pub adapters: u64,
    pub ports: Vec<PortStatus>,
}

impl StatusReport {
    /// The key=value lines of earlier versions (`netmapd status --keys`), for shell
    /// scripts: one global key per line, then one `port=` line per port.
    pub fn to_keys(&self) -> String {
        let p = &self.pools;
        let mut s = format!(
            "backing={}\nmemsize={}\nclients={}\nregistered={}\ncsb={}\nsync_loops={}\nports={}\nif_free={}\nif_total={}\nring_free={}\nring_total={}\nbuf_free={}\nbuf_total={}\ndaemon_syncs={}\n",
            self.backing,
            self.memsize,
            self.clients,
            self.registered,
            self.csb,
            self.sync_loops,
            self.adapters,
            p.ifs.free,
            p.ifs.total,
            p.ring.free,
            p.ring.total,
            p.buf.free,
            p.buf.total,
            self.daemon_syncs,
        );
        for port in &self.ports {
            let stats: String = port
                .counters
                .iter()
                .map(|(k, v)| format!(" {k}={v}"))
                .collect();
            s.push_str(&format!(
                "port={} kind={} users={} tx_rings={} rx_rings={} tx_slots={} rx_slots={}{}\n",
                port.name,
                port.kind,
                port.users,
                port.tx_rings,
                port.rx_rings,
                port.tx_slots,
                port.rx_slots,
                stats
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_derived_figures() {
        let mut c = BTreeMap::new();
        c.insert("tx_packets".to_string(), 5);
        c.insert("rx_drops".to_string(), 2);
        c.insert("tx_drops".to_string(), 3);
        let r = StatusReport {
            backing: "memfd".into(),
            memsize: 1 << 20,
            pools: Pools {
                ifs: PoolUse { free: 9, total: 10 },
                ..Pools::default()
            },
            ports: vec![PortStatus {
                name: "vale0:a".into(),
                kind: "Vale".into(),
                counters: c,
                ..PortStatus::default()
            }],
            ..StatusReport::default()
        };
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"if\":{\"free\":9,\"total\":10}"), "{j}");
        let back: StatusReport = serde_json::from_str(&j).unwrap();
        assert_eq!(back, r);
        assert_eq!(r.ports[0].drops(), Some(5));
        assert_eq!(r.ports[0].packets(), (Some(5), None));
        assert_eq!(r.pools.ifs.used(), 1);
        let k = r.to_keys();
        assert!(
            k.contains("if_free=9\n") && k.contains("port=vale0:a kind=Vale users=0"),
            "{k}"
        );
        assert!(k.contains(" rx_drops=2 tx_drops=3 tx_packets=5\n"), "{k}");
    }
}
