//! `download UDP` end to end: the real `server` and `client` binaries, on loopback, directly and
//! through a relay that damages datagrams (drops, duplicates, reorders) in both directions.
//!
//! Every download is checked byte for byte against the source, with its mtime and permission
//! bits, and the JSON output must say `"transport": "udp"`. The relay's counts show that it
//! really dropped, duplicated and reordered, and bound what the server resent: about what was
//! lost, never the whole file. The LAN block size (1448 bytes) is forced once, through the same
//! damage. When the relay drops everything, the client must fail with a clear sentence within a
//! bounded time, install nothing, leave nothing in `.minibox/tmp`, and the server must go on
//! serving.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use testkit::relay::{Damage, Relay};

/// The big file's mtime: 2021-03-04T05:06:07.123456789Z.
const MTIME: i64 = 1_614_834_367 * SEC + 123_456_789;

/// A server box holding `big.bin` of `size` pseudo-random bytes (mode 0640, an old mtime to the
/// nanosecond), and the server.
fn setup(size: usize, seed: u64) -> Setup {
    setup_with(size, seed, &[])
}

/// [`setup`], the server started with extra environment variables.
fn setup_with(size: usize, seed: u64, env: &[(&str, &str)]) -> Setup {
    Setup::with_env(
        |root| {
            let path = testkit::write(root, "big.bin", &testkit::pseudo_random(size, seed));
            testkit::chmod(&path, 0o640);
            testkit::set_mtime(&path, MTIME);
        },
        env,
    )
}

/// A fresh client box next to the others, named `name`.
fn fresh_box(s: &Setup, name: &str) -> PathBuf {
    s.tmp.path().join(name)
}

/// Runs `input` in a JSON client shell on `dir`, against `peer`.
fn json_client(dir: &Path, peer: &str, input: &str) -> testkit::ShellRun {
    run_client(dir, peer, &["--json"], input, &[("TZ", "UTC")])
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
    let tmp = root.join(".minibox").join("tmp");
    !tmp.exists() || testkit::files_under(&tmp).is_empty()
}

/// What the relay counted in one direction.
#[derive(Debug, Clone, Copy)]
struct Counts {
    /// Datagrams that reached the relay.
    seen: u64,
    /// Of those, dropped.
    dropped: u64,
    /// Sent on twice.
    duplicated: u64,
    /// Held back and sent after a later one.
    reordered: u64,
    /// The largest datagram, in bytes.
    largest: u64,
}

