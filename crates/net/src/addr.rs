//! The address classifier: which resolved addresses the proxy refuses to connect to,
//! so that a name on the allowlist cannot be pointed (DNS rebinding) at the host's
//! loopback, the local network or a cloud metadata service.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), `fc00::/7`, `fec0::/10`, and the
    /// local-use NAT64 prefix `64:ff9b:1::/48`.
    Private,
    /// `169.254/16` (including the `169.254.169.254` metadata address), `fe80::/10`.
    LinkLocal,
    /// Carrier-grade NAT, `100.64/10`.
    SharedNat,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `240/4` (reserved for future use).
    Reserved,
}

impl fmt::Display for Refused {
    /// The phrase used in refusal reasons: "a private address".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refused::Loopback => "a loopback address",
            Refused::Private => "a private address",
            Refused::LinkLocal => "a link-local address",
            Refused::SharedNat => "a shared (CGNAT) address",
            Refused::Unspecified => "an unspecified address",
            Refused::Multicast => "a multicast address",
            Refused::Broadcast => "a broadcast address",
            Refused::Reserved => "a reserved address",
        })
    }
}

/// Classifies `ip`: `Some` when the proxy must not connect to it.
///
/// IPv6 forms that carry an IPv4 address are judged by that address: IPv4-mapped
/// (`::ffff:a.b.c.d`, which Linux connects to as IPv4), IPv4-compatible (`::a.b.c.d`),
/// IPv4-translated (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`).
pub fn refused(ip: IpAddr) -> Option<Refused> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<Refused> {
    let [a, b, ..] = ip.octets();
    Some(match (a, b) {
        (0, _) => Refused::Unspecified,
        (127, _) => Refused::Loopback,
        (10, _) | (172, 16..=31) | (192, 168) => Refused::Private,
        (169, 254) => Refused::LinkLocal,
        (100, 64..=127) => Refused::SharedNat,
        (224..=239, _) => Refused::Multicast,
        _ if ip == Ipv4Addr::BROADCAST => Refused::Broadcast,
        (240..=255, _) => Refused::Reserved,
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<Refused> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some(Refused::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Refused::Loopback);
    }
    // ::a.b.c.d (compatible), ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (translated).
    if s[..4] == [0; 4] && matches!((s[4], s[5]), (0, 0) | (0, 0xffff) | (0xffff, 0)) {
        return refused_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return refused_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return refused_v4(embedded(s[1], s[2]));
    }
    Some(match s[0] {
        0x64 if s[1] == 0xff9b && s[2] == 1 => Refused::Private,
        0xfc00..=0xfdff | 0xfec0..=0xfeff => Refused::Private,
        0xfe80..=0xfebf => Refused::LinkLocal,
        0xff00..=0xffff => Refused::Multicast,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifier_table() {
        use Refused::*;
        let table: &[(&str, Option<Refused>)] = &[
            ("8.8.8.8", None),
            ("203.0.113.7", None),
            ("172.15.255.255", None),
            ("172.32.0.1", None),
            ("100.63.255.255", None),
            ("100.128.0.1", None),
            ("169.253.1.1", None),
            ("223.255.255.255", None),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.0.9", Some(Loopback)),
            ("10.0.0.5", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("192.168.1.1", Some(Private)),
            ("169.254.169.254", Some(LinkLocal)),
            ("169.254.0.1", Some(LinkLocal)),
            ("100.64.0.1", Some(SharedNat)),
            ("100.127.255.255", Some(SharedNat)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("255.255.255.255", Some(Broadcast)),
            ("240.0.0.1", Some(Reserved)),
            ("2606:4700::1111", None),
            ("2001:db8::1", None),
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("fc00::1", Some(Private)),
            ("fd12:3456::1", Some(Private)),
            ("fec0::1", Some(Private)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("ff02::1", Some(Multicast)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.0.0.5", Some(Private)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(Loopback)),
            ("::ffff:0:192.168.0.1", Some(Private)),
            ("64:ff9b::10.0.0.1", Some(Private)),
            ("64:ff9b::8.8.8.8", None),
            ("64:ff9b:1::8.8.8.8", Some(Private)),
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:0808:0808::", None),
        ];
        for (text, want) in table {
            let ip: IpAddr = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(refused(ip), *want, "{text}");
        }
    }

    #[test]
    fn phrases_read_as_reasons() {
        assert_eq!(Refused::Private.to_string(), "a private address");
        assert_eq!(Refused::Unspecified.to_string(), "an unspecified address");
    }
}
