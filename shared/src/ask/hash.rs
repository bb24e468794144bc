//! Asking for one file's MD5 and metadata (`hash verify FILE`). A large file the server never
//! read takes it a while: it says so, and its progress is held to [`Patience`].

use super::connect::unexpected;
use super::patience::{answer, Patience};
use crate::protocol::error::Result;
use crate::protocol::message::{Entry, Reply, Request};
use crate::protocol::name::check_name;
use crate::wire::conn::Connection;

/// Asks for the MD5 of `name`.
///
/// # Errors
/// A remote error (no such file, bad name), a server that stalls, or a broken connection.
pub fn hash(conn: &mut Connection, name: &str) -> Result<Entry> {
    check_name(name)?;
    conn.send(&Request::Hash {
        path: name.to_string(),
    })?;
    match answer(conn, &mut Patience::new())? {
        Reply::Entry { entry } if entry.path == name && entry.md5.is_some() => Ok(entry),
        other => Err(unexpected(other)),
    }
}
