//! A file on its way out (over TCP or UDP): opened under its read lock through the path gate,
//! and checked at the end, so that a file that changed while it was sent is not vouched for.

use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::time::Instant;

use super::failure::Failure;
use super::keep_alive::KeepAlive;
use crate::local::gate::{open_in_box, ResolveError};
use crate::local::locks::ReadGuard;
use crate::local::scan::{entry_of, Stamp};
use crate::local::LocalBox;
use crate::protocol::error::{os_words, Error};
use crate::protocol::limits::{IDLE_TIMEOUT, KEEP_ALIVE};
use crate::protocol::md5::Md5;
use crate::protocol::message::{Entry, ErrorCode, Reply};
use crate::protocol::name::PathError;
use crate::wire::conn::Connection;

/// A file opened for sending, with what tells at the end whether it changed meanwhile.
pub struct Outgoing<'a> {
    /// The read lock, held until the transfer ends: an install of the name waits.
    _guard: ReadGuard<'a>,
    /// The open file.
    pub file: File,
    /// Its entry; `md5` is set when the stat cache knew it.
    pub entry: Entry,
    /// The MD5 the stat cache knew, if any.
    pub known: Option<Md5>,
    /// Its stamp when opened.
    pub before: Stamp,
}

impl<'a> Outgoing<'a> {
    /// Opens the file `name` of the box for sending (telling the client on `conn` if it has to
    /// wait for the file's lock).
    ///
    /// # Errors
    /// A reply for the client when the file is busy, refused or missing; a broken connection.
    pub fn open(conn: &mut Connection, local: &'a LocalBox, name: &str) -> Result<Self, Failure> {
        let guard = read_lock(conn, local, name)?;
        let (file, meta) = open_regular(local, name)?;
        let before = Stamp::of(&meta);
        let known = local.hashes.get(&before);
        let entry = Entry {
            md5: known.map(|m| m.to_string()),
            ..entry_of(name, &meta)
        };
        Ok(Outgoing {
            _guard: guard,
            file,
            entry,
            known,
            before,
        })
    }

    /// Ends the transfer: the trailer with `md5` if every byte was read and the file still has
    /// the stamp it had when opened (the MD5 goes to the cache), otherwise a `changed` error,
    /// so that the client installs nothing. Queued, not flushed. Returns the log summary.
    ///
    /// # Errors
    /// If the connection breaks.
    pub fn finish(
        &self,
        conn: &mut Connection,
        local: &LocalBox,
        md5: Md5,
        complete: bool,
    ) -> Result<String, Failure> {
        // Ask the open file, not the name: a write into it shows in its stamp; a new file
        // renamed over the name does not matter (what we read is the old one, whole).
        let after = self.file.metadata().map(|m| Stamp::of(&m)).ok();
        if !complete || after != Some(self.before) {
            let name = &self.entry.path;
            let why = format!("{name} changed while it was being sent; nothing was installed");
            conn.queue(&Reply::error(ErrorCode::Changed, why))?;
            return Ok("but the file changed during the transfer".into());
        }
        local.hashes.put(self.before, md5);
        conn.queue(&Reply::Trailer {
            md5: md5.to_string(),
        })?;
        Ok(format!("{} bytes", self.entry.size))
    }
}

/// Takes the read lock of `name`, waiting at most [`IDLE_TIMEOUT`] for an install to finish,
/// and saying every [`KEEP_ALIVE`] meanwhile that the answer is on its way (`working`, nothing
/// to count: a client that waits for real progress knows we answer within the idle timeout).
///
/// # Errors
/// A "busy" reply if the file stays locked; a broken connection.
pub fn read_lock<'a>(
    conn: &mut Connection,
    local: &'a LocalBox,
    name: &str,
) -> Result<ReadGuard<'a>, Failure> {
    let deadline = Instant::now() + IDLE_TIMEOUT;
    let mut waiting = KeepAlive::new(0);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(guard) = local.locks.read(name, left.min(KEEP_ALIVE)) {
            return Ok(guard);
        }
        if left <= KEEP_ALIVE {
            let why = format!("{name} is busy being written; try again");
            return Err(Failure::Reply(ErrorCode::Busy, why));
        }
        waiting.tick(conn, 0)?;
    }
}

/// Opens a regular file of the box for reading, through the path gate (never a plain `open`:
/// a FIFO in the box would block this thread, in stage 1 the whole server).
///
/// # Errors
/// A reply for the client when the name is refused or the file is missing.
pub fn open_regular(local: &LocalBox, name: &str) -> Result<(File, Metadata), Failure> {
    open_in_box(local.root(), name).map_err(|e| match e {
        ResolveError::Io(e) => cannot_open(local, name, &e),
        refused => refused.into(),
    })
}

/// The reply for a file of the box that could not be opened.
fn cannot_open(local: &LocalBox, name: &str, e: &io::Error) -> Failure {
    let not_found = || {
        Failure::Reply(
            ErrorCode::NotFound,
            format!("{name}: no such file in the box"),
        )
    };
    if fs::symlink_metadata(local.root().join(name)).is_ok_and(|m| m.is_dir()) {
        return Failure::Reply(
            ErrorCode::NotFound,
            format!("{name} is a folder, not a file; index regex ^{name}/ lists what is in it"),
        );
    }
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::InvalidInput => not_found(),
        // "Not a directory" (`a.txt/b`) and the like: if nothing is there, it is not found.
        _ if fs::symlink_metadata(local.root().join(name)).is_err() => not_found(),
        // A link swapped in after the gate looked: the kernel refused to follow it.
        _ if e.raw_os_error() == Some(libc::ELOOP) => Failure::Reply(
            ErrorCode::BadPath,
            PathError::Symlink(name.to_string()).to_string(),
        ),
        _ => Failure::Reply(
            ErrorCode::Io,
            format!("cannot read {name}: {}", os_words(e)),
        ),
    }
}

/// Writes `count` zero bytes.
///
/// # Errors
/// If the socket fails.
pub fn pad(out: &mut impl Write, mut count: u64) -> Result<(), Failure> {
    let zeros = [0u8; 8192];
    while count > 0 {
        let n = count.min(zeros.len() as u64) as usize;
        out.write_all(&zeros[..n]).map_err(sending)?;
        count -= n as u64;
    }
    Ok(())
}

/// A socket error while sending file data.
pub fn sending(e: io::Error) -> Failure {
    Failure::Connection(Error::net("sending file data", e))
}
