//! Attacks on a listening minibox binary over real sockets, and the checks run after each one.
//!
//! [`run_all`] starts the binary under test on a fresh [`Arena`] (a box full of traps with a canary
//! folder beside it), then runs every attack in [`ATTACKS`] in turn. After each attack it checks
//! three things: the process is still running; an honest client gets correct answers (listings,
//! a hash, a verified download, compared with the real contents of the box); nothing outside the
//! box was written and nothing was read from the canary (see [`crate::arena`]).
//!
//! A failed attack or check does not stop the run: it is recorded (a process that died is
//! started again for the attacks after it), so the [`Report`] holds real counts (inputs tried
//! per attack, attacks survived, bytes written outside the box measured over the whole run) and
//! [`Report::assert_clean`] fails with all of them, not only the first.
//!
//! Each stage adds its binary in a few lines, because all a [`Target`] needs is a way to start
//! the binary on a box folder:
//!
//! ```no_run
//! use testkit::attack::{run_all, Serving, Target};
//! use testkit::Proc;
//! let bin = "path/to/server";
//! let launch = |dir: &std::path::Path| {
//!     Proc::start(bin, &["--dir", dir.to_str().unwrap(), "--listen", "127.0.0.1:0"])
//! };
//! let report = run_all(&Target::new("server", &launch, Serving::OneAtATime));
//! report.assert_clean();
//! ```
//!
//! Every wait is bounded: an attack that makes the server hang fails the test after at most
//! [`LIMIT`], it does not hang the test. How a stage serves matters for two attacks: a stage-1
//! server ([`Serving::OneAtATime`]) is *meant* to make everybody wait while one silent client holds
//! it (up to the 10 s idle timeout), so those attacks wait for it to give up first; a threaded
//! server ([`Serving::Concurrent`]) must answer an honest client *while* 200 connections and
//! silent or stalled clients are open.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use minibox::local::LocalBox;
use minibox::protocol::frame::{self, MAX_FRAME, VERSION};
use minibox::protocol::{ErrorCode, Filter, ListKind, Reply, Request};
use minibox::wire::conn::Connection;
use minibox::IDLE_TIMEOUT;

use crate::arena::{check_alive_and_correct, Arena, BIG, MARKER};
use crate::{pseudo_random, Proc};

/// The longest any single wait in an attack may take: the server's idle timeout plus a generous
/// margin for a loaded machine. Reaching it means the server hung.
pub const LIMIT: Duration = Duration::from_secs(IDLE_TIMEOUT.as_secs() + 20);

/// How the binary under test serves connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    /// One connection at a time (stage 1): a silent client makes the others wait, up to the idle
    /// timeout.
    OneAtATime,
    /// Each connection on its own thread (stages 2 and 3): nobody waits for anybody.
    Concurrent,
}

/// Opens an honest connection to an address (adds authentication when the target wants it).
pub type Connect<'a> = &'a (dyn Fn(&str) -> minibox::Result<Connection> + Sync);

/// A binary to attack.
pub struct Target<'a> {
    /// For messages: "server", "with_thread", ...
    pub name: &'a str,
    /// Starts the binary serving the given box folder on `127.0.0.1:0` (see [`Proc::start`]).
    pub launch: &'a dyn Fn(&Path) -> Proc,
    /// One at a time or concurrent.
    pub serving: Serving,
    /// How the honest client (and attacks that need a handshake first) connect.
    pub connect: Connect<'a>,
}

/// The honest client's plain connection.
pub fn plain_connect(addr: &str) -> minibox::Result<Connection> {
    minibox::wire::handshake::connect(addr, "checker", None)
}

impl<'a> Target<'a> {
    /// A target reached without authentication.
    pub fn new(name: &'a str, launch: &'a dyn Fn(&Path) -> Proc, serving: Serving) -> Self {
        Target {
            name,
            launch,
            serving,
            connect: &plain_connect,
        }
    }
}

/// How one attack went.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The attack's name.
    pub name: &'static str,
    /// Inputs it tried (0 if it failed before saying).
    pub inputs: u64,
    /// The fewest inputs it must try to count as done (see [`ATTACKS`]).
    pub floor: u64,
    /// Seconds it took, checks included.
    pub secs: f64,
    /// What went wrong: the attack's own assertion, a dead process, a wrong honest answer, or
    /// bytes changed outside the box. `None` if it was survived.
    pub failure: Option<String>,
}

/// What [`run_all`] did.
#[derive(Debug, Default)]
pub struct Report {
    /// The binary attacked, for messages.
    pub target: String,
    /// One entry per attack, in order.
    pub attacks: Vec<Outcome>,
    /// Inputs tried in all (connections, frames, requests, datagrams).
    pub inputs: u64,
    /// Attacks after which the process was alive, correct and the canary untouched.
    pub survived: u32,
    /// Bytes by which the arena outside the boxes differs, at the end, from how it was before
    /// the first attack (the canary tree compared whole; must be 0).
    pub bytes_outside: u64,
}

impl Report {
    /// Attacks that were not survived, with why.
    pub fn failures(&self) -> Vec<String> {
        self.attacks
            .iter()
            .filter_map(|a| a.failure.as_ref().map(|f| format!("{}: {f}", a.name)))
            .collect()
    }

