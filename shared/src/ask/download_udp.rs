//! Downloading a file over UDP: the client's side (the UDP chapter, `docs/udp.md`).
//!
//! The client drives: it sends its first ack ("nothing yet; my window is W blocks") to the
//! server's address, receives blocks, delivers them in order to the file and the MD5, keeps
//! early ones, and tells the server what is missing. It acks
//! - at once when the server asks (its last datagram before it waits), when the file is
//!   complete, when a block arrives past a hole that was not there before (so the server learns
//!   of a loss within a round trip), when a hole is filled, and when a duplicate arrives (the
//!   server resent something: our earlier ack may have been lost);
//! - otherwise every [`ACK_EVERY`] blocks, or [`DELAYED_ACK`] after the last datagram;
//! - and when nothing comes at all, again and again with a doubling interval: the server may be
//!   waiting for an ack that was lost. After 10 s without a new block, or [`MAX_RETRIES`] such
//!   probes in a row, the download gives up.
//!
//! New blocks must also keep the pace that protects TCP ([`Pace`]): 16 KiB in every 10 s, or
//! the download gives up. A block every few seconds is a new block, but not a transfer.
//!
//! The socket is connected to the server's address, so the kernel delivers only the server's
//! datagrams; the token check drops leftovers of earlier transfers.

use std::io;
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use super::connect::unexpected;
use super::download::{check_header, verify, Progress};
use super::patience::{answer, Patience};
use crate::local::install::{install, TempFile};
use crate::local::sink::Sink;
use crate::local::LocalBox;
use crate::protocol::error::{Error, Result};
use crate::protocol::limits::{IDLE_TIMEOUT, MIN_PROGRESS};
use crate::protocol::md5::Md5;
use crate::protocol::message::{Entry, ErrorCode, Reply, Request};
use crate::protocol::name::check_name;
use crate::protocol::pace::Pace;
use crate::wire::conn::Connection;
use crate::wire::udp::blocks::{block_count, receive_window, size_buffers, MAX_RETRIES, TCP_POLL};
use crate::wire::udp::datagram::{self, Datagram, MAX_DATAGRAM};
use crate::wire::udp::demux::{is_icmp, is_timeout};
use crate::wire::udp::flight::MAX_RTO;
use crate::wire::udp::reassembly::{Arrival, Reassembly};

/// Ack at least once every this many blocks.
pub const ACK_EVERY: u32 = 16;
/// Ack this long after the last datagram if some arrived since the last ack.
pub const DELAYED_ACK: Duration = Duration::from_millis(5);
/// The first interval between acks when nothing arrives; it doubles up to [`MAX_RTO`].
pub const FIRST_PROBE: Duration = Duration::from_millis(50);

/// Downloads `name` over UDP into `local`, verifies it, installs it; returns the installed
/// entry with its MD5.
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
    check_name(name)?;
    let socket = open_socket(conn)?;
    let granted = size_buffers(&socket, "client");
    conn.send(&Request::DownloadUdp {
        path: name.to_string(),
    })?;
    let (entry, token, block_size) = match answer(conn, &mut Patience::new())? {
        Reply::UdpOffer {
            entry,
            token,
            block_size,
        } => (check_header(entry, name)?, token, block_size),
        other => return Err(unexpected(other)),
    };
    let blocks = block_count(entry.size, block_size)?;
    let mut tmp = TempFile::create(local, None)?;
    let plan = Plan {
        name,
        token,
        size: entry.size,
        block_size,
        blocks,
        window: receive_window(granted, block_size),
    };
    let received = receive(conn, &socket, &plan, &mut tmp, progress)?;
    conn.send(&Request::UdpReceived { token })?;
    let md5 = verify(&entry, received, conn.recv::<Reply>()?)?;
    let entry = Entry {
        md5: Some(md5.to_string()),
        ..entry
    };
    install(local, tmp, &entry)?;
    Ok(entry)
}

/// Our UDP socket: on the address our TCP connection leaves from, any free port, *connected*
/// to the server's address, so the kernel itself drops datagrams from anyone else.
fn open_socket(conn: &Connection) -> Result<UdpSocket> {
    let mut here = conn
        .stream()
        .local_addr()
        .map_err(|e| Error::net("reading our own address", e))?;
    here.set_port(0); // (keeps an IPv6 scope, which binding to the bare IP would lose)
    let socket = UdpSocket::bind(here).and_then(|s| s.connect(conn.peer_addr()).map(|()| s));
    socket.map_err(|e| Error::net("opening a UDP socket", e))
}

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

