//! The filtering SOCKS5 server (RFC 1928): the same policy as the HTTP proxy, for
//! clients that speak SOCKS. Claude Code's own Bash sandbox, told to use external
//! proxies, bridges its commands' `ALL_PROXY=socks5h://...` traffic to this port.
//!
//! What it speaks:
//!
//! - SOCKS version 5 only; a first byte other than 5 (SOCKS4, HTTP, garbage) closes the
//!   connection without a reply.
//! - No authentication (method `0x00`); a client offering only other methods is
//!   answered `0xFF` and closed.
//! - `CONNECT` only: `BIND` and `UDP ASSOCIATE` are answered `0x07` (command not
//!   supported), an unknown address type `0x08`.
//! - IPv4, domain name (`socks5h`: the proxy resolves) and IPv6 destinations, judged,
//!   logged and connected by the step the HTTP proxy uses (see `dial.rs`), with the
//!   method `SOCKS5` in the decision log.
//!
//! A refusal by the policy is reply `0x02` (connection not allowed by ruleset), sent at
//! once, then the connection is closed. An allowed destination that refuses the
//! connection is `0x05`, a network that cannot be reached `0x03`, anything else
//! (timeout, no route) `0x04`. The client must send its whole request within the
//! handshake timeout of accepting ([`HANDSHAKE_TIMEOUT`]), so a silent or slow client
//! cannot hold a task; tunnels then have no idle timeout, like `CONNECT` tunnels.
//!
//! The handshake is written here rather than taken from a crate: it is a few fixed
//! fields (every length is one byte, so every read is bounded by 255), and the crate
//! that fits best (`fast-socks5` 1.0) would bring a second `thiserror`, a second
//! `socket2`, `anyhow`, `async-trait` and `tokio-stream` for about a hundred lines.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::dial::{Dest, Failure};
use crate::proxy::ProxyConfig;
use crate::serve::{spawn_server, Stop};
use crate::{Error, ServerHandle};

/// How long a client has, from being accepted, to send its whole request (greeting,
/// method choice and `CONNECT`); also the bound on writing each reply.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `method` the decision log records for a SOCKS `CONNECT`.
const LOG_METHOD: &str = "SOCKS5";

const VERSION: u8 = 0x05;
const METHOD_NO_AUTH: u8 = 0x00;
const METHOD_NONE_ACCEPTABLE: u8 = 0xFF;
const CMD_CONNECT: u8 = 0x01;
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;

/// Reply codes (RFC 1928, section 6).
mod reply {
    pub(super) const SUCCEEDED: u8 = 0x00;
    pub(super) const GENERAL_FAILURE: u8 = 0x01;
    pub(super) const NOT_ALLOWED: u8 = 0x02;
    pub(super) const NETWORK_UNREACHABLE: u8 = 0x03;
    pub(super) const HOST_UNREACHABLE: u8 = 0x04;
    pub(super) const CONNECTION_REFUSED: u8 = 0x05;
    pub(super) const COMMAND_NOT_SUPPORTED: u8 = 0x07;
    pub(super) const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;
}

/// Serves SOCKS5 on `listener` (bound inside the namespace by the helper) with the
/// policy of `config`, until the handle is shut down or dropped. Must be called inside
/// a Tokio runtime.
pub fn serve_socks(
    listener: std::net::TcpListener,
    config: ProxyConfig,
) -> Result<ServerHandle, Error> {
    serve_socks_with_timeout(listener, config, HANDSHAKE_TIMEOUT)
}

/// [`serve_socks`] with another handshake timeout.
pub fn serve_socks_with_timeout(
    listener: std::net::TcpListener,
    config: ProxyConfig,
    handshake_timeout: Duration,
) -> Result<ServerHandle, Error> {
    let shared = Arc::new(config);
    spawn_server(listener, move |stream, _peer, stop| {
        serve_connection(stream, shared.clone(), handshake_timeout, stop)
    })
}

async fn serve_connection(
    mut client: TcpStream,
    config: Arc<ProxyConfig>,
    handshake_timeout: Duration,
    mut stop: Stop,
) {
    let upstream = tokio::select! {
        u = establish(&mut client, &config, handshake_timeout) => u,
        () = stop.stopped() => None,
    };
    let Some(mut upstream) = upstream else {
        return;
    };
    let _ = client.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        () = stop.stopped() => {}
    }
}

