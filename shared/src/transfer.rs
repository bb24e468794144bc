//! The client side of every request, and the atomic install of a downloaded file.
//!
//! A download is never written under its real name while bytes are arriving. It goes to a fresh
//! temporary file inside `.minibox/tmp/` (same file system, so the final step can be a rename), is
//! hashed *while* it is received (one pass over the bytes), and is checked against the MD5 the
//! server sends after the data. Only a verified file gets the source's mtime and permission bits
//! and is renamed into place; an existing file of that name goes to `.minibox/trash/` first. A
//! rename is atomic: a reader sees the old file or the new one, never a mix, and a process killed
//! at any point leaves at worst a stray temporary file, removed at the next start.

use std::collections::HashSet;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::conn::Connection;
use crate::error::{Error, Result};
use crate::hash::{Md5, Stamp};
use crate::index::MODE_MASK;
use crate::local::LocalBox;
use crate::paths::{self, ResolveError};
use crate::protocol::{Entry, Filter, FolderSum, Kind, Reply, Request};
use crate::sink::FileSink;
use crate::IDLE_TIMEOUT;

/// The most entries a listing may have. A peer announcing more is refused rather than allowed to
/// fill our memory.
pub const MAX_LISTING: u64 = 500_000;

/// Receives a progress report: bytes done so far, bytes in all.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Asks for a listing and collects it. Every name is checked by the path gate: a peer that
/// announces `../x` is refused outright.
///
/// # Errors
/// A remote error (bad regex), a refused name, or a broken connection.
pub fn list(
    conn: &mut Connection,
    filter: Filter,
    hashes: bool,
    folders: bool,
) -> Result<Vec<Entry>> {
    conn.send(&Request::List {
        filter,
        hashes,
        folders,
    })?;
    let mut entries = Vec::new();
    receive_listing(conn, folders, &[], &mut |e| entries.push(e))?;
    Ok(entries)
}

/// Asks for the listing of a sync round ([`Request::SyncList`]), telling the peer the digests
/// of the folders we believe we know. Each entry is handed to `each` as it arrives (a listing of
/// 100,000 entries never sits in memory as entries). Returns the folders the peer says are as
/// we believe: their entries are not sent. Names are checked as for [`list`].
///
/// # Errors
/// A refused name, a peer that names a folder we did not ask about, or a broken connection.
pub fn sync_list(
    conn: &mut Connection,
    known: Vec<FolderSum>,
    each: &mut dyn FnMut(Entry),
) -> Result<Vec<String>> {
    let names: Vec<String> = known.iter().map(|k| k.folder.clone()).collect();
    conn.send(&Request::SyncList { known })?;
    receive_listing(conn, true, &names, each)
}

/// Reads the [`Reply::Entries`] and [`Reply::Same`] chunks of a listing up to its
/// [`Reply::End`]. `known` are the folders the request named (a peer may only say of those that
/// they are the same).
fn receive_listing(
    conn: &mut Connection,
    folders: bool,
    known: &[String],
    each: &mut dyn FnMut(Entry),
) -> Result<Vec<String>> {
    let known: HashSet<&str> = known.iter().map(String::as_str).collect();
    let mut count = 0u64;
    let mut same = Vec::new();
    loop {
        match conn.recv::<Reply>()? {
            Reply::Entries { entries: chunk } => {
                if count + chunk.len() as u64 > MAX_LISTING {
                    return Err(Error::Protocol(format!(
                        "the peer's listing has more than {MAX_LISTING} entries"
                    )));
                }
                for e in &chunk {
                    paths::check_name(&e.path)?;
                    if !folders && e.kind == Kind::Dir {
                        return Err(Error::Protocol(format!(
                            "unexpected folder {} in a file listing",
                            e.path
                        )));
                    }
                }
                count += chunk.len() as u64;
                chunk.into_iter().for_each(&mut *each);
            }
            // The peer is busy hashing: it is still there.
            Reply::Working { .. } => {}
            Reply::Same { folders } => {
                if let Some(stranger) = folders.iter().find(|f| !known.contains(f.as_str())) {
                    return Err(Error::Protocol(format!(
                        "the peer says it has folder {} as we know it, which we did not ask about",
                        crate::activity::field(stranger)
                    )));
                }
                same.extend(folders);
            }
            Reply::End { count: announced } if announced == count => return Ok(same),
            Reply::End { count: announced } => {
                return Err(Error::Protocol(format!(
                    "the listing announced {announced} entries but carried {count}"
                )))
            }
            other => return Err(unexpected(other)),
        }
    }
}

