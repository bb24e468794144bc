//! A request on a file that is being written: the server waits for the file's lock, saying every
//! 2 s that the answer is on its way (`working`, nothing to count), and answers `busy` after
//! 10 s; the client, which gives up on a peer that makes no progress for 12 s, waits for that
//! answer rather than giving up first. Over a real socket, with the real serving and asking code.

// Test code: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use minibox::ask;
use minibox::local::LocalBox;
use minibox::protocol::{Error, ErrorCode};
use minibox::serve::{serve_connection, Options};
use minibox::wire::conn::Connection;

#[test]
fn a_file_locked_for_longer_than_the_idle_timeout_is_busy_not_a_silent_peer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), b"being written").unwrap();
    let local = LocalBox::open(dir.path(), "box1").unwrap();
    // An install of a.txt holds its lock for the whole test.
    let _writing = local.locks.write("a.txt", Duration::ZERO).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..2 {
                let stream = listener.accept().unwrap().0;
                let conn = Connection::new(stream).unwrap();
                let local = &local;
                scope.spawn(move || serve_connection(conn, local, Options::default()));
            }
        });
        let hash = scope.spawn(|| ask_for(addr, |c| ask::hash::hash(c, "a.txt").map(|_| ())));
        let download = scope.spawn(|| {
            ask_for(addr, |c| {
                let scratch = tempfile::tempdir().unwrap();
                let here = LocalBox::open(scratch.path(), "box2").unwrap();
                ask::download::download_tcp(c, &here, "a.txt", &mut |_, _| {}).map(|_| ())
            })
        });
        for (what, (got, took)) in
            [("hash", hash), ("download", download)].map(|(what, t)| (what, t.join().unwrap()))
        {
            match got {
                Err(Error::Remote { code, message }) => {
                    assert_eq!(code, ErrorCode::Busy, "{what}: {message}");
                }
                other => panic!("{what}: {other:?}"),
            }
            // The server's own 10 s, not the client's 12 s of patience nor a socket's 10 s.
            assert!(took >= Duration::from_secs(9), "{what}: {took:?}");
        }
    });
}

/// Runs `request` on a new connection to `addr`; returns how it ended and how long it took.
fn ask_for(
    addr: std::net::SocketAddr,
    request: impl FnOnce(&mut Connection) -> minibox::Result<()>,
) -> (minibox::Result<()>, Duration) {
    let stream = TcpStream::connect(addr).unwrap();
    let mut conn = Connection::new(stream).unwrap();
    conn.send(&minibox::protocol::Request::Hello {
        name: "box2".into(),
    })
    .unwrap();
    let _hello: minibox::protocol::Reply = conn.recv().unwrap();
    let started = Instant::now();
    let got = request(&mut conn);
    (got, started.elapsed())
}
