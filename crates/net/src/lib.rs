//! clp-net: the network policy for a whole clp session at level B.
//!
//! In `network.mode = "allowlist"` or `"offline"` every process of the session lives in
//! a network namespace of its own whose loopback holds only what clp put there: relays
//! to the host's backend and IDE ports, and a filtering HTTP proxy with its SOCKS5
//! twin. clp serves them from its own process, outside the namespace.
//!
//! The pieces, in the order clp uses them:
//!
//! 1. [`netns::NetnsSession::spawn`] re-executes clp as a helper that creates the
//!    namespace, binds the loopback listeners inside it, hands them back over a Unix
//!    socket, then runs bubblewrap (with `--unshare-all --share-net`) as its child.
//!    The helper side is [`netns::helper_main`], which clp's `main` calls first thing
//!    when it finds itself re-executed.
//! 2. [`relay::serve_relay`] serves each relayed port: accept inside, connect to the
//!    host's address, copy both ways.
//! 3. [`proxy::serve_proxy`] serves the proxy port: `CONNECT` tunnels and absolute-form
//!    HTTP requests, each checked against a [`policy::Allowlist`], resolved by a
//!    [`resolve::Resolver`] that refuses private and loopback answers, and logged by a
//!    [`log::DecisionLog`].
//! 4. [`socks::serve_socks`] serves the SOCKS5 port with the same [`proxy::ProxyConfig`]
//!    and the same decision step, for clients that speak SOCKS (Claude Code's own Bash
//!    sandbox bridges `ALL_PROXY=socks5h://...` there).
//!
//! The library never prints: errors are values ([`Error`]), decisions go to the log.
//! See `README.md` beside `Cargo.toml` for the design and what fails closed.

pub mod addr;
mod dial;
mod error;
pub mod log;
pub mod netns;
pub mod policy;
pub mod proxy;
pub mod relay;
pub mod resolve;
mod serve;
pub mod session;
pub mod socks;

pub use error::Error;
pub use serve::ServerHandle;

/// How long the proxies and the relays wait for a TCP connection to their target.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
