//! The numbers that bound what a peer may ask of a box, in one place. `docs/PROTOCOL.md`
//! ("Limits") and `docs/SECURITY.md` cite them; each says what it protects.

use std::time::Duration;

/// How long a peer may stay silent before the other side gives up on it: long enough for a
/// slow disk, short enough that a stalled client cannot hold a one-client server hostage.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

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
