//! Framing: how one message travels on a TCP byte stream.
//!
//! TCP delivers a stream of bytes, not messages: one `read` may return half a message or two and a
//! half. So every message is sent as a *frame*:
//!
//! ```text
//! +---------+----------------------+------------------------+
//! | version | length (u32, big     | body: `length` bytes   |
//! | (1 byte)| endian)              | of UTF-8 JSON          |
//! +---------+----------------------+------------------------+
//! ```
//!
//! The reader first reads the 5-byte header, checks the version and that the length is at most
//! [`MAX_FRAME`] *before* allocating anything (a peer that claims a 4 GiB message gets an error,
//! not an allocation), then reads exactly that many bytes and decodes the JSON. File contents do
//! not go in frames: they follow a frame as raw bytes, whose count the frame announced.
//!
//! The codec is generic over [`Read`] and [`Write`], so tests can use a `Vec<u8>`.

use std::fmt;
use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The protocol version this build speaks. A frame with another version is refused.
pub const VERSION: u8 = 1;

/// The largest frame body accepted, in bytes. Listings are sent in chunks well below this, so the
/// bound only ever stops a confused or hostile peer.
pub const MAX_FRAME: u32 = 4 * 1024 * 1024;

/// Length of the header in front of every frame.
pub const HEADER_LEN: usize = 5;

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The stream failed (reset, timeout).
    Io(io::Error),
    /// The stream ended in the middle of a frame.
    Truncated,
    /// The header announced more than [`MAX_FRAME`] bytes.
    TooLarge(u32),
    /// The header carried a protocol version this build does not speak.
    BadVersion(u8),
    /// The body was not the JSON expected here.
    Json(serde_json::Error),
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

/// Encodes `msg` as one frame and writes it. The caller flushes when a batch of frames is done.
///
/// # Errors
/// Fails if the stream fails, or if the message would exceed [`MAX_FRAME`] (a bug on our side:
/// the peer would refuse it).
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let body = serde_json::to_vec(msg).map_err(FrameError::Json)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&n| n <= MAX_FRAME)
        .ok_or(FrameError::TooLarge(u32::MAX))?;
    let mut header = [0u8; HEADER_LEN];
    header[0] = VERSION;
    header[1..].copy_from_slice(&len.to_be_bytes());
    w.write_all(&header).map_err(FrameError::Io)?;
    w.write_all(&body).map_err(FrameError::Io)
}

