//! The numbers of a UDP download: block sizes, the window, socket buffers, tokens.

use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

use socket2::SockRef;

use super::{datagram, flight};
use crate::local::auth::random_u64;
use crate::protocol::error::{Error, Result};

/// Block size for a client on an IPv4 LAN: 1500 (Ethernet MTU) - 20 (IPv4) - 8 (UDP) - 24 (our
/// header).
pub const LAN_BLOCK_V4: u32 = 1500 - 20 - 8 - datagram::DATA_HEADER as u32;
/// Block size for a client on an IPv6 LAN: 1500 - 40 (IPv6) - 8 (UDP) - 24 (our header).
pub const LAN_BLOCK_V6: u32 = 1500 - 40 - 8 - datagram::DATA_HEADER as u32;
/// Block size for a client on the same machine: the loopback MTU is 65536, and 32 KiB blocks
/// keep each datagram whole while costing 22 times fewer system calls than LAN blocks.
pub const LOOPBACK_BLOCK: u32 = 32 * 1024;
/// The smallest block size a client accepts.
pub const MIN_BLOCK: u32 = 512;
/// The largest: what one IPv4 datagram can carry after our header.
pub const MAX_BLOCK: u32 = (datagram::MAX_DATAGRAM - datagram::DATA_HEADER) as u32;
/// The socket buffer size each side asks for. Linux caps it at `net.core.rmem_max` /
/// `wmem_max`; what was granted is logged, and the client sizes its window to it.
pub const SOCKET_BUFFER: usize = 8 << 20;
/// How much memory the client may use to hold blocks that arrived ahead of a gap.
pub const MAX_REORDER_BYTES: usize = 16 << 20;
/// Timeouts in a row (each twice as long as the one before, up to a second) after which a side
/// gives up, if the 10 s without progress did not come first.
pub const MAX_RETRIES: u32 = 16;
/// How often a side looks at its TCP connection during a transfer.
pub const TCP_POLL: Duration = Duration::from_millis(50);

/// Asks for [`SOCKET_BUFFER`]-sized buffers on a UDP socket and logs what the kernel granted.
/// Returns the granted receive buffer in bytes (as Linux reports it: twice what was set, since it
/// counts its bookkeeping too).
pub fn size_buffers(socket: &UdpSocket, who: &str) -> usize {
    let s = SockRef::from(socket);
    // Failure to enlarge is not fatal: the window adapts to what we have.
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    let recv = s.recv_buffer_size().unwrap_or(0);
    let send = s.send_buffer_size().unwrap_or(0);
    log::info!(
        "udp {who}: asked for {} KiB socket buffers, the kernel granted {} KiB to receive and {} KiB to send",
        SOCKET_BUFFER >> 10,
        recv >> 10,
        send >> 10
    );
    recv
}

/// The block size the server offers a client at `peer` (see the module docs).
pub fn block_size_for(peer: IpAddr) -> u32 {
    if let Some(forced) = std::env::var("MINIBOX_UDP_BLOCK")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
    {
        return forced.clamp(MIN_BLOCK, MAX_BLOCK);
    }
    match peer {
        _ if peer.is_loopback() => LOOPBACK_BLOCK,
        IpAddr::V4(_) => LAN_BLOCK_V4,
        IpAddr::V6(_) => LAN_BLOCK_V6,
    }
}

/// How many blocks a file of `size` bytes has.
///
/// # Errors
/// If the block size is out of range or the count does not fit the 32-bit block numbers.
pub fn block_count(size: u64, block_size: u32) -> Result<u32> {
    if !(MIN_BLOCK..=MAX_BLOCK).contains(&block_size) {
        return Err(Error::Protocol(format!(
            "a block size of {block_size} bytes is outside {MIN_BLOCK}..={MAX_BLOCK}"
        )));
    }
    u32::try_from(size.div_ceil(u64::from(block_size))).map_err(|_| {
        Error::Protocol(format!(
            "{size} bytes in blocks of {block_size} need more than 2^32 blocks"
        ))
    })
}

/// The window the client advertises: as many blocks as its socket buffer holds (so that a burst
/// the size of the window never overflows it) and its memory budget allows.
///
/// The kernel charges each datagram more than its payload (its bookkeeping, and allocation
/// rounding): measured on Linux, about 2.3 KiB for a 1.5 KB datagram and payload + 0.9 KiB for
/// 32 KiB ones. The estimate below is a little above both. And Linux gives back the room of the
/// datagrams a reader took only in batches of a quarter of the buffer, so only about three
/// quarters of it can be counted on: we count on five eighths.
pub fn receive_window(recv_buffer: usize, block_size: u32) -> u32 {
    let datagram = block_size as usize + datagram::DATA_HEADER;
    let charged = datagram + datagram / 8 + 1024;
    let by_socket = recv_buffer / 8 * 5 / charged;
    let by_memory = MAX_REORDER_BYTES / block_size.max(1) as usize;
    let w = by_socket
        .min(by_memory)
        .clamp(2, flight::MAX_WINDOW as usize);
    u32::try_from(w).unwrap_or(flight::MAX_WINDOW)
}

/// A fresh token: 53 random bits (an exact number in any JSON library), from the operating
/// system's random source ([`random_u64`]), so that a datagram from an earlier
/// transfer, or from someone guessing, does not match. It is not a secret from someone who can
/// watch the traffic (see `docs/SECURITY.md`).
pub fn new_token() -> u64 {
    let random = random_u64().unwrap_or_else(|e| {
        // Without /dev/urandom, std's hasher keys (also seeded by the OS) stand in.
        log::warn!("no OS randomness for a UDP token ({e}); using std's hasher keys");
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    });
    (random & ((1 << 53) - 1)).max(1)
}

#[cfg(test)]
mod tests;
