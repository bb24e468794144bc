//! Layer 5: what every binary does at start, the same way: logging, and the line that says it
//! is ready.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

/// Starts the `log` backend: warnings by default, more with `RUST_LOG=debug`. Diagnostics go to
/// stderr, so they never mix with what the shell prints on stdout.
pub fn init_logging() {
    init_logging_at("warn");
}

/// [`init_logging`] with another default level: `"error"` for a shell a person watches, where
/// the program says what matters in sentences of its own.
pub fn init_logging_at(level: &str) {
    let env = env_logger::Env::default().default_filter_or(level);
    // A second call (from a test harness, say) is harmless: keep the first logger.
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .try_init();
}

/// Prints `minibox: serving DIR on ADDR` on stderr once a binary listens. Scripts and tests read
/// it to learn the port. One `write`: `eprintln!` writes its pieces separately, and a script
/// polling the file could read half a line (`... on 127`) and take it for the address.
pub fn announce(root: &Path, addr: SocketAddr) {
    let line = format!("minibox: serving {} on {addr}\n", root.display());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
