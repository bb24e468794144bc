//! The server side of every request, shared by every stage's server.
//!
//! A stage decides *how* connections are accepted (one at a time in stage 1, on worker threads in
//! stage 2); what happens on one connection is the same everywhere and lives here:
//! [`serve_connection`] does the handshake, then answers requests until the client hangs up, goes
//! silent for [`crate::IDLE_TIMEOUT`], or sends something that is not a valid frame (that one
//! connection is closed; the server goes on).
//!
//! A request that fails (missing file, bad regex, a name that leaves the box) gets an error reply
//! and the connection stays usable. Every request is logged to `.minibox/log`.
//!
//! A box that syncs (stage 3) also wants to know what its peer has *seen* of it: a pull-only
//! round of the peer reads our listing, acts, and hangs up. If the box registered a [`Witness`]
//! ([`LocalBox::set_witness`]), the server tells it about every sync listing it sends, and, once the
//! connection that carried it ends cleanly, hands it the listing: the peer's round is over. Earlier
//! stages register none and nothing changes for them.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::conn::{Connection, PacedWriter};
use crate::error::{Error, Result};
use crate::hash::{Hasher, Md5, Stamp, BUF_SIZE};
use crate::index::{self, split_parent, FolderSums, Index, Matcher, Scanned};
use crate::local::LocalBox;
use crate::locks::ReadGuard;
use crate::paths::{self, ResolveError};
use crate::protocol::{
    Entry, ErrorCode, Filter, FolderSum, Kind, Reply, Request, ENTRIES_PER_CHUNK, MAX_KNOWN,
};
use crate::IDLE_TIMEOUT;

/// What a server needs besides the box: the UDP socket bound on the same port as the TCP
/// listener, when the stage offers UDP downloads.
#[derive(Default)]
pub struct ServeOptions<'a> {
    /// The server's UDP socket, if any.
    pub udp: Option<&'a UdpSocket>,
}

/// Hears what a syncing peer has seen of this box (see the module docs). Implemented by stage 3.
pub trait Witness: Send + Sync {
    /// A sync listing (every file and folder, with MD5s) is about to be sent to `peer`. Returns the
    /// moment to remember it by, on the witness's own clock.
    fn listing(&self, peer: &str) -> i64;
    /// The connection that carried the listing taken at `moment` ended cleanly: `peer`'s round is
    /// over, and `entries` is exactly what it was shown (the folders it already knew included:
    /// what it saw of them is what it knew).
    fn round_over(&self, peer: &str, moment: i64, entries: Index);
}

/// Whether a listing request is the one a sync round makes: everything, with MD5s and folders.
pub fn is_sync_listing(filter: &Filter, hashes: bool, folders: bool) -> bool {
    matches!(filter, Filter::All) && hashes && folders
}

/// Serves one client connection to the end. Errors are logged, not returned: one bad client must
/// never stop a server.
pub fn serve_connection(mut conn: Connection, local: &LocalBox, opts: &ServeOptions<'_>) {
    let addr = conn.peer_addr();
    let served = serve(&mut conn, local, opts);
    local.log.flush();
    match served {
        Ok(()) => log::debug!("{addr}: connection closed"),
        Err(e) => {
            log::info!("{addr}: dropping the connection: {e}");
            local
                .log
                .record(conn.peer_name(), "connection", &format!("dropped: {e}"));
            // Tell the client why, if it still listens; then close.
            if matches!(e, Error::Frame(_) | Error::Protocol(_)) {
                let _ = conn.send(&Reply::error(ErrorCode::BadRequest, e.to_string()));
            }
        }
    }
    conn.shutdown();
}

