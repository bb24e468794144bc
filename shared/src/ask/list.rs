//! Asking for a listing (`index …`, `hash checkall`) and reading it: chunks of entries up to
//! the end that counts them. Every frame is checked as it comes, so that a listing costs memory
//! only for what it really brings, and never more than the limits allow: a name that breaks the
//! name rules (`../x`, or longer than a path may be), a chunk that is empty or over the limit,
//! a name out of order or twice, a MIME type too long, an MD5 that is not one, a listing past
//! [`MAX_LISTING`] entries or [`MAX_LISTING_NAMES`] bytes of names are all refused outright.
//! While the server hashes, its progress is held to [`Patience`].

use std::collections::HashSet;

use super::connect::unexpected;
use super::patience::{answer, Patience};
use crate::local::log::field;
use crate::protocol::error::{Error, Result};
use crate::protocol::limits::{ENTRIES_PER_CHUNK, MAX_LISTING, MAX_LISTING_NAMES, MAX_TYPE};
use crate::protocol::md5::Md5;
use crate::protocol::message::{Entry, Filter, Kind, ListKind, Reply, Request};
use crate::protocol::name::check_name;
use crate::wire::conn::Connection;

/// Asks for a listing of the files that pass `filter` and collects it.
///
/// # Errors
/// A remote error (bad regex), a refused name, or a broken connection.
pub fn list(conn: &mut Connection, filter: Filter, listing: ListKind) -> Result<Vec<Entry>> {
    conn.send(&Request::List { filter, listing })?;
    let mut entries = Vec::new();
    receive(conn, false, &[], &mut |e| entries.push(e))?;
    Ok(entries)
}

/// Reads the chunks of a listing up to its end, handing each entry to `each`. `folders`: whether
/// folders may be listed (a sync listing); `known`: the folders a sync listing may say are the
/// same. Returns those.
///
/// # Errors
/// A refused name, a chunk out of bounds or out of order, a miscount, a server that stalls, or
/// a broken connection.
pub fn receive(
    conn: &mut Connection,
    folders: bool,
    known: &[String],
    each: &mut dyn FnMut(Entry),
) -> Result<Vec<String>> {
    let known: HashSet<&str> = known.iter().map(String::as_str).collect();
    let (mut patience, mut count, mut last) = (Patience::new(), 0u64, None::<String>);
    let mut names = 0u64;
    let mut same: Vec<String> = Vec::new();
    loop {
        match answer(conn, &mut patience)? {
            Reply::Entries { entries } => {
                check_chunk("entries", entries.len())?;
                if count + entries.len() as u64 > MAX_LISTING {
                    let why = format!("the peer's listing has more than {MAX_LISTING} entries");
                    return Err(Error::Protocol(why));
                }
                for (i, e) in entries.iter().enumerate() {
                    let before = match i.checked_sub(1) {
                        Some(i) => Some(entries[i].path.as_str()),
                        None => last.as_deref(),
                    };
                    check_entry(e, folders, before)?;
                }
                add_names(&mut names, &entries)?;
                last = entries.last().map(|e| e.path.clone());
                patience.items(entries.len())?;
                count += entries.len() as u64;
                entries.into_iter().for_each(&mut *each);
            }
            Reply::Same { folders } => {
                check_chunk("same", folders.len())?;
                for f in &folders {
                    check_same(f, &known, same.last().map(String::as_str))?;
                    same.push(f.clone());
                }
                patience.items(folders.len())?;
            }
            Reply::End { count: announced } if announced == count => return Ok(same),
            Reply::End { count: announced } => {
                let why = format!("the listing announced {announced} entries but carried {count}");
                return Err(Error::Protocol(why));
            }
            other => return Err(unexpected(other)),
        }
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

/// An entry must pass the name rules, be a file unless folders are asked for, carry a short
/// MIME type and a real MD5 if any, and come after the one before it (paths in strictly
/// increasing byte order: no name twice).
fn check_entry(e: &Entry, folders: bool, last: Option<&str>) -> Result<()> {
    check_name(&e.path)?;
    let why = if !folders && e.kind == Kind::Dir {
        format!("unexpected folder {} in a file listing", e.path)
    } else if e.mime.len() > MAX_TYPE {
        format!("{}: a type of {} bytes", e.path, e.mime.len())
    } else if e.md5.as_deref().is_some_and(|m| m.parse::<Md5>().is_err()) {
        format!(
            "{}: {} is not an MD5",
            e.path,
            field(e.md5.as_deref().unwrap_or(""))
        )
    } else {
        return in_order("entry", &e.path, last);
    };
    Err(Error::Protocol(why))
}

/// A folder said to be the same must be one we asked about, each once, in order.
fn check_same(folder: &str, known: &HashSet<&str>, last: Option<&str>) -> Result<()> {
    if !known.contains(folder) {
        return Err(Error::Protocol(format!(
            "the peer says it has folder {} as we know it, which we did not ask about",
            field(folder)
        )));
    }
    in_order("folder", folder, last)
}

/// Names come in strictly increasing byte order: a repeat is out of order too.
fn in_order(what: &str, name: &str, last: Option<&str>) -> Result<()> {
    match last {
        Some(last) if name <= last => Err(Error::Protocol(format!(
            "the listing names {what} {} after {} (out of order, or twice)",
            field(name),
            field(last)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
