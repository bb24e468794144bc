//! What every stage-1 integration test needs: a real `server` on a temporary box, listening on a
//! port of loopback the OS picks, and a way to run the real `client` against it.
//!
//! Times: the shell shows local time and reads naive timestamps in local time, so every binary
//! here runs with `TZ=UTC` unless a test passes another zone on purpose.

#![allow(dead_code)] // each test file uses a different part of this module

use std::path::{Path, PathBuf};
use std::time::Duration;

use testkit::{Proc, ShellRun, TempDir};

/// The server binary of this stage.
pub const SERVER: &str = env!("CARGO_BIN_EXE_server");
/// The client binary of this stage.
pub const CLIENT: &str = env!("CARGO_BIN_EXE_client");

/// How long one client run may take before the test fails (generous: a loaded 2-core machine
/// building other crates at the same time).
pub const SHELL_LIMIT: Duration = Duration::from_secs(90);

/// A server box and a client box in one temporary folder, with the server running.
pub struct Setup {
    /// Holds both boxes (and room for things "outside" them); removed on drop.
    pub tmp: TempDir,
    /// The box the server serves.
    pub server_box: PathBuf,
    /// The box the client downloads into.
    pub client_box: PathBuf,
    /// The running server (killed on drop).
    pub server: Proc,
}

impl Setup {
    /// Builds the server box with `fill`, then starts the server on it.
    pub fn new(fill: impl FnOnce(&Path)) -> Setup {
        Setup::with_env(fill, &[])
    }

    /// [`Setup::new`] with extra environment variables for the server (`MINIBOX_UDP_BLOCK`).
    pub fn with_env(fill: impl FnOnce(&Path), env: &[(&str, &str)]) -> Setup {
        let tmp = testkit::tempdir();
        let server_box = tmp.path().join("box1");
        let client_box = tmp.path().join("box2");
        std::fs::create_dir_all(&server_box).expect("mkdir box1");
        fill(&server_box);
        let server = start_server_with(&server_box, env);
        Setup {
            tmp,
            server_box,
            client_box,
            server,
        }
    }

    /// Runs the client in human mode with `input` on stdin.
    pub fn human(&self, input: &str) -> ShellRun {
        self.client(&[], input, &[("TZ", "UTC")])
    }

    /// Runs the client with `--json` and `input` on stdin.
    pub fn json(&self, input: &str) -> ShellRun {
        self.client(&["--json"], input, &[("TZ", "UTC")])
    }

    /// Runs the client against this server with extra arguments and environment.
    pub fn client(&self, extra: &[&str], input: &str, env: &[(&str, &str)]) -> ShellRun {
        run_client(
            &self.client_box,
            &self.server.addr_string(),
            extra,
            input,
            env,
        )
    }
}

/// Starts the stage-1 server on `dir`, on a port the OS picks.
pub fn start_server(dir: &Path) -> Proc {
    start_server_with(dir, &[])
}

/// [`start_server`] with extra environment variables.
pub fn start_server_with(dir: &Path, env: &[(&str, &str)]) -> Proc {
    let dir = dir.to_str().expect("UTF-8 temp path");
    let mut all = vec![("TZ", "UTC")];
    all.extend_from_slice(env);
    Proc::start_with(SERVER, &["--dir", dir, "--listen", "127.0.0.1:0"], &all)
}

/// Runs the stage-1 client on `dir` against `peer`.
pub fn run_client(
    dir: &Path,
    peer: &str,
    extra: &[&str],
    input: &str,
    env: &[(&str, &str)],
) -> ShellRun {
    let dir = dir.to_str().expect("UTF-8 temp path");
    let mut args = vec!["--dir", dir, "--peer", peer];
    args.extend_from_slice(extra);
    testkit::run_shell_env(CLIENT, &args, input, SHELL_LIMIT, env)
}

/// Nanoseconds in a second.
pub const SEC: i64 = 1_000_000_000;

