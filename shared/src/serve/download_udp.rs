//! `download_udp`: the server's side of a UDP download (the UDP chapter, `docs/udp.md`).
//!
//! The offer goes on TCP; then the loop is *ack-clocked*: the server sends blocks while the
//! window allows, reads acks only when it cannot send, resends what the acks report lost, and
//! backs off when nothing comes back. Every [`TCP_POLL`] it looks at the TCP connection: the
//! client's `udp_received` ends the transfer, and so does a closed connection.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use super::failure::Failure;
use super::outgoing::Outgoing;
use crate::local::LocalBox;
use crate::protocol::error::Error;
use crate::protocol::limits::{IDLE_TIMEOUT, MIN_PROGRESS};
use crate::protocol::md5::{Hasher, Md5};
use crate::protocol::message::{ErrorCode, Reply, Request};
use crate::protocol::pace::Pace;
use crate::wire::conn::Connection;
use crate::wire::udp::blocks::{block_count, block_size_for, MAX_RETRIES, TCP_POLL};
use crate::wire::udp::datagram::{self, Datagram, DATA_HEADER, MAX_ACK};
use crate::wire::udp::demux::Inbox;
use crate::wire::udp::flight::Flight;

/// How long the server waits without progress before it gives up: the contract's 10 s and a
/// second of grace, so that the client (who drives the transfer, and has a user waiting) is the
/// one who reports first, in its own words.
pub const GIVE_UP: Duration = IDLE_TIMEOUT.saturating_add(Duration::from_secs(1));

/// Serves a UDP download on the server's shared `socket`; returns the log summary.
///
/// # Errors
/// A reply for the client (no UDP here, a missing file, a client that stopped answering) or a
/// broken connection.
pub fn answer(
    conn: &mut Connection,
    local: &LocalBox,
    socket: Option<&UdpSocket>,
    name: &str,
) -> Result<String, Failure> {
    let no_udp = || {
        Failure::Reply(
            ErrorCode::Unsupported,
            "this box does not offer UDP downloads".into(),
        )
    };
    let socket = socket.ok_or_else(no_udp)?;
    let out = Outgoing::open(conn, local, name)?;
    let block_size = block_size_for(conn.peer_addr().ip());
    let too_large = |e| {
        Failure::Reply(
            ErrorCode::Unsupported,
            format!("{name} is too large for a UDP download: {e}"),
        )
    };
    let blocks = block_count(out.entry.size, block_size).map_err(too_large)?;
    let inbox = Inbox::open(socket, conn.peer_addr().ip());
    let inbox =
        inbox.map_err(|e| Failure::Connection(Error::net("opening the UDP transfer", e)))?;
    let token = inbox.token();
    conn.send(&Reply::UdpOffer {
        entry: out.entry.clone(),
        token,
        block_size,
    })?;
    let source =
        Source::new(&out.file, out.entry.size, block_size, blocks).hashing(out.known.is_none());
    let mut sender = Sender::new(inbox, source);
    let report = sender.run(conn, name)?;
    // The transfer leaves the shared socket; only the hash may still need the file.
    let Sender { mut source, .. } = sender;
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
    let summary = out.finish(conn, local, md5, complete)?;
    Ok(format!("{summary} over udp ({report})"))
}

/// The file being sent, read block by block, hashed in order on the way when its MD5 is not
/// known yet (one pass over the bytes, as for TCP).
pub struct Source<'f> {
    file: &'f File,
    size: u64,
    block_size: u32,
    blocks: u32,
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

    fn len_of(&self, block: u32) -> usize {
        let start = u64::from(block) * u64::from(self.block_size);
        (self.size - start).min(u64::from(self.block_size)) as usize
    }

    /// Reads `block` into the start of `buf`; returns its length. Blocks are first sent in
    /// order, so hashing "the next block not hashed yet" whenever it is read hashes in order.
    fn read(&mut self, block: u32, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.len_of(block);
        self.file.read_exact_at(
            &mut buf[..len],
            u64::from(block) * u64::from(self.block_size),
        )?;
        if block == self.hashed {
            if let Some(h) = self.hasher.as_mut() {
                h.update(&buf[..len]);
            }
            self.hashed += 1;
        }
        Ok(len)
    }

    /// Finishes the MD5, hashing the blocks never sent (a client that claims to be done early
    /// gets a trailer that tells it the truth).
    ///
    /// # Errors
    /// If the file cannot be read, or no hash was being computed.
    pub fn finish_hash(&mut self) -> io::Result<Md5> {
        let mut buf = vec![0u8; self.block_size as usize];
        while self.hashed < self.blocks {
            self.read(self.hashed, &mut buf)?;
        }
        let hasher = self.hasher.take();
        hasher
            .map(Hasher::digest)
            .ok_or_else(|| io::Error::other("the MD5 was not being computed"))
    }
}

