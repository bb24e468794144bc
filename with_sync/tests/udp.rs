//! `download UDP` from with_sync's shell (which with_sync runs when stdin is a terminal), against
//! another with_sync box: the stage-3 binary serves UDP downloads and its shell makes them.
//!
//! The terminal comes from util-linux `script(1)` (see `testkit::Terminal`); where it is missing
//! the test fails and says what to install.

// Test helpers: a failed file operation here is a failed test, so unwrap is the right answer.
#![allow(clippy::unwrap_used)]

mod common;

use common::{bin, LIMIT};
use testkit::Proc;

#[test]
fn the_shell_of_with_sync_downloads_over_udp() {
    let bin = bin();
    let tmp = testkit::tempdir();
    let (theirs, mine) = (tmp.path().join("theirs"), tmp.path().join("mine"));
    let bytes = testkit::pseudo_random((5 << 20) + 11, 21);
    let path = testkit::write(&theirs, "data/big.bin", &bytes);
    testkit::chmod(&path, 0o640);
    testkit::set_mtime(&path, 1_700_000_000_123_456_789);
    let (theirs_s, mine_s) = (theirs.to_str().unwrap(), mine.to_str().unwrap());
    // Their box only serves (no terminal, so no shell); its own rounds pull from nobody, rarely.
    let peer = Proc::start(bin, &common::hourly(theirs_s, common::NOBODY));
    let peer_addr = peer.addr_string();
    let mut term =
        testkit::Terminal::start(bin, &common::hourly(mine_s, &peer_addr), &[("TZ", "UTC")]);
    assert!(
        term.wait_for(">> ", 1, LIMIT),
        "no prompt:\n{}",
        term.shown()
    );
    term.type_keys("download UDP data/big.bin\r");
    assert!(
        term.wait_for("received over UDP", 1, LIMIT),
        "no UDP download:\n{}",
        term.shown()
    );
    assert!(term.wait_for(">> ", 2, LIMIT), "{}", term.shown());
    term.type_keys("quit\r");
    assert!(term.wait_exit(LIMIT).is_some(), "{}", term.shown());
    let want = testkit::snapshot(&theirs);
    let got = testkit::snapshot(&mine);
    assert!(
        got["data/big.bin"] == want["data/big.bin"],
        "bytes, mode or mtime differ"
    );
    assert!(std::fs::read(mine.join("data/big.bin")).unwrap() == bytes);
}
