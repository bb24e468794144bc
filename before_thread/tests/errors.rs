//! Every error of SPEC.md, through the real binaries: a missing file, a bad regex, a bad
//! timestamp, `../` and absolute names, symbolic links out of the box, an unknown command, a peer
//! that is down, and bad command-line arguments. Each failed command prints one clear error, the
//! shell goes on (the next command is still answered), the exit status is 1 at the end, the
//! server keeps serving, and nothing is written outside the box.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;

/// Each bad line, and a piece of the sentence it must produce.
const BAD: &[(&str, &str)] = &[
    ("hash verify missing.txt", "missing.txt: no such file"),
    ("download TCP missing.txt", "missing.txt: no such file"),
    ("download TCP docs", "docs is a folder, not a file"),
    (
        "hash verify hello.txt/below",
        "hello.txt/below: no such file",
    ),
    (
        "index regex (",
        "not a valid regular expression (unclosed group)",
    ),
    ("index regex [z-a]", "not a valid regular expression"),
    (
        "index shortlist yesterday",
        "\"yesterday\" is not a timestamp",
    ),
    ("index shortlist 2026-13-01", "is not a timestamp"),
    (
        "index shortlist 2024-03-01 2024-02-29",
        "start of the range is after its end",
    ),
    ("download TCP ../escape.txt", "must stay inside the box"),
    (
        "hash verify docs/../../outside/secret.txt",
        "must stay inside the box",
    ),
    ("download TCP /etc/passwd", "is an absolute path"),
    ("hash verify /etc/hostname", "is an absolute path"),
    ("download TCP link-out/secret.txt", "symbolic link"),
    ("hash verify link-out/secret.txt", "symbolic link"),
    (
        "download TCP .minibox/log",
        "minibox's own .minibox/ folder",
    ),
    ("frobnicate now", "unknown command \"frobnicate\""),
    ("index", "usage: index"),
    ("download FTP hello.txt", "usage: download TCP|UDP FILE"),
    ("download TCP \"unclosed", "double quote is not closed"),
];

/// The bad lines, each followed by a good one, so that "the shell goes on" is checked after every
/// single error.
fn interleaved() -> String {
    BAD.iter()
        .map(|(line, _)| format!("{line}\nhash verify hello.txt\n"))
        .collect()
}

/// Nothing was written into the client box but minibox's own folder, and nothing outside.
fn assert_nothing_written(s: &Setup) {
    let files = testkit::files_under(&s.client_box);
    assert!(
        files.iter().all(|f| f.starts_with(".minibox")),
        "only .minibox/ in the client box: {files:?}"
    );
    assert!(
        testkit::files_under(&s.client_box.join(".minibox/tmp")).is_empty(),
        "no temporary file left"
    );
    let outside = s.tmp.path().join("outside");
    assert_eq!(
        testkit::files_under(&outside),
        [PathBuf::from("secret.txt")]
    );
    assert!(!s.tmp.path().join("escape.txt").exists());
}

/// The server still answers, and a later client gets a clean run.
fn assert_server_still_serves(s: &mut Setup) {
    assert!(s.server.alive(), "the server is still running");
    let run = s.json("index regex ^hello\n");
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.json_lines()[0]["files"][0]["path"], "hello.txt");
}

#[test]
fn every_error_in_json_mode_is_one_line_and_the_shell_goes_on() {
    let mut s = Setup::new(sample_box);
    let run = s.json(&interleaved());
    assert_eq!(run.code(), 1, "a command failed: {run:?}");
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2 * BAD.len(), "one line per command: {run:?}");
    for (pair, (line, needle)) in lines.chunks(2).zip(BAD) {
        let sentence = assert_error(&pair[0], needle);
        assert!(!sentence.starts_with("error"), "{line}: {sentence}");
        // The next command was answered normally.
        assert_eq!(pair[1]["ok"], true, "after {line}: {}", pair[1]);
        assert_eq!(pair[1]["files"][0]["md5"], HELLO_MD5, "after {line}");
    }
    assert_nothing_written(&s);
    assert_server_still_serves(&mut s);
}

#[test]
fn every_error_in_human_mode_is_one_line_and_the_shell_goes_on() {
    let mut s = Setup::new(sample_box);
    let run = s.human(&interleaved());
    assert_eq!(run.code(), 1, "{run:?}");
    let errors: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), BAD.len(), "{}", run.stdout);
    for (error, (line, needle)) in errors.iter().zip(BAD) {
        assert!(error.contains(needle), "{line}: {error}");
    }
    // Each good command still printed its table: header plus one row.
    let answers = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("hello.txt ") && l.ends_with(HELLO_MD5))
        .count();
    assert_eq!(answers, BAD.len(), "{}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 3 * BAD.len(), "{}", run.stdout);
    assert_nothing_written(&s);
    assert_server_still_serves(&mut s);
}

#[test]
fn a_failed_run_ends_with_status_1_even_if_the_last_command_worked() {
    let s = Setup::new(sample_box);
    let run = s.json("hash verify missing.txt\nindex longlist\n");
    assert_eq!(run.code(), 1);
    let run = s.json("index longlist\nhelp\n");
    assert_eq!(run.code(), 0);
    // An empty input is a successful run that prints nothing.
    let run = s.json("");
    assert_eq!((run.code(), run.stdout.as_str()), (0, ""));
}

