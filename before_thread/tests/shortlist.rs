//! `index shortlist [START [END]]` against the real server: every timestamp form of SPEC.md, both
//! ends of the range inclusive, the defaults (END = now, START = 24 h before END), and naive
//! times read in the local time zone.
//!
//! The files get explicit mtimes (some relative to now, the rest fixed in the past), so every
//! expected answer is known whatever day the tests run.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::Value;

/// 2024-02-29T12:00:00Z.
const LEAP_NOON: i64 = 1_709_208_000 * SEC;
/// 2024-02-29T23:59:59.5Z: half a second after the slash form's last whole second.
const LEAP_LAST: i64 = 1_709_251_199 * SEC + 500_000_000;
/// 2024-03-01T00:00:00Z, exactly the end of a range written `2024-03-01`.
const MARCH_1: i64 = 1_709_251_200 * SEC;
/// 2020-01-01T00:00:00Z.
const Y2020: i64 = 1_577_836_800 * SEC;
const HOUR: i64 = 3600 * SEC;

fn now_ns() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(d.as_nanos()).unwrap()
}

fn dated_box(root: &Path) {
    let now = now_ns();
    for (name, mtime) in [
        ("leap/noon.txt", LEAP_NOON),
        ("leap/last second.txt", LEAP_LAST),
        ("march.txt", MARCH_1),
        ("old.txt", Y2020),
        ("recent.txt", now - HOUR),
        ("two days ago.txt", now - 48 * HOUR),
        ("future.txt", now + 48 * HOUR),
    ] {
        let path = testkit::write(root, name, name.as_bytes());
        testkit::set_mtime(&path, mtime);
    }
}

fn paths(value: &Value) -> Vec<&str> {
    assert_eq!(value["ok"], true, "{value}");
    let mut out: Vec<&str> = value["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    out.sort_unstable();
    out
}

#[test]
fn every_timestamp_form_in_utc() {
    let s = Setup::new(dated_box);
    let cases: &[(&str, &[&str])] = &[
        // Defaults: the last 24 h up to now.
        ("index shortlist", &["recent.txt"]),
        // Dates: midnight; the end is included.
        (
            "index shortlist 2024-02-29 2024-03-01",
            &["leap/last second.txt", "leap/noon.txt", "march.txt"],
        ),
        // Naive date-times, with T and with a space (quoted): a one-instant range.
        (
            "index shortlist 2024-02-29T12:00:00 \"2024-02-29 12:00:00\"",
            &["leap/noon.txt"],
        ),
        // RFC 3339 with Z and with an offset.
        (
            "index shortlist 2024-02-29T12:00:00Z 2024-02-29T17:30:00+05:30",
            &["leap/noon.txt"],
        ),
        // Fractions of a second count.
        (
            "index shortlist 2024-02-29T23:59:59.5Z 2024-02-29T23:59:59.5Z",
            &["leap/last second.txt"],
        ),
        // The slash form, trailing parts left out: 23:59:59.0 is before the file's 59.5 s.
        (
            "index shortlist 2024/02/29/12 2024/02/29/23/59/59",
            &["leap/noon.txt"],
        ),
        (
            "index shortlist 2024/02 2024/03",
            &["leap/last second.txt", "leap/noon.txt", "march.txt"],
        ),
        // Unix seconds.
        (
            "index shortlist @1709208000 @1709208000",
            &["leap/noon.txt"],
        ),
        ("index shortlist @1577836799 @1577836800", &["old.txt"]),
        // START only: END is now, so the future file is left out.
        (
            "index shortlist 2024",
            &[
                "leap/last second.txt",
                "leap/noon.txt",
                "march.txt",
                "recent.txt",
                "two days ago.txt",
            ],
        ),
        // A range with nothing in it.
        ("index shortlist 2030-01-01 2030-01-02", &[]),
    ];
    let input: String = cases.iter().map(|(line, _)| format!("{line}\n")).collect();
    let run = s.json(&input);
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = run.json_lines();
    assert_eq!(lines.len(), cases.len(), "{run:?}");
    for ((line, want), got) in cases.iter().zip(&lines) {
        assert_eq!(paths(got), *want, "{line}");
    }
}

#[test]
fn naive_times_are_local_and_tables_show_local_time() {
    let s = Setup::new(dated_box);
    // A zone 5 h 30 min east of UTC, written as a POSIX TZ rule (no time zone database needed).
    let zone = [("TZ", "IST-5:30")];
    let run = s.client(
        &["--json"],
        "index shortlist \"2024-02-29 17:30:00\" \"2024-02-29 17:30:00\"\n\
         index shortlist 2024/02/29/17/30 2024-02-29T17:30\n\
         index shortlist 2024-02-29T12:00:00Z 2024-02-29T12:00:00Z\n\
         index shortlist \"2024-02-29 12:00:00\" \"2024-02-29 12:00:00\"\n",
        &zone,
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = run.json_lines();
    assert_eq!(paths(&lines[0]), ["leap/noon.txt"]);
    assert_eq!(paths(&lines[1]), ["leap/noon.txt"]);
    assert_eq!(paths(&lines[2]), ["leap/noon.txt"], "an explicit Z wins");
    assert!(paths(&lines[3]).is_empty(), "12:00 local is 06:30 UTC");
    // JSON times stay in UTC whatever the zone.
    assert_eq!(lines[0]["files"][0]["mtime"], "2024-02-29T12:00:00Z");

    let run = s.client(&[], "index shortlist 2024-02-29 2024-02-29T23:00\n", &zone);
    assert_eq!(run.code(), 0, "{run:?}");
    let text = run.stdout;
    assert!(
        text.contains("leap/noon.txt") && text.contains("2024-02-29 17:30:00"),
        "the table shows local time: {text}"
    );
    // 23:59:59.5 UTC is 05:29:59 the next day here: outside the range.
    assert!(!text.contains("last second"), "{text}");
}
