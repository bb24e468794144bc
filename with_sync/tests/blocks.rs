//! Big files by blocks (`docs/blocks.md`), end to end: `with_sync --once` rounds pulling from a
//! stage-1 `server` whose box the test edits between rounds. Each round is a new process, so
//! what a box knows of its blocks must come from its own `.minibox/` (the block cache, a partial
//! download). The round's JSON says what crossed the wire (`bytes`) and what was taken from this
//! box instead (`reused`); the files must end identical to the server's, byte for byte.

// Test code: a failed file operation is a failed test.
#![allow(clippy::unwrap_used)]
mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::{bin, LIMIT};
use serde_json::Value;
use testkit::{run_shell, run_shell_env, write, Proc, RunningShell, TempDir};

/// Bytes per block for the files here (4 to 250 MiB: the smallest block size).
const B: u64 = 128 * 1024;

/// The big file's size: 33 blocks, the last one short.
const SIZE: u64 = 32 * B + 1234;

/// A stage-1 server on one box, and a box of ours pulling from it.
struct Setup {
    _tmp: TempDir,
    served: PathBuf,
    mine: PathBuf,
    server: Proc,
}

impl Setup {
    fn new(fill: impl FnOnce(&Path)) -> Setup {
        let tmp = testkit::tempdir();
        let (served, mine) = (tmp.path().join("served"), tmp.path().join("mine"));
        fs::create_dir_all(&served).unwrap();
        fill(&served);
        let server_bin = testkit::sibling_bin("before_thread", "server");
        let server = Proc::start(
            server_bin.to_str().unwrap(),
            &["--dir", served.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        );
        Setup {
            _tmp: tmp,
            served,
            mine,
            server,
        }
    }

    /// One `--once` round; its `sync` object. The round must succeed.
    fn round(&self) -> Value {
        self.round_with(&[])
    }

    /// [`Setup::round`] with extra environment variables for the round.
    fn round_with(&self, env: &[(&str, &str)]) -> Value {
        let dir = self.mine.to_str().unwrap();
        let peer = self.server.addr_string();
        let args = ["--dir", dir, "--peer", &peer, "--once", "--json"];
        let run = run_shell_env(bin(), &args, "", LIMIT, env);
        assert_eq!(run.code(), 0, "{run:?}");
        let lines = run.json_lines();
        assert_eq!(lines[0]["ok"], true, "{}", run.stdout);
        lines[0]["sync"].clone()
    }

    /// Both boxes hold the same bytes (and nothing is left in `.minibox/partial/`).
    fn assert_same(&self, name: &str) {
        let (theirs, ours) = (self.served.join(name), self.mine.join(name));
        assert!(
            fs::read(&theirs).unwrap() == fs::read(&ours).unwrap(),
            "{name} differs"
        );
        let partial = testkit::files_under(&self.mine.join(".minibox/partial"));
        assert!(partial.is_empty(), "{partial:?}");
    }
}

/// `len` pseudo-random bytes.
fn random(len: u64, seed: u64) -> Vec<u8> {
    testkit::pseudo_random(len as usize, seed)
}

/// Overwrites `len` bytes of `path` at `at` with new random bytes.
fn overwrite(path: &Path, at: u64, len: u64, seed: u64) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(&random(len, seed), at).unwrap();
}

/// The round moved `bytes` over the wire and took `reused` from this box.
fn assert_moved(sync: &Value, bytes: u64, reused: u64) {
    assert_eq!(sync["bytes"], bytes, "{sync}");
    assert_eq!(sync["reused"], reused, "{sync}");
    assert_eq!(sync["failed"], 0, "{sync}");
}

#[test]
fn an_edit_at_the_start_in_the_middle_or_at_the_end_costs_the_blocks_it_touches() {
    let s = Setup::new(|served| {
        write(served, "big.bin", &random(SIZE, 1));
    });
    // The first round: a new file comes whole, by blocks.
    assert_moved(&s.round(), SIZE, 0);
    s.assert_same("big.bin");
    let big = s.served.join("big.bin");
    // The start: 100 bytes of block 0.
    overwrite(&big, 10, 100, 2);
    assert_moved(&s.round(), B, SIZE - B);
    s.assert_same("big.bin");
    // The middle: 1,000 bytes across the end of block 15 and the start of block 16.
    overwrite(&big, 16 * B - 500, 1000, 3);
    assert_moved(&s.round(), 2 * B, SIZE - 2 * B);
    s.assert_same("big.bin");
    // The end: the last, short block.
    overwrite(&big, SIZE - 10, 10, 4);
    assert_moved(&s.round(), 1234, SIZE - 1234);
    s.assert_same("big.bin");
    // Nothing changed: nothing moves.
    assert_moved(&s.round(), 0, 0);
}

