//! The server's side of a UDP download: send blocks while the window allows, then wait for an
//! ack; resend what the acks report lost; time out and back off when nothing comes back.
//!
//! The loop is *ack-clocked*: the server reads acks only when it cannot send (its window is full,
//! or everything is out). Each ack opens the window by the blocks it acknowledges, which lets the
//! next blocks go. So the receiver's pace sets the sender's, and the only wait is for an ack, with
//! a deadline: the retransmission timeout, or the next look at the TCP connection.
//!
//! Between datagrams the server looks at the TCP connection every [`TCP_POLL`]: the client's
//! `udp_received` ends the transfer, and a closed connection ends it too (the client gave up or
//! vanished).

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use super::demux::Inbox;
use super::window::Flight;
use super::wire::{self, Datagram, DATA_HEADER, MAX_ACK};
use super::{MAX_RETRIES, TCP_POLL};
use crate::conn::Connection;
use crate::error::Error;
use crate::hash::{Hasher, Md5};
use crate::protocol::{ErrorCode, Request};
use crate::serve::Failure;
use crate::IDLE_TIMEOUT;

/// How long the server waits without progress before it gives up: the contract's 10 s, plus a
/// second of grace, so that when nothing gets through it is the client (who drives the transfer
/// and has a user waiting) that reports it first, in its own words; the server's limit is the
/// backstop for a client that vanished without closing its connection.
pub const GIVE_UP: Duration = IDLE_TIMEOUT.saturating_add(Duration::from_secs(1));

/// The file being sent, read block by block, hashed in order on the way when its MD5 is not
/// known yet (one pass over the bytes, as for TCP).
pub struct Source<'f> {
    /// The open file.
    file: &'f File,
    /// Its size when the transfer began.
    size: u64,
    /// Bytes per block.
    block_size: u32,
    /// Blocks in all.
    blocks: u32,
    /// The running MD5, if we must compute it.
    hasher: Option<Hasher>,
    /// Blocks fed to the hasher so far (always a prefix of the file).
    hashed: u32,
}

impl<'f> Source<'f> {
    /// A source of `blocks` blocks of `block_size` bytes from `file` (`size` bytes).
    pub fn new(file: &'f File, size: u64, block_size: u32, blocks: u32) -> Self {
        Source {
            file,
            size,
            block_size,
            blocks,
            hasher: None,
            hashed: 0,
        }
    }

    /// Whether to compute the MD5 while sending.
    pub fn hashing(mut self, yes: bool) -> Self {
        self.hasher = yes.then(Hasher::new);
        self
    }

    /// The length of `block` (every block is full but the last).
    fn len_of(&self, block: u32) -> usize {
        let start = u64::from(block) * u64::from(self.block_size);
        (self.size - start).min(u64::from(self.block_size)) as usize
    }

    /// Reads `block` into the start of `buf`; returns its length. Blocks are first sent in order,
    /// so hashing "the next block not hashed yet" whenever it is read hashes the file in order.
    ///
    /// # Errors
    /// If the file cannot be read or has become shorter.
    fn read(&mut self, block: u32, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.len_of(block);
        let offset = u64::from(block) * u64::from(self.block_size);
        self.file.read_exact_at(&mut buf[..len], offset)?;
        if block == self.hashed {
            if let Some(h) = self.hasher.as_mut() {
                h.update(&buf[..len]);
            }
            self.hashed += 1;
        }
        Ok(len)
    }

    /// Finishes the MD5: hashes whatever blocks were not sent (a client that claims to be done
    /// early gets a trailer that tells it the truth), and returns it.
    ///
    /// # Errors
    /// If the file cannot be read, or no hash was being computed.
    pub fn finish_hash(&mut self) -> io::Result<Md5> {
        let mut buf = vec![0u8; self.block_size as usize];
        while self.hashed < self.blocks {
            self.read(self.hashed, &mut buf)?;
        }
        self.hasher
            .take()
            .map(Hasher::digest)
            .ok_or_else(|| io::Error::other("the MD5 was not being computed"))
    }
}

/// Nanoseconds since the transfer began (never 0, which in an ack means "nothing seen yet").
struct Clock(Instant);

impl Clock {
    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX) + 1
    }
}

