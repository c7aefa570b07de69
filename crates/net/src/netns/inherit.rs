//! Adopting the control socket the parent placed at a fixed descriptor number.
//!
//! This is the crate's only unsafe code. The standard library has no safe way to take
//! ownership of a descriptor inherited by number (that is what `OwnedFd::from_raw_fd`
//! is for, and it is `unsafe` because a wrong number would alias another owner), and
//! no well-kept crate offers it for an arbitrary socket. The checks below make the
//! number right: the descriptor must be open and a socket, and it is adopted at most
//! once per process.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

static CLAIMED: AtomicBool = AtomicBool::new(false);

/// Takes ownership of inherited descriptor `fd`, which must be an open socket.
pub(crate) fn claim_socket(fd: RawFd) -> io::Result<OwnedFd> {
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}"))?;
    if !link.to_string_lossy().starts_with("socket:") {
        return Err(io::Error::other(format!(
            "descriptor {fd} is `{}`, not a socket",
            link.display()
        )));
    }
    if CLAIMED.swap(true, Ordering::SeqCst) {
        return Err(io::Error::other("the control socket was already claimed"));
    }
    // SAFETY: descriptor `fd` is open (its /proc entry exists) and is a socket. The
    // parent put it there for this process, and nothing else in this process owns it:
    // the helper claims it first thing, once (guarded by CLAIMED), before it opens
    // anything else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
