//! Carrying a plan out, action by action, each after checking that the file is still the
//! version the plan saw. Nothing here overwrites or deletes in place: what is replaced or
//! deleted goes to the trash, and a download becomes visible under its name only by an atomic
//! rename. A file the user touched meanwhile is left alone and reconsidered next round.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, FileTimes, Permissions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use minibox::local::fast::sys::rename_if_free;
use minibox::local::inflight::Claim;
use minibox::local::install::{resolve_for_write, system_time};
use minibox::local::log::made;
use minibox::local::scan::Stamp;
use minibox::local::LocalBox;
use minibox::protocol::blocks::BY_BLOCKS;
use minibox::protocol::error::{Error, Result};
use minibox::protocol::message::{ErrorCode, MODE_MASK};
use minibox::protocol::timestamp::rfc3339;
use minibox::wire::conn::Connection;

use super::blocks::{by_blocks, copy_here, Copies, Way};
use super::local::{as_planned, lock, on_disk};
use super::pipeline::{download_all, Installed, Wanted};
use super::summary::{describe, Step, Summary};
use crate::plan::{Action, Index, Version};

/// The files a batch of downloads has claimed (see `local::inflight`), by name.
type Claims<'c> = HashMap<&'c str, Claim<'c>>;

/// A round in progress: what it believes the box holds now, updated action by action.
pub struct Run<'a> {
    /// This box.
    pub local: &'a LocalBox,
    /// The peer's name.
    pub peer: &'a str,
    /// How the log names the peer for what this round does (`-> box1`).
    pub who: String,
    /// This box as the round left it so far: the plan's view plus what succeeded. A file on
    /// disk is still the version listed here if the stat cache vouches for its stamp.
    pub after: Index,
    /// Folders made this round whose own bits would stop us from filling them, with the bits
    /// they get at the end of the round.
    new_folders: Vec<(String, u32)>,
    /// Set when the connection broke: the remaining downloads are put off.
    network_down: Option<String>,
    /// Set when it broke because the peer's answer was refused at once (a header that
    /// contradicts the listing, say): the peer is there, and a new connection goes on.
    refused: bool,
    /// Where this box holds each version, for downloads that are copies.
    copies: Copies,
    /// Set when the peer turned out not to serve blocks: big files come whole.
    plain_only: bool,
    /// Opens a new connection to the peer (after a refused answer, or a peer that does not know
    /// blocks and hung up on them).
    reconnect: Option<&'a dyn Fn() -> Result<Connection>>,
    /// The counts so far.
    pub summary: Summary,
    /// Each failed action's log "what" and error, for the warnings on stderr.
    pub failed: BTreeMap<String, String>,
}

impl<'a> Run<'a> {
    /// A round about to act on `local`, which the plan saw as `after`.
    pub fn new(local: &'a LocalBox, peer: &'a str, after: Index, summary: Summary) -> Self {
        Run {
            local,
            peer,
            who: made(peer),
            after,
            new_folders: Vec::new(),
            network_down: None,
            refused: false,
            copies: Copies::default(),
            plain_only: false,
            reconnect: None,
            summary,
            failed: BTreeMap::new(),
        }
    }

    /// Lets the round open a new connection with `connect` when it must: the peer's answer to a
    /// download was refused at once, or the peer hung up on a request for blocks.
    pub fn reconnecting(mut self, connect: &'a dyn Fn() -> Result<Connection>) -> Self {
        self.reconnect = Some(connect);
        self
    }

    /// Carries out `actions` in order; a run of downloads goes as one pipelined batch.
    pub fn carry_out(
        &mut self,
        conn: &mut Connection,
        actions: &[Action],
        stopped: &dyn Fn() -> bool,
    ) {
        let mut rest = actions;
        while let Some(first) = rest.first() {
            if stopped() {
                break;
            }
            let is_download = |a: &Action| matches!(a, Action::Download { .. });
            let batch = match is_download(first) {
                true => rest
                    .iter()
                    .position(|a| !is_download(a))
                    .unwrap_or(rest.len()),
                false => 1,
            };
            if is_download(first) {
                self.downloads(conn, &rest[..batch]);
            } else {
                let step = self.step(first);
                self.finish(first, step);
            }
            rest = &rest[batch..];
        }
        self.finish_folders();
    }

    /// Logs and counts how an action ended.
    fn finish(&mut self, action: &Action, step: Result<Step>) {
        let what = describe(action);
        match step {
            Ok(Step::Done(outcome)) => {
                self.summary.count(action);
                self.local.log.defer(&self.who, &what, &outcome);
            }
            Ok(Step::Logged) => {}
            Ok(Step::Skipped(why)) => {
                self.summary.skipped += 1;
                self.local
                    .log
                    .defer(&self.who, &what, &format!("put off: {why}"));
            }
            Err(e) => {
                self.summary.note_failure(&what, &e);
                self.local
                    .log
                    .defer(&self.who, &what, &format!("failed: {e}"));
                self.failed.insert(what, e.to_string());
            }
        }
    }