/// Asks for one file's MD5 and metadata.
///
/// # Errors
/// A remote error (no such file, bad name) or a broken connection.
pub fn hash(conn: &mut Connection, name: &str) -> Result<Entry> {
    paths::check_name(name)?;
    conn.send(&Request::Hash {
        path: name.to_string(),
    })?;
    loop {
        match conn.recv::<Reply>()? {
            Reply::Working { .. } => {}
            Reply::Entry { entry } if entry.path == name && entry.md5.is_some() => {
                return Ok(entry)
            }
            other => return Err(unexpected(other)),
        }
    }
}

/// Turns a reply we did not expect into an error (a remote error keeps its code and sentence).
pub fn unexpected(reply: Reply) -> Error {
    match reply {
        Reply::Error { code, message } => Error::Remote { code, message },
        other => Error::Protocol(format!("unexpected reply {other:?}")),
    }
}

/// Downloads `name` over TCP into `local`, verifies it, installs it. Returns the installed entry
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

/// The first half of [`download_tcp`]: receives `name` into a temporary file and verifies it, but
/// installs nothing. Returns the file and the verified entry (with its MD5), so that a caller can
/// decide whether this is the version it wanted before calling [`install`] (a sync round does:
/// it installs only the version it planned on).
///
/// # Errors
/// As [`download_tcp`]; the temporary file is removed in every failure case.
pub fn fetch_tcp(
    conn: &mut Connection,
    local: &LocalBox,
    name: &str,
    progress: Progress<'_>,
) -> Result<(TempFile, Entry)> {
    paths::check_name(name)?;
    conn.send(&Request::Download {
        path: name.to_string(),
    })?;
    receive_file(conn, local, name, progress)
}

/// How many download requests [`fetch_many`] keeps ahead of the replies. It tops the window up
/// when half of it has been answered, so that requests leave in batches, not one per reply.
pub const FETCH_WINDOW: usize = 32;

/// Fetches many files over one connection, as [`fetch_tcp`] each, but *pipelined*: up to
/// [`FETCH_WINDOW`] requests are sent ahead, so the server always has the next request in hand
/// and the connection never sits idle for a round trip between two files. (A request is a few
/// dozen bytes, so the window always fits the socket buffers: we never block on sending while
/// the server blocks on replying.) The replies come in the order of the requests; each one is
/// handed to `done` with its index in `names` as soon as it is in, and whether the next reply has
/// already begun to arrive (its first bytes are read into our buffer): a caller that hands files
/// on in batches can wait for more while that is so, and send what it holds when it is not.
///
/// A file of at most [`IN_MEMORY`] bytes comes back as its verified bytes ([`Body::Bytes`]):
/// writing it is left to whoever installs it, so that a caller can have several threads create
/// files (a file system creates files in different folders side by side). Larger files are
/// received into a temporary file, as [`fetch_tcp`] does.
///
/// A reply that leaves the connection in step (a verified file, the peer's error, bytes that did
/// not verify) lets the batch go on. Anything else (a broken connection, a reply out of place,
/// a local disk error in the middle of the bytes) ends it: `done` gets that error and is not
/// called for the rest. Returns how many names `done` was called for.
pub fn fetch_many(
    conn: &mut Connection,
    local: &LocalBox,
    names: &[&str],
    done: &mut dyn FnMut(usize, Result<(Body, Entry)>, bool),
) -> usize {
    // Names the path gate refuses are not asked for; they fail at their turn.
    let checks: Vec<_> = names.iter().map(|n| paths::check_name(n)).collect();
    let mut sent = 0;
    for (i, name) in names.iter().enumerate() {
        let mut ask = || -> Result<()> {
            if sent >= names.len() || sent > i + FETCH_WINDOW / 2 {
                return Ok(());
            }
            while sent < names.len() && sent < i + FETCH_WINDOW {
                if checks[sent].is_ok() {
                    conn.queue(&Request::Download {
                        path: names[sent].to_string(),
                    })?;
                }
                sent += 1;
            }
            conn.flush()
        };
        let result = match (ask(), &checks[i]) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(refused)) => Err(Error::Path(refused.clone())),
            (Ok(()), Ok(())) => receive_body(conn, local, name),
        };
        let in_step = matches!(
            result,
            Ok(_) | Err(Error::Remote { .. } | Error::Verify(_) | Error::Path(_))
        );
        done(i, result, in_step && conn.input_pending());
        if !in_step {
            return i + 1;
        }
    }
    names.len()
}

