//! One transfer of one file at a time per box: a shell download and a sync round of the same box
//! that want the same file move its bytes once. Counted on the sending side: its server logs one
//! `download` line per download request it answered, whatever the outcome.
//!
//! - The round first: `with_sync` on a terminal, its first round fetching a 64 MiB file whose
//!   sender is frozen (SIGSTOP) half-way; `download TCP` typed meanwhile waits for the round,
//!   then asks only for the file's MD5 and finds it installed.
//! - The shell first: the shell's side (a claim, then `download_tcp`, as `shell::turn` does it)
//!   held in the middle of its bytes while a round of the same box runs, in one process; the
//!   round puts the file off, and the next one finds it installed.

// Test code: a failed file operation is a failed test.
#![allow(clippy::unwrap_used)]
mod common;

use std::fs;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;

use common::{bin, LIMIT};
use minibox::ask::download::download_tcp;
use minibox::local::LocalBox;
use testkit::{Proc, Terminal};
use with_sync::round::Syncer;
use with_sync::state::Book;

/// The file both want: far larger than the socket buffers, so a frozen sender holds it midway.
const BIG: &str = "big.bin";
const BIG_SIZE: usize = 64 << 20;

/// A box that only serves (its own rounds pull from a port nobody listens on, once an hour),
/// holding the big file.
fn sender(dir: &Path) -> Proc {
    testkit::write(dir, BIG, &testkit::pseudo_random(BIG_SIZE, 21));
    let args = common::hourly(dir.to_str().unwrap(), common::NOBODY);
    Proc::start(bin(), &args)
}

/// The requests for the big file's bytes the sender answered, and its log.
fn downloads_served(dir: &Path) -> (usize, String) {
    let log = fs::read_to_string(dir.join(".minibox/log")).unwrap_or_default();
    // A transfer starts with a whole download, or with the block list of one by blocks (whose
    // ranges follow).
    let starts = [format!("download tcp {BIG:?}"), format!("blocks {BIG:?}")];
    let count = log
        .lines()
        .filter(|l| starts.iter().any(|s| l.contains(s)))
        .count();
    (count, log)
}

#[test]
fn a_shell_download_of_a_file_the_round_is_fetching_waits_for_it_and_moves_no_bytes() {
    let tmp = testkit::tempdir();
    let (theirs, mine) = (tmp.path().join("theirs"), tmp.path().join("mine"));
    let sending = sender(&theirs);
    let peer = sending.addr_string();
    let args = common::hourly(mine.to_str().unwrap(), &peer);
    let mut term = Terminal::start(bin(), &args, &[]);
    // The first round starts at once; hold its transfer half-way.
    let frozen =
        testkit::freeze_mid_download(sending.child.id(), &mine, BIG_SIZE as u64, LIMIT, || true);
    assert!(frozen, "the round's transfer was not caught half-way");
    assert!(term.wait_for(">> ", 1, LIMIT), "{}", term.shown());
    term.type_keys(&format!("download TCP {BIG}\r"));
    let waiting = term.wait_for("a sync round is downloading it; waiting", 1, LIMIT);
    sending.signal("CONT");
    assert!(waiting, "the shell did not wait:\n{}", term.shown());
    assert!(
        term.wait_for("verified", 1, LIMIT),
        "the download did not end well:\n{}",
        term.shown()
    );
    term.type_keys("quit\r");
    assert!(term.wait_exit(LIMIT).is_some_and(|s| s.success()));

    assert_eq!(
        fs::read(mine.join(BIG)).unwrap(),
        fs::read(theirs.join(BIG)).unwrap()
    );
    let found = testkit::wait_until(LIMIT, || {
        downloads_served(&theirs)
            .1
            .contains(&format!("hash {BIG:?}"))
    });
    let (served, log) = downloads_served(&theirs);
    assert!(found, "the shell asked for the MD5:\n{log}");
    assert_eq!(served, 1, "the bytes crossed once:\n{log}");
}

#[test]
fn a_round_leaves_a_file_the_shell_is_fetching_and_the_next_round_moves_no_bytes() {
    let tmp = testkit::tempdir();
    let (theirs, mine) = (tmp.path().join("theirs"), tmp.path().join("mine"));
    let sending = sender(&theirs);
    let peer = sending.addr_string();
    let local = Arc::new(LocalBox::open(&mine, "mine").unwrap());
    let syncer = Syncer::new(
        Arc::clone(&local),
        Arc::new(Book::open(&local.meta_dir())),
        peer.clone(),
    );
    let (flowing_tx, flowing) = mpsc::channel();
    let (round_over, round_over_rx) = mpsc::channel::<()>();
    let (local_ref, peer_ref) = (&local, &peer);
    let first = std::thread::scope(|scope| {
        let shell = scope.spawn(move || {
            // The shell's side: the claim first (nobody holds it), then the transfer.
            let (_claim, waited) = local_ref
                .inflight
                .claim(BIG, "the shell", &mut |_| false)
                .unwrap();
            assert!(!waited);
            let mut conn = minibox::ask::connect(local_ref, peer_ref).unwrap();
            let mut held = false;
            download_tcp(&mut conn, local_ref, BIG, &mut |done, _| {
                // Hold the transfer mid-way (once) until the round is over.
                if done > 0 && !held {
                    held = true;
                    let _ = flowing_tx.send(());
                    let _ = round_over_rx.recv_timeout(LIMIT);
                }
            })
        });
        flowing.recv_timeout(LIMIT).unwrap();
        let first = syncer.round();
        let _ = round_over.send(());
        let fetched = shell.join().unwrap();
        assert!(fetched.is_ok(), "{fetched:?}");
        first.unwrap()
    });
    assert_eq!((first.downloaded, first.skipped), (0, 1), "{first:?}");
    let log = fs::read_to_string(local.log.path()).unwrap();
    assert!(
        log.contains("put off: the shell is downloading it now"),
        "{log}"
    );

    let second = syncer.round().unwrap();
    assert_eq!((second.downloaded, second.bytes, second.skipped), (0, 0, 0));
    assert_eq!(
        fs::read(mine.join(BIG)).unwrap(),
        fs::read(theirs.join(BIG)).unwrap()
    );
    assert!(local.inflight.is_empty());
    let (served, log) = downloads_served(&theirs);
    assert_eq!(served, 1, "the bytes crossed once:\n{log}");
}
