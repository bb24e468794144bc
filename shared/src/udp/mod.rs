//! UDP downloads: every byte right over a network that loses, duplicates and reorders datagrams.
//!
//! TCP gives a reliable byte stream for free. UDP gives only datagrams: each arrives whole, or
//! not at all, or twice, or after the one sent after it. This module rebuilds just enough
//! reliability on top to move a file, and is the tutorial's chapter on how that is done
//! (`docs/udp.md` tells the same story in plain words; `docs/PROTOCOL.md` has the exact bytes).
//!
//! # The conversation
//!
//! The TCP connection stays open and carries the control messages; the file's bytes go over UDP:
//!
//! 1. The client sends `download_udp` on TCP. The server answers with a [`Reply::UdpOffer`]: the
//!    file's entry, a random per-transfer **token** and the **block size**.
//! 2. The client sends a first ack ("I have nothing; my window is W blocks") by UDP to the address
//!    it connected to (same IP, same port number as TCP). The server learns from that datagram
//!    where to send: it always answers to the source address of the client's latest datagram.
//! 3. The server sends numbered blocks; the client acks what it has (cumulative ack plus the
//!    gaps); the server resends only the gaps, and never sends past the client's window.
//! 4. With every block in hand, the client sends `udp_received` on TCP; the server answers with
//!    the [`Reply::Trailer`] (MD5) or a "changed" error, exactly as for a TCP download. The client
//!    has hashed the bytes as they were delivered in order, so it verifies at once and installs
//!    with [`transfer::install`] (temporary file, mtime and mode, atomic rename).
//!
//! Either side stops as soon as the TCP connection closes. The client gives up with one clear
//! sentence after [`crate::IDLE_TIMEOUT`] (10 s) without a new block or after [`MAX_RETRIES`]
//! unanswered acks in a row; the server a second later (`sender::GIVE_UP`), so that the client
//! is the one who reports.
//!
//! # Layout
//!
//! | module | what it holds |
//! |---|---|
//! | [`wire`] | the two datagram kinds (data, ack), byte by byte |
//! | [`window`] | the bookkeeping: reassembly, flight, round-trip time; no sockets |
//! | `demux` | how concurrent transfers share the server's one UDP socket |
//! | `sender` | the server's loop: send, read acks, resend, time out |
//! | `receiver` | the client's loop: receive, deliver in order, ack |
//!
//! # Block size
//!
//! A block must fit one datagram that IP does not fragment (a lost fragment loses the whole
//! datagram, so fragmentation multiplies loss). On an Ethernet LAN the MTU is 1500 bytes; minus
//! 20 bytes of IPv4 header, 8 of UDP header and our 24-byte data header, that leaves
//! [`LAN_BLOCK_V4`] = 1448 bytes (1428 with IPv6's 40-byte header). On the loopback interface
//! the MTU is 65536, so a [`LOOPBACK_BLOCK`] of 32 KiB fits one datagram there: the server
//! chooses it when the client is on loopback, which divides the number of datagrams (and system
//! calls) per byte by 22. minibox does not discover path MTUs: a path with a smaller MTU than
//! Ethernet's (some VPNs) still works, through IP fragmentation. `MINIBOX_UDP_BLOCK=BYTES` in the
//! server's environment forces a size, to measure what the choice costs (`scripts/bench.sh`).

mod demux;
mod receiver;
mod sender;
pub mod window;
pub mod wire;

use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

use socket2::SockRef;

use crate::conn::Connection;
use crate::error::{Error, Result};
use crate::hash::Md5;
use crate::local::LocalBox;
use crate::paths;
use crate::protocol::{Entry, ErrorCode, Reply, Request};
use crate::serve::{self, Failure};
use crate::transfer::{self, Progress, TempFile};

