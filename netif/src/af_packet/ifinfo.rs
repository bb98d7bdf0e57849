//! Facts about a host interface: index, MTU, MAC address, queue counts, link state.
//!
//! Read from `/sys/class/net/IF/` when that sysfs belongs to the daemon's network
//! namespace (checked by comparing its `ifindex` with `if_nametoindex`), otherwise
//! (sysfs mounted for another namespace) from ioctls, with one queue per direction.

use super::socket;
use std::fs;
use std::path::PathBuf;

/// What the port needs to know about an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfInfo {
    pub ifindex: u32,
    pub mtu: u32,
    pub mac: [u8; 6],
    pub rx_queues: u32,
    pub tx_queues: u32,
    /// `operstate` ("up", "down", "unknown", …); "unknown" without sysfs.
    pub operstate: String,
}

/// Valid Linux interface name: 1..15 bytes, no '/', no whitespace, not "." or "..".
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace() || b == b':')
}

fn sys_dir(name: &str) -> PathBuf {
    PathBuf::from("/sys/class/net").join(name)
}

fn read_sys(name: &str, file: &str) -> Option<String> {
    fs::read_to_string(sys_dir(name).join(file))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// True if `/sys/class/net/IF` describes the interface with this index in our namespace.
fn sysfs_matches(name: &str, ifindex: u32) -> bool {
    read_sys(name, "ifindex").and_then(|s| s.parse::<u32>().ok()) == Some(ifindex)
}

/// Counts `queues/rx-*` and `queues/tx-*` entries.
fn sys_queues(name: &str) -> Option<(u32, u32)> {
    let mut rx = 0;
    let mut tx = 0;
    for e in fs::read_dir(sys_dir(name).join("queues")).ok()? {
        let n = e.ok()?.file_name();
        let n = n.to_string_lossy();
        if n.starts_with("rx-") {
            rx += 1;
        } else if n.starts_with("tx-") {
            tx += 1;
        }
    }
    Some((rx.max(1), tx.max(1)))
}

/// Parses "aa:bb:cc:dd:ee:ff".
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Index of `name`, if it exists in the daemon's network namespace.
pub fn ifindex(name: &str) -> Option<u32> {
    if !valid_name(name) {
        return None;
    }
    socket::if_nametoindex(name)
}

/// Current MTU (sysfs, else SIOCGIFMTU).
pub fn mtu(name: &str, ifindex: u32) -> Option<u32> {
    if sysfs_matches(name, ifindex) {
        if let Some(m) = read_sys(name, "mtu").and_then(|s| s.parse().ok()) {
            return Some(m);
        }
    }
    socket::ioctl_mtu(name).ok()
}

/// True while the interface with this index exists under this name and is up
/// (IFF_UP; the carrier is not required, as for the kernel's generic adapter).
pub fn is_up(name: &str, ifindex: u32) -> Option<bool> {
    if socket::if_nametoindex(name) != Some(ifindex) {
        return None;
    }
    socket::ioctl_flags(name)
        .ok()
        .map(|f| f & libc::IFF_UP as u32 != 0)
}

/// Reads every fact; `None` if the interface does not exist.
pub fn read(name: &str) -> Option<IfInfo> {
    let ifindex = ifindex(name)?;
    let sys = sysfs_matches(name, ifindex);
    if !sys {
        tracing::debug!(
            name,
            "sysfs does not show this namespace's interface; using ioctls"
        );
    }
    let (rx_queues, tx_queues) = if sys { sys_queues(name) } else { None }
        .or_else(|| {
            socket::ethtool_queues(name)
                .ok()
                .filter(|&(r, t)| r > 0 && t > 0)
        })
        .unwrap_or((1, 1));
    let mac = if sys {
        read_sys(name, "address").and_then(|s| parse_mac(&s))
    } else {
        None
    }
    .or_else(|| socket::ioctl_hwaddr(name).ok())
    .unwrap_or([0; 6]);
    let operstate = if sys {
        read_sys(name, "operstate")
    } else {
        None
    }
    .unwrap_or_else(|| "unknown".into());
    Some(IfInfo {
        ifindex,
        mtu: mtu(name, ifindex).unwrap_or(1500),
        mac,
        rx_queues,
        tx_queues,
        operstate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("eth0"));
        assert!(valid_name("a23456789012345"));
        assert!(!valid_name("a234567890123456"));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(".."));
        assert!(!valid_name("a b"));
    }

    #[test]
    fn macs() {
        assert_eq!(parse_mac("02:00:0a:ff:10:01"), Some([2, 0, 10, 255, 16, 1]));
        assert_eq!(parse_mac("02:00:0a:ff:10"), None);
        assert_eq!(parse_mac("02:00:0a:ff:10:01:07"), None);
        assert_eq!(parse_mac("zz:00:0a:ff:10:01"), None);
    }

    #[test]
    fn loopback_facts() {
        // "lo" exists in every network namespace.
        let i = read("lo").expect("lo exists");
        assert!(i.ifindex >= 1);
        assert!(i.mtu >= 1500);
        assert!(i.rx_queues >= 1 && i.tx_queues >= 1);
        assert!(read("nonexistent-if0").is_none());
    }
}
