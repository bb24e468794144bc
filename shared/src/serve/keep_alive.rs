//! "Still working": a reply that takes long to prepare tells the client every [`KEEP_ALIVE`],
//! so that a client that gives up on a connection silent for 10 s keeps waiting. Each
//! `working` frame carries real progress: **bytes hashed, of the bytes to hash** (the files the
//! stat cache does not vouch for), counted inside a long file too, and before that the **files
//! and folders scanned** (a big box on a cold disk takes seconds to read). A total of 0 means
//! nothing to count yet: the request waits for a locked file, or the scan is not over. The
//! client holds these numbers to each other (`crate::ask::patience`), so they never go back or
//! past the total.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use super::failure::Failure;
use crate::local::scan::Scanned;
use crate::local::LocalBox;
use crate::protocol::limits::KEEP_ALIVE;
use crate::protocol::md5::Md5;
use crate::protocol::message::{Kind, Reply};
use crate::wire::conn::Connection;

/// Sends [`Reply::Working`] at most every [`KEEP_ALIVE`], and only once that long has passed
/// since it started, so a quick answer sends none.
pub struct KeepAlive {
    /// When the last frame went (or the work began).
    last: Instant,
    /// Bytes to hash in all.
    total: u64,
    /// Bytes hashed so far (never more than `total`, never less than last said).
    done: u64,
    /// Files and folders scanned so far (never less than last said).
    scanned: u64,
}

impl KeepAlive {
    /// Work of `total` bytes to hash (0: only waiting), starting now.
    pub fn new(total: u64) -> Self {
        KeepAlive {
            last: Instant::now(),
            total,
            done: 0,
            scanned: 0,
        }
    }

    /// Notes that the scan read `scanned` files and folders, and says so if it is time.
    ///
    /// # Errors
    /// If the connection breaks.
    pub fn scanned(&mut self, conn: &mut Connection, scanned: u64) -> Result<(), Failure> {
        self.scanned = self.scanned.max(scanned);
        self.tick(conn, 0)
    }

    /// The scan is over: `total` bytes are to hash now.
    pub fn to_hash(&mut self, total: u64) {
        if self.total == 0 {
            self.total = total;
        }
    }

    /// Notes that `done` bytes are hashed, and sends a [`Reply::Working`] if it is time.
    ///
    /// # Errors
    /// If the connection breaks.
    pub fn tick(&mut self, conn: &mut Connection, done: u64) -> Result<(), Failure> {
        self.done = self.done.max(done.min(self.total));
        if self.last.elapsed() >= KEEP_ALIVE {
            let (done, total, scanned) = (self.done, self.total, self.scanned);
            conn.send(&Reply::Working {
                done,
                total,
                scanned,
            })?;
            self.last = Instant::now();
        }
        Ok(())
    }

    /// The box's scan ([`LocalBox::scan_telling`]), telling the client how many files and
    /// folders it has read. The outer error is the connection's; the inner one the box's.
    ///
    /// # Errors
    /// If the connection breaks (the scan stops there).
    pub fn scan(
        &mut self,
        conn: &mut Connection,
        local: &LocalBox,
    ) -> Result<io::Result<Arc<Vec<Scanned>>>, Failure> {
        let mut gone = None;
        let scanned = local.scan_telling(&mut |read| {
            let tick = self.scanned(conn, read);
            tick.map_err(|f| stop(&mut gone, f))
        });
        gone.map_or(Ok(scanned), Err)
    }

    /// The MD5 of a scanned file ([`LocalBox::md5_of`]), telling the client of the progress
    /// inside it, and counting it as done if it was one to hash.
    ///
    /// # Errors
    /// If the connection breaks.
    pub fn md5_of(
        &mut self,
        conn: &mut Connection,
        local: &LocalBox,
        item: &Scanned,
    ) -> Result<Option<Md5>, Failure> {
        let (before, size) = (self.done, item.stamp.size);
        let fresh = local.hashes.get(&item.stamp).is_none();
        let mut gone = None;
        let md5 = local.md5_of(item, &mut |done, _| {
            let tick = self.tick(conn, before + done.min(size));
            tick.map_err(|f| stop(&mut gone, f))
        });
        if let Some(failure) = gone {
            return Err(failure);
        }
        if fresh {
            self.tick(conn, before + size)?;
        }
        Ok(md5)
    }
}

/// Keeps the failure of a connection that broke while local work told it of its progress, and
/// gives that work the error that stops it.
fn stop(gone: &mut Option<Failure>, failure: Failure) -> io::Error {
    *gone = Some(failure);
    io::Error::other("the client went away")
}

/// The bytes to hash among `items`: the files whose MD5 the stat cache does not vouch for.
pub fn to_hash<'s>(local: &LocalBox, items: impl Iterator<Item = &'s Scanned>) -> u64 {
    items
        .filter(|i| i.kind == Kind::File && local.hashes.get(&i.stamp).is_none())
        .fold(0, |sum, i| sum.saturating_add(i.stamp.size))
}

#[cfg(test)]
mod tests;
