//! The peer's renames: a file the peer deleted (and this box did not change) and a file new on
//! the peer (and not here) with the same contents are one file renamed or moved there. This box
//! then renames its own copy, and gives it the peer's mtime and bits: no byte crosses the wire,
//! and nothing goes to the trash, where a deletion and a download would have moved the whole
//! file and thrown the old copy away.
//!
//! The pairing only changes how the box gets there: the deletion and the download each were the
//! plan's decision already, and the rename leaves the box exactly as they would have, so both
//! peers still converge alike.

use std::collections::{BTreeSet, HashMap, VecDeque};

use minibox::protocol::md5::Md5;

use super::Action;

/// Pairs each download of a file in `came` (in the downloads' order: by path) with the first
/// deletion of a file in `gone` with the same contents (MD5 and size) not paired yet. Returns
/// the renames, and the deletions and downloads left.
pub fn pair(
    deletes: Vec<Action>,
    downloads: Vec<Action>,
    gone: &BTreeSet<&str>,
    came: &BTreeSet<&str>,
) -> (Vec<Action>, Vec<Action>, Vec<Action>) {
    let mut by_content: HashMap<(Md5, u64), VecDeque<usize>> = HashMap::new();
    for (i, d) in deletes.iter().enumerate() {
        if let Action::Delete { path, version } = d {
            if let (true, Some(md5)) = (gone.contains(path.as_str()), version.md5) {
                by_content
                    .entry((md5, version.size))
                    .or_default()
                    .push_back(i);
            }
        }
    }
    if by_content.is_empty() {
        return (Vec::new(), deletes, downloads);
    }
    let mut paired = vec![false; deletes.len()];
    let mut moves = Vec::new();
    let mut rest = Vec::with_capacity(downloads.len());
    for d in downloads {
        let found = match &d {
            Action::Download { path, to, version } if path == to && came.contains(&**to) => version
                .md5
                .and_then(|md5| by_content.get_mut(&(md5, version.size)))
                .and_then(VecDeque::pop_front)
                .map(|i| (i, to.to_string(), version.clone())),
            _ => None,
        };
        match found {
            Some((i, to, version)) => {
                paired[i] = true;
                let from = deletes[i].target().to_string();
                moves.push(Action::Move { from, to, version });
            }
            None => rest.push(d),
        }
    }
    let deletes = deletes
        .into_iter()
        .zip(paired)
        .filter(|(_, p)| !p)
        .map(|(d, _)| d)
        .collect();
    (moves, deletes, rest)
}
