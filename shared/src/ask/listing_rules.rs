//! The rules every frame of a listing holds to, checked as each arrives, so that a listing
//! costs the box that receives it memory only for what it really brings, and never more than
//! the limits allow (`docs/PROTOCOL.md`, "Limits"):
//!
//! - a chunk carries 1 to [`ENTRIES_PER_CHUNK`] items (entries, or folders of a `same`);
//! - names come in strictly increasing byte order, across chunks: a name twice is out of order;
//! - a name passes the name rules (at most 4095 bytes), a type is at most [`MAX_TYPE`] bytes,
//!   an MD5 is one, a folder comes only in a sync listing;
//! - at most [`MAX_LISTING`] entries, whose names add up to at most [`MAX_LISTING_NAMES`] bytes;
//! - a `same` folder is one the client asked about; the `end` counts the entries.

use std::collections::HashSet;

use crate::local::log::field;
use crate::protocol::error::{Error, Result};
use crate::protocol::limits::{ENTRIES_PER_CHUNK, MAX_LISTING, MAX_LISTING_NAMES, MAX_TYPE};
use crate::protocol::md5::Md5;
use crate::protocol::message::{Entry, Kind};
use crate::protocol::name::check_name;

/// What a listing has brought so far, as far as its rules need to know.
pub struct Rules<'k> {
    /// Whether folders may be listed (a sync listing).
    folders: bool,
    /// The folders a `same` may name.
    known: HashSet<&'k str>,
    /// Entries so far.
    count: u64,
    /// Bytes of names so far.
    names: u64,
    /// The last entry's name, and the last `same` folder's.
    last: Option<String>,
    last_same: Option<String>,
}

impl<'k> Rules<'k> {
    /// The rules of a listing that may name `folders` or not, and say that `known` are the same.
    pub fn new(folders: bool, known: &'k [String]) -> Self {
        Rules {
            folders,
            known: known.iter().map(String::as_str).collect(),
            count: 0,
            names: 0,
            last: None,
            last_same: None,
        }
    }

    /// Checks a chunk of entries.
    ///
    /// # Errors
    /// [`Error::Protocol`] or [`Error::Path`] for the first rule it breaks.
    pub fn entries(&mut self, entries: &[Entry]) -> Result<()> {
        check_chunk("entries", entries.len())?;
        if self.count + entries.len() as u64 > MAX_LISTING {
            let why = format!("the peer's listing has more than {MAX_LISTING} entries");
            return Err(Error::Protocol(why));
        }
        for (i, e) in entries.iter().enumerate() {
            let before = match i.checked_sub(1) {
                Some(i) => Some(entries[i].path.as_str()),
                None => self.last.as_deref(),
            };
            self.check_entry(e, before)?;
        }
        add_names(&mut self.names, entries)?;
        self.last = entries.last().map(|e| e.path.clone());
        self.count += entries.len() as u64;
        Ok(())
    }

    /// Checks a chunk of folders said to be the same.
    ///
    /// # Errors
    /// [`Error::Protocol`] for the first rule it breaks.
    pub fn same(&mut self, folders: &[String]) -> Result<()> {
        check_chunk("same", folders.len())?;
        for (i, f) in folders.iter().enumerate() {
            if !self.known.contains(f.as_str()) {
                return Err(Error::Protocol(format!(
                    "the peer says it has folder {} as we know it, which we did not ask about",
                    field(f)
                )));
            }
            let before = match i.checked_sub(1) {
                Some(i) => Some(folders[i].as_str()),
                None => self.last_same.as_deref(),
            };
            in_order("folder", f, before)?;
        }
        self.last_same = folders.last().cloned();
        Ok(())
    }

    /// Checks the `end` of the listing against the entries counted.
    ///
    /// # Errors
    /// [`Error::Protocol`] if they differ.
    pub fn end(&self, announced: u64) -> Result<()> {
        if announced == self.count {
            return Ok(());
        }
        let count = self.count;
        let why = format!("the listing announced {announced} entries but carried {count}");
        Err(Error::Protocol(why))
    }

    /// An entry passes the name rules, is a file unless folders may come, carries a short type
    /// and a real MD5 if any, and comes after the entry `before` it.
    fn check_entry(&self, e: &Entry, before: Option<&str>) -> Result<()> {
        check_name(&e.path)?;
        let why = if !self.folders && e.kind == Kind::Dir {
            format!("unexpected folder {} in a file listing", e.path)
        } else if e.mime.len() > MAX_TYPE {
            format!("{}: a type of {} bytes", e.path, e.mime.len())
        } else if e.md5.as_deref().is_some_and(|m| m.parse::<Md5>().is_err()) {
            let md5 = field(e.md5.as_deref().unwrap_or(""));
            format!("{}: {md5} is not an MD5", e.path)
        } else {
            return in_order("entry", &e.path, before);
        };
        Err(Error::Protocol(why))
    }
}

/// Adds the bytes of the chunk's names to `total`, which may not pass [`MAX_LISTING_NAMES`].
fn add_names(total: &mut u64, entries: &[Entry]) -> Result<()> {
    *total += entries.iter().map(|e| e.path.len() as u64).sum::<u64>();
    if *total > MAX_LISTING_NAMES {
        let why = format!("the peer's names add up to more than {MAX_LISTING_NAMES} bytes");
        return Err(Error::Protocol(why));
    }
    Ok(())
}

/// A chunk carries at least one item and at most [`ENTRIES_PER_CHUNK`].
fn check_chunk(what: &str, len: usize) -> Result<()> {
    if (1..=ENTRIES_PER_CHUNK).contains(&len) {
        return Ok(());
    }
    Err(Error::Protocol(format!(
        "a chunk of {len} {what} (a chunk carries 1 to {ENTRIES_PER_CHUNK})"
    )))
}

/// Names come in strictly increasing byte order: a repeat is out of order too.
fn in_order(what: &str, name: &str, before: Option<&str>) -> Result<()> {
    match before {
        Some(before) if name <= before => Err(Error::Protocol(format!(
            "the listing names {what} {} after {} (out of order, or twice)",
            field(name),
            field(before)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