    /// Asserts that every attack ran and was survived, each tried at least its floor of inputs,
    /// and not a byte outside the box changed.
    ///
    /// # Panics
    /// Listing everything that was wrong.
    pub fn assert_clean(&self) {
        let mut wrong = self.failures();
        if self.attacks.len() != ATTACKS.len() {
            wrong.push(format!(
                "{} attacks ran, not {}",
                self.attacks.len(),
                ATTACKS.len()
            ));
        }
        for a in self.attacks.iter().filter(|a| a.inputs < a.floor) {
            wrong.push(format!(
                "{}: only {} inputs tried (at least {} expected)",
                a.name, a.inputs, a.floor
            ));
        }
        if self.survived as usize != self.attacks.len() {
            wrong.push(format!(
                "{} of {} attacks survived",
                self.survived,
                self.attacks.len()
            ));
        }
        if self.bytes_outside != 0 {
            wrong.push(format!(
                "{} bytes written outside the box",
                self.bytes_outside
            ));
        }
        assert!(
            wrong.is_empty(),
            "{}: the hostile-input suite failed:\n  {}",
            self.target,
            wrong.join("\n  ")
        );
    }
}

/// What an attack sees: where to strike, and the arena.
pub struct Ctx<'a> {
    /// The target's TCP (and UDP) address.
    pub addr: SocketAddr,
    /// The box and its canary.
    pub arena: &'a Arena,
    /// How the target serves.
    pub serving: Serving,
    /// Honest connections.
    pub connect: Connect<'a>,
}

/// One attack: strikes, returns how many inputs it tried. It panics itself if the target answers
/// wrongly to the attack; the checks after it are [`run_all`]'s job.
pub type Attack = fn(&Ctx<'_>) -> u64;

/// Every attack, in the order [`run_all`] runs them, with the fewest inputs it must try: an
/// attack that quietly did less than it was written to do does not count as survived.
pub const ATTACKS: &[(&str, Attack, u64)] = &[
    ("random bytes", random_bytes, 240),
    ("truncated frames", truncated_frames, 60),
    ("huge length prefixes", huge_lengths, 9),
    ("unknown protocol versions", unknown_versions, 16),
    ("valid frames of the wrong type", wrong_types, 50),
    ("names that leave the box", bad_names, 90),
    (
        "hostile peer names and log injection",
        hostile_peer_names,
        15,
    ),
    (
        "symlinks out of the box, FIFO, socket, unreadable files",
        traps,
        18,
    ),
    (
        "hostile regular expressions and ranges",
        hostile_filters,
        20,
    ),
    ("clients that vanish mid-transfer", vanishing_clients, 7),
    ("clients that connect and say nothing", silent_clients, 1),
    ("a client that stops reading", stalled_reader, 9),
    ("200 connections at once, then 20 real clients", flood, 220),
    (
        "UDP datagrams with wrong tokens, from other addresses",
        udp_junk,
        400,
    ),
    (
        "UDP datagrams with the right token from another IP address",
        udp_right_token_other_ip,
        20,
    ),
];

/// Starts the target on a fresh arena and runs every attack, checking after each one. Prints a
/// table of what was tried to stderr and returns the counts; see [`Report::assert_clean`].
///
/// # Panics
/// Only if the target cannot be started, or fails the honest checks before any attack.
pub fn run_all(target: &Target<'_>) -> Report {
    run_some(target, ATTACKS)
}

/// The message of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Runs `f`, turning a panic (a failed assertion) into its message.
fn caught<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| panic_text(&*p))
}

/// [`run_all`] for a chosen list of attacks.
///
/// # Panics
/// As [`run_all`].
pub fn run_some(target: &Target<'_>, attacks: &[(&'static str, Attack, u64)]) -> Report {
    let arena = Arena::new();
    let mut proc = (target.launch)(&arena.boxdir);
    // First the honest answers with no attack at all: the checks themselves must pass.
    check_alive_and_correct(proc.addr, &arena, target.connect);
    let mut report = Report {
        target: target.name.to_string(),
        ..Report::default()
    };
    for &(name, attack, floor) in attacks {
        let outcome = run_one(target, &arena, &mut proc, (name, attack, floor));
        if outcome.failure.is_none() {
            report.survived += 1;
        }
        report.inputs += outcome.inputs;
        report.attacks.push(outcome);
    }
    report.bytes_outside = arena.bytes_outside().0;
    print_report(target.name, &report);
    report
}

