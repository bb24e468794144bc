//! Downloading a file over TCP: ask, receive the bytes into a temporary file through a writer
//! that hashes them, check the MD5 against the server's, install.
//!
//! ```text
//!   download { path }        ->
//!                            <-   file { entry }          the header: size, mtime, bits, …
//!                            <-   <size raw bytes>        into .minibox/tmp/, hashed on the way
//!                            <-   trailer { md5 }         verified: the MD5s match
//!   then: mtime and bits set, the old file to the trash, the new one renamed into place
//! ```

use std::io::{self, Read};

use super::connect::unexpected;
use super::patience::{answer, Patience};
use crate::local::install::{install, TempFile};
use crate::local::log::field;
use crate::local::LocalBox;
use crate::protocol::error::{Error, Result};
use crate::protocol::md5::Md5;
use crate::protocol::message::{Entry, Kind, Reply, Request};
use crate::protocol::name::check_name;
use crate::protocol::pace::PacedReader;
use crate::wire::conn::Connection;

/// Receives a progress report: bytes done so far, bytes in all.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Downloads `name` over TCP into `local`, verifies it, installs it; returns the installed entry
/// with its MD5.
///
/// # Errors
/// A refused name (before anything is sent), a remote error, a failed verification or a broken
/// connection; in every case nothing is installed.
pub fn download_tcp(
    conn: &mut Connection,
    local: &LocalBox,
    name: &str,
    progress: Progress<'_>,
) -> Result<Entry> {
    let (tmp, entry) = fetch_tcp(conn, local, name, progress)?;
    install(local, tmp, &entry)?;
    Ok(entry)
}

/// The first half of [`download_tcp`]: receives and verifies, installs nothing (a sync round
/// first checks that this is the version it wanted).
///
/// # Errors
/// As [`download_tcp`]; the temporary file is removed in every failure case.
pub fn fetch_tcp(
    conn: &mut Connection,
    local: &LocalBox,
    name: &str,
    progress: Progress<'_>,
) -> Result<(TempFile, Entry)> {
    check_name(name)?;
    conn.send(&Request::Download {
        path: name.to_string(),
    })?;
    let entry = receive_header(conn, name)?;
    receive_rest(conn, local, entry, progress)
}

/// Reads the header of a download of `name` (after `working` frames while the file is locked).
///
/// # Errors
/// The peer's error, a header for another file, or a server that stalls.
pub fn receive_header(conn: &mut Connection, name: &str) -> Result<Entry> {
    match answer(conn, &mut Patience::new())? {
        Reply::File { entry } => check_header(entry, name),
        other => Err(unexpected(other)),
    }
}

/// The bytes and the trailer of a download whose header said `entry`, into a temporary file.
///
/// # Errors
/// A broken connection, a disk error, or bytes that do not verify.
pub fn receive_rest(
    conn: &mut Connection,
    local: &LocalBox,
    entry: Entry,
    progress: Progress<'_>,
) -> Result<(TempFile, Entry)> {
    let mut tmp = TempFile::create(local, None)?;
    match receive_bytes(conn.raw_reader(), &mut tmp, entry.size, progress) {
        Ok(received) => Ok((tmp, receive_trailer(conn, entry, received)?)),
        Err(Unstored::Net(e)) => Err(Error::net(format!("receiving {}", entry.path), e)),
        Err(Unstored::Disk { error, .. }) => Err(disk_error(local, &entry, error)),
    }
}

/// A local write error, said of the file the user knows (not of its temporary file).
pub fn disk_error(local: &LocalBox, entry: &Entry, error: io::Error) -> Error {
    Error::io(local.root().join(&entry.path), error)
}

/// Why a file's bytes did not all land in its temporary file.
#[derive(Debug)]
pub enum Unstored {
    /// The connection failed, or the peer was too slow: nothing more can be read on it.
    Net(io::Error),
    /// This box could not write them (no space left, …) once `read` bytes had arrived; the
    /// rest are still on their way.
    Disk {
        /// Bytes read from the connection so far.
        read: u64,
        /// What the disk said.
        error: io::Error,
    },
}

/// Reads exactly `size` bytes into `tmp` through a sink that hashes them on the way; returns
/// their MD5. The reader watches the pace: a server that sends a trickle is given up on.
///
/// # Errors
/// [`Unstored::Net`] if the stream ends early or is too slow, [`Unstored::Disk`] if the disk
/// fails.
pub fn receive_bytes(
    from: &mut impl Read,
    tmp: &mut TempFile,
    size: u64,
    progress: Progress<'_>,
) -> std::result::Result<Md5, Unstored> {
    let disk = |read| move |error| Unstored::Disk { read, error };
    let mut sink = tmp.sink(size).map_err(disk(0))?;
    let mut from = PacedReader::new(from, size);
    progress(0, size);
    while from.done() < size {
        let n = from.read_some(sink.spare()).map_err(Unstored::Net)?;
        sink.filled(n).map_err(disk(from.done()))?;
        progress(from.done(), size);
    }
    sink.finish().map_err(disk(size))
}

/// Reads the trailer after a file's bytes and checks it against `received`, their MD5.
///
/// # Errors
/// See [`verify`].
pub fn receive_trailer(conn: &mut Connection, entry: Entry, received: Md5) -> Result<Entry> {
    let md5 = verify(&entry, received, conn.recv::<Reply>()?)?;
    Ok(Entry {
        md5: Some(md5.to_string()),
        ..entry
    })
}

/// Checks that a transfer header describes the file we asked for.
///
/// # Errors
/// [`Error::Protocol`] if it does not.
pub fn check_header(entry: Entry, name: &str) -> Result<Entry> {
    if entry.path != name || entry.kind != Kind::File {
        let (path, kind) = (&entry.path, entry.kind);
        return Err(Error::Protocol(format!(
            "asked for {name} but the peer offered {path} ({kind:?})"
        )));
    }
    Ok(entry)
}

/// Compares what we received with what the server says it sent: the trailer's MD5, and the one
/// in the header if the server knew it up front. Returns the verified MD5.
///
/// # Errors
/// [`Error::Verify`] on any mismatch; [`Error::Remote`] (`changed`) when the server says the
/// file changed while it was sent.
pub fn verify(entry: &Entry, received: Md5, trailer: Reply) -> Result<Md5> {
    let sent = match trailer {
        Reply::Trailer { md5 } => md5,
        // The server's own verdict (the file changed while it read it) is its error reply.
        other => return Err(unexpected(other)),
    };
    let announced = entry.md5.as_deref().unwrap_or(&sent);
    let matches = |text: &str| text.parse::<Md5>().is_ok_and(|m| m == received);
    if !matches(&sent) || !matches(announced) {
        let (name, sent) = (&entry.path, field(&sent));
        return Err(Error::Verify(format!(
            "{name} did not verify (received MD5 {received}, the peer sent {sent}); nothing was installed"
        )));
    }
    Ok(received)
}
