//! The stage-1 server serves one client at a time, so a client that connects and then says
//! nothing would block everybody. SPEC.md: "A client silent for 10 s is disconnected." These tests
//! hold a raw socket silent (before the handshake, after it, and in the middle of a frame), start a
//! real client meanwhile, and check that the client is answered once the silent one is dropped,
//! and that the silent socket sees the connection closed.
//!
//! A socket timeout limits each read, not a whole frame, so a client that *drips* a frame (one
//! byte every couple of seconds) never trips it; the last tests check that such a client is
//! dropped too, once its frame has taken the idle timeout, and that the client queued behind it
//! is then served.
//!
//! Each test waits out one idle timeout (about 10 s); the tests run in parallel, each with its own
//! server. The bounds are generous: they check that nothing waits forever, not how fast it goes.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use minibox::protocol::{Filter, Request};

use common::*;

/// The contract's idle timeout.
const IDLE: Duration = Duration::from_secs(10);
/// What the server logs when it drops a client silent between frames.
const SILENT: &str = "no answer for too long";
/// What it logs when it drops a client that began a frame and did not finish it in time.
const TOO_SLOW: &str = "took more than 10 s to send one message";
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
/// and checks that it was served and the silent connection closed after about the idle timeout,
/// with `why` in the server's log.
fn silent_connection_is_dropped(
    why: &str,
    go_silent: impl FnOnce(std::net::SocketAddr) -> TcpStream,
) {
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
    assert!(log.contains(why), "{log}");
}

#[test]
fn a_client_that_connects_and_says_nothing_is_dropped() {
    silent_connection_is_dropped(SILENT, |addr| TcpStream::connect(addr).unwrap());
}

#[test]
fn a_client_silent_after_the_handshake_is_dropped() {
    silent_connection_is_dropped(SILENT, |addr| {
        let conn = minibox::wire::handshake::connect(&addr.to_string(), "silent", None).unwrap();
        conn.stream().try_clone().unwrap()
    });
}

#[test]
fn a_client_silent_in_the_middle_of_a_frame_is_dropped() {
    // Inside a frame, the frame's own limit is what runs out.
    silent_connection_is_dropped(TOO_SLOW, |addr| {
        let mut stream = TcpStream::connect(addr).unwrap();
        // The version byte and half of the length: the server waits for the rest.
        stream
            .write_all(&[minibox::protocol::frame::VERSION, 0, 0])
            .unwrap();
        stream
    });
}

/// How often the dripping client sends its next byte: well inside the 10 s socket timeout, so
/// that every single read of the server's succeeds.
const DRIP: Duration = Duration::from_secs(2);

/// `frame` (a whole request frame, header included) sent one byte per [`DRIP`] on `stream`,
/// from a thread, while a real client waits its turn. The server must drop the dripping
/// connection once the frame has taken the idle timeout, and then serve the queued client.
fn dripping_client_is_dropped(stream: TcpStream, frame: Vec<u8>, s: &Setup) {
    // Long enough that a server waiting for the whole frame would hold out past the queued
    // client's 20 s wait for its hello.
    assert!(frame.len() as u32 > 3 * 20 / DRIP.as_secs() as u32);
    let done = AtomicBool::new(false);
    let mut reader = stream.try_clone().unwrap();
    let opened = Instant::now();
    std::thread::scope(|scope| {
        let dripper = scope.spawn(|| {
            let mut stream = &stream;
            let mut sent = 0usize;
            // Bounded by the frame's length, and stopped as soon as the test has its answer.
            for byte in &frame {
                if done.load(Ordering::SeqCst) || stream.write_all(&[*byte]).is_err() {
                    break;
                }
                sent += 1;
                std::thread::sleep(DRIP);
            }
            sent
        });

        // However the checks below end, the dripper stops within one DRIP.
        let _stop = StopOnDrop(&done);
        // A real client asks meanwhile; it waits in the accept queue for the server.
        let run = s.json("index regex ^hello\n");
        let answered = opened.elapsed();
        assert_eq!(run.code(), 0, "the queued client was not served: {run:?}");
        assert_eq!(run.json_lines()[0]["files"][0]["path"], "hello.txt");

        // The dripping socket sees its connection closed.
        let rest = read_until_closed(&mut reader, QUEUED_LIMIT);
        let closed = opened.elapsed();
        done.store(true, Ordering::SeqCst);
        let sent = dripper.join().unwrap();
        assert!(rest.len() < 4096, "only a short farewell: {rest:?}");
        // The drip kept every read busy: only the frame's own limit can have ended it.
        assert!(
            sent as u64 >= IDLE.as_secs() / DRIP.as_secs(),
            "the drip sent only {sent} bytes"
        );
        assert!(
            closed >= IDLE - Duration::from_secs(1),
            "dropped after {closed:?}, before the idle timeout"
        );
        eprintln!("queued client answered after {answered:?}; dripping socket closed after {closed:?}, {sent} bytes in");
    });
    let log = std::fs::read_to_string(s.server_box.join(".minibox/log")).unwrap();
    assert!(log.contains(TOO_SLOW), "{log}");
}

/// Sets its flag when dropped, even by a failing assertion.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A `list` request frame with a long regular expression, header included.
fn long_request_frame() -> Vec<u8> {
    let request = Request::List {
        filter: Filter::Regex {
            pattern: "x".repeat(100),
        },
        listing: minibox::protocol::ListKind::Index,
    };
    let mut frame = Vec::new();
    minibox::protocol::frame::write_frame(&mut frame, &request).unwrap();
    frame
}

#[test]
fn a_client_that_drips_a_request_is_dropped_and_the_next_is_served() {
    let s = Setup::new(sample_box);
    let conn = minibox::wire::handshake::connect(&s.server.addr_string(), "drip", None).unwrap();
    let stream = conn.stream().try_clone().unwrap();
    dripping_client_is_dropped(stream, long_request_frame(), &s);
}

#[test]
fn a_client_that_drips_its_hello_is_dropped_and_the_next_is_served() {
    let s = Setup::new(sample_box);
    let stream = TcpStream::connect(s.server.addr).unwrap();
    let mut hello = Vec::new();
    let name = "d".repeat(60);
    minibox::protocol::frame::write_frame(&mut hello, &Request::Hello { name }).unwrap();
    dripping_client_is_dropped(stream, hello, &s);
}
