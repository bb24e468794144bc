use super::*;
use chrono::FixedOffset;

const NOV25_10H_UTC: i64 = 1_795_600_800 * 1_000_000_000;
const NOV25_0H_UTC: i64 = NOV25_10H_UTC - 10 * 3600 * 1_000_000_000;

fn p(s: &str) -> Result<i64, String> {
    parse_in(s, &Utc)
}

#[test]
fn every_accepted_form() {
    assert_eq!(p("2026-11-25"), Ok(NOV25_0H_UTC));
    assert_eq!(p("2026-11-25T10:00:00"), Ok(NOV25_10H_UTC));
    assert_eq!(p("2026-11-25 10:00:00"), Ok(NOV25_10H_UTC));
    assert_eq!(p("2026-11-25 10:00"), Ok(NOV25_10H_UTC));
    assert_eq!(p("2026-11-25T10:00"), Ok(NOV25_10H_UTC));
    assert_eq!(p("2026-11-25T10:00:00+00:00"), Ok(NOV25_10H_UTC));
    assert_eq!(p("2026-11-25T05:00:00-05:00"), Ok(NOV25_10H_UTC));
    assert_eq!(p("2026-11-25T10:00:00Z"), Ok(NOV25_10H_UTC));
    assert_eq!(p("2026-11-25T15:30:00+05:30"), Ok(NOV25_10H_UTC));
    assert_eq!(p("2026-11-25T10:00:00.5Z"), Ok(NOV25_10H_UTC + 500_000_000));
    assert_eq!(p("2026/11/25/10/00/00"), Ok(NOV25_10H_UTC));
    assert_eq!(p("2026/11/25/10/00"), Ok(NOV25_10H_UTC));
    assert_eq!(p("2026/11/25/10/00/30"), Ok(NOV25_10H_UTC + 30_000_000_000));
    assert_eq!(p("2026/11/25/10"), Ok(NOV25_10H_UTC));
    assert_eq!(p("2026/11/25"), Ok(NOV25_0H_UTC));
    assert_eq!(p("2026/11"), p("2026-11-01"));
    assert_eq!(p("2026"), p("2026-01-01"));
    assert_eq!(p("@1795600800"), Ok(NOV25_10H_UTC));
    assert_eq!(p("@1764064800"), Ok(1_764_064_800 * 1_000_000_000));
    assert_eq!(p("@-1"), Ok(-1_000_000_000));
    assert_eq!(p("  2026-11-25  "), Ok(NOV25_0H_UTC));
}

#[test]
fn naive_forms_are_read_in_the_given_zone() {
    let ist = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
    assert_eq!(parse_in("2026-11-25 15:30:00", &ist), Ok(NOV25_10H_UTC));
    assert_eq!(parse_in("2026/11/25/15/30", &ist), Ok(NOV25_10H_UTC));
    // An explicit offset wins over the zone.
    assert_eq!(parse_in("2026-11-25T10:00:00Z", &ist), Ok(NOV25_10H_UTC));
}

#[test]
fn rejected_forms() {
    for bad in [
        "",
        "yesterday",
        "2026-13-01",
        "2026-02-30",
        "2026/11/25/25",
        "2026/11/25/10/00/00/00",
        "26/11/25",
        "2026//11",
        "@",
        "@12x",
        "@99999999999999999",
        "2026-11-25T10:00:00+99:00",
        "10:00",
        "2026/1a",
        "2026-11-25T10:00:00 UTC",
        "25/11/2026",
        "2026-11-25 25:00:00",
        "1764064800",
        "@ 1764064800",
        "2026/11/25 10:00",
    ] {
        let err = p(bad).expect_err(bad);
        assert!(err.contains("not a timestamp"), "{bad}: {err}");
    }
}

#[test]
fn formats_round_trip() {
    assert_eq!(rfc3339(NOV25_10H_UTC), "2026-11-25T10:00:00Z");
    assert_eq!(rfc3339(NOV25_10H_UTC + 1), "2026-11-25T10:00:00.000000001Z");
    assert_eq!(p(&rfc3339(NOV25_10H_UTC + 123)), Ok(NOV25_10H_UTC + 123));
}
