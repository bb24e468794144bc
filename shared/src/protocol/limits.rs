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

/// Entries per `entries` chunk of a listing: far below a frame's limit whatever the names.
pub const ENTRIES_PER_CHUNK: usize = 512;

/// The most entries a listing may carry; a peer announcing more is refused.
pub const MAX_LISTING: u64 = 500_000;

/// The most folders a `sync_list` request may name in `known`.
pub const MAX_KNOWN: usize = 20_000;

/// The longest peer name kept, in characters.
pub const MAX_NAME: usize = 64;