#[test]
fn a_peer_that_is_down_gives_one_error_per_command_without_hanging() {
    let tmp = testkit::tempdir();
    let client_box = tmp.path().join("box2");
    let input = "index longlist\n\
                 hash checkall\n\
                 download TCP hello.txt\n\
                 help\n\
                 index shortlist\n";

    // A port where nothing ever listened, and the port of a server that was killed.
    let never = testkit::closed_addr().to_string();
    let killed = {
        let server_box = tmp.path().join("box1");
        fs::create_dir_all(&server_box).unwrap();
        let mut server = start_server(&server_box);
        let addr = server.addr_string();
        server.signal("KILL");
        assert!(server.wait_exit(SHELL_LIMIT).is_some());
        addr
    };
    for peer in [never, killed] {
        let run = run_client(&client_box, &peer, &["--json"], input, &[]);
        assert_eq!(run.code(), 1, "{run:?}");
        let lines = run.json_lines();
        assert_eq!(lines.len(), 5, "{run:?}");
        for i in [0, 1, 2, 4] {
            let sentence = assert_error(&lines[i], "cannot reach the peer");
            assert!(sentence.contains(&peer), "{sentence}");
        }
        assert_eq!(lines[3]["ok"], true, "help is local: {}", lines[3]);

        let run = run_client(&client_box, &peer, &[], input, &[]);
        assert_eq!(run.code(), 1, "{run:?}");
        let errors = run
            .stdout
            .lines()
            .filter(|l| l.starts_with("error: cannot reach the peer at "))
            .count();
        assert_eq!(errors, 4, "{}", run.stdout);
    }
    assert!(testkit::files_under(&client_box.join(".minibox/tmp")).is_empty());
}

/// Runs a binary with arguments and no input.
fn run(bin: &str, args: &[&str]) -> testkit::ShellRun {
    testkit::run_shell(bin, args, "", SHELL_LIMIT)
}

#[test]
fn bad_arguments_exit_2_with_a_usage_message() {
    let tmp = testkit::tempdir();
    let dir = tmp.path().join("box");
    let dir = dir.to_str().unwrap();
    for (bin, name) in [(SERVER, "server"), (CLIENT, "client")] {
        for args in [
            &[][..],
            &["--dir"][..],
            &["--dir", dir, "--bogus"][..],
            &["--dir", dir, "extra"][..],
        ] {
            let r = run(bin, args);
            assert_eq!(r.code(), 2, "{name} {args:?}: {r:?}");
            // clap names the problem and points to --help; all but a missing value also show
            // the usage line.
            assert!(r.stderr.starts_with("error: "), "{name} {args:?}: {r:?}");
            assert!(r.stderr.contains("--help"), "{name} {args:?}: {r:?}");
            if args != ["--dir"] {
                assert!(r.stderr.contains(&format!("Usage: {name} ")), "{r:?}");
            }
            assert!(r.stdout.is_empty(), "{name} {args:?}: {r:?}");
        }
        let help = run(bin, &["--help"]);
        assert_eq!(help.code(), 0, "{help:?}");
        assert!(help.stdout.contains(&format!("Usage: {name}")), "{help:?}");
        assert!(help.stdout.contains("--dir <DIR>"), "{help:?}");
        assert!(
            help.stdout.contains("[default: 127.0.0.1:60000]"),
            "{help:?}"
        );
        let version = run(bin, &["--version"]);
        assert_eq!(version.code(), 0, "{version:?}");
        assert_eq!(
            version.stdout.trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION"))
        );
    }
    let help = run(CLIENT, &["--help"]).stdout;
    assert!(
        help.contains("--peer <PEER>") && help.contains("--json"),
        "{help}"
    );
    let help = run(SERVER, &["--help"]).stdout;
    assert!(help.contains("--listen <LISTEN>"), "{help}");
    // Not a usage error but a run-time one: an address that cannot be bound. One sentence, exit 1.
    let r = run(SERVER, &["--dir", dir, "--listen", "nonsense"]);
    assert_eq!(r.code(), 1, "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(r.stderr.contains("cannot listen on nonsense"), "{r:?}");
}

#[test]
fn a_port_in_use_is_one_clear_error() {
    let tmp = testkit::tempdir();
    let first = start_server(&tmp.path().join("a"));
    let dir = tmp.path().join("b");
    let r = run(
        SERVER,
        &[
            "--dir",
            dir.to_str().unwrap(),
            "--listen",
            &first.addr_string(),
        ],
    );
    assert_eq!(r.code(), 1, "{r:?}");
    assert!(r.stderr.contains("cannot listen on"), "{r:?}");
    // The cause and the next step, in words, without the system's error number.
    assert!(
        r.stderr
            .contains("in use (is this box already running? --listen picks another port)"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("os error"), "{r:?}");
}

#[test]
fn a_file_given_as_the_box_is_one_clear_error() {
    let tmp = testkit::tempdir();
    let file = testkit::write(tmp.path(), "not-a-folder", b"x");
    let r = run(SERVER, &["--dir", file.to_str().unwrap()]);
    assert_eq!(r.code(), 1, "{r:?}");
    assert!(
        r.stderr.contains("is a file; --dir takes a folder"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("os error"), "{r:?}");
}
