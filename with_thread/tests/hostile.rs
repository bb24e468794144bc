//! Hostile input against `with_thread`: every attack of [`testkit::attack`], over real sockets.
//! A threaded box must answer an honest client *while* silent, stalled and 200 idle
//! connections are open (`Serving::Concurrent`).

use std::path::{Path, PathBuf};

use minibox::local::auth::Secret;
use minibox::wire::conn::Connection;

use testkit::attack::{run_all, Serving, Target};
use testkit::Proc;

fn launch(dir: &Path) -> Proc {
    let dir = dir.to_str().expect("a UTF-8 temp path");
    // The peer is a port nothing listens on: these tests attack the serving side only. Proc
    // keeps stdin open, so the shell waits quietly.
    Proc::start(
        env!("CARGO_BIN_EXE_with_thread"),
        &[
            "--dir",
            dir,
            "--listen",
            "127.0.0.1:0",
            "--peer",
            "127.0.0.1:9",
        ],
    )
}

#[test]
fn with_thread_survives_every_attack() {
    run_all(&Target::new("with_thread", &launch, Serving::Concurrent)).assert_clean();
}

const SECRET: &[u8] = b"with_thread's shared secret, 32+ bytes long";

fn launch_with_secret(dir: &Path, secret: &Path) -> Proc {
    let dir = dir.to_str().expect("a UTF-8 temp path");
    let secret = secret.to_str().expect("a UTF-8 temp path");
    Proc::start(
        env!("CARGO_BIN_EXE_with_thread"),
        &[
            "--dir",
            dir,
            "--listen",
            "127.0.0.1:0",
            "--peer",
            "127.0.0.1:9",
            "--secret-file",
            secret,
        ],
    )
}

fn connect_with_secret(addr: &str) -> minibox::Result<Connection> {
    let secret = Secret::from_bytes(SECRET.to_vec())?;
    minibox::wire::handshake::connect(addr, "checker", Some(&secret))
}

#[test]
fn with_thread_with_a_secret_survives_every_attack() {
    let keys = testkit::tempdir();
    let file: PathBuf = keys.path().join("secret");
    std::fs::write(&file, SECRET).expect("write the secret");
    testkit::chmod(&file, 0o600);
    let launch = |dir: &Path| launch_with_secret(dir, &file);
    let target = Target {
        name: "with_thread --secret-file",
        launch: &launch,
        serving: Serving::Concurrent,
        connect: &connect_with_secret,
    };
    run_all(&target).assert_clean();
}
