//! Inherited descriptors: adopting the control socket the parent placed at a fixed
//! number, and marking every other inherited descriptor close-on-exec so that nothing
//! of clp's caller reaches the sandbox.
//!
//! This is the crate's only unsafe code. The standard library has no safe way to take
//! ownership of a descriptor inherited by number (that is what `OwnedFd::from_raw_fd`
//! is for, and it is `unsafe` because a wrong number would alias another owner), nor
//! to change the flags of a descriptor known only by number, and neither nix nor
//! rustix wraps `close_range`. The checks below make the numbers right: the control
//! descriptor must be open and a socket, and it is adopted at most once per process;
//! `fcntl(F_SETFD)` on a number that is not open only fails with `EBADF`.
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

/// Marks every open descriptor above 2 close-on-exec except those in `keep`, so the
/// sandbox command inherits only stdio and the descriptors clp chose to pass.
pub(crate) fn cloexec_all_but(keep: &[RawFd]) -> io::Result<()> {
    let mut open = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        if let Some(fd) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        {
            open.push(fd);
        }
    }
    for fd in open.into_iter().filter(|fd| *fd > 2 && !keep.contains(fd)) {
        // SAFETY: F_SETFD takes an integer and changes only the close-on-exec flag; a
        // number that is no longer open (the directory listed above) gives EBADF,
        // which is ignored. No memory is involved and no descriptor is closed.
        let _ = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}
