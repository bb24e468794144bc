//! Downloading a big file by blocks (`docs/blocks.md`): only the blocks this box does not hold
//! cross the wire.
//!
//! ```text
//!   blocks { path }          ->
//!                            <-   block_list { entry, block_size }
//!                            <-   block_sums { md5s } …   each block's MD5, in chunks
//!                            <-   trailer { md5 }         the whole file's
//!   plan each block: kept in the partial file / copied from a file here / from the peer
//!   range { path, md5, first, count } × a few ahead  ->
//!                            <-   range { first, count, size }, raw bytes, trailer { md5 }
//!   assemble in order into .minibox/partial/, every block checked, the whole file hashed on
//!   the way (a second core); then installed like any download
//! ```

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::connect::unexpected;
use super::download::{check_header, Progress};
use super::range::{pour, runs, Ranges};
use crate::local::install::{install, sink_for, TempFile};
use crate::local::partial::Partial;
use crate::local::reuse::{candidates, plan, Candidate, Source};
use crate::local::sink::{Sink, BUFFER};
use crate::local::LocalBox;
use crate::protocol::blocks::{block_count, block_size, BlockList, MAX_BLOCKS};
use crate::protocol::error::{Error, Result};
use crate::protocol::md5::Md5;
use crate::protocol::message::{Entry, ErrorCode, Reply, Request};
use crate::protocol::name::check_name;
use crate::wire::conn::Connection;

/// A file's block list as the peer sent it.
#[derive(Debug)]
pub struct Listed {
    /// The file, with its MD5.
    pub entry: Entry,
    /// Its blocks.
    pub list: BlockList,
    /// The whole file's MD5.
    pub md5: Md5,
}

/// Where the bytes of a download by blocks came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// File bytes received from the peer.
    pub received: u64,
    /// File bytes taken from this box (a partial download, this or another file).
    pub reused: u64,
}

/// A file fetched by blocks, verified, not installed yet.
pub struct Fetched {
    /// The assembled file.
    pub tmp: TempFile,
    /// Its entry, with its MD5.
    pub entry: Entry,
    /// Its blocks (worth remembering under the installed file's stamp).
    pub list: Arc<BlockList>,
    /// Where its bytes came from.
    pub tally: Tally,
}

/// Asks for the block list of `name`.
///
/// # Errors
/// The peer's error (`bad_request` from a peer that does not know `blocks`), a list that does
/// not fit the file's size, or a broken connection.
pub fn block_list(conn: &mut Connection, name: &str) -> Result<Listed> {
    check_name(name)?;
    conn.send(&Request::Blocks {
        path: name.to_string(),
    })?;
    let (entry, size) = loop {
        match conn.recv::<Reply>()? {
            Reply::Working { .. } => {}
            Reply::BlockList { entry, block_size } => {
                break (check_header(entry, name)?, block_size)
            }
            other => return Err(unexpected(other)),
        }
    };
    let count = block_count(entry.size);
    if size != block_size(entry.size) || count > MAX_BLOCKS {
        let why = format!("the block list of {name} does not fit its size");
        return Err(Error::Protocol(why));
    }
    let (md5s, md5) = receive_sums(conn, name, count)?;
    let list = BlockList::new(entry.size, md5s)
        .ok_or_else(|| Error::Protocol(format!("the block list of {name} is short")))?;
    if entry.md5.as_deref().is_some_and(|m| m.parse() != Ok(md5)) {
        let why =
            format!("{name} did not verify (two MD5s for one version); nothing was installed");
        return Err(Error::Verify(why));
    }
    let entry = Entry {
        md5: Some(md5.to_string()),
        ..entry
    };
    Ok(Listed { entry, list, md5 })
}

/// Reads the chunks of block MD5s (at most `count`: memory only for what the size promised)
/// and the trailer.
fn receive_sums(conn: &mut Connection, name: &str, count: u64) -> Result<(Vec<Md5>, Md5)> {
    let mut md5s = Vec::new();
    loop {
        match conn.recv::<Reply>()? {
            Reply::Working { .. } => {}
            Reply::BlockSums { md5s: chunk } if (md5s.len() + chunk.len()) as u64 <= count => {
                md5s.extend(chunk);
            }
            Reply::BlockSums { .. } => {
                let why = format!("the block list of {name} has more blocks than its size");
                return Err(Error::Protocol(why));
            }
            Reply::Trailer { md5 } => {
                let md5 = md5.parse().map_err(|e| Error::Protocol(format!("{e}")))?;
                return Ok((md5s, md5));
            }
            other => return Err(unexpected(other)),
        }
    }
}

