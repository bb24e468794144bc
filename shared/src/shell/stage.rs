//! Stage 3: the commands a stage adds to the shell, `sync` and `status`.
//!
//! The shell of stages 1 and 2 answers them with "only available in with_sync"; `with_sync`
//! hands the shell an implementation (`with_sync::shell::Live`) with
//! [`super::Shell::with_stage`].

use super::output::Outcome;
use crate::protocol::error::Result;

/// The commands a stage adds to the shell.
pub trait StageCommands {
    /// `sync`: one round now, and what it did.
    ///
    /// # Errors
    /// Why the round failed.
    fn sync(&self) -> Result<Outcome>;

    /// `status`: the peer, the last round, the next one.
    ///
    /// # Errors
    /// None expected; the trait allows one.
    fn status(&self) -> Result<Outcome>;
}
