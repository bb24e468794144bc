//! Two `with_thread` boxes, each serving the other while its own shell asks the other: both
//! directions at once, the activity logs, and a clean end with `quit` and with end of input.

// Test helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use minibox::local::log::served;
use std::panic::AssertUnwindSafe;
use std::path::Path;

use common::*;
use testkit::{md5_of, Proc};

/// Starts box A and box B, each with the other as its peer. B starts first, told to use a port
/// picked for A; should something else take that port in between, both are started again.
fn start_pair(a_dir: &Path, b_dir: &Path) -> (Proc, Proc) {
    for _ in 0..5 {
        let a_addr = format!("127.0.0.1:{}", free_port());
        let b = shell_box(b_dir, &a_addr);
        let b_addr = b.addr_string();
        if let Ok(a) =
            std::panic::catch_unwind(AssertUnwindSafe(|| shell_box_on(a_dir, &a_addr, &b_addr)))
        {
            return (a, b);
        }
    }
    panic!("could not start two boxes on free ports");
}

fn paths(answer: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = answer["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files in {answer}"))
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn two_boxes_query_and_download_from_each_other_at_once() {
    let (a_tmp, b_tmp) = (testkit::tempdir(), testkit::tempdir());
    let (a_dir, b_dir) = (a_tmp.path(), b_tmp.path());
    testkit::write(a_dir, "a.txt", b"from box a\n");
    let report = testkit::pseudo_random(300 * 1024, 7);
    let report_path = testkit::write(a_dir, "docs/report.md", &report);
    testkit::chmod(&report_path, 0o640);
    testkit::write(b_dir, "b.txt", b"from box b\n");
    testkit::write(b_dir, "with space.txt", b"spaced out");
    let (mut a, mut b) = start_pair(a_dir, b_dir);

    let report_md5 = phase_1_each_lists_the_other_at_once(&mut a, &mut b, &report);
    phase_2_each_downloads_from_the_other_at_once(&mut a, &mut b, (a_dir, b_dir), &report);

    // Phase 3: A sees what B just received, and its MD5 is the original's.
    a.send_line("hash verify docs/report.md");
    let a_out = a.wait_stdout_lines(5, LIMIT);
    assert_eq!(json(&a_out[4])["files"][0]["md5"], report_md5.as_str());

    the_activity_logs_show_each_request_served_and_made(&a, &b, a_dir, b_dir);

    // A ends with `quit`, B with end of input; B had a failed command, so it exits 1.
    a.send_line("quit");
    b.close_stdin();
    assert_eq!(exit_code(&mut a), 0, "{}", a.stderr_text());
    assert_eq!(exit_code(&mut b), 1, "{}", b.stderr_text());
    for p in [&a, &b] {
        assert!(
            stderr_shows(p, "every thread joined"),
            "{}",
            p.stderr_text()
        );
        assert_port_free(p.addr);
    }
    assert!(temp_files(a_dir).is_empty() && temp_files(b_dir).is_empty());
}

/// Phase 1: each lists the other, at the same time; B's hashes include the report's MD5, which
/// it returns.
fn phase_1_each_lists_the_other_at_once(a: &mut Proc, b: &mut Proc, report: &[u8]) -> String {
    for p in [&mut *a, &mut *b] {
        p.send_line("index longlist");
        p.send_line("hash checkall");
    }
    let a_out = a.wait_stdout_lines(2, LIMIT);
    let b_out = b.wait_stdout_lines(2, LIMIT);
    assert_eq!(paths(&json(&a_out[0])), ["b.txt", "with space.txt"]);
    assert_eq!(paths(&json(&b_out[0])), ["a.txt", "docs/report.md"]);
    let b_sums = json(&b_out[1]);
    let report_md5 = md5_of(report);
    assert!(
        b_sums["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "docs/report.md" && f["md5"] == report_md5.as_str()),
        "{b_sums}"
    );
    report_md5
}

/// Phase 2: each downloads from the other, at the same time: verified TCP downloads, one clear
/// error for a missing file, the bytes, mtime and permission bits in place.
fn phase_2_each_downloads_from_the_other_at_once(
    a: &mut Proc,
    b: &mut Proc,
    (a_dir, b_dir): (&Path, &Path),
    report: &[u8],
) {
    a.send_line("download TCP b.txt");
    a.send_line("download tcp \"with space.txt\"");
    b.send_line("download TCP docs/report.md");
    b.send_line("download TCP missing.txt");
    let a_out = a.wait_stdout_lines(4, LIMIT);
    let b_out = b.wait_stdout_lines(4, LIMIT);
    for line in a_out[2..].iter().chain(&b_out[2..3]) {
        let v = json(line);
        assert_eq!(v["ok"], true, "{line}");
        assert_eq!(v["verified"], true, "{line}");
        assert_eq!(v["transport"], "tcp", "{line}");
    }
    let missing = json(&b_out[3]);
    assert_eq!(missing["ok"], false);
    assert!(missing["error"].as_str().unwrap().contains("missing.txt"));
    assert_eq!(std::fs::read(a_dir.join("b.txt")).unwrap(), b"from box b\n");
    assert_eq!(
        std::fs::read(a_dir.join("with space.txt")).unwrap(),
        b"spaced out"
    );
    assert_eq!(std::fs::read(b_dir.join("docs/report.md")).unwrap(), report);
    // mtime and permission bits travel with the file.
    let (sa, sb) = (testkit::snapshot(a_dir), testkit::snapshot(b_dir));
    assert_eq!(sa["docs/report.md"], sb["docs/report.md"]);
    assert_eq!(sb["docs/report.md"].2, 0o640);
    assert_eq!(sa["b.txt"], sb["b.txt"]);
}

/// Whether `log` has a line for `peer`, `what` and an outcome starting with `outcome`.
fn has(log: &str, peer: &str, what: &str, outcome: &str) -> bool {
    log.lines().any(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        f.len() == 4 && f[1] == peer && f[2] == what && f[3].starts_with(outcome)
    })
}

/// The activity logs: one line per request served (`<- NAME`) and made (`-> ADDR`): time, who,
/// request, outcome.
fn the_activity_logs_show_each_request_served_and_made(
    a: &Proc,
    b: &Proc,
    a_dir: &Path,
    b_dir: &Path,
) {
    let (a_addr, b_addr) = (a.addr_string(), b.addr_string());
    let (to_a, to_b) = (format!("-> {a_addr}"), format!("-> {b_addr}"));
    let b_name = served(&minibox::local::local_box::default_name(b_dir));
    let a_log = log_until(a_dir, |log| {
        // Served by A, asked by B (named after its folder)…
        has(log, &b_name, "download tcp \"docs/report.md\"", "ok")
            && has(log, &b_name, "download tcp \"missing.txt\"", "error")
            // …and made by A, towards B.
            && has(log, &to_b, "download tcp \"b.txt\"", "ok")
            && has(log, &to_b, "index all", "ok 2 files")
    });
    let b_log = log_until(b_dir, |log| {
        has(log, &to_a, "download tcp \"missing.txt\"", "error")
            && has(log, &to_a, "hash list all", "ok")
            && has(
                log,
                &served(&minibox::local::local_box::default_name(a_dir)),
                "download tcp \"b.txt\"",
                "ok",
            )
    });
    for log in [&a_log, &b_log] {
        assert!(log.lines().all(|l| l.split('\t').count() == 4), "{log}");
    }
}
