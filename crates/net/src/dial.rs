//! The step the HTTP proxy and the SOCKS server share: judge a destination by the
//! policy, log the decision, connect. Each server only translates the outcome into its
//! own protocol (`403` / `502`, or SOCKS replies `0x02` / `0x04` / `0x05`), so the two
//! cannot apply different rules.
//!
//! The order of checks for `host:port`:
//!
//! 1. A [`Pinned`](crate::proxy::Pinned) destination (clp's backend) is allowed and
//!    connected to its fixed address, without any other check.
//! 2. An IP literal is allowed only when an allowlist entry names that address; it is
//!    then connected to as written, without the address check (listing an address is
//!    the decision; the check exists for names, whose answers can change).
//! 3. A name must be on the [`Allowlist`](crate::policy::Allowlist); then it is
//!    resolved. A test map entry is connected to as mapped. System answers in the
//!    ranges [`crate::addr::refused`] lists are dropped; the remaining addresses are
//!    tried in order, within [`ProxyConfig::connect_timeout`] in all. Only refused
//!    answers: "resolves to a private address (10.0.0.5)"; no answer: "no address".

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpStream;

use crate::addr::refused;
use crate::log::{now_rfc3339, Decision, Record};
use crate::policy::Host;
use crate::proxy::ProxyConfig;
use crate::resolve::Answer;

/// A requested destination, as the log and the refusals name it.
#[derive(Debug)]
pub(crate) struct Dest {
    /// What asked: the HTTP method, or `SOCKS5` for the SOCKS server's `CONNECT`.
    pub(crate) method: String,
    /// The host as requested; normalised by [`ProxyConfig::open`] when it parses.
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// Why [`ProxyConfig::open`] gives no connection.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The policy refused the destination, for this reason (logged as `deny`).
    Denied(String),
    /// The destination is allowed but could not be reached (logged as `allow` with
    /// the `error`). `kind` is the last connection attempt's error kind (`TimedOut`
    /// when the time ran out), so that SOCKS can tell "refused" from "unreachable".
    Unreachable { error: String, kind: io::ErrorKind },
}

/// The outcome of the policy for one `host:port`.
enum Verdict {
    Allow {
        targets: Vec<SocketAddr>,
        reason: &'static str,
    },
    /// The reason, and what the resolver said when it failed.
    Deny(String, Option<String>),
}

/// Keeps the system resolver's acceptable answers, in order; refuses when none is.
fn judge(addrs: Vec<SocketAddr>) -> Verdict {
    let (ok, bad): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.into_iter().partition(|a| refused(a.ip()).is_none());
    if !ok.is_empty() {
        return Verdict::Allow {
            targets: ok,
            reason: "in network.allow",
        };
    }
    match bad.first().and_then(|a| Some((a.ip(), refused(a.ip())?))) {
        Some((ip, class)) => Verdict::Deny(format!("resolves to {class} ({ip})"), None),
        None => Verdict::Deny("no address".into(), None),
    }
}

impl ProxyConfig {
    async fn decide(&self, host: &Host, port: u16) -> Verdict {
        if let Some(p) = self
            .pinned
            .iter()
            .find(|p| p.host == *host && p.port == port)
        {
            return Verdict::Allow {
                targets: vec![p.target],
                reason: "pinned",
            };
        }
        if !self.allow.allows(host, port) {
            let reason = match host {
                Host::Ip(_) => "IP literal not in network.allow",
                Host::Name(_) => "not in network.allow",
            };
            return Verdict::Deny(reason.into(), None);
        }
        let name = match host {
            Host::Ip(ip) => {
                return Verdict::Allow {
                    targets: vec![SocketAddr::new(*ip, port)],
                    reason: "IP literal in network.allow",
                }
            }
            Host::Name(name) => name,
        };
        let answer =
            match tokio::time::timeout(self.connect_timeout, self.resolver.resolve(name, port))
                .await
            {
                Ok(a) => a,
                Err(_) => {
                    return Verdict::Deny("no address".into(), Some("resolution timed out".into()))
                }
            };
        match answer {
            Answer::Mapped(addr) => Verdict::Allow {
                targets: vec![addr],
                reason: "in network.allow (test host map)",
            },
            Answer::Failed(e) => Verdict::Deny("no address".into(), Some(e.to_string())),
            Answer::Found(addrs) => judge(addrs),
        }
    }

