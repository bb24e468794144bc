//! "Still working": a reply that takes long to prepare (hashing files the box has not read
//! before) tells the client now and then, so that a client that gives up on a connection silent
//! for 10 s keeps waiting.

use std::time::{Duration, Instant};

use super::failure::Failure;
use crate::protocol::message::Reply;
use crate::wire::conn::Connection;

/// How often a long answer says it is still being prepared: well within the idle timeout.
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// Sends [`Reply::Working`] at most every [`KEEP_ALIVE`], and only once that long has passed
/// since the request, so a quick answer sends none.
pub struct KeepAlive {
    last: Instant,
}

impl Default for KeepAlive {
    fn default() -> Self {
        KeepAlive {
            last: Instant::now(),
        }
    }
}

impl KeepAlive {
    /// Sends a [`Reply::Working`] if it is time.
    ///
    /// # Errors
    /// If the connection breaks.
    pub fn tick(&mut self, conn: &mut Connection, done: u64, total: u64) -> Result<(), Failure> {
        if self.last.elapsed() >= KEEP_ALIVE {
            conn.send(&Reply::Working { done, total })?;
            self.last = Instant::now();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