    fn step(&mut self, action: &Action) -> Result<Step> {
        let target = action.target();
        if let Err(why) = self.still_here(target) {
            return Ok(Step::Skipped(why));
        }
        match action {
            Action::Rename { from, to, version } => self.rename(from, to, version),
            Action::Delete { path, .. } => self.delete(path),
            Action::RemoveDir { path } => self.remove_dir(path),
            Action::MakeDir { path, mode } => self.make_dir(path, *mode),
            Action::SetMeta {
                path,
                mode,
                mtime_ns,
                ..
            } => self.set_meta(path, *mode, *mtime_ns),
            Action::Move { from, to, version } => self.move_file(from, to, version),
            Action::Download { .. } => {
                Ok(Step::Skipped("a download goes through its batch".into()))
            }
        }
    }

    /// Checks that `path` on disk is what the round believes is there; returns why not.
    fn still_here(&self, path: &str) -> std::result::Result<(), String> {
        let disk = on_disk(self.local, path)?;
        as_planned(self.local, path, self.after.get(path), disk.as_ref())
    }

    /// Records that the file `path` now holds `version`, and tells the stat cache (if the file
    /// is still the one the round wrote: same inode and size), so the next scan does not read it.
    fn now_holds(&mut self, path: &str, version: Version, inode: Option<u64>) {
        let at = resolve_for_write(self.local, path).ok();
        let stamp = at
            .and_then(|p| fs::symlink_metadata(p).ok())
            .map(|m| Stamp::of(&m));
        if let (Some(stamp), Some(md5)) = (stamp, version.md5) {
            if inode.is_none_or(|i| i == stamp.inode) && stamp.size == version.size {
                self.local.hashes.put(stamp, md5);
            }
        }
        self.after.insert(path.to_string(), version);
    }

    /// Our version of `from` lost a conflict: it becomes the conflict copy `to`.
    fn rename(&mut self, from: &str, to: &str, version: &Version) -> Result<Step> {
        if let Err(why) = self.still_here(to) {
            return Ok(Step::Skipped(why));
        }
        let (_a, _b) = (lock(self.local, from)?, lock(self.local, to)?);
        let src = resolve_for_write(self.local, from)?;
        let dst = resolve_for_write(self.local, to)?;
        let inode = fs::symlink_metadata(&src).ok().map(|m| Stamp::of(&m).inode);
        fs::rename(&src, &dst).map_err(|e| Error::io(&src, e))?;
        self.after.remove(from);
        self.now_holds(to, version.clone(), inode);
        Ok(Step::Done(format!("ok: our version kept as {to:?}")))
    }

