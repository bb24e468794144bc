//! Hostile input against `with_sync`'s server side: every attack of [`testkit::attack`].

use std::path::Path;

use testkit::attack::{run_all, Serving, Target};
use testkit::Proc;

fn launch(dir: &Path) -> Proc {
    let dir = dir.to_str().expect("a UTF-8 temp path");
    // A peer nothing listens on, and a long interval: the background rounds fail quietly and
    // write nothing into the box while it is attacked.
    Proc::start(
        env!("CARGO_BIN_EXE_with_sync"),
        &[
            "--dir",
            dir,
            "--listen",
            "127.0.0.1:0",
            "--peer",
            "127.0.0.1:9",
            "--interval",
            "3600",
        ],
    )
}

#[test]
fn with_sync_survives_every_attack() {
    let report = run_all(&Target::new("with_sync", &launch, Serving::Concurrent));
    assert_eq!(report.survived as usize, testkit::attack::ATTACKS.len());
    assert_eq!(report.bytes_outside, 0);
}
