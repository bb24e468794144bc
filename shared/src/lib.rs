//! # minibox — the crate every stage shares
//!
//! minibox keeps two folders ("boxes") in sync over plain TCP and UDP sockets. The tutorial
//! builds it in three stages (`before_thread`, `with_thread`, `with_sync`); what they have in
//! common lives here, once, so that each stage's own code is what that stage teaches.
//!
//! ## The crate's map
//!
//! The modules are layers, read bottom-up. Each imports only from the layers below it (and from
//! its own, without circles), so a reader can stop at any floor and understand what is below.
//! `shared/tests/layers.rs` keeps it so.
//!
//! | layer | module | what it knows |
//! |---|---|---|
//! | 0 | [`util`] | a mutex that survives a panicking holder |
//! | 1 | [`protocol`] | frames, messages, names, MD5s, errors, the pace rule: no files, no sockets |
//! | 2 | [`local`] | the box on disk: the path gate, scans, installs, trash, log, locks; no sockets |
//! | 3 | [`wire`] | sockets: a TCP connection speaking frames, the handshake, UDP datagrams and windows |
//! | 4 | [`serve`] / [`ask`] | endpoints, one file per request: the server's answer / the client's question; neither imports the other |
//! | 5 | [`threaded`], [`shell`], [`cli`] | apps: stage 2's threaded server and stop signals, the shell, what every binary does at start |
//!
//! ## Which chapter reads what
//!
//! - Stage 1 (`before_thread/README.md`): `protocol`, `local` (not `fast/`, `cache`, `locks`),
//!   `wire::conn` and `wire::handshake`, the `list`, `hash` and `download` files of `serve` and
//!   `ask` (with `serve::keep_alive`, `ask::patience` and `ask::listing_rules`, which they call),
//!   and `shell`.
//! - Stage 2 (`with_thread/README.md`): `threaded`, `local::locks`, `wire::udp::demux`.
//! - Stage 3 (`with_sync/README.md`): `protocol::sync`, `serve::sync_list`, `ask::sync_list`,
//!   `ask::pipeline`, `local::inflight` with `shell::turn`, and the `with_sync` crate.
//! - The UDP chapter (`docs/udp.md`): `wire::udp`, `serve::download_udp`, `ask::download_udp`.
//! - Big files by blocks (`docs/blocks.md`): `protocol::blocks`, `serve::blocks` and
//!   `serve::range`, `local::blocks`, `local::reuse`, `local::partial`, `ask::blocks` and
//!   `ask::range`.
//! - Speed, skippable everywhere: `local::fast`, `local::cache`, `serve::fast`, `wire::sendfile`.
//!
//! The binaries of each stage are thin: they parse their command line, bind a socket, and call
//! into this crate.

pub mod ask;
pub mod cli;
pub mod local;
pub mod protocol;
pub mod serve;
pub mod shell;
pub mod threaded;
pub mod util;
pub mod wire;

pub use protocol::error::{Error, Result};
pub use protocol::limits::IDLE_TIMEOUT;
pub use protocol::name::META_DIR;