/// Receives the whole file into `tmp`, hashing it in order; returns its MD5.
///
/// # Errors
/// A timeout (no new block for 10 s), the server's error or a closed connection on TCP, or a
/// local write error.
fn receive(
    conn: &mut Connection,
    socket: &UdpSocket,
    plan: &Plan<'_>,
    tmp: &mut TempFile,
    progress: Progress<'_>,
) -> Result<Md5> {
    let path = tmp.path().to_path_buf();
    let sink = tmp.sink(plan.size).map_err(|e| Error::io(&path, e))?;
    let mut r = Receiver::new(socket, plan, sink);
    progress(0, plan.size);
    // The first ack: "nothing yet, this is my window, send here".
    if !r.reassembly.complete() {
        r.ack();
    }
    let started = Instant::now();
    while !r.reassembly.complete() {
        r.step(conn, &path, progress)?;
    }
    r.report(started);
    let md5 = r.sink.finish().map_err(|e| Error::io(&path, e))?;
    progress(plan.size, plan.size);
    Ok(md5)
}

/// The receiving side of one transfer.
struct Receiver<'a, 's> {
    socket: &'a UdpSocket,
    plan: &'a Plan<'a>,
    sink: Box<dyn Sink + 's>,
    reassembly: Reassembly,
    buf: Vec<u8>,
    ack_bytes: Vec<u8>,
    /// Blocks that arrived since the last ack.
    pending: u32,
    acks: u64,
    duplicates: u64,
    timeout_set: Option<Duration>,
    last_arrival: Instant,
    last_progress: Instant,
    /// The interval between probes while nothing arrives, and how many in a row.
    probe: Duration,
    probes: u32,
    last_probe: Instant,
    next_poll: Instant,
    /// Blocks delivered at the last progress report.
    reported: u32,
    /// The pace of new bytes.
    pace: Pace,
    /// Bytes not received yet.
    missing: u64,
}

impl<'a, 's> Receiver<'a, 's> {
    fn new(socket: &'a UdpSocket, plan: &'a Plan<'a>, sink: Box<dyn Sink + 's>) -> Self {
        let now = Instant::now();
        Receiver {
            socket,
            plan,
            sink,
            reassembly: Reassembly::new(plan.blocks, plan.window),
            buf: vec![0u8; MAX_DATAGRAM],
            ack_bytes: Vec::new(),
            pending: 0,
            acks: 0,
            duplicates: 0,
            timeout_set: None,
            last_arrival: now,
            last_progress: now,
            probe: FIRST_PROBE,
            probes: 0,
            last_probe: now,
            next_poll: now + TCP_POLL,
            reported: 0,
            pace: Pace::new(),
            missing: plan.size,
        }
    }

    /// Sends the ack that describes what we hold (a lost ack is covered by the timers).
    fn ack(&mut self) {
        datagram::encode_ack(&self.reassembly.ack(self.plan.token), &mut self.ack_bytes);
        if let Err(e) = self.socket.send(&self.ack_bytes) {
            log::debug!("udp: sending an ack: {e}");
        }
        self.pending = 0;
        self.acks += 1;
    }

    /// Waits for one datagram (or for the next thing to do on our own) and handles it.
    fn step(&mut self, conn: &mut Connection, path: &Path, progress: Progress<'_>) -> Result<()> {
        let now = Instant::now();
        if now >= self.next_poll {
            self.next_poll = now + TCP_POLL;
            if conn.poll_input()? {
                return Err(interrupted(conn, self.plan.name));
            }
        }
        if now.duration_since(self.last_progress) >= IDLE_TIMEOUT || self.probes > MAX_RETRIES {
            let (name, secs) = (
                self.plan.name,
                now.duration_since(self.last_progress).as_secs(),
            );
            return Err(Error::Timeout(format!(
                "download UDP of {name} gave up: no data came from the server for {secs} s (is UDP \
                 blocked between the two boxes?); nothing was installed"
            )));
        }
        self.keep_pace(0)?;
        match self.recv()? {
            Some(n) => self.on_datagram(n, path, progress),
            None => {
                self.on_quiet();
                Ok(())
            }
        }
    }

