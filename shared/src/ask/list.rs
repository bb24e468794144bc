//! Asking for a listing (`index …`, `hash checkall`) and reading it: chunks of entries up to
//! the end that counts them. Every name is checked by the name rules: a peer that lists `../x`
//! is refused outright.

use std::collections::HashSet;

use super::connect::unexpected;
use crate::local::log::field;
use crate::protocol::error::{Error, Result};
use crate::protocol::limits::MAX_LISTING;
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
/// A refused name, an entry out of place, a miscount, or a broken connection.
pub fn receive(
    conn: &mut Connection,
    folders: bool,
    known: &[String],
    each: &mut dyn FnMut(Entry),
) -> Result<Vec<String>> {
    let known: HashSet<&str> = known.iter().map(String::as_str).collect();
    let mut count = 0u64;
    let mut same = Vec::new();
    loop {
        match conn.recv::<Reply>()? {
            Reply::Entries { entries } => {
                if count + entries.len() as u64 > MAX_LISTING {
                    let why = format!("the peer's listing has more than {MAX_LISTING} entries");
                    return Err(Error::Protocol(why));
                }
                for e in &entries {
                    check_name(&e.path)?;
                    if !folders && e.kind == Kind::Dir {
                        let why = format!("unexpected folder {} in a file listing", e.path);
                        return Err(Error::Protocol(why));
                    }
                }
                count += entries.len() as u64;
                entries.into_iter().for_each(&mut *each);
            }
            // The peer is busy hashing: it is still there.
            Reply::Working { .. } => {}
            Reply::Same { folders } => {
                if let Some(stranger) = folders.iter().find(|f| !known.contains(f.as_str())) {
                    return Err(Error::Protocol(format!(
                        "the peer says it has folder {} as we know it, which we did not ask about",
                        field(stranger)
                    )));
                }
                same.extend(folders);
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
