//! `download UDP` end to end: the real `server` and `client` binaries, on loopback, directly and
//! through a relay that damages datagrams (drops, duplicates, reorders) in both directions.
//!
//! Every download is checked byte for byte against the source, with its mtime and permission
//! bits, and the JSON output must say `"transport": "udp"`. When the relay drops everything, the
//! client must fail with a clear sentence within a bounded time, install nothing, leave nothing in
//! `.minibox/tmp`, and the server must go on serving.

// Helpers of a test crate may unwrap like the tests themselves (clippy.toml only covers #[test]).
#![allow(clippy::unwrap_used)]

use std::fs::{self, File, FileTimes};
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use testkit::relay::{Damage, Relay};
use testkit::{Proc, TempDir};

const SERVER: &str = env!("CARGO_BIN_EXE_server");
const CLIENT: &str = env!("CARGO_BIN_EXE_client");
/// A generous bound for one shell run: a download that stalls is a failure, not a hang.
const LIMIT: Duration = Duration::from_secs(120);
/// The big file's mtime: 2021-03-04 05:06:07.123456789 UTC.
const MTIME: Duration = Duration::new(1_614_834_367, 123_456_789);

/// A server box with a multi-megabyte file `big.bin` (mode 0640, an old mtime), and the server.
struct Setup {
    source: TempDir,
    server: Proc,
    size: usize,
}

fn setup(size: usize, seed: u64) -> Setup {
    let source = testkit::tempdir();
    let path = testkit::write(
        source.path(),
        "big.bin",
        &testkit::pseudo_random(size, seed),
    );
    testkit::chmod(&path, 0o640);
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_times(FileTimes::new().set_modified(SystemTime::UNIX_EPOCH + MTIME))
        .unwrap();
    let dir = source.path().to_str().unwrap().to_string();
    let server = Proc::start(SERVER, &["--dir", &dir, "--listen", "127.0.0.1:0"]);
    Setup {
        source,
        server,
        size,
    }
}

/// Runs `input` in a JSON client shell on a fresh box, against `peer`.
fn client(peer: &str, input: &str) -> (TempDir, testkit::ShellRun) {
    let dest = testkit::tempdir();
    let dir = dest.path().to_str().unwrap().to_string();
    let run = testkit::run_shell(
        CLIENT,
        &["--dir", &dir, "--peer", peer, "--json"],
        input,
        LIMIT,
    );
    (dest, run)
}

/// Asserts that `dest/name` is `source/name`: bytes, mtime to the nanosecond, permission bits.
fn assert_same_file(source: &Path, dest: &Path, name: &str) {
    let a = testkit::snapshot(source);
    let b = testkit::snapshot(dest);
    let (Some(want), Some(got)) = (a.get(name), b.get(name)) else {
        panic!(
            "{name} missing: source has {:?}, copy has {:?}",
            a.keys(),
            b.keys()
        );
    };
    assert!(got.1 == want.1, "{name}: the bytes differ");
    assert_eq!(got.2, want.2, "{name}: permission bits");
    assert_eq!(got.3, want.3, "{name}: mtime");
}

fn tmp_is_empty(root: &Path) -> bool {
    fs::read_dir(root.join(".minibox").join("tmp"))
        .map(|d| d.count() == 0)
        .unwrap_or(true)
}

/// Downloads big.bin over UDP through a relay with `damage`; checks everything; returns the
/// relay's counters (seen, dropped) for client-to-server and server-to-client.
fn download_through(damage: Damage, size: usize) -> ((u64, u64), (u64, u64)) {
    let s = setup(size, damage.seed);
    let relay = Relay::start(s.server.addr, damage);
    let (dest, run) = client(&relay.addr().to_string(), "download UDP big.bin\n");
    let lines = run.json_lines();
    assert_eq!(
        run.code(),
        0,
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert_eq!(lines.len(), 1, "{}", run.stdout);
    let v = &lines[0];
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["transport"], "udp");
    assert_eq!(v["verified"], true);
    assert_eq!(v["file"]["path"], "big.bin");
    assert_eq!(v["file"]["size"], s.size as u64);
    assert_eq!(v["file"]["mtime"], "2021-03-04T05:06:07.123456789Z");
    assert_same_file(s.source.path(), dest.path(), "big.bin");
    assert!(tmp_is_empty(dest.path()));
    let up = relay.stats().to_server.get();
    let down = relay.stats().to_client.get();
    ((up.0, up.1), (down.0, down.1))
}

#[test]
fn udp_download_without_loss_is_identical() {
    let ((up, up_dropped), (down, down_dropped)) = download_through(Damage::none(), 6 << 20);
    assert!(up > 0 && down > 0, "the datagrams went through the relay");
    assert_eq!((up_dropped, down_dropped), (0, 0));
}

#[test]
fn udp_download_at_10_percent_loss_is_identical() {
    let ((up, up_dropped), (down, down_dropped)) =
        download_through(Damage::lossy(0.10, 10), 6 << 20);
    // The damage really happened, both ways.
    assert!(
        up_dropped > 0 && down_dropped > 0,
        "{up_dropped} {down_dropped}"
    );
    assert!(down > 6 << 20 >> 15, "at least one datagram per block");
    let _ = up;
}