/// One transfer's sending side.
struct Sender<'s, 'f> {
    inbox: Inbox<'s>,
    source: Source<'f>,
    flight: Flight,
    /// When the transfer began: times on the wire are ns since then (never 0).
    started: Instant,
    /// Where to send: the source of the client's latest datagram; unknown until the first.
    client: Option<SocketAddr>,
    datagram: Vec<u8>,
    incoming: Vec<u8>,
    last_progress: Instant,
    /// The pace of acknowledged bytes (as for TCP, with the same second of grace as [`GIVE_UP`]),
    /// and blocks acknowledged since it was last told.
    pace: Pace,
    newly_acked: u32,
    /// Timeouts in a row.
    timeouts: u32,
    /// The retransmission deadline, while blocks are out.
    timer: Option<Instant>,
    next_poll: Instant,
}

impl<'s, 'f> Sender<'s, 'f> {
    fn new(inbox: Inbox<'s>, source: Source<'f>) -> Self {
        let now = Instant::now();
        Sender {
            inbox,
            flight: Flight::new(source.blocks),
            datagram: vec![0u8; DATA_HEADER + source.block_size as usize],
            incoming: vec![0u8; MAX_ACK + 64],
            source,
            started: now,
            client: None,
            last_progress: now,
            pace: Pace::with_window(GIVE_UP),
            newly_acked: 0,
            timeouts: 0,
            timer: None,
            next_poll: now + TCP_POLL,
        }
    }

