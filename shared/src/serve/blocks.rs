//! `blocks`: a file's block list, for a peer that moves a big file by blocks (`docs/blocks.md`).
//! A header frame announces the entry and the block size, the block MD5s follow in chunks, then a
//! trailer with the whole file's MD5, or a `changed` error if the file changed while it was read.
//!
//! An unchanged file's list comes from the block cache. Otherwise the file is read now, once,
//! for both its MD5 and its blocks, and each chunk leaves as soon as its blocks are hashed: the
//! peer hears from us at least every second, however big the file.

use std::time::{Duration, Instant};

use super::failure::Failure;
use super::list::save_hashes;
use super::outgoing::Outgoing;
use crate::local::blocks::digest_blocks;
use crate::local::scan::Stamp;
use crate::local::LocalBox;
use crate::protocol::blocks::{block_size, SUMS_PER_CHUNK};
use crate::protocol::md5::Md5;
use crate::protocol::message::{ErrorCode, Reply};
use crate::wire::conn::Connection;

/// The longest the peer waits for the next chunk while the file is being hashed.
const CHUNK_EVERY: Duration = Duration::from_secs(1);

/// Sends one file's block list; returns the log summary.
///
/// # Errors
/// A reply for a missing, refused, busy or unreadable file; a broken connection.
pub fn answer(conn: &mut Connection, local: &LocalBox, name: &str) -> Result<String, Failure> {
    let out = Outgoing::open(conn, local, name)?;
    let size = out.entry.size;
    conn.send(&Reply::BlockList {
        entry: out.entry.clone(),
        block_size: block_size(size),
    })?;
    let cached = local.hashes.blocks.get(&out.before);
    if let (Some(md5), Some(list)) = (out.known, cached) {
        for chunk in list.md5s.chunks(SUMS_PER_CHUNK) {
            let md5s = chunk.to_vec();
            conn.queue(&Reply::BlockSums { md5s })?;
        }
        return out.finish(conn, local, md5, true);
    }
    let md5 = match hash_and_send(conn, local, &out) {
        Ok(md5) => md5,
        Err(Failure::Reply(code, message)) => {
            // The header is out: the error takes the trailer's place.
            conn.queue(&Reply::error(code, message))?;
            return Ok("but the file could not be read".into());
        }
        Err(e) => return Err(e),
    };
    let summary = out.finish(conn, local, md5, true)?;
    save_hashes(local);
    Ok(summary)
}

/// Reads the file for its MD5 and blocks, sending each chunk of block MD5s as it is ready;
/// remembers both if the file held still. Returns the whole file's MD5.
fn hash_and_send(
    conn: &mut Connection,
    local: &LocalBox,
    out: &Outgoing<'_>,
) -> Result<Md5, Failure> {
    let (mut sent, mut last) = (0, Instant::now());
    let mut broken = None;
    let mut stream = |done: &[Md5]| {
        let due = done.len() - sent >= SUMS_PER_CHUNK || last.elapsed() >= CHUNK_EVERY;
        if due && done.len() > sent {
            let md5s = done[sent..].to_vec();
            conn.send(&Reply::BlockSums { md5s }).map_err(|e| {
                broken = Some(e);
                std::io::Error::other("the peer went away")
            })?;
            (sent, last) = (done.len(), Instant::now());
        }
        Ok(())
    };
    let size = out.entry.size;
    let hashed = digest_blocks(&out.file, size, block_size(size), &mut stream);
    if let Some(e) = broken {
        return Err(Failure::Connection(e));
    }
    let name = &out.entry.path;
    let (md5, list) = hashed.map_err(|e| match out.file.metadata() {
        Ok(m) if Stamp::of(&m) != out.before => Failure::Reply(
            ErrorCode::Changed,
            format!("{name} changed while it was being read; nothing was installed"),
        ),
        _ => Failure::Reply(ErrorCode::Io, format!("cannot read {name}: {e}")),
    })?;
    for chunk in list.md5s[sent..].chunks(SUMS_PER_CHUNK) {
        conn.queue(&Reply::BlockSums {
            md5s: chunk.to_vec(),
        })?;
    }
    let still = out.file.metadata().map(|m| Stamp::of(&m)).ok();
    if still == Some(out.before) {
        local.hashes.blocks.put(name, out.before, list.into());
    }
    Ok(md5)
}
