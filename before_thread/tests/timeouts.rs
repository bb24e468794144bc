//! The stage-1 server serves one client at a time, so a client that connects and then says
//! nothing would block everybody. SPEC.md: "A client silent for 10 s is disconnected." These tests
//! hold a raw socket silent (before the handshake, after it, and in the middle of a frame), start a
//! real client meanwhile, and check that the client is answered once the silent one is dropped,
//! and that the silent socket sees the connection closed.
//!
//! Each test waits out one idle timeout (about 10 s); the tests run in parallel, each with its own
//! server. The bounds are generous: they check that nothing waits forever, not how fast it goes.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// The contract's idle timeout.
const IDLE: Duration = Duration::from_secs(10);
/// The most a client queued behind a silent one may wait for its answer: the idle timeout plus a
/// wide margin for a loaded machine.
const QUEUED_LIMIT: Duration = Duration::from_secs(25);

/// Reads until the server closes the connection; returns what arrived. Panics if the socket is
/// still open after `limit`.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => got,
        // A reset also means the server let go of us.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => got,
        Err(e) => panic!("the silent socket was not closed within {limit:?}: {e}"),
    }
}

/// Starts a server, lets `go_silent` open a connection and stop talking, then runs a real client
/// and checks that it was served and the silent connection closed after about the idle timeout.
fn silent_connection_is_dropped(go_silent: impl FnOnce(std::net::SocketAddr) -> TcpStream) {
    let s = Setup::new(sample_box);
    let opened = Instant::now();
    let mut silent = go_silent(s.server.addr);

    // A real client asks meanwhile; it waits in the accept queue until the server lets go.
    let run = s.json("index regex ^hello\n");
    let answered = opened.elapsed();
    assert_eq!(run.code(), 0, "the queued client was served: {run:?}");
    assert_eq!(run.json_lines()[0]["files"][0]["path"], "hello.txt");
    assert!(
        answered < QUEUED_LIMIT,
        "the queued client waited {answered:?}"
    );

    // The silent socket sees end of stream (nothing but, perhaps, an error frame).
    let rest = read_until_closed(&mut silent, QUEUED_LIMIT);
    let closed = opened.elapsed();
    assert!(rest.len() < 4096, "only a short farewell: {rest:?}");
    // It was the idle timeout that ended it, not something sooner.
    assert!(
        closed >= IDLE - Duration::from_secs(1),
        "dropped after {closed:?}, before the idle timeout"
    );
    eprintln!("queued client answered after {answered:?}; silent socket closed after {closed:?}");
    let log = std::fs::read_to_string(s.server_box.join(".minibox/log")).unwrap();
    assert!(log.contains("no answer for too long"), "{log}");
}

#[test]
fn a_client_that_connects_and_says_nothing_is_dropped() {
    silent_connection_is_dropped(|addr| TcpStream::connect(addr).unwrap());
}

#[test]
fn a_client_silent_after_the_handshake_is_dropped() {
    silent_connection_is_dropped(|addr| {
        let conn = minibox::conn::Connection::connect(&addr.to_string(), "silent").unwrap();
        conn.stream().try_clone().unwrap()
    });
}

#[test]
fn a_client_silent_in_the_middle_of_a_frame_is_dropped() {
    silent_connection_is_dropped(|addr| {
        let mut stream = TcpStream::connect(addr).unwrap();
        // The version byte and half of the length: the server waits for the rest.
        stream.write_all(&[1, 0, 0]).unwrap();
        stream
    });
}