    /// The peer renamed a file whose contents we hold at `from`: rename ours to `to` (never
    /// over something that appeared there), with the peer's mtime and bits.
    fn move_file(&mut self, from: &str, to: &str, version: &Version) -> Result<Step> {
        if let Err(why) = self.still_here(from) {
            return Ok(Step::Skipped(why));
        }
        let (_a, _b) = (lock(self.local, from)?, lock(self.local, to)?);
        let src = resolve_for_write(self.local, from)?;
        let dst = resolve_for_write(self.local, to)?;
        let before = fs::symlink_metadata(&src).map(|m| Stamp::of(&m)).ok();
        // Never over something that appeared at `to`: the kernel checks, or we look.
        if !rename_if_free(&src, &dst).map_err(|e| Error::io(&dst, e))? {
            if fs::symlink_metadata(&dst).is_ok() {
                return Ok(Step::Skipped(format!(
                    "{to} appeared here during the round"
                )));
            }
            // The folder is there unless its making failed: then make it, as a download would.
            let renamed = match fs::rename(&src, &dst) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => dst
                    .parent()
                    .map_or(Ok(()), fs::create_dir_all)
                    .and_then(|()| fs::rename(&src, &dst)),
                other => other,
            };
            renamed.map_err(|e| Error::io(&dst, e))?;
        }
        let file = File::open(&dst).map_err(|e| Error::io(&dst, e))?;
        let bits = Permissions::from_mode(version.mode & MODE_MASK);
        let times = FileTimes::new().set_modified(system_time(version.mtime_ns));
        file.set_permissions(bits)
            .and_then(|()| file.set_times(times))
            .map_err(|e| Error::io(&dst, e))?;
        let after = file.metadata().map(|m| Stamp::of(&m)).ok();
        // The blocks are the same: the block list follows the file to its new stamp.
        if let (Some(b), Some(a), true) = (before, after, version.size >= BY_BLOCKS) {
            if let Some(list) = self.local.hashes.blocks.get(&b) {
                self.local.hashes.blocks.put(to, a, list);
            }
        }
        self.after.remove(from);
        self.now_holds(to, version.clone(), after.map(|a| a.inode));
        Ok(Step::Done(format!("ok: renamed from {from:?}")))
    }

    fn delete(&mut self, path: &str) -> Result<Step> {
        let _lock = lock(self.local, path)?;
        let to = self.local.trash.take(self.local.root(), path)?;
        self.after.remove(path);
        Ok(Step::Done(format!("ok: moved to {}", self.shown(&to))))
    }

    fn remove_dir(&mut self, path: &str) -> Result<Step> {
        let dir = resolve_for_write(self.local, path)?;
        let empty = fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .next()
            .is_none();
        if !empty {
            return Ok(Step::Skipped(format!("{path} is not empty here")));
        }
        self.delete(path)
    }

    /// Makes a folder with its own bits at once (the peer may list us at any moment, and must
    /// not take a default mode for a choice), unless they would stop us from filling it: those
    /// are set at the end of the round.
    fn make_dir(&mut self, path: &str, mode: u32) -> Result<Step> {
        let dir = resolve_for_write(self.local, path)?;
        let fillable = mode & 0o700 == 0o700;
        let now = if fillable { mode } else { 0o700 };
        let made = fs::DirBuilder::new().mode(now).create(&dir);
        made.and_then(|()| fs::set_permissions(&dir, Permissions::from_mode(now)))
            .map_err(|e| Error::io(&dir, e))?;
        self.after.insert(path.to_string(), Version::dir(now));
        if !fillable {
            self.new_folders.push((path.to_string(), mode));
        }
        Ok(Step::Done("ok".into()))
    }

    fn set_meta(&mut self, path: &str, mode: Option<u32>, mtime_ns: Option<i64>) -> Result<Step> {
        let _lock = lock(self.local, path)?;
        let target = resolve_for_write(self.local, path)?;
        let mut done = Vec::new();
        if let Some(mode) = mode {
            let bits = Permissions::from_mode(mode & MODE_MASK);
            fs::set_permissions(&target, bits).map_err(|e| Error::io(&target, e))?;
            done.push(format!("bits {mode:03o}"));
        }
        if let Some(mtime) = mtime_ns {
            let times = FileTimes::new().set_modified(system_time(mtime));
            File::open(&target)
                .and_then(|f| f.set_times(times))
                .map_err(|e| Error::io(&target, e))?;
            done.push(format!("mtime {}", rfc3339(mtime)));
        }
        if let Some(mut v) = self.after.get(path).cloned() {
            v.mode = mode.unwrap_or(v.mode);
            v.mtime_ns = mtime_ns.unwrap_or(v.mtime_ns);
            let inode = fs::symlink_metadata(&target)
                .ok()
                .map(|m| Stamp::of(&m).inode);
            self.now_holds(path, v, inode);
        }
        Ok(Step::Done(format!("ok: {}", done.join(", "))))
    }

    /// Fetches and installs a run of downloads, except those that cannot go now: copies of
    /// versions this box holds and big files by blocks (see `super::blocks`), the others
    /// pipelined (see `super::pipeline`).
    fn downloads(&mut self, conn: &mut Connection, actions: &[Action]) {
        let (mut whole, mut big) = (Vec::with_capacity(actions.len()), Vec::new());
        // Each file this batch fetches, claimed until it is booked (see `local::inflight`).
        let mut claims = HashMap::new();
        for action in actions {
            let Action::Download { to, .. } = action else {
                continue;
            };
            let put_off = match &self.network_down {
                Some(why) => Some(format!("the connection broke: {why}")),
                None if self.after.get(&**to).is_some_and(Version::is_dir) => {
                    Some(format!("{to} is still a folder here"))
                }
                // The shell may be fetching it now: the bytes cross once, and the next round
                // finds the file here.
                None => match self.local.inflight.try_claim(to, "a sync round") {
                    Ok(claim) => {
                        claims.insert(&**to, claim);
                        None
                    }
                    Err(holder) => Some(format!("{holder} is downloading it now")),
                },
            };
            if let Some(why) = put_off {
                self.finish(action, Ok(Step::Skipped(why)));
                continue;
            }
            let planned = self.after.get(&**to).cloned();
            let wanted = Wanted { action, planned };
            match self.copies.way(action, &self.after, !self.plain_only) {
                Way::Copy(from) => {
                    let (local, peer, planned) = (self.local, self.peer, wanted.planned.as_ref());
                    self.book_install(copy_here(local, peer, action, &from, planned));
                    claims.remove(&**to);
                }
                Way::Blocks => big.push(wanted),
                Way::Whole => whole.push(wanted),
            }
        }
        // Small files first, as the plan ordered them: on a short disk they are the ones that
        // fit. Then the big files by blocks, and whole those the peer would not send by blocks.
        self.pipelined(conn, whole, &mut claims);
        let refused = self.by_blocks(conn, big);
        self.pipelined(conn, refused, &mut claims);
    }

    /// Fetches big files by blocks, one after the other; returns those to fetch whole (the
    /// peer does not serve blocks: an older build, which hangs up after saying so).
    fn by_blocks<'b>(&mut self, conn: &mut Connection, big: Vec<Wanted<'b>>) -> Vec<Wanted<'b>> {
        let mut whole = Vec::new();
        for w in big {
            if self.plain_only || self.network_down.is_some() {
                whole.push(w);
                continue;
            }
            match by_blocks(conn, self.local, self.peer, w.action, w.planned.as_ref()) {
                Ok(done) => self.book_install(done),
                Err(code) => {
                    log::info!("{} serves no blocks ({code:?}): whole files", self.peer);
                    self.plain_only = true;
                    if code == ErrorCode::BadRequest {
                        self.connect_again(conn);
                    }
                    whole.push(w);
                }
            }
        }
        whole
    }

    /// Opens a new connection in place of `conn`, which the peer closed.
    fn connect_again(&mut self, conn: &mut Connection) {
        match self.reconnect.map(|connect| connect()) {
            Some(Ok(fresh)) => *conn = fresh,
            Some(Err(e)) => self.network_down = Some(e.to_string()),
            None => self.network_down = Some("the peer hung up".into()),
        }
    }

    /// Fetches and installs `wanted`, pipelined (see `super::pipeline`).
    fn pipelined(&mut self, conn: &mut Connection, wanted: Vec<Wanted<'_>>, claims: &mut Claims) {
        if let Some(why) = self.network_down.clone() {
            for w in wanted {
                let why = format!("the connection broke: {why}");
                self.finish(w.action, Ok(Step::Skipped(why)));
            }
            return;
        }
        let (local, peer) = (self.local, self.peer);
        let mut left = wanted;
        while !left.is_empty() {
            left = download_all(conn, local, peer, left, &mut |r| {
                let to = r.action.target();
                self.book_install(r);
                claims.remove(to);
            });
            if left.is_empty() || !self.go_on(conn) {
                break;
            }
        }
        for wanted in left {
            let why = self.network_down.clone().unwrap_or_default();
            let why = format!("the connection broke: {why}");
            self.finish(wanted.action, Ok(Step::Skipped(why)));
        }
    }

    /// After the connection broke: whether a new one goes on with the downloads left. Only if
    /// the peer's answer was refused at once (each such refusal costs the peer one download, so
    /// a liar cannot keep the round reconnecting), never after a peer that went silent.
    fn go_on(&mut self, conn: &mut Connection) -> bool {
        let Some(connect) = self.reconnect.filter(|_| std::mem::take(&mut self.refused)) else {
            return false;
        };
        match connect() {
            Ok(fresh) => {
                // A reset, not a close: the peer must not take this for the end of our round.
                std::mem::replace(conn, fresh).abort();
                self.network_down = None;
                true
            }
            Err(e) => {
                self.network_down = Some(e.to_string());
                false
            }
        }
    }

    /// Records how an install ended: the log line, the counts, what the box holds now.
    fn book_install(&mut self, result: Installed<'_>) {
        if let Some(why) = result.broke {
            self.network_down.get_or_insert(why);
            self.refused |= matches!(result.step, Err(Error::Protocol(_) | Error::Frame(_)));
        }
        self.summary.tally(result.received, result.reused);
        if let Some((path, version)) = result.holds {
            self.after.insert(path, version);
        }
        self.finish(result.action, result.step);
    }

    /// Gives the read-only folders made this round their own bits, deepest first (a read-only
    /// folder can only be filled before it becomes read-only).
    fn finish_folders(&mut self) {
        let mut folders = std::mem::take(&mut self.new_folders);
        folders.sort_by_key(|(p, _)| std::cmp::Reverse(p.matches('/').count()));
        for (path, mode) in folders {
            let result = resolve_for_write(self.local, &path).and_then(|dir| {
                let bits = Permissions::from_mode(mode & MODE_MASK);
                fs::set_permissions(&dir, bits).map_err(|e| Error::io(&dir, e))
            });
            match result {
                Ok(()) => {
                    self.after.insert(path, Version::dir(mode));
                }
                Err(e) => {
                    self.summary.failed += 1;
                    let what = format!("sync folder bits {path:?}");
                    self.local
                        .log
                        .defer(&self.who, &what, &format!("failed: {e}"));
                }
            }
        }
    }

    /// A path inside the box, shown relative to it.
    fn shown(&self, path: &Path) -> String {
        path.strip_prefix(self.local.root())
            .unwrap_or(path)
            .display()
            .to_string()
    }
}