/// Files up to this size come back from [`fetch_many`] in memory.
pub const IN_MEMORY: u64 = 64 * 1024;

/// The verified bytes of a fetched file.
pub enum Body {
    /// A small file's bytes, not written anywhere yet.
    Bytes(Vec<u8>),
    /// A temporary file holding them.
    File(TempFile),
}

impl Body {
    /// The bytes in a temporary file of `local` (writing them there if they are in memory).
    ///
    /// # Errors
    /// If the temporary file cannot be created or written.
    pub fn into_temp(self, local: &LocalBox) -> Result<TempFile> {
        self.into_temp_in(local, None)
    }

    /// [`Body::into_temp`], writing into the temporary folder of `lane` (see
    /// [`LocalBox::temp_path_in`]).
    ///
    /// # Errors
    /// As [`Body::into_temp`].
    pub fn into_temp_in(self, local: &LocalBox, lane: Option<usize>) -> Result<TempFile> {
        match self {
            Body::File(tmp) => Ok(tmp),
            Body::Bytes(bytes) => {
                let mut tmp = TempFile::create_in(local, lane)?;
                let path = tmp.path.clone();
                tmp.file()
                    .write_all(&bytes)
                    .map_err(|e| Error::io(path, e))?;
                Ok(tmp)
            }
        }
    }
}

/// Reads the reply to a [`Request::Download`] of `name`: the header, the bytes into a temporary
/// file (hashed on the way), the trailer; verifies.
fn receive_file(
    conn: &mut Connection,
    local: &LocalBox,
    name: &str,
    progress: Progress<'_>,
) -> Result<(TempFile, Entry)> {
    let entry = receive_header(conn, name)?;
    receive_rest(conn, local, entry, progress)
}

/// The bytes and the trailer of a reply whose header said `entry`, into a temporary file.
fn receive_rest(
    conn: &mut Connection,
    local: &LocalBox,
    entry: Entry,
    progress: Progress<'_>,
) -> Result<(TempFile, Entry)> {
    let mut tmp = TempFile::create(local)?;
    let received = receive_temp(conn.raw_reader(), &mut tmp, entry.size, progress)
        .map_err(|e| Error::net(format!("receiving {}", entry.path), e))?;
    let entry = receive_trailer(conn, entry, received)?;
    Ok((tmp, entry))
}

/// [`receive_file`], keeping a small file's bytes in memory.
fn receive_body(conn: &mut Connection, local: &LocalBox, name: &str) -> Result<(Body, Entry)> {
    let entry = receive_header(conn, name)?;
    if entry.size > IN_MEMORY {
        let (tmp, entry) = receive_rest(conn, local, entry, &mut |_, _| {})?;
        return Ok((Body::File(tmp), entry));
    }
    let mut bytes = vec![0u8; usize::try_from(entry.size).unwrap_or(0)];
    read_paced(conn.raw_reader(), &mut bytes)
        .map_err(|e| Error::net(format!("receiving {name}"), e))?;
    let received = Md5::of(&bytes);
    let entry = receive_trailer(conn, entry, received)?;
    Ok((Body::Bytes(bytes), entry))
}

fn receive_header(conn: &mut Connection, name: &str) -> Result<Entry> {
    match conn.recv::<Reply>()? {
        Reply::File { entry } => check_header(entry, name),
        other => Err(unexpected(other)),
    }
}

/// Reads the trailer after a file's bytes and checks it against `received`, their MD5.
fn receive_trailer(conn: &mut Connection, entry: Entry, received: Md5) -> Result<Entry> {
    let trailer = conn.recv::<Reply>()?;
    let md5 = verify(&entry, received, trailer)?;
    Ok(Entry {
        md5: Some(md5.to_string()),
        ..entry
    })
}

