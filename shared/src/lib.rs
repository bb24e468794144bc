//! # minibox — the crate every stage shares
//!
//! minibox keeps two folders ("boxes") in sync over plain TCP and UDP sockets. The tutorial builds
//! it in three stages (`before_thread`, `with_thread`, `with_sync`); everything the stages have in
//! common lives here, once, so that each stage's own code is only what that stage teaches.
//!
//! A tour, in the order a reader meets the ideas:
//!
//! | module | what it holds |
//! |---|---|
//! | [`frame`] | how a message travels on a byte stream: a small header, then JSON |
//! | [`protocol`] | every request and reply as one Rust enum each, and the index entry |
//! | [`conn`] | a TCP connection that reads and writes frames, and the opening handshake |
//! | [`auth`] | optional shared-secret authentication of that handshake (HMAC-SHA-256) |
//! | [`paths`] | the one gate that turns a name from the network into a path inside the box |
//! | [`index`] | scanning a box, MIME types, and the `shortlist` / `regex` filters |
//! | [`watch`] | knowing that a box did not change without scanning it again (inotify) |
//! | [`timestamp`] | every timestamp form the shell accepts |
//! | [`hash`] | streaming MD5 and the cache that spares re-hashing unchanged files |
//! | [`local`] | the box this process owns and the state its threads share |
//! | [`locks`] | one reader/writer lock per file |
//! | [`serve`] | the server side of every request, used by every stage's server |
//! | [`server`] | the threaded server of stages 2 and 3, and the stop signals |
//! | [`interrupt`] | stopping the shell's commands from another thread, cleanly |
//! | [`transfer`] | the client side of a TCP download: receive, verify, install atomically |
//! | [`sink`] | where a download's bytes go: file and MD5 in one pass, large files on two cores |
//! | [`udp`] | the reliable UDP download: blocks, window, acks and gaps |
//! | [`activity`] | the one-line-per-event log in `.minibox/log` |
//! | [`shell`] | the interactive shell: grammar, output as tables or JSON, prompt and progress |
//! | [`error`] | the crate's error type |
//!
//! The binaries of each stage are thin: they parse their command line, bind a socket, and call
//! into this crate.

pub mod activity;
pub mod auth;
pub mod conn;
pub mod error;
pub mod frame;
pub mod hash;
pub mod index;
pub mod interrupt;
pub mod local;
pub mod locks;
pub mod paths;
pub mod protocol;
pub mod serve;
pub mod server;
pub mod shell;
pub mod sink;
pub mod timestamp;
pub mod transfer;
pub mod udp;
pub mod watch;

pub use error::{Error, Result};

/// The name of the folder inside every box that holds minibox's own data (temporary files, the
/// trash, the log, caches). It is never listed, served or synced.
pub const META_DIR: &str = ".minibox";

/// How long a peer may stay silent before the other side gives up on it. The contract fixes it at
/// 10 s: long enough for a slow disk, short enough that a stalled client cannot hold a one-client
/// server hostage.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Starts the `log` backend for a binary: warnings by default, more with `RUST_LOG=debug`.
/// Diagnostics go to stderr so they never mix with what the shell prints on stdout.
pub fn init_logging() {
    let env = env_logger::Env::default().default_filter_or("warn");
    // A second call (from a test harness, say) is harmless: keep the first logger.
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .try_init();
}

/// The name a box goes by when it does not get one: its folder's name.
pub fn default_name(dir: &std::path::Path) -> String {
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "box".to_string())
}

/// Prints the line every listening binary prints once it is ready, on stderr:
/// `minibox: serving DIR on ADDR`. Scripts and tests read it to learn the port (useful with
/// `--listen 127.0.0.1:0`); stderr keeps it out of the shell's output on stdout.
///
/// The line goes out in one `write`: `eprintln!` writes each piece of its format (down to the
/// parts of an address) with a system call of its own, and a script polling the file stderr
/// goes to could read half a line (`... on 127`) and take it for the address.
pub fn announce(root: &std::path::Path, addr: std::net::SocketAddr) {
    use std::io::Write;
    let line = format!("minibox: serving {} on {addr}\n", root.display());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
