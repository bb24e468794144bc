//! The two kinds of datagram a UDP download uses, byte by byte.
//!
//! A datagram is a message on its own: it arrives whole or not at all, so unlike TCP there is no
//! framing to do. But it may come from anyone, be a leftover of an earlier transfer, or be plain
//! noise, so every datagram starts with a fixed header that is checked before anything else:
//!
//! ```text
//! Data (server -> client), 24-byte header then the block's bytes:
//!  0      2     3       4               12        16                24
//!  +------+-----+-------+----------------+---------+-----------------+=============+
//!  | "MB" | ver | D / F | token (u64)    | block   | sent_at (u64 ns)| payload ... |
//!  +------+-----+-------+----------------+---------+-----------------+=============+
//!
//! Ack (client -> server), 34-byte header then `gaps` pairs of u32:
//!  0      2     3     4          12    16       20         24          32     34
//!  +------+-----+-----+----------+-----+--------+----------+-----------+------+---------------+
//!  | "MB" | ver | 'A' | token    | cum | window | seen_end | echo (u64)| gaps | start,end ... |
//!  +------+-----+-----+----------+-----+--------+----------+-----------+------+---------------+
//! ```
//!
//! All integers are big-endian. A data datagram's kind is `F` instead of `D` when it is the last
//! one the server can send before its window closes: the client should ack it at once, since the
//! server is now waiting for that ack (otherwise the client acks every few blocks).
//!
//! In an ack:
//! - `cum` (cumulative ack): every block below it has arrived;
//! - `window`: how many blocks from `cum` on the client is ready to take;
//! - `seen_end` and `gaps`: in `[cum, seen_end)` every block has arrived except those in the
//!   listed half-open ranges `[start, end)`; nothing is said about blocks from `seen_end` on;
//! - `echo`: the largest `sent_at` of any data datagram that has arrived, so that the server can
//!   measure the round-trip time and tell which missing blocks were overtaken by later ones.
//!
//! The client's very first datagram is an ack of nothing (`cum` 0, no gaps): it tells the server
//! where to send and how large the window is.
//!
//! Decoding never panics and never trusts a length: whatever the bytes, the answer is a
//! [`Datagram`] or a [`WireError`].

use std::fmt;
use std::ops::Range;

/// The first two bytes of every datagram: cheap rejection of stray traffic.
pub const MAGIC: [u8; 2] = *b"MB";
/// The datagram format version.
pub const WIRE_VERSION: u8 = 1;
/// Bytes before the payload of a data datagram.
pub const DATA_HEADER: usize = 24;
/// Bytes before the gap list of an ack.
pub const ACK_HEADER: usize = 34;
/// The largest ack: it fits an Ethernet frame (1500 bytes) with the IPv4 and UDP headers, so acks
/// are never fragmented whatever the block size.
pub const MAX_ACK: usize = 1472;
/// How many gaps fit in one ack.
pub const MAX_GAPS: usize = (MAX_ACK - ACK_HEADER) / 8;
/// The largest UDP payload IPv4 can carry (65535 minus the IP and UDP headers).
pub const MAX_DATAGRAM: usize = 65_507;

const KIND_DATA: u8 = b'D';
const KIND_DATA_ACK_NOW: u8 = b'F';
const KIND_ACK: u8 = b'A';

/// One block of the file, as it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data<'a> {
    /// The transfer it belongs to.
    pub token: u64,
    /// The block's number: it holds the file's bytes from `block * block_size` on.
    pub block: u32,
    /// When the server sent this copy, in nanoseconds since the transfer began.
    pub sent_at: u64,
    /// The server waits for an ack after this one: acknowledge at once.
    pub ack_now: bool,
    /// The block's bytes.
    pub payload: &'a [u8],
}

/// What the client has, as it tells the server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ack {
    /// The transfer it belongs to.
    pub token: u64,
    /// Every block below this one has arrived.
    pub cumulative: u32,
    /// How many blocks from `cumulative` on the client accepts.
    pub window: u32,
    /// The end of the range this ack describes (see the module docs).
    pub seen_end: u32,
    /// The largest `sent_at` seen in a data datagram, 0 if none yet.
    pub echo: u64,
    /// Missing ranges inside `[cumulative, seen_end)`, sorted, disjoint, non-empty.
    pub gaps: Vec<Range<u32>>,
}

/// A decoded datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// A block of the file.
    Data(Data<'a>),
    /// A receiver's report.
    Ack(Ack),
}

/// Why a datagram was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than its header.
    TooShort(usize),
    /// Does not start with [`MAGIC`]: not a minibox datagram.
    NotOurs,
    /// A format version this build does not speak.
    Version(u8),
    /// An unknown kind byte.
    Kind(u8),
    /// An ack whose fields contradict each other.
    BadAck(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooShort(n) => write!(f, "a datagram of {n} bytes is too short"),
            WireError::NotOurs => f.write_str("not a minibox datagram"),
            WireError::Version(v) => write!(f, "datagram format version {v} is not spoken here"),
            WireError::Kind(k) => write!(f, "unknown datagram kind {k:#04x}"),
            WireError::BadAck(why) => write!(f, "malformed ack: {why}"),
        }
    }
}

impl std::error::Error for WireError {}

