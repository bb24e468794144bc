//! Layer 3, UDP: every byte right over a network that loses, duplicates and reorders datagrams.
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
//! 1. The client sends `download_udp` on TCP. The server answers with a [`crate::protocol::message::Reply::UdpOffer`]: the
//!    file's entry, a random per-transfer **token** and the **block size**.
//! 2. The client sends a first ack ("I have nothing; my window is W blocks") by UDP to the address
//!    it connected to (same IP, same port number as TCP). The server learns from that datagram
//!    where to send: it always answers to the source address of the client's latest datagram.
//! 3. The server sends numbered blocks; the client acks what it has (cumulative ack plus the
//!    gaps); the server resends only the gaps, and never sends past the client's window.
//! 4. With every block in hand, the client sends `udp_received` on TCP; the server answers with
//!    the [`crate::protocol::message::Reply::Trailer`] (MD5) or a "changed" error, exactly as for a TCP download. The client
//!    has hashed the bytes as they were delivered in order, so it verifies at once and installs
//!    as a TCP download is (temporary file, mtime and mode, atomic rename).
//!
//! Either side stops as soon as the TCP connection closes. The client gives up with one clear
//! sentence after [`crate::protocol::limits::IDLE_TIMEOUT`] (10 s) without a new block or after [`blocks::MAX_RETRIES`]
//! unanswered acks in a row; the server a second later (`serve::download_udp::GIVE_UP`), so that the client
//! is the one who reports.
//!
//! # Layout
//!
//! | module | what it holds |
//! |---|---|
//! | [`datagram`] | the two datagram kinds (data, ack), byte by byte |
//! | [`reassembly`] | the receiver's bookkeeping: early blocks, holes, the ack; no sockets |
//! | [`flight`] | the sender's bookkeeping: window, losses, round-trip time; no sockets |
//! | [`blocks`] | block sizes, the window, socket buffers, tokens |
//! | [`demux`] | stage 2: how concurrent transfers share the server's one UDP socket |
//!
//! The loops that use them are endpoints: `serve::download_udp` (send, read acks, resend) and
//! `ask::download_udp` (receive, deliver in order, ack).
//!
//! # Block size
//!
//! A block must fit one datagram that IP does not fragment (a lost fragment loses the whole
//! datagram, so fragmentation multiplies loss). On an Ethernet LAN the MTU is 1500 bytes; minus
//! 20 bytes of IPv4 header, 8 of UDP header and our 24-byte data header, that leaves
//! [`blocks::LAN_BLOCK_V4`] = 1448 bytes (1428 with IPv6's 40-byte header). On the loopback interface
//! the MTU is 65536, so a [`blocks::LOOPBACK_BLOCK`] of 32 KiB fits one datagram there: the server
//! chooses it when the client is on loopback, which divides the number of datagrams (and system
//! calls) per byte by 22. minibox does not discover path MTUs: a path with a smaller MTU than
//! Ethernet's (some VPNs) still works, through IP fragmentation. `MINIBOX_UDP_BLOCK=BYTES` in the
//! server's environment forces a size, to measure what the choice costs (`scripts/bench.sh`).

pub mod blocks;
pub mod datagram;
pub mod demux;
pub mod flight;
pub mod reassembly;
