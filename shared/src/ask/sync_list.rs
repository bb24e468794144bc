//! Stage 3: asking for the listing of a sync round, telling the peer the digests of the folders
//! we believe we know (see `crate::serve::sync_list`).

use super::list::receive;
use crate::protocol::error::Result;
use crate::protocol::message::{Entry, FolderSum, Request};
use crate::wire::conn::Connection;

/// Asks for the sync listing; each entry goes to `each` as it arrives (a listing of 100,000
/// entries never sits in memory as entries). Returns the folders the peer says are as we
/// believe: their entries are not sent.
///
/// # Errors
/// A refused name, a peer that names a folder we did not ask about, or a broken connection.
pub fn sync_list(
    conn: &mut Connection,
    known: Vec<FolderSum>,
    each: &mut dyn FnMut(Entry),
) -> Result<Vec<String>> {
    let names: Vec<String> = known.iter().map(|k| k.folder.clone()).collect();
    conn.send(&Request::SyncList { known })?;
    receive(conn, true, &names, each)
}
