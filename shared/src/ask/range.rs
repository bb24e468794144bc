//! Asking for blocks (`range`), pipelined, for a download by blocks (`docs/blocks.md`).
//!
//! The blocks this box lacks come in *runs* of consecutive blocks, one request each (at most
//! [`RUN_BYTES`] a request). Requests go ahead of the replies, at most [`WINDOW`] of them, but
//! only for runs that begin less than [`HORIZON`] bytes past where the assembly is: the blocks
//! copied from this box in between take time, and a peer must never wait long for us to read
//! what it sends. When nothing is asked for a while, an empty range (no blocks) asks only whether
//! the version is still there: the peer, which drops a client silent for 10 s, hears from us.
//!
//! Each block that arrives is checked against its MD5 before it counts; a block that does not
//! match gets the whole file refused. The rest of its reply is still read, so the connection
//! stays in step for the next file. A peer whose file changed says so in place of the header
//! (the version was replaced between two requests: `busy`, worth another try) or of the trailer
//! (the file changed while its bytes went out: `changed`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::connect::unexpected;
use crate::local::reuse::Source;
use crate::local::sink::Sink;
use crate::protocol::blocks::BlockList;
use crate::protocol::error::{Error, Result};
use crate::protocol::md5::{Hasher, Md5};
use crate::protocol::message::{ErrorCode, Reply, Request};
use crate::protocol::pace::PacedReader;
use crate::wire::conn::Connection;

/// The most requests sent ahead of their replies.
pub const WINDOW: usize = 8;

/// How far ahead of the assembly a run may be asked for.
pub const HORIZON: u64 = 64 * 1024 * 1024;

/// The most bytes one request asks for (always at least one block).
pub const RUN_BYTES: u64 = 16 * 1024 * 1024;

/// After this long without a request, an empty one keeps the peer listening.
pub const KEEP_ASKING: Duration = Duration::from_secs(4);

/// The runs of blocks to ask the peer for, in order: each `(first, count)`.
pub fn runs(list: &BlockList, sources: &[Source]) -> Vec<(u64, u64)> {
    let per_run = (RUN_BYTES / list.block_size.max(1)).max(1);
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        if *source != Source::Peer {
            continue;
        }
        let i = i as u64;
        match out.last_mut() {
            Some((first, count)) if *first + *count == i && *count < per_run => *count += 1,
            _ => out.push((i, 1)),
        }
    }
    out
}

/// The requests of one download by blocks: those to make, and those made and not yet answered.
pub struct Ranges<'a> {
    /// The file on the peer.
    name: &'a str,
    /// The version the blocks must come from.
    md5: Md5,
    /// Its blocks.
    list: &'a BlockList,
    /// Every run to ask for, in order.
    runs: Vec<(u64, u64)>,
    /// The next run to ask for.
    next: usize,
    /// Asked, not yet received, in order (`count` 0: only "is the version still there?").
    asked: VecDeque<(u64, u64)>,
    /// When the last request left.
    last_ask: Instant,
}

impl<'a> Ranges<'a> {
    /// The requests for `runs` of the version `md5` of `name`, whose blocks are `list`.
    pub fn new(name: &'a str, md5: Md5, list: &'a BlockList, runs: Vec<(u64, u64)>) -> Self {
        Ranges {
            name,
            md5,
            list,
            runs,
            next: 0,
            asked: VecDeque::new(),
            last_ask: Instant::now(),
        }
    }

    /// Sends the requests due now that the assembly is at byte `at` (see the module docs).
    ///
    /// # Errors
    /// If the connection fails.
    pub fn ask(&mut self, conn: &mut Connection, at: u64) -> Result<()> {
        let mut sent = false;
        while self.asked.len() < WINDOW && self.next < self.runs.len() {
            let (first, count) = self.runs[self.next];
            if self.list.range(first as usize).start > at.saturating_add(HORIZON) {
                break;
            }
            self.request(conn, first, count)?;
            self.next += 1;
            sent = true;
        }
        // Only keep-alives in flight (or nothing): the assembly is copying from this box. The
        // previous keep-alive's answer came long ago; read it, and ask again.
        let idle = self.asked.iter().all(|&(_, count)| count == 0);
        if !sent && idle && self.last_ask.elapsed() >= KEEP_ASKING {
            self.skip_empty(conn)?;
            self.request(conn, 0, 0)?;
            sent = true;
        }
        if sent {
            conn.flush()?;
            self.last_ask = Instant::now();
        }
        Ok(())
    }

