//! Per-file locks, end to end: a big file is downloaded over and over by several clients (a
//! stage-1 `client`, a `with_thread` shell, raw library connections) and read straight from disk,
//! while the box serving it replaces it, again and again, by downloading other versions of it
//! from its own peer. Every read must be one whole version (MD5 checked every time), each reader
//! must have read while a replacement was in progress, a read that no replacement overlapped
//! must see exactly the version then in place, every download must succeed (a send is never cut
//! by an install, an install is never starved by back-to-back sends), and every replaced version
//! must be in the trash. A second test takes the same situation step by step, with a reader that
//! pauses in the middle of a send.

// Test helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use minibox::local::LocalBox;
use minibox::protocol::{Reply, Request};
use minibox::wire::conn::Connection;
use std::io::Read as _;
use testkit::{md5_of, Proc};

const NAME: &str = "shared/big.bin";
const SIZE: usize = 16 << 20;
const REPLACEMENTS: usize = 5; // odd: the box ends with version B
/// A bound on any reader's loop; the time limit below comes first in practice.
const MAX_READS: usize = 20_000;
/// How long the readers may take in all.
const READERS_LIMIT: Duration = Duration::from_secs(300);

/// Where the readers are: warming up, reading while the file is replaced, or finishing.
const WARMUP: usize = 0;
const REPLACING: usize = 1;
const DONE: usize = 2;

#[derive(Clone, Copy, Debug)]
enum Reader {
    Stage1Client,
    WithThreadShell,
    Library,
    Disk,
}

/// One read, and where it stood against the replacements.
#[derive(Clone, Debug)]
struct Read {
    /// The MD5 of what was read.
    md5: String,
    /// Replacements finished (their answer seen) when the read began.
    finished_before: usize,
    /// Replacements begun (their command typed) when the read ended.
    begun_after: usize,
}

impl Read {
    /// Whether some replacement was in progress at some moment of this read. Replacements run
    /// one after the other, so replacement number `finished_before` was not over when the read
    /// began; it overlaps the read if it had begun by the time the read ended.
    fn overlapped(&self) -> bool {
        self.begun_after > self.finished_before
    }
}

#[derive(Default)]
struct Observed {
    /// Every read, per reader.
    reads: Vec<Vec<Read>>,
    /// What went wrong, if anything.
    failures: Vec<String>,
}

/// What the readers and the test replacing the file share.
#[derive(Clone)]
struct Shared {
    /// Where the readers are: [`WARMUP`], [`REPLACING`] or [`DONE`].
    phase: Arc<AtomicUsize>,
    /// Replacements begun: the readers place each read between these and `finished`.
    begun: Arc<AtomicUsize>,
    /// Replacements finished.
    finished: Arc<AtomicUsize>,
    /// What the readers saw.
    observed: Arc<Mutex<Observed>>,
}

impl Shared {
    /// Warming up, nothing replaced, nothing read yet, for `readers` readers.
    fn new(readers: usize) -> Self {
        Shared {
            phase: Arc::new(AtomicUsize::new(WARMUP)),
            begun: Arc::new(AtomicUsize::new(0)),
            finished: Arc::new(AtomicUsize::new(0)),
            observed: Arc::new(Mutex::new(Observed {
                reads: vec![Vec::new(); readers],
                failures: Vec::new(),
            })),
        }
    }
}

/// The two versions of the file and their MD5s.
struct Versions {
    a: Vec<u8>,
    b: Vec<u8>,
    md5_a: String,
    md5_b: String,
}

impl Versions {
    /// Two versions of [`SIZE`] bytes.
    fn new() -> Self {
        let a = testkit::pseudo_random(SIZE, 1);
        let b = testkit::pseudo_random(SIZE, 2);
        let (md5_a, md5_b) = (md5_of(&a), md5_of(&b));
        Versions { a, b, md5_a, md5_b }
    }

    /// The version in place after `k` replacements: A, then B, A, B...
    fn after(&self, k: usize) -> &String {
        if k.is_multiple_of(2) {
            &self.md5_a
        } else {
            &self.md5_b
        }
    }
}

/// One reader thread: which one, of what kind, and where it reads.
struct ReaderJob {
    index: usize,
    kind: Reader,
    addr: String,
    s_root: PathBuf,
    client_bin: PathBuf,
    /// The MD5s of the whole versions.
    valid: [String; 2],
}

