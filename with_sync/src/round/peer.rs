//! The peer's box as a round sees it: what its listing sent, and, for the folders it said are
//! as we knew them, their agreed versions, read from the agreement itself. (A copy of those
//! would be a second agreement's worth of memory: for a box of 100,000 files in sync, a dozen
//! megabytes to say "the same".)

use std::collections::{BTreeSet, HashSet};

use minibox::ask::sync_list::sync_list;
use minibox::protocol::error::Result;
use minibox::protocol::limits::MAX_KNOWN;
use minibox::protocol::message::FolderSum;
use minibox::protocol::sync::{split_parent, FolderSums};
use minibox::wire::conn::Connection;

use crate::plan::{self, Agreement, Index, Side, Version};

/// The peer's box as its listing showed it.
pub struct Listing {
    /// The entries it sent, with their versions.
    pub received: Vec<(String, Version)>,
    /// The folders it said are as we knew them.
    pub same: Vec<String>,
    /// Files it listed without an MD5 (it could not read them): left alone.
    pub busy: BTreeSet<String>,
}

/// Asks the peer for its listing, telling it the folders we believe we know.
///
/// # Errors
/// A refused name, a lying listing, or a broken connection.
pub fn list_peer(conn: &mut Connection, agreed: &Agreement) -> Result<Listing> {
    let mut received = Vec::new();
    let mut busy = BTreeSet::new();
    let same = sync_list(
        conn,
        known_folders(agreed),
        &mut |entry| match Version::of_entry(&entry) {
            Some(v) => received.push((entry.path, v)),
            // Listed without an MD5: the peer could not read it. Leave it alone.
            None => {
                busy.insert(entry.path);
            }
        },
    )?;
    Ok(Listing {
        received,
        same,
        busy,
    })
}

/// The digest of every folder as the peer held it when both last agreed: a listing then
/// carries only the folders that changed there since. Nothing on a first sync, or for a box
/// with more folders than a request may name.
fn known_folders(agreed: &Agreement) -> Vec<FolderSum> {
    if agreed.is_empty() {
        return Vec::new();
    }
    let sums = FolderSums::of(agreed.iter().map(|(path, a)| (path, &a.version)));
    if sums.len() > MAX_KNOWN {
        return Vec::new();
    }
    sums.into_iter()
        .map(|(folder, md5)| FolderSum { folder, md5 })
        .collect()
}

/// The peer's whole box, as the planner reads it.
#[derive(Debug)]
pub struct Remote<'a> {
    /// What the peer sent.
    received: Index,
    /// The folders it said are the same.
    same: HashSet<String>,
    /// What both agreed on.
    agreed: &'a Agreement,
}

impl<'a> Remote<'a> {
    /// The peer's box from its listing and the agreement.
    pub fn new(received: Vec<(String, Version)>, same: Vec<String>, agreed: &'a Agreement) -> Self {
        Remote {
            received: received.into_iter().collect(),
            same: same.into_iter().collect(),
            agreed,
        }
    }

    /// Whether `path` is in a folder the peer said is the same.
    fn known(&self, path: &str) -> bool {
        !self.same.is_empty() && self.same.contains(split_parent(path).0)
    }
}

impl Side for Remote<'_> {
    fn items(&self) -> Box<dyn Iterator<Item = (&str, &Version)> + '_> {
        let sent = self.received.iter().map(|(k, v)| (k.as_str(), v));
        let known = self
            .agreed
            .iter()
            .filter(|(k, _)| self.known(k))
            .map(|(k, a)| (k.as_str(), &a.version));
        let none = std::iter::empty::<(&str, &())>;
        // Both in path order: merge. What the peer sent wins over what we believed (a peer
        // should not send a folder it said is the same, but if it does, the entry counts).
        Box::new(
            plan::walk(sent, known, none(), none())
                .filter_map(|(path, sent, known, _, _)| Some((path, sent.or(known)?))),
        )
    }

    fn version(&self, path: &str) -> Option<&Version> {
        self.received.get(path).or_else(|| {
            self.known(path)
                .then(|| self.agreed.get(path).map(|a| &a.version))
                .flatten()
        })
    }
}

#[cfg(test)]
mod tests;
