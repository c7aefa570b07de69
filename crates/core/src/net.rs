//! Network policy as data: the allowlist's host patterns and what counts as loopback.
//!
//! Pure: the filtering proxy (crate `clp-net`) and the validator both use these, so an
//! entry means the same thing in `clp check`, in Claude Code's own sandbox settings and
//! in the proxy that enforces it.

use std::net::IpAddr;

/// One `network.allow` entry: `host`, `host:port`, `*.domain` or an IP address.
///
/// A name matches case-insensitively and without a trailing dot. `*.domain` matches any
/// subdomain at any depth, never `domain` itself and never an IP address. Without a port
/// an entry allows ports 80 and 443; with one, that port only.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPattern {
    text: String,
    host: HostMatch,
    port: Option<u16>,
}

/// What part of a pattern names the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum HostMatch {
    /// One name, lower-case.
    Name(String),
    /// Subdomains of a name (`*.name`), lower-case.
    Suffix(String),
    /// An IP address, written literally.
    Ip(IpAddr),
}

/// The ports an entry without a port allows.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

impl HostPattern {
    /// Parses an entry; the error says why it is not one.
    pub fn parse(pattern: &str) -> Result<HostPattern, String> {
        let bad = || format!("`{pattern}` is not a host pattern");
        if pattern.contains("://") || pattern.contains('/') {
            return Err(bad());
        }
        if let Ok(ip) = pattern.parse::<IpAddr>() {
            return Ok(HostPattern {
                text: pattern.to_owned(),
                host: HostMatch::Ip(ip),
                port: None,
            });
        }
        if let Ok(sa) = pattern.parse::<std::net::SocketAddr>() {
            return Ok(HostPattern {
                text: pattern.to_owned(),
                host: HostMatch::Ip(sa.ip()),
                port: Some(sa.port()),
            });
        }
        let (host, port) = match pattern.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (pattern, None),
        };
        let port = match port {
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 => Some(n),
                _ => return Err(format!("`{p}` is not a port number")),
            },
            None => None,
        };
        let (wild, name) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if !valid {
            return Err(bad());
        }
        Ok(HostPattern {
            text: pattern.to_owned(),
            host: if wild {
                HostMatch::Suffix(name)
            } else {
                HostMatch::Name(name)
            },
            port,
        })
    }

    /// Whether a request for `host:port` (a name or an address as the client wrote it)
    /// is allowed by this entry.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let port_ok = match self.port {
            Some(p) => p == port,
            None => DEFAULT_PORTS.contains(&port),
        };
        if !port_ok {
            return false;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match (&self.host, host.parse::<IpAddr>()) {
            (HostMatch::Ip(ip), Ok(asked)) => *ip == asked,
            (HostMatch::Ip(_), Err(_)) | (_, Ok(_)) => false,
            (HostMatch::Name(name), Err(_)) => normalize(host) == *name,
            (HostMatch::Suffix(suffix), Err(_)) => {
                let host = normalize(host);
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix.as_str())
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
        }
    }

    /// The host part as Claude Code's `sandbox.network.allowedDomains` takes it
    /// (`example.com`, `*.example.com`), without the port.
    pub fn domain(&self) -> String {
        match &self.host {
            HostMatch::Name(n) => n.clone(),
            HostMatch::Suffix(s) => format!("*.{s}"),
            HostMatch::Ip(ip) => ip.to_string(),
        }
    }

    /// Whether the entry names an IP address rather than a host name.
    pub fn is_ip(&self) -> bool {
        matches!(self.host, HostMatch::Ip(_))
    }

    /// The entry as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
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

    #[test]
    fn patterns_match_as_documented() {
        let p = |s: &str| HostPattern::parse(s).unwrap();
        let table: &[(&str, &str, u16, bool)] = &[
            ("github.com", "github.com", 443, true),
            ("github.com", "GitHub.com.", 80, true),
            ("github.com", "github.com", 22, false),
            ("github.com", "api.github.com", 443, false),
            ("*.npmjs.org", "registry.npmjs.org", 443, true),
            ("*.npmjs.org", "a.b.npmjs.org", 443, true),
            ("*.npmjs.org", "npmjs.org", 443, false),
            ("*.npmjs.org", "evilnpmjs.org", 443, false),
            ("*.npmjs.org", "1.2.3.4", 443, false),
            ("pypi.org:8443", "pypi.org", 8443, true),
            ("pypi.org:8443", "pypi.org", 443, false),
            ("10.0.0.5", "10.0.0.5", 443, true),
            ("10.0.0.5", "10.0.0.6", 443, false),
            ("127.0.0.1:8080", "127.0.0.1", 8080, true),
            ("example.com", "93.184.216.34", 443, false),
        ];
        for (pattern, host, port, want) in table {
            assert_eq!(
                p(pattern).matches(host, *port),
                *want,
                "{pattern} vs {host}:{port}"
            );
        }
        for bad in [
            "https://x.com",
            "x.com/a",
            "",
            "*.",
            "a..b",
            "x.com:0",
            "x.com:http",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
