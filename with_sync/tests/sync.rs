//! Two real `with_sync` peers syncing temporary boxes over loopback.

// Test code: a failed file operation is a failed test.
#![allow(clippy::unwrap_used)]
mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{mtime_ns, set_mtime, trash_md5s, Pair, LIMIT};
use testkit::{chmod, md5_file, write};

fn mode_of(path: &std::path::Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn nested_trees_with_empty_folders_mtimes_and_permission_bits_converge() {
    let mut pair = Pair::new();
    let (a, b) = (pair.dirs[0].clone(), pair.dirs[1].clone());
    write(&a, "docs/report.txt", b"quarterly numbers");
    write(&a, "docs/deep/er/still.md", b"# deep");
    write(&a, "run.sh", b"#!/bin/sh\necho hi\n");
    chmod(&a.join("run.sh"), 0o755);
    write(&a, "secret.key", b"k");
    chmod(&a.join("secret.key"), 0o600);
    set_mtime(&a.join("docs/report.txt"), 1_600_000_000_123_456_789);
    fs::create_dir_all(a.join("empty/inside")).unwrap();
    fs::create_dir_all(a.join("private")).unwrap();
    chmod(&a.join("private"), 0o700);
    write(
        &b,
        "from-two/notes.txt",
        &testkit::pseudo_random(100_000, 3),
    );
    fs::create_dir_all(b.join("two-empty")).unwrap();
    // Special bits are never carried over.
    write(&b, "setuid", b"x");
    chmod(&b.join("setuid"), 0o4755);

    pair.start();
    assert!(pair.wait_converged(LIMIT), "{}", pair.diff());
    for d in [&a, &b] {
        assert_eq!(mode_of(&d.join("run.sh")), 0o755);
        assert_eq!(mode_of(&d.join("secret.key")), 0o600);
        assert_eq!(mode_of(&d.join("private")), 0o700);
        assert!(d.join("empty/inside").is_dir() && d.join("two-empty").is_dir());
        assert_eq!(
            mtime_ns(&d.join("docs/report.txt")),
            1_600_000_000_123_456_789,
            "mtimes to the nanosecond"
        );
    }
    assert_eq!(mode_of(&a.join("setuid")), 0o755, "no setuid bit from sync");
    pair.stop(0);
    pair.stop(1);
}

#[test]
fn edits_deletes_and_conflicts_propagate_and_the_trash_keeps_what_went() {
    let mut pair = Pair::new();
    let (a, b) = (pair.dirs[0].clone(), pair.dirs[1].clone());
    write(&a, "edit.txt", b"version one");
    write(&a, "gone.txt", b"delete me");
    write(&a, "dir/gone-too.txt", b"and me");
    write(&a, "both.txt", b"common ancestor");
    pair.start();
    pair.settle();
    let v1 = md5_file(&b.join("edit.txt")).unwrap();

    // An edit on box1 reaches box2; box2's old version is in its trash.
    write(&a, "edit.txt", b"version two, longer");
    let arrived = testkit::wait_until(LIMIT, || {
        fs::read(b.join("edit.txt")).ok().as_deref() == Some(b"version two, longer".as_slice())
    });
    assert!(arrived, "{}", pair.diff());
    assert!(
        trash_md5s(&b).contains(&v1),
        "the replaced version is in box2's trash"
    );

    // Deletes on box2 (a file, and a folder with its file) reach box1, into its trash.
    let gone = md5_file(&a.join("gone.txt")).unwrap();
    let gone_too = md5_file(&a.join("dir/gone-too.txt")).unwrap();
    fs::remove_file(b.join("gone.txt")).unwrap();
    fs::remove_dir_all(b.join("dir")).unwrap();
    let deleted = testkit::wait_until(LIMIT, || {
        !a.join("gone.txt").exists() && !a.join("dir").exists()
    });
    assert!(deleted, "{}", pair.diff());
    let trash = trash_md5s(&a);
    assert!(trash.contains(&gone) && trash.contains(&gone_too));
    pair.settle();
    assert!(!b.join("gone.txt").exists(), "a delete is not brought back");

    // A conflict: both edit while both are stopped; box2's edit is newer.
    pair.stop(0);
    pair.stop(1);
    write(&a, "both.txt", b"box1 says this");
    set_mtime(&a.join("both.txt"), 1_800_000_000_000_000_000);
    write(&b, "both.txt", b"box2 says that");
    set_mtime(&b.join("both.txt"), 1_800_000_060_000_000_000);
    pair.restart(0);
    pair.restart(1);
    pair.settle();
    let copy = "both.conflict-box1-20270115-080000.txt";
    for d in [&a, &b] {
        assert_eq!(fs::read(d.join("both.txt")).unwrap(), b"box2 says that");
        assert_eq!(fs::read(d.join(copy)).unwrap(), b"box1 says this");
        let copies = fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("conflict")
            })
            .count();
        assert_eq!(copies, 1, "exactly one conflict copy");
    }
    // Every sync action is in the log, one line each.
    let log = fs::read_to_string(a.join(".minibox/log")).unwrap();
    assert!(log.contains("sync delete \"gone.txt\"\tok: moved to .minibox/trash/"));
    assert!(log.contains("sync conflict \"both.txt\"\tok: our version kept as"));
    pair.stop(0);
    pair.stop(1);
}

