//! What the fake backend and the stand-in IDE share: an accept loop that serves each
//! connection on a thread of its own, and a stop that ends every connection and joins
//! every thread, so that nothing of a test server outlives it.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::lock;

/// A server's open connections and their threads.
#[derive(Debug, Default)]
pub(crate) struct Conns {
    /// Set by [`stop`]; connections that loop check it too.
    pub(crate) stopping: AtomicBool,
    /// Open connections (by id) so [`stop`] can shut them down.
    open: Mutex<Vec<(u64, TcpStream)>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Conns {
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Starts the accept loop on a thread named `{name}-accept`: each connection is served by
/// `serve` on a thread `{name}-conn-N`, until [`stop`].
pub(crate) fn spawn<S: Send + Sync + 'static>(
    name: &str,
    listener: TcpListener,
    shared: &Arc<S>,
    conns: fn(&S) -> &Conns,
    serve: fn(TcpStream, &S),
) -> std::io::Result<JoinHandle<()>> {
    let shared = Arc::clone(shared);
    let prefix = name.to_owned();
    std::thread::Builder::new()
        .name(format!("{name}-accept"))
        .spawn(move || accept_loop(&prefix, &listener, &shared, conns, serve))
}

fn accept_loop<S: Send + Sync + 'static>(
    name: &str,
    listener: &TcpListener,
    shared: &Arc<S>,
    conns: fn(&S) -> &Conns,
    serve: fn(TcpStream, &S),
) {
    let mut next_conn = 0u64;
    for stream in listener.incoming() {
        let c = conns(shared);
        if c.stopping() {
            break;
        }
        let Ok(stream) = stream else {
            // E.g. out of file descriptors: back off instead of spinning.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        next_conn += 1;
        let conn_id = next_conn;
        if let Ok(clone) = stream.try_clone() {
            lock(&c.open).push((conn_id, clone));
        }
        let worker = {
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name(format!("{name}-conn-{conn_id}"))
                .spawn(move || {
                    serve(stream, &shared);
                    lock(&conns(&shared).open).retain(|(id, _)| *id != conn_id);
                })
        };
        let mut workers = lock(&c.workers);
        workers.retain(|w| !w.is_finished());
        if let Ok(w) = worker {
            workers.push(w);
        }
    }
}

/// Stops the server listening at `addr`: the accept loop ends, every open connection is
/// shut down and every thread joined.
pub(crate) fn stop(conns: &Conns, addr: SocketAddr, acceptor: JoinHandle<()>) {
    conns.stopping.store(true, Ordering::SeqCst);
    // Wake the blocking accept(); the loop sees `stopping` and exits.
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    let _ = acceptor.join();
    for (_, conn) in lock(&conns.open).drain(..) {
        let _ = conn.shutdown(Shutdown::Both);
    }
    let workers: Vec<_> = lock(&conns.workers).drain(..).collect();
    for w in workers {
        let _ = w.join();
    }
}