fn serve(conn: &mut Connection, local: &LocalBox, opts: &ServeOptions<'_>) -> Result<()> {
    // With a shared secret, the peer must prove it knows it before anything else.
    if !conn.accept_hello_with(local.name(), local.secret())? {
        return Ok(());
    }
    // The last sync listing sent on this connection, for the witness (if the box has one).
    let mut shown: Option<(i64, Index)> = None;
    while let Some(request) = conn.recv_opt::<Request>()? {
        let what = describe(&request);
        let outcome = answer(conn, local, opts, request, &mut shown);
        let peer = conn.peer_name().to_string();
        match outcome {
            Ok(summary) => local
                .log
                .defer(&peer, &what, format!("ok {summary}").trim_end()),
            Err(Failure::Reply(code, message)) => {
                local.log.defer(&peer, &what, &format!("error: {message}"));
                conn.queue(&Reply::error(code, message))?;
            }
            Err(Failure::Connection(e)) => {
                local.log.record(&peer, &what, &format!("failed: {e}"));
                return Err(e);
            }
        }
        // A client that pipelines has its next request waiting already: answer it before
        // flushing, so that a batch of small replies (and their log lines) leaves in a few
        // large writes.
        if !conn.input_pending() {
            local.log.flush();
            conn.flush()?;
        }
    }
    // A clean hang-up: the peer's round (if this was one) is over.
    if let (Some(witness), Some((moment, entries))) = (local.witness(), shown) {
        witness.round_over(conn.peer_name(), moment, entries);
    }
    Ok(())
}

/// How a request can fail: with an answer the client gets, or with the connection itself broken.
#[derive(Debug)]
pub enum Failure {
    /// Send this error reply and go on.
    Reply(ErrorCode, String),
    /// The connection is unusable.
    Connection(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Connection(e)
    }
}

impl From<ResolveError> for Failure {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Refused(p) => Failure::Reply(ErrorCode::BadPath, p.to_string()),
            ResolveError::Io(e) => Failure::Reply(ErrorCode::Io, e.to_string()),
        }
    }
}

/// A short description of a request for the log.
pub fn describe(request: &Request) -> String {
    match request {
        Request::Hello { .. } => "hello".into(),
        Request::List { filter, hashes, .. } => {
            let what = if *hashes { "hash list" } else { "index" };
            match filter {
                Filter::All => format!("{what} all"),
                Filter::Modified { start_ns, end_ns } => format!(
                    "{what} modified {}..{}",
                    crate::timestamp::rfc3339(*start_ns),
                    crate::timestamp::rfc3339(*end_ns)
                ),
                Filter::Regex { pattern } => format!("{what} regex {pattern:?}"),
            }
        }
        Request::SyncList { known } => format!("sync list ({} folders known)", known.len()),
        Request::Prove { .. } => "prove".into(),
        Request::Hash { path } => format!("hash {path:?}"),
        Request::Download { path } => format!("download tcp {path:?}"),
        Request::DownloadUdp { path } => format!("download udp {path:?}"),
        Request::UdpReceived { token } => format!("udp received {token}"),
    }
}

