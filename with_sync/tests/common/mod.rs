//! Two real `with_sync` peers on loopback, for the integration tests.
//!
//! Each peer must know the other's address when it starts, so box1's port is chosen first
//! ([`testkit::free_port`]), box2 starts on port 0 pointing at it, and box1 starts on its port
//! pointing at box2's announced one. A restarted peer binds its old port again.
//!
//! Peers run with `RUST_LOG=with_sync=info`, so each finished round prints a line on stderr; the
//! tests count those lines to know that a peer has done a round since some moment.

// Test helpers: a failed file operation here is a failed test, so unwrap is the right answer.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use testkit::{Proc, TempDir};

/// The longest a test waits for anything.
pub const LIMIT: Duration = Duration::from_secs(60);

/// The round interval of test peers.
pub const INTERVAL: &str = "0.2";

/// A peer nobody listens at (the discard port): for a box that should serve and sync with no one.
pub const NOBODY: &str = "127.0.0.1:9";

/// The command line of a box serving `dir` on a port the OS picks and syncing with `peer` once
/// an hour: its first round comes at once, later ones only when a test types `sync`.
pub fn hourly<'a>(dir: &'a str, peer: &'a str) -> [&'a str; 8] {
    [
        "--dir",
        dir,
        "--listen",
        "127.0.0.1:0",
        "--peer",
        peer,
        "--interval",
        "3600",
    ]
}

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_with_sync")
}

/// Two boxes and their peers.
pub struct Pair {
    /// Keeps the folders alive.
    pub tmp: TempDir,
    /// The two box folders.
    pub dirs: [PathBuf; 2],
    /// The two listening ports.
    pub ports: [u16; 2],
    /// The running peers (`None` while stopped).
    pub procs: [Option<Proc>; 2],
    /// More arguments for each peer (e.g. `--secret-file FILE`).
    pub extra: [Vec<String>; 2],
    /// The port of a stopped peer, kept for its restart (see [`testkit::HeldPort`]).
    held: [Option<testkit::HeldPort>; 2],
}

/// Box names.
pub const NAMES: [&str; 2] = ["box1", "box2"];

impl Pair {
    /// Two empty box folders, no peer running yet.
    pub fn new() -> Self {
        let tmp = testkit::tempdir();
        let dirs = [tmp.path().join("box1"), tmp.path().join("box2")];
        for d in &dirs {
            fs::create_dir_all(d).unwrap();
        }
        Pair {
            tmp,
            dirs,
            ports: [0, 0],
            procs: [None, None],
            extra: [Vec::new(), Vec::new()],
            held: [None, None],
        }
    }

    /// Starts both peers for the first time.
    pub fn start(&mut self) {
        self.ports[0] = testkit::free_port();
        let p2 = self.spawn(1, 0);
        self.ports[1] = p2.addr.port();
        self.procs[1] = Some(p2);
        let p1 = self.spawn(0, self.ports[0]);
        self.procs[0] = Some(p1);
    }

    fn spawn(&self, i: usize, port: u16) -> Proc {
        let listen = format!("127.0.0.1:{port}");
        let peer = format!("127.0.0.1:{}", self.ports[1 - i]);
        let dir = self.dirs[i].to_string_lossy().into_owned();
        let mut args = vec![
            "--dir",
            &dir,
            "--listen",
            &listen,
            "--peer",
            &peer,
            "--interval",
            INTERVAL,
            "--name",
            NAMES[i],
        ];
        args.extend(self.extra[i].iter().map(String::as_str));
        Proc::start_with(bin(), &args, &[("RUST_LOG", "with_sync=info")])
    }

    /// Starts peer `i` again on its old port.
    pub fn restart(&mut self, i: usize) {
        assert!(self.procs[i].is_none(), "peer {i} is running");
        drop(self.held[i].take());
        let p = self.spawn(i, self.ports[i]);
        self.procs[i] = Some(p);
    }

    /// Stops peer `i` with SIGTERM and checks that it exits cleanly.
    pub fn stop(&mut self, i: usize) {
        let mut p = self.procs[i].take().expect("running");
        p.signal("TERM");
        let status = p.wait_exit(LIMIT).expect("stops after SIGTERM");
        assert!(
            status.success(),
            "exit status {status:?}\n{}",
            p.stderr_text()
        );
        self.hold(i);
    }

    /// Keeps peer `i`'s port (stopped) from other programs until it restarts: connections to it
    /// are refused meanwhile, as to a port nobody holds.
    pub fn hold(&mut self, i: usize) {
        self.held[i] = Some(testkit::HeldPort::hold(self.ports[i]));
    }

