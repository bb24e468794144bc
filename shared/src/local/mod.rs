//! Layer 2, the box on disk: names made paths, scans, MD5s, installs, the trash, the log and
//! the locks. No sockets: everything here works on this machine's files.
//!
//! | module | what it holds |
//! |---|---|
//! | [`gate`] | the path gate: no name leads out of the box |
//! | [`scan`] | what is in a box: files, folders, their stamps |
//! | [`filter`] | the `shortlist` and `regex` filters |
//! | [`local_box`] | the box a process owns, shared by its threads |
//! | [`sink`] | received bytes into a file and an MD5 in one pass |
//! | [`install`] | a verified download renamed into place, atomically |
//! | [`partial`] | big files: a download by blocks kept across failures, to resume |
//! | [`reuse`] | big files: which blocks of a new version this box holds already |
//! | [`trash`] | where replaced and deleted files go, listed newest first, kept `--trash-days` |
//! | [`restore`] | a trashed file put back under its name |
//! | [`conflicts`] | the conflict copies in a box (stage 3 names them) |
//! | [`log`] | `.minibox/log`, one line per request and action |
//! | [`locks`] | stage 2: one reader/writer lock per file |
//! | [`inflight`] | stage 3: one download of a file at a time (a round and the shell) |
//! | [`auth`] | optional: the shared secret (`--secret-file`) |
//! | [`atomic`] | a small file of `.minibox/` written whole or not at all |
//! | [`cache`] | speed: MD5s of files that did not change |
//! | [`blocks`] | big files: the block lists of files that did not change |
//! | [`fast`] | speed: the same jobs with fewer copies and system calls; skippable |

pub mod atomic;
pub mod auth;
pub mod blocks;
pub mod cache;
pub mod conflicts;
pub mod fast;
pub mod filter;
pub mod gate;
pub mod inflight;
pub mod install;
pub mod local_box;
pub mod locks;
pub mod log;
pub mod partial;
pub mod restore;
pub mod reuse;
pub mod scan;
pub mod sink;
pub mod trash;

pub use local_box::LocalBox;