    fn clock(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX) + 1
    }

    /// Sends until the client says on TCP that it has every block; returns a report for the log.
    fn run(&mut self, conn: &mut Connection, name: &str) -> Result<String, Failure> {
        loop {
            let now = Instant::now();
            if now >= self.next_poll {
                self.next_poll = now + TCP_POLL;
                if conn.poll_input()? {
                    return self.finished(conn);
                }
            }
            self.keep_pace(name)?;
            if now.duration_since(self.last_progress) >= GIVE_UP || self.timeouts > MAX_RETRIES {
                let secs = now.duration_since(self.last_progress).as_secs();
                let why = format!(
                    "gave up sending {name} over UDP: the client acknowledged nothing for {secs} s"
                );
                return Err(Failure::Reply(ErrorCode::Io, why));
            }
            if let Some(to) = self.client {
                self.burst(to, name)?;
            }
            if self.flight.done() {
                // Every block is acknowledged; the verdict comes by TCP.
                return self.finished(conn);
            }
            self.wait_for_ack()?;
        }
    }

    /// Sends what the window allows (looking at TCP again after a long burst).
    fn burst(&mut self, to: SocketAddr, name: &str) -> Result<(), Failure> {
        let token = self.inbox.token();
        let mut sent = 0u32;
        while let Some(block) = self.flight.next_to_send() {
            let changed = |e: io::Error| {
                let why =
                    format!("{name} changed while it was being sent ({e}); nothing was installed");
                Failure::Reply(ErrorCode::Changed, why)
            };
            let len = self
                .source
                .read(block, &mut self.datagram[DATA_HEADER..])
                .map_err(changed)?;
            let at = self.clock();
            self.flight.on_sent(block, at);
            // The last datagram before we wait asks for an immediate ack.
            let ack_now = !self.flight.can_send();
            datagram::put_data_header(&mut self.datagram, token, block, at, ack_now);
            if let Err(e) = self.inbox.send_to(&self.datagram[..DATA_HEADER + len], to) {
                // Treated like a loss: the ack will report the block missing.
                log::debug!("udp: sending block {block} to {to}: {e}");
            }
            sent += 1;
            if sent.is_multiple_of(64) && Instant::now() >= self.next_poll {
                break;
            }
        }
        if sent > 0 && self.timer.is_none() {
            self.timer = Some(Instant::now() + self.flight.rtt.rto());
        }
        Ok(())
    }

    /// Waits for an ack until the retransmission timer or the next look at TCP.
    fn wait_for_ack(&mut self) -> Result<(), Failure> {
        let deadline = self.timer.map_or(self.next_poll, |t| t.min(self.next_poll));
        let got = self.inbox.recv(&mut self.incoming, deadline);
        match got.map_err(|e| Failure::Connection(Error::net("receiving acks", e)))? {
            Some((n, from)) => self.on_datagram(n, from),
            None => self.on_quiet(),
        }
        Ok(())
    }

    fn on_datagram(&mut self, n: usize, from: SocketAddr) {
        // The demultiplexer checked the token; anything but an ack is noise.
        let Ok(Datagram::Ack(ack)) = datagram::decode(&self.incoming[..n]) else {
            return;
        };
        if self.client != Some(from) {
            if self.client.is_none() {
                self.last_progress = Instant::now();
            }
            log::debug!("udp: sending to {from}");
            self.client = Some(from);
        }
        let at = self.clock();
        let acked = self.flight.acked();
        if self.flight.on_ack(&ack, at) {
            self.newly_acked += self.flight.acked().saturating_sub(acked);
            self.last_progress = Instant::now();
            self.timeouts = 0;
            self.timer = self
                .flight
                .outstanding()
                .then(|| Instant::now() + self.flight.rtt.rto());
        }
    }

    fn on_quiet(&mut self) {
        if self.timer.is_some_and(|t| Instant::now() >= t) {
            if self.flight.outstanding() {
                let at = self.clock();
                self.flight.on_timeout(at);
                self.timeouts += 1;
                self.timer = Some(Instant::now() + self.flight.rtt.rto());
            } else {
                self.timer = None;
            }
        }
    }

    /// The client has spoken on TCP: it should be `udp_received`.
    fn finished(&self, conn: &mut Connection) -> Result<String, Failure> {
        match conn.recv_opt::<Request>()? {
            Some(Request::UdpReceived { token }) if token == self.inbox.token() => {
                Ok(self.report())
            }
            Some(other) => Err(Failure::Connection(Error::Protocol(format!(
                "expected udp_received during a UDP download, got {other:?}"
            )))),
            None => {
                let eof = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the client closed the connection during the transfer",
                );
                Err(Failure::Connection(Error::net("sending over UDP", eof)))
            }
        }
    }

    /// Gives up on a client that acknowledges fewer bytes than the pace allows (a block every
    /// few seconds holds the transfer open, and in stage 1 the whole server), unless what is
    /// left to send is less than one pace's worth.
    fn keep_pace(&mut self, name: &str) -> Result<(), Failure> {
        let block = u64::from(self.source.block_size);
        let bytes = u64::from(std::mem::take(&mut self.newly_acked)) * block;
        let left = u64::from(self.source.blocks.saturating_sub(self.flight.acked())) * block;
        match self.pace.advance(bytes) {
            Err(e) if left >= MIN_PROGRESS => Err(Failure::Reply(
                ErrorCode::Io,
                format!("gave up sending {name} over UDP: {e}"),
            )),
            _ => Ok(()),
        }
    }

    fn report(&self) -> String {
        let f = &self.flight;
        let rtt = f.rtt.smoothed().unwrap_or(Duration::ZERO).as_secs_f64() * 1e3;
        let secs = self.started.elapsed().as_secs_f64();
        let text = format!(
            "{} blocks, {} resent, {} timeouts, rtt {rtt:.2} ms, {secs:.2} s",
            f.first_sends, f.resends, f.timeouts
        );
        log::info!("udp: sent {text}");
        text
    }
}