/// Fills `buf` from `from`, giving up on a peer that trickles (see [`crate::conn::Pace`]).
fn read_paced(from: &mut impl Read, buf: &mut [u8]) -> io::Result<()> {
    let mut pace = crate::conn::Pace::new();
    let (mut done, size) = (0, buf.len());
    while done < size {
        done += read_some(from, &mut buf[done..], &mut pace, done as u64, size as u64)?;
    }
    Ok(())
}

/// One read of the bytes of a file of `size` bytes, `done` of them in already: how many came
/// (at least one). An early end of the stream is an error; so is a peer whose bytes come slower
/// than `pace` allows, unless these were the last.
fn read_some(
    from: &mut impl Read,
    buf: &mut [u8],
    pace: &mut crate::conn::Pace,
    done: u64,
    size: u64,
) -> io::Result<usize> {
    loop {
        match from.read(buf) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the connection closed after {done} of {size} bytes"),
                ))
            }
            Ok(n) => {
                if done + (n as u64) < size {
                    pace.advance(n as u64)?;
                }
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Checks that a transfer header describes the file we asked for.
///
/// # Errors
/// [`Error::Protocol`] if it does not.
pub fn check_header(entry: Entry, name: &str) -> Result<Entry> {
    if entry.path != name || entry.kind != Kind::File {
        return Err(Error::Protocol(format!(
            "asked for {name} but the peer offered {} ({:?})",
            entry.path, entry.kind
        )));
    }
    Ok(entry)
}

/// Compares what we received with what the server says it sent: the trailer's MD5, and the MD5 in
/// the header if the server knew it up front. Returns the verified MD5.
///
/// # Errors
/// [`Error::Verify`] on any mismatch; [`Error::Remote`] with [`crate::protocol::ErrorCode::Changed`] when the
/// server says the file changed while it was being sent.
pub fn verify(entry: &Entry, received: Md5, trailer: Reply) -> Result<Md5> {
    let name = &entry.path;
    let sent = match trailer {
        Reply::Trailer { md5 } => md5,
        // The server's own verdict (the file changed while it was read) is its error reply;
        // everything else that fails below is a mismatch we found.
        other => return Err(unexpected(other)),
    };
    let announced = entry.md5.as_deref().unwrap_or(&sent);
    let matches = |text: &str| text.parse::<Md5>().is_ok_and(|m| m == received);
    if !matches(&sent) || !matches(announced) {
        return Err(Error::Verify(format!(
            "{name} did not verify (received MD5 {received}, the peer sent {}); nothing was installed",
            crate::activity::field(&sent)
        )));
    }
    Ok(received)
}

/// Reads exactly `size` bytes from `from` into `to` at its current position, hashing them on
/// the way; returns their MD5 as hex. (Downloads use [`receive_temp`], which also writes large
/// files around the page cache.)
///
/// # Errors
/// As [`receive_temp`].
pub fn receive_into(
    from: &mut impl Read,
    to: &mut File,
    size: u64,
    progress: Progress<'_>,
) -> io::Result<String> {
    receive(from, FileSink::append(to, size)?, size, progress).map(|md5| md5.to_string())
}

/// Reads exactly `size` bytes from `from` into the temporary file `to`, hashing them on the way
/// (see [`crate::sink`]); returns their MD5.
///
/// # Errors
/// If the stream ends early, times out (no byte for 10 s, or fewer than
/// [`crate::conn::MIN_PROGRESS`] bytes in 10 s), or the disk fails.
pub fn receive_temp(
    from: &mut impl Read,
    to: &mut TempFile,
    size: u64,
    progress: Progress<'_>,
) -> io::Result<Md5> {
    let path = to.path.clone();
    receive(from, FileSink::new(to.file(), &path, size)?, size, progress)
}

fn receive(
    from: &mut impl Read,
    mut sink: FileSink<'_>,
    size: u64,
    progress: Progress<'_>,
) -> io::Result<Md5> {
    let mut done = 0u64;
    // A server that sends a trickle is given up on like one that sends nothing.
    let mut pace = crate::conn::Pace::new();
    progress(0, size);
    while done < size {
        let spare = sink.spare();
        let want = usize::try_from(size - done).map_or(spare.len(), |n| n.min(spare.len()));
        let n = read_some(from, &mut spare[..want], &mut pace, done, size)?;
        sink.filled(n)?;
        done += n as u64;
        progress(done, size);
    }
    sink.finish()
}

/// A temporary file in `.minibox/tmp/`, removed on drop unless it was installed.
pub struct TempFile {
    /// Where it is.
    path: PathBuf,
    /// The open file.
    file: Option<File>,
    /// Its permission bits, as far as we know them (see [`created_mode`]).
    mode: Option<u32>,
}

impl TempFile {
    /// Creates a fresh temporary file in `local`'s `.minibox/tmp/`.
    ///
    /// # Errors
    /// If it cannot be created.
    pub fn create(local: &LocalBox) -> Result<Self> {
        TempFile::create_in(local, None)
    }

    /// [`TempFile::create`], in the temporary folder of `lane` (see
    /// [`LocalBox::temp_path_in`]).
    ///
    /// # Errors
    /// If it cannot be created.
    pub fn create_in(local: &LocalBox, lane: Option<usize>) -> Result<Self> {
        let path = local.temp_path_in(lane);
        let open = || OpenOptions::new().write(true).create_new(true).open(&path);
        // `.minibox/tmp/` is made when the box is opened; make it (or the lane's folder) only if
        // it is not there.
        let file = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => path
                .parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|()| open()),
            other => other,
        }
        .map_err(|e| Error::io(&path, e))?;
        Ok(TempFile {
            path,
            file: Some(file),
            mode: created_mode(),
        })
    }

    /// The open file.
    pub fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("the file is open until the TempFile is installed or dropped")
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The time `ns` after the epoch (before it, for negative values).
pub fn system_time(ns: i64) -> SystemTime {
    let abs = Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 {
        UNIX_EPOCH + abs
    } else {
        UNIX_EPOCH - abs
    }
}

