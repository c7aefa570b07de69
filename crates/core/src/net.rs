//! Network policy as data: the allowlist's host patterns, request hosts normalised, and
//! what counts as loopback.
//!
//! Pure: the filtering proxy (crate `clp-net`) and the validator both use these, so an
//! entry means the same thing in `clp check`, in Claude Code's own sandbox settings and in
//! the proxy that enforces it.
//!
//! Entries, as written in `network.allow`:
//!
//! | entry | allows |
//! | --- | --- |
//! | `example.com` | `example.com` on ports 80 and 443 |
//! | `example.com:8443` | `example.com` on port 8443 only |
//! | `*.example.com` | every subdomain at any depth (`a.example.com`, `a.b.example.com`) on 80 and 443, never `example.com` itself |
//! | `*.example.com:8443` | the same subdomains on port 8443 only |
//! | `203.0.113.7`, `[2001:db8::1]:8443`, `2001:db8::1` | that address literally (requests naming it as an IP literal) |
//!
//! An entry without a port allows 80 and 443 only (HTTP and HTTPS): allowing every port
//! of a host would let a session reach its SSH or database ports through the proxy.
//! Host names compare case-insensitively with one trailing dot ignored; only ASCII names
//! are accepted (IDNA is not supported: write the `xn--` form). A wildcard never matches
//! an IP literal, and an IP literal is allowed only by an entry naming that address.

use std::fmt;
use std::net::IpAddr;

/// Ports an entry without a port allows.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// A destination host as a request names it, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name: lowercase ASCII, no trailing dot.
    Name(String),
    /// An IP literal (`203.0.113.7`, or `[2001:db8::1]` in a URL or `CONNECT`).
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl Host {
    /// Parses and normalises a host as found in a request (`Example.COM.`, `[::1]`,
    /// `10.0.0.1`); the error says what is wrong.
    pub fn parse(raw: &str) -> Result<Host, &'static str> {
        if let Some(inner) = raw.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or("unbalanced `[`")?;
            return inner
                .parse::<std::net::Ipv6Addr>()
                .map(|ip| Host::Ip(IpAddr::V6(ip)))
                .map_err(|_| "not an IPv6 address inside `[]`");
        }
        if !raw.is_ascii() {
            return Err("not ASCII (write internationalised names in their `xn--` form)");
        }
        let lower = raw.to_ascii_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        check_name(name)?;
        Ok(Host::Name(name.to_owned()))
    }
}

/// Checks a lowercase name without trailing dot: labels of letters, digits, `-` and `_`,
/// 1 to 63 bytes each, 253 in all.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty host name");
    }
    if name.len() > 253 {
        return Err("host name longer than 253 bytes");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label in host name");
        }
        if label.len() > 63 {
            return Err("label longer than 63 bytes in host name");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("host names hold only letters, digits, `-`, `_` and dots");
        }
    }
    Ok(())
}

/// Which hosts one entry covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Pattern {
    /// Exactly this name.
    Name(String),
    /// Names ending in `.` + this domain (the apex itself excluded).
    Subdomains(String),
    /// Exactly this address, requested as an IP literal.
    Ip(IpAddr),
}

/// One `network.allow` entry: `host`, `host:port`, `*.domain`, `*.domain:port` or an
/// IP address (`[v6]:port` with a port), kept as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPattern {
    text: String,
    pattern: Pattern,
    /// `None`: [`DEFAULT_PORTS`].
    port: Option<u16>,
}

impl HostPattern {
    /// Parses an entry; the error says why it is not one.
    pub fn parse(raw: &str) -> Result<HostPattern, String> {
        let bad = |reason: &str| format!("`{raw}` is not a host pattern: {reason}");
        let text = raw.trim();
        if text.is_empty() {
            return Err(bad("empty entry"));
        }
        if text.contains('@') {
            // Never quoted back: it may be a `user:password@host`.
            return Err(
                "a host pattern has no `@`: write the host alone, without credentials".into(),
            );
        }
        if text.contains("://") || text.contains('/') {
            return Err(bad("write the host alone, without a scheme or path"));
        }
        // A bare IPv6 address has colons but no port.
        if let Ok(ip) = text.parse::<std::net::Ipv6Addr>() {
            return Ok(HostPattern {
                text: raw.to_owned(),
                pattern: Pattern::Ip(IpAddr::V6(ip)),
                port: None,
            });
        }
        let (host, port) = split_port(text).map_err(bad)?;
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
            ),
        };
        let pattern =
            if let Some(domain) = host.strip_prefix("*.") {
                match Host::parse(domain).map_err(bad)? {
                    Host::Ip(_) => return Err(bad("a wildcard never covers IP addresses")),
                    Host::Name(d) if !d.contains('.') => return Err(bad(
                        "a wildcard must name a domain below a top-level domain (`*.example.com`)",
                    )),
                    Host::Name(d) => Pattern::Subdomains(d),
                }
            } else if host.contains('*') {
                return Err(bad("`*` is allowed only as a leading `*.`"));
            } else {
                match Host::parse(host).map_err(bad)? {
                    Host::Ip(ip) => Pattern::Ip(ip),
                    Host::Name(n) => Pattern::Name(n),
                }
            };
        Ok(HostPattern {
            text: raw.to_owned(),
            pattern,
            port,
        })
    }

    /// Whether a request for `host` on `port` is allowed by this entry.
    pub fn allows(&self, host: &Host, port: u16) -> bool {
        let port_ok = match self.port {
            Some(p) => p == port,
            None => DEFAULT_PORTS.contains(&port),
        };
        port_ok
            && match (&self.pattern, host) {
                (Pattern::Name(n), Host::Name(h)) => n == h,
                (Pattern::Subdomains(d), Host::Name(h)) => h
                    .strip_suffix(d.as_str())
                    .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
                (Pattern::Ip(a), Host::Ip(b)) => a == b,
                _ => false,
            }
    }
}