/// Block size for a client on an IPv4 LAN: 1500 (Ethernet MTU) - 20 (IPv4) - 8 (UDP) - 24 (our
/// header).
pub const LAN_BLOCK_V4: u32 = 1500 - 20 - 8 - wire::DATA_HEADER as u32;
/// Block size for a client on an IPv6 LAN: 1500 - 40 (IPv6) - 8 (UDP) - 24 (our header).
pub const LAN_BLOCK_V6: u32 = 1500 - 40 - 8 - wire::DATA_HEADER as u32;
/// Block size for a client on the same machine: the loopback MTU is 65536, and 32 KiB blocks
/// keep each datagram whole while costing 22 times fewer system calls than LAN blocks.
pub const LOOPBACK_BLOCK: u32 = 32 * 1024;
/// The smallest block size a client accepts.
pub const MIN_BLOCK: u32 = 512;
/// The largest: what one IPv4 datagram can carry after our header.
pub const MAX_BLOCK: u32 = (wire::MAX_DATAGRAM - wire::DATA_HEADER) as u32;
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
    let datagram = block_size as usize + wire::DATA_HEADER;
    let charged = datagram + datagram / 8 + 1024;
    let by_socket = recv_buffer / 8 * 5 / charged;
    let by_memory = MAX_REORDER_BYTES / block_size.max(1) as usize;
    let w = by_socket
        .min(by_memory)
        .clamp(2, window::MAX_WINDOW as usize);
    u32::try_from(w).unwrap_or(window::MAX_WINDOW)
}