fn answer(
    conn: &mut Connection,
    local: &LocalBox,
    opts: &ServeOptions<'_>,
    request: Request,
    shown: &mut Option<(i64, Index)>,
) -> Result<String, Failure> {
    match request {
        Request::Hello { .. } => Err(Failure::Reply(
            ErrorCode::BadRequest,
            "hello was already said on this connection".into(),
        )),
        Request::Prove { .. } => Err(Failure::Reply(
            ErrorCode::BadRequest,
            "prove belongs to the opening handshake of an authenticated box".into(),
        )),
        Request::List {
            filter,
            hashes,
            folders,
        } if is_sync_listing(&filter, hashes, folders) => {
            send_sync_listing(conn, local, &[], shown)
        }
        Request::List {
            filter,
            hashes,
            folders,
        } => send_listing(conn, local, &filter, hashes, folders),
        Request::SyncList { known } => send_sync_listing(conn, local, &known, shown),
        Request::Hash { path } => {
            // The read lock keeps an install of this name from swapping the file between the
            // metadata and the MD5 we report: both describe the same version.
            let _guard = read_lock(local, &path)?;
            let (file, meta) = open_regular(local, &path)?;
            let entry = index::entry_of(&path, &meta);
            // A large file not hashed before takes a while: say so now and then.
            let mut alive = KeepAlive::new();
            let mut tell = |done, total| {
                alive
                    .tick(conn, done, total)
                    .map_err(|_| io::Error::other("the client went away"))
            };
            let md5 = local
                .hashes
                .md5_of_open(&file, Stamp::of(&meta), &mut tell)
                .map_err(|e| Failure::Reply(ErrorCode::Io, format!("cannot read {path}: {e}")))?;
            let summary = format!("md5 {md5}");
            conn.send(&Reply::Entry {
                entry: Entry {
                    md5: Some(md5.to_string()),
                    ..entry
                },
            })?;
            Ok(summary)
        }
        Request::Download { path } => send_file(conn, local, &path),
        Request::DownloadUdp { path } => match opts.udp {
            Some(socket) => crate::udp::serve_download(conn, local, socket, &path),
            None => Err(Failure::Reply(
                ErrorCode::Unsupported,
                "this box does not offer UDP downloads".into(),
            )),
        },
        Request::UdpReceived { .. } => Err(Failure::Reply(
            ErrorCode::BadRequest,
            "no UDP download is running on this connection".into(),
        )),
    }
}

/// Answers a listing for the shell (`index …`, `hash checkall`).
fn send_listing(
    conn: &mut Connection,
    local: &LocalBox,
    filter: &Filter,
    hashes: bool,
    folders: bool,
) -> Result<String, Failure> {
    let matcher = Matcher::new(filter).map_err(|m| Failure::Reply(ErrorCode::BadRequest, m))?;
    let scanned = scan(local)?;
    let mut chunks = Chunks::new(conn);
    let mut alive = KeepAlive::new();
    let total = scanned.len() as u64;
    for (done, item) in scanned.iter().enumerate() {
        if hashes && done % 64 == 0 {
            alive.tick(chunks.conn, done as u64, total)?;
        }
        if item.kind == Kind::Dir && !folders {
            continue;
        }
        let mut entry = item.entry();
        if !matcher.matches(&entry) {
            continue;
        }
        if hashes && item.kind == Kind::File {
            match file_md5(local, item) {
                Some(md5) => entry.md5 = Some(md5.to_string()),
                // Vanished or unreadable since the scan: leave it out, like the scan would.
                None => continue,
            }
        }
        chunks.push(entry)?;
    }
    let count = chunks.end()?;
    if hashes {
        save_hashes(local);
    }
    Ok(format!("{count} entries"))
}

