//! `download`: a file over this TCP connection. A header frame announces the entry, exactly
//! `size` raw bytes follow, then a trailer frame with the MD5 of the bytes read, or a `changed`
//! error if the file changed on the way.

use std::fs::File;
use std::io::{self, Read, Write};

use super::failure::Failure;
use super::fast;
use super::outgoing::{pad, sending, Outgoing};
use crate::local::LocalBox;
use crate::protocol::error::Error;
use crate::protocol::md5::{Hasher, Md5, BUF_SIZE};
use crate::protocol::message::Reply;
use crate::protocol::pace::PacedWriter;
use crate::wire::conn::Connection;

/// Sends one file; returns the log summary.
///
/// # Errors
/// A reply for a missing, refused or busy file; a broken connection.
pub fn answer(conn: &mut Connection, local: &LocalBox, name: &str) -> Result<String, Failure> {
    let out = Outgoing::open(conn, local, name)?;
    // Speed, skippable: a small file goes out from memory, one whose MD5 is known by sendfile.
    if let Some(sent) = fast::send(conn, local, &out) {
        return sent;
    }
    conn.send(&Reply::File {
        entry: out.entry.clone(),
    })?;
    // Every byte goes through a writer that watches the pace: a client that reads a trickle is
    // dropped like one that reads nothing. The MD5 is computed on the way, in the same pass.
    let size = out.entry.size;
    let mut socket = PacedWriter::new(conn.raw_writer()?);
    let (md5, copied) = copy_hashing(&out.file, &mut socket, size)?;
    if copied < size {
        // The file shrank under us: the client expects `size` bytes, so pad, then say so.
        pad(&mut socket, size - copied)?;
    }
    out.finish(conn, local, md5, copied == size)
}

/// Copies up to `limit` bytes of `file` to `out`, hashing them; returns the MD5 and the count.
fn copy_hashing(mut file: &File, out: &mut impl Write, limit: u64) -> Result<(Md5, u64), Failure> {
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut done = 0u64;
    while done < limit {
        let want = usize::try_from(limit - done).map_or(BUF_SIZE, |n| n.min(BUF_SIZE));
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("file being sent", e).into()),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(sending)?;
        done += n as u64;
    }
    Ok((hasher.digest(), done))
}