/// Everything before the tunnel: the handshake, the policy step, the reply. `None`
/// when the connection is to be closed (after its reply, if it gets one).
async fn establish(
    client: &mut TcpStream,
    config: &ProxyConfig,
    handshake_timeout: Duration,
) -> Option<TcpStream> {
    let (host, port) = match tokio::time::timeout(handshake_timeout, handshake(client)).await {
        Ok(Ok(dest)) => dest,
        Ok(Err(Abort::Reply(code))) => {
            refuse(client, code, handshake_timeout).await;
            return None;
        }
        Ok(Err(Abort::Close)) | Err(_) => return None,
    };
    let mut dest = Dest {
        method: LOG_METHOD.to_owned(),
        host,
        port,
    };
    match config.open(&mut dest).await {
        Ok(upstream) => {
            let sent = tokio::time::timeout(
                handshake_timeout,
                client.write_all(&reply_bytes(reply::SUCCEEDED)),
            )
            .await;
            matches!(sent, Ok(Ok(()))).then_some(upstream)
        }
        Err(failure) => {
            refuse(client, failure_code(&failure), handshake_timeout).await;
            None
        }
    }
}

/// The reply code for a destination the policy step gave no connection to.
fn failure_code(failure: &Failure) -> u8 {
    match failure {
        Failure::Denied(_) => reply::NOT_ALLOWED,
        Failure::Unreachable { kind, .. } => match kind {
            io::ErrorKind::ConnectionRefused => reply::CONNECTION_REFUSED,
            io::ErrorKind::NetworkUnreachable => reply::NETWORK_UNREACHABLE,
            _ => reply::HOST_UNREACHABLE,
        },
    }
}

/// Sends an error reply and closes our side (the caller drops the stream next).
async fn refuse(client: &mut TcpStream, code: u8, limit: Duration) {
    let _ = tokio::time::timeout(limit, async {
        client.write_all(&reply_bytes(code)).await?;
        client.shutdown().await
    })
    .await;
}

/// A reply: `VER REP RSV ATYP BND.ADDR BND.PORT`. The bound address is always
/// `0.0.0.0:0`: clients ignore it after `CONNECT` (curl does), and the address the
/// proxy connected from, on the host, is none of the sandbox's business.
fn reply_bytes(code: u8) -> [u8; 10] {
    [VERSION, code, 0x00, ATYP_IPV4, 0, 0, 0, 0, 0, 0]
}

/// How a handshake ends without a destination to try.
#[derive(Debug, PartialEq, Eq)]
enum Abort {
    /// Close without a reply: not SOCKS5, no acceptable method (already answered
    /// `0xFF`), truncated, or an I/O error.
    Close,
    /// Answer this reply code, then close.
    Reply(u8),
}

impl From<io::Error> for Abort {
    fn from(_: io::Error) -> Abort {
        Abort::Close
    }
}

/// Reads the greeting, answers the method choice, and reads the request: the
/// destination's host (an IPv6 address in brackets, as [`Host::parse`] reads it) and
/// port, for a `CONNECT`. The whole request is read before any error reply, so that
/// closing afterwards leaves no unread byte (which would turn the close into a reset
/// that can destroy the reply before the client reads it).
///
/// [`Host::parse`]: crate::policy::Host::parse
async fn handshake<S>(stream: &mut S) -> Result<(String, u16), Abort>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let [version, count] = read_array::<_, 2>(stream).await?;
    if version != VERSION {
        return Err(Abort::Close);
    }
    let mut methods = [0u8; 255];
    let methods = &mut methods[..usize::from(count)];
    stream.read_exact(methods).await?;
    if !methods.contains(&METHOD_NO_AUTH) {
        let _ = stream.write_all(&[VERSION, METHOD_NONE_ACCEPTABLE]).await;
        return Err(Abort::Close);
    }
    stream.write_all(&[VERSION, METHOD_NO_AUTH]).await?;

    let [version, command, _reserved, address_type] = read_array::<_, 4>(stream).await?;
    if version != VERSION {
        return Err(Abort::Reply(reply::GENERAL_FAILURE));
    }
    let host = match address_type {
        ATYP_IPV4 => Ipv4Addr::from(read_array::<_, 4>(stream).await?).to_string(),
        ATYP_IPV6 => format!("[{}]", Ipv6Addr::from(read_array::<_, 16>(stream).await?)),
        ATYP_DOMAIN => {
            let [len] = read_array::<_, 1>(stream).await?;
            let mut name = [0u8; 255];
            let name = &mut name[..usize::from(len)];
            stream.read_exact(name).await?;
            // Not UTF-8 is not ASCII either: the policy step refuses it by name.
            String::from_utf8_lossy(name).into_owned()
        }
        _ => return Err(Abort::Reply(reply::ADDRESS_TYPE_NOT_SUPPORTED)),
    };
    let port = u16::from_be_bytes(read_array::<_, 2>(stream).await?);
    if command != CMD_CONNECT {
        return Err(Abort::Reply(reply::COMMAND_NOT_SUPPORTED));
    }
    Ok((host, port))
}

