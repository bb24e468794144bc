//! Stage 3 speed: fetching many files over one connection without waiting a round trip for
//! each. `scripts/bench.sh`, rows `first-sync-10k` and `edits-1pct`.
//!
//! Up to [`FETCH_WINDOW`] download requests are sent ahead, so the server always has the next
//! one in hand. (A request is a few dozen bytes, so the window always fits the socket buffers:
//! we never block on sending while the server blocks on replying.) The replies come in the order
//! of the requests. A small file comes back as its verified bytes ([`Body::Bytes`]): writing it is
//! left to whoever installs it, so that several threads can create files at once.
//!
//! A larger file goes to a temporary file as it arrives. If this box cannot store it (the disk
//! is full), the rest of its bytes are still read, and dropped: the replies behind it come on
//! the same connection, and a byte left over would be taken for the start of the next one.

use std::io::Write;

use super::download::{disk_error, receive_bytes, receive_header, receive_trailer, Unstored};
use crate::local::install::TempFile;
use crate::local::log::field;
use crate::local::LocalBox;
use crate::protocol::error::{Error, Result};
use crate::protocol::md5::Md5;
use crate::protocol::message::{Entry, Reply, Request};
use crate::protocol::name::check_name;
use crate::protocol::pace::PacedReader;
use crate::wire::conn::Connection;

/// What a listing said of a file: the header of its download must say the same. (A peer's
/// claims are held to each other: a file listed as 19 bytes and offered as 2^62 is refused
/// before a byte of it is read.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    /// The size listed.
    pub size: u64,
    /// The MD5 listed, if any.
    pub md5: Option<Md5>,
}

/// Checks a download's header against what the listing said of the file: the same size, and
/// the same MD5 when both carry one.
///
/// # Errors
/// [`Error::Protocol`] if they differ (the file changed since it was listed, or the peer lies;
/// either way these bytes are not the version asked for, and are not read).
pub fn check_listed(entry: &Entry, listed: &Listed) -> Result<()> {
    let offered = entry.md5.as_deref().and_then(|m| m.parse::<Md5>().ok());
    let md5_differs = matches!((offered, listed.md5), (Some(a), Some(b)) if a != b);
    if entry.size == listed.size && !md5_differs {
        return Ok(());
    }
    let (path, size, md5) = (
        &entry.path,
        entry.size,
        field(entry.md5.as_deref().unwrap_or("")),
    );
    Err(Error::Protocol(format!(
        "{path}: the download's header says {size} bytes (MD5 {md5}) but the listing said {} \
         bytes (MD5 {}); refused without reading it",
        listed.size,
        listed.md5.map(|m| m.to_string()).unwrap_or_default()
    )))
}

/// How many requests are kept ahead of the replies (topped up when half were answered, so that
/// requests leave in batches, not one per reply).
pub const FETCH_WINDOW: usize = 32;

/// Files up to this size come back in memory.
pub const IN_MEMORY: u64 = 64 * 1024;

/// The verified bytes of a fetched file.
pub enum Body {
    /// A small file's bytes, not written anywhere yet.
    Bytes(Vec<u8>),
    /// A temporary file holding them.
    File(TempFile),
}

impl Body {
    /// The bytes in a temporary file of `local` (in `lane`'s folder), written there if they are
    /// in memory.
    ///
    /// # Errors
    /// If the temporary file cannot be created or written.
    pub fn into_temp(self, local: &LocalBox, lane: Option<usize>) -> Result<TempFile> {
        match self {
            Body::File(tmp) => Ok(tmp),
            Body::Bytes(bytes) => {
                let mut tmp = TempFile::create(local, lane)?;
                let path = tmp.path().to_path_buf();
                tmp.file()
                    .write_all(&bytes)
                    .map_err(|e| Error::io(path, e))?;
                Ok(tmp)
            }
        }
    }
}

