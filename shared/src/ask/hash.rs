//! Asking for one file's MD5 and metadata (`hash verify FILE`).

use super::connect::unexpected;
use crate::protocol::error::Result;
use crate::protocol::message::{Entry, Reply, Request};
use crate::protocol::name::check_name;
use crate::wire::conn::Connection;

/// Asks for the MD5 of `name`.
///
/// # Errors
/// A remote error (no such file, bad name) or a broken connection.
pub fn hash(conn: &mut Connection, name: &str) -> Result<Entry> {
    check_name(name)?;
    conn.send(&Request::Hash {
        path: name.to_string(),
    })?;
    loop {
        match conn.recv::<Reply>()? {
            // The peer is hashing a large file: it is still there.
            Reply::Working { .. } => {}
            Reply::Entry { entry } if entry.path == name && entry.md5.is_some() => {
                return Ok(entry)
            }
            other => return Err(unexpected(other)),
        }
    }
}
