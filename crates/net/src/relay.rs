//! Loopback relays: a port inside the session's namespace that reaches one fixed
//! address of the host (the backend, an IDE's WebSocket).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::serve::{spawn_server, Stop};
use crate::{Error, ServerHandle, CONNECT_TIMEOUT};

/// Serves `listener` (bound inside the namespace by the helper): each connection is
/// joined to a new connection to `target` and bytes are copied both ways until either
/// side closes. A connection whose target cannot be reached within
/// [`CONNECT_TIMEOUT`] is closed. Must be called inside a Tokio runtime.
pub fn serve_relay(
    listener: std::net::TcpListener,
    target: SocketAddr,
) -> Result<ServerHandle, Error> {
    serve_relay_with_timeout(listener, target, CONNECT_TIMEOUT)
}

/// [`serve_relay`] with another connect timeout.
pub fn serve_relay_with_timeout(
    listener: std::net::TcpListener,
    target: SocketAddr,
    connect_timeout: Duration,
) -> Result<ServerHandle, Error> {
    spawn_server(listener, move |inside, _peer, stop| {
        relay_one(inside, target, connect_timeout, stop)
    })
}

async fn relay_one(
    mut inside: TcpStream,
    target: SocketAddr,
    connect_timeout: Duration,
    mut stop: Stop,
) {
    let Ok(Ok(mut outside)) =
        tokio::time::timeout(connect_timeout, TcpStream::connect(target)).await
    else {
        return;
    };
    let _ = inside.set_nodelay(true);
    let _ = outside.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inside, &mut outside) => {}
        () = stop.stopped() => {}
    }
}
