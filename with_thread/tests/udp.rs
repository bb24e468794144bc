//! `download UDP` in stage 2: from a with_thread shell, and from a threaded box that serves
//! several UDP downloads at once through its one UDP socket (the transfers' datagrams are told
//! apart by token), some of them through a relay that drops, duplicates and reorders datagrams.

// Test helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use testkit::md5_of;
use testkit::relay::{Damage, Relay};

#[test]
fn a_threaded_box_serves_several_udp_downloads_at_once() {
    const SHELLS: usize = 4;
    let server_tmp = testkit::tempdir();
    let files: Vec<(String, Vec<u8>)> = (0..SHELLS)
        .map(|i| {
            let bytes = testkit::pseudo_random((3 << 20) + i * 4_099, 40 + i as u64);
            (format!("dir {i}/file{i}.bin"), bytes)
        })
        .collect();
    for (i, (name, bytes)) in files.iter().enumerate() {
        let path = testkit::write(server_tmp.path(), name, bytes);
        testkit::chmod(&path, if i.is_multiple_of(2) { 0o600 } else { 0o755 });
    }
    let server = serve_only(server_tmp.path());
    // Half of the shells go through a lossy relay, half straight to the box.
    let relay = Relay::start(server.addr, Damage::lossy(0.10, 2));
    let peers = [relay.addr().to_string(), server.addr_string()];
    let clients: Vec<_> = (0..SHELLS).map(|_| testkit::tempdir()).collect();
    let runs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .iter()
            .zip(&clients)
            .enumerate()
            .map(|(i, ((name, _), dir))| {
                let peer = &peers[i % 2];
                scope.spawn(move || {
                    run_json(dir.path(), peer, &format!("download UDP \"{name}\"\n"))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((run, (name, bytes)), dir) in runs.iter().zip(&files).zip(&clients) {
        let answer = json(run.stdout.lines().next().unwrap_or(""));
        assert_eq!(answer["ok"], true, "{}\n{}", run.stdout, run.stderr);
        assert_eq!(answer["transport"], "udp");
        assert_eq!(answer["file"]["md5"], md5_of(bytes).as_str());
        assert!(
            std::fs::read(dir.path().join(name)).unwrap() == *bytes,
            "{name}"
        );
        assert!(temp_files(dir.path()).is_empty());
    }
    let want = testkit::snapshot(server_tmp.path());
    for ((name, _), dir) in files.iter().zip(&clients) {
        let got = testkit::snapshot(dir.path());
        assert_eq!(got[name], want[name], "{name}: bytes, mode and mtime");
    }
    assert!(
        relay.stats().to_client.get().1 > 0,
        "the relay dropped something"
    );
}
