use super::*;
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// A patience whose window began longer ago than it allows.
fn run_out(p: &mut Patience) {
    p.window = Instant::now() - PATIENCE - Duration::from_millis(1);
}

#[test]
fn an_honest_server_waits_for_a_lock_then_hashes_to_the_end() {
    let mut p = Patience::new();
    p.working(0, 0).unwrap();
    p.working(0, 0).unwrap();
    p.working(0, 300 * MIB).unwrap();
    p.working(120 * MIB, 300 * MIB).unwrap();
    run_out(&mut p);
    p.working(250 * MIB, 300 * MIB).unwrap();
    p.working(300 * MIB, 300 * MIB).unwrap();
}

#[test]
fn a_total_that_changes_is_refused() {
    let mut p = Patience::new();
    p.working(10, 300 * MIB).unwrap();
    let e = p.working(20, 400 * MIB).unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e}");
    assert!(e.to_string().contains("then 419430400"), "{e}");
    // Back to "nothing counted" is a change too.
    let mut p = Patience::new();
    p.working(10, 300).unwrap();
    assert!(p.working(10, 0).is_err());
}

#[test]
fn progress_that_goes_back_or_past_the_total_is_refused() {
    let mut p = Patience::new();
    p.working(200, 300).unwrap();
    let e = p.working(100, 300).unwrap_err();
    assert!(e.to_string().contains("went back from 200 to 100"), "{e}");
    let mut p = Patience::new();
    let e = p.working(301, 300).unwrap_err();
    assert!(e.to_string().contains("hashed 301 of 300"), "{e}");
    assert!(
        Patience::new().working(1, 0).is_err(),
        "done past a total of 0"
    );
}

#[test]
fn keep_alives_without_progress_run_out() {
    let mut p = Patience::new();
    p.working(5, 100 * MIB).unwrap();
    p.working(5, 100 * MIB).unwrap();
    run_out(&mut p);
    let e = p.working(5, 100 * MIB).unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e}");
    assert!(e.to_string().contains("no real progress in 12 s"), "{e}");
}

#[test]
fn a_trickle_of_progress_is_no_progress() {
    let mut p = Patience::new();
    for done in 1..100 {
        p.working(done, 100 * MIB).unwrap();
    }
    run_out(&mut p);
    assert!(p.working(100, 100 * MIB).is_err());
}

#[test]
fn enough_progress_opens_a_new_window() {
    let mut p = Patience::new();
    run_out(&mut p);
    p.working(MIN_PROGRESS, 100 * MIB).unwrap();
    run_out(&mut p);
    p.working(2 * MIN_PROGRESS, 100 * MIB).unwrap();
    // Each window counts its own bytes: the next one starts from nothing.
    p.working(2 * MIN_PROGRESS + 1, 100 * MIB).unwrap();
    run_out(&mut p);
    assert!(p.working(2 * MIN_PROGRESS + 2, 100 * MIB).is_err());
}

#[test]
fn full_chunks_count_as_progress_and_dribbles_do_not() {
    let mut p = Patience::new();
    run_out(&mut p);
    p.items(ENTRIES_PER_CHUNK).unwrap();
    run_out(&mut p);
    p.items(ENTRIES_PER_CHUNK / 2).unwrap_err();
    let mut p = Patience::new();
    for _ in 0..10 {
        p.items(1).unwrap();
    }
    run_out(&mut p);
    assert!(p.items(1).is_err());
}

#[test]
fn a_long_scan_is_progress_while_it_reads_enough() {
    let mut p = Patience::new();
    p.scanning(MIN_SCANNED).unwrap();
    p.working(0, 0).unwrap();
    run_out(&mut p);
    p.scanning(2 * MIN_SCANNED).unwrap();
    p.working(0, 0).unwrap();
    run_out(&mut p);
    // The scan is over and hashing begins; its count stays what it was.
    p.scanning(2 * MIN_SCANNED).unwrap();
    p.working(MIN_PROGRESS, 100 * MIB).unwrap();
    // Nothing said of the scan is no claim at all.
    p.scanning(0).unwrap();
}

#[test]
fn a_scan_that_creeps_runs_out() {
    let mut p = Patience::new();
    for scanned in 1..MIN_SCANNED - 1 {
        p.scanning(scanned).unwrap();
        p.working(0, 0).unwrap();
    }
    run_out(&mut p);
    p.scanning(MIN_SCANNED - 1).unwrap();
    let e = p.working(0, 0).unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e}");
    assert!(e.to_string().contains("100 files read"), "{e}");
}

#[test]
fn a_scan_that_goes_back_or_past_any_box_is_refused() {
    let mut p = Patience::new();
    p.scanning(5_000).unwrap();
    let e = p.scanning(4_999).unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e}");
    assert!(e.to_string().contains("went back from 5000 to 4999"), "{e}");
    let e = Patience::new().scanning(MAX_SCANNED + 1).unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e}");
    Patience::new().scanning(MAX_SCANNED).unwrap();
}
