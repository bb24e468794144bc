//! Where a box listens: TCP and UDP on the same address and port, as the contract wants.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};

use super::udp::blocks::size_buffers;
use crate::local::auth::Secret;
use crate::protocol::error::{Error, Result};

/// Binds the TCP listener and the UDP socket of a box on `addr`. With port 0 the OS picks a TCP
/// port and UDP takes the same number; should that number be taken for UDP, another is tried.
///
/// # Errors
/// If the address cannot be bound.
pub fn bind(addr: &str) -> Result<(TcpListener, UdpSocket)> {
    let context = || format!("cannot listen on {addr}");
    let wanted = addr
        .to_socket_addrs()
        .map_err(|e| Error::net(context(), e))?
        .next();
    let wanted = wanted.ok_or_else(|| Error::Usage(format!("\"{addr}\" is not an address")))?;
    let attempts = if wanted.port() == 0 { 20 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let tcp = TcpListener::bind(wanted).map_err(|e| Error::net(context(), e))?;
        let bound = tcp.local_addr().map_err(|e| Error::net(context(), e))?;
        match UdpSocket::bind(bound) {
            Ok(udp) => {
                size_buffers(&udp, "server");
                return Ok((tcp, udp));
            }
            Err(e) => last = Some(e),
        }
    }
    let none = || io::Error::other("no port free for both TCP and UDP");
    Err(Error::net(context(), last.unwrap_or_else(none)))
}

/// Warns when a box without a shared secret listens where other machines can reach it: anyone
/// who can connect may then read every file. The default address is loopback.
pub fn warn_if_exposed(addr: SocketAddr, secret: Option<&Secret>) {
    if secret.is_none() && !addr.ip().is_loopback() {
        log::warn!("listening on {addr} without --secret-file: anyone who can reach this address can read the box");
    }
}