#[test]
fn the_size_from_which_files_move_by_blocks_can_be_raised_to_measure_the_choice() {
    let s = Setup::new(|served| {
        write(served, "big.bin", &random(SIZE, 1));
    });
    assert_moved(&s.round(), SIZE, 0);
    let big = s.served.join("big.bin");
    // A box told that files move by blocks only from 1 TiB on moves this one whole...
    overwrite(&big, 10, 100, 2);
    let whole = [("MINIBOX_BY_BLOCKS", "1099511627776")];
    assert_moved(&s.round_with(&whole), SIZE, 0);
    s.assert_same("big.bin");
    // ...and by default, only the block the edit touched.
    overwrite(&big, 10, 100, 5);
    assert_moved(&s.round(), B, SIZE - B);
    s.assert_same("big.bin");
    // A setting that is not a number is the default.
    overwrite(&big, 10, 100, 9);
    assert_moved(&s.round_with(&[("MINIBOX_BY_BLOCKS", "lots")]), B, SIZE - B);
}

#[test]
fn a_file_grown_or_shrunk_costs_its_new_or_changed_last_blocks() {
    let s = Setup::new(|served| {
        write(served, "big.bin", &random(SIZE, 5));
    });
    s.round();
    let big = s.served.join("big.bin");
    // Grown by 300,000 bytes: the old short last block is full now (it changed), and the new
    // bytes follow it.
    let more = random(300_000, 6);
    let file = fs::OpenOptions::new().append(true).open(&big).unwrap();
    file.write_all_at(&more, SIZE).unwrap();
    drop(file);
    let grown = SIZE + 300_000;
    assert_moved(&s.round(), grown - 32 * B, 32 * B);
    s.assert_same("big.bin");
    // Shrunk to 20 blocks and a half: the new short last block is new; the rest is here.
    let shrunk = 20 * B + B / 2;
    fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(shrunk)
        .unwrap();
    assert_moved(&s.round(), B / 2, 20 * B);
    s.assert_same("big.bin");
}

#[test]
fn a_block_repeated_inside_a_file_is_copied_not_sent_again() {
    let s = Setup::new(|served| {
        write(served, "big.bin", &random(SIZE, 7));
    });
    s.round();
    let big = s.served.join("big.bin");
    // Block 5's bytes now stand at block 9 too: this box has them already.
    let file = fs::OpenOptions::new().write(true).open(&big).unwrap();
    let mut block5 = vec![0u8; B as usize];
    fs::File::open(&big)
        .unwrap()
        .read_exact_at(&mut block5, 5 * B)
        .unwrap();
    file.write_all_at(&block5, 9 * B).unwrap();
    assert_moved(&s.round(), 0, SIZE);
    s.assert_same("big.bin");
    // New bytes, written at blocks 1 and 20: they cross the wire once.
    let fresh = random(B, 8);
    file.write_all_at(&fresh, B).unwrap();
    file.write_all_at(&fresh, 20 * B).unwrap();
    assert_moved(&s.round(), B, SIZE - B);
    s.assert_same("big.bin");
}

#[test]
fn a_file_copied_inside_the_box_costs_no_bytes_big_or_small() {
    let s = Setup::new(|served| {
        write(served, "big.bin", &random(SIZE, 9));
        write(served, "small.txt", b"a small file, copied whole");
    });
    s.round();
    fs::copy(s.served.join("big.bin"), s.served.join("copies/big.bin")).unwrap_or_else(|_| {
        fs::create_dir_all(s.served.join("copies")).unwrap();
        fs::copy(s.served.join("big.bin"), s.served.join("copies/big.bin")).unwrap()
    });
    fs::copy(
        s.served.join("small.txt"),
        s.served.join("copies/small.txt"),
    )
    .unwrap();
    let sync = s.round();
    assert_eq!(sync["downloaded"], 2, "{sync}");
    assert_moved(&sync, 0, SIZE + 26);
    s.assert_same("copies/big.bin");
    s.assert_same("copies/small.txt");
}