impl Counts {
    fn of(c: &testkit::relay::Counters) -> Self {
        let (seen, dropped, duplicated, reordered) = c.get();
        Counts {
            seen,
            dropped,
            duplicated,
            reordered,
            largest: c.largest.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The datagrams that got through (each at least once; a duplicate counts once here).
    fn delivered(&self) -> u64 {
        self.seen - self.dropped
    }
}

/// A transfer through the relay: what it counted client to server (acks) and server to client
/// (data), and how many blocks the file has.
#[derive(Debug)]
struct Transfer {
    acks: Counts,
    data: Counts,
    blocks: u64,
}

/// Downloads big.bin (`size` bytes) over UDP through a relay with `damage`, from a server
/// started with `env`, in blocks of `block` bytes; checks everything; returns what the relay
/// counted.
fn download_through(damage: Damage, size: usize, block: u64, env: &[(&str, &str)]) -> Transfer {
    let s = setup_with(size, damage.seed, env);
    let relay = Relay::start(s.server.addr, damage);
    let run = json_client(
        &s.client_box,
        &relay.addr().to_string(),
        "download UDP big.bin\n",
    );
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
    assert_keys(v, &["ok", "file", "verified", "transport"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["transport"], "udp");
    assert_eq!(v["verified"], true);
    assert_eq!(v["file"]["path"], "big.bin");
    assert_eq!(v["file"]["size"], size as u64);
    assert_eq!(v["file"]["mtime"], "2021-03-04T05:06:07.123456789Z");
    assert_eq!(v["file"]["md5"], md5_of(&s.server_box.join("big.bin")));
    assert_same_file(&s.server_box, &s.client_box, "big.bin");
    assert!(tmp_is_empty(&s.client_box));
    let t = Transfer {
        acks: Counts::of(&relay.stats().to_server),
        data: Counts::of(&relay.stats().to_client),
        blocks: (size as u64).div_ceil(block),
    };
    // The server used the block size the test expects: a full block plus the 24-byte header.
    assert_eq!(t.data.largest, block + 24, "{t:?}");
    eprintln!("{t:?}");
    t
}

/// The block size a server on loopback chooses.
const LOOPBACK: u64 = 32_768;

#[test]
fn udp_download_without_loss_is_identical() {
    let t = download_through(Damage::none(), 6 << 20, LOOPBACK, &[]);
    assert!(t.acks.seen > 0, "the acks went through the relay");
    assert!(t.data.seen >= t.blocks, "the blocks went through the relay");
    assert_eq!((t.acks.dropped, t.data.dropped), (0, 0));
    assert_resent_only_what_was_lost(&t);
}

/// Selective repeat resends what was lost, not the file: every data datagram the relay dropped
/// costs one more copy of that block, so the copies that got through are about one per block.
/// Two things make a few more, and the bound allows for them:
/// - a block the relay held back arrives after the one sent after it, which to the sender looks
///   exactly like a loss (something sent later arrived first): at most one needless copy per
///   datagram the relay reordered;
/// - when acks are lost the sender times out and resends up to 4 of its oldest unacknowledged
///   blocks, which may have arrived: a few per cent of the blocks, plus a constant.
///
/// A sender that resent the whole file would deliver nearly every block twice; one that resent
/// everything after a hole (go-back-N) goes past the bound too (tried: 44 to 312 needless copies
/// for bounds of 34 to 178).
fn assert_resent_only_what_was_lost(t: &Transfer) {
    let needless = t.data.delivered().saturating_sub(t.blocks);
    let slack = t.data.reordered + t.blocks / 20 + 16;
    assert!(
        needless <= slack,
        "{needless} blocks arrived more than once (allowed {slack}): {} datagrams sent for {} \
         blocks, {} of them dropped",
        t.data.seen,
        t.blocks,
        t.data.dropped
    );
}

/// Checks the relay really damaged the transfer: datagrams dropped both ways, data datagrams
/// duplicated and reordered; that the server resent what was dropped (every block reached the
/// client at least once, so at least as many datagrams got through as there are blocks); and
/// that it resent little else.
fn assert_repaired(t: &Transfer) {
    assert!(
        t.acks.dropped > 0 && t.data.dropped > 0,
        "dropped {} acks and {} data datagrams",
        t.acks.dropped,
        t.data.dropped
    );
    assert!(
        t.data.duplicated > 0 && t.data.reordered > 0,
        "the relay duplicated {} and reordered {} data datagrams",
        t.data.duplicated,
        t.data.reordered
    );
    assert!(
        t.data.delivered() >= t.blocks,
        "{} datagrams sent, {} dropped, for {} blocks",
        t.data.seen,
        t.data.dropped,
        t.blocks
    );
    assert_resent_only_what_was_lost(t);
}

#[test]
fn udp_download_at_10_percent_loss_is_identical() {
    assert_repaired(&download_through(
        Damage::lossy(0.10, 10),
        6 << 20,
        LOOPBACK,
        &[],
    ));
}

#[test]
fn udp_download_at_30_percent_loss_is_identical() {
    assert_repaired(&download_through(
        Damage::lossy(0.30, 30),
        6 << 20,
        LOOPBACK,
        &[],
    ));
}

#[test]
fn udp_download_in_lan_sized_blocks_at_10_percent_loss_is_identical() {
    // The block size a server offers a client on an Ethernet LAN (1500 - 20 - 8 - 24), forced
    // on loopback: 23 times as many datagrams, acks with many gaps.
    let block = minibox::wire::udp::blocks::LAN_BLOCK_V4;
    let t = download_through(
        Damage::lossy(0.10, 14),
        (2 << 20) + 5,
        u64::from(block),
        &[("MINIBOX_UDP_BLOCK", &block.to_string())],
    );
    assert_eq!(block, 1448);
    assert_repaired(&t);
}

#[test]
fn forged_datagrams_toward_the_client_are_ignored() {
    // Before one datagram in four, the relay sends the client a forged copy from the server's
    // address: noise, another token (with the bytes inverted), a payload one byte short, a block
    // past the end, an ack.
    let s = setup(2 << 20, 55);
    let relay = Relay::start(s.server.addr, Damage::lossy(0.05, 55).with_junk(0.25));
    let run = json_client(
        &s.client_box,
        &relay.addr().to_string(),
        "download UDP big.bin\n",
    );
    assert_eq!(run.json_lines()[0]["ok"], true, "{}", run.stdout);
    assert_same_file(&s.server_box, &s.client_box, "big.bin");
    assert!(
        relay
            .stats()
            .to_client
            .injected
            .load(std::sync::atomic::Ordering::Relaxed)
            > 5
    );
}

#[test]
fn udp_download_fails_clearly_when_every_datagram_is_dropped() {
    let s = setup(1 << 20, 99);
    let relay = Relay::start(s.server.addr, Damage::everything_dropped());
    let started = Instant::now();
    let run = json_client(
        &s.client_box,
        &relay.addr().to_string(),
        "download UDP big.bin\n",
    );
    let took = started.elapsed();
    assert_eq!(
        run.code(),
        1,
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    let error = assert_error(&run.json_lines()[0], "gave up");
    assert!(error.contains("UDP"), "{error}");
    // Ten seconds without progress, then the clear error: bounded, well under the shell limit.
    assert!(took < SHELL_LIMIT / 2, "took {took:?}");
    assert!(!s.client_box.join("big.bin").exists(), "nothing installed");
    assert!(tmp_is_empty(&s.client_box), "no temporary file left");
    assert!(relay.stats().to_server.get().1 > 1, "the client retried");
    // The server is still alive and serves the next client, through the relay (TCP passes) and
    // directly.
    let run = json_client(&s.client_box, &relay.addr().to_string(), "index longlist\n");
    assert_eq!(run.json_lines()[0]["files"][0]["path"], "big.bin");
    let run = s.json("download UDP big.bin\n");
    assert_eq!(run.json_lines()[0]["ok"], true, "{}", run.stdout);
    assert_same_file(&s.server_box, &s.client_box, "big.bin");
}

#[test]
fn the_sample_box_over_udp_and_clear_errors() {
    let s = Setup::new(|root| {
        sample_box(root);
        // One block exactly, and one byte more.
        testkit::write(root, "one.bin", &testkit::pseudo_random(32 * 1024, 1));
        testkit::write(root, "two.bin", &testkit::pseudo_random(32 * 1024 + 1, 2));
    });
    let mut input = String::new();
    for name in SAMPLE_FILES.iter().chain(&["one.bin", "two.bin"]) {
        input.push_str(&format!("download udp \"{name}\"\n"));
    }
    input.push_str(
        "download UDP missing.txt\ndownload UDP ../etc/passwd\ndownload UDP link-out/secret.txt\n",
    );
    input.push_str("download UDP hello.txt\n");
    let run = s.json(&input);
    let lines = run.json_lines();
    assert_eq!(lines.len(), SAMPLE_FILES.len() + 6, "{}", run.stdout);
    for (line, name) in lines
        .iter()
        .zip(SAMPLE_FILES.iter().chain(&["one.bin", "two.bin"]))
    {
        assert_eq!(line["ok"], true, "{line}");
        assert_eq!(line["transport"], "udp");
        assert_eq!(line["file"]["md5"], md5_of(&s.server_box.join(name)));
        assert_same_file(&s.server_box, &s.client_box, name);
    }
    let errors = &lines[SAMPLE_FILES.len() + 2..];
    assert_error(&errors[0], "missing.txt");
    assert_error(&errors[1], "..");
    assert_error(&errors[2], "link-out");
    // The shell went on after the errors.
    assert_eq!(errors[3]["ok"], true);
    assert_eq!(run.code(), 1, "some commands failed");
    assert!(!s.tmp.path().join("box2").join("link-out").exists());
}

#[test]
fn a_download_replaces_an_older_copy_and_keeps_it_in_the_trash() {
    let s = setup(100_000, 8);
    testkit::write(&s.client_box, "big.bin", b"old version");
    let run = s.json("download UDP big.bin\n");
    assert_eq!(run.json_lines()[0]["ok"], true, "{}", run.stdout);
    assert_same_file(&s.server_box, &s.client_box, "big.bin");
    let trash = s.client_box.join(".minibox").join("trash");
    let kept = testkit::files_under(&trash);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(fs::read(trash.join(&kept[0])).unwrap(), b"old version");
}

#[test]
fn the_human_output_says_udp() {
    let s = setup(70_000, 9);
    let run = s.human("download UDP big.bin\n");
    assert_eq!(run.code(), 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("received over UDP"), "{}", run.stdout);
}

#[test]
fn noise_and_foreign_tokens_do_not_disturb_the_server() {
    let s = setup(2 << 20, 77);
    // Noise at the server's UDP port while a download runs: garbage, a truncated header, and
    // well-formed acks with made-up tokens.
    let noise = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut fake_ack = b"MB\x01A".to_vec();
    fake_ack.extend_from_slice(&12_345u64.to_be_bytes());
    fake_ack.extend_from_slice(&[0u8; 22]);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let deadline = Instant::now() + SHELL_LIMIT;
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
        let dest = fresh_box(&s, "box3");
        let run = json_client(&dest, &s.server.addr_string(), "download UDP big.bin\n");
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(run.json_lines()[0]["ok"], true, "{}", run.stdout);
        assert_same_file(&s.server_box, &dest, "big.bin");
    });
    let run = s.json("hash verify big.bin\n");
    assert_eq!(run.json_lines()[0]["ok"], true);
}
