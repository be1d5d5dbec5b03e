//! Where a request comes from: the network source that per-source limits
//! (connections, logins, registrations, site sign-ins) are counted
//! against.
//!
//! The source is the peer address of the TCP connection, unless that peer
//! is a trusted proxy: then it is the nearest address in
//! `X-Forwarded-For` that is not itself a trusted proxy. Anyone can write
//! that header, so it is believed only from proxies the operator named.
//! IPv6 sources are counted per /64, the block one subscriber usually
//! holds, so a host cannot escape a limit by hopping addresses within it.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// A client's network source, normalised for counting: IPv4 as is,
/// IPv4-mapped IPv6 as IPv4, other IPv6 cut to its /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    /// The counting key for an address.
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Source(IpAddr::V6(Ipv6Addr::from(bits)))
                }
            },
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// An address block, `192.0.2.0/24`, `2001:db8::/32`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpBlock {
    network: IpAddr,
    prefix: u8,
}

impl IpBlock {
    /// Whether `ip` lies in this block (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpBlock {
    type Err = String;

    fn from_str(s: &str) -> Result<IpBlock, String> {
        let bad = || format!("{s:?} is not an address or address/prefix");
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(IpBlock { network, prefix })
    }
}

impl fmt::Display for IpBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl<'de> serde::Deserialize<'de> for IpBlock {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<IpBlock, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(pub Vec<IpBlock>);

impl TrustedProxies {
    /// Loopback only: a proxy on the same machine (the usual nginx in
    /// front of natter) is believed out of the box, and nothing else.
    pub fn loopback() -> TrustedProxies {
        TrustedProxies(vec![
            "127.0.0.0/8".parse().expect("valid block"),
            "::1".parse().expect("valid block"),
        ])
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(ip))
    }

    /// The client behind a connection from `peer` that carried
    /// `forwarded_for` (the `X-Forwarded-For` lines, in header order;
    /// `None` for a line that is not text). Walks the chain from the
    /// nearest hop outwards and stops at the first address no trusted
    /// proxy vouches for; a malformed entry ends the walk at the last hop
    /// that could be believed. Entries may carry a port (`192.0.2.1:4711`,
    /// `[2001:db8::1]:4711`), as some proxies write them.
    pub fn client_of<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = Option<&'a str>>,
    ) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut hops: Vec<Option<&str>> = Vec::new();
        for line in forwarded_for {
            match line {
                Some(line) => hops.extend(line.split(',').map(Some)),
                None => hops.push(None),
            }
        }
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = hop.and_then(parse_hop) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, with or without a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (addr, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks() {
        let block: IpBlock = "10.1.0.0/16".parse().unwrap();
        assert!(block.contains(ip("10.1.200.3")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(block.contains(ip("::ffff:10.1.0.9")), "mapped IPv4 is IPv4");
        let all: IpBlock = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let one: IpBlock = "2001:db8::1".parse().unwrap();
        assert!(one.contains(ip("2001:db8::1")) && !one.contains(ip("2001:db8::2")));
        for bad in ["10.0.0.0/33", "::/129", "nope", "10.0.0.0/x", ""] {
            assert!(bad.parse::<IpBlock>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sources_group_ipv6_by_64() {
        assert_eq!(
            Source::of(ip("2001:db8:1:2:aaaa::1")),
            Source::of(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            Source::of(ip("2001:db8:1:2::1")),
            Source::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Source::of(ip("::ffff:192.0.2.1")),
            Source::of(ip("192.0.2.1"))
        );
    }

    fn xff<'a>(values: &'a [&'a str]) -> impl Iterator<Item = Option<&'a str>> + 'a {
        values.iter().map(|v| Some(*v))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = TrustedProxies(vec!["10.0.0.0/8".parse().unwrap()]);
        // A direct client cannot name someone else.
        assert_eq!(
            trusted.client_of(ip("203.0.113.7"), xff(&["198.51.100.1"])),
            ip("203.0.113.7")
        );
        // Through the proxy: the nearest untrusted hop.
        assert_eq!(
            trusted.client_of(
                ip("10.0.0.2"),
                xff(&["198.51.100.1, 203.0.113.9, 10.0.0.5"])
            ),
            ip("203.0.113.9")
        );
        // Values spread over several header lines read as one list.
        assert_eq!(
            trusted.client_of(ip("10.0.0.2"), xff(&["198.51.100.1", "203.0.113.9"])),
            ip("203.0.113.9")
        );
        // No header, or garbage in it: the proxy itself, or the last hop believed.
        assert_eq!(trusted.client_of(ip("10.0.0.2"), xff(&[])), ip("10.0.0.2"));
        assert_eq!(
            trusted.client_of(ip("10.0.0.2"), xff(&["203.0.113.9, junk, 10.0.0.7"])),
            ip("10.0.0.7")
        );
        // Ports, as some proxies write them.
        assert_eq!(
            trusted.client_of(ip("10.0.0.2"), xff(&["203.0.113.9:4711"])),
            ip("203.0.113.9")
        );
        assert_eq!(
            trusted.client_of(ip("10.0.0.2"), xff(&["[2001:db8::7]:4711"])),
            ip("2001:db8::7")
        );
        // A line that is not text is a malformed hop, not a missing one.
        let lines = [Some("203.0.113.9"), None, Some("10.0.0.5")];
        assert_eq!(
            trusted.client_of(ip("10.0.0.2"), lines.into_iter()),
            ip("10.0.0.5")
        );
    }
}
