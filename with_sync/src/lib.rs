//! Stage 3 of 3: two boxes kept in sync, in the background.
//!
//! `with_sync` serves its box like stage 2 (the threaded server of [`minibox::threaded`]) and,
//! on a timer, runs a *sync round* against its peer: it pulls what changed there, deletes what
//! was deleted there, and keeps both versions of a conflict. The peer does the same in its own
//! rounds, and the two boxes converge. The chapter (`with_sync/README.md`) tells the story.
//!
//! | module | what it holds |
//! |---|---|
//! | [`plan`] | the decisions: a pure function of (local index, remote index, agreed state) |
//! | [`state`] | what a box remembers about each peer between rounds, written atomically |
//! | [`round`] | a round carried out: scan, list, plan, act with care, remember |
//! | [`shell`] | the rounds as the shell shows them: `sync`, `status`, lines above the prompt |
//! | `main.rs` | the command line, the background loop and the shell |

pub mod plan;
pub mod round;
pub mod shell;
pub mod state;