/// Runs one attack and the checks after it: the process still alive, honest answers still
/// right, nothing changed outside the box. A dead process is replaced for the next attack.
fn run_one(
    target: &Target<'_>,
    arena: &Arena,
    proc: &mut Proc,
    (name, attack, floor): (&'static str, Attack, u64),
) -> Outcome {
    eprintln!("[hostile] {}: {name}", target.name);
    let started = Instant::now();
    let cx = Ctx {
        addr: proc.addr,
        arena,
        serving: target.serving,
        connect: target.connect,
    };
    let (inputs, mut failure) = match caught(|| attack(&cx)) {
        Ok(n) => (n, None),
        Err(why) => (0, Some(why)),
    };
    if !proc.alive() {
        let why = format!("the process died; stderr:\n{}", proc.stderr_text());
        failure.get_or_insert(why);
        // The next attacks need a target: the same box, a new process.
        *proc = (target.launch)(&arena.boxdir);
    } else if let Err(why) = caught(|| check_alive_and_correct(cx.addr, arena, cx.connect)) {
        failure.get_or_insert(format!("afterwards, honest answers were wrong: {why}"));
    }
    if let Some(why) = arena.changes() {
        failure.get_or_insert(why);
    }
    Outcome {
        name,
        inputs,
        floor,
        secs: started.elapsed().as_secs_f64(),
        failure,
    }
}

/// Prints the table of what was tried, and the totals, to stderr.
fn print_report(target: &str, report: &Report) {
    eprintln!("[hostile] {target}: {:>8} {:>7}  attack", "inputs", "secs");
    for a in &report.attacks {
        let verdict = if a.failure.is_some() { "FAILED" } else { "ok" };
        eprintln!(
            "[hostile] {target}: {:>8} {:>7.1}  {} ({verdict})",
            a.inputs, a.secs, a.name
        );
    }
    eprintln!(
        "[hostile] {target}: {} inputs tried, {} of {} attacks survived, {} bytes written outside the box",
        report.inputs,
        report.survived,
        report.attacks.len(),
        report.bytes_outside
    );
}

// ---------------------------------------------------------------------------------------------
// Raw bytes on a socket.

/// One frame with any version byte and any body.
pub fn raw_frame(version: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![version];
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The frame of a request, as an honest client would send it.
pub fn request_frame(request: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    frame::write_frame(&mut out, request).expect("a request encodes");
    out
}

/// The opening hello of a client named `name`, as raw bytes.
pub fn hello_frame(name: &str) -> Vec<u8> {
    raw_frame(
        VERSION,
        serde_json::json!({"op": "hello", "name": name})
            .to_string()
            .as_bytes(),
    )
}

/// What came back on a raw connection.
#[derive(Debug)]
pub struct Exchange {
    /// Every byte the server sent.
    pub bytes: Vec<u8>,
    /// Whether the server closed the connection (EOF or reset) before the limit.
    pub closed: bool,
}

impl Exchange {
    /// The frames in what came back (stops at the first byte that is not a frame).
    pub fn replies(&self) -> Vec<Reply> {
        let mut r = self.bytes.as_slice();
        let mut out = Vec::new();
        while let Ok(Some(reply)) = frame::read_frame::<_, Reply>(&mut r) {
            out.push(reply);
        }
        out
    }

    /// Asserts the server closed and sent nothing but a handshake opening and error replies; returns the error
    /// messages.
    ///
    /// # Panics
    /// If it did not.
    pub fn refused(&self, what: &str) -> Vec<String> {
        assert!(self.closed, "{what}: the server kept the connection open");
        let mut errors = Vec::new();
        for reply in self.replies() {
            match reply {
                // The handshake's opening (a box with a secret challenges first).
                Reply::Hello { .. } | Reply::Challenge { .. } => {}
                Reply::Error { message, .. } => errors.push(message),
                other => panic!("{what}: the server answered {other:?}"),
            }
        }
        errors
    }
}

/// Opens a connection, or a connection already past the handshake (`greet`), and returns the raw
/// socket.
fn open(cx: &Ctx<'_>, greet: bool) -> TcpStream {
    if greet {
        let conn = (cx.connect)(&cx.addr.to_string())
            .unwrap_or_else(|e| panic!("cannot open a connection to attack: {e}"));
        conn.stream().try_clone().expect("clone the socket")
    } else {
        TcpStream::connect_timeout(&cx.addr, LIMIT)
            .unwrap_or_else(|e| panic!("cannot connect to attack: {e}"))
    }
}

/// Sends `bytes` (after a handshake if `greet`), closes our sending side if `close_write`, and
/// reads everything the server sends until it closes or [`LIMIT`] passes. Whatever comes back is
/// searched for the canary marker.
pub fn exchange(cx: &Ctx<'_>, greet: bool, bytes: &[u8], close_write: bool) -> Exchange {
    let mut stream = open(cx, greet);
    // The server may close before reading everything (a bad header is enough): not an error.
    let _ = stream.write_all(bytes);
    if close_write {
        let _ = stream.shutdown(Shutdown::Write);
    }
    read_to_close(&mut stream, LIMIT)
}

/// Reads until the peer closes or `limit` passes.
fn read_to_close(stream: &mut TcpStream, limit: Duration) -> Exchange {
    let deadline = Instant::now() + limit;
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut bytes = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let closed = loop {
        if Instant::now() >= deadline {
            break false;
        }
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break true, // reset: closed too
        }
    };
    assert_no_marker(&bytes, "a raw reply");
    Exchange { bytes, closed }
}

/// Panics if `bytes` contain the canary marker: the server read outside its box.
pub fn assert_no_marker(bytes: &[u8], what: &str) {
    assert!(
        !bytes.windows(MARKER.len()).any(|w| w == MARKER),
        "{what} carried the canary's contents: the server read outside its box"
    );
}

/// Sends one request on an honest connection and reads one reply (a file header's raw bytes are
/// not read: callers only send requests that must fail).
fn ask(conn: &mut Connection, request: &Request) -> Reply {
    conn.send(request)
        .unwrap_or_else(|e| panic!("sending {request:?}: {e}"));
    let reply: Reply = conn
        .recv()
        .unwrap_or_else(|e| panic!("no reply to {request:?}: {e}"));
    assert_no_marker(
        serde_json::to_string(&reply).unwrap_or_default().as_bytes(),
        "a reply",
    );
    reply
}

/// Asserts that a connection that just had errors answers an honest request.
fn assert_still_answers(conn: &mut Connection) {
    let reply = ask(
        conn,
        &Request::Hash {
            path: "hello.txt".into(),
        },
    );
    assert!(
        matches!(reply, Reply::Entry { .. }),
        "the connection stopped answering: {reply:?}"
    );
}

/// The error code of a reply that must be an error.
fn error_code(reply: Reply, what: &str) -> ErrorCode {
    match reply {
        Reply::Error { code, .. } => code,
        other => panic!("{what}: expected an error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The attacks.

/// Random bytes, some shaped like a frame header (right version, small length), some after a
/// valid handshake. The server must answer with at most an error, and close.
pub fn random_bytes(cx: &Ctx<'_>) -> u64 {
    let mut tried = 0;
    for i in 0..240u64 {
        let len = 1 + usize::try_from((i * 7919) % 3000).unwrap_or(1);
        let mut bytes = pseudo_random(len, 0xA77A_C000 + i);
        if i.is_multiple_of(2) {
            bytes[0] = VERSION;
        }
        if i.is_multiple_of(4) && len > 5 {
            // A plausible header: the body is exactly the random rest (a JSON error follows).
            let body_len = u32::try_from(len - 5).unwrap_or(0);
            bytes[1..5].copy_from_slice(&body_len.to_be_bytes());
        }
        let greet = i.is_multiple_of(3);
        exchange(cx, greet, &bytes, true).refused(&format!("random input #{i}"));
        tried += 1;
    }
    tried
}

/// A hello cut at every byte, and a request cut at every byte after a valid hello; the sender
/// then closes its side. The server must see the truncation and close, not wait.
pub fn truncated_frames(cx: &Ctx<'_>) -> u64 {
    let mut tried = 0;
    let hello = hello_frame("cutter");
    for cut in 1..hello.len() {
        exchange(cx, false, &hello[..cut], true).refused(&format!("hello cut at {cut}"));
        tried += 1;
    }
    let list = request_frame(&Request::List {
        filter: Filter::Regex {
            pattern: r"\.txt$".into(),
        },
        listing: ListKind::Hashes,
    });
    for cut in 1..list.len() {
        exchange(cx, true, &list[..cut], true).refused(&format!("request cut at {cut}"));
        tried += 1;
    }
    tried
}

/// Length prefixes far past the limit (up to what 2^64 - 1 looks like on the wire), sent without
/// a body and without closing: the server must refuse from the header alone, allocate nothing
/// and close. Then a body of exactly the maximum size that is not JSON.
pub fn huge_lengths(cx: &Ctx<'_>) -> u64 {
    let mut tried = 0;
    let mut headers: Vec<Vec<u8>> = [MAX_FRAME + 1, 1 << 31, u32::MAX]
        .iter()
        .map(|n| {
            let mut h = vec![VERSION];
            h.extend_from_slice(&n.to_be_bytes());
            h
        })
        .collect();
    // 2^64 - 1 as an 8-byte big-endian length, as a peer with a 64-bit header would send it.
    let mut h = vec![VERSION];
    h.extend_from_slice(&u64::MAX.to_be_bytes());
    headers.push(h);
    for greet in [false, true] {
        for header in &headers {
            let ex = exchange(cx, greet, header, false);
            let errors = ex.refused("a huge length prefix");
            assert!(
                errors.iter().any(|m| m.contains("larger than the limit")),
                "a huge length prefix was not refused clearly: {errors:?}"
            );
            tried += 1;
        }
    }
    // A body of exactly MAX_FRAME bytes of garbage: read, refused as malformed, closed.
    let body = vec![b'x'; MAX_FRAME as usize];
    let ex = exchange(cx, true, &raw_frame(VERSION, &body), false);
    assert!(!ex.refused("a maximal garbage frame").is_empty());
    tried += 1;
    tried
}

/// A valid hello body behind every version byte but ours: refused with a sentence naming the
/// version, without waiting for more.
pub fn unknown_versions(cx: &Ctx<'_>) -> u64 {
    let mut tried = 0;
    let body = serde_json::json!({"op": "hello", "name": "future"}).to_string();
    for version in [0u8, 1, 3, 0x7f, 0x80, 0xff, b'{', b'G'] {
        for greet in [false, true] {
            let ex = exchange(cx, greet, &raw_frame(version, body.as_bytes()), false);
            let errors = ex.refused(&format!("version {version}"));
            assert!(
                errors.iter().any(|m| m.contains("protocol version")),
                "version {version} was not refused clearly: {errors:?}"
            );
            tried += 1;
        }
    }
    tried
}

/// Well-formed frames whose JSON is not what the server expects at that point: other types,
/// missing or extra fields, a reply sent as a request, a request before the handshake, invalid
/// UTF-8, absurd numbers, 100 000 nested brackets.
pub fn wrong_types(cx: &Ctx<'_>) -> u64 {
    let mut tried = 0;
    let mut bodies: Vec<Vec<u8>> = [
        "",
        "   ",
        "{}",
        "[]",
        "null",
        "42",
        "\"hello\"",
        r#"{"op":"hello"}"#,
        r#"{"op":"hello","name":42}"#,
        r#"{"op":"hello","name":null}"#,
        r#"{"op":"hello","name":"x","extra":1}"#,
        r#"{"op":"hello","name":"x"} trailing"#,
        r#"{"reply":"hello","name":"x"}"#,
        r#"{"op":"format_disk"}"#,
        r#"{"op":"list"}"#,
        r#"{"op":"list","filter":{"kind":"modified","start_ns":"x","end_ns":1}}"#,
        r#"{"op":"list","filter":{"kind":"modified","start_ns":1e400,"end_ns":1}}"#,
        r#"{"op":"list","filter":{"kind":"modified","start_ns":99999999999999999999999,"end_ns":1}}"#,
        r#"{"op":"list","filter":{"kind":"nope"}}"#,
        r#"{"op":"download","path":["hello.txt"]}"#,
        r#"{"op":"hash","path":"a","path":"b"}"#,
        r#"{"op":"hash","path":"\ud800"}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    bodies.push(b"{\"op\":\"hash\",\"path\":\"\xff\xfe\"}".to_vec());
    bodies.push(b"\xef\xbb\xbf{\"op\":\"hello\",\"name\":\"bom\"}".to_vec());
    bodies.push(vec![b'['; 100_000]);
    bodies.push("{\"op\":\"list\",\"filter\":".repeat(20_000).into_bytes());
    for body in &bodies {
        for greet in [false, true] {
            let ex = exchange(cx, greet, &raw_frame(VERSION, body), false);
            let errors = ex.refused("a frame of the wrong type");
            assert!(!errors.is_empty(), "a wrong frame got no error reply");
            tried += 1;
        }
    }
    // A valid request before the handshake: refused, nothing served.
    for request in [
        Request::Download {
            path: "hello.txt".into(),
        },
        Request::SyncList { known: Vec::new() },
    ] {
        let ex = exchange(cx, false, &request_frame(&request), false);
        assert!(!ex.refused("a request before hello").is_empty());
        tried += 1;
    }
    // A second hello is an error reply, and the connection stays usable.
    let mut conn = (cx.connect)(&cx.addr.to_string()).expect("connect");
    let again = ask(
        &mut conn,
        &serde_json::from_value(serde_json::json!({"op": "hello", "name": "again"}))
            .expect("a hello request"),
    );
    assert_eq!(error_code(again, "a second hello"), ErrorCode::BadRequest);
    assert_still_answers(&mut conn);
    tried + 2
}

/// Every way a name can try to leave the box, asked as hash, TCP download and UDP download on one
/// connection. Each gets an error reply and the connection stays usable.
pub fn bad_names(cx: &Ctx<'_>) -> u64 {
    let canary = cx.arena.canary.join("secret.txt");
    let canary_abs = canary.to_string_lossy().into_owned();
    // (name, must be refused by the path gate itself)
    let mut names: Vec<(String, bool)> = [
        "..",
        "../x",
        "../canary/secret.txt",
        "../../../../../../etc/passwd",
        "a/../../canary/secret.txt",
        "docs/../hello.txt",
        "docs/../../canary/secret.txt",
        "/etc/passwd",
        "/",
        "",
        ".",
        "./hello.txt",
        "hello.txt/",
        "docs//readme.md",
        "nul\0byte",
        "hello.txt\0.jpg",
        "back\\slash.txt",
        "..\\canary\\secret.txt",
        "C:\\Windows\\win.ini",
        ".minibox",
        ".minibox/log",
        ".minibox/stat-cache",
        ".minibox/../hello.txt",
        "docs/./readme.md",
    ]
    .iter()
    .map(|n| (n.to_string(), true))
    .collect();
    names.push((canary_abs, true));
    names.push((format!("{}/", cx.arena.boxdir.display()), true));
    // Clean but absurd: a 300-byte part, a 10 000-part path, a right-to-left override.
    names.push(("a".repeat(300), false));
    names.push(("d/".repeat(10_000) + "x", false));
    names.push(("\u{202e}txt.exe".into(), false));
    names.push(("missing.txt".into(), false));

    let mut conn = (cx.connect)(&cx.addr.to_string()).expect("connect");
    let mut tried = 0;
    for (name, gate) in &names {
        let shown = name.escape_debug().to_string();
        for request in [
            Request::Hash { path: name.clone() },
            Request::Download { path: name.clone() },
            Request::DownloadUdp { path: name.clone() },
        ] {
            let udp = matches!(request, Request::DownloadUdp { .. });
            let code = error_code(ask(&mut conn, &request), &format!("{request:?}"));
            if *gate {
                // A stage without UDP may say so before it looks at the name.
                let fine = code == ErrorCode::BadPath || (udp && code == ErrorCode::Unsupported);
                assert!(fine, "\"{shown}\" was not refused as a bad path: {code:?}");
            }
            tried += 1;
        }
    }
    // Still the same connection, still answering.
    assert_still_answers(&mut conn);
    tried
}

/// Peers that call themselves something hostile (a megabyte of name, control characters, a path)
/// and ask for names built to forge lines in the box's activity log. The log must keep one line
/// per event, none of them forged, and must not grow by megabytes.
pub fn hostile_peer_names(cx: &Ctx<'_>) -> u64 {
    let log = cx.arena.boxdir.join(minibox::META_DIR).join("log");
    let size_before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let forged = "\n2000-01-01T00:00:00+00:00\tFORGED\tdownload tcp \"x\"\tok\n";
    let names = [
        "x".repeat(1 << 20),
        format!("liar{forged}"),
        "../../../etc/passwd".into(),
        "nul\0name\ttab\rreturn".into(),
        String::new(),
    ];
    let mut tried = 0;
    for name in &names {
        let mut s = open(cx, false);
        // A box that wants a secret may refuse and close right after the hello, so the later
        // writes (and the shutdown) can find the connection gone: that is a refusal, not a bug.
        s.write_all(&hello_frame(name)).expect("send hello");
        for path in [format!("/abs{forged}"), format!("missing{forged}")] {
            let _ = s.write_all(&request_frame(&Request::Hash { path }));
        }
        let _ = s.shutdown(Shutdown::Write);
        let ex = read_to_close(&mut s, LIMIT);
        assert!(ex.closed, "a hostile name kept the connection open");
        let replies = ex.replies();
        // A server that wants authentication refuses at the hello; otherwise two error replies.
        assert!(
            replies.iter().all(|r| matches!(
                r,
                Reply::Hello { .. } | Reply::Challenge { .. } | Reply::Error { .. }
            )),
            "{replies:?}"
        );
        tried += 3;
    }
    let text = std::fs::read(&log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    assert!(
        !text
            .lines()
            .any(|l| l.contains("\tFORGED\t") || l.starts_with("2000-01-01")),
        "a peer forged a line of the activity log"
    );
    let grown = text.len() as u64 - size_before.min(text.len() as u64);
    assert!(
        grown < 64 * 1024,
        "a peer grew the activity log by {grown} bytes"
    );
    tried
}

/// The traps inside the box: links out of it (file, folder, dangling), a FIFO, a socket file; and
/// the mode-000 file. Links are refused as bad paths, special files as not found, at once (a
/// FIFO must not block the server); listings never show them.
pub fn traps(cx: &Ctx<'_>) -> u64 {
    let ex = &cx.arena.expected;
    let mut conn = (cx.connect)(&cx.addr.to_string()).expect("connect");
    let mut tried = 0;
    for (names, want) in [
        (&ex.links, ErrorCode::BadPath),
        (&ex.specials, ErrorCode::NotFound),
    ] {
        for name in names {
            for request in [
                Request::Hash { path: name.clone() },
                Request::Download { path: name.clone() },
            ] {
                let code = error_code(ask(&mut conn, &request), &format!("{request:?}"));
                assert_eq!(code, want, "{request:?}");
                tried += 1;
            }
        }
    }
    // Everything, folders included, with MD5s: the sync listing, filtered here.
    let traps =
        minibox::local::filter::compile("secret|canary|link|up$|dangling|pipe|sock|utf8|slash")
            .expect("a pattern");
    let mut found = Vec::new();
    minibox::ask::sync_list::sync_list(&mut conn, Vec::new(), &mut |e| {
        if traps.is_match(&e.path) {
            found.push(e.path);
        }
    })
    .expect("a listing");
    assert!(found.is_empty(), "traps were listed: {found:?}");
    tried += 1;
    // The mode-000 file: served as usual to a root server, an I/O error otherwise.
    let local = LocalBox::open(&cx.arena.client, "checker").expect("client box");
    let got = minibox::ask::download::download_tcp(&mut conn, &local, "locked.txt", &mut |_, _| {});
    if ex.files.contains_key("locked.txt") {
        got.expect("a root server reads a mode-000 file");
        let path = cx.arena.client.join("locked.txt");
        assert_eq!(std::fs::read(&path).expect("downloaded"), b"locked");
        std::fs::remove_file(path).expect("remove");
    } else {
        let err = got.expect_err("an unreadable file cannot be served");
        assert!(
            matches!(
                err,
                minibox::Error::Remote {
                    code: ErrorCode::Io,
                    ..
                }
            ),
            "{err}"
        );
    }
    tried + 1
}

/// Regular expressions built to be slow or huge, invalid ones, and absurd time ranges. Each gets
/// a listing or a clear error; none may stall the server.
pub fn hostile_filters(cx: &Ctx<'_>) -> u64 {
    let patterns = [
        "(".to_string(),
        "[".into(),
        "\\".into(),
        "a**".into(),
        "(?<name".into(),
        "[[:alpha:]".into(),
        "a{1000000}".into(),
        "(a{1000}){1000}".into(),
        "((((a*)*)*)*)*b".into(),
        "(?:a|b|c|d|e){0,1000}".into(),
        r"\p{L}{1000}{1000}".into(),
        ".*".repeat(10_000),
        "x|".repeat(20_000) + "x",
        format!("(?i){}", "ß".repeat(10_000)),
        "^$".into(),
        r"\bhello\b".into(),
    ];
    let mut conn = (cx.connect)(&cx.addr.to_string()).expect("connect");
    let mut tried = 0;
    let mut filters: Vec<Filter> = patterns
        .into_iter()
        .map(|pattern| Filter::Regex { pattern })
        .collect();
    for (start_ns, end_ns) in [(i64::MIN, i64::MAX), (5, -5), (0, 0), (i64::MAX, i64::MAX)] {
        filters.push(Filter::Modified { start_ns, end_ns });
    }
    for filter in filters {
        let what = format!("{:.60?}", filter);
        match minibox::ask::list::list(&mut conn, filter, ListKind::Index) {
            Ok(_) => {}
            Err(minibox::Error::Remote { code, .. }) => {
                assert_eq!(code, ErrorCode::BadRequest, "{what}");
            }
            Err(e) => panic!("{what}: {e}"),
        }
        tried += 1;
    }
    tried
}

/// Clients that hang up at the worst moments: during the handshake, before reading a listing, and
/// (five times) in the middle of a 4 MiB download.
pub fn vanishing_clients(cx: &Ctx<'_>) -> u64 {
    let mut tried = 0;
    // Hello sent, gone before the answer.
    drop({
        let mut s = open(cx, false);
        let _ = s.write_all(&hello_frame("ghost"));
        s
    });
    tried += 1;
    // Listing asked, gone before reading it.
    drop({
        let mut s = open(cx, true);
        let _ = s.write_all(&request_frame(&Request::SyncList { known: Vec::new() }));
        s
    });
    tried += 1;
    // Mid-download: read the header and a little data, then close with data unread (a reset).
    for _ in 0..5 {
        let mut s = open(cx, true);
        s.write_all(&request_frame(&Request::Download {
            path: "big.bin".into(),
        }))
        .expect("send");
        s.set_read_timeout(Some(LIMIT)).expect("timeout");
        let mut got = vec![0u8; 64 * 1024];
        s.read_exact(&mut got).expect("the download starts");
        assert_no_marker(&got, "a download");
        drop(s);
        tried += 1;
    }
    tried
}

/// Clients that connect and send nothing, or half a header. A one-at-a-time server must drop such
/// a client after its idle timeout (one of them, or the test would take minutes); a concurrent
/// server must answer an honest client while ten of each are connected, and drop them all.
pub fn silent_clients(cx: &Ctx<'_>) -> u64 {
    let (silent, half) = match cx.serving {
        Serving::OneAtATime => (1, 0),
        Serving::Concurrent => (10, 10),
    };
    let mut streams = Vec::new();
    for _ in 0..silent {
        streams.push(open(cx, false));
    }
    for _ in 0..half {
        let mut s = open(cx, false);
        s.write_all(&[VERSION, 0, 0]).expect("send");
        streams.push(s);
    }
    if cx.serving == Serving::Concurrent {
        check_alive_and_correct(cx.addr, cx.arena, cx.connect);
    }
    let started = Instant::now();
    for s in &mut streams {
        let left = LIMIT.saturating_sub(started.elapsed());
        let ex = read_to_close(s, left);
        assert!(
            ex.closed,
            "a silent client was not disconnected within {LIMIT:?}"
        );
    }
    (silent + half) as u64
}

/// A client that asks for eight 4 MiB downloads at once and reads nothing, so the server's
/// writes block. The server must give up on it after its idle timeout (a one-at-a-time server
/// serves the next client then) and, if concurrent, answer others meanwhile.
pub fn stalled_reader(cx: &Ctx<'_>) -> u64 {
    let mut s = open(cx, true);
    for _ in 0..8 {
        let _ = s.write_all(&request_frame(&Request::Download {
            path: "big.bin".into(),
        }));
    }
    if cx.serving == Serving::Concurrent {
        check_alive_and_correct(cx.addr, cx.arena, cx.connect);
    }
    // The next client's hello is answered once the server gave up on the stalled one (at once,
    // for a concurrent server). Sent raw, with a long wait, so that the honest check after this
    // attack does not depend on how long the server needed. Any answer will do (a box that
    // wants authentication answers a bare hello with an error): it proves the server moved on.
    let mut next = TcpStream::connect_timeout(&cx.addr, LIMIT).expect("connect");
    next.set_read_timeout(Some(LIMIT)).expect("timeout");
    next.write_all(&hello_frame("next")).expect("send");
    let answer = frame::read_frame::<_, Reply>(&mut next);
    assert!(
        matches!(answer, Ok(Some(_))),
        "the server stayed stuck on a client that stopped reading: {answer:?}"
    );
    drop(s);
    9
}

/// 200 connections opened at once (each sends a hello and, for a one-at-a-time server, closes its
/// side so the server can get through them), then 20 honest clients in parallel, each checking
/// every answer. A concurrent server keeps the 200 open while the 20 run.
pub fn flood(cx: &Ctx<'_>) -> u64 {
    const CROWD: usize = 200;
    const HONEST: usize = 20;
    let hello = hello_frame("crowd");
    let mut crowd = Vec::with_capacity(CROWD);
    for _ in 0..CROWD {
        let mut s = TcpStream::connect_timeout(&cx.addr, LIMIT).expect("connect");
        let _ = s.write_all(&hello);
        if cx.serving == Serving::OneAtATime {
            let _ = s.shutdown(Shutdown::Write);
        }
        crowd.push(s);
    }
    let failures: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = (0..HONEST)
            .map(|_| {
                scope.spawn(|| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        honest_round(cx);
                    }))
                    .err()
                    .map(|p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "honest clients failed during a flood: {failures:?}"
    );
    drop(crowd);
    (CROWD + HONEST) as u64
}

/// What each of the flood's honest clients does: a hash listing compared with the truth, and the
/// hash of one file. (Downloads are left to the full check, which is not made for 20 at once.)
fn honest_round(cx: &Ctx<'_>) {
    // A one-at-a-time server makes the 20 wait in line, as it should. On a loaded machine the
    // last in line may give up waiting for the hello after its own 10 s. That is the client's
    // timeout, not a fault of the server, so it may queue again (twice at most). A concurrent
    // server gets no second chance.
    let attempts = match cx.serving {
        Serving::OneAtATime => 3,
        Serving::Concurrent => 1,
    };
    let mut conn = None;
    for attempt in 1..=attempts {
        match (cx.connect)(&cx.addr.to_string()) {
            Ok(c) => {
                conn = Some(c);
                break;
            }
            Err(e @ minibox::Error::Timeout(_)) if attempt < attempts => {
                eprintln!("[hostile] an honest client waited in line too long ({e}); again");
            }
            Err(e) => panic!("connect during a flood: {e}"),
        }
    }
    let mut conn = conn.expect("connected or panicked above");
    let listed =
        minibox::ask::list::list(&mut conn, Filter::All, ListKind::Hashes).expect("listing");
    assert_eq!(listed.len(), cx.arena.expected.files.len());
    for e in listed {
        let want = &cx.arena.expected.files[&e.path];
        assert_eq!(e.md5, Some(crate::md5_of(want)), "{}", e.path);
    }
    let entry = minibox::ask::hash::hash(&mut conn, "big.bin").expect("hash");
    assert_eq!(entry.size, BIG as u64);
}

/// Junk datagrams at the box's UDP port (same number as TCP) from several sockets: empty, tiny,
/// maximal, random, and shaped like a token followed by data. Then a UDP download while more junk
/// arrives from other addresses: it must verify, or (while a stage has no UDP) be refused
/// clearly; stale junk queued in the socket must not confuse it.
pub fn udp_junk(cx: &Ctx<'_>) -> u64 {
    let sockets: Vec<UdpSocket> = (0..5)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind UDP"))
        .collect();
    let sizes = [
        0usize, 1, 7, 8, 9, 12, 16, 17, 64, 512, 1200, 1472, 8192, 65_507,
    ];
    let mut tried = 0u64;
    for i in 0..400u64 {
        let size = sizes[usize::try_from(i).unwrap_or(0) % sizes.len()];
        let datagram = pseudo_random(size, 0x0D0D_0000 + i);
        let socket = &sockets[usize::try_from(i).unwrap_or(0) % sockets.len()];
        // A datagram may be dropped by the kernel: that is what UDP does, not a failure.
        let _ = socket.send_to(&datagram, cx.addr);
        tried += 1;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sprayer = {
        let stop = Arc::clone(&stop);
        let addr = cx.addr;
        thread::spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) && sent < 5_000 {
                let _ = socket.send_to(&pseudo_random(1 + (sent as usize % 1400), sent), addr);
                sent += 1;
                thread::sleep(Duration::from_millis(1));
            }
            sent
        })
    };
    let local = LocalBox::open(&cx.arena.client, "checker").expect("client box");
    let mut conn = (cx.connect)(&cx.addr.to_string()).expect("connect");
    let got = minibox::ask::download_udp::download(
        &mut conn,
        &local,
        "deep/a/b/c/file.bin",
        &mut |_, _| {},
    );
    stop.store(true, Ordering::Relaxed);
    tried += sprayer.join().unwrap_or(0);
    match got {
        Ok(entry) => {
            let path = cx.arena.client.join(&entry.path);
            assert_eq!(
                std::fs::read(&path).expect("downloaded"),
                cx.arena.expected.files["deep/a/b/c/file.bin"]
            );
            std::fs::remove_file(path).expect("remove");
        }
        Err(minibox::Error::Remote {
            code: ErrorCode::Unsupported,
            ..
        }) => {}
        Err(e) => panic!("a UDP download under junk failed: {e}"),
    }
    tried
}

/// The other loopback address the next attack sends from: Linux puts all of 127.0.0.0/8 on the
/// loopback interface, so a socket can be bound there without any setup.
pub const OTHER_LOOPBACK_IP: &str = "127.0.0.2";

/// A UDP download asked for honestly over TCP (from 127.0.0.1), then acks that carry its very
/// token sent from another IP address ([`OTHER_LOOPBACK_IP`]): the server must not send that
/// address a single datagram, neither before the real client speaks nor after. (Datagrams are
/// bound to the IP of the TCP connection that asked for the transfer.) Then, as a control, the
/// same ack from the client's own IP gets blocks at once: the transfer was alive all along, only
/// the other address was ignored.
pub fn udp_right_token_other_ip(cx: &Ctx<'_>) -> u64 {
    let intruder = UdpSocket::bind((OTHER_LOOPBACK_IP, 0)).unwrap_or_else(|e| {
        panic!("this attack needs {OTHER_LOOPBACK_IP} on the loopback interface (as on Linux): {e}")
    });
    let honest = UdpSocket::bind("127.0.0.1:0").expect("bind UDP on 127.0.0.1");
    let mut conn = (cx.connect)(&cx.addr.to_string()).expect("connect");
    let token = ask_udp_offer(&mut conn, "big.bin");
    let (ack, data) = forged_ack_and_data(token);
    let mut tried = 0u64;
    let mut buf = vec![0u8; 70_000];
    intruder
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    // Before the real client has said anything: about a second of forged acks.
    for _ in 0..20 {
        let _ = intruder.send_to(&ack, cx.addr);
        let _ = intruder.send_to(&data, cx.addr);
        tried += 2;
        assert_nothing_for_intruder(&intruder, &mut buf);
    }
    // The control: the client's own address gets blocks of this very transfer.
    tried += control_gets_blocks(&honest, cx.addr, &ack, token, &mut buf);
    // While the transfer runs: forged acks still get nothing.
    for _ in 0..10 {
        let _ = intruder.send_to(&ack, cx.addr);
        tried += 1;
        assert_nothing_for_intruder(&intruder, &mut buf);
    }
    // Hanging up ends the transfer on the server's side.
    drop(conn);
    tried
}

/// Asks honestly over TCP for a UDP download of `path` and returns the token the server offers.
fn ask_udp_offer(conn: &mut Connection, path: &str) -> u64 {
    conn.send(&Request::DownloadUdp { path: path.into() })
        .expect("ask for a UDP download");
    match conn.recv::<Reply>().expect("an answer to download_udp") {
        Reply::UdpOffer { token, .. } => token,
        other => panic!("expected a UDP offer, got {other:?}"),
    }
}

/// An ack carrying `token`, and a data-shaped datagram too, with the token and a plausible
/// block, in case a server took those.
fn forged_ack_and_data(token: u64) -> (Vec<u8>, Vec<u8>) {
    use minibox::wire::udp::datagram::{self as wire, Ack};
    let mut ack = Vec::new();
    wire::encode_ack(
        &Ack {
            token,
            window: 64,
            ..Ack::default()
        },
        &mut ack,
    );
    let data = wire::encode_data(&wire::Data {
        token,
        block: 0,
        sent_at: 1,
        ack_now: true,
        payload: &[0u8; 512],
    });
    (ack, data)
}

/// Checks that the intruder's socket received nothing from the server.
fn assert_nothing_for_intruder(intruder: &UdpSocket, buf: &mut [u8]) {
    if let Ok((n, from)) = intruder.recv_from(buf) {
        panic!(
            "the server sent {n} bytes from {from} to {OTHER_LOOPBACK_IP}, whose datagrams \
             carried the token but not the address of the TCP connection that asked"
        );
    }
}

/// Checks that the same ack, sent from the client's own address, gets blocks of the transfer
/// with `token`. Returns how many acks it sent.
fn control_gets_blocks(
    honest: &UdpSocket,
    addr: SocketAddr,
    ack: &[u8],
    token: u64,
    buf: &mut [u8],
) -> u64 {
    use minibox::wire::udp::datagram::{self as wire, Datagram};
    honest
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + LIMIT;
    let mut tried = 0u64;
    let mut blocks = 0u32;
    while blocks == 0 {
        assert!(
            Instant::now() < deadline,
            "the server sent nothing to the real client either: the attack proved nothing"
        );
        let _ = honest.send_to(ack, addr);
        tried += 1;
        while let Ok((n, _)) = honest.recv_from(buf) {
            if matches!(wire::decode(&buf[..n]), Ok(Datagram::Data(d)) if d.token == token) {
                blocks += 1;
            }
            if blocks > 0 {
                break;
            }
        }
    }
    tried
}