/// Attempts of [`download_by_blocks`] while the peer's file is replaced under it.
const ATTEMPTS: usize = 3;

/// Downloads `name` by blocks into this box under the same name, verifies it, installs it
/// (the shell's `download TCP` when the box has a version of the file); returns the installed
/// entry with its MD5. A file replaced on the peer between two requests is asked for again
/// (what arrived of it stays, for the blocks the new version shares).
///
/// # Errors
/// As [`fetch_by_blocks`], and those of the install.
pub fn download_by_blocks(
    conn: &mut Connection,
    local: &LocalBox,
    name: &str,
    progress: Progress<'_>,
) -> Result<Entry> {
    let mut attempt = 1;
    let fetched = loop {
        match fetch_by_blocks(conn, local, name, name, None, progress) {
            Err(Error::Remote {
                code: ErrorCode::Busy,
                ..
            }) if attempt < ATTEMPTS => attempt += 1,
            other => break other?,
        }
    };
    if let Some(stamp) = install(local, fetched.tmp, &fetched.entry)? {
        local.hashes.blocks.put(name, stamp, fetched.list);
    }
    Ok(fetched.entry)
}

/// Fetches the peer's file `name` by blocks as the new version of this box's `to` (see the
/// module docs), verified, not installed. With `want`, only that version (by MD5) is fetched.
///
/// # Errors
/// [`Error::Remote`] (`changed`) if the peer has another version than `want` or its file changes
/// meanwhile; [`Error::Verify`] if a block or the whole file does not match; a broken connection.
/// The partial download stays to be resumed, except after a verification failure or on a full
/// disk.
pub fn fetch_by_blocks(
    conn: &mut Connection,
    local: &LocalBox,
    name: &str,
    to: &str,
    want: Option<Md5>,
    progress: Progress<'_>,
) -> Result<Fetched> {
    let listed = block_list(conn, name)?;
    if want.is_some_and(|w| w != listed.md5) {
        let why = format!("{name} changed on the peer since it was listed");
        return Err(Error::Remote {
            code: ErrorCode::Changed,
            message: why,
        });
    }
    let mut partial = Partial::open(&local.partial_dir(), to, &listed.list)?;
    let mut here = candidates(local, to, &listed.list);
    let sources = plan(&listed.list, &|i| partial.holds(i), &here);
    let mut job = Job {
        local,
        listed: &listed,
        partial: &mut partial,
        here: &mut here,
        tally: Tally::default(),
    };
    let assembled = job.assemble(conn, &sources, progress);
    let tally = job.tally;
    match assembled {
        Ok(md5) if md5 == listed.md5 => {
            let path = local.temp_path_in(None);
            let file = partial.into_file(&path)?;
            let tmp = TempFile::adopt(path, file);
            let (entry, list) = (listed.entry, Arc::new(listed.list));
            Ok(Fetched {
                tmp,
                entry,
                list,
                tally,
            })
        }
        Ok(got) => {
            partial.discard();
            Err(Error::Verify(format!(
                "{name} did not verify (assembled MD5 {got}, the peer sent {}); nothing was installed",
                listed.md5
            )))
        }
        Err(e) => {
            // Blocks that lie or a source that moved are worth nothing; on a full disk, the
            // space the partial file takes is worth more to the other files than a resume.
            if matches!(e, Error::Verify(_) | Error::LocalChange(_)) || e.is_disk_full() {
                partial.discard();
            }
            Err(e)
        }
    }
}

/// One assembly in progress.
struct Job<'j> {
    local: &'j LocalBox,
    listed: &'j Listed,
    partial: &'j mut Partial,
    here: &'j mut [Candidate],
    tally: Tally,
}