    fn log(
        &self,
        dest: &Dest,
        decision: Decision,
        reason: &str,
        addr: Option<SocketAddr>,
        error: Option<String>,
    ) {
        if let Some(log) = &self.log {
            let _ = log.append(&Record {
                ts: now_rfc3339(),
                method: dest.method.clone(),
                host: dest.host.clone(),
                port: dest.port,
                decision,
                reason: reason.to_owned(),
                addr: addr.map(|a| a.to_string()),
                error,
            });
        }
    }

    /// Runs the policy for `dest`, logs the decision and connects: the open
    /// connection, or why there is none. Normalises `dest.host` when it parses.
    pub(crate) async fn open(&self, dest: &mut Dest) -> Result<TcpStream, Failure> {
        let host = match Host::parse(&dest.host) {
            Ok(h) => h,
            Err(why) => {
                let reason = format!("invalid host name ({why})");
                self.log(dest, Decision::Deny, &reason, None, None);
                return Err(Failure::Denied(reason));
            }
        };
        dest.host = host.to_string();
        let (targets, why) = match self.decide(&host, dest.port).await {
            Verdict::Deny(reason, error) => {
                self.log(dest, Decision::Deny, &reason, None, error);
                return Err(Failure::Denied(reason));
            }
            Verdict::Allow { targets, reason } => (targets, reason),
        };
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let mut last = None;
        for target in &targets {
            match tokio::time::timeout_at(deadline, TcpStream::connect(target)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    self.log(dest, Decision::Allow, why, Some(*target), None);
                    return Ok(stream);
                }
                Ok(Err(e)) => last = Some((*target, format!("connect: {e}"), e.kind())),
                Err(_) => {
                    let error = "connect: timed out".to_owned();
                    last = Some((*target, error, io::ErrorKind::TimedOut));
                    break;
                }
            }
        }
        let (target, error, kind) = match last {
            Some((target, error, kind)) => (Some(target), error, kind),
            None => (
                None,
                "no address to connect to".to_owned(),
                io::ErrorKind::NotFound,
            ),
        };
        self.log(dest, Decision::Allow, why, target, Some(error.clone()));
        Err(Failure::Unreachable { error, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|a| a.parse().unwrap_or_else(|e| panic!("{a}: {e}")))
            .collect()
    }

    fn denial(v: Verdict) -> String {
        match v {
            Verdict::Deny(reason, _) => reason,
            Verdict::Allow { targets, .. } => panic!("allowed: {targets:?}"),
        }
    }

    #[test]
    fn resolved_addresses_are_judged() {
        assert_eq!(
            denial(judge(addrs(&["10.0.0.5:443"]))),
            "resolves to a private address (10.0.0.5)"
        );
        assert_eq!(
            denial(judge(addrs(&[
                "[::ffff:169.254.169.254]:80",
                "127.0.0.1:80"
            ]))),
            "resolves to a link-local address (::ffff:169.254.169.254)"
        );
        assert_eq!(denial(judge(Vec::new())), "no address");
        match judge(addrs(&[
            "10.0.0.5:443",
            "[2606:4700::1]:443",
            "8.8.8.8:443",
        ])) {
            Verdict::Allow { targets, reason } => {
                assert_eq!(targets, addrs(&["[2606:4700::1]:443", "8.8.8.8:443"]));
                assert_eq!(reason, "in network.allow");
            }
            Verdict::Deny(r, _) => panic!("denied: {r}"),
        }
    }
}
