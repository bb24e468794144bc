//! The numbers that bound what a peer may ask of a box, in one place. `docs/PROTOCOL.md`
//! ("Limits") and `docs/SECURITY.md` cite them; each says what it protects.

use std::time::Duration;

/// How long a peer may stay silent before the other side gives up on it: long enough for a
/// slow disk, short enough that a stalled client cannot hold a one-client server hostage.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Stage 1: the most a connection may take, from the moment the server turns to it, to begin
/// its first frame (its hello), and again to finish it. An honest client says hello as it
/// connects, so the hello is usually in the socket's buffer already; a connection that says
/// nothing is let go after this long instead of [`IDLE_TIMEOUT`], and a one-client server gets
/// to the clients queued behind it before they give up (see
/// `wire::handshake::HANDSHAKE_TIMEOUT`).
pub const HELLO_TIME: Duration = Duration::from_secs(3);

/// The least a transfer must move in each [`IDLE_TIMEOUT`] to count as progressing: far below
/// any working link, far above what a stalled peer's kernel lets trickle through.
pub const MIN_PROGRESS: u64 = 16 * 1024;

/// How often a server that is still preparing an answer says so (a [`working`] frame): well
/// within [`IDLE_TIMEOUT`], so that a client never takes a busy peer for a silent one.
///
/// [`working`]: crate::protocol::message::Reply::Working
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// How long a client waits for real progress while a server says it is working: the idle
/// timeout, and one keep-alive period of grace. A server never waits longer than
/// [`IDLE_TIMEOUT`] without progress of its own (for a locked file: then it answers `busy`), so
/// an honest server always reports first; one that only pretends is given up on.
pub const PATIENCE: Duration = IDLE_TIMEOUT.saturating_add(KEEP_ALIVE);

/// Entries per `entries` chunk of a listing (and folders per `same` chunk): far below a frame's
/// limit whatever the names. A client refuses a chunk that carries more, or none.
pub const ENTRIES_PER_CHUNK: usize = 512;

/// The most entries a listing may carry; a peer announcing more is refused.
pub const MAX_LISTING: u64 = 500_000;

/// The least a server that is still reading its folder tree must read in each [`PATIENCE`] to
/// count as progressing: files and folders. A cold disk reads thousands in that time, a slow
/// network file system hundreds; a peer that reads fewer is taken for one that pretends.
pub const MIN_SCANNED: u64 = 100;

/// The most files and folders a server may say it read for one answer: ten times what a listing
/// may carry, for what a filter leaves out and for the folders. A peer saying more is refused.
pub const MAX_SCANNED: u64 = 10 * MAX_LISTING;

/// The longest name (path in a box) accepted, in bytes: Linux's `PATH_MAX` (4,096) counts the
/// closing NUL, so no longer path can be opened anyway.
pub const MAX_PATH: usize = 4095;

/// The longest MIME type accepted in an entry, in bytes (RFC 6838: 127 for the type and 127
/// for the subtype, and the slash).
pub const MAX_TYPE: usize = 255;

/// The most bytes of names one listing may carry in all: 500,000 names of 500 bytes, or 40,000
/// of 4,000. With [`MAX_PATH`], [`MAX_TYPE`] and [`MAX_LISTING`], it bounds what a listing
/// costs the box that receives it (`docs/SECURITY.md`).
pub const MAX_LISTING_NAMES: u64 = 256 << 20;

/// The most folders a `sync_list` request may name in `known`.
pub const MAX_KNOWN: usize = 20_000;

/// The longest peer name kept, in characters.
pub const MAX_NAME: usize = 64;
