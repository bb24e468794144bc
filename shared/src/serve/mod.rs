//! Layer 4, serving: the server's side of every request, one file per request, in the spirit
//! of mini-redis's `cmd/`. [`session`] runs one connection and hands each request to its file.
//! Nothing here knows the client side (`crate::ask`), and the reverse.
//!
//! | module | what it holds |
//! |---|---|
//! | [`session`] | one connection: handshake, then request after request |
//! | [`list`] | `list`: `index …` and `hash checkall` |
//! | [`hash`] | `hash`: one file's MD5 |
//! | [`download`] | `download`: a file over TCP |
//! | [`outgoing`] | a file opened for sending, and the check that it did not change |
//! | [`download_udp`] | `download_udp`: a file over UDP (the UDP chapter) |
//! | [`sync_list`] | stage 3: the listing of a sync round, and the witness |
//! | [`blocks`], [`range`] | big files by blocks: a file's block list; some of its blocks |
//! | [`keep_alive`], [`failure`] | "still working" replies; how a request fails |
//! | [`fast`] | speed: small files from memory, known ones by `sendfile` |

pub mod blocks;
pub mod download;
pub mod download_udp;
pub mod failure;
pub mod fast;
pub mod hash;
pub mod keep_alive;
pub mod list;
pub mod outgoing;
pub mod range;
pub mod session;
pub mod sync_list;

pub use session::{serve_connection, Options};