#[test]
fn a_delete_made_while_both_peers_were_stopped_does_not_come_back() {
    let mut pair = Pair::new();
    let (a, b) = (pair.dirs[0].clone(), pair.dirs[1].clone());
    write(&a, "keep.txt", b"keep");
    write(&a, "drop.txt", b"drop");
    fs::create_dir_all(a.join("old-empty")).unwrap();
    pair.start();
    pair.settle();
    pair.stop(0);
    pair.stop(1);
    fs::remove_file(a.join("drop.txt")).unwrap();
    fs::remove_dir(a.join("old-empty")).unwrap();
    pair.restart(1);
    pair.restart(0);
    pair.settle();
    for d in [&a, &b] {
        assert!(!d.join("drop.txt").exists() && !d.join("old-empty").exists());
        assert!(d.join("keep.txt").exists());
    }
    pair.stop(0);
    pair.stop(1);
}

#[test]
fn once_in_sync_rounds_rewrite_nothing() {
    let mut pair = Pair::new();
    let (a, b) = (pair.dirs[0].clone(), pair.dirs[1].clone());
    for i in 0..20 {
        write(
            &a,
            &format!("d{}/f{i}.bin", i % 3),
            &testkit::pseudo_random(1000 + i, i as u64),
        );
    }
    write(&b, "other/x.txt", b"x");
    fs::create_dir_all(b.join("empty")).unwrap();
    pair.start();
    pair.settle();
    // minibox's own files are quiet too: the sync state and the hash cache are rewritten only
    // when they change.
    let own = |root: &std::path::Path| {
        ["state/box1.json", "state/box2.json", "stat-cache"]
            .iter()
            .filter_map(|f| fs::metadata(root.join(".minibox").join(f)).ok())
            .map(|m| m.modified().unwrap())
            .collect::<Vec<_>>()
    };
    let before = [common::identities(&a), common::identities(&b)];
    let own_before = [own(&a), own(&b)];
    assert_eq!(own_before[0].len(), 2, "box1 has its state and cache");
    let marks = [pair.rounds(0), pair.rounds(1)];
    assert!(testkit::wait_until(LIMIT, || {
        pair.rounds(0) >= marks[0] + 5 && pair.rounds(1) >= marks[1] + 5
    }));
    assert_eq!(
        common::identities(&a),
        before[0],
        "box1: inode, ctime or mtime moved"
    );
    assert_eq!(
        common::identities(&b),
        before[1],
        "box2: inode, ctime or mtime moved"
    );
    assert_eq!([own(&a), own(&b)], own_before, "state or cache rewritten");
    pair.stop(0);
    pair.stop(1);
}

