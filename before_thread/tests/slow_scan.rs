//! A box that takes long to read (a big box on a cold or slow disk, made slow here with
//! `MINIBOX_SLOW_DISK_MS`): the server's scan lasts longer than the client's 10 s idle timeout
//! and its 12 s of patience, and the client still gets its listing, because the server says
//! every 2 s how many files and folders it has read (`working` frames with `scanned`).

mod common;

use common::Setup;

/// Folders in the box, of `FILES` files each: each folder takes the slow disk's pause to read,
/// so the scan lasts about `FOLDERS * PAUSE_MS` = 15 s, and reads 300 files and folders, more
/// than the 100 per 12 s a client wants to see.
const FOLDERS: usize = 60;
const FILES: usize = 4;
const PAUSE_MS: &str = "250";

#[test]
fn a_listing_waits_through_a_scan_longer_than_the_idle_timeout() {
    let fill = |root: &std::path::Path| {
        for i in 0..FOLDERS {
            for j in 0..FILES {
                testkit::write(root, &format!("d{i:02}/f{j}.txt"), b"x");
            }
        }
    };
    let s = Setup::with_env(fill, &[("MINIBOX_SLOW_DISK_MS", PAUSE_MS)]);
    let started = std::time::Instant::now();
    let run = s.json("index longlist\n");
    let took = started.elapsed();
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = run.json_lines();
    assert_eq!(lines[0]["ok"], true, "{run:?}");
    let files = lines[0]["files"].as_array().expect("files");
    assert_eq!(files.len(), FOLDERS * FILES, "{run:?}");
    // Not a scan that happened to be quick: the client did wait past its idle timeout.
    assert!(took.as_secs() >= 12, "the scan took only {took:?}");
}
