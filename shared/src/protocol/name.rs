//! The name rules: which names from the network may stand for a file in a box.
//!
//! A sync tool writes files named by its peer, so a name is hostile until proven clean (rsync's
//! 2024 advisories were about exactly this). A name is a relative path with `/` separators: no
//! empty, `.` or `..` parts, no leading `/`, no NUL and no backslash, nothing inside minibox's
//! own [`META_DIR`], and at most [`MAX_PATH`] bytes. This module checks the text only; [`crate::local::gate`] checks
//! the disk (no symbolic link on the way).

use std::fmt;

use super::limits::{MAX_NAME, MAX_PATH};

/// The folder inside every box that holds minibox's own data (temporary files, trash, log,
/// caches). It is never listed, served or synced.
pub const META_DIR: &str = ".minibox";

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// The name was empty.
    Empty,
    /// The name starts with `/`.
    Absolute(String),
    /// The name has an empty, `.` or `..` part.
    BadComponent(String),
    /// The name holds a NUL byte or a backslash.
    BadCharacter(String),
    /// The name points into minibox's own folder.
    Reserved(String),
    /// A part of the path inside the box is a symbolic link.
    Symlink(String),
    /// The name is longer than [`MAX_PATH`] bytes (it is not kept: it could be megabytes).
    TooLong(usize),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Empty => f.write_str("an empty name is not a file in the box"),
            PathError::Absolute(n) => {
                write!(
                    f,
                    "\"{n}\" is an absolute path; names are relative to the box"
                )
            }
            PathError::BadComponent(n) => write!(
                f,
                "\"{n}\" has an empty, \".\" or \"..\" part; names must stay inside the box"
            ),
            PathError::BadCharacter(n) => write!(
                f,
                "\"{}\" contains a NUL or a backslash, which names in a box may not",
                n.escape_debug()
            ),
            PathError::Reserved(n) => {
                write!(f, "\"{n}\" is inside minibox's own {META_DIR}/ folder")
            }
            PathError::TooLong(len) => write!(
                f,
                "a name of {len} bytes is longer than the {MAX_PATH} bytes a path may have"
            ),
            PathError::Symlink(n) => {
                write!(
                    f,
                    "\"{n}\" passes through a symbolic link, which minibox does not follow"
                )
            }
        }
    }
}

impl std::error::Error for PathError {}

/// Checks that `name` is a clean relative path, without touching the disk.
///
/// # Errors
/// The first rule the name breaks.
pub fn check_name(name: &str) -> Result<(), PathError> {
    let owned = || name.to_string();
    if name.is_empty() {
        return Err(PathError::Empty);
    }
    if name.len() > MAX_PATH {
        return Err(PathError::TooLong(name.len()));
    }
    if name.contains('\0') || name.contains('\\') {
        return Err(PathError::BadCharacter(owned()));
    }
    if name.starts_with('/') {
        return Err(PathError::Absolute(owned()));
    }
    if name
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(PathError::BadComponent(owned()));
    }
    if name == META_DIR || name.starts_with(&format!("{META_DIR}/")) {
        return Err(PathError::Reserved(owned()));
    }
    Ok(())
}

/// Makes a name a *peer* announced safe anywhere (logs, file names): keeps letters, digits and
/// `-_.@+`, turns anything else into `_`, keeps at most [`MAX_NAME`] characters, and never
/// returns an empty name, `.` or `..`. An honest name (`box2`) passes unchanged.
pub fn clean_name(name: &str) -> String {
    let keep = |c: char| c.is_alphanumeric() || "-_.@+".contains(c);
    let cleaned: String = name
        .chars()
        .take(MAX_NAME)
        .map(|c| if keep(c) { c } else { '_' })
        .collect();
    if cleaned.chars().all(|c| c == '.') {
        format!("_{cleaned}")
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests;
