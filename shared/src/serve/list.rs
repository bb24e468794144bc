//! `list`: the box's files for `index …` (path, size, mtime, bits, type) or `hash checkall`
//! (with MD5s), in chunks of entries closed by an end that counts them.

use std::sync::Arc;

use super::failure::Failure;
use super::keep_alive::{to_hash, KeepAlive};
use crate::local::filter::Matcher;
use crate::local::scan::Scanned;
use crate::local::LocalBox;
use crate::protocol::limits::ENTRIES_PER_CHUNK;
use crate::protocol::message::{Entry, ErrorCode, Filter, Kind, ListKind, Reply};
use crate::wire::conn::Connection;

/// Answers a listing; returns the log summary.
///
/// # Errors
/// A bad regex or an unreadable box (replies), or a broken connection.
pub fn answer(
    conn: &mut Connection,
    local: &LocalBox,
    filter: &Filter,
    listing: ListKind,
) -> Result<String, Failure> {
    let matcher = Matcher::new(filter).map_err(|m| Failure::Reply(ErrorCode::BadRequest, m))?;
    // Reading the box, then hashing files not read before, takes a while: say so now and then.
    let mut alive = KeepAlive::new(0);
    let scanned = scan(local, conn, &mut alive)?;
    let wanted = |item: &&Scanned| item.kind == Kind::File && matcher.matches(&item.entry());
    let hashes = listing == ListKind::Hashes;
    if hashes {
        alive.to_hash(to_hash(local, scanned.iter().filter(wanted)));
    }
    let mut chunks = Chunks::new(conn);
    for item in scanned.iter().filter(|i| i.kind == Kind::File) {
        let mut entry = item.entry();
        if !matcher.matches(&entry) {
            continue;
        }
        if hashes {
            // Unreadable or changed since the scan: left out, as the scan would.
            let Some(md5) = alive.md5_of(chunks.conn, local, item)? else {
                continue;
            };
            entry.md5 = Some(md5.to_string());
        }
        chunks.push(entry)?;
    }
    let count = chunks.end()?;
    if hashes {
        save_hashes(local);
    }
    Ok(format!("{count} entries"))
}

/// The box's scan, telling the client through `alive` how far it is, or a reply when the box
/// cannot be read.
///
/// # Errors
/// A reply for the client, or a broken connection.
pub fn scan(
    local: &LocalBox,
    conn: &mut Connection,
    alive: &mut KeepAlive,
) -> Result<Arc<Vec<Scanned>>, Failure> {
    let scanned = alive.scan(conn, local)?;
    scanned.map_err(|e| Failure::Reply(ErrorCode::Io, format!("cannot read the box: {e}")))
}

/// Saves the stat cache after a listing that may have hashed files.
pub fn save_hashes(local: &LocalBox) {
    if let Err(e) = local.hashes.save() {
        log::warn!("cannot save the stat cache: {e}");
    }
}

/// A listing on its way out: entries queued in chunks, flushed at the end with the
/// [`Reply::End`] that counts them.
pub struct Chunks<'c> {
    /// The connection it goes out on.
    pub conn: &'c mut Connection,
    chunk: Vec<Entry>,
    count: u64,
}

impl<'c> Chunks<'c> {
    /// An empty listing on `conn`.
    pub fn new(conn: &'c mut Connection) -> Self {
        Chunks {
            conn,
            chunk: Vec::with_capacity(ENTRIES_PER_CHUNK),
            count: 0,
        }
    }

    /// Adds an entry, queueing a chunk when one is full.
    ///
    /// # Errors
    /// If the connection breaks.
    pub fn push(&mut self, entry: Entry) -> Result<(), Failure> {
        self.chunk.push(entry);
        self.count += 1;
        if self.chunk.len() == ENTRIES_PER_CHUNK {
            self.conn.queue(&Reply::Entries {
                entries: std::mem::take(&mut self.chunk),
            })?;
        }
        Ok(())
    }

    /// Sends the last chunk and the end; returns how many entries went.
    ///
    /// # Errors
    /// If the connection breaks.
    pub fn end(self) -> Result<u64, Failure> {
        if !self.chunk.is_empty() {
            self.conn.queue(&Reply::Entries {
                entries: self.chunk,
            })?;
        }
        // Queued, not sent: the session writes the request's log line first, then flushes, so
        // the log keeps the order in which requests were answered.
        self.conn.queue(&Reply::End { count: self.count })?;
        Ok(self.count)
    }
}
