//! A pipelined batch of downloads (`ask::pipeline::fetch_many`) whose receiving box cannot store
//! one of the files, because its disk is full or its temporary folder is unusable, goes on with
//! the others: the rest of that file's bytes are read and dropped, that file fails with the
//! disk's error, and the replies after it are read in step. A request sent after the batch on the
//! same connection is answered correctly, which it would not be if a byte were left over.
//!
//! The full disk is a small `tmpfs`, which needs root (CI runs as root); elsewhere that test
//! prints why it skipped.

// Helpers of a test crate may unwrap like the tests themselves (clippy.toml only covers #[test]).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::net::TcpListener;

use minibox::ask::pipeline::Listed;
use minibox::ask::pipeline::{fetch_many, Body, IN_MEMORY};
use minibox::ask::{connect, hash::hash};
use minibox::local::LocalBox;
use minibox::protocol::md5::Md5;
use minibox::protocol::Error;
use minibox::serve::{self, Options};
use minibox::wire::conn::Connection;
use testkit::small_disk::SmallDisk;

/// How one file of the batch came back.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    /// Its verified bytes, in memory or in a temporary file.
    Bytes(Vec<u8>),
    /// A disk error here, with the OS's error number.
    DiskError(Option<i32>),
    /// Anything else, said.
    Other(String),
}

/// Serves `files` from a fresh box on one connection, in-process, and fetches them all as a
/// pipelined batch into `client`, then asks for the MD5 of `files[check]` on the same connection.
/// Returns what came back for each file, and the MD5 the follow-up request got.
fn fetch_all(client: &LocalBox, files: &[(&str, Vec<u8>)], check: usize) -> (Vec<Got>, Md5) {
    let source = testkit::tempdir();
    for (name, bytes) in files {
        testkit::write(source.path(), name, bytes);
    }
    let server = LocalBox::open(source.path(), "server").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let (stream, _) = listener.accept().unwrap();
            let conn = Connection::new(stream).unwrap();
            serve::serve_connection(conn, &server, Options::default());
        });
        let mut conn = connect(client, &addr).unwrap();
        // What a listing would have said of each file: its size and MD5.
        let listed = |bytes: &[u8]| Listed {
            size: bytes.len() as u64,
            md5: Some(Md5::of(bytes)),
        };
        let named: Vec<(&str, Listed)> = files.iter().map(|(n, b)| (*n, listed(b))).collect();
        let mut got = Vec::new();
        let handed = fetch_many(&mut conn, client, &named, &mut |_, result, _| {
            got.push(got_of(result));
        });
        assert_eq!(handed, files.len(), "the batch went on to the end: {got:?}");
        let entry = hash(&mut conn, files[check].0).unwrap();
        (got, entry.md5.unwrap().parse().unwrap())
    })
}

fn got_of(result: minibox::Result<(Body, minibox::protocol::Entry)>) -> Got {
    match result {
        Ok((Body::Bytes(bytes), _)) => Got::Bytes(bytes),
        Ok((Body::File(tmp), _)) => Got::Bytes(fs::read(tmp.path()).unwrap()),
        Err(Error::Io { source, .. }) => Got::DiskError(source.raw_os_error()),
        Err(other) => Got::Other(other.to_string()),
    }
}

/// What `fetch_all` should give for a file that arrived whole.
fn whole(bytes: &[u8]) -> Got {
    Got::Bytes(bytes.to_vec())
}

#[test]
fn a_full_disk_fails_one_file_and_the_batch_goes_on_in_step() {
    const DISK: u64 = 4 << 20;
    let disk = match SmallDisk::mount(DISK) {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: this test needs a small tmpfs, and {why}");
            return;
        }
    };
    let client = LocalBox::open(&disk.path().join("box"), "client").unwrap();
    // Twice the disk: it fills up in the middle of the bytes. The files after it fit once its
    // temporary file is gone.
    let too_big = testkit::pseudo_random(2 * DISK as usize, 1);
    let small = b"a small file".to_vec();
    let fits = testkit::pseudo_random(1 << 20, 2);
    let files = [
        ("too-big.bin", too_big),
        ("small.txt", small.clone()),
        ("fits.bin", fits.clone()),
    ];
    let (got, md5) = fetch_all(&client, &files, 2);
    const ENOSPC: i32 = 28;
    assert_eq!(
        got,
        [Got::DiskError(Some(ENOSPC)), whole(&small), whole(&fits)]
    );
    assert_eq!(
        md5,
        Md5::of(&fits),
        "the follow-up request was read in step"
    );
    let left = fs::read_dir(client.temp_dir(None)).unwrap().count();
    assert_eq!(left, 0, "the failed file's temporary file is gone");
}

#[test]
fn an_unusable_temporary_folder_fails_the_large_files_and_the_batch_goes_on_in_step() {
    let client_dir = testkit::tempdir();
    let client = LocalBox::open(client_dir.path(), "client").unwrap();
    // `.minibox/tmp` becomes a file: no temporary file can be made in it.
    let tmp = client.temp_dir(None);
    fs::remove_dir(&tmp).unwrap();
    fs::write(&tmp, b"in the way").unwrap();
    let large = testkit::pseudo_random(IN_MEMORY as usize * 3, 3);
    let small = b"small files come back in memory".to_vec();
    let files = [
        ("a-large.bin", large.clone()),
        ("b-small.txt", small.clone()),
        ("c-large.bin", large),
    ];
    let (got, md5) = fetch_all(&client, &files, 1);
    const ENOTDIR: i32 = 20;
    assert_eq!(
        got,
        [
            Got::DiskError(Some(ENOTDIR)),
            whole(&small),
            Got::DiskError(Some(ENOTDIR))
        ]
    );
    assert_eq!(
        md5,
        Md5::of(&small),
        "the follow-up request was read in step"
    );
}
