//! Stage 3: a shell download of a file that a sync round of the same box is fetching waits for
//! the round, then checks what it brought instead of sending for the bytes again (see
//! `local::inflight`). In stages 1 and 2 nobody else downloads: the claim is taken at once.

use std::io::{self, IsTerminal};

use super::{Mode, Shell};
use crate::ask::hash::hash;
use crate::local::gate::open_in_box;
use crate::local::inflight::Claim;
use crate::local::scan::{entry_of, Stamp};
use crate::local::LocalBox;
use crate::protocol::error::{Error, Result};
use crate::protocol::message::{Entry, MODE_MASK};

impl Shell<'_> {
    /// Claims `name` for a download, waiting while a round of this box fetches it (unless the
    /// process is stopping). Returns the claim, and the peer's entry if, once we waited, this
    /// box holds the peer's version already: then there is nothing left to fetch.
    ///
    /// # Errors
    /// [`Error::Interrupted`] if the process stopped while we waited; a failed `hash` request.
    pub(super) fn take_turn(&self, name: &str) -> Result<(Claim<'_>, Option<Entry>)> {
        let mut told = false;
        let claimed = self.local.inflight.claim(name, "the shell", &mut |holder| {
            if self.interrupt.as_ref().is_some_and(|i| i.is_stopped()) {
                return false;
            }
            if !told && self.mode == Mode::Human && io::stderr().is_terminal() {
                eprintln!("{name}: {holder} is downloading it; waiting for it");
            }
            told = true;
            true
        });
        let (claim, waited) = claimed.map_err(|holder| {
            Error::Interrupted(format!(
                "stopped while {holder} was downloading {name}; nothing was fetched"
            ))
        })?;
        if !waited {
            return Ok((claim, None));
        }
        // The peer's version now, MD5 included: a few dozen bytes instead of the file.
        let theirs = hash(&mut self.connect()?, name)?;
        Ok((claim, holds(&self.local, &theirs).then_some(theirs)))
    }
}

/// Whether this box's file `theirs.path` is the version `theirs` describes: the same bytes,
/// size, mtime and permission bits. (After an install the MD5 comes from the stat cache.)
fn holds(local: &LocalBox, theirs: &Entry) -> bool {
    let Ok((file, meta)) = open_in_box(local.root(), &theirs.path) else {
        return false;
    };
    let ours = entry_of(&theirs.path, &meta);
    let same_meta = meta.is_file()
        && ours.size == theirs.size
        && ours.mtime_ns == theirs.mtime_ns
        && ours.mode & MODE_MASK == theirs.mode & MODE_MASK;
    let md5 = local
        .hashes
        .md5_of_open(&theirs.path, &file, Stamp::of(&meta), &mut |_, _| Ok(()));
    same_meta && md5.is_ok_and(|md5| theirs.md5.as_deref() == Some(md5.to_string().as_str()))
}
