//! The client as a person meets it: on a terminal, with a `>> ` prompt, line editing and the
//! session's history. Regression test: the first version panicked here before showing a prompt
//! (rustyline's `load_history` is "not implemented" without its file-history feature), which the
//! piped tests could not see.
//!
//! The terminal comes from util-linux `script(1)` (see `testkit::Terminal`); where it is missing
//! the test fails and says what to install.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn the_shell_on_a_terminal_prompts_edits_and_remembers() {
    let s = Setup::new(sample_box);
    let dir = s.client_box.to_str().unwrap().to_string();
    let peer = s.server.addr_string();
    let mut term =
        testkit::Terminal::start(CLIENT, &["--dir", &dir, "--peer", &peer], &[("TZ", "UTC")]);
    // Type each line only once the prompt is up: keys typed earlier would reach the terminal
    // before the line editor takes it over.
    let mut prompts = 1;
    let mut step = |term: &mut testkit::Terminal, keys: &str| {
        assert!(
            term.wait_for(">> ", prompts, WAIT),
            "no prompt #{prompts}; the terminal showed:\n{}",
            term.shown()
        );
        term.type_keys(keys);
        prompts += 1;
    };
    step(&mut term, "index regex ^hello\r");
    step(&mut term, "frobnicate\r");
    // Up arrow twice: the line before last comes back, and runs again.
    step(&mut term, "\x1b[A\x1b[A\r");
    // Line editing: type, go left over "xx", delete it, then finish the word.
    step(&mut term, "hash verify hello.txtxx\x7f\x7f\r");
    step(&mut term, "quit\r");

    let status = term.wait_exit(WAIT);
    let status = status.unwrap_or_else(|| panic!("still running after quit:\n{}", term.shown()));
    let shown = term.shown().to_string();
    assert!(!shown.contains("panicked"), "{shown}");
    assert!(shown.contains("this box: "), "a greeting: {shown}");
    assert!(
        shown.contains("(type help; Ctrl-C cancels a command, Ctrl-D leaves)"),
        "{shown}"
    );
    assert_eq!(
        shown
            .matches("hello.txt  11 B  2026-11-20 08:00:00  text/plain")
            .count(),
        3,
        "two listings and one hash row: {shown}"
    );
    assert!(shown.contains(HELLO_MD5), "{shown}");
    assert!(
        shown.contains("error: unknown command \"frobnicate\""),
        "{shown}"
    );
    // On a terminal, leaving is a success whatever the commands did (a pipe's status counts
    // failures: tests/errors.rs).
    assert_eq!(status.code(), Some(0), "{shown}");
}
