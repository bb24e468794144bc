//! Asking for a listing (`index …`, `hash checkall`) and reading it: chunks of entries up to
//! the end that counts them. Every frame is held to the [`Rules`] as it arrives (a name that
//! leaves the box, `../x`, is refused outright; so is a name twice, or a listing that grows past
//! its limits), and while the server hashes, its progress is held to [`Patience`].

use super::connect::unexpected;
use super::listing_rules::Rules;
use super::patience::{answer, Patience};
use crate::protocol::error::Result;
use crate::protocol::message::{Entry, Filter, ListKind, Reply, Request};
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
    let (mut rules, mut patience) = (Rules::new(folders, known), Patience::new());
    let mut same = Vec::new();
    loop {
        match answer(conn, &mut patience)? {
            Reply::Entries { entries } => {
                rules.entries(&entries)?;
                patience.items(entries.len())?;
                entries.into_iter().for_each(&mut *each);
            }
            Reply::Same { folders } => {
                rules.same(&folders)?;
                patience.items(folders.len())?;
                same.extend(folders);
            }
            Reply::End { count } => return rules.end(count).map(|()| same),
            other => return Err(unexpected(other)),
        }
    }
}
