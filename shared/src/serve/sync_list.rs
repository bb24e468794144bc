//! Stage 3, `sync_list`: the listing a sync round asks for. Every file and folder with its MD5,
//! except the folders whose digest the client already knows, which are only named (in `same`
//! chunks). Two boxes in sync exchange a digest per folder, not an entry per file.
//!
//! A pull-only round of the peer reads this listing, acts, and hangs up. A box that syncs wants
//! to know what its peer has *seen* of it: its [`Witness`] is told of every sync listing sent and,
//! once the connection that carried it ends cleanly, is handed that listing.

use std::collections::{HashMap, HashSet};

use super::failure::Failure;
use super::keep_alive::{to_hash, KeepAlive};
use super::list::{save_hashes, scan, Chunks};
use crate::local::scan::Scanned;
use crate::local::LocalBox;
use crate::protocol::limits::{ENTRIES_PER_CHUNK, MAX_KNOWN};
use crate::protocol::md5::Md5;
use crate::protocol::message::{ErrorCode, FolderSum, Kind, Reply};
use crate::protocol::sync::{split_parent, FolderSums, Index, Version};
use crate::wire::conn::Connection;

/// Hears what a syncing peer has seen of this box. Implemented by stage 3's sync state.
pub trait Witness: Send + Sync {
    /// A sync listing is about to be sent to `peer`; returns the moment to remember it by.
    fn listing(&self, peer: &str) -> i64;
    /// The connection that carried the listing taken at `moment` ended cleanly: `peer`'s round
    /// is over, and `entries` is exactly what it was shown.
    fn round_over(&self, peer: &str, moment: i64, entries: Index);
}

/// The last sync listing sent on one connection, for the witness.
#[derive(Default)]
pub struct Shown(Option<(i64, Index)>);

impl Shown {
    /// The connection ended cleanly: tells the witness, if there is one and it saw a listing.
    pub fn round_over(self, peer: &str, witness: Option<&dyn Witness>) {
        if let (Some(witness), Some((moment, entries))) = (witness, self.0) {
            witness.round_over(peer, moment, entries);
        }
    }
}

/// Answers a sync listing; returns the log summary. Two passes over the scan: the first finds
/// every file's MD5 and the folder digests, the second sends what the client does not know. A
/// file that cannot be read is listed without an MD5 (the peer leaves it alone) and keeps its
/// folder from ever counting as known.
///
/// # Errors
/// Too many known folders, an unreadable box (replies), or a broken connection.
pub fn answer(
    conn: &mut Connection,
    local: &LocalBox,
    known: &[FolderSum],
    witness: Option<&dyn Witness>,
    shown: &mut Shown,
) -> Result<String, Failure> {
    if known.len() > MAX_KNOWN {
        let why = format!(
            "a sync listing may name at most {MAX_KNOWN} known folders, not {}",
            known.len()
        );
        return Err(Failure::Reply(ErrorCode::BadRequest, why));
    }
    let moment = witness.map(|w| w.listing(conn.peer_name()));
    let mut alive = KeepAlive::new(0);
    let scanned = scan(local, conn, &mut alive)?;
    let (versions, digests) = versions(conn, local, &scanned, alive)?;
    let same: HashSet<&str> = known
        .iter()
        .filter(|k| digests.get(&k.folder) == Some(&k.md5))
        .map(|k| k.folder.as_str())
        .collect();
    let mut chunks = Chunks::new(conn);
    for (item, version) in scanned.iter().zip(&versions) {
        if !same.contains(split_parent(&item.path).0) {
            let mut entry = item.entry();
            entry.md5 = version.as_ref().and_then(|v| v.md5).map(|m| m.to_string());
            chunks.push(entry)?;
        }
    }
    let mut folders: Vec<&str> = same.into_iter().collect();
    folders.sort_unstable();
    for part in folders.chunks(ENTRIES_PER_CHUNK) {
        let folders = part.iter().map(|f| f.to_string()).collect();
        chunks.conn.queue(&Reply::Same { folders })?;
    }
    let count = chunks.end()?;
    if let Some(moment) = moment {
        let seen = scanned
            .iter()
            .zip(versions)
            .filter_map(|(item, v)| Some((item.path.clone(), v?)));
        shown.0 = Some((moment, seen.collect()));
    }
    Ok(format!("{count} entries, {} folders known", folders.len()))
}

/// Each folder's digest.
type FolderDigests = HashMap<String, Md5>;

/// Every item's version (`None` for a file that cannot be read) and every folder's digest,
/// saying "still working" through `alive` while files are hashed (bytes hashed of the bytes to
/// hash).
fn versions(
    conn: &mut Connection,
    local: &LocalBox,
    scanned: &[Scanned],
    mut alive: KeepAlive,
) -> Result<(Vec<Option<Version>>, FolderDigests), Failure> {
    let mut versions = Vec::with_capacity(scanned.len());
    let mut sums = FolderSums::new();
    alive.to_hash(to_hash(local, scanned.iter()));
    for item in scanned {
        let version = match item.kind {
            Kind::Dir => Some(item.version(None)),
            Kind::File => alive
                .md5_of(conn, local, item)?
                .map(|md5| item.version(Some(md5))),
        };
        match &version {
            Some(v) => sums.add(&item.path, v),
            None => sums.add_unknown(&item.path),
        }
        versions.push(version);
    }
    save_hashes(local);
    Ok((versions, sums.finish()))
}
