//! The filters of `index shortlist` and `index regex`, applied by the box that answers.

use regex::Regex;

use crate::protocol::message::{Entry, Filter};

/// A [`Filter`] made ready to test entries (the regex compiled once).
#[derive(Debug)]
pub enum Matcher {
    /// Everything matches.
    All,
    /// mtime within `[start, end]` ns.
    Modified(i64, i64),
    /// The path matches.
    Regex(Regex),
}

impl Matcher {
    /// Prepares `filter`.
    ///
    /// # Errors
    /// A sentence saying why the regular expression is invalid.
    pub fn new(filter: &Filter) -> Result<Self, String> {
        Ok(match filter {
            Filter::All => Matcher::All,
            Filter::Modified { start_ns, end_ns } => Matcher::Modified(*start_ns, *end_ns),
            Filter::Regex { pattern } => Matcher::Regex(compile(pattern)?),
        })
    }

    /// Whether `entry` passes.
    pub fn matches(&self, entry: &Entry) -> bool {
        match self {
            Matcher::All => true,
            Matcher::Modified(start, end) => (*start..=*end).contains(&entry.mtime_ns),
            Matcher::Regex(re) => re.is_match(&entry.path),
        }
    }
}

/// Compiles a user's regular expression with size limits, so that a hostile pattern cannot eat
/// the server's memory.
///
/// # Errors
/// A sentence saying why the pattern is invalid.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    let built = regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build();
    built.map_err(|e| {
        // The regex crate ends its message with `error: <what>`; keep only the what.
        let detail = e.to_string();
        let last = detail.lines().last().unwrap_or("invalid").trim();
        let last = last.strip_prefix("error: ").unwrap_or(last);
        format!("\"{pattern}\" is not a valid regular expression ({last})")
    })
}

#[cfg(test)]
mod tests;
