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
//!
//! A client that has a version of the file downloads it by blocks (`docs/blocks.md`): there every
//! block is checked against its MD5, so a mix would not verify anyway, and the server still says
//! `changed` for the blocks it was sending when the file changed. The file is random through and
//! through then: blocks of zeros would be copied from the ones already received, not sent.

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
/// take no disk space and read fast); or, with `random`, pseudo-random bytes throughout.
fn big_file(path: &Path, random: bool) {
    if random {
        fs::write(path, testkit::pseudo_random(SIZE as usize, 33)).unwrap();
        return;
    }
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

/// How the client downloads.
#[derive(Clone, Copy)]
enum How {
    /// `download TCP` of a file the client does not have: whole.
    Tcp,
    /// `download TCP` of a file the client has a version of: by blocks.
    TcpByBlocks,
    /// `download UDP`.
    Udp,
}

impl How {
    fn transport(self) -> &'static str {
        match self {
            How::Tcp | How::TcpByBlocks => "TCP",
            How::Udp => "UDP",
        }
    }

    /// What the client's box holds under the name before: it must survive.
    fn before(self) -> Option<&'static [u8]> {
        match self {
            How::Tcp => None,
            How::TcpByBlocks | How::Udp => Some(OLD),
        }
    }
}

/// The whole scenario.
fn a_file_changed_mid_download_is_not_installed(how: How) {
    let random = matches!(how, How::TcpByBlocks);
    let s = Setup::new(|root| {
        big_file(&root.join("big.bin"), random);
        testkit::write(root, "small.txt", b"still served\n");
    });
    if let Some(old) = how.before() {
        testkit::write(&s.client_box, "big.bin", old);
    }
    let run = download_while_the_file_changes(&s, how.transport());
    assert_refused_and_nothing_installed(&s, &run, how);
    assert_server_still_serves_the_new_version(&s, how);
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
fn assert_refused_and_nothing_installed(s: &Setup, run: &ShellRun, how: How) {
    // One clear sentence, a failure status.
    assert_eq!(
        run.code(),
        1,
        "stdout: {}\nstderr: {}\nserver log: {}",
        run.stdout,
        run.stderr,
        fs::read_to_string(s.server_box.join(".minibox/log")).unwrap_or_default()
    );
    let lines = run.json_lines();
    assert_eq!(lines.len(), 1, "one answer: {}", run.stdout);
    let error = assert_error(&lines[0], "big.bin changed while it was being sent");
    assert!(error.contains("nothing was installed"), "{error}");
    // Nothing installed: the old version is still there, untouched and not in the trash, and no
    // temporary file is left.
    let now = fs::read(s.client_box.join("big.bin")).ok();
    assert_eq!(now.as_deref(), how.before());
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
fn assert_server_still_serves_the_new_version(s: &Setup, how: How) {
    // The server goes on serving, the new version included.
    let lower = how.transport().to_ascii_lowercase();
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
    let old: Vec<&[u8]> = how.before().into_iter().collect();
    assert_eq!(trashed.len(), old.len(), "{trashed:?}");
    for (name, old) in trashed.iter().zip(old) {
        assert_eq!(fs::read(meta.join("trash").join(name)).unwrap(), old);
    }
}

#[test]
fn a_file_changed_during_a_tcp_download_is_not_installed() {
    a_file_changed_mid_download_is_not_installed(How::Tcp);
}

#[test]
fn a_file_changed_while_its_blocks_are_sent_is_not_installed() {
    a_file_changed_mid_download_is_not_installed(How::TcpByBlocks);
}

#[test]
fn a_file_changed_during_a_udp_download_is_not_installed() {
    a_file_changed_mid_download_is_not_installed(How::Udp);
}