/// A fresh token: 53 random bits (an exact number in any JSON library), from the operating
/// system's random source ([`crate::auth::random_u64`]), so that a datagram from an earlier
/// transfer, or from someone guessing, does not match. It is not a secret from someone who can
/// watch the traffic (see `docs/SECURITY.md`).
pub fn new_token() -> u64 {
    let random = crate::auth::random_u64().unwrap_or_else(|e| {
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

/// Serves a `download_udp` request on the server's shared UDP `socket`: offers the file, sends
/// it block by block to the client's UDP address, then ends with the trailer on TCP. Returns the
/// summary for the activity log.
///
/// # Errors
/// A reply for the client (missing file, the client stopped answering) or a broken connection.
pub fn serve_download(
    conn: &mut Connection,
    local: &LocalBox,
    socket: &UdpSocket,
    name: &str,
) -> Result<String, Failure> {
    let out = serve::open_outgoing(local, name)?;
    let block_size = block_size_for(conn.peer_addr().ip());
    let blocks = block_count(out.entry.size, block_size).map_err(|e| {
        Failure::Reply(
            ErrorCode::Unsupported,
            format!("{name} is too large for a UDP download: {e}"),
        )
    })?;
    let inbox = demux::Inbox::open(socket, conn.peer_addr().ip())
        .map_err(|e| Failure::Connection(Error::net("opening the UDP transfer", e)))?;
    conn.send(&Reply::UdpOffer {
        entry: out.entry.clone(),
        token: inbox.token(),
        block_size,
    })?;
    let mut source = sender::Source::new(&out.file, out.entry.size, block_size, blocks)
        .hashing(out.known.is_none());
    let report = sender::send(conn, &inbox, &mut source, name)?;
    drop(inbox);
    let (md5, complete) = match out.known {
        Some(md5) => (md5, true),
        None => match source.finish_hash() {
            Ok(md5) => (md5, true),
            Err(e) => {
                log::warn!("udp: {name}: {e}");
                (Md5::default(), false)
            }
        },
    };
    let summary = serve::finish_outgoing(conn, local, &out, md5, complete)?;
    Ok(format!("{summary} over udp ({report})"))
}

/// Downloads `name` over UDP into `local`, verifies it, installs it. Returns the installed entry
/// with its MD5.
///
/// # Errors
/// A refused name, a remote error, a transfer that made no progress for 10 s, a failed
/// verification or a broken connection; in every case nothing is installed.
pub fn download(
    conn: &mut Connection,
    local: &LocalBox,
    name: &str,
    progress: Progress<'_>,
) -> Result<Entry> {
    paths::check_name(name)?;
    // Our UDP socket: on the address our TCP connection leaves from, any free port, and
    // *connected* to the server's address, so the kernel itself drops datagrams from anyone else.
    let server = conn.peer_addr();
    let mut here = conn
        .stream()
        .local_addr()
        .map_err(|e| Error::net("reading our own address", e))?;
    here.set_port(0); // (keeps an IPv6 scope, which binding to the bare IP would lose)
    let socket = UdpSocket::bind(here)
        .and_then(|s| s.connect(server).map(|()| s))
        .map_err(|e| Error::net("opening a UDP socket", e))?;
    let granted = size_buffers(&socket, "client");
    conn.send(&Request::DownloadUdp {
        path: name.to_string(),
    })?;
    let (entry, token, block_size) = match conn.recv::<Reply>()? {
        Reply::UdpOffer {
            entry,
            token,
            block_size,
        } => (transfer::check_header(entry, name)?, token, block_size),
        other => return Err(transfer::unexpected(other)),
    };
    let blocks = block_count(entry.size, block_size)?;
    let mut tmp = TempFile::create(local)?;
    let tmp_path = tmp.path().to_path_buf();
    let plan = receiver::Plan {
        name,
        token,
        size: entry.size,
        block_size,
        blocks,
        window: receive_window(granted, block_size),
        tmp: &tmp_path,
    };
    let received = receiver::receive(conn, &socket, &plan, tmp.file(), progress)?;
    conn.send(&Request::UdpReceived { token })?;
    let trailer = conn.recv::<Reply>()?;
    let md5 = transfer::verify(&entry, received, trailer)?;
    let entry = Entry {
        md5: Some(md5.to_string()),
        ..entry
    };
    transfer::install(local, tmp, &entry)?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_blocks_fit_one_ethernet_frame() {
        assert_eq!(LAN_BLOCK_V4, 1448);
        assert_eq!(LAN_BLOCK_V4 as usize + wire::DATA_HEADER + 8 + 20, 1500);
        assert_eq!(LAN_BLOCK_V6 as usize + wire::DATA_HEADER + 8 + 40, 1500);
        assert!(LOOPBACK_BLOCK as usize + wire::DATA_HEADER + 8 + 20 <= 65536);
    }

    #[test]
    fn the_block_size_follows_the_path() {
        if std::env::var_os("MINIBOX_UDP_BLOCK").is_some() {
            return; // forced by the environment: nothing to check here
        }
        assert_eq!(block_size_for("127.0.0.1".parse().unwrap()), LOOPBACK_BLOCK);
        assert_eq!(block_size_for("::1".parse().unwrap()), LOOPBACK_BLOCK);
        assert_eq!(
            block_size_for("192.168.1.20".parse().unwrap()),
            LAN_BLOCK_V4
        );
        assert_eq!(block_size_for("fe80::1".parse().unwrap()), LAN_BLOCK_V6);
    }

    #[test]
    fn block_counts() {
        assert_eq!(block_count(0, 1448).unwrap(), 0);
        assert_eq!(block_count(1, 1448).unwrap(), 1);
        assert_eq!(block_count(1448, 1448).unwrap(), 1);
        assert_eq!(block_count(1449, 1448).unwrap(), 2);
        assert!(block_count(10, 0).is_err());
        assert!(block_count(10, 70_000).is_err());
        assert!(block_count(u64::MAX, 1448).is_err());
    }

    #[test]
    fn the_window_fits_the_socket_buffer() {
        // 8 MiB granted, 5 MiB counted on: 32 KiB blocks, each charged about 37 KiB.
        let w = receive_window(8 << 20, LOOPBACK_BLOCK);
        assert!((130..=145).contains(&w), "{w}");
        // The kernel's default 208 KiB: a handful of large blocks, many small ones.
        assert!(receive_window(425_984, LOOPBACK_BLOCK) >= 2);
        assert!(receive_window(425_984, LAN_BLOCK_V4) > 50);
        // The memory budget caps tiny blocks on a huge buffer.
        assert!(receive_window(1 << 30, MIN_BLOCK) <= window::MAX_WINDOW);
    }

    #[test]
    fn tokens_differ_and_fit_json_numbers() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a < 1 << 53 && b < 1 << 53 && a > 0);
    }
}
