//! Bringing the new namespace's loopback interface up with one rtnetlink request
//! (`RTM_NEWLINK`, the equivalent of `ip link set lo up`), in safe code.

use std::io;

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{
    recv, sendto, socket_with, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType,
};

const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLMSG_ERROR: u16 = 2;
const IFF_UP: u32 = 0x1;
/// The loopback interface's index: the kernel creates it first in every network
/// namespace (`LOOPBACK_IFINDEX`), and a new namespace has no other interface.
const LOOPBACK_IFINDEX: i32 = 1;

/// Sets `IFF_UP` on the loopback interface of the current network namespace, which
/// also gives it 127.0.0.1/8 and ::1.
pub(crate) fn bring_up() -> io::Result<()> {
    let sock = socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None, // NETLINK_ROUTE is protocol 0
    )?;
    // struct nlmsghdr (16 bytes) + struct ifinfomsg (16 bytes), native endian.
    let mut req = Vec::with_capacity(32);
    req.extend_from_slice(&32u32.to_ne_bytes()); // nlmsg_len
    req.extend_from_slice(&RTM_NEWLINK.to_ne_bytes()); // nlmsg_type
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes()); // nlmsg_flags
    req.extend_from_slice(&1u32.to_ne_bytes()); // nlmsg_seq
    req.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
    req.extend_from_slice(&[0, 0]); // ifi_family = AF_UNSPEC, padding
    req.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
    req.extend_from_slice(&LOOPBACK_IFINDEX.to_ne_bytes()); // ifi_index
    req.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_flags
    req.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_change
    sendto(
        &sock,
        &req,
        SendFlags::empty(),
        &SocketAddrNetlink::new(0, 0),
    )?;

    let mut ack = [0u8; 1024];
    let (_, n) = recv(&sock, &mut ack, RecvFlags::empty())?;
    // The acknowledgement: nlmsghdr with type NLMSG_ERROR, then an i32 errno (0: done).
    let field = |at: usize, len: usize| ack.get(at..at + len).filter(|_| at + len <= n);
    let kind = field(4, 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let errno = field(16, 4).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    match (kind, errno) {
        (Some(NLMSG_ERROR), Some(0)) => Ok(()),
        (Some(NLMSG_ERROR), Some(e)) => Err(io::Error::from_raw_os_error(-e)),
        _ => Err(io::Error::other("unexpected rtnetlink answer")),
    }
}
