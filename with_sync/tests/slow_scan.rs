//! Two boxes that take long to read (a cold or slow disk, made slow here with
//! `MINIBOX_SLOW_DISK_MS`): each round's sync listing waits for a scan longer than the 10 s idle
//! timeout. Both boxes sync at start, so the box asked for its listing is scanning for its own
//! round at the same moment: the thread serving the listing waits for that scan, and tells the
//! peer how far it is all the same. The first round must succeed, not the one after.

#![allow(clippy::unwrap_used)]

mod common;

use common::{bin, hourly, round_failures, LIMIT};
use testkit::Proc;

/// The slow box: `FOLDERS` folders of `FILES` files, each folder taking `PAUSE_MS` to read, so
/// a scan lasts about 15 s.
const FOLDERS: usize = 60;
const FILES: usize = 4;
const PAUSE_MS: &str = "250";

#[test]
fn the_first_round_waits_through_a_long_scan_on_both_sides() {
    let tmp = testkit::tempdir();
    let (mine, theirs) = (tmp.path().join("mine"), tmp.path().join("theirs"));
    for i in 0..FOLDERS {
        for j in 0..FILES {
            testkit::write(&theirs, &format!("d{i:02}/f{j}.txt"), b"x");
        }
    }
    std::fs::create_dir_all(&mine).unwrap();
    let slow = [("MINIBOX_SLOW_DISK_MS", PAUSE_MS)];
    let port = testkit::free_port();
    let my_addr = format!("127.0.0.1:{port}");
    let their_args = hourly(theirs.to_str().unwrap(), &my_addr);
    let them = Proc::start_with(bin(), &their_args, &slow);
    let their_addr = them.addr_string();
    let mut my_args = hourly(mine.to_str().unwrap(), &their_addr).to_vec();
    my_args[3] = &my_addr;
    let _me = Proc::start_with(bin(), &my_args, &slow);
    let arrived = || {
        let files = testkit::files_under(&mine);
        files.iter().filter(|f| !f.starts_with(".minibox")).count()
    };
    assert!(
        testkit::wait_until(LIMIT, || arrived() == FOLDERS * FILES),
        "{} files arrived",
        arrived()
    );
    assert_eq!(round_failures(&mine), Vec::<String>::new());
    drop(them);
}