/// The permission bits a file we create gets: `0o666` less the process's umask (read once from
/// `/proc/self/status`, since asking the kernel for the umask means setting it, which other
/// threads would see). Most files are `0o644`, which is what a umask of `022` gives: for those
/// [`install_over`] needs no `fchmod`. `None` if the umask cannot be read.
fn created_mode() -> Option<u32> {
    static MODE: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| {
        let status = fs::read_to_string("/proc/self/status").ok()?;
        let umask = status
            .lines()
            .find_map(|line| line.strip_prefix("Umask:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())?;
        Some(0o666 & !umask & MODE_MASK)
    })
}

/// Renames `from` to `to` only if nothing is at `to`, in one step of the kernel's
/// (`RENAME_NOREPLACE`): no `lstat` first, and nothing that appears in between is replaced.
/// Returns false, having changed nothing, if something is there, a folder on the way is missing
/// or is not a folder, or the file system cannot rename that way; the caller then looks.
fn rename_if_free(from: &Path, to: &Path) -> io::Result<bool> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::errno::Errno;
        use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
        match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST | Errno::ENOENT | Errno::ENOTDIR | Errno::EINVAL | Errno::ENOSYS) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = (from, to);
        Ok(false)
    }
}

/// Installs a verified temporary file as `entry.path`, replacing whatever file is there: see
/// [`install_over`].
///
/// # Errors
/// As [`install_over`].
pub fn install(local: &LocalBox, tmp: TempFile, entry: &Entry) -> Result<Option<Stamp>> {
    install_over(local, tmp, entry, |_| Ok(()))
}