/// Answers the listing of a sync round ([`Request::SyncList`], or a [`Request::List`] of
/// everything with MD5s and folders, which is the same with nothing known): every file and
/// folder with its MD5, except the folders whose digest is one the client sent in `known`, which
/// are named in [`Reply::Same`] instead.
///
/// Two passes over the scan: the first finds every file's MD5 (from the stat cache, or by
/// reading the file) and the folder digests; the second sends what the client does not know. A
/// file that cannot be read is listed without an MD5 (the peer then leaves it alone) and keeps
/// its folder from ever counting as known.
fn send_sync_listing(
    conn: &mut Connection,
    local: &LocalBox,
    known: &[FolderSum],
    shown: &mut Option<(i64, Index)>,
) -> Result<String, Failure> {
    if known.len() > MAX_KNOWN {
        return Err(Failure::Reply(
            ErrorCode::BadRequest,
            format!(
                "a sync listing may name at most {MAX_KNOWN} known folders, not {}",
                known.len()
            ),
        ));
    }
    let moment = local.witness().map(|w| w.listing(conn.peer_name()));
    let scanned = scan(local)?;
    let mut versions = Vec::with_capacity(scanned.len());
    let mut sums = FolderSums::new();
    let mut alive = KeepAlive::new();
    let total = scanned.len() as u64;
    for (done, item) in scanned.iter().enumerate() {
        if done % 64 == 0 {
            alive.tick(conn, done as u64, total)?;
        }
        let version = match item.kind {
            Kind::Dir => Some(item.version(None)),
            Kind::File => file_md5(local, item).map(|md5| item.version(Some(md5))),
        };
        match &version {
            Some(v) => sums.add(&item.path, v),
            None => sums.add_unknown(&item.path),
        }
        versions.push(version);
    }
    save_hashes(local);
    let digests = sums.finish();
    let same: HashSet<&str> = known
        .iter()
        .filter(|k| digests.get(&k.folder) == Some(&k.md5))
        .map(|k| k.folder.as_str())
        .collect();
    let mut chunks = Chunks::new(conn);
    for (item, version) in scanned.iter().zip(&versions) {
        if same.contains(split_parent(&item.path).0) {
            continue;
        }
        let mut entry = item.entry();
        entry.md5 = version.as_ref().and_then(|v| v.md5).map(|m| m.to_string());
        chunks.push(entry)?;
    }
    let mut folders: Vec<&str> = same.into_iter().collect();
    folders.sort_unstable();
    for part in folders.chunks(ENTRIES_PER_CHUNK) {
        chunks.conn.queue(&Reply::Same {
            folders: part.iter().map(|f| f.to_string()).collect(),
        })?;
    }
    let known_folders = folders.len();
    let count = chunks.end()?;
    if let Some(moment) = moment {
        let seen: Index = scanned
            .iter()
            .zip(versions)
            .filter_map(|(item, v)| Some((item.path.clone(), v?)))
            .collect();
        *shown = Some((moment, seen));
    }
    Ok(format!("{count} entries, {known_folders} folders known"))
}

/// Says "still working" to a client whose answer takes long to prepare (see
/// [`Reply::Working`]): at most every [`KEEP_ALIVE`], and only once that long has passed since
/// the request, so a quick answer sends none.
struct KeepAlive {
    last: Instant,
}

/// How often a long answer tells the client it is still being prepared: well within the
/// client's [`IDLE_TIMEOUT`].
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);

impl KeepAlive {
    fn new() -> Self {
        KeepAlive {
            last: Instant::now(),
        }
    }

    /// Sends a [`Reply::Working`] if it is time.
    fn tick(&mut self, conn: &mut Connection, done: u64, total: u64) -> Result<(), Failure> {
        if self.last.elapsed() >= KEEP_ALIVE {
            conn.send(&Reply::Working { done, total })?;
            self.last = Instant::now();
        }
        Ok(())
    }
}

/// The box's scan, as a reply when the box cannot be read.
fn scan(local: &LocalBox) -> Result<std::sync::Arc<Vec<Scanned>>, Failure> {
    local
        .scan()
        .map_err(|e| Failure::Reply(ErrorCode::Io, format!("cannot read the box: {e}")))
}

/// The MD5 of a scanned file: from the stat cache when its stamp is the cached one, otherwise
/// read now. `None` if it cannot be read (it vanished, or may not be read).
fn file_md5(local: &LocalBox, item: &Scanned) -> Option<Md5> {
    if let Some(md5) = local.hashes.get(&item.stamp) {
        return Some(md5);
    }
    local
        .hashes
        .md5(&local.root().join(&item.path))
        .inspect_err(|e| log::warn!("{}: {e}", item.path))
        .ok()
}

fn save_hashes(local: &LocalBox) {
    if let Err(e) = local.hashes.save() {
        log::warn!("cannot save the stat cache: {e}");
    }
}

/// A listing on its way out: entries queued in chunks of [`ENTRIES_PER_CHUNK`], flushed at the
/// end with the [`Reply::End`] that counts them.
struct Chunks<'c> {
    conn: &'c mut Connection,
    chunk: Vec<Entry>,
    count: u64,
}

