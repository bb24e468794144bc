//! A round's downloads, pipelined, and installed on two threads while this one receives.
//!
//! ```text
//!  this thread:    request × 32 ahead ─▶ receive ─ verify ─▶ hand to the folder's installer
//!  install-0/1:                  temp file ─ mtime + bits ─ check the disk ─ old → trash ─ rename
//! ```
//!
//! Creating and renaming files is most of the work for a batch of small files, and a file
//! system does it for several folders at once: on two cores, receiving and two installers
//! overlap (`scripts/bench.sh`, row `first-sync-10k`). Each file is still installed only if it
//! is the planned version and what it replaces is what the plan saw; the results come back to
//! the round's books through `book`.
//!
//! A file that cannot be installed (no space left, say) fails alone: the batch goes on. Before the
//! first large file's bytes come in, the installers finish the small files before it, so that
//! the files the plan puts first really get the space first.

use std::collections::HashMap;
use std::thread::{self, Scope};

use crossbeam_channel::{Receiver, Sender};
use minibox::ask::pipeline::Listed;
use minibox::ask::pipeline::{fetch_many, Body, IN_MEMORY};
use minibox::local::install::install_over;
use minibox::local::LocalBox;
use minibox::protocol::error::{Error, Result};
use minibox::protocol::md5::Md5;
use minibox::protocol::message::{Entry, MODE_MASK};
use minibox::protocol::sync::split_parent;
use minibox::wire::conn::Connection;

use super::local::as_planned;
use super::summary::Step;
use crate::plan::{Action, Version};

/// Files handed to an installer at once: a wake-up per file was a sixth of the system calls
/// of a first sync of 10,000 small files. A batch goes when full, or when no reply waits on
/// the socket (so an installer never waits for files that are already here).
const INSTALL_BATCH: usize = 16;

/// Batches that may wait for each installer: more than a folder's worth of files, so that while
/// one installer works through a folder the receiver can already feed the other.
const INSTALL_QUEUE: usize = 128 / INSTALL_BATCH;

/// Installer threads.
pub const INSTALLERS: usize = 2;

/// A download to carry out: its action, and what the round believes stands at its destination.
pub struct Wanted<'a> {
    /// The download action.
    pub action: &'a Action,
    /// What is there now, as far as the round knows.
    pub planned: Option<Version>,
}

/// How an install went, for the round's books.
pub struct Installed<'a> {
    /// The action.
    pub action: &'a Action,
    /// How it ended.
    pub step: Result<Step>,
    /// The name and version the box now holds, if it installed.
    pub holds: Option<(String, Version)>,
    /// Why the connection is no longer usable, if this reply showed it.
    pub broke: Option<String>,
    /// File bytes received from the peer for it.
    pub received: u64,
    /// File bytes taken from this box for it.
    pub reused: u64,
}

impl<'a> Installed<'a> {
    /// Nothing happened yet.
    pub fn new(action: &'a Action) -> Self {
        Installed {
            action,
            step: Ok(Step::Logged),
            holds: None,
            broke: None,
            received: 0,
            reused: 0,
        }
    }

    /// How a download that failed before its install ended: a reply that leaves the
    /// connection in step (the peer's error: put off; bytes that did not verify, a refused name:
    /// failed), or anything else, which leaves it unusable.
    pub fn failed(action: &'a Action, e: Error) -> Self {
        let mut out = Installed::new(action);
        out.step = match e {
            // The peer answered: the file went or changed since it was listed. Next round.
            Error::Remote { message, .. } => Ok(Step::Skipped(message)),
            // A file of this box changed under the download: next round too.
            Error::LocalChange(why) => Ok(Step::Skipped(why)),
            // Bytes that did not verify (a fault or a lie), a refused name, or a file this box
            // could not store (no space left): nothing installed, the connection still in step;
            // the round counts it as failed and tries again next round.
            e @ (Error::Verify(_) | Error::Path(_) | Error::Io { .. }) => Err(e),
            e => {
                out.broke = Some(e.to_string());
                Err(e)
            }
        };
        out
    }
}

/// A fetched file on its way to an installer.
struct Job<'a> {
    wanted: Wanted<'a>,
    fetched: Result<(Body, Entry)>,
}

