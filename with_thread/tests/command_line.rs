//! The command line: `--help`, `--version`, and bad arguments (exit status 2 with a usage line).

mod common;

use std::process::Command;

use common::*;

#[test]
fn help_and_version_answer_and_bad_arguments_exit_2() {
    let help = Command::new(BIN).arg("--help").output().expect("runs");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in ["--dir", "--listen", "--peer", "--json"] {
        assert!(text.contains(flag), "{text}");
    }
    let version = Command::new(BIN).arg("--version").output().expect("runs");
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));

    let tmp = testkit::tempdir();
    let dir = path_str(tmp.path());
    for args in [
        vec!["--dir", dir, "--listen", "127.0.0.1:0"],
        vec!["--dir", dir, "--peer", NOBODY],
        vec![
            "--dir",
            dir,
            "--listen",
            "127.0.0.1:0",
            "--peer",
            NOBODY,
            "--bogus",
        ],
    ] {
        let out = Command::new(BIN).args(&args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
    }
}

#[test]
fn an_address_it_cannot_listen_on_is_one_clear_error() {
    let tmp = testkit::tempdir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args([
            "--dir",
            path_str(tmp.path()),
            "--listen",
            &addr,
            "--peer",
            NOBODY,
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot listen on") && err.contains(&addr),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
