//! Test helpers shared by every crate's integration tests.
//!
//! The integration tests start the real binaries (`env!("CARGO_BIN_EXE_…")` in each crate's
//! tests) on loopback, in temporary folders, and talk to them over real sockets. What they all
//! need is here, once:
//!
//! - [`Proc`]: a running binary that listens, started with `--listen 127.0.0.1:0`; it waits for
//!   the `minibox: serving DIR on ADDR` line to learn the port, and kills the process on drop;
//! - [`run_shell`]: runs a client binary with some shell input on a pipe, with a time limit;
//!   [`RunningShell`] does the same in two halves, so that a test can [`signal`] the client
//!   while it runs, and [`freeze_mid_download`] stops a process in the middle of a transfer;
//! - [`Terminal`]: runs a shell on a pseudo-terminal, to test the prompt and line editing;
//! - helpers to build boxes and look at them: [`write`], [`chmod`], [`set_mtime`],
//!   [`pseudo_random`], [`snapshot`] (compare two trees; [`snapshot_live`] while peers still
//!   change them), [`files_under`], [`mtime_ns`];
//! - [`closed_addr`] (a peer that is down), [`HeldPort`] (a port kept while its peer is down)
//!   and [`wait_until`] (bounded polling);
//! - [`relay::Relay`]: a relay that forwards TCP untouched and damages UDP (drops, duplicates,
//!   reorders), for the UDP download tests.
//!
//! - [`arena`]: a box full of traps with a canary folder beside it, and the check that an honest
//!   client still gets correct answers;
//! - [`attack`]: every hostile-input attack on a listening binary, run by [`attack::run_all`];
//! - [`liar`]: a fake server that lies, to attack the downloading side;
//! - [`small_disk`]: a small `tmpfs` (as root) for a box whose disk fills up.
//!
//! Every wait here is bounded: a test that goes wrong fails with a message, it never hangs.

pub mod arena;
pub mod attack;
pub mod chapter;
pub mod liar;
pub mod pty;
pub mod transcript;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod relay;
pub mod small_disk;

pub use tempfile::TempDir;

/// How long a started binary may take to announce its port.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running listening binary; killed (and reaped) on drop.
pub struct Proc {
    /// The process.
    pub child: Child,
    /// The address it announced.
    pub addr: SocketAddr,
    /// Everything it wrote to stderr so far (collected by a thread).
    pub stderr: Arc<Mutex<String>>,
    /// Everything it wrote to stdout so far, when started with [`Proc::start_shell`] (empty
    /// otherwise: stdout is discarded).
    pub stdout: Arc<Mutex<String>>,
}

impl Proc {
    /// Starts `bin` with `args` (which should include `--listen 127.0.0.1:0`) and waits for its
    /// `minibox: serving DIR on ADDR` line on stderr. Stdin is a pipe kept open (a shell that reads
    /// it blocks rather than seeing end of input), stdout is discarded unless `keep_stdout`.
    ///
    /// # Panics
    /// If the binary does not announce itself within [`START_TIMEOUT`].
    pub fn start(bin: &str, args: &[&str]) -> Proc {
        Self::start_with(bin, args, &[])
    }

    /// [`Proc::start`] with extra environment variables.
    ///
    /// # Panics
    /// If the binary does not announce itself within [`START_TIMEOUT`].
    pub fn start_with(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        Self::launch(bin, args, env, false)
    }

    /// Starts a binary that listens *and* runs a shell (stage 2 and 3), like [`Proc::start`],
    /// but keeps what it prints on stdout (see [`Proc::stdout_lines`]) so that a test can type
    /// commands with [`Proc::send_line`] and read the answers.
    ///
    /// # Panics
    /// If the binary does not announce itself within [`START_TIMEOUT`].
    pub fn start_shell(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        Self::launch(bin, args, env, true)
    }

    fn launch(bin: &str, args: &[&str], env: &[(&str, &str)], keep_stdout: bool) -> Proc {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(if keep_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let out_text = Arc::new(Mutex::new(String::new()));
        if let Some(stdout) = child.stdout.take() {
            let sink = Arc::clone(&out_text);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        let collected = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&collected);
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = parse_announce(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => Proc {
                child,
                addr,
                stderr: collected,
                stdout: out_text,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let text = collected.lock().map(|s| s.clone()).unwrap_or_default();
                panic!("{bin} {args:?} did not announce a port; stderr:\n{text}");
            }
        }
    }

    /// The announced address as `IP:PORT`.
    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    /// Sends a signal (e.g. `"TERM"`, `"INT"`, `"KILL"`, `"STOP"`) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        signal(self.child.id(), name);
    }