/// Fetches `files` (each name with what its listing said of it), pipelined. Each reply is
/// handed to `done` with its index as soon as it is in, with whether the next reply has begun to
/// arrive already (a caller that hands files on in batches waits for more while that is so). A
/// reply that leaves the connection in step (a verified file, the peer's error, bytes that did
/// not verify, a file this box could not store) lets the batch go on; anything else ends it (a
/// header that contradicts the listing among them: its bytes are not read), and `done` is not
/// called for the rest. Returns
/// how many were handed over.
pub fn fetch_many(
    conn: &mut Connection,
    local: &LocalBox,
    files: &[(&str, Listed)],
    done: &mut dyn FnMut(usize, Result<(Body, Entry)>, bool),
) -> usize {
    let names: Vec<&str> = files.iter().map(|(name, _)| *name).collect();
    // Names the name rules refuse are not asked for; they fail at their turn.
    let checks: Vec<_> = names.iter().map(|n| check_name(n)).collect();
    let mut sent = 0;
    for (i, (name, listed)) in files.iter().enumerate() {
        let result = match (ask_ahead(conn, &names, &checks, i, &mut sent), &checks[i]) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(refused)) => Err(Error::Path(refused.clone())),
            (Ok(()), Ok(())) => receive_body(conn, local, name, listed),
        };
        // A disk error comes back only once the file's bytes were read (and dropped).
        let in_step = matches!(
            result,
            Ok(_)
                | Err(Error::Remote { .. } | Error::Verify(_) | Error::Path(_) | Error::Io { .. })
        );
        done(i, result, in_step && conn.input_pending());
        if !in_step {
            return i + 1;
        }
    }
    files.len()
}

/// Tops the window of requests up, if half of it has been answered.
fn ask_ahead(
    conn: &mut Connection,
    names: &[&str],
    checks: &[std::result::Result<(), crate::protocol::name::PathError>],
    i: usize,
    sent: &mut usize,
) -> Result<()> {
    if *sent >= names.len() || *sent > i + FETCH_WINDOW / 2 {
        return Ok(());
    }
    while *sent < names.len() && *sent < i + FETCH_WINDOW {
        if checks[*sent].is_ok() {
            conn.queue(&Request::Download {
                path: names[*sent].to_string(),
            })?;
        }
        *sent += 1;
    }
    conn.flush()
}

/// Reads one reply of the batch: a small file's bytes in memory, a larger one into a
/// temporary file; a header that contradicts the listing, not at all.
fn receive_body(
    conn: &mut Connection,
    local: &LocalBox,
    name: &str,
    listed: &Listed,
) -> Result<(Body, Entry)> {
    let entry = receive_header(conn, name)?;
    check_listed(&entry, listed)?;
    if entry.size > IN_MEMORY {
        let (tmp, entry) = receive_rest_in_step(conn, local, entry)?;
        return Ok((Body::File(tmp), entry));
    }
    let mut bytes = vec![0u8; usize::try_from(entry.size).unwrap_or(0)];
    let mut from = PacedReader::new(conn.raw_reader(), entry.size);
    from.fill(&mut bytes)
        .map_err(|e| Error::net(format!("receiving {name}"), e))?;
    let entry = receive_trailer(conn, entry, Md5::of(&bytes))?;
    Ok((Body::Bytes(bytes), entry))
}

/// [`receive_rest`](super::download::receive_rest) for a connection that carries more replies
/// after this one: a file this box cannot store (no space left, no permission) does not leave
/// it out of step. The rest of the file's bytes and its trailer are read and dropped, and the
/// disk's error is returned: an [`Error::Io`] always means that the next reply can be read.
///
/// # Errors
/// As [`receive_rest`](super::download::receive_rest).
pub fn receive_rest_in_step(
    conn: &mut Connection,
    local: &LocalBox,
    entry: Entry,
) -> Result<(TempFile, Entry)> {
    let mut tmp = match TempFile::create(local, None) {
        Ok(tmp) => tmp,
        Err(e) => return skip_rest(conn, &entry, 0).and(Err(e)),
    };
    match receive_bytes(conn.raw_reader(), &mut tmp, entry.size, &mut |_, _| {}) {
        Ok(received) => Ok((tmp, receive_trailer(conn, entry, received)?)),
        Err(Unstored::Net(e)) => Err(Error::net(format!("receiving {}", entry.path), e)),
        Err(Unstored::Disk { read, error }) => {
            // Give the space back before anything else: the next files may need it.
            drop(tmp);
            skip_rest(conn, &entry, read).and(Err(disk_error(local, &entry, error)))
        }
    }
}

/// Reads and drops what is left of `entry`'s bytes after the first `read`, and the reply that
/// follows them (its trailer, or the peer's error): the connection is in step again.
fn skip_rest(conn: &mut Connection, entry: &Entry, read: u64) -> Result<()> {
    let left = entry.size.saturating_sub(read);
    let mut from = PacedReader::new(conn.raw_reader(), left);
    let mut scratch = vec![0u8; usize::try_from(left).map_or(SKIP_BUFFER, |n| n.min(SKIP_BUFFER))];
    while from.done() < left {
        from.read_some(&mut scratch)
            .map_err(|e| Error::net(format!("receiving {}", entry.path), e))?;
    }
    // Whatever the reply says, the file is not installed; only the framing matters now.
    conn.recv::<Reply>().map(drop)
}

/// The scratch buffer for bytes read only to be dropped.
const SKIP_BUFFER: usize = 64 * 1024;