impl<'c> Chunks<'c> {
    fn new(conn: &'c mut Connection) -> Self {
        Chunks {
            conn,
            chunk: Vec::with_capacity(ENTRIES_PER_CHUNK),
            count: 0,
        }
    }

    fn push(&mut self, entry: Entry) -> Result<(), Failure> {
        self.chunk.push(entry);
        self.count += 1;
        if self.chunk.len() == ENTRIES_PER_CHUNK {
            self.conn.queue(&Reply::Entries {
                entries: std::mem::take(&mut self.chunk),
            })?;
        }
        Ok(())
    }

    /// Sends the last chunk and the end; returns how many entries went.
    fn end(self) -> Result<u64, Failure> {
        if !self.chunk.is_empty() {
            self.conn.queue(&Reply::Entries {
                entries: self.chunk,
            })?;
        }
        self.conn.send(&Reply::End { count: self.count })?;
        Ok(self.count)
    }
}

/// Opens a regular file of the box for reading, through the path gate.
///
/// # Errors
/// A reply for the client when the name is refused or the file is missing.
pub fn open_file(local: &LocalBox, name: &str) -> Result<(File, Entry), Failure> {
    let (file, meta) = open_regular(local, name)?;
    Ok((file, index::entry_of(name, &meta)))
}

/// [`open_file`], with the opened file's metadata.
fn open_regular(local: &LocalBox, name: &str) -> Result<(File, fs::Metadata), Failure> {
    // Never a plain `File::open`: a FIFO in the box would block this thread (in stage 1, the
    // whole server) until some process writes to it.
    paths::open_in_box(local.root(), name).map_err(|e| match e {
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
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::InvalidInput => not_found(),
        // "Not a directory" (`a.txt/b`) and the like: if nothing is there, it is not found.
        _ if fs::symlink_metadata(local.root().join(name)).is_err() => not_found(),
        // A link swapped in after `resolve` looked: the kernel refused to follow it.
        _ if e.raw_os_error() == Some(libc::ELOOP) => Failure::Reply(
            ErrorCode::BadPath,
            paths::PathError::Symlink(name.to_string()).to_string(),
        ),
        _ => Failure::Reply(ErrorCode::Io, format!("cannot read {name}: {e}")),
    }
}

/// A file opened for sending (over TCP or UDP), with what is needed to tell at the end whether
/// it changed meanwhile.
pub struct Outgoing<'a> {
    /// The file's read lock, held until the transfer ends: an install of the same name in this
    /// process waits until the bytes are out.
    _guard: ReadGuard<'a>,
    /// The open file.
    pub file: File,
    /// Its entry; `md5` is set when the hash cache knew it.
    pub entry: Entry,
    /// The MD5 the hash cache knew, if any.
    pub known: Option<Md5>,
    /// Its stamp when opened.
    pub before: Stamp,
}

/// Opens the file `name` of the box for sending: takes its read lock, opens it through the path
/// gate, notes its stamp and looks up its MD5 in the cache.
///
/// # Errors
/// A reply for the client when the file is busy, refused or missing.
pub fn open_outgoing<'a>(local: &'a LocalBox, name: &str) -> Result<Outgoing<'a>, Failure> {
    let guard = read_lock(local, name)?;
    let (file, meta) = open_regular(local, name)?;
    let entry = index::entry_of(name, &meta);
    let before = Stamp::of(&meta);
    let known = local.hashes.get(&before);
    Ok(Outgoing {
        _guard: guard,
        file,
        entry: Entry {
            md5: known.map(|m| m.to_string()),
            ..entry
        },
        known,
        before,
    })
}

