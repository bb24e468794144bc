//! The pace rule: a transfer must keep moving.
//!
//! A socket timeout fires only when one `read` or `write` moves *nothing* for its whole wait,
//! and a peer can dodge it by moving almost nothing: a client that never reads still lets the
//! kernel squeeze a few hundred bytes out every few seconds; a hostile server can send one byte
//! every 9 s. Every call then "progresses", and the transfer never ends. So a transfer must move
//! at least [`MIN_PROGRESS`] bytes in every [`IDLE_TIMEOUT`], or it is given up on.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::limits::{IDLE_TIMEOUT, MIN_PROGRESS};

/// Watches the bytes of one transfer for the slow drip.
#[derive(Debug)]
pub struct Pace {
    /// When the current window began: the last time [`MIN_PROGRESS`] bytes were reached.
    pub(crate) window_start: Instant,
    /// Bytes moved since then.
    moved: u64,
    /// How long a window lasts: [`IDLE_TIMEOUT`], unless a side that should report second
    /// gives the other a moment of grace.
    window: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Pace::new()
    }
}

impl Pace {
    /// Starts watching now.
    pub fn new() -> Self {
        Pace::with_window(IDLE_TIMEOUT)
    }

    /// Starts watching now, with windows of `window` instead of [`IDLE_TIMEOUT`].
    pub fn with_window(window: Duration) -> Self {
        Pace {
            window_start: Instant::now(),
            moved: 0,
            window,
        }
    }

    /// Notes that `n` more bytes moved.
    ///
    /// # Errors
    /// [`io::ErrorKind::TimedOut`] when fewer than [`MIN_PROGRESS`] bytes moved over more than
    /// a window.
    pub fn advance(&mut self, n: u64) -> io::Result<()> {
        self.moved += n;
        if self.moved >= MIN_PROGRESS {
            *self = Pace::with_window(self.window);
        } else if self.window_start.elapsed() > self.window {
            let (kib, secs) = (MIN_PROGRESS / 1024, self.window.as_secs());
            let why = format!("the peer moved fewer than {kib} KiB in {secs} s");
            return Err(io::Error::new(io::ErrorKind::TimedOut, why));
        }
        Ok(())
    }
}

/// A writer whose every write is watched by a [`Pace`].
pub struct PacedWriter<W> {
    /// Where the bytes go.
    pub(crate) inner: W,
    /// The watch.
    pub(crate) pace: Pace,
}

impl<W: Write> PacedWriter<W> {
    /// Wraps `inner`, starting the watch now.
    pub fn new(inner: W) -> Self {
        PacedWriter {
            inner,
            pace: Pace::new(),
        }
    }
}

impl<W: Write> Write for PacedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pace.advance(n as u64)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads the `size` bytes of one file from a stream, watched by a [`Pace`].
pub struct PacedReader<R> {
    inner: R,
    pace: Pace,
    done: u64,
    size: u64,
}

impl<R: Read> PacedReader<R> {
    /// Reads `size` bytes from `inner`, starting the watch now.
    pub fn new(inner: R, size: u64) -> Self {
        PacedReader {
            inner,
            pace: Pace::new(),
            done: 0,
            size,
        }
    }

    /// Bytes read so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Reads at least one byte into `buf` (at most what is left of the file).
    ///
    /// # Errors
    /// An early end of the stream, a socket error, or a peer slower than the pace allows
    /// (unless these were the last bytes).
    pub fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.size - self.done).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        loop {
            match self.inner.read(&mut buf[..want]) {
                Ok(0) => {
                    let (done, size) = (self.done, self.size);
                    let why = format!("the connection closed after {done} of {size} bytes");
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why));
                }
                Ok(n) => {
                    self.done += n as u64;
                    if self.done < self.size {
                        self.pace.advance(n as u64)?;
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Fills `buf` whole.
    ///
    /// # Errors
    /// As [`PacedReader::read_some`].
    pub fn fill(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            filled += self.read_some(&mut buf[filled..])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