    fn request(&mut self, conn: &mut Connection, first: u64, count: u64) -> Result<()> {
        conn.queue(&Request::Range {
            path: self.name.to_string(),
            md5: self.md5,
            first,
            count,
        })?;
        self.asked.push_back((first, count));
        Ok(())
    }

    /// Receives the next run into `sink`, checking each block; `done(i, md5, end)` hears of
    /// each block that matched. Returns how many blocks the run had.
    ///
    /// # Errors
    /// [`Error::Verify`] for a block that does not match its MD5 (the reply is read to its end);
    /// the peer's error (`changed`); a reply that is not the one asked for; a broken connection.
    pub fn receive(
        &mut self,
        conn: &mut Connection,
        sink: &mut dyn Sink,
        done: &mut dyn FnMut(usize, Md5, u64),
    ) -> Result<u64> {
        self.skip_empty(conn)?;
        let Some((first, count)) = self.asked.pop_front() else {
            return Err(Error::Protocol("no blocks were asked for here".into()));
        };
        let size = self.header(conn, first, count)?;
        let mut from = PacedReader::new(conn.raw_reader(), size);
        let net = |e| Error::net(format!("receiving {}", self.name), e);
        // After a block that lies or a write that fails, the rest of the run is only read.
        let mut spoiled = None;
        for i in first as usize..(first + count) as usize {
            let r = self.list.range(i);
            let mut h = Hasher::new();
            let mut read = |buf: &mut [u8]| from.read_some(buf);
            if spoiled.is_some() {
                skip(r.end - r.start, read).map_err(net)?;
                continue;
            }
            match pour(sink, r.end - r.start, &mut read, Some(&mut h)) {
                Ok(()) if h.digest() == self.list.md5s[i] => done(i, self.list.md5s[i], r.end),
                Ok(()) => spoiled = Some(Spoiled::Block(i)),
                Err(Spill::Read(e)) => return Err(net(e)),
                Err(Spill::Write { error, left }) => {
                    skip(left, read).map_err(net)?;
                    spoiled = Some(Spoiled::Disk(error));
                }
            }
        }
        self.trailer(conn)?;
        match spoiled {
            None => Ok(count),
            Some(Spoiled::Disk(e)) => Err(Error::io(self.name, e)),
            Some(Spoiled::Block(i)) => Err(Error::Verify(format!(
                "{} did not verify (block {i} from the peer does not match its MD5); nothing was installed",
                self.name
            ))),
        }
    }

