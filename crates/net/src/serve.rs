//! The accept loop the relays and the proxies share, and the handle that stops it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::Error;

/// How long [`ServerHandle::shutdown`] lets open connections finish.
const GRACE: Duration = Duration::from_secs(5);

/// A running relay or proxy. Dropping it stops the server too (abruptly);
/// [`shutdown`](Self::shutdown) stops it and waits for its connections.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    done: mpsc::Receiver<()>,
}

impl ServerHandle {
    /// The address the listener was bound to (inside the session's namespace when it
    /// came from the helper).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, closes idle connections and tunnels, lets requests in flight
    /// finish for up to 5 seconds, and returns once every task has ended (or the 5
    /// seconds are up).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(GRACE, self.done.recv()).await;
    }
}

/// What every task of a server holds: the stop signal, and a token whose drop tells
/// [`ServerHandle::shutdown`] the task has ended.
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    rx: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

impl Stop {
    /// Resolves once the server is told to stop (or its handle is dropped).
    pub(crate) async fn stopped(&mut self) {
        let _ = self.rx.wait_for(|s| *s).await;
    }
}

/// Converts a listener from the helper (or a test) into a Tokio one; needs a runtime.
fn tokio_listener(listener: std::net::TcpListener) -> Result<(TcpListener, SocketAddr), Error> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("read the address of", "a listener", e))?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::io(
            "serve",
            addr,
            io::Error::other("not called inside a Tokio runtime"),
        ));
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("make non-blocking", addr, e))?;
    let listener = TcpListener::from_std(listener).map_err(|e| Error::io("register", addr, e))?;
    Ok((listener, addr))
}

/// Accepts on `listener` until stopped, running `handle` for each connection.
pub(crate) fn spawn_server<F, Fut>(
    listener: std::net::TcpListener,
    handle: F,
) -> Result<ServerHandle, Error>
where
    F: Fn(TcpStream, SocketAddr, Stop) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (listener, local_addr) = tokio_listener(listener)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (alive_tx, done) = mpsc::channel(1);
    let mut stop = Stop {
        rx: stop_rx,
        _alive: alive_tx,
    };
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                biased;
                () = stop.stopped() => break,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(handle(stream, peer, stop.clone()));
                }
                // Out of descriptors and the like: wait rather than spin, keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        // The listener closes before this task's token says it has ended: `shutdown`
        // returns on that token, and then nothing may listen any more.
        drop(listener);
        drop(stop);
    });
    Ok(ServerHandle {
        local_addr,
        stop: stop_tx,
        done,
    })
}
