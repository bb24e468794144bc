//! Framing: how one message travels on a TCP byte stream.
//!
//! TCP delivers bytes, not messages: one `read` may return half a message, or two and a half.
//! So every message goes as a *frame*: a version byte, the body's length (u32, big endian), then
//! the body, UTF-8 JSON. The reader checks the version and that the length is at most
//! [`MAX_FRAME`] *before* it allocates (a peer claiming 4 GiB gets an error, not an allocation).
//! File contents never go in frames: they follow one as raw bytes, whose count it announced.
//!
//! A frame that has begun must also end: once its first byte is in, the whole frame must arrive
//! within [`FRAME_TIME`]. A socket's read timeout limits each `read`, not the frame, and a peer
//! that sends one byte every 9 s would satisfy every read while holding the reader for days.
//!
//! The codec is generic over [`Read`] and [`Write`], so tests can use a `Vec<u8>`.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::limits::IDLE_TIMEOUT;

/// The protocol version this build speaks; a frame with another is refused. (2: `list` takes a
/// `listing` kind instead of the `hashes` and `folders` flags.)
pub const VERSION: u8 = 2;
/// The largest frame body accepted, in bytes: far above any honest message.
pub const MAX_FRAME: u32 = 4 * 1024 * 1024;
/// Length of the header in front of every frame.
pub const HEADER_LEN: usize = 5;
/// The longest one frame may take from its first byte to its last: the idle timeout.
pub const FRAME_TIME: Duration = IDLE_TIMEOUT;

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The stream failed (reset, timeout).
    Io(io::Error),
    /// The stream ended in the middle of a frame.
    Truncated,
    /// The header announced more than [`MAX_FRAME`] bytes.
    TooLarge(u32),
    /// The header carried a version this build does not speak.
    BadVersion(u8),
    /// The body was not the JSON expected here.
    Json(serde_json::Error),
    /// The frame had begun but was not complete within this long.
    TooSlow(Duration),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "connection error: {e}"),
            FrameError::Truncated => {
                f.write_str("the connection closed in the middle of a message")
            }
            FrameError::TooLarge(n) => {
                write!(
                    f,
                    "a message of {n} bytes is larger than the limit of {MAX_FRAME}"
                )
            }
            FrameError::BadVersion(v) => {
                write!(
                    f,
                    "protocol version {v} is not supported (this build speaks {VERSION})"
                )
            }
            FrameError::Json(e) => write!(f, "malformed message: {e}"),
            FrameError::TooSlow(t) => {
                write!(
                    f,
                    "the peer took more than {} s to send one message",
                    t.as_secs()
                )
            }
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Io(e) => Some(e),
            FrameError::Json(e) => Some(e),
            _ => None,
        }
    }
}

/// Encodes `msg` as one frame and writes it; the caller flushes when a batch is done.
///
/// # Errors
/// If the stream fails, or the message would exceed [`MAX_FRAME`] (nothing is written then).
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    // Header and body in one buffer, handed over in one call: a buffered writer then never sends
    // a header whose body waits for the next flush (the peer would sit inside a frame).
    let mut frame = vec![0u8; HEADER_LEN];
    serde_json::to_writer(&mut frame, msg).map_err(FrameError::Json)?;
    let len = u32::try_from(frame.len() - HEADER_LEN)
        .ok()
        .filter(|&n| n <= MAX_FRAME)
        .ok_or(FrameError::TooLarge(u32::MAX))?;
    frame[0] = VERSION;
    frame[1..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    w.write_all(&frame).map_err(FrameError::Io)
}

/// Reads one frame and decodes it. `Ok(None)` when the stream ends cleanly *between* frames,
/// [`FrameError::Truncated`] when it ends inside one.
///
/// # Errors
/// See [`FrameError`].
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>, FrameError> {
    read_frame_within(r, FRAME_TIME, |_, _| Ok(()))
}

/// [`read_frame`] with the frame's time limit given. Before every read after the first byte,
/// `wait(r, left)` is told the time left, so a socket can make that read give up at the frame's
/// deadline ([`crate::wire::conn::Connection`] does). The wait for the first byte is not limited
/// here: between frames a peer may think.
///
/// # Errors
/// See [`FrameError`]; [`FrameError::TooSlow`] when the limit passes inside the frame.
pub fn read_frame_within<R: Read, T: DeserializeOwned>(
    r: &mut R,
    limit: Duration,
    mut wait: impl FnMut(&mut R, Duration) -> io::Result<()>,
) -> Result<Option<T>, FrameError> {
    let mut clock = FrameClock::new(limit);
    let mut header = [0u8; HEADER_LEN];
    match read_fully(r, &mut header, &mut clock, &mut wait)? {
        0 => return Ok(None),
        n if n < HEADER_LEN => return Err(FrameError::Truncated),
        _ => {}
    }
    if header[0] != VERSION {
        return Err(FrameError::BadVersion(header[0]));
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    // Only now, with the length known to be sane, allocate.
    let mut body = vec![0u8; len as usize];
    if read_fully(r, &mut body, &mut clock, &mut wait)? < body.len() {
        return Err(FrameError::Truncated);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(FrameError::Json)
}

/// When the frame being read began, and so how long it has left.
#[derive(Debug)]
struct FrameClock {
    /// The whole frame's time.
    limit: Duration,
    /// When its first byte arrived.
    began: Option<Instant>,
}

impl FrameClock {
    fn new(limit: Duration) -> Self {
        FrameClock { limit, began: None }
    }

    fn bytes_at(&mut self, now: Instant) {
        self.began.get_or_insert(now);
    }

    /// The time left: `None` before the first byte, zero once it is up.
    fn left(&self, now: Instant) -> Option<Duration> {
        let spent = |began| now.saturating_duration_since(began);
        self.began
            .map(|began| self.limit.saturating_sub(spent(began)))
    }

    fn is_up(&self, now: Instant) -> bool {
        self.left(now).is_some_and(|left| left.is_zero())
    }
}

/// Fills `buf` as far as the stream allows (less only at its end); checks the clock first.
fn read_fully<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    clock: &mut FrameClock,
    wait: &mut impl FnMut(&mut R, Duration) -> io::Result<()>,
) -> Result<usize, FrameError> {
    let mut filled = 0;
    while filled < buf.len() {
        match clock.left(Instant::now()) {
            Some(left) if left.is_zero() => return Err(FrameError::TooSlow(clock.limit)),
            Some(left) => wait(r, left).map_err(FrameError::Io)?,
            None => {}
        }
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                clock.bytes_at(Instant::now());
                filled += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A read cut short by `wait` at the frame's deadline: say why.
            Err(e) if is_timeout(&e) && clock.is_up(Instant::now()) => {
                return Err(FrameError::TooSlow(clock.limit))
            }
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(filled)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests;