/// Sends every block of `source` to the client of `conn`, until the client says on TCP that it
/// has them all. Returns a one-line report for the log.
///
/// # Errors
/// A reply for the client if the file changed or the client stopped answering; a broken
/// connection if TCP closed.
pub fn send(
    conn: &mut Connection,
    inbox: &Inbox<'_>,
    source: &mut Source<'_>,
    name: &str,
) -> Result<String, Failure> {
    let token = inbox.token();
    let clock = Clock(Instant::now());
    let started = Instant::now();
    let mut flight = Flight::new(source.blocks);
    // Where to send: the source of the client's latest datagram, unknown until the first one.
    let mut client: Option<SocketAddr> = None;
    let mut datagram = vec![0u8; DATA_HEADER + source.block_size as usize];
    let mut incoming = vec![0u8; MAX_ACK + 64];
    let mut last_progress = Instant::now();
    let mut timeouts = 0u32;
    let mut timer: Option<Instant> = None; // the retransmission deadline, while blocks are out
    let mut next_poll = Instant::now() + TCP_POLL;
    loop {
        let now = Instant::now();
        if now >= next_poll {
            next_poll = now + TCP_POLL;
            if conn.poll_input()? {
                return finished(conn, token, &flight, started);
            }
        }
        if now.duration_since(last_progress) >= GIVE_UP || timeouts > MAX_RETRIES {
            return Err(Failure::Reply(
                ErrorCode::Io,
                format!(
                    "gave up sending {name} over UDP: the client acknowledged nothing for {} s",
                    now.duration_since(last_progress).as_secs()
                ),
            ));
        }
        if let Some(to) = client {
            let mut sent = 0u32;
            while let Some(block) = flight.next_to_send() {
                let len = source
                    .read(block, &mut datagram[DATA_HEADER..])
                    .map_err(|e| changed(name, &e))?;
                let at = clock.now();
                flight.on_sent(block, at);
                // The last datagram before we wait asks for an immediate ack.
                let ack_now = !flight.can_send();
                wire::put_data_header(&mut datagram, token, block, at, ack_now);
                if let Err(e) = inbox.send_to(&datagram[..DATA_HEADER + len], to) {
                    // Treated like a loss: the ack will report the block missing.
                    log::debug!("udp: sending block {block} to {to}: {e}");
                }
                sent += 1;
                if sent % 64 == 0 && Instant::now() >= next_poll {
                    break; // a long burst: look at TCP before going on
                }
            }
            if sent > 0 && timer.is_none() {
                timer = Some(Instant::now() + flight.rtt.rto());
            }
        }
        if flight.done() {
            // Every block is acknowledged; the verdict comes by TCP.
            return finished(conn, token, &flight, started);
        }
        let deadline = timer.map_or(next_poll, |t| t.min(next_poll));
        match inbox
            .recv(&mut incoming, deadline)
            .map_err(|e| Failure::Connection(Error::net("receiving acks", e)))?
        {
            Some((n, from)) => {
                let Ok(Datagram::Ack(ack)) = wire::decode(&incoming[..n]) else {
                    continue; // the demultiplexer checked the token; anything else is noise
                };
                if client != Some(from) {
                    if client.is_none() {
                        last_progress = Instant::now();
                    }
                    log::debug!("udp: sending {name} to {from}");
                    client = Some(from);
                }
                if flight.on_ack(&ack, clock.now()) {
                    last_progress = Instant::now();
                    timeouts = 0;
                    timer = flight
                        .outstanding()
                        .then(|| Instant::now() + flight.rtt.rto());
                }
            }
            None => {
                if timer.is_some_and(|t| Instant::now() >= t) {
                    if flight.outstanding() {
                        flight.on_timeout(clock.now());
                        timeouts += 1;
                        timer = Some(Instant::now() + flight.rtt.rto());
                    } else {
                        timer = None;
                    }
                }
            }
        }
    }
}

/// The client has spoken on TCP: it should be `udp_received`.
fn finished(
    conn: &mut Connection,
    token: u64,
    flight: &Flight,
    started: Instant,
) -> Result<String, Failure> {
    match conn.recv_opt::<Request>()? {
        Some(Request::UdpReceived { token: t }) if t == token => Ok(report(flight, started)),
        Some(other) => Err(Failure::Connection(Error::Protocol(format!(
            "expected udp_received during a UDP download, got {other:?}"
        )))),
        None => Err(Failure::Connection(Error::net(
            "sending over UDP",
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client closed the connection during the transfer",
            ),
        ))),
    }
}

fn report(flight: &Flight, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64();
    let text = format!(
        "{} blocks, {} resent, {} timeouts, rtt {:.2} ms, {:.2} s",
        flight.first_sends,
        flight.resends,
        flight.timeouts,
        flight
            .rtt
            .smoothed()
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
            * 1e3,
        secs
    );
    log::info!("udp: sent {text}");
    text
}

fn changed(name: &str, e: &io::Error) -> Failure {
    Failure::Reply(
        ErrorCode::Changed,
        format!("{name} changed while it was being sent ({e}); nothing was installed"),
    )
}
