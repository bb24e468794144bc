//! `range`: the raw bytes of some blocks of one version of a file, for a peer that moves a big
//! file by blocks (`docs/blocks.md`). A header frame announces how many bytes follow, the bytes,
//! then a trailer with the whole file's MD5.
//!
//! The peer names the version by its MD5, and gets blocks of that version or none: the file
//! must still have the stamp the stat cache knows that MD5 under (the block list the peer holds
//! came from the same place), and must not change while the bytes go out. Otherwise the answer is
//! a `changed` error, in place of the header or of the trailer.

use super::failure::Failure;
use super::outgoing::{pad, sending, Outgoing};
use crate::local::LocalBox;
use crate::protocol::blocks::{block_count, block_size};
use crate::protocol::md5::Md5;
use crate::protocol::message::{ErrorCode, Reply};
use crate::protocol::pace::PacedWriter;
use crate::wire::conn::Connection;
use crate::wire::sendfile::send_file;

/// What a `range` request asks for.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'r> {
    /// The file's name in the box.
    pub name: &'r str,
    /// The version: its whole MD5.
    pub md5: Md5,
    /// The first block.
    pub first: u64,
    /// How many blocks.
    pub count: u64,
}

/// Sends the blocks asked for; returns the log summary.
///
/// # Errors
/// A reply for a missing, refused, busy or changed file or blocks past its end; a broken
/// connection.
pub fn answer(
    conn: &mut Connection,
    local: &LocalBox,
    want: Wanted<'_>,
) -> Result<String, Failure> {
    let Wanted {
        name,
        md5,
        first,
        count,
    } = want;
    let out = Outgoing::open(conn, local, name)?;
    if out.known != Some(md5) {
        let why = format!("{name} changed since its block list was sent; nothing was installed");
        return Err(Failure::Reply(ErrorCode::Changed, why));
    }
    let size = out.entry.size;
    let blocks = block_count(size);
    if first > blocks || count > blocks - first {
        let why = format!("{name} has {blocks} blocks, not {first} + {count}");
        return Err(Failure::Reply(ErrorCode::BadRequest, why));
    }
    let block = block_size(size);
    let start = first * block;
    let len = ((first + count) * block).min(size) - start;
    conn.send(&Reply::Range {
        first,
        count,
        size: len,
    })?;
    let mut socket = PacedWriter::new(conn.raw_writer()?);
    let copied = send_file(&mut socket, &out.file, start, len).map_err(sending)?;
    if copied < len {
        // The file shrank under us: the peer expects `len` bytes, so pad, then say so.
        pad(&mut socket, len - copied)?;
    }
    let said = out.finish(conn, local, md5, copied == len)?;
    Ok(match said.starts_with("but") {
        true => said,
        false => format!("{len} bytes"),
    })
}