#[test]
fn udp_download_at_30_percent_loss_is_identical() {
    let ((_, up_dropped), (down, down_dropped)) =
        download_through(Damage::lossy(0.30, 30), 6 << 20);
    assert!(up_dropped > 0 && down_dropped > 0);
    // With 30 % lost, the server had to send noticeably more datagrams than there are blocks.
    let blocks = (6u64 << 20) >> 15;
    assert!(
        down > blocks + blocks / 5,
        "{down} datagrams for {blocks} blocks"
    );
}

#[test]
fn udp_download_fails_clearly_when_every_datagram_is_dropped() {
    let s = setup(1 << 20, 99);
    let relay = Relay::start(s.server.addr, Damage::everything_dropped());
    let started = Instant::now();
    let (dest, run) = client(&relay.addr().to_string(), "download UDP big.bin\n");
    let took = started.elapsed();
    assert_eq!(
        run.code(),
        1,
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    let v = &run.json_lines()[0];
    assert_eq!(v["ok"], false);
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("UDP") && error.contains("gave up") && !error.contains('\n'),
        "{error}"
    );
    // Ten seconds without progress, then the clear error: bounded, well under the shell limit.
    assert!(took < LIMIT / 2, "took {took:?}");
    assert!(!dest.path().join("big.bin").exists(), "nothing installed");
    assert!(tmp_is_empty(dest.path()), "no temporary file left");
    assert!(relay.stats().to_server.get().1 > 1, "the client retried");
    // The server is still alive and serves the next client, through the relay (TCP passes) and
    // directly.
    let (_, run) = client(&relay.addr().to_string(), "index longlist\n");
    assert_eq!(run.json_lines()[0]["files"][0]["path"], "big.bin");
    let (dest, run) = client(&s.server.addr_string(), "download UDP big.bin\n");
    assert_eq!(run.json_lines()[0]["ok"], true, "{}", run.stdout);
    assert_same_file(s.source.path(), dest.path(), "big.bin");
}

#[test]
fn small_empty_and_nested_files_and_clear_errors() {
    let s = setup(1, 5);
    let root = s.source.path();
    testkit::write(root, "empty.txt", b"");
    testkit::write(root, "a b/c.txt", b"hello over udp\n");
    // One block exactly, and one byte more.
    testkit::write(root, "one.bin", &testkit::pseudo_random(32 * 1024, 1));
    testkit::write(root, "two.bin", &testkit::pseudo_random(32 * 1024 + 1, 2));
    let input = "download UDP empty.txt\ndownload UDP \"a b/c.txt\"\ndownload udp one.bin\n\
                 download UDP two.bin\ndownload UDP missing.txt\ndownload UDP ../etc/passwd\n\
                 download UDP big.bin\n";
    let (dest, run) = client(&s.server.addr_string(), input);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 7, "{}", run.stdout);
    for (i, name) in ["empty.txt", "a b/c.txt", "one.bin", "two.bin"]
        .iter()
        .enumerate()
    {
        assert_eq!(lines[i]["ok"], true, "{}", lines[i]);
        assert_eq!(lines[i]["transport"], "udp");
        assert_same_file(root, dest.path(), name);
    }
    assert_eq!(lines[4]["ok"], false);
    assert!(lines[4]["error"].as_str().unwrap().contains("missing.txt"));
    assert_eq!(lines[5]["ok"], false);
    // The shell went on after the errors.
    assert_eq!(lines[6]["ok"], true);
    assert_eq!(run.code(), 1, "some commands failed");
}

#[test]
fn a_download_replaces_an_older_copy_and_keeps_it_in_the_trash() {
    let s = setup(100_000, 8);
    let dest = testkit::tempdir();
    testkit::write(dest.path(), "big.bin", b"old version");
    let dir = dest.path().to_str().unwrap().to_string();
    let run = testkit::run_shell(
        CLIENT,
        &["--dir", &dir, "--peer", &s.server.addr_string(), "--json"],
        "download UDP big.bin\n",
        LIMIT,
    );
    assert_eq!(run.json_lines()[0]["ok"], true, "{}", run.stdout);
    assert_same_file(s.source.path(), dest.path(), "big.bin");
    let trash = dest.path().join(".minibox").join("trash");
    let kept: Vec<_> = fs::read_dir(&trash).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        fs::read(kept[0].path().join("big.bin")).unwrap(),
        b"old version"
    );
}

#[test]
fn noise_and_foreign_tokens_do_not_disturb_the_server() {
    let s = setup(2 << 20, 77);
    // Noise at the server's UDP port before and while a download runs: garbage, a truncated
    // header, and well-formed acks with made-up tokens.
    let noise = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut fake_ack = b"MB\x01A".to_vec();
    fake_ack.extend_from_slice(&12_345u64.to_be_bytes());
    fake_ack.extend_from_slice(&[0u8; 22]);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let deadline = Instant::now() + LIMIT;
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
                let junk: &[u8] = match i % 3 {
                    0 => b"definitely not a datagram of ours",
                    1 => b"MB\x01",
                    _ => &fake_ack,
                };
                let _ = noise.send_to(junk, s.server.addr);
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let (dest, run) = client(&s.server.addr_string(), "download UDP big.bin\n");
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(run.json_lines()[0]["ok"], true, "{}", run.stdout);
        assert_same_file(s.source.path(), dest.path(), "big.bin");
    });
    let (_, run) = client(&s.server.addr_string(), "hash verify big.bin\n");
    assert_eq!(run.json_lines()[0]["ok"], true);
}
