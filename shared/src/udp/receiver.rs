//! The client's side of a UDP download: receive blocks, deliver them in order to the file and the
//! MD5, keep early ones, and tell the server what is missing.
//!
//! When the client acks (each ack says everything: cumulative ack, window, gaps):
//! - at once when the server asks for it (the last datagram before the server waits), when the
//!   file is complete, when a block arrives past a hole that was not there before (so the server
//!   learns of a loss within a round trip), when a hole is filled, and when a duplicate arrives
//!   (the server resent something: our earlier ack may have been lost);
//! - otherwise every [`ACK_EVERY`] blocks, or [`DELAYED_ACK`] after the last datagram;
//! - and when nothing comes at all, again and again with a doubling interval: the server may be
//!   waiting for an ack that was lost. After 10 s without a new block, or [`MAX_RETRIES`] such
//!   probes in a row, the download gives up.
//!
//! The socket is connected to the server's address, so the kernel delivers only the server's
//! datagrams; the token check drops leftovers of earlier transfers.

use std::fs::File;
use std::io;
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use super::demux::{is_icmp, is_timeout};
use super::window::{Arrival, Reassembly, MAX_RTO};
use super::wire::{self, Datagram, MAX_DATAGRAM};
use super::{MAX_RETRIES, TCP_POLL};
use crate::conn::Connection;
use crate::error::{Error, Result};
use crate::hash::Md5;
use crate::protocol::{ErrorCode, Reply};
use crate::sink::FileSink;
use crate::transfer::{self, Progress};
use crate::IDLE_TIMEOUT;

/// Ack at least once every this many blocks.
pub const ACK_EVERY: u32 = 16;
/// Ack this long after the last datagram if some arrived since the last ack.
pub const DELAYED_ACK: Duration = Duration::from_millis(5);
/// The first interval between acks when nothing arrives; it doubles up to [`MAX_RTO`].
pub const FIRST_PROBE: Duration = Duration::from_millis(50);

/// What the client knows about the transfer from the offer.
pub struct Plan<'a> {
    /// The file's name (for messages).
    pub name: &'a str,
    /// The transfer's token.
    pub token: u64,
    /// The file's size.
    pub size: u64,
    /// Bytes per block.
    pub block_size: u32,
    /// Blocks in all.
    pub blocks: u32,
    /// Our window, in blocks.
    pub window: u32,
    /// The temporary file the blocks go to (for messages).
    pub tmp: &'a Path,
}

impl Plan<'_> {
    /// The length `block` must have.
    fn len_of(&self, block: u32) -> usize {
        let start = u64::from(block) * u64::from(self.block_size);
        self.size
            .saturating_sub(start)
            .min(u64::from(self.block_size)) as usize
    }
}

/// The client's acks: when the last one left and what is pending.
struct Acker<'s> {
    socket: &'s UdpSocket,
    token: u64,
    bytes: Vec<u8>,
    /// Blocks that arrived since the last ack.
    pending: u32,
    /// Acks sent.
    sent: u64,
}

impl Acker<'_> {
    fn send(&mut self, r: &Reassembly) {
        wire::encode_ack(&r.ack(self.token), &mut self.bytes);
        // A failed send is a lost ack; the timers cover it.
        if let Err(e) = self.socket.send(&self.bytes) {
            log::debug!("udp: sending an ack: {e}");
        }
        self.pending = 0;
        self.sent += 1;
    }
}