    /// Waits up to `limit` for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the process wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The lines the process wrote to stdout so far (only with [`Proc::start_shell`]).
    pub fn stdout_lines(&self) -> Vec<String> {
        let text = self.stdout.lock().map(|s| s.clone()).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }

    /// Waits up to `limit` until stdout has at least `n` lines; returns them all.
    ///
    /// # Panics
    /// If they do not come in time (the message shows what did, and stderr).
    pub fn wait_stdout_lines(&self, n: usize, limit: Duration) -> Vec<String> {
        if !wait_until(limit, || self.stdout_lines().len() >= n) {
            panic!(
                "expected {n} lines on stdout within {limit:?}, got {:?}; stderr:\n{}",
                self.stdout_lines(),
                self.stderr_text()
            );
        }
        self.stdout_lines()
    }

    /// Types one line into the process's shell.
    ///
    /// # Panics
    /// If stdin was closed or the process is gone.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin is still open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("the process reads its stdin");
    }

    /// Closes the process's stdin: its shell sees end of input.
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }
}

/// A binary of another workspace member, for tests that mix stages (a stage-1 `client` against a
/// stage-2 peer). `env!("CARGO_BIN_EXE_…")` only names the binaries of the crate under test, and
/// `cargo test` builds another package's binaries only if that package has integration tests of
/// its own; so this runs `cargo build -p PACKAGE --bins` (once per test process; a no-op when
/// nothing changed, and cargo does not hold its build lock while tests run) and returns the
/// binary next to the test executable (`target/<profile>/deps/…` → `target/<profile>/NAME`).
///
/// # Panics
/// If the build fails or the binary is not where it should be.
pub fn sibling_bin(package: &str, name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("the test knows its own path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps")
        .to_path_buf();
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let out = Command::new(&cargo)
            .args([
                "build",
                "--quiet",
                "--profile",
                &profile,
                "-p",
                package,
                "--bins",
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
        assert!(
            out.status.success(),
            "cargo build -p {package} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        built.push(package.to_string());
    }
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing after building {package}",
        bin.display()
    );
    bin
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `minibox: serving DIR on ADDR`.
pub fn parse_announce(line: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix("minibox: serving ")?;
    rest.rsplit(" on ").next()?.trim().parse().ok()
}

/// What a finished shell run produced.
#[derive(Debug)]
pub struct ShellRun {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl ShellRun {
    /// The exit code (`-1` if killed by a signal).
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// stdout parsed as one JSON value per line.
    ///
    /// # Panics
    /// If a line is not JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

/// Runs `bin args…` with `input` on stdin (then end of input) and waits up to `limit`.
///
/// # Panics
/// If the process cannot start or does not finish in time (it is killed first).
pub fn run_shell(bin: &str, args: &[&str], input: &str, limit: Duration) -> ShellRun {
    run_shell_env(bin, args, input, limit, &[])
}

/// [`run_shell`] with extra environment variables.
///
/// # Panics
/// As [`run_shell`].
pub fn run_shell_env(
    bin: &str,
    args: &[&str],
    input: &str,
    limit: Duration,
    env: &[(&str, &str)],
) -> ShellRun {
    RunningShell::start(bin, args, input, env).finish(limit)
}

/// A client binary started with some shell input on a pipe, still running: what [`run_shell`]
/// does in two halves, so that a test can act on the process in between (freeze it with
/// [`RunningShell::signal`] in the middle of a transfer, say). Killed and reaped on drop.
pub struct RunningShell {
    /// The process.
    child: Child,
    /// What it was started as, for messages.
    what: String,
    /// Writes the input, then closes stdin (end of input).
    writer: Option<std::thread::JoinHandle<()>>,
    /// Collects stdout.
    out: Option<std::thread::JoinHandle<String>>,
    /// Collects stderr.
    err: Option<std::thread::JoinHandle<String>>,
}

impl RunningShell {
    /// Starts `bin args…` with `input` on stdin (then end of input) and extra environment
    /// variables.
    ///
    /// # Panics
    /// If the process cannot start.
    pub fn start(bin: &str, args: &[&str], input: &str, env: &[(&str, &str)]) -> RunningShell {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let input = input.to_string();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let out = drain(child.stdout.take().expect("stdout is piped"));
        let err = drain(child.stderr.take().expect("stderr is piped"));
        RunningShell {
            child,
            what: format!("{bin} {args:?}"),
            writer: Some(writer),
            out: Some(out),
            err: Some(err),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (e.g. `"STOP"`, `"CONT"`, `"TERM"`) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        signal(self.pid(), name);
    }

    /// Whether the process is still running (a stopped process counts as running).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `limit` for the process to end and returns what it printed.
    ///
    /// # Panics
    /// If it does not end in time (it is killed first).
    pub fn finish(mut self, limit: Duration) -> ShellRun {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not finish within {limit:?}", self.what);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        let collect = |h: Option<std::thread::JoinHandle<String>>| {
            h.and_then(|h| h.join().ok()).unwrap_or_default()
        };
        ShellRun {
            status,
            stdout: collect(self.out.take()),
            stderr: collect(self.err.take()),
        }
    }
}

impl Drop for RunningShell {
    fn drop(&mut self) {
        // A frozen process would ignore nothing but SIGKILL; kill it whatever state it is in.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends the signal `name` (`"TERM"`, `"STOP"`, `"CONT"` …) to the process `pid` with `kill(1)`.
///
/// # Panics
/// If `kill` fails (no such process).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// How many bytes a download into the box `root` has written so far: the size of the largest
/// file in its `.minibox/tmp/`, or of a download by blocks in `.minibox/partial/` (`None` when
/// there is none).
pub fn partial_download(root: &Path) -> Option<u64> {
    let meta = root.join(".minibox");
    let files = |dir: PathBuf| fs::read_dir(dir).into_iter().flatten().flatten();
    files(meta.join("tmp"))
        .chain(files(meta.join("partial")))
        // Not the list of verified blocks beside a partial file, nor its temporary copy.
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && !name.ends_with(".blocks")
        })
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .max()
}

/// Freezes the process `pid` (SIGSTOP) in the middle of a download of `size` bytes into the box
/// `root`: as soon as the download's temporary file holds its first bytes, while less than half
/// of the file has arrived. `pid` may be the receiving process or the one sending to it; either
/// way, once the stop is in place the transfer cannot end until the test sends SIGCONT, and a file
/// much larger than the socket buffers between them cannot be complete either.
///
/// Returns true when the process is frozen midway. Returns false (and leaves it running) if
/// `still_going` says the download ended first, if it went past half before the stop took hold,
/// or if nothing arrived within `limit`.
pub fn freeze_mid_download(
    pid: u32,
    root: &Path,
    size: u64,
    limit: Duration,
    mut still_going: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    // Poll fast: the transfer takes a second or two, and we want to catch its beginning.
    while partial_download(root).unwrap_or(0) == 0 {
        if Instant::now() > deadline || !still_going() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    signal(pid, "STOP");
    // A signal is delivered asynchronously: wait until the kernel shows the process stopped
    // (state `T` in /proc/PID/stat) before measuring. Bytes already in the socket buffers may
    // still reach the temporary file after that; the half-way margin is for them.
    let stopped = wait_until(Duration::from_secs(5), || {
        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('T'))
        })
    });
    let caught = stopped && still_going() && partial_download(root).is_some_and(|n| n < size / 2);
    if !caught {
        signal(pid, "CONT");
    }
    caught
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = r.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    })
}

