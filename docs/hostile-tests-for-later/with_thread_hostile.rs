//! Hostile input against `with_thread`: every attack of [`testkit::attack`], over real sockets.
//! A threaded box must answer an honest client *while* silent, stalled and 200 idle
//! connections are open (`Serving::Concurrent`).
//!
//! To enable: copy to `with_thread/tests/hostile.rs` once the `with_thread` binary exists
//! (see README.md beside this file).

use std::path::Path;

use testkit::attack::{run_all, Serving, Target};
use testkit::Proc;

fn launch(dir: &Path) -> Proc {
    let dir = dir.to_str().expect("a UTF-8 temp path");
    // The peer is a port nothing listens on: these tests attack the serving side only. Proc
    // keeps stdin open, so the shell waits quietly.
    Proc::start(
        env!("CARGO_BIN_EXE_with_thread"),
        &["--dir", dir, "--listen", "127.0.0.1:0", "--peer", "127.0.0.1:9"],
    )
}

#[test]
fn with_thread_survives_every_attack() {
    let report = run_all(&Target::new("with_thread", &launch, Serving::Concurrent));
    assert_eq!(report.survived as usize, testkit::attack::ATTACKS.len());
    assert_eq!(report.bytes_outside, 0);
}
