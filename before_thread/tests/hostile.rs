//! Hostile input against the stage-1 `server`: every attack of [`testkit::attack`], over real
//! sockets, each followed by an honest client's check and a check of the canary folder beside
//! the box. Run with `--nocapture` to see the table of inputs tried.

use std::path::Path;

use testkit::attack::{run_all, Serving, Target};
use testkit::Proc;

fn launch(dir: &Path) -> Proc {
    let dir = dir.to_str().expect("a UTF-8 temp path");
    Proc::start(
        env!("CARGO_BIN_EXE_server"),
        &["--dir", dir, "--listen", "127.0.0.1:0"],
    )
}

#[test]
fn the_server_survives_every_attack() {
    let report = run_all(&Target::new("server", &launch, Serving::OneAtATime));
    report.assert_clean();
}