    /// One datagram's length, or `None` when the wait ran out first.
    fn recv(&mut self) -> Result<Option<usize>> {
        let now = Instant::now();
        let mut deadline = self.next_poll;
        if self.pending > 0 {
            deadline = deadline.min(self.last_arrival + DELAYED_ACK);
        } else {
            deadline = deadline.min(self.last_arrival.max(self.last_probe) + self.probe);
        }
        let wait = deadline.saturating_duration_since(now);
        let timeout = Duration::from_millis(wait.as_millis().max(1) as u64);
        if self.timeout_set != Some(timeout) {
            let set = self.socket.set_read_timeout(Some(timeout));
            set.map_err(|e| Error::net("configuring the UDP socket", e))?;
            self.timeout_set = Some(timeout);
        }
        match self.socket.recv(&mut self.buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if is_timeout(&e) || is_icmp(&e) => Ok(None),
            Err(e) => Err(Error::net("receiving over UDP", e)),
        }
    }

    /// Nothing came: ack what is pending, or probe (maybe our ack was lost and the server
    /// waits for it).
    fn on_quiet(&mut self) {
        let now = Instant::now();
        if self.pending > 0 && now >= self.last_arrival + DELAYED_ACK {
            self.ack();
        } else if now >= self.last_arrival.max(self.last_probe) + self.probe {
            self.ack();
            self.last_probe = now;
            self.probes += 1;
            self.probe = (self.probe * 2).min(MAX_RTO);
        }
    }

    fn on_datagram(&mut self, n: usize, path: &Path, progress: Progress<'_>) -> Result<()> {
        let data = match datagram::decode(&self.buf[..n]) {
            Ok(Datagram::Data(d)) if d.token == self.plan.token => d,
            _ => return Ok(()), // noise or a leftover: ignore
        };
        if data.block >= self.plan.blocks || data.payload.len() != self.plan.len_of(data.block) {
            return Ok(());
        }
        self.last_arrival = Instant::now();
        let gap_before = self.reassembly.has_holes();
        let sink = &mut self.sink;
        let arrival =
            self.reassembly
                .accept(data.block, data.sent_at, data.payload, &mut |bytes| {
                    sink.put(bytes)
                });
        let arrival = arrival.map_err(|e| Error::io(path, e))?;
        let (block, ack_now) = (data.block, data.ack_now);
        self.pending += 1;
        let urgent = match arrival {
            Arrival::FilledGap => true,
            Arrival::Early => !gap_before,
            Arrival::Duplicate => {
                self.duplicates += 1;
                true
            }
            Arrival::InOrder | Arrival::Outside => false,
        };
        if matches!(
            arrival,
            Arrival::InOrder | Arrival::FilledGap | Arrival::Early
        ) {
            self.last_progress = self.last_arrival;
            self.probe = FIRST_PROBE;
            self.probes = 0;
            self.keep_pace(self.plan.len_of(block) as u64)?;
        }
        if urgent || ack_now || self.pending >= ACK_EVERY || self.reassembly.complete() {
            self.ack();
        }
        let delivered = self.reassembly.delivered();
        if delivered >= self.reported + 64 || self.reassembly.complete() {
            self.reported = delivered;
            let done = u64::from(delivered) * u64::from(self.plan.block_size);
            progress(done.min(self.plan.size), self.plan.size);
        }
        Ok(())
    }

    /// Counts `new` bytes received; gives up on a server slower than the pace allows (unless
    /// what is missing is less than one pace's worth).
    fn keep_pace(&mut self, new: u64) -> Result<()> {
        self.missing = self.missing.saturating_sub(new);
        match self.pace.advance(new) {
            Err(e) if self.missing >= MIN_PROGRESS => Err(Error::Timeout(format!(
                "download UDP of {} gave up: {e}; nothing was installed",
                self.plan.name
            ))),
            _ => Ok(()),
        }
    }

    fn report(&self, started: Instant) {
        let (p, secs) = (self.plan, started.elapsed().as_secs_f64());
        let rate = p.size as f64 / (1 << 20) as f64 / secs.max(1e-9);
        log::info!(
            "udp: received {} ({} bytes, {} blocks of {}) in {secs:.2} s, {rate:.1} MiB/s; window {}, {} acks, {} duplicates",
            p.name, p.size, p.blocks, p.block_size, p.window, self.acks, self.duplicates
        );
    }
}

/// The server spoke on TCP in the middle of the transfer: it gave up, the file changed, or the
/// connection closed. Turns that into the error to report.
fn interrupted(conn: &mut Connection, name: &str) -> Error {
    match conn.recv::<Reply>() {
        Ok(Reply::Error {
            code: ErrorCode::Changed,
            message,
        }) => Error::Verify(message),
        Ok(other) => unexpected(other),
        Err(Error::Net { source, .. }) if source.kind() == io::ErrorKind::UnexpectedEof => {
            let eof = io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection during the transfer",
            );
            Error::Net {
                context: format!("download UDP of {name}"),
                source: eof,
            }
        }
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests;
