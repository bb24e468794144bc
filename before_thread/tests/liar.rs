//! The stage-1 `client` against a lying server ([`testkit::liar`]): names that leave the box, a
//! size or MD5 that does not match the bytes, a million-entry listing, transfers that stall or
//! trickle. Each must end with a clear error, exit status 1, and nothing installed.

use std::path::Path;
use std::time::Duration;

use testkit::liar::Lie;
use testkit::{run_shell, ShellRun};

fn pull(lie: Lie, peer: &str, dir: &Path) -> ShellRun {
    let dir = dir.to_str().expect("a UTF-8 temp path");
    run_shell(
        env!("CARGO_BIN_EXE_client"),
        &["--dir", dir, "--peer", peer, "--json"],
        lie.shell_input(),
        Duration::from_secs(90),
    )
}

testkit::liar_tests!(pull, Some(1));