/// Ends a transfer: the [`Reply::Trailer`] with `md5` if every byte was read and the file still
/// has the stamp it had when opened (and the MD5 goes to the cache), otherwise a
/// [`ErrorCode::Changed`] error, so that the client installs nothing. Returns the log summary.
///
/// # Errors
/// If the connection breaks.
pub fn finish_outgoing(
    conn: &mut Connection,
    local: &LocalBox,
    out: &Outgoing<'_>,
    md5: Md5,
    complete: bool,
) -> Result<String, Failure> {
    let name = &out.entry.path;
    // Ask the open file, not the name: a write into it while we read shows in its stamp, and a
    // new file renamed over the name does not matter (what we read is the old one, whole).
    let after = out.file.metadata().map(|m| Stamp::of(&m)).ok();
    // Queued, not flushed: the serving loop flushes when no other request is waiting.
    if !complete || after != Some(out.before) {
        conn.queue(&Reply::error(
            ErrorCode::Changed,
            format!("{name} changed while it was being sent; nothing was installed"),
        ))?;
        return Ok("but the file changed during the transfer".into());
    }
    local.hashes.put(out.before, md5);
    conn.queue(&Reply::Trailer {
        md5: md5.to_string(),
    })?;
    Ok(format!("{} bytes", out.entry.size))
}

/// Files up to this size are sent from memory (read whole, then queued with their header and
/// trailer); larger ones are streamed.
pub const SMALL_FILE: u64 = 64 * 1024;

/// Sends one file over this TCP connection: header, raw bytes, trailer.
fn send_file(conn: &mut Connection, local: &LocalBox, name: &str) -> Result<String, Failure> {
    let out = open_outgoing(local, name)?;
    let size = out.entry.size;
    if size <= SMALL_FILE {
        return send_small(conn, local, &out);
    }
    conn.send(&Reply::File {
        entry: out.entry.clone(),
    })?;
    // Every byte goes through a pace watch: a client that reads a trickle is dropped after 10 s
    // like one that reads nothing (see `conn::Pace`).
    let file = &out.file;
    let socket = &mut PacedWriter::new(conn.raw_writer()?);
    let (sent_md5, short) = match out.known {
        // The MD5 is known: no need to hash, so let the kernel move the bytes (sendfile).
        Some(md5) => {
            let copied = socket
                .send_file(file, size)
                .map_err(|e| Failure::Connection(Error::net("sending file data", e)))?;
            (md5, size - copied)
        }
        // Otherwise hash while sending: one pass over the bytes, the MD5 follows in the trailer.
        None => {
            let (md5, copied) = copy_hashing(file, socket, size)?;
            (md5, size - copied)
        }
    };
    if short > 0 {
        // The file shrank under us: the client expects `size` bytes, so pad, then say so.
        pad(socket, short)?;
    }
    finish_outgoing(conn, local, &out, sent_md5, short == 0)
}

/// Sends a small file: reads it whole, then queues header, bytes and trailer, so that a client
/// fetching many small files gets several in one write (see the serving loop). One read, no
/// `sendfile` set-up, and a file that cannot be read gets an error reply before any header.
fn send_small(
    conn: &mut Connection,
    local: &LocalBox,
    out: &Outgoing<'_>,
) -> Result<String, Failure> {
    let size = out.entry.size;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    (&out.file)
        .take(size)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            Failure::Reply(
                ErrorCode::Io,
                format!("cannot read {}: {e}", out.entry.path),
            )
        })?;
    // The file shrank under us: the client expects `size` bytes, so pad, and say so after.
    let complete = bytes.len() as u64 == size;
    bytes.resize(usize::try_from(size).unwrap_or(0), 0);
    let md5 = out.known.unwrap_or_else(|| Md5::of(&bytes));
    conn.queue(&Reply::File {
        entry: out.entry.clone(),
    })?;
    conn.queue_raw(&bytes)?;
    finish_outgoing(conn, local, out, md5, complete)
}

/// Takes the read lock of `name`, waiting at most [`IDLE_TIMEOUT`] for an install to finish.
///
/// # Errors
/// A "busy" reply for the client if the file stays locked.
pub fn read_lock<'a>(local: &'a LocalBox, name: &str) -> Result<ReadGuard<'a>, Failure> {
    local.locks.read(name, IDLE_TIMEOUT).ok_or_else(|| {
        Failure::Reply(
            ErrorCode::Busy,
            format!("{name} is busy being written; try again"),
        )
    })
}