    /// Lets go of stopped peer `i`'s port, for a test that listens on it itself; returns it.
    pub fn release(&mut self, i: usize) -> u16 {
        drop(self.held[i].take());
        self.ports[i]
    }

    /// Kills peer `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        let mut p = self.procs[i].take().expect("running");
        p.signal("KILL");
        p.wait_exit(LIMIT).expect("dies after SIGKILL");
        self.hold(i);
    }

    /// How many rounds peer `i` has finished.
    pub fn rounds(&self, i: usize) -> usize {
        self.procs[i]
            .as_ref()
            .map_or(0, |p| p.stderr_text().matches("round done").count())
    }

    /// Waits until both boxes hold the same tree (paths, bytes, modes, file mtimes, empty
    /// folders). The peers may be moving files while it looks ([`same_live`]).
    pub fn wait_converged(&self, limit: Duration) -> bool {
        testkit::wait_until(limit, || same_live(&self.dirs[0], &self.dirs[1]))
    }

    /// Waits until the boxes are the same and each running peer has finished two more rounds:
    /// by then both have recorded their agreement.
    pub fn settle(&self) {
        assert!(
            self.wait_converged(LIMIT),
            "boxes did not converge:\n{}",
            self.diff()
        );
        let marks = [self.rounds(0), self.rounds(1)];
        let done = testkit::wait_until(LIMIT, || {
            (0..2).all(|i| self.procs[i].is_none() || self.rounds(i) >= marks[i] + 2)
        });
        assert!(done, "peers stopped doing rounds");
        // Settled: nothing may move any more, so this read is strict.
        assert!(
            same(&self.dirs[0], &self.dirs[1]),
            "boxes drifted apart:\n{}",
            self.diff()
        );
    }

    /// What differs between the boxes, for failure messages (the peers may still be running).
    pub fn diff(&self) -> String {
        let a = testkit::snapshot_live(&self.dirs[0]);
        let b = testkit::snapshot_live(&self.dirs[1]);
        let mut out = String::new();
        for k in a
            .keys()
            .chain(b.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let (x, y) = (a.get(k), b.get(k));
            if x != y {
                let show = |v: Option<&(bool, Vec<u8>, u32, i128)>| {
                    v.map_or("-".to_string(), |(d, bytes, mode, mtime)| {
                        format!(
                            "{} {} bytes {mode:o} {mtime}",
                            if *d { "dir" } else { "file" },
                            bytes.len()
                        )
                    })
                };
                out.push_str(&format!("  {k}: box1 {} / box2 {}\n", show(x), show(y)));
            }
        }
        for (i, p) in self.procs.iter().enumerate() {
            if let Some(p) = p {
                let text = p.stderr_text();
                let tail: Vec<&str> = text.lines().rev().take(8).collect();
                out.push_str(&format!("  peer {i} stderr tail: {tail:?}\n"));
            }
        }
        out
    }

    /// The folder of box `i`.
    pub fn dir(&self, i: usize) -> &Path {
        &self.dirs[i]
    }
}

impl Default for Pair {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether two boxes hold the same tree, read strictly: for boxes that have settled.
pub fn same(a: &Path, b: &Path) -> bool {
    testkit::snapshot(a) == testkit::snapshot(b)
}

/// Whether two boxes hold the same tree, while peers may be moving files about (for polling).
pub fn same_live(a: &Path, b: &Path) -> bool {
    testkit::snapshot_live(a) == testkit::snapshot_live(b)
}

/// The outcome column of every `sync round\tfailed` line of a box's log, in order.
pub fn round_failures(root: &Path) -> Vec<String> {
    fs::read_to_string(root.join(".minibox/log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\tsync round\tfailed"))
        .map(|l| l.rsplit('\t').next().unwrap_or_default().to_string())
        .collect()
}

/// MD5s of every file in a box's trash.
pub fn trash_md5s(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.join(".minibox/trash")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(md5) = testkit::md5_file(&p) {
                out.push(md5);
            }
        }
    }
    out
}

/// Every file's (inode, ctime, mtime) in a box, and every folder's inode: what must not move
/// while the boxes are in sync.
pub fn identities(root: &Path) -> BTreeMap<String, (u64, i64, i64, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == ".minibox" {
                continue;
            }
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            }
            out.insert(rel, (m.ino(), m.ctime(), m.ctime_nsec(), m.mtime_nsec()));
        }
    }
    out
}

/// Sets a file's mtime to `ns` since the epoch.
pub fn set_mtime(path: &Path, ns: i64) {
    let t = std::time::UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap());
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_times(fs::FileTimes::new().set_modified(t))
        .unwrap();
}

/// A file's mtime in ns since the epoch.
pub fn mtime_ns(path: &Path) -> i64 {
    let m = fs::symlink_metadata(path).unwrap();
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}
