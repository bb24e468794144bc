//! `with_sync --once` against a lying server ([`testkit::liar`]): every lie must end the round
//! with a non-zero status, a clear sentence, and nothing installed.

use std::path::Path;
use std::time::Duration;

use testkit::liar::Lie;
use testkit::{run_shell, ShellRun};

fn pull(_lie: Lie, peer: &str, dir: &Path) -> ShellRun {
    let dir = dir.to_str().expect("a UTF-8 temp path");
    // One round, pulling from the liar; nothing on stdin.
    run_shell(
        env!("CARGO_BIN_EXE_with_sync"),
        &["--dir", dir, "--peer", peer, "--once"],
        "",
        Duration::from_secs(90),
    )
}

// `None`: any non-zero exit status is a failure status for `--once`.
testkit::liar_tests!(pull, None);
