//! Name resolution for the proxy: the system resolver, or a fixed test map that sends
//! chosen names to local stand-in servers.
//!
//! The map is how clp's end-to-end tests give the proxy an "internet" on loopback: clp
//! reads it from [`TEST_HOSTS_ENV`] and passes it to [`Resolver::with_map`]; this crate
//! never reads the environment itself.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;

use crate::policy::Host;
use crate::Error;

/// The environment variable clp reads a test host map from (see [`parse_test_hosts`]).
pub const TEST_HOSTS_ENV: &str = "CLP_TEST_PROXY_HOSTS";

/// Resolves the names the proxy connects to.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    map: HashMap<String, SocketAddr>,
}

/// What resolving a name gave.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A test map entry: connect here (port included), without the address check.
    Mapped(SocketAddr),
    /// The system resolver's addresses, in its order (possibly empty).
    Found(Vec<SocketAddr>),
    /// The system resolver failed.
    Failed(io::Error),
}

impl Resolver {
    /// The system resolver (`getaddrinfo`, run on Tokio's blocking pool).
    pub fn system() -> Resolver {
        Resolver::default()
    }

    /// The system resolver, except that each mapped name resolves to its address
    /// (port included) without the private-range check. Mapped names still need an
    /// allowlist entry. Names are normalised like requests' hosts; an invalid one is
    /// an error naming it.
    pub fn with_map<I, S>(map: I) -> Result<Resolver, Error>
    where
        I: IntoIterator<Item = (S, SocketAddr)>,
        S: AsRef<str>,
    {
        let mut out = HashMap::new();
        for (name, addr) in map {
            let name = name.as_ref();
            match Host::parse(name) {
                Ok(Host::Name(n)) => {
                    out.insert(n, addr);
                }
                Ok(Host::Ip(_)) => {
                    return Err(Error::TestHosts {
                        entry: name.to_owned(),
                        reason: "map names, not IP addresses",
                    })
                }
                Err(reason) => {
                    return Err(Error::TestHosts {
                        entry: name.to_owned(),
                        reason,
                    })
                }
            }
        }
        Ok(Resolver { map: out })
    }

    /// Whether a test map is in use.
    pub fn has_map(&self) -> bool {
        !self.map.is_empty()
    }

    pub(crate) async fn resolve(&self, name: &str, port: u16) -> Answer {
        if let Some(addr) = self.map.get(name) {
            return Answer::Mapped(*addr);
        }
        match tokio::net::lookup_host((name, port)).await {
            Ok(addrs) => Answer::Found(addrs.collect()),
            Err(e) => Answer::Failed(e),
        }
    }
}

/// Parses a test host map: `name=ip:port` entries separated by commas
/// (`allowed.test=127.0.0.1:4001,blocked.test=127.0.0.1:4002`; IPv6 as `[::1]:4001`).
/// Empty entries are skipped. Pass the result to [`Resolver::with_map`].
pub fn parse_test_hosts(text: &str) -> Result<Vec<(String, SocketAddr)>, Error> {
    text.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let bad = |reason| Error::TestHosts {
                entry: entry.to_owned(),
                reason,
            };
            let (name, addr) = entry
                .split_once('=')
                .ok_or_else(|| bad("expected NAME=IP:PORT"))?;
            let addr = addr
                .trim()
                .parse::<SocketAddr>()
                .map_err(|_| bad("the address is not IP:PORT"))?;
            Ok((name.trim().to_owned(), addr))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hosts_parse() {
        let map = parse_test_hosts("allowed.test=127.0.0.1:4001, Blocked.Test.=[::1]:4002,")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            map,
            vec![
                (
                    "allowed.test".into(),
                    "127.0.0.1:4001".parse().unwrap_or_else(|e| panic!("{e}"))
                ),
                (
                    "Blocked.Test.".into(),
                    "[::1]:4002".parse().unwrap_or_else(|e| panic!("{e}"))
                ),
            ]
        );
        let r = Resolver::with_map(map).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.map.contains_key("blocked.test"));
        for (bad, needle) in [
            ("allowed.test", "NAME=IP:PORT"),
            ("a.test=localhost:80", "IP:PORT"),
            ("a.test=127.0.0.1", "IP:PORT"),
        ] {
            let err = parse_test_hosts(bad).map(|_| ()).unwrap_err();
            assert!(err.to_string().contains(needle), "{bad}: {err}");
        }
        let err = Resolver::with_map([(
            "1.2.3.4",
            "127.0.0.1:1".parse().unwrap_or_else(|e| panic!("{e}")),
        )])
        .map(|_| ())
        .unwrap_err();
        assert!(err.to_string().contains("not IP"), "{err}");
    }
}