    /// Reads the header of the reply to `(first, count)`; returns how many bytes follow.
    fn header(&self, conn: &mut Connection, first: u64, count: u64) -> Result<u64> {
        let span = self.list.span(first, count);
        match conn.recv::<Reply>()? {
            Reply::Range {
                first: f,
                count: c,
                size,
            } if (f, c, size) == (first, count, span.end - span.start) => Ok(size),
            Reply::Range { .. } => Err(Error::Protocol(format!(
                "asked for blocks {first}+{count} of {} but the peer offered others",
                self.name
            ))),
            // The version was replaced between the list and these blocks; none of its bytes
            // came. A new attempt may well find the new version whole.
            Reply::Error {
                code: ErrorCode::Changed,
                ..
            } => Err(Error::Remote {
                code: ErrorCode::Busy,
                message: format!(
                    "{} was replaced on the peer during the download; nothing was installed",
                    self.name
                ),
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Reads the trailer after a reply's bytes: the version's MD5, or the peer's error.
    fn trailer(&self, conn: &mut Connection) -> Result<()> {
        match conn.recv::<Reply>()? {
            Reply::Trailer { md5 } if md5.parse::<Md5>().is_ok_and(|m| m == self.md5) => Ok(()),
            Reply::Trailer { md5 } => Err(Error::Verify(format!(
                "{} did not verify (the peer sent blocks of version {}, not {}); nothing was installed",
                self.name,
                crate::local::log::field(&md5),
                self.md5
            ))),
            other => Err(unexpected(other)),
        }
    }

    /// Reads the answers to empty ranges at the front: the version is still there, or not.
    fn skip_empty(&mut self, conn: &mut Connection) -> Result<()> {
        while let Some(&(first, 0)) = self.asked.front() {
            self.asked.pop_front();
            self.header(conn, first, 0)?;
            self.trailer(conn)?;
        }
        Ok(())
    }

    /// Reads every reply still due, keeping none of it: after a failure, the connection is
    /// then in step for the next request. An error here means it is not.
    ///
    /// # Errors
    /// If the connection fails or a reply makes no sense.
    pub fn drain(&mut self, conn: &mut Connection) -> Result<()> {
        while let Some((first, count)) = self.asked.pop_front() {
            let size = match self.header(conn, first, count) {
                Ok(size) => size,
                Err(Error::Remote { .. }) => continue,
                Err(e) => return Err(e),
            };
            let mut from = PacedReader::new(conn.raw_reader(), size);
            skip(size, |buf| from.read_some(buf))
                .map_err(|e| Error::net(format!("receiving {}", self.name), e))?;
            match self.trailer(conn) {
                Ok(()) | Err(Error::Remote { .. } | Error::Verify(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what is still due once every block is in (answers to empty ranges).
    ///
    /// # Errors
    /// The peer's error (`changed`), or a broken connection.
    pub fn finish(&mut self, conn: &mut Connection) -> Result<()> {
        self.skip_empty(conn)
    }
}

/// Why the rest of a run is read and dropped.
enum Spoiled {
    /// This block did not match its MD5.
    Block(usize),
    /// This box could not write (its disk is full, say).
    Disk(std::io::Error),
}

/// Why [`pour`] stopped early: the side that failed matters, since after a failed write the
/// bytes still on their way must be read off the connection to keep it in step.
#[derive(Debug)]
pub enum Spill {
    /// Reading failed or ended early.
    Read(std::io::Error),
    /// Writing failed, with `left` bytes of the `len` not read yet.
    Write {
        /// What the disk said.
        error: std::io::Error,
        /// Bytes not read yet.
        left: u64,
    },
}

impl Spill {
    /// The error, whichever side it came from.
    pub fn into_io(self) -> std::io::Error {
        match self {
            Spill::Read(e) | Spill::Write { error: e, .. } => e,
        }
    }
}

/// Moves `len` bytes from `read` into `sink`, hashing them on the way if asked.
///
/// # Errors
/// If `read` fails or ends early, or the disk fails: see [`Spill`].
pub fn pour(
    sink: &mut dyn Sink,
    len: u64,
    mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
    mut hash: Option<&mut Hasher>,
) -> std::result::Result<(), Spill> {
    let mut left = len;
    while left > 0 {
        let spare = sink.spare();
        let want = usize::try_from(left).map_or(spare.len(), |n| n.min(spare.len()));
        let n = read(&mut spare[..want]).map_err(Spill::Read)?;
        if n == 0 {
            return Err(Spill::Read(std::io::ErrorKind::UnexpectedEof.into()));
        }
        if let Some(h) = hash.as_deref_mut() {
            h.update(&spare[..n]);
        }
        left -= n as u64;
        sink.filled(n)
            .map_err(|error| Spill::Write { error, left })?;
    }
    Ok(())
}

/// Reads and drops `len` bytes.
fn skip(
    len: u64,
    mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).map_or(buf.len(), |n| n.min(buf.len()));
        match read(&mut buf[..want])? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => left -= n as u64,
        }
    }
    Ok(())
}
