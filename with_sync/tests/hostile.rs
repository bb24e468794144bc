//! Hostile input against `with_sync`'s server side: every attack of [`testkit::attack`], without
//! and with `--secret-file`. Run with `--nocapture` to see the table of inputs tried.

mod common;

use std::path::Path;

use minibox::local::auth::Secret;
use minibox::wire::conn::Connection;
use testkit::attack::{run_all, Serving, Target};
use testkit::Proc;

/// Starts with_sync serving `dir`, with extra arguments.
fn launch_with(dir: &Path, extra: &[&str]) -> Proc {
    let dir = dir.to_str().expect("a UTF-8 temp path");
    // A peer nothing listens on, and a long interval: the background rounds fail quietly and
    // write nothing into the box while it is attacked.
    let mut args = common::hourly(dir, common::NOBODY).to_vec();
    args.extend_from_slice(extra);
    Proc::start(common::bin(), &args)
}

#[test]
fn with_sync_survives_every_attack() {
    let launch = |dir: &Path| launch_with(dir, &[]);
    run_all(&Target::new("with_sync", &launch, Serving::Concurrent)).assert_clean();
}

const SECRET: &[u8] = b"with_sync's shared secret, 32+ bytes long";

fn connect_with_secret(addr: &str) -> minibox::Result<Connection> {
    let secret = Secret::from_bytes(SECRET.to_vec())?;
    minibox::wire::handshake::connect(addr, "checker", Some(&secret))
}

#[test]
fn with_sync_with_a_secret_survives_every_attack() {
    let keys = testkit::tempdir();
    let file = keys.path().join("secret");
    std::fs::write(&file, SECRET).expect("write the secret");
    testkit::chmod(&file, 0o600);
    let file = file.to_str().expect("a UTF-8 temp path").to_string();
    let launch = |dir: &Path| launch_with(dir, &["--secret-file", &file]);
    let target = Target {
        name: "with_sync --secret-file",
        launch: &launch,
        serving: Serving::Concurrent,
        connect: &connect_with_secret,
    };
    run_all(&target).assert_clean();
}