/// Reads the token of a datagram without decoding the rest, for the server's demultiplexer.
/// `None` for anything that is not a minibox datagram of this version.
pub fn token_of(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < 12 || bytes[..2] != MAGIC || bytes[2] != WIRE_VERSION {
        return None;
    }
    Some(be_u64(&bytes[4..12]))
}

/// Decodes one datagram.
///
/// # Errors
/// A [`WireError`] for anything malformed; never panics.
pub fn decode(bytes: &[u8]) -> Result<Datagram<'_>, WireError> {
    if bytes.len() < 4 {
        return Err(WireError::TooShort(bytes.len()));
    }
    if bytes[..2] != MAGIC {
        return Err(WireError::NotOurs);
    }
    if bytes[2] != WIRE_VERSION {
        return Err(WireError::Version(bytes[2]));
    }
    match bytes[3] {
        kind @ (KIND_DATA | KIND_DATA_ACK_NOW) => {
            if bytes.len() < DATA_HEADER {
                return Err(WireError::TooShort(bytes.len()));
            }
            Ok(Datagram::Data(Data {
                token: be_u64(&bytes[4..12]),
                block: be_u32(&bytes[12..16]),
                sent_at: be_u64(&bytes[16..24]),
                ack_now: kind == KIND_DATA_ACK_NOW,
                payload: &bytes[DATA_HEADER..],
            }))
        }
        KIND_ACK => decode_ack(bytes).map(Datagram::Ack),
        other => Err(WireError::Kind(other)),
    }
}

fn decode_ack(bytes: &[u8]) -> Result<Ack, WireError> {
    if bytes.len() < ACK_HEADER {
        return Err(WireError::TooShort(bytes.len()));
    }
    let count = usize::from(u16::from_be_bytes([bytes[32], bytes[33]]));
    // The length must match the count exactly: a short list is truncated, a long one is junk.
    if bytes.len() != ACK_HEADER + 8 * count {
        return Err(WireError::BadAck("the gap count does not match the length"));
    }
    let ack = Ack {
        token: be_u64(&bytes[4..12]),
        cumulative: be_u32(&bytes[12..16]),
        window: be_u32(&bytes[16..20]),
        seen_end: be_u32(&bytes[20..24]),
        echo: be_u64(&bytes[24..32]),
        gaps: bytes[ACK_HEADER..]
            .chunks_exact(8)
            .map(|pair| be_u32(&pair[..4])..be_u32(&pair[4..]))
            .collect(),
    };
    if ack.seen_end < ack.cumulative {
        return Err(WireError::BadAck("seen_end lies before the cumulative ack"));
    }
    let mut floor = ack.cumulative;
    for gap in &ack.gaps {
        if gap.start < floor || gap.end <= gap.start || gap.end > ack.seen_end {
            return Err(WireError::BadAck(
                "gaps must be sorted, disjoint and inside the acked range",
            ));
        }
        floor = gap.end;
    }
    Ok(ack)
}

/// Writes a data header into the first [`DATA_HEADER`] bytes of `buf`; the caller puts the
/// payload right after it (reading the file straight into the datagram saves a copy).
///
/// # Panics
/// If `buf` is shorter than the header (a bug in the caller, not something the network decides).
pub fn put_data_header(buf: &mut [u8], token: u64, block: u32, sent_at: u64, ack_now: bool) {
    buf[..2].copy_from_slice(&MAGIC);
    buf[2] = WIRE_VERSION;
    buf[3] = if ack_now {
        KIND_DATA_ACK_NOW
    } else {
        KIND_DATA
    };
    buf[4..12].copy_from_slice(&token.to_be_bytes());
    buf[12..16].copy_from_slice(&block.to_be_bytes());
    buf[16..24].copy_from_slice(&sent_at.to_be_bytes());
}

/// Encodes a whole data datagram (for tests and tools; the sender uses [`put_data_header`]).
pub fn encode_data(data: &Data<'_>) -> Vec<u8> {
    let mut out = vec![0; DATA_HEADER + data.payload.len()];
    put_data_header(&mut out, data.token, data.block, data.sent_at, data.ack_now);
    out[DATA_HEADER..].copy_from_slice(data.payload);
    out
}

/// Encodes an ack into `out` (cleared first). At most [`MAX_GAPS`] gaps are written; the caller
/// (see `window::Reassembly::ack`) keeps within that.
pub fn encode_ack(ack: &Ack, out: &mut Vec<u8>) {
    let gaps = &ack.gaps[..ack.gaps.len().min(MAX_GAPS)];
    out.clear();
    out.extend_from_slice(&MAGIC);
    out.push(WIRE_VERSION);
    out.push(KIND_ACK);
    out.extend_from_slice(&ack.token.to_be_bytes());
    out.extend_from_slice(&ack.cumulative.to_be_bytes());
    out.extend_from_slice(&ack.window.to_be_bytes());
    out.extend_from_slice(&ack.seen_end.to_be_bytes());
    out.extend_from_slice(&ack.echo.to_be_bytes());
    let count = u16::try_from(gaps.len()).expect("MAX_GAPS fits in a u16");
    out.extend_from_slice(&count.to_be_bytes());
    for gap in gaps {
        out.extend_from_slice(&gap.start.to_be_bytes());
        out.extend_from_slice(&gap.end.to_be_bytes());
    }
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

#[cfg(test)]
mod tests;
