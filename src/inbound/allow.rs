//! `--allow-from`: the networks the notification route answers, as CIDR
//! blocks. Withings publishes the ranges it calls from as a TXT record
//! (facts sheet §3.2, `dig +short TXT ipblock-notify.withings.net`).

use std::net::IpAddr;

/// One network: an address and how many leading bits must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    /// `192.0.2.0/24`, `2001:db8::/32`, or a bare address (all its bits).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (addr, bits) = match text.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR block"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(bits) => bits
                .parse::<u8>()
                .ok()
                .filter(|&b| b <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (net, ip, width) = match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                (u128::from(net.to_bits()), u128::from(ip.to_bits()), 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => (net.to_bits(), ip.to_bits(), 128),
            _ => return false,
        };
        let bits = u32::from(self.bits);
        if bits == 0 {
            return true;
        }
        let shift = width - bits;
        net >> shift == ip >> shift
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)
    }
}

/// A comma-separated list of CIDR blocks; spaces around them are fine.
pub fn parse_list(text: &str) -> Result<Vec<Cidr>, String> {
    let list = text
        .split([',', ' '])
        .filter(|t| !t.trim().is_empty())
        .map(Cidr::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if list.is_empty() {
        return Err("no CIDR block given".into());
    }
    Ok(list)
}

/// Whether `ip` lies in any of `allowed`.
pub fn allows(allowed: &[Cidr], ip: IpAddr) -> bool {
    allowed.iter().any(|c| c.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_blocks_match_their_prefix() {
        let c = Cidr::parse("192.0.2.128/25").unwrap();
        assert!(c.contains(ip("192.0.2.128")));
        assert!(c.contains(ip("192.0.2.255")));
        assert!(!c.contains(ip("192.0.2.127")));
        assert!(!c.contains(ip("2001:db8::1")));
        // As a listener on [::] sees IPv4 peers.
        assert!(c.contains(ip("::ffff:192.0.2.200")));
        let one = Cidr::parse("127.0.0.2").unwrap();
        assert!(one.contains(ip("127.0.0.2")));
        assert!(!one.contains(ip("127.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    }

    #[test]
    fn ipv6_blocks_match_their_prefix() {
        let c = Cidr::parse("2001:db8:40::/42").unwrap();
        assert!(c.contains(ip("2001:db8:40::1")));
        assert!(c.contains(ip("2001:db8:7f:ffff::")));
        assert!(!c.contains(ip("2001:db8:80::")));
        assert!(!c.contains(ip("192.0.2.1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
        let mapped = Cidr::parse("::ffff:10.0.0.0/104").unwrap_err();
        assert!(mapped.contains("0 to 32"), "{mapped}");
        assert!(Cidr::parse("::ffff:10.0.0.0/8")
            .unwrap()
            .contains(ip("10.1.2.3")));
    }

    #[test]
    fn lists_split_on_commas_and_spaces_and_bad_entries_are_named() {
        let list = parse_list(" 89.30.121.0/24, 2a01:e0d::/32 ,").unwrap();
        assert_eq!(list.len(), 2);
        assert!(allows(&list, ip("89.30.121.7")));
        assert!(allows(&list, ip("2a01:e0d:1::9")));
        assert!(!allows(&list, ip("127.0.0.1")));
        assert_eq!(list[0].to_string(), "89.30.121.0/24");
        let e = parse_list("10.0.0.0/8,10.0.0.0/33").unwrap_err();
        assert!(e.contains("\"10.0.0.0/33\""), "{e}");
        assert!(parse_list("example.org").is_err());
        assert!(parse_list(" , ").is_err());
    }
}
