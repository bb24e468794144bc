//! Stage 3: one transfer of one file at a time in a box.
//!
//! In `with_sync` a background round and the shell share one box. Left to themselves, both would
//! fetch a file that both want, the bytes would cross the wire twice, and the second copy would
//! be thrown away ("appeared here during the round"). So a download first claims its file's name
//! here, and holds the claim until the file is installed (or not). Whoever comes second either
//! waits for the first and then only checks what it brought (the shell: [`InFlight::claim`]) or
//! leaves the file to the next round, which finds it installed (a round:
//! [`InFlight::try_claim`]: a round must not sit idle on its connection).
//!
//! The per-file locks ([`super::locks`]) are a different thing: they are held for moments (an
//! install, one reply served), this claim for a whole transfer, and only by downloads.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::util::lock;

/// How often a waiting claim asks whether to go on waiting.
const WAIT_SLICE: Duration = Duration::from_millis(200);

/// The downloads in flight in one box, by the name they install. Share it with the box.
#[derive(Debug, Default)]
pub struct InFlight {
    /// Name → who is downloading it ("a sync round", "the shell"). The name is shared with the
    /// claim (and, for a round, with its plan): a round of 40,000 downloads holds no copies.
    claims: Mutex<HashMap<Arc<str>, &'static str>>,
    /// Signalled whenever a claim is given back.
    released: Condvar,
}

/// A claim on one name; given back on drop.
#[must_use = "the claim is given back as soon as it is dropped"]
#[derive(Debug)]
pub struct Claim<'a> {
    /// Whose table.
    table: &'a InFlight,
    /// The name claimed.
    name: Arc<str>,
}

impl InFlight {
    /// No download in flight.
    pub fn new() -> Self {
        Self::default()
    }

    fn claims(&self) -> MutexGuard<'_, HashMap<Arc<str>, &'static str>> {
        lock(&self.claims)
    }

    /// Claims `name` for `who`, at once or not at all.
    ///
    /// # Errors
    /// Who holds it, if someone does.
    pub fn try_claim(&self, name: &Arc<str>, who: &'static str) -> Result<Claim<'_>, &'static str> {
        let mut claims = self.claims();
        if let Some(holder) = claims.get(name) {
            return Err(holder);
        }
        claims.insert(Arc::clone(name), who);
        let name = Arc::clone(name);
        Ok(Claim { table: self, name })
    }

    /// Claims `name` for `who`, waiting while someone else holds it for as long as
    /// `keep_waiting(holder)` says so (it is asked at once, then every 200 ms). Returns the claim
    /// and whether it had to wait: then the other transfer may have brought what we wanted.
    ///
    /// # Errors
    /// Who held it, if `keep_waiting` gave up.
    pub fn claim(
        &self,
        name: &str,
        who: &'static str,
        keep_waiting: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(Claim<'_>, bool), &'static str> {
        let mut claims = self.claims();
        let mut waited = false;
        while let Some(&holder) = claims.get(name) {
            if !keep_waiting(holder) {
                return Err(holder);
            }
            waited = true;
            claims = self
                .released
                .wait_timeout(claims, WAIT_SLICE)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let name: Arc<str> = Arc::from(name);
        claims.insert(Arc::clone(&name), who);
        Ok((Claim { table: self, name }, waited))
    }

    /// How many names are claimed (for tests).
    pub fn len(&self) -> usize {
        self.claims().len()
    }

    /// Whether no name is claimed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.table.claims().remove(&self.name);
        self.table.released.notify_all();
    }
}

#[cfg(test)]
mod tests;