/// Installs a verified temporary file as `entry.path`: sets its mtime and permission bits, takes
/// the file's write lock, lets `expect` look at what stands at the destination now (nothing,
/// or its metadata), moves an existing file there to the trash, and renames the new one into
/// place. When `entry.md5` is known it goes into the stat cache under the installed file's
/// stamp, so the next scan does not read the file again. Returns that stamp.
///
/// `expect` runs under the write lock, right before the rename: a sync round uses it to make
/// sure the file it is about to replace is still the version it planned for. If it accepts
/// "nothing there", the rename is tried first without replacing anything (`RENAME_NOREPLACE`:
/// the kernel itself checks that the name is free); only if something is there does it look,
/// and ask `expect` again about what it found.
///
/// # Errors
/// [`Error::LocalChange`] with `expect`'s sentence if it said no; an error if the name is
/// refused (a symlink appeared on the way), a folder stands where the file should go, or the
/// disk fails. The temporary file is removed in every failure case.
pub fn install_over(
    local: &LocalBox,
    mut tmp: TempFile,
    entry: &Entry,
    expect: impl Fn(Option<&fs::Metadata>) -> std::result::Result<(), String>,
) -> Result<Option<Stamp>> {
    let name = &entry.path;
    let mode = entry.mode & MODE_MASK;
    if tmp.mode != Some(mode) {
        let file = tmp.file();
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(&tmp.path, e))?;
    }
    let file = tmp.file();
    file.set_times(FileTimes::new().set_modified(system_time(entry.mtime_ns)))
        .map_err(|e| Error::io(&tmp.path, e))?;
    let _guard = local
        .locks
        .write(name, IDLE_TIMEOUT)
        .ok_or_else(|| Error::Timeout(format!("{name} stayed busy; nothing was installed")))?;
    let refused = |e| gate_error(local, name, e);
    // Most installs put a new name in a folder that is there: check the folders on the way and
    // rename without replacing, which also proves nothing is at the name. Otherwise look.
    let mut placed = false;
    if expect(None).is_ok() {
        let dest = paths::resolve_folders(local.root(), name).map_err(refused)?;
        placed = rename_if_free(&tmp.path, &dest).map_err(|e| Error::io(&dest, e))?;
    }
    if !placed {
        let (dest, there) = paths::resolve_at(local.root(), name).map_err(refused)?;
        expect(there.as_ref()).map_err(Error::LocalChange)?;
        match there {
            Some(meta) if meta.is_dir() => {
                return Err(Error::Usage(format!(
                    "{name} is a folder here; nothing was installed"
                )))
            }
            Some(_) => {
                move_to_trash(local, name)?;
            }
            None => {}
        }
        // The folder is there unless the name is new at more than one level: then make it.
        let renamed = match fs::rename(&tmp.path, &dest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => dest
                .parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|()| fs::rename(&tmp.path, &dest)),
            other => other,
        };
        renamed.map_err(|e| Error::io(&dest, e))?;
    }
    // Installed: nothing to clean up. The rename moved the ctime, so take the stamp now, from
    // the open file: it is the inode we wrote, whatever the name may lead to by now.
    let file = tmp.file.take();
    let mut meta = file.as_ref().and_then(|f| f.metadata().ok());
    // The umask foretold the bits wrongly (a folder's default ACL decides instead): set them.
    if let (Some(f), Some(m)) = (&file, &meta) {
        if m.permissions().mode() & MODE_MASK != mode {
            f.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(local.root().join(name), e))?;
            meta = f.metadata().ok();
        }
    }
    let stamp = meta.map(|m| Stamp::of(&m));
    let md5 = entry.md5.as_deref().and_then(|m| m.parse::<Md5>().ok());
    if let (Some(md5), Some(stamp)) = (md5, stamp) {
        if stamp.size == entry.size {
            local.hashes.put(stamp, md5);
        }
    }
    Ok(stamp)
}

/// Resolves `name` for writing through the path gate.
///
/// # Errors
/// [`Error::Path`] if refused.
pub fn resolve_for_write(local: &LocalBox, name: &str) -> Result<PathBuf> {
    paths::resolve(local.root(), name).map_err(|e| gate_error(local, name, e))
}

/// The error for `name` when the path gate refused it or could not look.
fn gate_error(local: &LocalBox, name: &str, e: ResolveError) -> Error {
    match e {
        ResolveError::Refused(p) => Error::Path(p),
        ResolveError::Io(e) => Error::io(local.root().join(name), e),
    }
}