impl Job<'_> {
    /// Writes every block in order into the partial file through a sink that hashes the whole
    /// file on the way; returns its MD5. On failure, what was verified stays listed.
    fn assemble(
        &mut self,
        conn: &mut Connection,
        sources: &[Source],
        progress: Progress<'_>,
    ) -> Result<Md5> {
        let listed = self.listed;
        let (list, name) = (&listed.list, listed.entry.path.as_str());
        let path = self.partial.path().to_path_buf();
        let disk = |e| Error::io(&path, e);
        let file = self.partial.file().try_clone().map_err(disk)?;
        let mut sink = sink_for(&file, &path, list.size).map_err(disk)?;
        let mut ranges = Ranges::new(name, self.listed.md5, list, runs(list, sources));
        let walked = self.walk(conn, &mut ranges, &mut *sink, sources, progress);
        // What was poured goes to disk, and what is on disk is listed, whatever happened.
        let md5 = sink.finish();
        let _ = self.partial.save(u64::MAX);
        if let Err(e) = walked {
            if !e.is_peer_unavailable() && ranges.drain(conn).is_err() {
                let why = format!("the connection is out of step after: {e}");
                return Err(Error::Protocol(why));
            }
            return Err(e);
        }
        ranges.finish(conn)?;
        if !self.here.iter().all(Candidate::held_still) {
            let why = format!("a file {name} was copied from changed here; nothing was installed");
            return Err(Error::LocalChange(why));
        }
        file.set_len(list.size).map_err(disk)?;
        md5.map_err(disk)
    }

    /// Every block, in order, from where the plan says.
    fn walk(
        &mut self,
        conn: &mut Connection,
        ranges: &mut Ranges<'_>,
        sink: &mut dyn Sink,
        sources: &[Source],
        progress: Progress<'_>,
    ) -> Result<()> {
        let list = &self.listed.list;
        let mut i = 0;
        while i < list.len() {
            let at = list.range(i).start;
            progress(at, list.size);
            ranges.ask(conn, at)?;
            let partial = &mut *self.partial;
            // Each block that arrived is listed once the sink has written it: a download killed
            // in the middle of a long run keeps what it had.
            let mut done = |j: usize, md5: Md5, end: u64| {
                partial.verified(j, md5, end);
                let _ = partial.save(end.saturating_sub(BUFFER as u64));
            };
            i += match sources[i] {
                Source::Peer => {
                    let count = ranges.receive(conn, sink, &mut done)?;
                    self.tally.received += list.span(i as u64, count).end - at;
                    count as usize
                }
                Source::Partial(from) => self.copy(sink, i, None, from)?,
                Source::File(f, from) => self.copy(sink, i, Some(f), from)?,
            };
            let written = list
                .range(i.min(list.len()))
                .start
                .saturating_sub(BUFFER as u64);
            let _ = self.partial.save(written);
        }
        progress(list.size, list.size);
        Ok(())
    }

    /// Copies block `i` from this box: the partial file (`None`) or candidate `f`, at `from`.
    fn copy(
        &mut self,
        sink: &mut dyn Sink,
        i: usize,
        f: Option<usize>,
        from: u64,
    ) -> Result<usize> {
        let r = self.listed.list.range(i);
        let len = r.end - r.start;
        let source: &File = match f {
            None => self.partial.file(),
            Some(f) => self.here[f]
                .open(self.local)
                .map_err(|e| Error::LocalChange(format!("{e}; nothing was installed")))?,
        };
        let mut at = from;
        let read = |buf: &mut [u8]| {
            let mut n = source.read_at(buf, at)?;
            // An earlier block of this file that was all zeros is a hole the sink did not
            // write, maybe past the file's end for now: it reads as zeros. (The whole file is
            // checked against its MD5 before it is installed, whatever is read here.)
            if n == 0 && f.is_none() {
                buf.fill(0);
                n = buf.len();
            }
            at += n as u64;
            Ok(n)
        };
        pour(sink, len, read, None).map_err(|e| Error::io(self.partial.path(), e.into_io()))?;
        self.partial.verified(i, self.listed.list.md5s[i], r.end);
        self.tally.reused += len;
        Ok(1)
    }
}