/// Copies up to `limit` bytes from `file` to `out`, hashing them; returns the MD5 and the count.
fn copy_hashing(mut file: &File, out: &mut impl Write, limit: u64) -> Result<(Md5, u64), Failure> {
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut done = 0u64;
    while done < limit {
        let want = usize::try_from((limit - done).min(BUF_SIZE as u64)).unwrap_or(BUF_SIZE);
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Failure::Connection(Error::Io {
                    path: "file being sent".into(),
                    source: e,
                }))
            }
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| Failure::Connection(Error::net("sending file data", e)))?;
        done += n as u64;
    }
    Ok((hasher.digest(), done))
}

fn pad(out: &mut impl Write, mut count: u64) -> Result<(), Failure> {
    let zeros = [0u8; 8192];
    while count > 0 {
        let n = count.min(zeros.len() as u64) as usize;
        out.write_all(&zeros[..n])
            .map_err(|e| Failure::Connection(Error::net("sending file data", e)))?;
        count -= n as u64;
    }
    Ok(())
}

/// Warns (in the log) when a box without a shared secret listens where other machines can reach
/// it: anyone who can connect may then read every file. The default address is loopback.
pub fn warn_if_exposed(addr: std::net::SocketAddr, secret: Option<&crate::auth::Secret>) {
    if secret.is_none() && !addr.ip().is_loopback() {
        log::warn!(
            "listening on {addr} without --secret-file: anyone who can reach this address can \
             read the box"
        );
    }
}

/// Binds the TCP listener and the UDP socket of a box on the same address and port, as the
/// contract wants. With port 0 the OS picks a TCP port and UDP takes the same number; should that
/// number be taken for UDP, another is tried. The UDP socket gets large buffers (see
/// [`crate::udp::size_buffers`]).
///
/// # Errors
/// If the address cannot be bound.
pub fn bind(addr: &str) -> Result<(std::net::TcpListener, UdpSocket)> {
    let context = || format!("cannot listen on {addr}");
    let wanted: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .map_err(|e| Error::net(context(), e))?
        .next()
        .ok_or_else(|| Error::Usage(format!("\"{addr}\" is not an address")))?;
    let attempts = if wanted.port() == 0 { 20 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let tcp = std::net::TcpListener::bind(wanted).map_err(|e| Error::net(context(), e))?;
        let bound = tcp.local_addr().map_err(|e| Error::net(context(), e))?;
        match UdpSocket::bind(bound) {
            Ok(udp) => {
                crate::udp::size_buffers(&udp, "server");
                return Ok((tcp, udp));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::net(
        context(),
        last.unwrap_or_else(|| io::Error::other("no port free for both TCP and UDP")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_long_answer_says_it_is_still_working_and_a_quick_one_says_nothing() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut server = Connection::new(listener.accept().unwrap().0).unwrap();
        let mut client = Connection::new(client).unwrap();

        let mut alive = KeepAlive::new();
        alive.tick(&mut server, 1, 10).unwrap();
        server.send(&Reply::End { count: 0 }).unwrap();
        assert_eq!(client.recv::<Reply>().unwrap(), Reply::End { count: 0 });

        alive.last = Instant::now() - KEEP_ALIVE;
        alive.tick(&mut server, 5, 10).unwrap();
        alive.tick(&mut server, 6, 10).unwrap();
        server.send(&Reply::End { count: 0 }).unwrap();
        assert_eq!(
            client.recv::<Reply>().unwrap(),
            Reply::Working { done: 5, total: 10 }
        );
        assert_eq!(
            client.recv::<Reply>().unwrap(),
            Reply::End { count: 0 },
            "once per period"
        );
    }
}