#[test]
fn an_edit_that_keeps_the_size_and_the_mtime_still_propagates() {
    use std::os::unix::fs::MetadataExt;
    let mut pair = Pair::new();
    let (a, b) = (pair.dirs[0].clone(), pair.dirs[1].clone());
    write(&a, "same.txt", b"AAAA-1111");
    pair.start();
    pair.settle();
    let old = md5_file(&a.join("same.txt")).unwrap();
    let before = fs::metadata(a.join("same.txt")).unwrap();
    // Both peers stopped: no round can come between the write and the mtime put back, so when
    // they start again, all that tells the new version from the old is its bytes and its ctime
    // (which no user tool can set back). rsync without -c and Unison miss this.
    pair.stop(0);
    pair.stop(1);
    write(&a, "same.txt", b"BBBB-2222");
    set_mtime(&a.join("same.txt"), mtime_of(&before));
    let after = fs::metadata(a.join("same.txt")).unwrap();
    assert_eq!(
        (after.len(), mtime_of(&after), after.ino()),
        (before.len(), mtime_of(&before), before.ino()),
        "the edit kept the size, the mtime to the ns and the inode"
    );
    assert_ne!(
        (after.ctime(), after.ctime_nsec()),
        (before.ctime(), before.ctime_nsec()),
        "only the ctime moved"
    );
    pair.restart(1);
    pair.restart(0);
    let arrived = testkit::wait_until(LIMIT, || {
        fs::read(b.join("same.txt")).ok().as_deref() == Some(b"BBBB-2222".as_slice())
    });
    assert!(arrived, "{}", pair.diff());
    assert_eq!(mtime_ns(&b.join("same.txt")), mtime_of(&before));
    assert!(
        trash_md5s(&b).contains(&old),
        "box2's replaced version is in its trash"
    );
    pair.settle();
    pair.stop(0);
    pair.stop(1);
}

/// The mtime in ns since the epoch, from metadata already read.
fn mtime_of(m: &fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

/// A file's size if it exists.
fn len_of(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.len())
}

/// Puts a big file of `mib` MiB into box1 (made beside the box, then renamed in, so that no
/// round sees it half-written) and freezes box2 with SIGSTOP while it is receiving it: once its
/// partial download (a big file moves by blocks, into `.minibox/partial/`) holds some bytes, but
/// less than half and nothing is under the real name yet.
/// Frozen, box2 cannot move on, so what the caller then checks is not a race. Returns false
/// (box2 running again) if the whole transfer slipped between two looks; the caller tries again
/// with a larger file.
fn freeze_receiver_mid_transfer(pair: &Pair, name: &str, mib: u32, seed: u64) -> bool {
    let staged = pair.tmp.path().join(format!("{name}.staged"));
    big_file(&staged, mib, seed);
    fs::rename(&staged, pair.dir(0).join(name)).unwrap();
    let real = pair.dir(1).join(name);
    let received = || testkit::partial_download(pair.dir(1));
    let size = u64::from(mib) << 20;
    let receiver = pair.procs[1].as_ref().expect("box2 runs");
    let deadline = Instant::now() + LIMIT;
    // Look often: a 200 MiB copy on loopback may take well under a second.
    while received().unwrap_or(0) == 0 {
        if real.exists() || Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    receiver.signal("STOP");
    let got = received().unwrap_or(0);
    let caught = got > 0 && got < size / 2 && !real.exists();
    if !caught {
        receiver.signal("CONT");
    }
    caught
}

/// [`freeze_receiver_mid_transfer`], three tries at most, each file twice as large as the one
/// before. Returns the name and size of the file whose transfer is frozen; the files of missed
/// tries arrived whole (their convergence is awaited before the next try).
fn catch_a_transfer(pair: &Pair, prefix: &str, seed: u64) -> (String, u64) {
    for attempt in 0..3u32 {
        let (name, mib) = (format!("{prefix}-{attempt}.bin"), 200 << attempt);
        if freeze_receiver_mid_transfer(pair, &name, mib, seed + u64::from(attempt)) {
            return (name, u64::from(mib) << 20);
        }
        eprintln!("the transfer of {name} ended before it could be caught; a larger one");
        assert!(
            testkit::wait_until(Duration::from_secs(120), || {
                len_of(&pair.dir(1).join(&name)) == Some(u64::from(mib) << 20)
            }),
            "{}",
            pair.diff()
        );
    }
    panic!("no transfer could be caught in the middle in three tries");
}

#[test]
fn kill_9_of_the_receiver_mid_transfer_leaves_no_torn_file_and_it_converges_after_restart() {
    let mut pair = Pair::new();
    let (a, b) = (pair.dirs[0].clone(), pair.dirs[1].clone());
    write(&a, "small.txt", b"so that the boxes have met");
    pair.start();
    pair.settle();
    let tmp = b.join(".minibox/tmp");

    // kill -9 while box2 is frozen in the middle of receiving.
    let (name, size) = catch_a_transfer(&pair, "big", 1);
    let want = md5_file(&a.join(&name)).unwrap();
    pair.kill(1);
    assert!(!b.join(&name).exists(), "nothing under the real name");
    assert!(
        testkit::partial_download(&b).is_some_and(|n| n > 0 && n < size),
        "the killed transfer left its partial download"
    );
    pair.restart(1);
    assert!(
        testkit::wait_until(Duration::from_secs(120), || len_of(&b.join(&name))
            == Some(size)),
        "{}",
        pair.diff()
    );
    pair.settle();
    assert_eq!(md5_file(&b.join(&name)).unwrap(), want);
    // The killed transfer was resumed from its partial download, which is gone now.
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
    assert_eq!(testkit::partial_download(&b), None);

    // SIGTERM in the middle of a transfer: a clean stop, at once. The signal waits while box2 is
    // frozen and is handled the moment it runs again, with more than half the file to come.
    let (name, size) = catch_a_transfer(&pair, "big2", 11);
    let mut receiver = pair.procs[1].take().expect("box2 runs");
    receiver.signal("TERM");
    let started = Instant::now();
    receiver.signal("CONT");
    let status = receiver.wait_exit(LIMIT).expect("stops after SIGTERM");
    assert!(status.success(), "{status:?}\n{}", receiver.stderr_text());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the stop waited for the transfer"
    );
    // Nothing half-written under the real name. (Had the rest of the file raced the signal
    // and won, it would be there whole and verified: that is allowed, a torn file is not.)
    if let Some(len) = len_of(&b.join(&name)) {
        assert_eq!(len, size, "a torn file");
        assert_eq!(
            md5_file(&b.join(&name)).unwrap(),
            md5_file(&a.join(&name)).unwrap()
        );
    }
    assert_eq!(
        fs::read_dir(&tmp).unwrap().count(),
        0,
        "no temporary file left"
    );
    pair.stop(0);
}

