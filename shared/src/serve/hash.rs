//! `hash`: one file's MD5 and metadata (`hash verify FILE`).

use super::failure::Failure;
use super::keep_alive::KeepAlive;
use super::outgoing::{open_regular, read_lock};
use crate::local::scan::{entry_of, Stamp};
use crate::local::LocalBox;
use crate::protocol::message::{Entry, ErrorCode, Reply};
use crate::wire::conn::Connection;

/// Answers a hash request; returns the log summary.
///
/// # Errors
/// A reply for a missing, refused, busy or unreadable file; a broken connection.
pub fn answer(conn: &mut Connection, local: &LocalBox, path: &str) -> Result<String, Failure> {
    // The read lock keeps an install of this name from swapping the file between the metadata
    // and the MD5 we report: both describe one version.
    let _guard = read_lock(conn, local, path)?;
    let (file, meta) = open_regular(local, path)?;
    // A large file not hashed before takes a while: say so now and then, with the bytes read.
    let mut alive = KeepAlive::new(meta.len());
    let mut tell = |done, _| {
        let gone = |_| std::io::Error::other("the client went away");
        alive.tick(conn, done).map_err(gone)
    };
    let md5 = local
        .hashes
        .md5_of_open(path, &file, Stamp::of(&meta), &mut tell);
    let md5 = md5.map_err(|e| Failure::Reply(ErrorCode::Io, format!("cannot read {path}: {e}")))?;
    let entry = Entry {
        md5: Some(md5.to_string()),
        ..entry_of(path, &meta)
    };
    // Queued: the session logs the request, then flushes (see `list`).
    conn.queue(&Reply::Entry { entry })?;
    Ok(format!("md5 {md5}"))
}
