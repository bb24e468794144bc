//! Stage 3: a round's downloads that need not move whole files (`docs/blocks.md`).
//!
//! - A version this box holds already, under another name (a file the peer copied), is copied
//!   here: no byte from the peer, whatever its size.
//! - A big file (1 MiB or more, [`by_blocks_from`]) moves by blocks (`minibox::ask::blocks`):
//!   only the blocks this box does not hold cross the wire; a download cut off resumes next time.
//!   New files too, so that a first download cut off half-way resumes.
//!
//! Each is then installed exactly like a pipelined download (`super::pipeline::place`): only the
//! planned version, only over what the plan saw.

use std::collections::HashMap;
use std::fs;

use minibox::ask::blocks::{fetch_by_blocks, Fetched};
use minibox::ask::pipeline::Body;
use minibox::local::install::resolve_for_write;
use minibox::local::reuse::copy_whole;
use minibox::local::scan::Stamp;
use minibox::local::LocalBox;
use minibox::protocol::blocks::by_blocks_from;
use minibox::protocol::error::Error;
use minibox::protocol::md5::Md5;
use minibox::protocol::message::{Entry, ErrorCode, Kind};
use minibox::wire::conn::Connection;

use super::pipeline::{place, Installed};
use crate::plan::{Action, Index, Version};

/// How a download's bytes arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Way {
    /// Copied from this box's file of that name.
    Copy(String),
    /// By blocks.
    Blocks,
    /// Whole, pipelined with the other small files.
    Whole,
}

/// Where this box holds each file version (by MD5), for copies.
#[derive(Default)]
pub struct Copies {
    /// MD5 → a file of the box with those contents; made on first use.
    by_md5: Option<HashMap<Md5, String>>,
}

impl Copies {
    /// How the download `action` should go, in a box that holds `here`; `blocks`: whether the
    /// peer serves blocks.
    pub fn way(&mut self, action: &Action, here: &Index, blocks: bool) -> Way {
        let Action::Download { to, version, .. } = action else {
            return Way::Whole;
        };
        let by_md5 = self.by_md5.get_or_insert_with(|| {
            let files = here.iter().filter(|(_, v)| !v.is_dir());
            files
                .filter_map(|(p, v)| Some((v.md5?, p.clone())))
                .collect()
        });
        match version.md5.and_then(|m| by_md5.get(&m)) {
            Some(from)
                if **from != **to && here.get(from).is_some_and(|v| v.same_content(version)) =>
            {
                Way::Copy(from.clone())
            }
            _ if blocks && version.size >= by_blocks_from() => Way::Blocks,
            _ => Way::Whole,
        }
    }
}

/// Copies this box's file `from` as the download `action` wants it (see the module docs).
pub fn copy_here<'a>(
    local: &LocalBox,
    peer: &str,
    action: &'a Action,
    from: &str,
    planned: Option<&Version>,
) -> Installed<'a> {
    let Action::Download { to, version, .. } = action else {
        return Installed::new(action);
    };
    let md5 = version.md5.unwrap_or_default();
    let tmp = match copy_whole(local, from, md5, None) {
        Ok(tmp) => tmp,
        Err(e) => return Installed::failed(action, e),
    };
    let entry = Entry {
        path: to.to_string(),
        kind: Kind::File,
        size: version.size,
        mtime_ns: version.mtime_ns,
        mode: version.mode,
        mime: String::new(),
        md5: Some(md5.to_string()),
    };
    let mut out = Installed::new(action);
    out.step =
        place(local, peer, action, Body::File(tmp), entry, planned, None).map(|(_, holds)| {
            out.reused = holds.as_ref().map_or(0, |_| version.size);
            out.holds = holds;
            super::summary::Step::Done(format!("ok: copied from {from:?} here"))
        });
    out
}

/// Fetches the download `action` by blocks and installs it (see the module docs).
///
/// # Errors
/// The peer's code when it does not serve blocks (a build from before them answers
/// `bad_request` and hangs up; another may refuse them as `unsupported`): fetch it whole.
pub fn by_blocks<'a>(
    conn: &mut Connection,
    local: &LocalBox,
    peer: &str,
    action: &'a Action,
    planned: Option<&Version>,
) -> std::result::Result<Installed<'a>, ErrorCode> {
    let Action::Download { path, to, version } = action else {
        return Ok(Installed::new(action));
    };
    let fetched = fetch_by_blocks(conn, local, path, to, version.md5, &mut |_, _| {});
    let Fetched {
        tmp,
        entry,
        list,
        tally,
    } = match fetched {
        Ok(fetched) => fetched,
        Err(Error::Remote {
            code: code @ (ErrorCode::BadRequest | ErrorCode::Unsupported),
            ..
        }) => return Err(code),
        Err(e) => return Ok(Installed::failed(action, e)),
    };
    let mut out = Installed::new(action);
    let body = Body::File(tmp);
    out.step = place(local, peer, action, body, entry, planned, None).map(|(step, holds)| {
        if holds.is_some() {
            (out.received, out.reused) = (tally.received, tally.reused);
            // The block list of the installed file: it need not be read to learn it.
            if let Some(stamp) = installed_stamp(local, to, version) {
                local.hashes.blocks.put(to, stamp, list);
            }
        }
        out.holds = holds;
        step
    });
    Ok(out)
}

/// The stamp of the file just installed at `to`, if the stat cache vouches for it as `version`.
fn installed_stamp(local: &LocalBox, to: &str, version: &Version) -> Option<Stamp> {
    let at = resolve_for_write(local, to).ok()?;
    let stamp = Stamp::of(&fs::symlink_metadata(at).ok()?);
    (local.hashes.get(&stamp) == version.md5).then_some(stamp)
}