#[test]
fn a_file_renamed_on_the_peer_is_renamed_here_no_bytes_and_nothing_trashed() {
    let s = Setup::new(|served| {
        write(served, "old/name.bin", &random(SIZE, 10));
    });
    s.round();
    fs::create_dir_all(s.served.join("new")).unwrap();
    fs::rename(s.served.join("old/name.bin"), s.served.join("new/name.bin")).unwrap();
    fs::remove_dir(s.served.join("old")).unwrap();
    let sync = s.round();
    assert_eq!(sync["moved"], 1, "{sync}");
    assert_eq!(sync["downloaded"], 0, "{sync}");
    assert_moved(&sync, 0, SIZE);
    s.assert_same("new/name.bin");
    assert!(!s.mine.join("old").exists(), "the emptied folder went too");
    let trash = testkit::files_under(&s.mine.join(".minibox/trash"));
    assert!(trash.is_empty(), "{trash:?}");
    assert_eq!(
        testkit::snapshot(&s.mine),
        testkit::snapshot(&s.served),
        "names, bytes, mtimes and bits"
    );
}

/// A first download of a big file, killed (`kill -9`) half-way: the next round takes the
/// blocks it has from `.minibox/partial/` and fetches only the rest.
#[test]
fn a_download_killed_half_way_resumes_with_the_blocks_it_has() {
    const BIG: u64 = 64 << 20;
    let s = Setup::new(|served| {
        write(served, "big.bin", &random(BIG, 11));
    });
    let kept = (0..3)
        .find_map(|_| kill_half_way(&s, BIG))
        .expect("could not catch the first download half-way in three tries");
    let sync = s.round();
    let (bytes, reused) = (
        sync["bytes"].as_u64().unwrap(),
        sync["reused"].as_u64().unwrap(),
    );
    assert_eq!(bytes + reused, BIG, "{sync}");
    // What was written and listed before the kill (all but the last MiB or so) is not sent again.
    assert!(
        reused + (2 << 20) >= kept,
        "only {reused} of {kept} kept: {sync}"
    );
    assert!(bytes < BIG, "nothing was resumed: {sync}");
    s.assert_same("big.bin");
}

