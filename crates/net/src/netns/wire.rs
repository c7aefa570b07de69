//! The helper's control protocol: short text messages over a `SOCK_SEQPACKET` Unix
//! socket pair, with listeners attached as `SCM_RIGHTS`.
//!
//! | from | message | descriptors |
//! | --- | --- | --- |
//! | helper | `ready` | one listener per requested port, in order |
//! | helper | `err TEXT` | none (setup failed; the helper exits) |
//! | parent | `bind PORT` | none |
//! | helper | `ok PORT` | the new listener |
//! | helper | `fail PORT TEXT` | none (the bind failed) |
//!
//! Answers name their port so that a late answer to a request that timed out is
//! recognised and dropped instead of being taken for the next one's.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};

/// Most listeners one message carries (the helper's initial ports included).
pub(crate) const MAX_FDS: usize = 32;

/// Sends `text` with `fds` attached.
pub(crate) fn send(sock: BorrowedFd<'_>, text: &str, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::other(format!(
            "at most {MAX_FDS} listeners per message"
        )));
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("ancillary buffer too small"));
    }
    let sent = sendmsg(
        sock,
        &[IoSlice::new(text.as_bytes())],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    if sent != text.len() {
        return Err(io::Error::other("short send on a packet socket"));
    }
    Ok(())
}

/// Receives one message: `None` when the peer has closed its end.
pub(crate) fn recv(sock: BorrowedFd<'_>) -> io::Result<Option<(String, Vec<OwnedFd>)>> {
    let mut buf = [0u8; 4096];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        match recvmsg(
            sock,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    if msg.flags.contains(ReturnFlags::TRUNC) || msg.flags.contains(ReturnFlags::CTRUNC) {
        return Err(io::Error::other("message truncated"));
    }
    if msg.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&buf[..msg.bytes]).into_owned();
    Ok(Some((text, fds)))
}

/// Borrows each descriptor of a slice.
pub(crate) fn borrow_all<T: AsFd>(items: &[T]) -> Vec<BorrowedFd<'_>> {
    items.iter().map(AsFd::as_fd).collect()
}
