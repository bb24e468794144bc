//! A clean stop: on `quit`, end of input, SIGINT and SIGTERM the process ends in bounded time,
//! every thread joined (or, for a shell blocked on its input, said so), the port free at once, and
//! nothing half-written under a real name, whether the signal hits the downloading box or the
//! serving one in the middle of a transfer.

// Test helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::*;
use testkit::Proc;

/// Big enough that a debug build takes seconds to move it, so a transfer can be caught midway.
const BIG: u64 = 256 << 20;

#[test]
fn quit_ends_the_process_with_every_thread_joined_even_with_clients_connected() {
    let tmp = testkit::tempdir();
    let mut p = shell_box(tmp.path(), NOBODY);
    // A client connected and silent, and one in the middle of a frame: the stop must not wait
    // for their 10 s idle timeout.
    let _silent = TcpStream::connect(p.addr).unwrap();
    let mut half = TcpStream::connect(p.addr).unwrap();
    half.write_all(&[minibox::protocol::frame::VERSION, 0, 0])
        .unwrap();
    p.send_line("help");
    p.wait_stdout_lines(1, LIMIT);
    p.send_line("quit");
    let started = std::time::Instant::now();
    assert_eq!(exit_code(&mut p), 0);
    // Not a speed target: a stop takes milliseconds, while waiting for the two clients' idle
    // timeout would take at least 10 s. Anything under 9 s tells the two apart.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(9),
        "the stop waited for idle clients to time out"
    );
    assert!(stderr_shows(&p, "every thread joined"));
    assert_port_free(p.addr);
}

#[test]
fn end_of_input_ends_the_process_with_the_shells_status() {
    let tmp = testkit::tempdir();
    let mut ok = shell_box(tmp.path(), NOBODY);
    ok.close_stdin();
    assert_eq!(exit_code(&mut ok), 0);
    assert!(stderr_shows(&ok, "every thread joined"));
    assert_port_free(ok.addr);
    // A failed command (nobody listens at the peer's address) makes the status 1.
    let mut failed = shell_box(tmp.path(), NOBODY);
    failed.send_line("index longlist");
    let answer = json(&failed.wait_stdout_lines(1, LIMIT)[0]);
    assert_eq!(answer["ok"], false);
    failed.close_stdin();
    assert_eq!(exit_code(&mut failed), 1);
    assert_port_free(failed.addr);
}

#[test]
fn sigint_and_sigterm_stop_an_idle_box_at_once() {
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let tmp = testkit::tempdir();
        let mut p = shell_box(tmp.path(), NOBODY);
        let _silent = TcpStream::connect(p.addr).unwrap();
        p.signal(signal);
        assert_eq!(exit_code(&mut p), code, "{}", p.stderr_text());
        assert_port_free(p.addr);
        // The shell was waiting on its (open) input: the log says what happened to it.
        assert!(stderr_shows(&p, "server joined"), "{}", p.stderr_text());
    }
}

/// The downloading box gets SIGTERM mid-transfer: it exits 143 quickly, the file it was
/// replacing is untouched (not half-written, not moved to the trash), its temporary file is
/// gone, and its port can be bound again at once.
#[test]
fn sigterm_during_a_download_leaves_nothing_half_written() {
    let (s_tmp, r_tmp) = (testkit::tempdir(), testkit::tempdir());
    big_file(&s_tmp.path().join("big.bin"), BIG);
    let server = serve_only(s_tmp.path());
    let old = b"the old version, which must survive".to_vec();
    testkit::write(r_tmp.path(), "big.bin", &old);
    let mut receiver = shell_box(r_tmp.path(), &server.addr_string());

    let answered = download_and_freeze(&mut receiver, r_tmp.path(), "big.bin", BIG, || {
        testkit::write(r_tmp.path(), "big.bin", &old);
    });

    // SIGTERM is handled as soon as the process runs again.
    receiver.signal("TERM");
    receiver.signal("CONT");
    assert_eq!(exit_code(&mut receiver), 143, "{}", receiver.stderr_text());
    assert_port_free(receiver.addr);
    assert_eq!(std::fs::read(r_tmp.path().join("big.bin")).unwrap(), old);
    assert!(
        temp_files(r_tmp.path()).is_empty(),
        "a partial file was left"
    );
    // The shell printed why before the process exited; the collecting thread may lag behind.
    let lines = receiver.wait_stdout_lines(answered + 1, LIMIT);
    let last = json(&lines[answered]);
    assert_eq!(last["ok"], false);
    assert!(
        last["error"].as_str().unwrap().contains("interrupted"),
        "{last}"
    );
    let log = std::fs::read_to_string(r_tmp.path().join(".minibox/log")).unwrap();
    assert!(
        log.contains("download tcp \"big.bin\"\terror: interrupted"),
        "{log}"
    );
}

/// The serving box gets SIGTERM while a transfer from it is under way (the receiver is frozen, so
/// the server is stuck writing): the server still exits at once with its port free, and the
/// receiver, once it runs again, reports a clear error and installs nothing.
#[test]
fn sigterm_on_the_serving_side_stops_it_and_the_receiver_installs_nothing() {
    let (s_tmp, r_tmp) = (testkit::tempdir(), testkit::tempdir());
    big_file(&s_tmp.path().join("big.bin"), BIG);
    let mut server = serve_only(s_tmp.path());
    let mut receiver = shell_box(r_tmp.path(), &server.addr_string());

    let answered = download_and_freeze(&mut receiver, r_tmp.path(), "big.bin", BIG, || {
        std::fs::remove_file(r_tmp.path().join("big.bin")).unwrap();
    });

    server.signal("TERM");
    assert_eq!(exit_code(&mut server), 143, "{}", server.stderr_text());
    assert_port_free(server.addr);

    receiver.signal("CONT");
    let lines = receiver.wait_stdout_lines(answered + 1, LIMIT);
    let answer = json(&lines[answered]);
    assert_eq!(answer["ok"], false, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("big.bin") && error.contains("closed"),
        "not a clear error: {error}"
    );
    assert!(!r_tmp.path().join("big.bin").exists());
    assert!(temp_files(r_tmp.path()).is_empty());
    receiver.send_line("quit");
    assert_eq!(exit_code(&mut receiver), 1);
    drop(server);
}

/// A box started again on the same port right after a signal stopped it serves at once.
#[test]
fn a_stopped_box_can_be_restarted_on_the_same_port_at_once() {
    let tmp = testkit::tempdir();
    testkit::write(tmp.path(), "a.txt", b"still here");
    let mut first = shell_box(tmp.path(), NOBODY);
    let addr = first.addr_string();
    let _client = TcpStream::connect(first.addr).unwrap();
    first.signal("TERM");
    assert_eq!(exit_code(&mut first), 143);
    let second = Proc::start_shell(
        BIN,
        &[
            "--dir",
            path_str(tmp.path()),
            "--listen",
            &addr,
            "--peer",
            NOBODY,
        ],
        &[],
    );
    assert_eq!(second.addr_string(), addr);
    let c_tmp = testkit::tempdir();
    let run = run_json(c_tmp.path(), &addr, "download TCP a.txt\n");
    assert_eq!(run.code(), 0, "{run:?}");
}