#[test]
fn a_file_being_replaced_is_never_seen_half_written() {
    let v = Versions::new();
    let (s_tmp, p_tmp, stage) = (testkit::tempdir(), testkit::tempdir(), testkit::tempdir());
    testkit::write(s_tmp.path(), NAME, &v.a);
    testkit::write(p_tmp.path(), NAME, &v.b);
    let peer = serve_only(p_tmp.path());
    let mut server = shell_box(s_tmp.path(), &peer.addr_string());
    let addr = server.addr_string();

    let kinds = [
        Reader::Stage1Client,
        Reader::WithThreadShell,
        Reader::Library,
        Reader::Library,
        Reader::Disk,
    ];
    let shared = Shared::new(kinds.len());
    let client_bin = testkit::sibling_bin("before_thread", "client");
    let readers: Vec<_> = kinds
        .iter()
        .enumerate()
        .map(|(index, &kind)| {
            let job = ReaderJob {
                index,
                kind,
                addr: addr.clone(),
                s_root: s_tmp.path().to_path_buf(),
                client_bin: client_bin.clone(),
                valid: [v.md5_a.clone(), v.md5_b.clone()],
            };
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("reader-{index}"))
                .spawn(move || read_until_done(&job, &shared))
                .expect("a thread")
        })
        .collect();

    // Every reader has read version A once; now replace the file under their feet.
    let warmed = testkit::wait_until(Duration::from_secs(120), || {
        shared
            .observed
            .lock()
            .unwrap()
            .reads
            .iter()
            .all(|r| !r.is_empty())
    });
    shared.phase.store(REPLACING, Ordering::SeqCst);
    replace_the_file_again_and_again(&mut server, &shared, &v, warmed, stage.path(), p_tmp.path());
    shared.phase.store(DONE, Ordering::SeqCst);
    for r in readers {
        r.join().expect("reader thread");
    }

    every_read_saw_a_whole_version(&shared.observed.lock().unwrap(), &kinds, &v, warmed);
    every_replaced_version_is_in_the_trash(s_tmp.path(), &v);
    server.send_line("quit");
    assert_eq!(exit_code(&mut server), 0);
}