/// Fetches and installs `wanted`, booking each result. Returns those not reached (the
/// connection broke).
pub fn download_all<'a>(
    conn: &mut Connection,
    local: &LocalBox,
    peer: &str,
    wanted: Vec<Wanted<'a>>,
    book: &mut dyn FnMut(Installed<'a>),
) -> Vec<Wanted<'a>> {
    let files: Vec<(&str, Listed)> = wanted.iter().map(|w| listed(w.action)).collect();
    let large: Vec<bool> = wanted.iter().map(|w| is_large(w.action)).collect();
    let mut wanted: Vec<Option<Wanted<'a>>> = wanted.into_iter().map(Some).collect();
    thread::scope(|scope| {
        let mut installers = Installers::start(scope, local, peer);
        fetch_many(conn, local, &files, &mut |i, fetched, more| {
            if let Some(wanted) = wanted[i].take() {
                installers.take(Job { wanted, fetched }, more, book);
            }
            // A large file's bytes go straight to the disk, a small one's only when an installer
            // writes it: before the first large file after small ones (the plan puts them all
            // first), let those be installed, so that when space is short they get it first.
            if large.get(i) == Some(&false) && large.get(i + 1) == Some(&true) {
                installers.settle(book);
            }
        });
        installers.finish(book);
    });
    // The lanes' temporary folders are empty again: leave `.minibox/tmp/` as it was.
    for lane in 0..INSTALLERS {
        let _ = std::fs::remove_dir(local.temp_dir(Some(lane)));
    }
    wanted.into_iter().flatten().collect()
}

/// Whether a download comes back in a temporary file rather than in memory.
fn is_large(action: &Action) -> bool {
    matches!(action, Action::Download { version, .. } if version.size > IN_MEMORY)
}

/// The peer's name for a download, and what its listing said of the file.
fn listed(action: &Action) -> (&str, Listed) {
    match action {
        Action::Download { path, version, .. } => {
            let (size, md5) = (version.size, version.md5);
            (path, Listed { size, md5 })
        }
        other => (other.target(), Listed { size: 0, md5: None }),
    }
}

/// The installer threads of one batch, each fed the files of the folders it owns.
struct Installers<'s, 'a> {
    /// Each installer's queue and the batch gathering for it.
    queues: Vec<(Sender<Vec<Job<'a>>>, Vec<Job<'a>>)>,
    /// Results coming back.
    done: Receiver<Vec<Installed<'a>>>,
    /// Files handed to the installer threads whose results have not come back yet.
    out: usize,
    owners: Owners<'a>,
    local: &'s LocalBox,
    peer: &'s str,
}

impl<'s, 'a> Installers<'s, 'a> {
    fn start<'scope>(scope: &'scope Scope<'scope, '_>, local: &'s LocalBox, peer: &'s str) -> Self
    where
        's: 'scope,
        'a: 'scope,
    {
        let (done_tx, done) = crossbeam_channel::unbounded::<Vec<Installed<'a>>>();
        let mut queues = Vec::with_capacity(INSTALLERS);
        for n in 0..INSTALLERS {
            // Bounded: a slow disk makes the receiver wait, rather than pile up files.
            let (jobs_tx, jobs) = crossbeam_channel::bounded::<Vec<Job<'a>>>(INSTALL_QUEUE);
            let done = done_tx.clone();
            let installer = move || {
                for batch in jobs {
                    let results = batch
                        .into_iter()
                        .map(|job| install(local, peer, job, Some(n)));
                    let _ = done.send(results.collect());
                }
            };
            match thread::Builder::new()
                .name(format!("install-{n}"))
                .spawn_scoped(scope, installer)
            {
                Ok(_) => queues.push((jobs_tx, Vec::with_capacity(INSTALL_BATCH))),
                Err(e) => log::warn!("no installer thread ({e})"),
            }
        }
        let owners = Owners::new(queues.len());
        Installers {
            queues,
            done,
            out: 0,
            owners,
            local,
            peer,
        }
    }

    /// Takes a fetched file; `more`: the next reply has begun to arrive already.
    fn take(&mut self, job: Job<'a>, more: bool, book: &mut dyn FnMut(Installed<'a>)) {
        let owner = self.owners.of(job.wanted.action.target());
        match self.queues.get_mut(owner) {
            Some((_, pending)) => pending.push(job),
            // No installer thread: install here.
            None => book(install(self.local, self.peer, job, None)),
        }
        // Full batches go now; the rest when no reply is waiting.
        self.hand_over(|pending| pending.len() >= INSTALL_BATCH || !more, book);
        while let Ok(results) = self.done.try_recv() {
            self.book_all(results, book);
        }
    }

    /// Hands over every file taken so far and waits until each is installed (or not), booked.
    fn settle(&mut self, book: &mut dyn FnMut(Installed<'a>)) {
        self.hand_over(|_| true, book);
        while self.out > 0 {
            match self.done.recv() {
                Ok(results) => self.book_all(results, book),
                // Every installer is gone (they can only have panicked): nothing more comes.
                Err(_) => break,
            }
        }
    }

    /// Sends each installer the files gathered for it, where `now` says so; if that installer is
    /// gone (it can only have panicked), installs them on this thread.
    fn hand_over(&mut self, now: impl Fn(&[Job<'a>]) -> bool, book: &mut dyn FnMut(Installed<'a>)) {
        for (queue, pending) in &mut self.queues {
            if pending.is_empty() || !now(pending) {
                continue;
            }
            let batch = std::mem::replace(pending, Vec::with_capacity(INSTALL_BATCH));
            let count = batch.len();
            match queue.send(batch) {
                Ok(()) => self.out += count,
                Err(back) => back
                    .into_inner()
                    .into_iter()
                    .for_each(|job| book(install(self.local, self.peer, job, None))),
            }
        }
    }

    /// Books a batch of results that came back.
    fn book_all(&mut self, results: Vec<Installed<'a>>, book: &mut dyn FnMut(Installed<'a>)) {
        self.out = self.out.saturating_sub(results.len());
        results.into_iter().for_each(book);
    }

    /// Hands over what is left, lets the installers finish, books every result.
    fn finish(mut self, book: &mut dyn FnMut(Installed<'a>)) {
        self.hand_over(|_| true, book);
        let Installers { queues, done, .. } = self;
        // The queues are dropped: the installers finish what they have, then the channel closes.
        drop(queues);
        done.iter().flatten().for_each(book);
    }
}

/// Which installer installs which file: the one that owns its folder. Folders are dealt out in
/// turn as they first appear; the peer sends files sorted by path, so one folder's files come
/// together, and dealing them in turn keeps both installers equally busy (a hash of the
/// folder's name gave one of them 57 of 100 folders).
struct Owners<'a> {
    /// Folder → installer (the folder borrowed from the actions' names: not a copy per folder).
    of: HashMap<&'a str, usize>,
    installers: usize,
}

