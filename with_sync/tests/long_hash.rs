//! A file so large that the peer hashes it for longer than the idle timeout: its server says it
//! is still working, with its progress, from inside that one hash, so a round that meets a big
//! new file syncs it in one go, and `hash verify` of it answers.
//!
//! The file is sparse (its size costs no disk on the serving side) and sized for this machine:
//! a quick measure of how fast MD5 runs here now decides how many bytes take about
//! [`HASH_FOR`] to hash.

// Test code: a failed file operation is a failed test.
#![allow(clippy::unwrap_used)]
mod common;

use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, Instant};

use common::bin;
use minibox::protocol::md5::Hasher;
use testkit::{run_shell, Proc};

/// How long the serving side should take to hash the file: well past the idle timeout.
const HASH_FOR: Duration = Duration::from_secs(18);

/// The size bounds, whatever the measure says: big enough to matter, small enough to write.
const SMALLEST: u64 = 2 << 30;
const LARGEST: u64 = 10 << 30;

/// The generous bound on each run (a loaded machine hashes slowly).
const LIMIT: Duration = Duration::from_secs(600);

/// Bytes that take about [`HASH_FOR`] to hash here, now.
fn size_for_this_machine() -> u64 {
    let zeros = vec![0u8; 1 << 20];
    let started = Instant::now();
    let mut hasher = Hasher::new();
    for _ in 0..256 {
        hasher.update(&zeros);
    }
    let _ = hasher.digest();
    let per_sec = (256u64 << 20) as f64 / started.elapsed().as_secs_f64();
    let size = (per_sec * HASH_FOR.as_secs_f64()) as u64;
    size.clamp(SMALLEST, LARGEST) & !((1 << 20) - 1)
}

/// A sparse file of `size` bytes with a few real bytes at the end.
fn sparse(path: &Path, size: u64) {
    let file = File::create(path).unwrap();
    file.set_len(size).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, b"the end\n", size - 8).unwrap();
}

#[test]
fn a_big_file_never_hashed_syncs_in_one_round_and_hash_verify_answers() {
    let tmp = testkit::tempdir();
    let (served, mine) = (tmp.path().join("served"), tmp.path().join("mine"));
    fs::create_dir_all(&served).unwrap();
    let size = size_for_this_machine();
    sparse(&served.join("big.bin"), size);
    let server_bin = testkit::sibling_bin("before_thread", "server");
    let server = Proc::start(
        server_bin.to_str().unwrap(),
        &["--dir", served.to_str().unwrap(), "--listen", "127.0.0.1:0"],
    );
    let peer = server.addr_string();

    let started = Instant::now();
    let args = ["--dir", mine.to_str().unwrap(), "--peer", &peer, "--once"];
    let run = run_shell(bin(), &[&args[..], &["--json"]].concat(), "", LIMIT);
    eprintln!(
        "a round with a new file of {size} bytes: {:?}",
        started.elapsed()
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let sync = &run.json_lines()[0]["sync"];
    assert_eq!(sync["downloaded"], 1, "{}", run.stdout);
    assert_eq!(sync["failed"], 0, "{}", run.stdout);
    assert_eq!(fs::metadata(mine.join("big.bin")).unwrap().len(), size);
    // Gigabytes of zeros on disk: gone at once.
    fs::remove_file(mine.join("big.bin")).unwrap();

    // A new mtime: the server's stat cache no longer vouches for the MD5, so it reads it again.
    testkit::set_mtime(&served.join("big.bin"), 1_700_000_000_000_000_000);
    hash_verify_answers(&peer, &tmp.path().join("asker"), size);
}

fn hash_verify_answers(peer: &str, dir: &Path, size: u64) {
    let started = Instant::now();
    let client = testkit::sibling_bin("before_thread", "client");
    let args = ["--dir", dir.to_str().unwrap(), "--peer", peer, "--json"];
    let run = run_shell(
        client.to_str().unwrap(),
        &args,
        "hash verify big.bin\n",
        LIMIT,
    );
    eprintln!("hash verify of {size} bytes: {:?}", started.elapsed());
    assert_eq!(run.code(), 0, "{run:?}");
    let answer = &run.json_lines()[0];
    assert_eq!(answer["ok"], true, "{}", run.stdout);
    assert_eq!(answer["files"][0]["size"], size);
    assert_eq!(answer["files"][0]["md5"].as_str().unwrap().len(), 32);
}