/// One reader: reads the file again and again until one read has begun after the last
/// replacement, noting each read (or what went wrong) in `shared`.
fn read_until_done(job: &ReaderJob, shared: &Shared) {
    let kind = job.kind;
    let dir = testkit::tempdir();
    let deadline = Instant::now() + READERS_LIMIT;
    // Reads go on until one has begun after the last replacement, so that the
    // reads of every reader cover the whole time the file was being replaced.
    for _ in 0..MAX_READS {
        let last = shared.phase.load(Ordering::SeqCst) == DONE;
        let finished_before = shared.finished.load(Ordering::SeqCst);
        let result = read_once(kind, &job.addr, &job.s_root, dir.path(), &job.client_bin);
        let begun_after = shared.begun.load(Ordering::SeqCst);
        let mut o = shared.observed.lock().unwrap();
        match result {
            Ok(md5) if job.valid.contains(&md5) => o.reads[job.index].push(Read {
                md5,
                finished_before,
                begun_after,
            }),
            Ok(md5) => o.failures.push(format!("{kind:?} read a mix: {md5}")),
            Err(e) => o.failures.push(format!("{kind:?}: {e}")),
        }
        drop(o);
        if last {
            return;
        }
        if Instant::now() > deadline {
            break;
        }
        if matches!(kind, Reader::Disk) {
            // Leave the CPU to the transfers now and then (2-core machines).
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut o = shared.observed.lock().unwrap();
    o.failures.push(format!(
        "{kind:?} stopped reading before the replacements ended"
    ));
}

/// Has the box replace the file [`REPLACEMENTS`] times (if the readers `warmed` up), by
/// downloading the other version from its peer; checks that each download succeeded with the
/// version expected.
fn replace_the_file_again_and_again(
    server: &mut Proc,
    shared: &Shared,
    v: &Versions,
    warmed: bool,
    stage: &Path,
    peer_root: &Path,
) {
    for round in 0..REPLACEMENTS {
        if !warmed {
            break;
        }
        let md5 = v.after(round + 1);
        let bytes = if round.is_multiple_of(2) { &v.b } else { &v.a };
        // The peer's copy changes between downloads only (atomically, by a rename).
        let staged = testkit::write(stage, "next", bytes);
        std::fs::rename(staged, peer_root.join(NAME)).unwrap();
        shared.begun.fetch_add(1, Ordering::SeqCst);
        server.send_line(&format!("download TCP {NAME}"));
        let lines = server.wait_stdout_lines(round + 1, Duration::from_secs(120));
        shared.finished.fetch_add(1, Ordering::SeqCst);
        let answer = json(&lines[round]);
        assert_eq!(answer["ok"], true, "replacement {round}: {answer}");
        assert_eq!(answer["file"]["md5"], md5.as_str());
    }
}

/// The readers warmed up and nothing failed; reads during a replacement saw either whole
/// version, the others the very version in place; every reader read during some replacement.
fn every_read_saw_a_whole_version(o: &Observed, kinds: &[Reader], v: &Versions, warmed: bool) {
    assert!(
        warmed,
        "the readers did not all manage a first read: {:?}",
        o.failures
    );
    assert!(o.failures.is_empty(), "{:?}", o.failures);
    for (kind, reads) in kinds.iter().zip(&o.reads) {
        // Reads during a replacement may see either whole version; the others must see the
        // very version in place (nothing stale, nothing from the future).
        for read in reads.iter().filter(|r| !r.overlapped()) {
            assert_eq!(
                &read.md5,
                v.after(read.finished_before),
                "{kind:?} read the wrong version after {} replacements",
                read.finished_before
            );
        }
        let during = reads.iter().filter(|r| r.overlapped()).count();
        eprintln!(
            "{kind:?}: {} reads, {during} while a replacement was in progress",
            reads.len()
        );
        assert!(
            during > 0,
            "{kind:?} never read while the file was being replaced"
        );
    }
}

/// Nothing lost: every replaced version went to the trash whole; the box ends with version B
/// and no temporary file.
fn every_replaced_version_is_in_the_trash(s_root: &Path, v: &Versions) {
    let mut trashed = Vec::new();
    collect_files(&s_root.join(".minibox/trash"), &mut trashed);
    assert_eq!(trashed.len(), REPLACEMENTS);
    for t in &trashed {
        let m = md5(t);
        assert!(
            m == v.md5_a || m == v.md5_b,
            "{} is not a whole version",
            t.display()
        );
    }
    assert_eq!(md5(&s_root.join(NAME)), v.md5_b);
    assert!(temp_files(s_root).is_empty());
}

/// One read of the file, returning the MD5 of what was read.
fn read_once(
    kind: Reader,
    addr: &str,
    s_root: &Path,
    dir: &Path,
    client_bin: &Path,
) -> Result<String, String> {
    let into = dir.join(NAME);
    match kind {
        Reader::Disk => testkit::md5_file(&s_root.join(NAME)).map_err(|e| e.to_string()),
        Reader::Library => {
            let local = LocalBox::open(dir, "library").map_err(|e| e.to_string())?;
            let mut conn = minibox::wire::handshake::connect(addr, "library", None)
                .map_err(|e| e.to_string())?;
            let entry =
                minibox::ask::download::download_tcp(&mut conn, &local, NAME, &mut |_, _| {})
                    .map_err(|e| e.to_string())?;
            let on_disk = md5(&into);
            if entry.md5.as_deref() != Some(on_disk.as_str()) {
                return Err(format!("verified {:?} but installed {on_disk}", entry.md5));
            }
            Ok(on_disk)
        }
        Reader::Stage1Client | Reader::WithThreadShell => {
            let dir_s = path_str(dir);
            let run = match kind {
                Reader::Stage1Client => testkit::run_shell(
                    path_str(client_bin),
                    &["--dir", dir_s, "--peer", addr, "--json"],
                    &format!("download TCP {NAME}\n"),
                    Duration::from_secs(120),
                ),
                _ => run_json(dir, addr, &format!("download TCP {NAME}\n")),
            };
            let answer = run.json_lines().pop().ok_or("no answer")?;
            if answer["ok"] != true {
                return Err(answer.to_string());
            }
            let on_disk = md5(&into);
            if answer["file"]["md5"] != on_disk.as_str() {
                return Err(format!("verified {answer} but installed {on_disk}"));
            }
            Ok(on_disk)
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Step by step, with a reader that pauses early: while it holds the file, the box's own download
/// of a new version of that file waits to install, another file is served as usual, and the
/// paused reader, once it goes on, gets the whole old version (without the read lock the install
/// would replace the file mid-send and the server would abort with "changed"). Then the install
/// goes through.
#[test]
fn an_install_waits_for_a_send_of_that_file_and_blocks_no_other_file() {
    let (s_tmp, p_tmp, r_tmp) = (testkit::tempdir(), testkit::tempdir(), testkit::tempdir());
    let o_tmp = testkit::tempdir();
    let old_path = s_tmp.path().join(NAME);
    std::fs::create_dir_all(old_path.parent().unwrap()).unwrap();
    big_file_seeded(&old_path, OLD_SIZE, 11);
    let old_md5 = md5(&old_path);
    let new_version = testkit::pseudo_random(4096, 12);
    testkit::write(s_tmp.path(), "other.txt", b"never blocked");
    testkit::write(p_tmp.path(), NAME, &new_version);
    let peer = serve_only(p_tmp.path());
    let mut server = shell_box(s_tmp.path(), &peer.addr_string());
    let addr = server.addr_string();
    // The client that asks for another file meanwhile is started now: once the reader pauses,
    // everything must happen within the server's 10 s timeouts (the paused reader is dropped
    // after 10 s without progress, the install gives up after 10 s without the lock), and
    // starting a process on a loaded machine can take seconds of that.
    let mut other = shell_box(o_tmp.path(), &addr);

    let received = r_tmp.path().join("slow.bin");
    let (mut slow, mut out) = a_reader_pauses_after_one_mib(&addr, &received);
    the_install_waits_for_the_lock(&mut server, s_tmp.path(), new_version.len());
    another_file_is_served_meanwhile(&mut other, o_tmp.path(), &old_path);
    the_reader_gets_the_whole_old_version(&mut slow, &mut out, &received, &old_md5);
    drop(slow);

    // And the install goes through.
    let answer = json(&server.wait_stdout_lines(1, LIMIT)[0]);
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(std::fs::read(&old_path).unwrap(), new_version);
    for shell in [&mut other, &mut server] {
        shell.send_line("quit");
        assert_eq!(exit_code(shell), 0);
    }
}

/// The old version is far bigger than any socket buffers (so the server cannot finish sending
/// it while the reader pauses); the new one is small (so the box gets it at once).
const OLD_SIZE: u64 = 64 << 20;

/// A reader asks for the file and reads 1 MiB of it into `received`, then pauses: the server's
/// thread is stuck sending, holding the file's read lock. From here to the end of the send,
/// nothing but messages to processes already running. Returns the connection and the file.
fn a_reader_pauses_after_one_mib(addr: &str, received: &Path) -> (Connection, std::fs::File) {
    let mut slow = minibox::wire::handshake::connect(addr, "slow", None).unwrap();
    slow.send(&Request::Download { path: NAME.into() }).unwrap();
    let header = match slow.recv::<Reply>().unwrap() {
        Reply::File { entry } => entry,
        other => panic!("expected a file header, got {other:?}"),
    };
    assert_eq!(header.size, OLD_SIZE);
    let mut out = std::fs::File::create(received).unwrap();
    let mut first = slow.raw_reader().take(1 << 20);
    assert_eq!(std::io::copy(&mut first, &mut out).unwrap(), 1 << 20);
    (slow, out)
}

/// The box downloads the new version of that file from its peer: it receives it into a
/// temporary file, then must wait for the lock to install it.
fn the_install_waits_for_the_lock(server: &mut Proc, s_root: &Path, new_len: usize) {
    server.send_line(&format!("download TCP {NAME}"));
    let settled = testkit::wait_until(LIMIT, || {
        !server.stdout_lines().is_empty()
            || temp_files(s_root)
                .iter()
                .any(|t| std::fs::metadata(t).is_ok_and(|m| m.len() == new_len as u64))
    });
    assert!(settled, "the box did not receive the new version");
    assert!(
        server.stdout_lines().is_empty(),
        "the install did not wait for the send of that file: {:?}",
        server.stdout_lines()
    );
}

/// Meanwhile another file is served as usual, and the file is still the old version.
fn another_file_is_served_meanwhile(other: &mut Proc, o_root: &Path, old_path: &Path) {
    other.send_line("download TCP other.txt");
    let answer = json(&other.wait_stdout_lines(1, LIMIT)[0]);
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(
        std::fs::read(o_root.join("other.txt")).unwrap(),
        b"never blocked"
    );
    assert_eq!(std::fs::metadata(old_path).unwrap().len(), OLD_SIZE);
}

/// The reader goes on: it gets all of the old version, and the server vouches for it.
fn the_reader_gets_the_whole_old_version(
    slow: &mut Connection,
    out: &mut std::fs::File,
    received: &Path,
    old_md5: &str,
) {
    let mut rest = slow.raw_reader().take(OLD_SIZE - (1 << 20));
    assert_eq!(std::io::copy(&mut rest, out).unwrap(), OLD_SIZE - (1 << 20));
    match slow.recv::<Reply>().unwrap() {
        Reply::Trailer { md5: sent } => assert_eq!(sent, old_md5),
        other => panic!("the send was disturbed: {other:?}"),
    }
    assert_eq!(md5(received), old_md5);
}