/// Moves the file or folder `name` of the box into `.minibox/trash/<time>/<name>`, keeping its
/// relative path, so that nothing minibox replaces or deletes is lost. Returns where it went.
///
/// # Errors
/// If the name is refused or the move fails.
pub fn move_to_trash(local: &LocalBox, name: &str) -> Result<PathBuf> {
    let from = resolve_for_write(local, name)?;
    let to = local.trash_slot(name)?;
    fs::rename(&from, &to).map_err(|e| Error::io(&from, e))?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::META_DIR;
    use std::os::unix::fs::MetadataExt;

    fn entry(path: &str, bytes: &[u8], mode: u32) -> Entry {
        Entry {
            path: path.to_string(),
            kind: Kind::File,
            size: bytes.len() as u64,
            mtime_ns: 1_700_000_000_000_000_000,
            mode,
            mime: "application/octet-stream".into(),
            md5: Some(Md5::of(bytes).to_string()),
        }
    }

    fn temp_with(local: &LocalBox, bytes: &[u8]) -> TempFile {
        Body::Bytes(bytes.to_vec()).into_temp(local).unwrap()
    }

    #[test]
    fn a_rename_that_must_not_replace_leaves_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        fs::write(&a, "new").unwrap();
        fs::write(&b, "there").unwrap();
        assert!(!rename_if_free(&a, &b).unwrap(), "b is taken");
        assert_eq!(fs::read(&b).unwrap(), b"there");
        assert!(a.exists());
        assert!(!rename_if_free(&a, &dir.path().join("no/such/folder")).unwrap());
        assert!(!rename_if_free(&a, &b.join("under-a-file")).unwrap());
        assert!(a.exists());
        assert!(rename_if_free(&a, &c).unwrap());
        assert_eq!(fs::read(&c).unwrap(), b"new");
        assert!(!a.exists());
    }

    #[test]
    fn a_temporary_file_has_the_bits_the_umask_foretells() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalBox::open(dir.path(), "t").unwrap();
        let mut tmp = TempFile::create(&local).unwrap();
        let bits = tmp.file().metadata().unwrap().mode() & MODE_MASK;
        assert_eq!(created_mode(), Some(bits), "Linux tells the umask");
        assert_eq!(tmp.mode, Some(bits));
    }

    #[test]
    fn installing_gives_every_file_its_bits_and_mtime_whatever_the_umask_gave() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalBox::open(dir.path(), "t").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        for (i, mode) in [0o644, 0o600, 0o755, 0o444, 0o640].into_iter().enumerate() {
            let name = format!("sub/f{i}");
            let e = entry(&name, name.as_bytes(), mode);
            let stamp = install(&local, temp_with(&local, name.as_bytes()), &e)
                .unwrap()
                .expect("a stamp");
            let meta = fs::symlink_metadata(dir.path().join(&name)).unwrap();
            assert_eq!(meta.mode() & MODE_MASK, mode, "{name}");
            assert_eq!(meta.mtime(), 1_700_000_000, "{name}");
            assert_eq!(stamp, Stamp::of(&meta), "the stamp is the installed file's");
        }
    }

    #[test]
    fn installing_over_a_file_trashes_it_and_a_refusal_leaves_it() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalBox::open(dir.path(), "t").unwrap();
        let target = dir.path().join("x.txt");
        fs::write(&target, "old").unwrap();
        // `expect` accepts only "nothing there": the no-replace rename finds the old file, and
        // the second look hands it to `expect`, which refuses.
        let e = entry("x.txt", b"new", 0o644);
        let refused = install_over(&local, temp_with(&local, b"new"), &e, |there| match there {
            None => Ok(()),
            Some(_) => Err("x.txt appeared".into()),
        });
        assert!(matches!(refused, Err(Error::LocalChange(_))), "{refused:?}");
        assert_eq!(fs::read(&target).unwrap(), b"old");
        // Accepting what is there replaces it, and the old bytes go to the trash.
        install(&local, temp_with(&local, b"new"), &e).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        let trashed = walk_files(&dir.path().join(META_DIR).join("trash"));
        assert_eq!(trashed.len(), 1, "{trashed:?}");
        assert_eq!(fs::read(&trashed[0]).unwrap(), b"old");
        // Neither left a temporary file behind.
        assert!(walk_files(&dir.path().join(META_DIR).join("tmp")).is_empty());
    }

    #[test]
    fn installing_a_name_new_at_two_levels_makes_its_folders_and_refuses_a_link_on_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalBox::open(dir.path(), "t").unwrap();
        let e = entry("a/b/c.txt", b"deep", 0o644);
        install(&local, temp_with(&local, b"deep"), &e).unwrap();
        assert_eq!(fs::read(dir.path().join("a/b/c.txt")).unwrap(), b"deep");
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let e = entry("link/c.txt", b"out", 0o644);
        let refused = install(&local, temp_with(&local, b"out"), &e);
        assert!(matches!(refused, Err(Error::Path(_))), "{refused:?}");
        assert!(
            walk_files(outside.path()).is_empty(),
            "nothing written outside"
        );
    }

    fn walk_files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(read) = fs::read_dir(dir) else {
            return out;
        };
        for item in read.flatten() {
            let path = item.path();
            if path.is_dir() {
                out.extend(walk_files(&path));
            } else {
                out.push(path);
            }
        }
        out
    }
}