/// Starts a round and kills it (`kill -9`) once its partial download holds a quarter of the file
/// and before it is whole; returns how much the partial file held. `None` if the round ended
/// first (the box is emptied for another try).
fn kill_half_way(s: &Setup, size: u64) -> Option<u64> {
    let dir = s.mine.to_str().unwrap();
    let peer = s.server.addr_string();
    let args = ["--dir", dir, "--peer", &peer, "--once", "--json"];
    let mut round = RunningShell::start(bin(), &args, "", &[]);
    let started = std::time::Instant::now();
    while testkit::partial_download(&s.mine).unwrap_or(0) < size / 4 {
        if !round.running() || started.elapsed() > LIMIT {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    round.signal("KILL");
    let _ = round.finish(LIMIT);
    let kept = testkit::partial_download(&s.mine).unwrap_or(0);
    if kept >= size / 4 && kept < size && !s.mine.join("big.bin").exists() {
        return Some(kept);
    }
    let _ = fs::remove_dir_all(&s.mine);
    None
}

/// The server's file changes while its blocks are on their way: the round installs nothing
/// (it puts the file off), and the next round takes the new version, with the blocks the two
/// versions share taken from the partial download.
#[test]
fn a_file_changed_on_the_peer_while_its_blocks_are_sent_is_not_installed() {
    const BIG: u64 = 64 << 20;
    let s = Setup::new(|served| {
        write(served, "big.bin", &random(BIG, 12));
    });
    let dir = s.mine.to_str().unwrap();
    let peer = s.server.addr_string();
    let args = ["--dir", dir, "--peer", &peer, "--once", "--json"];
    let mut round = RunningShell::start(bin(), &args, "", &[]);
    let pid = round.pid();
    let frozen = testkit::freeze_mid_download(pid, &s.mine, BIG, LIMIT, || round.running());
    assert!(
        frozen,
        "could not freeze the round in the middle of the download"
    );
    // Frozen with less than half of the file: the server is stuck before the last MiB.
    overwrite(&s.served.join("big.bin"), BIG - (1 << 20), 1 << 20, 13);
    round.signal("CONT");
    let run = round.finish(LIMIT);
    let lines = run.json_lines();
    let sync = &lines[0]["sync"];
    assert_eq!(sync["downloaded"], 0, "{}", run.stdout);
    assert_eq!(sync["skipped"], 1, "{}", run.stdout);
    assert!(
        !s.mine.join("big.bin").exists(),
        "a changed file was installed"
    );
    let log = fs::read_to_string(s.mine.join(".minibox/log")).unwrap();
    assert!(log.contains("changed while it was being sent"), "{log}");
    // The next round: the new version, most of it from the partial download.
    let sync = s.round();
    assert_eq!(sync["downloaded"], 1, "{sync}");
    assert!(sync["reused"].as_u64().unwrap() > 0, "{sync}");
    s.assert_same("big.bin");
}

/// A peer of a build from before blocks: every request passes to the real server, except
/// `blocks`, which gets `bad_request` and a closed connection, as an unknown request does there.
struct OlderPeer {
    addr: std::net::SocketAddr,
    _thread: std::thread::JoinHandle<()>,
}

impl OlderPeer {
    fn start(server: std::net::SocketAddr) -> OlderPeer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            // Bounded: the test opens a few connections.
            for client in listener.incoming().take(8).flatten() {
                let upstream = std::net::TcpStream::connect(server).unwrap();
                let (mut down, mut up) =
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up, &mut down);
                });
                std::thread::spawn(move || forward_frames(client, upstream));
            }
        });
        OlderPeer {
            addr,
            _thread: thread,
        }
    }
}

/// Passes the client's frames on, until one asks for `blocks`: that one is refused.
fn forward_frames(mut client: std::net::TcpStream, mut upstream: std::net::TcpStream) {
    use std::io::{Read, Write};
    let mut header = [0u8; 5];
    while client.read_exact(&mut header).is_ok() {
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0u8; len];
        if client.read_exact(&mut body).is_err() {
            break;
        }
        if String::from_utf8_lossy(&body).contains(r#""op":"blocks""#) {
            let refusal =
                br#"{"reply":"error","code":"bad_request","message":"unknown variant `blocks`"}"#;
            let mut frame = vec![2];
            frame.extend_from_slice(&(refusal.len() as u32).to_be_bytes());
            frame.extend_from_slice(refusal);
            let _ = client.write_all(&frame);
            break;
        }
        if upstream
            .write_all(&header)
            .and_then(|()| upstream.write_all(&body))
            .is_err()
        {
            break;
        }
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = upstream.shutdown(std::net::Shutdown::Both);
}

/// A peer that does not know `blocks` hangs up on it: the round connects again and takes its big
/// files whole; so does the shell's `download TCP` of a file the box has a version of.
#[test]
fn a_peer_that_does_not_know_blocks_gets_whole_downloads() {
    let s = Setup::new(|served| {
        write(served, "big.bin", &random(SIZE, 14));
        write(served, "small.txt", b"small");
    });
    let older = OlderPeer::start(s.server.addr);
    let dir = s.mine.to_str().unwrap();
    let peer = older.addr.to_string();
    let run = run_shell(
        bin(),
        &["--dir", dir, "--peer", &peer, "--once", "--json"],
        "",
        LIMIT,
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let sync = &run.json_lines()[0]["sync"];
    assert_eq!(sync["downloaded"], 2, "{sync}");
    assert_moved(sync, SIZE + 5, 0);
    s.assert_same("big.bin");
    // The shell: this box has a version of big.bin, so it asks for blocks first.
    overwrite(&s.served.join("big.bin"), 0, 10, 15);
    let client = testkit::sibling_bin("before_thread", "client");
    let args = ["--dir", dir, "--peer", &peer, "--json"];
    let run = run_shell(
        client.to_str().unwrap(),
        &args,
        "download TCP big.bin\n",
        LIMIT,
    );
    assert_eq!(run.code(), 0, "{run:?}");
    s.assert_same("big.bin");
}