async fn read_array<S: AsyncRead + Unpin, const N: usize>(stream: &mut S) -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the handshake against `input`; returns its result and what it wrote.
    async fn run(input: &[u8]) -> (Result<(String, u16), Abort>, Vec<u8>) {
        let (mut ours, mut theirs) = tokio::io::duplex(1024);
        theirs
            .write_all(input)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // End of input: a truncated handshake sees EOF, not a hang.
        theirs.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
        let result = handshake(&mut ours).await;
        drop(ours);
        let mut written = Vec::new();
        theirs
            .read_to_end(&mut written)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (result, written)
    }

    fn request(command: u8, address: &[u8]) -> Vec<u8> {
        let mut bytes = vec![5, 1, 0, 5, command, 0];
        bytes.extend_from_slice(address);
        bytes
    }

    #[tokio::test]
    async fn reads_the_three_address_types() {
        let (r, w) = run(&request(1, &[1, 127, 0, 0, 1, 0x1f, 0x90])).await;
        assert_eq!(r, Ok(("127.0.0.1".into(), 8080)));
        assert_eq!(w, [5, 0]);

        let mut v6 = vec![4];
        v6.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
        v6.extend_from_slice(&[1, 187]);
        assert_eq!(
            run(&request(1, &v6)).await.0,
            Ok(("[2001:db8::1]".into(), 443))
        );

        let mut name = vec![3, 12];
        name.extend_from_slice(b"allowed.test");
        name.extend_from_slice(&[0, 80]);
        assert_eq!(
            run(&request(1, &name)).await.0,
            Ok(("allowed.test".into(), 80))
        );

        // Methods in any order, among others.
        let (r, w) = run(&[5, 3, 2, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, 0, 22]).await;
        assert_eq!(r, Ok(("10.0.0.1".into(), 22)));
        assert_eq!(w, [5, 0]);
    }

    #[tokio::test]
    async fn non_utf8_names_pass_on_to_be_refused_by_name() {
        let (r, _) = run(&request(1, &[3, 2, 0xff, b'a', 0, 80])).await;
        assert_eq!(r, Ok(("\u{fffd}a".into(), 80)));
    }

    #[tokio::test]
    async fn only_no_authentication_is_accepted() {
        let (r, w) = run(&[5, 1, 2]).await;
        assert_eq!((r, w), (Err(Abort::Close), vec![5, 0xff]));
        let (r, w) = run(&[5, 0]).await;
        assert_eq!((r, w), (Err(Abort::Close), vec![5, 0xff]));
    }

    #[tokio::test]
    async fn other_commands_and_address_types_get_their_reply_codes() {
        for command in [2, 3, 9] {
            let r = run(&request(command, &[1, 1, 2, 3, 4, 0, 80])).await.0;
            assert_eq!(
                r,
                Err(Abort::Reply(reply::COMMAND_NOT_SUPPORTED)),
                "{command}"
            );
        }
        let r = run(&request(1, &[2, 1, 2, 3, 4, 0, 80])).await.0;
        assert_eq!(r, Err(Abort::Reply(reply::ADDRESS_TYPE_NOT_SUPPORTED)));
        let r = run(&[5, 1, 0, 4, 1, 0, 1, 1, 2, 3, 4, 0, 80]).await.0;
        assert_eq!(r, Err(Abort::Reply(reply::GENERAL_FAILURE)));
    }

    #[tokio::test]
    async fn garbage_and_truncation_close_without_a_reply() {
        for input in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            &[4, 1, 0, 80, 127, 0, 0, 1, 0],
            &[],
            &[5],
            &[5, 2, 0],
        ] {
            let (r, w) = run(input).await;
            assert_eq!((r, w), (Err(Abort::Close), Vec::new()), "{input:?}");
        }
        for input in [
            request(1, &[]),
            request(1, &[1, 127, 0]),
            request(1, &[3, 200, b'a']),
            request(1, &[3, 1, b'a', 0]),
            request(1, &[4, 0, 0, 0]),
        ] {
            let (r, w) = run(&input).await;
            // The method reply went out; the request never completed.
            assert_eq!((r, w), (Err(Abort::Close), vec![5, 0]), "{input:?}");
        }
    }

    #[test]
    fn failures_map_to_reply_codes() {
        let unreachable = |kind| Failure::Unreachable {
            error: String::new(),
            kind,
        };
        assert_eq!(failure_code(&Failure::Denied("x".into())), 0x02);
        assert_eq!(
            failure_code(&unreachable(io::ErrorKind::ConnectionRefused)),
            0x05
        );
        assert_eq!(
            failure_code(&unreachable(io::ErrorKind::NetworkUnreachable)),
            0x03
        );
        assert_eq!(failure_code(&unreachable(io::ErrorKind::TimedOut)), 0x04);
        assert_eq!(reply_bytes(0x02), [5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
}