/// A program running on a pseudo-terminal, to test what a shell does for a person at a keyboard
/// (prompt, line editing, history) rather than on a pipe.
///
/// It needs no `unsafe` and no extra crate: util-linux's `script(1)` makes the terminal and runs
/// the program on it; the test types into `script`'s stdin and reads what the terminal shows.
/// `script` is part of every Debian system (package `bsdutils`); where it is missing, or is
/// another program of that name (macOS ships a BSD one), [`Terminal::start`] fails the test with
/// a message that says so, rather than letting it pass without running.
pub struct Terminal {
    /// `script` running the program.
    child: Child,
    /// What we "type".
    stdin: Option<std::process::ChildStdin>,
    /// Chunks of output from a reader thread.
    chunks: mpsc::Receiver<Vec<u8>>,
    /// Everything shown so far (escape sequences included).
    shown: String,
}

impl Terminal {
    /// Starts `bin args…` on a pseudo-terminal with extra environment variables.
    ///
    /// # Panics
    /// If util-linux `script` is not installed, or cannot be started.
    pub fn start(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Terminal {
        const NEED: &str = "this test needs util-linux script(1) to make a terminal (on Debian \
                            it is in the bsdutils package: apt-get install bsdutils)";
        let version = Command::new("script")
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("{NEED}; running `script --version` failed: {e}"));
        let said = String::from_utf8_lossy(&version.stdout);
        assert!(
            said.contains("util-linux"),
            "{NEED}; the `script` found is another program: {said:?}"
        );
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let line: Vec<String> = std::iter::once(bin)
            .chain(args.iter().copied())
            .map(quote)
            .collect();
        // script(1) runs its command with `$SHELL -c`. `exec` makes the program take the shell's
        // place: otherwise a `sh` (dash, where SHELL is /bin/sh or unset) stays in between, in the
        // terminal's foreground group, takes the ^C meant for the program, and ends with status
        // 130 once the program has handled it and quit cleanly.
        let command = format!("exec {}", line.join(" "));
        let mut cmd = Command::new("script");
        // -q quiet, -f flush at once, -e exit with the program's status, -c the command.
        cmd.args(["-qfec", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // What a terminal emulator says it is; without TERM a program must assume a dumb
            // terminal (no cursor movement: no progress bar), whatever ran the tests had.
            .env("TERM", "xterm");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start script(1)");
        let mut out = child.stdout.take().expect("stdout is piped");
        let (tx, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            stdin: child.stdin.take(),
            child,
            chunks,
            shown: String::new(),
        }
    }

    /// Waits until the screen has shown `needle` at least `count` times in all; false if `limit`
    /// passes first.
    pub fn wait_for(&mut self, needle: &str, count: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.shown.matches(needle).count() >= count {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.shown.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => return false,
            }
        }
    }

    /// Types `keys` (use `\r` for Enter, `\x1b[A` for the up arrow).
    ///
    /// # Panics
    /// If the terminal is gone.
    pub fn type_keys(&mut self, keys: &str) {
        let stdin = self.stdin.as_mut().expect("the terminal is open");
        stdin
            .write_all(keys.as_bytes())
            .expect("type into the terminal");
        stdin.flush().expect("type into the terminal");
    }

    /// Everything the terminal showed so far.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Closes the keyboard (`script` waits for that before it ends), then waits up to `limit` for
    /// the program to end and collects the rest of its output.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.stdin = None;
        let deadline = Instant::now() + limit;
        loop {
            while let Ok(chunk) = self.chunks.try_recv() {
                self.shown.push_str(&String::from_utf8_lossy(&chunk));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                while let Ok(chunk) = self.chunks.recv_timeout(Duration::from_millis(200)) {
                    self.shown.push_str(&String::from_utf8_lossy(&chunk));
                }
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh temporary folder.
///
/// # Panics
/// If none can be made.
pub fn tempdir() -> TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

/// Writes `bytes` to `root/rel`, creating folders.
///
/// # Panics
/// On I/O failure.
pub fn write(root: &Path, rel: &str, bytes: &[u8]) -> PathBuf {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir -p");
    }
    fs::write(&path, bytes).expect("write");
    path
}

/// Sets permission bits.
///
/// # Panics
/// On I/O failure.
pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Sets a file's last-modified time to `ns` nanoseconds after the Unix epoch (before it, if
/// negative), to the nanosecond.
///
/// # Panics
/// On I/O failure.
pub fn set_mtime(path: &Path, ns: i64) {
    let abs = Duration::from_nanos(ns.unsigned_abs());
    let time = if ns >= 0 {
        std::time::UNIX_EPOCH + abs
    } else {
        std::time::UNIX_EPOCH - abs
    };
    let file = fs::File::options()
        .write(true)
        .open(path)
        .expect("open for set_times");
    file.set_times(fs::FileTimes::new().set_modified(time))
        .expect("set_times");
}

/// A file's last-modified time in nanoseconds since the Unix epoch.
///
/// # Panics
/// On I/O failure.
pub fn mtime_ns(path: &Path) -> i128 {
    let modified = fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .expect("mtime");
    match modified.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// Every regular file below `dir` (recursively), as paths relative to `dir`, sorted. Empty if
/// `dir` does not exist. Unlike [`snapshot`] this looks inside `.minibox/` too, so a test can see
/// what is left in `.minibox/tmp/` or moved to `.minibox/trash/`.
///
/// # Panics
/// On I/O failure other than a missing `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("read_dir {}: {e}", current.display()),
        };
        for entry in entries {
            let path = entry.expect("dirent").path();
            let meta = fs::symlink_metadata(&path).expect("lstat");
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                out.push(path.strip_prefix(dir).expect("inside").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// A loopback address on which nothing listens (a port the OS just handed out and took back),
/// for testing what a client does when its peer is down.
///
/// # Panics
/// If no port can be bound.
pub fn closed_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    addr
}

/// A loopback port kept from other programs while nothing listens on it: a socket bound to it
/// that never calls `listen`, so a connection to it is refused exactly as to a port nobody
/// holds. A test that stops a peer and starts it again on the same port holds the port
/// meanwhile; otherwise another program's outgoing connection may be given it as its local
/// port, and the peer cannot listen there again ("address already in use"). Dropping it frees
/// the port.
pub struct HeldPort {
    /// Bound, never listening; closed on drop.
    _socket: socket2::Socket,
}

impl HeldPort {
    /// Holds 127.0.0.1:`port` (with `SO_REUSEADDR`, so that connections of the peer just stopped,
    /// waiting out their end, do not stand in the way).
    ///
    /// # Panics
    /// If the port cannot be bound (another program has it).
    pub fn hold(port: u16) -> HeldPort {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a TCP socket");
        socket.set_reuse_address(true).expect("SO_REUSEADDR");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        socket
            .bind(&addr.into())
            .unwrap_or_else(|e| panic!("cannot hold port {port}: {e}"));
        HeldPort { _socket: socket }
    }
}

/// The MD5 of a regular file's contents, in hex (through the box's own path gate for files, so a
/// link or a FIFO is an error, not a hang).
///
/// # Errors
/// If the file cannot be opened or read, or is not a regular file.
pub fn md5_file(path: &Path) -> std::io::Result<String> {
    minibox::local::gate::digest_file(path).map(|d| d.to_string())
}

/// The MD5 of bytes in memory, in hex: what a box reports for a file holding them.
pub fn md5_of(bytes: &[u8]) -> String {
    minibox::protocol::md5::Md5::of(bytes).to_string()
}

/// Deterministic pseudo-random bytes (xorshift), so tests need no extra crate and can be replayed.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A seeded xorshift64 generator, for randomized tests that must be replayable from their seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (any value). Every seed gives its own sequence: the seed
    /// goes through splitmix64's mixer, a one-to-one map, before it becomes xorshift's state
    /// (which must not be 0). Making the seed odd instead, as this once did, gave 2 and 3 (and
    /// every even seed and the next) the same bytes.
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)).max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// What a tree holds, for comparing two boxes: relative path → (is_dir, contents, mode bits,
/// mtime in ns). `.minibox/` is left out.
pub type Snapshot = BTreeMap<String, (bool, Vec<u8>, u32, i128)>;

/// How many times [`snapshot_live`] tries before it gives up.
pub const SNAPSHOT_TRIES: usize = 50;

/// Reads a whole tree into a [`Snapshot`]: for final assertions, on boxes nobody changes any
/// more.
///
/// # Panics
/// On any I/O failure (a file that vanishes under a final check is a failure to report).
pub fn snapshot(root: &Path) -> Snapshot {
    try_snapshot(root).unwrap_or_else(|e| panic!("snapshot of {}: {e}", root.display()))
}

/// Reads a tree that running peers may be changing at this very moment, for polling: a file
/// moved to the trash between the listing of its folder and the reading of its bytes (or a
/// folder replaced by a file) makes one attempt fail, so the whole snapshot is taken again, up
/// to [`SNAPSHOT_TRIES`] times, 20 ms apart. Each snapshot that is returned was read whole, but
/// not at one instant: use [`snapshot`] for the final word, once the peers have settled.
///
/// # Panics
/// If every attempt failed (the tree cannot be read at all, or never holds still for the few
/// milliseconds a read takes), with the last error.
pub fn snapshot_live(root: &Path) -> Snapshot {
    let mut last = None;
    for _ in 0..SNAPSHOT_TRIES {
        match try_snapshot(root) {
            Ok(snap) => return snap,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "no whole snapshot of {} in {SNAPSHOT_TRIES} tries: {}",
        root.display(),
        last.map_or_else(String::new, |e| e.to_string())
    );
}

/// [`snapshot`] that returns the first I/O error (with the path it happened on) instead of
/// panicking.
///
/// # Errors
/// If a folder cannot be listed, an entry cannot be looked at, or a file cannot be read.
pub fn try_snapshot(root: &Path) -> std::io::Result<Snapshot> {
    let at = |path: &Path, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
    };
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| at(&dir, e))? {
            let path = entry.map_err(|e| at(&dir, e))?.path();
            let rel = path
                .strip_prefix(root)
                .expect("read_dir yields paths below the folder it lists")
                .to_string_lossy()
                .into_owned();
            if rel == ".minibox" {
                continue;
            }
            let meta = fs::symlink_metadata(&path).map_err(|e| at(&path, e))?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_dir() {
                stack.push(path.clone());
                out.insert(rel, (true, Vec::new(), mode, 0));
            } else if meta.is_file() {
                let bytes = fs::read(&path).map_err(|e| at(&path, e))?;
                out.insert(rel, (false, bytes, mode, mtime));
            }
        }
    }
    Ok(out)
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it for a listener that is
/// closed again at once). For tests that must know a port before starting the binary that binds
/// it, like two peers that each need the other's address.
///
/// # Panics
/// If no port can be bound at all.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Polls `check` every 50 ms until it returns true or `limit` passes; returns the last result.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announce_lines_parse() {
        assert_eq!(
            parse_announce("minibox: serving /tmp/a on b/x on 127.0.0.1:5000"),
            Some("127.0.0.1:5000".parse().unwrap())
        );
        assert_eq!(parse_announce("other"), None);
    }

    #[test]
    fn mtimes_are_set_to_the_nanosecond_and_files_listed() {
        let dir = tempdir();
        let file = write(dir.path(), "a/b c.txt", b"x");
        set_mtime(&file, 1_700_000_000_123_456_789);
        assert_eq!(mtime_ns(&file), 1_700_000_000_123_456_789);
        set_mtime(&file, -1_500_000_000);
        assert_eq!(mtime_ns(&file), -1_500_000_000);
        write(dir.path(), "z", b"");
        assert_eq!(
            files_under(dir.path()),
            [PathBuf::from("a/b c.txt"), PathBuf::from("z")]
        );
        assert!(files_under(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn every_seed_gives_its_own_bytes() {
        let firsts: std::collections::HashSet<u64> =
            (0..1000).map(|seed| Rng::new(seed).next_u64()).collect();
        assert_eq!(firsts.len(), 1000);
        assert_ne!(pseudo_random(100, 2), pseudo_random(100, 3));
        assert_eq!(pseudo_random(100, 2), pseudo_random(100, 2));
    }

    #[test]
    fn a_closed_address_refuses() {
        let addr = closed_addr();
        assert!(std::net::TcpStream::connect(addr).is_err());
    }

    #[test]
    fn snapshots_read_trees_and_report_what_they_cannot_read() {
        let dir = tempdir();
        write(dir.path(), "a/b.txt", b"bytes");
        fs::create_dir_all(dir.path().join("empty")).unwrap();
        write(dir.path(), ".minibox/log", b"left out");
        let snap = snapshot(dir.path());
        assert_eq!(
            snap.keys().collect::<Vec<_>>(),
            ["a", "a/b.txt", "empty"],
            "folders, files, and no .minibox"
        );
        assert_eq!(snap["a/b.txt"].1, b"bytes");
        assert_eq!(snapshot_live(dir.path()), snap);
        let gone = dir.path().join("gone");
        let err = try_snapshot(&gone).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(err.to_string().contains("gone"), "{err}");
    }

    #[test]
    fn pseudo_random_is_repeatable() {
        assert_eq!(pseudo_random(100, 7), pseudo_random(100, 7));
        assert_ne!(pseudo_random(100, 7), pseudo_random(100, 8));
        assert_eq!(pseudo_random(13, 1).len(), 13);
    }
}
