//! A file that changes on the serving box while it is being sent is not installed (SPEC.md,
//! Transfers). The server notes the file's stamp (size, mtime, ctime, inode) when it opens it and
//! looks again once the last byte is out; if the stamp moved, it sends a `changed` error in place
//! of the trailer's MD5, and the client installs nothing.
//!
//! The server hashes what it reads as it sends it, so the client's MD5 and the trailer's would
//! *agree* on a mix of old and new bytes: only the stamp check stands between that mix and the
//! client's box. These tests make such a mix on purpose, over TCP and over UDP.
//!
//! To change the file while the transfer is certainly under way, without racing the transfer,
//! the test freezes the client (SIGSTOP) once its temporary file holds its first bytes and less
//! than half of a file much larger than every socket buffer between the two. Frozen, the client
//! reads nothing, so the server is stuck in the middle of sending; the test rewrites part of the
//! file the server has not read yet, then lets the client go on (SIGCONT).

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::*;
use testkit::{RunningShell, ShellRun};

/// The served file: far larger than the socket buffers, so that a client frozen before half of
/// it has arrived leaves the server with most of it still to send.
const SIZE: u64 = 64 << 20;

/// What the client's box holds under the same name before the download; it must survive.
const OLD: &[u8] = b"the client's own older version\n";

/// Makes `path` a file of [`SIZE`] bytes quickly: one pseudo-random MiB, then a hole (zeros that
/// take no disk space and read fast).
fn big_sparse_file(path: &Path) {
    fs::write(path, testkit::pseudo_random(1 << 20, 31)).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(SIZE)
        .unwrap();
}

/// Changes the file in place, where the server has not read yet: new bytes in its last MiB.
/// Same size, same inode; the mtime and ctime move.
fn change_in_place(path: &Path) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(&testkit::pseudo_random(1 << 20, 32), SIZE - (1 << 20))
        .unwrap();
    file.sync_data().unwrap();
}

/// The whole scenario for `transport` (`TCP` or `UDP`).
fn a_file_changed_mid_download_is_not_installed(transport: &str) {
    let s = Setup::new(|root| {
        big_sparse_file(&root.join("big.bin"));
        testkit::write(root, "small.txt", b"still served\n");
    });
    testkit::write(&s.client_box, "big.bin", OLD);
    let run = download_while_the_file_changes(&s, transport);
    assert_refused_and_nothing_installed(&s, &run);
    assert_server_still_serves_the_new_version(&s, transport);
}

/// Starts the download, freezes the client in the middle of it, changes the file on the server
/// and lets the client finish. Checks that the client could be frozen in time.
fn download_while_the_file_changes(s: &Setup, transport: &str) -> ShellRun {
    let dir = s.client_box.to_str().unwrap();
    let peer = s.server.addr_string();
    let mut client = RunningShell::start(
        CLIENT,
        &["--dir", dir, "--peer", &peer, "--json"],
        &format!("download {transport} big.bin\n"),
        &[("TZ", "UTC")],
    );
    let pid = client.pid();
    let frozen =
        testkit::freeze_mid_download(pid, &s.client_box, SIZE, SHELL_LIMIT, || client.running());
    assert!(
        frozen,
        "could not freeze the client in the middle of the download"
    );
    // The client is frozen with less than half of the file, so the server has not sent the last
    // MiB yet, let alone checked the stamp: change the file under it.
    change_in_place(&s.server_box.join("big.bin"));
    client.signal("CONT");
    client.finish(SHELL_LIMIT)
}

/// One clear sentence, a failure status; nothing installed: the old version is still there,
/// untouched and not in the trash, no temporary file is left, and the server logged why.
fn assert_refused_and_nothing_installed(s: &Setup, run: &ShellRun) {
    // One clear sentence, a failure status.
    assert_eq!(
        run.code(),
        1,
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    let lines = run.json_lines();
    assert_eq!(lines.len(), 1, "one answer: {}", run.stdout);
    let error = assert_error(&lines[0], "big.bin changed while it was being sent");
    assert!(error.contains("nothing was installed"), "{error}");
    // Nothing installed: the old version is still there, untouched and not in the trash, and no
    // temporary file is left.
    assert_eq!(fs::read(s.client_box.join("big.bin")).unwrap(), OLD);
    let meta = s.client_box.join(".minibox");
    assert!(testkit::files_under(&meta.join("trash")).is_empty());
    assert!(testkit::files_under(&meta.join("tmp")).is_empty());
    let log = fs::read_to_string(s.server_box.join(".minibox/log")).unwrap();
    assert!(
        log.contains("the file changed during the transfer"),
        "{log}"
    );
}

/// The server goes on serving, the new version included; the older version goes to the trash,
/// whole, only now.
fn assert_server_still_serves_the_new_version(s: &Setup, transport: &str) {
    // The server goes on serving, the new version included.
    let lower = transport.to_ascii_lowercase();
    let run = s.json(&format!(
        "download {lower} small.txt\ndownload {lower} big.bin\n"
    ));
    assert_eq!(
        run.code(),
        0,
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    let lines = run.json_lines();
    assert_eq!(lines[0]["file"]["path"], "small.txt");
    assert_eq!(
        lines[1]["file"]["md5"],
        md5_of(&s.server_box.join("big.bin"))
    );
    assert_eq!(
        md5_of(&s.client_box.join("big.bin")),
        md5_of(&s.server_box.join("big.bin"))
    );
    // The older version went to the trash, whole, only now.
    let meta = s.client_box.join(".minibox");
    let trashed = testkit::files_under(&meta.join("trash"));
    assert_eq!(trashed.len(), 1, "{trashed:?}");
    assert_eq!(fs::read(meta.join("trash").join(&trashed[0])).unwrap(), OLD);
}

#[test]
fn a_file_changed_during_a_tcp_download_is_not_installed() {
    a_file_changed_mid_download_is_not_installed("TCP");
}

#[test]
fn a_file_changed_during_a_udp_download_is_not_installed() {
    a_file_changed_mid_download_is_not_installed("UDP");
}