impl<'a> Owners<'a> {
    fn new(installers: usize) -> Self {
        Owners {
            of: HashMap::new(),
            installers: installers.max(1),
        }
    }

    /// The installer of `path`'s folder.
    fn of(&mut self, path: &'a str) -> usize {
        let next = self.of.len() % self.installers;
        *self.of.entry(split_parent(path).0).or_insert(next)
    }
}

/// Installs a fetched file if it is the version the plan decided on and what it replaces here
/// is still what the plan saw (on an installer thread, writing in its own `lane`).
fn install<'a>(local: &LocalBox, peer: &str, job: Job<'a>, lane: Option<usize>) -> Installed<'a> {
    let action = job.wanted.action;
    let (body, entry) = match job.fetched {
        Ok(got) => got,
        Err(e) => return Installed::failed(action, e),
    };
    let size = entry.size;
    let planned = job.wanted.planned.as_ref();
    let mut out = Installed::new(action);
    out.step = place(local, peer, action, body, entry, planned, lane).map(|(step, holds)| {
        out.received = holds.as_ref().map_or(0, |_| size);
        out.holds = holds;
        step
    });
    out
}

/// The install of a verified file; returns how it ended and what the box now holds.
///
/// # Errors
/// If the install fails for another reason than a change here (that one is put off).
pub fn place(
    local: &LocalBox,
    peer: &str,
    action: &Action,
    body: Body,
    entry: Entry,
    planned: Option<&Version>,
    lane: Option<usize>,
) -> Result<(Step, Option<(String, Version)>)> {
    let Action::Download { path, to, version } = action else {
        return Ok((Step::Skipped("not a download".into()), None));
    };
    // Install only the version the plan decided on.
    let got = entry.md5.as_deref().and_then(|m| m.parse::<Md5>().ok());
    if got != version.md5 || entry.size != version.size {
        let why = format!(
            "{path} changed on {peer} since it was listed; the next round takes the new version"
        );
        return Ok((Step::Skipped(why), None));
    }
    let md5 = version.md5.unwrap_or_default();
    let installed = Version::file(md5, entry.size, entry.mode & MODE_MASK, entry.mtime_ns);
    let entry = Entry {
        path: to.to_string(),
        ..entry
    };
    let tmp = body.into_temp(local, lane)?;
    // The transfer took time: under the file's lock, look again at what is there.
    match install_over(local, tmp, &entry, |there| {
        as_planned(local, to, planned, there)
    }) {
        Ok(_) => {
            let said = match to == path {
                true => format!("ok {} bytes", entry.size),
                false => format!("ok: {peer}'s version kept as {to:?}"),
            };
            Ok((Step::Done(said), Some((to.to_string(), installed))))
        }
        Err(Error::LocalChange(why)) => Ok((Step::Skipped(why), None)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