/// Receives the whole file into `file` (at `plan.tmp`), hashing it in order (blocks go to a
/// [`FileSink`] as they come in order, so large files are hashed on a second core and written
/// around the page cache, as TCP downloads are). Returns its MD5.
///
/// # Errors
/// A timeout (no new block for 10 s), the server's error or a closed connection on TCP, or a
/// local write error.
pub fn receive(
    conn: &mut Connection,
    socket: &UdpSocket,
    plan: &Plan<'_>,
    file: &File,
    progress: Progress<'_>,
) -> Result<Md5> {
    let started = Instant::now();
    let mut reassembly = Reassembly::new(plan.blocks, plan.window);
    let mut sink = FileSink::new(file, plan.tmp, plan.size).map_err(|e| Error::io(plan.tmp, e))?;
    let mut acker = Acker {
        socket,
        token: plan.token,
        bytes: Vec::new(),
        pending: 0,
        sent: 0,
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut duplicates = 0u64;
    let mut timeout_set = None;
    let mut last_arrival = Instant::now();
    let mut last_progress = Instant::now();
    let mut probe = FIRST_PROBE;
    let mut probes = 0u32;
    let mut last_probe = Instant::now();
    let mut next_poll = Instant::now() + TCP_POLL;
    let mut reported = 0u32;
    progress(0, plan.size);
    // The first ack: "nothing yet, this is my window, send here".
    if !reassembly.complete() {
        acker.send(&reassembly);
    }
    while !reassembly.complete() {
        let now = Instant::now();
        if now >= next_poll {
            next_poll = now + TCP_POLL;
            if conn.poll_input()? {
                return Err(interrupted(conn, plan.name));
            }
        }
        if now.duration_since(last_progress) >= IDLE_TIMEOUT || probes > MAX_RETRIES {
            return Err(Error::Timeout(format!(
                "download UDP of {} gave up: no data came from the server for {} s (is UDP \
                 blocked between the two boxes?); nothing was installed",
                plan.name,
                now.duration_since(last_progress).as_secs()
            )));
        }
        // Wait for a datagram until the next thing we must do on our own.
        let mut deadline = next_poll;
        if acker.pending > 0 {
            deadline = deadline.min(last_arrival + DELAYED_ACK);
        } else {
            deadline = deadline.min(last_arrival.max(last_probe) + probe);
        }
        let wait = deadline.saturating_duration_since(now);
        let timeout = Duration::from_millis(wait.as_millis().max(1) as u64);
        if timeout_set != Some(timeout) {
            socket
                .set_read_timeout(Some(timeout))
                .map_err(|e| Error::net("configuring the UDP socket", e))?;
            timeout_set = Some(timeout);
        }
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) || is_icmp(&e) => {
                let now = Instant::now();
                if acker.pending > 0 && now >= last_arrival + DELAYED_ACK {
                    acker.send(&reassembly);
                } else if now >= last_arrival.max(last_probe) + probe {
                    // Silence: maybe our ack was lost and the server waits for it.
                    acker.send(&reassembly);
                    last_probe = now;
                    probes += 1;
                    probe = (probe * 2).min(MAX_RTO);
                }
                continue;
            }
            Err(e) => return Err(Error::net("receiving over UDP", e)),
        };
        let data = match wire::decode(&buf[..n]) {
            Ok(Datagram::Data(d)) if d.token == plan.token => d,
            _ => continue, // noise or a leftover: ignore
        };
        if data.block >= plan.blocks || data.payload.len() != plan.len_of(data.block) {
            continue;
        }
        last_arrival = Instant::now();
        let gap_before = reassembly.has_holes();
        let arrival = reassembly
            .accept(data.block, data.sent_at, data.payload, &mut |bytes| {
                sink.put(bytes)
            })
            .map_err(|e| Error::io(plan.tmp, e))?;
        acker.pending += 1;
        let urgent = match arrival {
            Arrival::InOrder => false,
            Arrival::FilledGap => true,
            Arrival::Early => !gap_before,
            Arrival::Duplicate => {
                duplicates += 1;
                true
            }
            Arrival::Outside => false,
        };
        if matches!(
            arrival,
            Arrival::InOrder | Arrival::FilledGap | Arrival::Early
        ) {
            last_progress = last_arrival;
            probe = FIRST_PROBE;
            probes = 0;
        }
        if urgent || data.ack_now || acker.pending >= ACK_EVERY || reassembly.complete() {
            acker.send(&reassembly);
        }
        if reassembly.delivered() >= reported + 64 || reassembly.complete() {
            reported = reassembly.delivered();
            let done = (u64::from(reported) * u64::from(plan.block_size)).min(plan.size);
            progress(done, plan.size);
        }
    }
    let md5 = sink.finish().map_err(|e| Error::io(plan.tmp, e))?;
    let secs = started.elapsed().as_secs_f64();
    log::info!(
        "udp: received {} ({} bytes, {} blocks of {}) in {:.2} s, {:.1} MiB/s; window {}, {} acks, {} duplicates",
        plan.name,
        plan.size,
        plan.blocks,
        plan.block_size,
        secs,
        plan.size as f64 / (1 << 20) as f64 / secs.max(1e-9),
        plan.window,
        acker.sent,
        duplicates
    );
    progress(plan.size, plan.size);
    Ok(md5)
}

/// The server spoke on TCP in the middle of the transfer: it gave up, the file changed, or the
/// connection closed. Turns that into the error to report.
fn interrupted(conn: &mut Connection, name: &str) -> Error {
    match conn.recv::<Reply>() {
        Ok(Reply::Error {
            code: ErrorCode::Changed,
            message,
        }) => Error::Verify(message),
        Ok(other) => transfer::unexpected(other),
        Err(Error::Net { source, .. }) if source.kind() == io::ErrorKind::UnexpectedEof => {
            Error::Net {
                context: format!("download UDP of {name}"),
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the transfer",
                ),
            }
        }
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_block_is_short() {
        let plan = Plan {
            name: "f",
            token: 1,
            size: 2500,
            block_size: 1000,
            blocks: 3,
            window: 8,
            tmp: Path::new("f.part"),
        };
        assert_eq!(plan.len_of(0), 1000);
        assert_eq!(plan.len_of(2), 500);
        assert_eq!(plan.len_of(3), 0);
    }

    #[test]
    fn data_header_leaves_room_for_a_loopback_block() {
        assert!(wire::DATA_HEADER + super::super::LOOPBACK_BLOCK as usize <= MAX_DATAGRAM);
    }
}