/// 2026-11-20T08:00:00.123456789Z: `hello.txt`'s mtime (nanoseconds on purpose).
pub const HELLO_MTIME: i64 = 1_795_161_600 * SEC + 123_456_789;
/// 2024-02-29T12:00:00Z: `docs/read me.md`'s mtime.
pub const README_MTIME: i64 = 1_709_208_000 * SEC;
/// 2025-06-30T23:59:59.999999999Z: `docs/deep/er/notes.txt`'s mtime.
pub const NOTES_MTIME: i64 = 1_751_327_999 * SEC + 999_999_999;
/// Size of `big.bin`: several megabytes, not a multiple of any buffer size.
pub const BIG_LEN: usize = 5 * 1024 * 1024 + 3;

/// MD5 of `hello world` (from `md5sum`, not from the code under test).
pub const HELLO_MD5: &str = "5eb63bbbe01eeed093cb22bb8f5acdc3";
/// MD5 of `# minibox\n`.
pub const README_MD5: &str = "2ba0aca117ca7a11f84b571d42ff5e76";
/// MD5 of `deep\n`.
pub const NOTES_MD5: &str = "1b385affd7adb5a6283fef292b5df0f7";
/// MD5 of nothing.
pub const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// The files of the sample server box, in the order a listing shows them (sorted by path).
pub const SAMPLE_FILES: [&str; 5] = [
    "big.bin",
    "docs/deep/er/notes.txt",
    "docs/read me.md",
    "empty.dat",
    "hello.txt",
];

/// Fills a server box with the sample files: nested folders, a name with a space, an empty file,
/// a multi-megabyte file, several permission bits and mtimes to the nanosecond. Next to the box
/// (outside it) it makes `outside/secret.txt`, and inside the box a symbolic link `link-out`
/// pointing there, which must never be listed or followed.
pub fn sample_box(root: &Path) {
    let hello = testkit::write(root, "hello.txt", b"hello world");
    testkit::chmod(&hello, 0o644);
    testkit::set_mtime(&hello, HELLO_MTIME);

    let readme = testkit::write(root, "docs/read me.md", b"# minibox\n");
    testkit::chmod(&readme, 0o600);
    testkit::set_mtime(&readme, README_MTIME);

    let notes = testkit::write(root, "docs/deep/er/notes.txt", b"deep\n");
    testkit::chmod(&notes, 0o640);
    testkit::set_mtime(&notes, NOTES_MTIME);

    let empty = testkit::write(root, "empty.dat", b"");
    testkit::set_mtime(&empty, README_MTIME);
    testkit::chmod(&empty, 0o444);

    let big = testkit::write(root, "big.bin", &testkit::pseudo_random(BIG_LEN, 7));
    testkit::chmod(&big, 0o755);

    let outside = root.parent().expect("box has a parent").join("outside");
    testkit::write(&outside, "secret.txt", b"not yours");
    std::os::unix::fs::symlink(&outside, root.join("link-out")).expect("symlink");
}

/// The MD5 of a file on disk.
pub fn md5_of(path: &Path) -> String {
    testkit::md5_file(path).expect("md5 of a fixture")
}

/// Checks that a JSON object has exactly these keys.
pub fn assert_keys(value: &serde_json::Value, keys: &[&str]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"));
    let mut got: Vec<&str> = object.keys().map(String::as_str).collect();
    let mut want = keys.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "keys of {value}");
}

/// Checks a failure line: exactly `{"ok": false, "error": "…"}`, one non-empty sentence containing
/// `needle`. Returns the sentence.
pub fn assert_error(value: &serde_json::Value, needle: &str) -> String {
    assert_keys(value, &["ok", "error"]);
    assert_eq!(value["ok"], false, "{value}");
    let error = value["error"].as_str().expect("error is a string");
    assert!(!error.is_empty() && !error.contains('\n'), "{value}");
    assert!(error.contains(needle), "expected {needle:?} in {error:?}");
    error.to_string()
}