/// Reads one frame and decodes it as a `T`.
///
/// Returns `Ok(None)` when the stream ends cleanly *between* frames (the peer hung up), and
/// [`FrameError::Truncated`] when it ends inside one.
///
/// # Errors
/// See [`FrameError`].
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    // read_exact, not read: one read may return half a header. But a clean EOF before the first
    // byte is not an error, so look at the first byte on its own.
    match read_fully(r, &mut header)? {
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
    if read_fully(r, &mut body)? < body.len() {
        return Err(FrameError::Truncated);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(FrameError::Json)
}

/// Fills `buf` as far as the stream allows; returns how many bytes were read (less than
/// `buf.len()` only at end of stream).
fn read_fully<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, FrameError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Msg {
        text: String,
        n: u64,
    }

    fn sample() -> Msg {
        Msg {
            text: "héllo \"box\"".into(),
            n: 42,
        }
    }

    #[test]
    fn round_trip_of_several_frames() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &sample()).unwrap();
        write_frame(
            &mut buf,
            &Msg {
                text: String::new(),
                n: 0,
            },
        )
        .unwrap();
        let mut r = buf.as_slice();
        assert_eq!(read_frame::<_, Msg>(&mut r).unwrap(), Some(sample()));
        assert_eq!(read_frame::<_, Msg>(&mut r).unwrap().unwrap().n, 0);
        assert!(read_frame::<_, Msg>(&mut r).unwrap().is_none(), "clean end");
    }

    #[test]
    fn a_frame_cut_anywhere_is_truncated_not_a_panic() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &sample()).unwrap();
        for cut in 1..buf.len() {
            let mut r = &buf[..cut];
            let got = read_frame::<_, Msg>(&mut r);
            assert!(
                matches!(got, Err(FrameError::Truncated)),
                "cut at {cut}: {got:?}"
            );
        }
    }

    #[test]
    fn an_oversized_length_is_refused_before_allocating() {
        let mut buf = vec![VERSION];
        buf.extend_from_slice(&u32::MAX.to_be_bytes());
        let got = read_frame::<_, Msg>(&mut buf.as_slice());
        assert!(matches!(got, Err(FrameError::TooLarge(u32::MAX))));
        let mut buf = vec![VERSION];
        buf.extend_from_slice(&(MAX_FRAME + 1).to_be_bytes());
        assert!(matches!(
            read_frame::<_, Msg>(&mut buf.as_slice()),
            Err(FrameError::TooLarge(_))
        ));
    }

    #[test]
    fn the_limit_is_exactly_max_frame() {
        // A JSON string of MAX_FRAME - 2 characters plus its quotes: a body of exactly MAX_FRAME.
        let at_limit = "x".repeat(MAX_FRAME as usize - 2);
        let mut buf = Vec::new();
        write_frame(&mut buf, &at_limit).unwrap();
        assert_eq!(buf.len(), HEADER_LEN + MAX_FRAME as usize);
        assert_eq!(
            read_frame::<_, String>(&mut buf.as_slice()).unwrap(),
            Some(at_limit)
        );
        // One byte more is refused on the way out, and nothing is written.
        let mut buf = Vec::new();
        let over = "x".repeat(MAX_FRAME as usize - 1);
        assert!(matches!(
            write_frame(&mut buf, &over),
            Err(FrameError::TooLarge(_))
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn an_empty_body_is_malformed_not_a_panic() {
        let buf = [VERSION, 0, 0, 0, 0];
        assert!(matches!(
            read_frame::<_, Msg>(&mut &buf[..]),
            Err(FrameError::Json(_))
        ));
    }

    #[test]
    fn a_stream_that_delivers_one_byte_at_a_time_still_reads_whole_frames() {
        /// A reader that hands out one byte per `read`, as a slow network may.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match (self.0.split_first(), buf.first_mut()) {
                    (Some((b, rest)), Some(slot)) => {
                        *slot = *b;
                        self.0 = rest;
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
        }
        let mut buf = Vec::new();
        write_frame(&mut buf, &sample()).unwrap();
        write_frame(&mut buf, &sample()).unwrap();
        let mut r = Trickle(&buf);
        assert_eq!(read_frame::<_, Msg>(&mut r).unwrap(), Some(sample()));
        assert_eq!(read_frame::<_, Msg>(&mut r).unwrap(), Some(sample()));
        assert_eq!(read_frame::<_, Msg>(&mut r).unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error() {
        // Wrong version byte.
        let got = read_frame::<_, Msg>(&mut &b"GET / HTTP/1.1\r\n"[..]);
        assert!(matches!(got, Err(FrameError::BadVersion(b'G'))));
        // Right header, body not JSON.
        let mut buf = vec![VERSION, 0, 0, 0, 4];
        buf.extend_from_slice(b"\xff\xfe{}");
        assert!(matches!(
            read_frame::<_, Msg>(&mut buf.as_slice()),
            Err(FrameError::Json(_))
        ));
        // Valid JSON of the wrong shape.
        let mut buf = Vec::new();
        write_frame(&mut buf, &vec![1, 2, 3]).unwrap();
        assert!(matches!(
            read_frame::<_, Msg>(&mut buf.as_slice()),
            Err(FrameError::Json(_))
        ));
    }

    #[test]
    fn pseudo_random_bytes_never_panic() {
        // A small xorshift generator keeps the test deterministic and dependency-free.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            let mut bytes = Vec::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 64) as usize;
            for i in 0..len {
                bytes.push((state >> (i % 8 * 8)) as u8);
            }
            if !bytes.is_empty() && state % 2 == 0 {
                bytes[0] = VERSION;
            }
            let _ = read_frame::<_, Msg>(&mut bytes.as_slice());
        }
    }
}
