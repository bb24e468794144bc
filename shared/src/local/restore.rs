//! `trash restore PATH`: the newest trashed version of a file put back under its name.
//!
//! Nothing is lost on the way either: what stands at the name now goes to the trash first (after
//! the version to restore was chosen, so that it is not chosen instead). The file keeps the
//! bytes, mtime and permission bits it had; with_sync then sees a changed file, like any edit,
//! and the peer pulls it in its next round.

use std::fs;
use std::io;

use super::local_box::LocalBox;
use super::trash::{gate_error, Trashed};
use crate::protocol::error::{Error, Result};
use crate::protocol::limits::IDLE_TIMEOUT;
use crate::protocol::name::check_name;

/// Puts the newest trashed version of `name` back; returns it, at its old place in the trash.
///
/// # Errors
/// A refused name, nothing of that name in the trash, a folder standing at the name, a busy
/// file, or a disk error.
pub fn restore(local: &LocalBox, name: &str) -> Result<Trashed> {
    check_name(name)?;
    let newest = local.trash.list().into_iter().find(|t| t.path == name);
    let Some(item) = newest else {
        return Err(Error::Usage(format!(
            "{name} is not in the trash; trash list shows what is"
        )));
    };
    let busy = || Error::Timeout(format!("{name} stayed busy; nothing was restored"));
    let _guard = local.locks.write(name, IDLE_TIMEOUT).ok_or_else(busy)?;
    let root = local.root();
    let (dest, there) =
        super::gate::resolve_at(root, name).map_err(|e| gate_error(root, name, e))?;
    match there {
        Some(meta) if meta.is_dir() => {
            return Err(Error::Usage(format!(
                "{name} is a folder here; move it away first"
            )))
        }
        Some(_) => {
            local.trash.take(root, name)?;
        }
        None => {}
    }
    let moved = match fs::rename(&item.location, &dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && item.location.exists() => dest
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::rename(&item.location, &dest)),
        other => other,
    };
    moved.map_err(|e| Error::io(&dest, e))?;
    Ok(item)
}

#[cfg(test)]
mod tests;