/// Splits `host:port`, `[v6]:port`, `[v6]` or `host`; the port is not checked yet.
fn split_port(text: &str) -> Result<(&str, Option<&str>), &'static str> {
    if text.starts_with('[') {
        let end = text.find(']').ok_or("unbalanced `[`")?;
        let (host, rest) = text.split_at(end + 1);
        return match rest {
            "" => Ok((host, None)),
            _ => rest
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or("expected `:PORT` after `]`"),
        };
    }
    Ok(match text.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (text, None),
    })
}

impl HostPattern {
    /// Whether a request naming `host` (as a client wrote it) on `port` is allowed.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        Host::parse(host).is_ok_and(|h| self.allows(&h, port))
    }

    /// The host part as Claude Code's `sandbox.network.allowedDomains` and
    /// `WebFetch(domain:...)` take it (`example.com`, `*.example.com`), without the port.
    pub fn domain(&self) -> String {
        match &self.pattern {
            Pattern::Name(n) => n.clone(),
            Pattern::Subdomains(d) => format!("*.{d}"),
            Pattern::Ip(ip) => ip.to_string(),
        }
    }

    /// Whether the entry names an IP address rather than a host name.
    pub fn is_ip(&self) -> bool {
        matches!(self.pattern, Pattern::Ip(_))
    }

    /// The entry as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The parsed `network.allow` list. Empty allows nothing (offline mode).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    entries: Vec<HostPattern>,
}

impl Allowlist {
    /// Parses every entry; the first invalid one is the error, naming it.
    pub fn parse<I, S>(entries: I) -> Result<Allowlist, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let entries = entries
            .into_iter()
            .map(|e| HostPattern::parse(e.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Allowlist { entries })
    }

    /// The list of already parsed entries.
    pub fn new(entries: Vec<HostPattern>) -> Allowlist {
        Allowlist { entries }
    }

    /// Whether some entry allows `host` on `port`.
    pub fn allows(&self, host: &Host, port: u16) -> bool {
        self.entries.iter().any(|e| e.allows(host, port))
    }

    /// Whether the list is empty (nothing is allowed).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whether a URL host names this machine's loopback.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> Host {
        Host::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn matcher_table() {
        let list = Allowlist::parse([
            "example.com",
            "api.example.org:8443",
            "*.wild.test",
            "*.portwild.test:9000",
            "203.0.113.7",
            "[2001:db8::1]:8443",
            "2001:db8::2",
            "Upper.Test.",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        // (host, port, allowed)
        let table: &[(&str, u16, bool)] = &[
            ("example.com", 443, true),
            ("example.com", 80, true),
            ("example.com", 22, false),
            ("example.com", 8443, false),
            ("EXAMPLE.com", 443, true),
            ("example.com.", 443, true),
            ("www.example.com", 443, false),
            ("example.co", 443, false),
            ("xexample.com", 443, false),
            ("api.example.org", 8443, true),
            ("api.example.org", 443, false),
            ("example.org", 8443, false),
            ("a.wild.test", 443, true),
            ("a.b.c.wild.test", 80, true),
            ("wild.test", 443, false),
            ("notwild.test", 443, false),
            ("a.wild.test", 8443, false),
            ("x.portwild.test", 9000, true),
            ("x.portwild.test", 443, false),
            ("portwild.test", 9000, false),
            ("203.0.113.7", 443, true),
            ("203.0.113.7", 8080, false),
            ("203.0.113.8", 443, false),
            ("[2001:db8::1]", 8443, true),
            ("[2001:db8::1]", 443, false),
            ("[2001:db8::2]", 443, true),
            ("upper.test", 443, true),
        ];
        for (h, port, want) in table {
            assert_eq!(list.allows(&host(h), *port), *want, "{h}:{port}");
        }
    }

    #[test]
    fn wildcard_never_matches_ip_literals() {
        let list = Allowlist::parse(["*.113.7.in-addr.test"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(!list.allows(&host("203.0.113.7"), 443));
        let err = Allowlist::parse(["*.1.0.113.7"]).map(|_| ()).unwrap_err();
        assert!(err.contains("never covers IP"), "{err}");
    }

    #[test]
    fn empty_list_allows_nothing() {
        let list = Allowlist::default();
        assert!(list.is_empty());
        assert!(!list.allows(&host("example.com"), 443));
    }

    #[test]
    fn invalid_entries_are_rejected_with_a_reason() {
        for (entry, needle) in [
            ("", "empty"),
            ("example.com:0", "port"),
            ("example.com:99999", "port"),
            ("example.com:http", "port"),
            ("*.com", "below a top-level"),
            ("a.*.example.com", "leading"),
            ("*example.com", "leading"),
            ("exa mple.com", "letters"),
            ("bücher.example", "ASCII"),
            ("a..b", "empty label"),
            ("[::1", "unbalanced"),
            ("[nope]:80", "IPv6"),
        ] {
            match Allowlist::parse([entry]) {
                Ok(l) => panic!("`{entry}` was accepted: {l:?}"),
                Err(e) => assert!(e.contains(needle), "`{entry}`: {e}"),
            }
        }
    }

    #[test]
    fn hosts_normalise() {
        assert_eq!(host("Example.COM."), Host::Name("example.com".into()));
        assert_eq!(host("[::1]").to_string(), "[::1]");
        assert_eq!(host("127.0.0.1"), Host::Ip([127, 0, 0, 1].into()));
        assert!(Host::parse("ex ample").is_err());
        assert!(Host::parse("").is_err());
        assert!(Host::parse("é.test").is_err());
    }
}