/// Writes `mib` MiB fast: a 1 MiB random block, varied per MiB.
fn big_file(path: &Path, mib: u32, seed: u64) {
    use std::io::Write;
    let block = testkit::pseudo_random(1 << 20, seed);
    let mut f = std::io::BufWriter::new(fs::File::create(path).unwrap());
    for i in 0..mib {
        f.write_all(&i.to_le_bytes()).unwrap();
        f.write_all(&block[4..]).unwrap();
    }
    f.flush().unwrap();
}

#[test]
fn sigterm_stops_a_peer_cleanly_and_frees_its_port() {
    let mut pair = Pair::new();
    write(&pair.dirs[0], "a", b"a");
    pair.start();
    pair.settle();
    let log_file = pair.dirs[1].join(".minibox/log");
    let log_of_box2 = || fs::read_to_string(&log_file).unwrap();
    let logged_before = log_of_box2().len();
    pair.stop(0);
    let port = pair.release(0);
    // The port is free again at once: the test binds it, and plays a broken peer on it. Each
    // round of box2 is one connection; each gets its hello read and is then closed, so every
    // one of them fails the same way.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    listener.set_nonblocking(true).unwrap();
    let marks = pair.rounds(1);
    let attempts = read_hellos_and_hang_up(&listener, 8);
    assert_eq!(attempts, 8, "box2 stopped trying to reach its peer");
    drop(listener);
    pair.hold(0);
    // Then nobody listens at all: connections are refused, round after round.
    std::thread::sleep(Duration::from_millis(1500)); // about 7 ticks
    assert_eq!(
        pair.rounds(1),
        marks,
        "no round succeeds while the peer is down"
    );
    pair.restart(0);
    pair.settle();
    failures_logged_only_when_they_change(&log_of_box2(), logged_before, attempts);
    pair.stop(0);
    pair.stop(1);
}

