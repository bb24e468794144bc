//! The stage-1 server serves one client at a time, so a client that connects and then says
//! nothing would block everybody. SPEC.md: "A client silent for 10 s is disconnected." These tests
//! hold a raw socket silent (before the handshake, in the middle of its hello, after it, and in
//! the middle of a request), start a real client meanwhile, and check that the client is
//! answered once the silent one is dropped, and that the silent socket sees the connection closed.
//!
//! A connection that has not said hello gets less time than one that has: an honest client sends
//! its hello as it connects, so the server lets a silent newcomer go after `HELLO_TIME` (3 s),
//! and a real client queued behind three of them is still answered before it gives up (20 s).
//!
//! A socket timeout limits each read, not a whole frame, so a client that *drips* a frame (one
//! byte every couple of seconds) never trips it; the last tests check that such a client is
//! dropped too, once its frame has taken its time, and that the client queued behind it is then
//! served.
//!
//! Each test waits out a timeout or two (3 to 10 s); the tests run in parallel, each with its own
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
/// The time a stage-1 server gives a connection to begin its hello (and as long to finish it).
const HELLO: Duration = minibox::protocol::limits::HELLO_TIME;
/// What the server logs when it drops a connection that did not say hello in time.
const NO_HELLO: &str = "no hello within 3 s";
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

/// How long a silent connection should stay open, and what the server logs when it lets it go.
#[derive(Clone, Copy)]
struct Expect {
    /// The least time it is kept (a little less is allowed: the clocks differ).
    after: Duration,
    /// The log line's reason.
    why: &'static str,
}

/// Said nothing, or not all of its hello: dropped after the hello time, long before the idle one.
const HELLO_DROP: Expect = Expect {
    after: HELLO,
    why: NO_HELLO,
};

/// Silent between requests: dropped after the contract's 10 s.
const IDLE_DROP: Expect = Expect {
    after: IDLE,
    why: SILENT,
};

/// Stuck in the middle of a request: dropped when the frame's own 10 s are up.
const FRAME_DROP: Expect = Expect {
    after: IDLE,
    why: TOO_SLOW,
};

/// Starts a server, lets `go_silent` open a connection and stop talking, then runs a real client
/// and checks that it was served and the silent connection closed as `expect` says.
fn silent_connection_is_dropped(
    expect: Expect,
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
    // It was the expected timeout that ended it, not something sooner.
    assert!(
        closed >= expect.after - Duration::from_secs(1),
        "dropped after {closed:?}, before {:?}",
        expect.after
    );
    eprintln!("queued client answered after {answered:?}; silent socket closed after {closed:?}");
    let log = std::fs::read_to_string(s.server_box.join(".minibox/log")).unwrap();
    assert!(log.contains(expect.why), "{log}");
}

#[test]
fn a_client_that_connects_and_says_nothing_is_dropped() {
    silent_connection_is_dropped(HELLO_DROP, |addr| TcpStream::connect(addr).unwrap());
}

#[test]
fn a_client_silent_in_the_middle_of_its_hello_is_dropped() {
    silent_connection_is_dropped(HELLO_DROP, |addr| {
        let mut stream = TcpStream::connect(addr).unwrap();
        // The version byte and half of the length: the server waits for the rest.
        stream
            .write_all(&[minibox::protocol::frame::VERSION, 0, 0])
            .unwrap();
        stream
    });
}

#[test]
fn a_client_silent_after_the_handshake_is_dropped() {
    // Once it said hello, a client may think for the whole idle timeout.
    silent_connection_is_dropped(IDLE_DROP, |addr| {
        let conn = minibox::wire::handshake::connect(&addr.to_string(), "silent", None).unwrap();
        conn.stream().try_clone().unwrap()
    });
}

#[test]
fn a_client_silent_in_the_middle_of_a_request_is_dropped() {
    // Inside a frame, the frame's own limit is what runs out.
    silent_connection_is_dropped(FRAME_DROP, |addr| {
        let conn = minibox::wire::handshake::connect(&addr.to_string(), "silent", None).unwrap();
        let mut stream = conn.stream().try_clone().unwrap();
        stream
            .write_all(&[minibox::protocol::frame::VERSION, 0, 0])
            .unwrap();
        stream
    });
}

/// How many silent connections the queued client is made to wait behind.
const SILENT_CROWD: usize = 3;

#[test]
fn a_client_queued_behind_three_silent_connections_is_answered() {
    let s = Setup::new(sample_box);
    let opened = Instant::now();
    let mut crowd: Vec<TcpStream> = (0..SILENT_CROWD)
        .map(|_| TcpStream::connect(s.server.addr).unwrap())
        .collect();

    // The real client connects last: it waits for every silent one to be let go.
    let run = s.json("index regex ^hello\n");
    let answered = opened.elapsed();
    assert_eq!(run.code(), 0, "the queued client was not served: {run:?}");
    assert_eq!(run.json_lines()[0]["files"][0]["path"], "hello.txt");
    // It really waited its turn behind all of them (a lower bound, not a speed check).
    let behind = HELLO * SILENT_CROWD as u32;
    assert!(
        answered >= behind - Duration::from_secs(1),
        "answered after {answered:?}: the silent ones were not served first?"
    );
    for silent in &mut crowd {
        let rest = read_until_closed(silent, QUEUED_LIMIT);
        assert!(rest.len() < 4096, "only a short farewell: {rest:?}");
    }
    eprintln!("the client queued behind {SILENT_CROWD} silent connections was answered after {answered:?}");
    let log = std::fs::read_to_string(s.server_box.join(".minibox/log")).unwrap();
    assert_eq!(log.matches(NO_HELLO).count(), SILENT_CROWD, "{log}");
}

/// How often the dripping client sends its next byte: well inside the 10 s socket timeout, so
/// that every single read of the server's succeeds.
const DRIP: Duration = Duration::from_secs(2);

/// `frame` (a whole frame, header included) sent one byte per [`DRIP`] on `stream`, from a
/// thread, while a real client waits its turn. The server must drop the dripping connection once
/// the frame has taken its time (`expect`), and then serve the queued client.
fn dripping_client_is_dropped(stream: TcpStream, frame: Vec<u8>, s: &Setup, expect: Expect) {
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
            sent as u64 >= expect.after.as_secs() / DRIP.as_secs(),
            "the drip sent only {sent} bytes"
        );
        assert!(
            closed >= expect.after - Duration::from_secs(1),
            "dropped after {closed:?}, before {:?}",
            expect.after
        );
        eprintln!("queued client answered after {answered:?}; dripping socket closed after {closed:?}, {sent} bytes in");
    });
    let log = std::fs::read_to_string(s.server_box.join(".minibox/log")).unwrap();
    assert!(log.contains(expect.why), "{log}");
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
    dripping_client_is_dropped(stream, long_request_frame(), &s, FRAME_DROP);
}

#[test]
fn a_client_that_drips_its_hello_is_dropped_and_the_next_is_served() {
    let s = Setup::new(sample_box);
    let stream = TcpStream::connect(s.server.addr).unwrap();
    let mut hello = Vec::new();
    let name = "d".repeat(60);
    minibox::protocol::frame::write_frame(&mut hello, &Request::Hello { name }).unwrap();
    dripping_client_is_dropped(stream, hello, &s, HELLO_DROP);
}
