//! Twenty clients at once against one `with_thread` box, all answered correctly: stage-1
//! `client` processes, `with_thread` shells, and raw connections from the library that all stay
//! open together (which a one-at-a-time server could not answer).

// Test helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use minibox::local::LocalBox;
use minibox::protocol::Filter;
use testkit::md5_of;

const CLIENTS: usize = 20;
const RAW: usize = 8;

#[test]
fn twenty_clients_at_once_get_correct_answers() {
    let s_tmp = testkit::tempdir();
    // Files of different sizes and contents; the expected answers come from what we wrote.
    let mut expected = BTreeMap::new();
    for i in 0..10u64 {
        let bytes = testkit::pseudo_random(((i as usize) + 1) * 37_000, i + 100);
        testkit::write(s_tmp.path(), &format!("f{i}.bin"), &bytes);
        expected.insert(format!("f{i}.bin"), md5_of(&bytes));
    }
    let expected = Arc::new(expected);
    let server = serve_only(s_tmp.path());
    let addr = server.addr_string();
    let client_bin = testkit::sibling_bin("before_thread", "client");
    let start = Arc::new(Gate::new(CLIENTS));
    let all_raw_open = Arc::new(Gate::new(RAW));

    let threads: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (addr, expected, start, all_raw_open, client_bin) = (
                addr.clone(),
                Arc::clone(&expected),
                Arc::clone(&start),
                Arc::clone(&all_raw_open),
                client_bin.clone(),
            );
            std::thread::Builder::new()
                .name(format!("client-{n}"))
                .spawn(move || {
                    let dir = testkit::tempdir();
                    let file = format!("f{}.bin", n % 10);
                    start.wait();
                    if n < RAW {
                        raw_client(&addr, dir.path(), &file, &expected, &all_raw_open);
                    } else {
                        let bin = if n.is_multiple_of(2) {
                            path_str(&client_bin).to_string()
                        } else {
                            BIN.to_string()
                        };
                        shell_client(&bin, &addr, dir.path(), &file, &expected);
                    }
                })
                .expect("a thread")
        })
        .collect();
    let failures: Vec<String> = threads
        .into_iter()
        .enumerate()
        .filter_map(|(n, t)| t.join().err().map(|_| format!("client {n} failed")))
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    // Every download was served and logged (a server thread logs right after answering).
    log_until(s_tmp.path(), |log| {
        log.lines()
            .filter(|l| l.contains("\tdownload tcp ") && l.contains("\tok "))
            .count()
            == CLIENTS
    });
}

/// A barrier with a time limit: should a thread fail before it arrives, the others go on (and
/// the test fails on that thread's panic) instead of waiting forever.
struct Gate {
    /// Threads that arrived.
    arrived: AtomicUsize,
    /// How many are expected.
    parties: usize,
}

impl Gate {
    fn new(parties: usize) -> Self {
        Gate {
            arrived: AtomicUsize::new(0),
            parties,
        }
    }

    fn wait(&self) {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        let all = testkit::wait_until(LIMIT, || {
            self.arrived.load(Ordering::SeqCst) >= self.parties
        });
        assert!(all, "not every client got this far");
    }
}

/// Holds its connection open until all raw clients are connected (and handshaken) at once, then
/// lists with MD5s and downloads one file on that same connection.
fn raw_client(
    addr: &str,
    dir: &std::path::Path,
    file: &str,
    expected: &BTreeMap<String, String>,
    all_open: &Gate,
) {
    let local = LocalBox::open(dir, "raw").unwrap();
    let mut conn = minibox::wire::handshake::connect(addr, "raw", None).unwrap();
    all_open.wait();
    let listing =
        minibox::ask::list::list(&mut conn, Filter::All, minibox::protocol::ListKind::Hashes)
            .unwrap();
    let got: BTreeMap<String, String> = listing
        .into_iter()
        .map(|e| (e.path, e.md5.unwrap()))
        .collect();
    assert_eq!(&got, expected);
    let entry =
        minibox::ask::download::download_tcp(&mut conn, &local, file, &mut |_, _| {}).unwrap();
    assert_eq!(entry.md5.as_deref(), Some(expected[file].as_str()));
    assert_eq!(md5(&dir.join(file)), expected[file]);
}

/// Runs a shell binary (stage 1 `client` or `with_thread`) with `hash checkall` and a download.
fn shell_client(
    bin: &str,
    addr: &str,
    dir: &std::path::Path,
    file: &str,
    expected: &BTreeMap<String, String>,
) {
    let mut args = vec!["--dir", path_str(dir), "--peer", addr, "--json"];
    if bin == BIN {
        args.extend(["--listen", "127.0.0.1:0"]);
    }
    let input = format!("hash checkall\ndownload TCP {file}\n");
    let run = testkit::run_shell(bin, &args, &input, Duration::from_secs(120));
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = run.json_lines();
    let got: BTreeMap<String, String> = lines[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["md5"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(&got, expected);
    assert_eq!(lines[1]["file"]["md5"], expected[file].as_str());
    assert_eq!(md5(&dir.join(file)), expected[file]);
}
