//! Speed, skippable: two ways to send a file with less work than `download::answer`'s copy.
//!
//! - A small file is read whole and queued with its header and trailer, so a client fetching
//!   many small files (a sync round pipelines them) gets several in one write: the serving loop
//!   flushes only when no request waits. `scripts/bench.sh`, row `first-sync-10k`.
//! - A file whose MD5 the stat cache knows needs no hashing, so the kernel moves its bytes
//!   (`wire::sendfile`). Row `tcp-cached`.

use std::io::Read;

use super::failure::Failure;
use super::outgoing::{pad, sending, Outgoing};
use crate::local::LocalBox;
use crate::protocol::md5::Md5;
use crate::protocol::message::{ErrorCode, Reply};
use crate::protocol::pace::PacedWriter;
use crate::wire::conn::Connection;
use crate::wire::sendfile::send_file;

/// Files up to this size are sent from memory.
pub const SMALL_FILE: u64 = 64 * 1024;

/// Sends `out` the fast way if one applies; `None` if the plain copy must do it.
pub fn send(
    conn: &mut Connection,
    local: &LocalBox,
    out: &Outgoing<'_>,
) -> Option<Result<String, Failure>> {
    if out.entry.size <= SMALL_FILE {
        return Some(send_small(conn, local, out));
    }
    let md5 = out.known?;
    Some(send_known(conn, local, out, md5))
}

/// Reads a small file whole, then queues header, bytes and trailer. A file that cannot be read
/// gets an error reply before any header.
fn send_small(
    conn: &mut Connection,
    local: &LocalBox,
    out: &Outgoing<'_>,
) -> Result<String, Failure> {
    let size = out.entry.size;
    let len = usize::try_from(size).unwrap_or(0);
    let mut bytes = Vec::with_capacity(len);
    let read = (&out.file).take(size).read_to_end(&mut bytes);
    let name = &out.entry.path;
    read.map_err(|e| Failure::Reply(ErrorCode::Io, format!("cannot read {name}: {e}")))?;
    // The file shrank under us: pad to the size announced, and say so after.
    let complete = bytes.len() == len;
    bytes.resize(len, 0);
    let md5 = out.known.unwrap_or_else(|| Md5::of(&bytes));
    conn.queue(&Reply::File {
        entry: out.entry.clone(),
    })?;
    conn.queue_raw(&bytes)?;
    out.finish(conn, local, md5, complete)
}

/// Sends a file whose MD5 is known with `sendfile`: no hashing, no copy through this process.
fn send_known(
    conn: &mut Connection,
    local: &LocalBox,
    out: &Outgoing<'_>,
    md5: Md5,
) -> Result<String, Failure> {
    let size = out.entry.size;
    conn.send(&Reply::File {
        entry: out.entry.clone(),
    })?;
    let mut socket = PacedWriter::new(conn.raw_writer()?);
    let copied = send_file(&mut socket, &out.file, 0, size).map_err(sending)?;
    if copied < size {
        pad(&mut socket, size - copied)?;
    }
    out.finish(conn, local, md5, copied == size)
}
