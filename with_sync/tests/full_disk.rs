//! A receiving box on a disk too small for one of the files: every round installs the files
//! that fit, fails the one that does not, says so on stderr (once, not round after round) and in
//! the box's log, and installs it as soon as space is freed, without sending the others again.
//!
//! The small disk is a `tmpfs` of 8 MiB (mounting needs root; CI runs as root), the sender a
//! stage-1 server with a 15 MiB file and three small ones. Elsewhere the test prints why it
//! skipped.

// Test code: a failed file operation is a failed test.
#![allow(clippy::unwrap_used)]
mod common;

use std::fs;
use std::path::Path;

use common::{bin, LIMIT};
use serde_json::Value;
use testkit::small_disk::SmallDisk;
use testkit::{run_shell, write, Proc};

/// The small disk: room for the small files, the box's metadata and half the big file.
const DISK: u64 = 8 << 20;
/// The file that does not fit.
const BIG: &str = "a-big.bin";
const BIG_SIZE: usize = 15 << 20;
/// The ones that do. In path order the big file comes first.
const SMALL: [&str; 3] = ["b.txt", "c/d.txt", "z.txt"];
/// What the disk says.
const NO_SPACE: &str = "the disk is full";

#[test]
fn a_full_disk_fails_only_the_file_that_does_not_fit_and_it_follows_once_space_is_freed() {
    let disk = match SmallDisk::mount(DISK) {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: this test needs a small tmpfs, and {why}");
            return;
        }
    };
    let tmp = testkit::tempdir();
    let served = tmp.path().join("served");
    write(&served, BIG, &testkit::pseudo_random(BIG_SIZE, 13));
    for (i, name) in SMALL.iter().enumerate() {
        write(&served, name, format!("small file {i}\n").as_bytes());
    }
    let server_bin = testkit::sibling_bin("before_thread", "server");
    let server = Proc::start(
        server_bin.to_str().unwrap(),
        &["--dir", served.to_str().unwrap(), "--listen", "127.0.0.1:0"],
    );
    let mine = disk.path().join("mine");

    background_rounds_install_what_fits_and_say_the_failure_once(&mine, &served, &server);
    let again = once(&mine, &server);
    assert_eq!(again["ok"], false, "{again}");
    assert_eq!(
        again["sync"]["downloaded"], 0,
        "nothing sent twice: {again}"
    );
    assert_eq!(again["sync"]["skipped"], 0, "nothing put off: {again}");
    assert_eq!(again["sync"]["failed"], 1, "{again}");

    disk.grow(8 * DISK);
    let freed = once(&mine, &server);
    assert_eq!(freed["ok"], true, "{freed}");
    assert_eq!(freed["sync"]["downloaded"], 1, "{freed}");
    assert_eq!(freed["sync"]["bytes"], BIG_SIZE, "only the big file moved");
    assert_eq!(testkit::snapshot(&mine), testkit::snapshot(&served));
    assert_no_temporary_files(&mine);
}

/// A `with_sync` peer on the small disk runs a few rounds: the small files are installed, the
/// big one fails every round, stderr says so once, the log every round.
fn background_rounds_install_what_fits_and_say_the_failure_once(
    mine: &Path,
    served: &Path,
    server: &Proc,
) {
    let mine_arg = mine.to_str().unwrap();
    let peer = server.addr_string();
    let args = [
        "--dir",
        mine_arg,
        "--listen",
        "127.0.0.1:0",
        "--peer",
        &peer,
        "--interval",
        "0.2",
    ];
    let mut daemon = Proc::start_with(bin(), &args, &[("RUST_LOG", "with_sync=info")]);
    let rounds = || daemon.stderr_text().matches("round done").count();
    assert!(
        testkit::wait_until(LIMIT, || rounds() >= 3),
        "{}",
        daemon.stderr_text()
    );
    daemon.signal("TERM");
    assert!(daemon.wait_exit(LIMIT).is_some_and(|s| s.success()));

    let stderr = daemon.stderr_text();
    // (The info lines of each round, shown in tests only, repeat the error too.)
    let warnings = stderr.lines().filter(|l| l.contains("WARN"));
    let said: Vec<&str> = warnings.filter(|l| l.contains(NO_SPACE)).collect();
    assert_eq!(said.len(), 1, "said once on stderr:\n{stderr}");
    assert!(said[0].contains(BIG), "{}", said[0]);
    for name in SMALL {
        assert_eq!(
            fs::read(mine.join(name)).ok(),
            fs::read(served.join(name)).ok()
        );
    }
    assert!(!mine.join(BIG).exists());
    let log = fs::read_to_string(mine.join(".minibox/log")).unwrap();
    let failed = log
        .lines()
        .filter(|l| l.contains(&format!("sync download {BIG:?}")) && l.contains(NO_SPACE))
        .count();
    assert!(failed >= 3, "one line per round in the log:\n{log}");
    assert!(!log.contains("put off"), "{log}");
    assert_no_temporary_files(mine);
}

/// One `--once --json` round; its JSON line.
fn once(mine: &Path, server: &Proc) -> Value {
    let args = [
        "--dir",
        mine.to_str().unwrap(),
        "--peer",
        &server.addr_string(),
        "--once",
        "--json",
    ];
    let run = run_shell(bin(), &args, "", LIMIT);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 1, "{run:?}");
    let failed = lines[0]["sync"]["failed"].as_u64().unwrap_or(0);
    if failed > 0 {
        assert!(run.stderr.contains(NO_SPACE), "said on stderr: {run:?}");
    }
    lines[0].clone()
}

/// Nothing is left in `.minibox/tmp/` of the box (nor in its lanes).
fn assert_no_temporary_files(root: &Path) {
    let left = testkit::files_under(&root.join(".minibox/tmp"));
    assert!(left.is_empty(), "{left:?}");
}