/// Plays a broken peer on `listener` (non-blocking): accepts up to `most` connections within
/// [`LIMIT`], reads each one's hello and closes it. Returns how many it accepted.
fn read_hellos_and_hang_up(listener: &std::net::TcpListener, most: usize) -> usize {
    let mut attempts = 0;
    let deadline = Instant::now() + LIMIT;
    while attempts < most && Instant::now() < deadline {
        match listener.accept() {
            Ok((mut stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                // Read the whole hello, so that closing sends a plain end of stream.
                let _ = minibox::protocol::frame::read_frame::<_, minibox::protocol::Request>(
                    &mut stream,
                );
                attempts += 1;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    attempts
}

/// A failure is logged when it changes, not on every tick: eight rounds failed one way and
/// more failed another, yet consecutive failure lines never repeat themselves, and then
/// one line says the peer is back. (`log` from byte `logged_before` on.)
fn failures_logged_only_when_they_change(log: &str, logged_before: usize, attempts: usize) {
    let since: Vec<&str> = log[logged_before..].lines().collect();
    let failures: Vec<&str> = since
        .iter()
        .filter(|l| l.contains("sync round\tfailed"))
        .map(|l| l.rsplit('\t').next().unwrap_or_default())
        .collect();
    assert!(!failures.is_empty(), "no failure logged:\n{log}");
    assert!(
        failures.windows(2).all(|w| w[0] != w[1]),
        "the same failure logged twice in a row:\n{log}"
    );
    assert!(
        failures.len() < attempts,
        "{} failure lines for more than {attempts} failed rounds:\n{log}",
        failures.len()
    );
    let back: Vec<usize> = since
        .iter()
        .enumerate()
        .filter(|(_, l)| l.ends_with("ok: the peer is back"))
        .map(|(i, _)| i)
        .collect();
    let last_failure = since
        .iter()
        .rposition(|l| l.contains("sync round\tfailed"))
        .unwrap_or(0);
    assert!(
        back.len() == 1 && back[0] > last_failure,
        "one 'the peer is back' line, after the failures:\n{log}"
    );
}

#[test]
fn permission_and_mtime_only_changes_move_no_data() {
    use std::os::unix::fs::MetadataExt;
    let mut pair = Pair::new();
    let (a, b) = (pair.dirs[0].clone(), pair.dirs[1].clone());
    write(&a, "tool.sh", b"#!/bin/sh\n");
    write(&a, "notes.txt", b"notes");
    pair.start();
    pair.settle();
    let inodes = [
        fs::metadata(b.join("tool.sh")).unwrap().ino(),
        fs::metadata(b.join("notes.txt")).unwrap().ino(),
    ];
    chmod(&a.join("tool.sh"), 0o750);
    set_mtime(&a.join("notes.txt"), 1_500_000_000_000_000_001);
    let arrived = testkit::wait_until(LIMIT, || {
        mode_of(&b.join("tool.sh")) == 0o750
            && mtime_ns(&b.join("notes.txt")) == 1_500_000_000_000_000_001
    });
    assert!(arrived, "{}", pair.diff());
    assert_eq!(
        [
            fs::metadata(b.join("tool.sh")).unwrap().ino(),
            fs::metadata(b.join("notes.txt")).unwrap().ino(),
        ],
        inodes,
        "the same files, not new copies"
    );
    assert!(trash_md5s(&b).is_empty(), "nothing replaced");
    pair.stop(0);
    pair.stop(1);
}

#[test]
fn a_folder_and_a_file_of_the_same_name_keep_both() {
    let mut pair = Pair::new();
    let (a, b) = (pair.dirs[0].clone(), pair.dirs[1].clone());
    write(&a, "x/inside.txt", b"in the folder");
    write(&b, "x", b"a file named x");
    set_mtime(&b.join("x"), 1_800_000_000_000_000_000);
    pair.start();
    pair.settle();
    for d in [&a, &b] {
        assert_eq!(fs::read(d.join("x/inside.txt")).unwrap(), b"in the folder");
        assert_eq!(
            fs::read(d.join("x.conflict-box2-20270115-080000")).unwrap(),
            b"a file named x",
            "the file is kept as the conflict copy"
        );
    }
    pair.stop(0);
    pair.stop(1);
}
