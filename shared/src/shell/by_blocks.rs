//! `download TCP` of a file this box already has a version of: only the blocks it lacks cross
//! the wire (`docs/blocks.md`). The shell's only part of the blocks chapter; stage 1's lesson
//! can skip it and read a download as whole files.

use super::Shell;
use crate::ask::blocks::download_by_blocks;
use crate::ask::download::{download_tcp, Progress};
use crate::local::gate::open_in_box;
use crate::local::partial;
use crate::protocol::blocks::by_blocks_from;
use crate::protocol::error::{Error, Result};
use crate::protocol::message::{Entry, ErrorCode};
use crate::wire::conn::Connection;

impl Shell<'_> {
    /// Whether this box holds a big version of `name` (or a partial download of it): then only
    /// the blocks it lacks need to cross the wire (see `ask::blocks`). A small file comes whole:
    /// a block list would cost more round trips than its bytes.
    pub(super) fn has_a_version(&self, name: &str) -> bool {
        let here = open_in_box(self.local.root(), name);
        let big = here.is_ok_and(|(_, meta)| meta.len() >= by_blocks_from());
        big || partial::exists(&self.local.partial_dir(), name)
    }

    /// `download TCP` of a file this box has a version of: by blocks, or, from a peer that does
    /// not know blocks (an older build), whole, on a new connection if it hung up.
    pub(super) fn by_blocks(
        &self,
        conn: &mut Connection,
        name: &str,
        progress: Progress<'_>,
    ) -> Result<Entry> {
        match download_by_blocks(conn, &self.local, name, progress) {
            Err(Error::Remote {
                code: ErrorCode::BadRequest,
                ..
            }) => {
                *conn = self.connect()?;
                download_tcp(conn, &self.local, name, progress)
            }
            Err(Error::Remote {
                code: ErrorCode::Unsupported,
                ..
            }) => download_tcp(conn, &self.local, name, progress),
            other => other,
        }
    }
}
