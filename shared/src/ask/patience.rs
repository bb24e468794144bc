//! Patience with a server that says it is working: telling a peer that prepares an answer from
//! one that is gone, and from one that only pretends.
//!
//! Some answers take long to prepare: a listing first reads the server's whole folder tree
//! (seconds for a big box on a cold disk), a listing with MD5s, `hash` and `sync_list` read the
//! files the server never hashed, and any request on a file waits while that file is written.
//! Meanwhile the server sends `working {done, total, scanned}` every 2 s: bytes hashed so far,
//! of the bytes it has to hash (`total` 0: nothing to count yet; it waits for a lock or is still
//! scanning), and the files and folders its scan has read (0: not said). Every such frame keeps
//! the socket from timing out, so a peer that sent them forever would hold us forever. The
//! numbers are therefore held to each other, and to the clock:
//!
//! - `total`, once announced (not 0), never changes;
//! - `done` never goes back, and never passes `total`;
//! - `scanned` never goes back, and never passes [`MAX_SCANNED`];
//! - every [`PATIENCE`] (12 s) brings real progress: [`MIN_PROGRESS`] more bytes hashed,
//!   [`MIN_SCANNED`] more files and folders read, or a full chunk of the answer
//!   ([`ENTRIES_PER_CHUNK`] entries or folders).
//!
//! A broken rule ends the request at once, a stall within [`PATIENCE`], each with one sentence.
//! The honest server never stalls that long: it answers `busy` after 10 s on a locked file.

use std::time::Instant;

use crate::protocol::error::{Error, Result};
use crate::protocol::limits::{
    ENTRIES_PER_CHUNK, MAX_SCANNED, MIN_PROGRESS, MIN_SCANNED, PATIENCE,
};
use crate::protocol::message::Reply;
use crate::wire::conn::Connection;

/// What a server said of its progress on one request, and when it last progressed.
#[derive(Debug)]
pub struct Patience {
    /// The bytes it announced it has to hash (0: none announced yet).
    total: u64,
    /// The bytes it said it had hashed.
    done: u64,
    /// The files and folders it said its scan had read.
    scanned: u64,
    /// When the current window began: the request, or the last real progress.
    window: Instant,
    /// Bytes hashed in this window.
    hashed: u64,
    /// Files and folders read in this window.
    read: u64,
    /// Items of the answer received in this window.
    items: u64,
}

impl Default for Patience {
    fn default() -> Self {
        Patience::new()
    }
}

impl Patience {
    /// Starts waiting now (when the request goes out).
    pub fn new() -> Self {
        Patience {
            total: 0,
            done: 0,
            scanned: 0,
            window: Instant::now(),
            hashed: 0,
            read: 0,
            items: 0,
        }
    }

    /// Takes a `working` frame.
    ///
    /// # Errors
    /// [`Error::Protocol`] when it contradicts an earlier one; [`Error::Timeout`] when the
    /// window passed without real progress.
    pub fn working(&mut self, done: u64, total: u64) -> Result<()> {
        let broken = if self.total != 0 && total != self.total {
            Some(format!(
                "the peer said it had {} bytes to hash, then {total}",
                self.total
            ))
        } else if done < self.done {
            Some(format!(
                "the peer's progress went back from {} to {done} bytes",
                self.done
            ))
        } else if done > total {
            Some(format!("the peer says it hashed {done} of {total} bytes"))
        } else {
            None
        };
        if let Some(why) = broken {
            return Err(Error::Protocol(why));
        }
        self.hashed += done - self.done;
        (self.total, self.done) = (total, done);
        self.check()
    }

    /// Takes what a `working` frame says of the server's scan: `scanned` files and folders read
    /// (0: nothing said). Call it before [`Patience::working`], which weighs the progress.
    ///
    /// # Errors
    /// [`Error::Protocol`] when it goes back, or past what any box can hold.
    pub fn scanning(&mut self, scanned: u64) -> Result<()> {
        if scanned == 0 {
            return Ok(());
        }
        if scanned < self.scanned {
            let was = self.scanned;
            return Err(Error::Protocol(format!(
                "the peer's scan went back from {was} to {scanned} files and folders"
            )));
        }
        if scanned > MAX_SCANNED {
            return Err(Error::Protocol(format!(
                "the peer says it read {scanned} files and folders, more than any box it could \
                 list ({MAX_SCANNED})"
            )));
        }
        self.read += scanned - self.scanned;
        self.scanned = scanned;
        Ok(())
    }

    /// Takes `n` items of the answer (entries, or folders of a `same` chunk).
    ///
    /// # Errors
    /// [`Error::Timeout`] when the window passed without real progress.
    pub fn items(&mut self, n: usize) -> Result<()> {
        self.items += n as u64;
        self.check()
    }

    /// Starts a new window if this one brought real progress; gives up if it is over without.
    fn check(&mut self) -> Result<()> {
        let chunk = ENTRIES_PER_CHUNK as u64;
        if self.hashed >= MIN_PROGRESS || self.read >= MIN_SCANNED || self.items >= chunk {
            (self.window, self.hashed, self.read, self.items) = (Instant::now(), 0, 0, 0);
        } else if self.window.elapsed() > PATIENCE {
            let (kib, secs) = (MIN_PROGRESS / 1024, PATIENCE.as_secs());
            return Err(Error::Timeout(format!(
                "the peer says it is working but made no real progress in {secs} s (fewer than \
                 {kib} KiB hashed or {MIN_SCANNED} files read, no full chunk of the answer)"
            )));
        }
        Ok(())
    }
}

/// Reads the next reply that is not a `working` frame, holding those to `patience`.
///
/// # Errors
/// A broken connection, or a server that broke the rules above.
pub fn answer(conn: &mut Connection, patience: &mut Patience) -> Result<Reply> {
    loop {
        match conn.recv::<Reply>()? {
            Reply::Working {
                done,
                total,
                scanned,
            } => {
                patience.scanning(scanned)?;
                patience.working(done, total)?;
            }
            other => return Ok(other),
        }
    }
}

#[cfg(test)]
mod tests;
