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

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::UdpSocket;

use crate::conn::{Connection, PacedWriter};
use crate::error::{Error, Result};
use crate::hash::{Hasher, Stamp, BUF_SIZE};
use crate::index::{self, Matcher};
use crate::local::LocalBox;
use crate::locks::ReadGuard;
use crate::paths::{self, ResolveError};
use crate::protocol::{Entry, ErrorCode, Filter, Kind, Reply, Request, ENTRIES_PER_CHUNK};
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
    /// over, and `entries` is exactly what it was shown.
    fn round_over(&self, peer: &str, moment: i64, entries: Vec<Entry>);
}

/// Whether a listing request is the one a sync round makes: everything, with MD5s and folders.
pub fn is_sync_listing(filter: &Filter, hashes: bool, folders: bool) -> bool {
    matches!(filter, Filter::All) && hashes && folders
}

/// Serves one client connection to the end. Errors are logged, not returned: one bad client must
/// never stop a server.
pub fn serve_connection(mut conn: Connection, local: &LocalBox, opts: &ServeOptions<'_>) {
    let addr = conn.peer_addr();
    match serve(&mut conn, local, opts) {
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
    let mut shown: Option<(i64, Vec<Entry>)> = None;
    while let Some(request) = conn.recv_opt::<Request>()? {
        let what = describe(&request);
        let outcome = answer(conn, local, opts, request, &mut shown);
        let peer = conn.peer_name().to_string();
        match outcome {
            Ok(summary) => local
                .log
                .record(&peer, &what, format!("ok {summary}").trim_end()),
            Err(Failure::Reply(code, message)) => {
                local.log.record(&peer, &what, &format!("error: {message}"));
                conn.send(&Reply::error(code, message))?;
            }
            Err(Failure::Connection(e)) => {
                local.log.record(&peer, &what, &format!("failed: {e}"));
                return Err(e);
            }
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
    shown: &mut Option<(i64, Vec<Entry>)>,
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
        } => match local.witness() {
            Some(witness) if is_sync_listing(&filter, hashes, folders) => {
                let moment = witness.listing(conn.peer_name());
                let mut sent = Vec::new();
                let summary = send_listing(conn, local, &filter, hashes, folders, Some(&mut sent))?;
                *shown = Some((moment, sent));
                Ok(summary)
            }
            _ => send_listing(conn, local, &filter, hashes, folders, None),
        },
        Request::Hash { path } => {
            // The read lock keeps an install of this name from swapping the file between the
            // metadata and the MD5 we report: both describe the same version.
            let _guard = read_lock(local, &path)?;
            let (file, entry) = open_file(local, &path)?;
            drop(file);
            let md5 = local
                .hashes
                .md5(&path, &paths::resolve(local.root(), &path)?)
                .map_err(|e| Failure::Reply(ErrorCode::Io, format!("cannot read {path}: {e}")))?;
            let summary = format!("md5 {md5}");
            conn.send(&Reply::Entry {
                entry: Entry {
                    md5: Some(md5),
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

fn send_listing(
    conn: &mut Connection,
    local: &LocalBox,
    filter: &Filter,
    hashes: bool,
    folders: bool,
    mut keep: Option<&mut Vec<Entry>>,
) -> Result<String, Failure> {
    let matcher = Matcher::new(filter).map_err(|m| Failure::Reply(ErrorCode::BadRequest, m))?;
    let scanned = index::scan(local.root())
        .map_err(|e| Failure::Reply(ErrorCode::Io, format!("cannot read the box: {e}")))?;
    let mut chunk = Vec::with_capacity(ENTRIES_PER_CHUNK);
    let mut count = 0u64;
    for item in scanned {
        let mut entry = item.entry;
        if (entry.kind == Kind::Dir && !folders) || !matcher.matches(&entry) {
            continue;
        }
        if hashes && entry.kind == Kind::File {
            let path = local.root().join(&entry.path);
            entry.md5 = match local.hashes.get(&entry.path, &item.stamp) {
                Some(md5) => Some(md5),
                None => match local.hashes.md5(&entry.path, &path) {
                    Ok(md5) => Some(md5),
                    // Vanished or unreadable since the scan: leave it out, like the scan would.
                    Err(e) => {
                        log::warn!("skipping {}: {e}", entry.path);
                        continue;
                    }
                },
            };
        }
        if let Some(keep) = keep.as_deref_mut() {
            keep.push(entry.clone());
        }
        chunk.push(entry);
        count += 1;
        if chunk.len() == ENTRIES_PER_CHUNK {
            conn.queue(&Reply::Entries {
                entries: std::mem::take(&mut chunk),
            })?;
        }
    }
    if !chunk.is_empty() {
        conn.queue(&Reply::Entries { entries: chunk })?;
    }
    conn.send(&Reply::End { count })?;
    if hashes {
        if let Err(e) = local.hashes.save() {
            log::warn!("cannot save the hash cache: {e}");
        }
    }
    Ok(format!("{count} entries"))
}

/// Opens a regular file of the box for reading, through the path gate.
///
/// # Errors
/// A reply for the client when the name is refused or the file is missing.
pub fn open_file(local: &LocalBox, name: &str) -> Result<(File, Entry), Failure> {
    let path = paths::resolve(local.root(), name)?;
    let not_found = || {
        Failure::Reply(
            ErrorCode::NotFound,
            format!("{name}: no such file in the box"),
        )
    };
    // Never a plain `File::open`: a FIFO in the box would block this thread (in stage 1, the
    // whole server) until some process writes to it.
    let (file, meta) = paths::open_for_reading(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::InvalidInput => not_found(),
        // "Not a directory" (`a.txt/b`) and the like: if nothing is there, it is not found.
        _ if fs::symlink_metadata(&path).is_err() => not_found(),
        // A link swapped in after `resolve` looked: the kernel refused to follow it.
        _ if e.raw_os_error() == Some(libc::ELOOP) => Failure::Reply(
            ErrorCode::BadPath,
            paths::PathError::Symlink(name.to_string()).to_string(),
        ),
        _ => Failure::Reply(ErrorCode::Io, format!("cannot read {name}: {e}")),
    })?;
    Ok((file, index::entry_of(name, &meta)))
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
    let (file, entry) = open_file(local, name)?;
    let before = Stamp::of(
        &file
            .metadata()
            .map_err(|e| Failure::Reply(ErrorCode::Io, e.to_string()))?,
    );
    let md5 = local.hashes.get(name, &before);
    Ok(Outgoing {
        _guard: guard,
        file,
        entry: Entry { md5, ..entry },
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
    md5: String,
    complete: bool,
) -> Result<String, Failure> {
    let name = &out.entry.path;
    let after = fs::symlink_metadata(local.root().join(name))
        .map(|m| Stamp::of(&m))
        .ok();
    if !complete || after != Some(out.before) {
        conn.send(&Reply::error(
            ErrorCode::Changed,
            format!("{name} changed while it was being sent; nothing was installed"),
        ))?;
        return Ok("but the file changed during the transfer".into());
    }
    local.hashes.put(name, out.before, md5.clone());
    conn.send(&Reply::Trailer { md5 })?;
    Ok(format!("{} bytes", out.entry.size))
}

/// Sends one file over this TCP connection: header, raw bytes, trailer.
fn send_file(conn: &mut Connection, local: &LocalBox, name: &str) -> Result<String, Failure> {
    let out = open_outgoing(local, name)?;
    let size = out.entry.size;
    conn.send(&Reply::File {
        entry: out.entry.clone(),
    })?;
    // Every byte goes through a pace watch: a client that reads a trickle is dropped after 10 s
    // like one that reads nothing (see `conn::Pace`).
    let file = &out.file;
    let socket = &mut PacedWriter::new(conn.raw_writer()?);
    let (sent_md5, short) = match out.entry.md5.clone() {
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
fn copy_hashing(
    mut file: &File,
    out: &mut impl Write,
    limit: u64,
) -> Result<(String, u64), Failure> {
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
    Ok((hasher.finish(), done))
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
