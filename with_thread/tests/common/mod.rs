//! Helpers for with_thread's integration tests: start boxes, drive shells, check files and ports.
//!
//! Every box is a real `with_thread` process on 127.0.0.1 with a temporary folder; every wait is
//! bounded.

#![allow(dead_code)] // each test file uses a different subset

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testkit::{Proc, ShellRun};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_with_thread");

/// A generous bound for anything that should take a second or two (the machine may be loaded).
pub const LIMIT: Duration = Duration::from_secs(60);

/// A peer address nobody listens on: for a box used only as a server, whose shell is never
/// typed into.
pub const NOBODY: &str = "127.0.0.1:9";

/// Starts a box that only serves (its shell waits on an open, silent stdin).
pub fn serve_only(dir: &Path) -> Proc {
    Proc::start_with(
        BIN,
        &[
            "--dir",
            path_str(dir),
            "--listen",
            "127.0.0.1:0",
            "--peer",
            NOBODY,
        ],
        &[("RUST_LOG", "info")],
    )
}

/// Starts a box whose shell the test drives (`send_line`, `wait_stdout_lines`), in JSON mode.
pub fn shell_box(dir: &Path, peer: &str) -> Proc {
    shell_box_on(dir, "127.0.0.1:0", peer)
}

/// [`shell_box`] listening on a given address.
pub fn shell_box_on(dir: &Path, listen: &str, peer: &str) -> Proc {
    Proc::start_shell(
        BIN,
        &[
            "--dir",
            path_str(dir),
            "--listen",
            listen,
            "--peer",
            peer,
            "--json",
        ],
        &[("RUST_LOG", "info")],
    )
}

/// Runs a with_thread shell in JSON mode over `input`, to its end.
pub fn run_json(dir: &Path, peer: &str, input: &str) -> ShellRun {
    testkit::run_shell(
        BIN,
        &[
            "--dir",
            path_str(dir),
            "--listen",
            "127.0.0.1:0",
            "--peer",
            peer,
            "--json",
        ],
        input,
        LIMIT,
    )
}

/// A path as a `&str` (test folders are ASCII).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// MD5 of a file, hex.
pub fn md5(path: &Path) -> String {
    testkit::md5_file(path).unwrap_or_else(|e| panic!("md5 of {}: {e}", path.display()))
}

/// Files left in a box's `.minibox/tmp/` (partial downloads).
pub fn temp_files(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root.join(".minibox").join("tmp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Asserts that TCP and UDP on `addr` can be bound again right now.
pub fn assert_port_free(addr: SocketAddr) {
    TcpListener::bind(addr).unwrap_or_else(|e| panic!("TCP {addr} still taken: {e}"));
    UdpSocket::bind(addr).unwrap_or_else(|e| panic!("UDP {addr} still taken: {e}"));
}

/// Waits for the process to exit and returns its exit code.
///
/// # Panics
/// If it does not exit within [`LIMIT`] or was killed by a signal.
pub fn exit_code(p: &mut Proc) -> i32 {
    let status = p
        .wait_exit(LIMIT)
        .unwrap_or_else(|| panic!("still running; stderr:\n{}", p.stderr_text()));
    status.code().unwrap_or_else(|| {
        panic!(
            "killed by a signal ({status:?}); stderr:\n{}",
            p.stderr_text()
        )
    })
}

/// Whether the process's stderr shows `needle`, waiting up to [`LIMIT`] for it (the thread that
/// collects stderr may lag behind the process, even after it exited).
pub fn stderr_shows(p: &Proc, needle: &str) -> bool {
    testkit::wait_until(LIMIT, || p.stderr_text().contains(needle))
}

/// Waits up to [`LIMIT`] until the box's `.minibox/log` satisfies `check`, and returns it. A server
/// thread logs a request after answering it, so the client may see the answer first.
///
/// # Panics
/// If it never does (the message shows the log).
pub fn log_until(root: &Path, check: impl Fn(&str) -> bool) -> String {
    let read = || std::fs::read_to_string(root.join(".minibox/log")).unwrap_or_default();
    if !testkit::wait_until(LIMIT, || check(&read())) {
        panic!("the log never showed what was expected:\n{}", read());
    }
    read()
}

/// One JSON line.
pub fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// Makes a file of `size` bytes quickly: pseudo-random first MiB (so it is not all zeros), the
/// rest a hole (sparse, nothing written).
pub fn big_file(path: &Path, size: u64) {
    big_file_seeded(path, size, 42);
}

/// [`big_file`] whose first MiB comes from `seed` (different seeds, different contents).
pub fn big_file_seeded(path: &Path, size: u64, seed: u64) {
    let head = testkit::pseudo_random(1 << 20, seed);
    std::fs::write(path, &head).expect("write");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open");
    f.set_len(size).expect("set_len");
}

/// Stops (SIGSTOP) the box `receiver` while it is downloading into `root`, with less than half
/// of `size` bytes received, so that the transfer is certainly unfinished. The test typed the
/// download command already; `answered` is the number of lines the shell printed before it.
/// Returns false if the download finished before it could be caught (then the caller retries).
pub fn freeze_mid_download(receiver: &Proc, root: &Path, size: u64, answered: usize) -> bool {
    let deadline = Instant::now() + LIMIT;
    // A download by blocks (the receiver has a version of the file) assembles in
    // `.minibox/partial/` instead.
    let received = || testkit::partial_download(root);
    // Poll fast: the transfer takes seconds, and we want to catch its beginning.
    while received().unwrap_or(0) == 0 {
        if Instant::now() > deadline || receiver.stdout_lines().len() > answered {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    receiver.signal("STOP");
    // Frozen: nothing changes any more, so this check is not a race.
    let caught =
        received().is_some_and(|n| n < size / 2) && receiver.stdout_lines().len() == answered;
    if !caught {
        receiver.signal("CONT");
    }
    caught
}

/// Types `download TCP NAME` into `receiver`'s shell and freezes the process in the middle of
/// the transfer ([`freeze_mid_download`]). Should the download finish too fast to be caught (a
/// very idle machine), `reset` puts the box back as it was and it is tried again, three times at
/// most. Returns how many answers the shell printed before the frozen download's.
///
/// # Panics
/// If no attempt could be caught midway.
pub fn download_and_freeze(
    receiver: &mut Proc,
    root: &Path,
    name: &str,
    size: u64,
    reset: impl Fn(),
) -> usize {
    for answered in 0..3 {
        receiver.send_line(&format!("download TCP {name}"));
        if freeze_mid_download(receiver, root, size, answered) {
            return answered;
        }
        receiver.wait_stdout_lines(answered + 1, LIMIT);
        reset();
    }
    panic!("could not catch the download of {name} midway");
}

/// A free port number on loopback right now (for a box that must be started on a known port).
/// Another process could take it before the box binds it; callers retry.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}
