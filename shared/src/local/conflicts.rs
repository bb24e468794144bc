//! The conflict copies in a box, for the shell's `conflicts` command.
//!
//! Stage 3 names a conflict copy with `with_sync::plan::conflict_name`:
//! `report.txt` → `report.conflict-box2-20261125-101500.txt` (the stem, `.conflict-`, the losing
//! peer's name, the losing version's mtime in UTC, an optional `-` and 8 hex digits when that
//! name was taken, then the extension). [`parse`] reads that format back, here in a low layer so
//! that every stage's shell can list conflicts. The two must stay in step: with_sync's
//! `tests/conflict_names.rs` round-trips `conflict_name`'s output through [`parse`].

use std::sync::OnceLock;

use regex::Regex;

use super::local_box::LocalBox;
use crate::protocol::message::Kind;

/// What a conflict copy's name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictName {
    /// The path it is a copy of.
    pub original: String,
    /// The name of the box whose version lost.
    pub peer: String,
}

/// A conflict copy found in the box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictCopy {
    /// The copy's path.
    pub path: String,
    /// The path it is a copy of, and the peer named in it.
    pub name: ConflictName,
    /// The copy's mtime (the losing version's), ns since the epoch.
    pub mtime_ns: i64,
}

fn pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| {
        // Greedy stem: a copy of a copy names the last `.conflict-…` as its own.
        Regex::new(r"^(.*)\.conflict-(.+)-\d{8}-\d{6}(?:-[0-9a-f]{8})?(\.[^./]*)?$")
            .expect("a valid pattern")
    })
}

/// Reads a conflict copy's path; `None` if it is not one.
pub fn parse(path: &str) -> Option<ConflictName> {
    let (folder, file) = match path.rfind('/') {
        Some(i) => path.split_at(i + 1),
        None => ("", path),
    };
    let caps = pattern().captures(file)?;
    let stem = caps.get(1)?.as_str();
    let ext = caps.get(3).map_or("", |m| m.as_str());
    if stem.is_empty() && ext.is_empty() {
        return None;
    }
    Some(ConflictName {
        original: format!("{folder}{stem}{ext}"),
        peer: caps.get(2)?.as_str().to_string(),
    })
}

/// The conflict copies in `local`, by path.
///
/// # Errors
/// If the box cannot be scanned.
pub fn list(local: &LocalBox) -> std::io::Result<Vec<ConflictCopy>> {
    let scan = local.scan()?;
    Ok(scan
        .iter()
        .filter(|s| s.kind == Kind::File)
        .filter_map(|s| {
            parse(&s.path).map(|name| ConflictCopy {
                path: s.path.clone(),
                name,
                mtime_ns: s.stamp.mtime_ns,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests;
