//! The activity log stays bounded: two peers in sync, rounds every 20 ms, a few hundred idle
//! rounds each; every round asks the other box for a listing, and each box serves one, yet the
//! logs hold a handful of lines (the identical ones summed up in one line with a count).

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;

use common::{bin, LIMIT};
use testkit::{write, Proc};

/// Rounds each peer runs before the logs are read.
const ROUNDS: usize = 300;

#[test]
fn a_quiet_pair_keeps_its_log_short() {
    let tmp = testkit::tempdir();
    let dirs = [tmp.path().join("box1"), tmp.path().join("box2")];
    write(&dirs[0], "a.txt", b"a");
    write(&dirs[1], "b.txt", b"b");
    let port = testkit::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let start = |i: usize, listen: &str, peer: &str| {
        let dir = dirs[i].to_str().unwrap();
        let args = [
            "--dir",
            dir,
            "--listen",
            listen,
            "--peer",
            peer,
            "--interval",
            "0.02",
        ];
        Proc::start_with(bin(), &args, &[("RUST_LOG", "with_sync=info")])
    };
    let mut second = start(1, "127.0.0.1:0", &listen);
    let mut first = start(0, &listen, &second.addr_string());
    let rounds = |p: &Proc| p.stderr_text().matches("round done").count();
    let done = testkit::wait_until(LIMIT * 2, || {
        rounds(&first) >= ROUNDS && rounds(&second) >= ROUNDS
    });
    assert!(done, "{} and {} rounds", rounds(&first), rounds(&second));
    // A clean stop writes the count of the run still going.
    for p in [&mut first, &mut second] {
        p.signal("TERM");
        assert!(p.wait_exit(LIMIT).is_some_and(|s| s.success()));
    }
    for dir in &dirs {
        let log = fs::read_to_string(dir.join(".minibox/log")).unwrap();
        let lines = log.lines().count();
        assert!(lines <= 12, "{lines} lines after {ROUNDS} rounds:\n{log}");
        assert!(
            log.contains("more times since"),
            "the repeats are counted:\n{log}"
        );
        assert!(log.lines().all(|l| l.split('\t').count() == 4), "{log}");
    }
}
