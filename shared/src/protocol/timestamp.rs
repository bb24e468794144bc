//! The timestamp forms `index shortlist` accepts, and the time formats minibox prints.
//!
//! People type dates in many ways, so the shell takes several (see [`parse`]); all of them end up
//! as nanoseconds since the Unix epoch, which is what travels on the wire. Naive forms (no offset)
//! are read in local time. A partial form means the start of that period: `2026-11-25` is that
//! day's midnight, `2026/11` the first of November.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Parses a timestamp typed by a user, reading naive forms in local time.
///
/// # Errors
/// A sentence naming the accepted forms.
pub fn parse(text: &str) -> Result<i64, String> {
    parse_in(text, &Local)
}

/// Parses a timestamp, reading naive forms in the time zone `tz` (tests pass UTC or a fixed
/// offset so that they do not depend on the machine).
///
/// Accepted: `2026-11-25`, `2026-11-25T10:00:00`, `2026-11-25 10:00:00`, RFC 3339
/// (`2026-11-25T10:00:00Z`, `2026-11-25T10:00:00+05:30`), the slash form `2026/11/25/10/00/00`
/// with any trailing parts left out, and `@1764064800` (Unix seconds).
///
/// # Errors
/// A sentence naming the accepted forms.
pub fn parse_in<Tz: TimeZone>(text: &str, tz: &Tz) -> Result<i64, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "\"{text}\" is not a timestamp; use 2026-11-25, \"2026-11-25 10:00:00\", \
             2026-11-25T10:00:00Z, 2026/11/25/10/00 or @1764064800"
        )
    };
    if let Some(secs) = text.strip_prefix('@') {
        let secs: i64 = secs.parse().map_err(|_| bad())?;
        return secs.checked_mul(1_000_000_000).ok_or_else(bad);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return to_ns(&dt).ok_or_else(bad);
    }
    let naive = parse_naive(text).ok_or_else(bad)?;
    // A local time can be ambiguous (clocks going back) or missing (clocks going forward): take
    // the earliest reading, or fail clearly.
    let local = tz.from_local_datetime(&naive).earliest().ok_or_else(|| {
        format!("\"{text}\" does not exist in the local time zone (a clock change skips it)")
    })?;
    to_ns(&local).ok_or_else(bad)
}

fn parse_naive(text: &str) -> Option<NaiveDateTime> {
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, fmt) {
            return Some(dt);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0);
    }
    parse_slashes(text)
}

/// `YYYY[/MM[/DD[/hh[/mm[/ss]]]]]`, the parts left out taking their smallest value.
fn parse_slashes(text: &str) -> Option<NaiveDateTime> {
    let parts: Vec<&str> = text.split('/').collect();
    if parts.is_empty() || parts.len() > 6 {
        return None;
    }
    let mut nums = [0u32, 1, 1, 0, 0, 0];
    for (slot, part) in nums.iter_mut().zip(&parts) {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || part.len() > 4 {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    if parts[0].len() != 4 {
        return None;
    }
    NaiveDate::from_ymd_opt(i32::try_from(nums[0]).ok()?, nums[1], nums[2])?
        .and_hms_opt(nums[3], nums[4], nums[5])
}

fn to_ns<Tz: TimeZone>(dt: &DateTime<Tz>) -> Option<i64> {
    dt.timestamp_nanos_opt()
}

/// The time `ns` nanoseconds after the epoch, in UTC.
pub fn utc(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

/// RFC 3339 in UTC with the nanoseconds kept only when there are any, as the JSON output shows it.
pub fn rfc3339(ns: i64) -> String {
    utc(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Local time to the second, as the tables show it.
pub fn local_display(ns: i64) -> String {
    utc(ns)
        .with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Now, in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
