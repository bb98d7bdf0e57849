//! Persistent VALE ports (VALE_NEWIF, NETMAP-ABI.md §10.3) outside any switch.
//!
//! In the kernel `vale-ctl -n NAME` creates a network interface NAME (visible to
//! `ip link`) that is also a netmap port. netmapd creates no Linux interface: what
//! stands in for the kernel netdev is a *standalone* port, a hidden one-port
//! [`ValeSwitch`] (not one of the eight named switches, never listed by VALE_LIST)
//! whose only endpoint is named `NAME`. Clients open it as `NAME` or `netmap:NAME`;
//! frames transmitted on it go nowhere (there is no host stack behind it) and nothing
//! is ever received while it is detached. VALE_ATTACH moves the port (counts and
//! virtio-net header length) into a real switch, VALE_DETACH moves it back.

use super::{PortCounts, ValeSwitch};
use crate::NetifError;

impl ValeSwitch {
    /// A hidden switch holding only the persistent port `name` (endpoint 0, named
    /// `name` without a switch prefix), with the defaults of ephemeral ports applied to
    /// `req` (§10.2). `Inval` for an empty name or one of 16 bytes or more.
    pub fn standalone(name: &str, req: PortCounts, max_slots: u32) -> Result<Self, NetifError> {
        let mut sw = ValeSwitch::new("");
        let ep = sw.port(name, req, max_slots, true)?;
        sw.eps[ep].name = name.to_string();
        sw.ports[ep].persistent = true;
        Ok(sw)
    }

    /// True when port slot `ep` holds a persistent port.
    pub fn is_persistent(&self, ep: usize) -> bool {
        self.ports.get(ep).is_some_and(|p| p.in_use && p.persistent)
    }

    /// True when any port of the switch is persistent (the switch must then outlive
    /// its last user).
    pub fn has_persistent(&self) -> bool {
        self.ports.iter().any(|p| p.in_use && p.persistent)
    }
}
