//! Layer 1, the protocol: bytes and messages. No files, no sockets: everything here is a pure
//! function of its input, tested with plain values.
//!
//! | module | what it holds |
//! |---|---|
//! | [`limits`] | the numbers that bound what a peer may ask |
//! | [`frame`] | a message on a byte stream: a 5-byte header, then JSON |
//! | [`message`] | every request and reply; the index entry |
//! | [`name`] | which names may stand for a file in a box |
//! | [`md5`] | the fingerprint of a file's bytes |
//! | [`pace`] | the rule that a transfer must keep moving |
//! | [`blocks`] | big files by blocks: the block size rule, a block's MD5 |
//! | [`timestamp`] | the timestamp forms people type, and the ones minibox prints |
//! | [`error`] | the crate's error type |
//! | [`sync`] | stage 3: versions, indexes and folder digests, computed alike on both sides |

pub mod blocks;
pub mod error;
pub mod frame;
pub mod limits;
pub mod md5;
pub mod message;
pub mod name;
pub mod pace;
pub mod sync;
pub mod timestamp;

pub use error::{Error, Result};
pub use message::{Entry, ErrorCode, Filter, FolderSum, Kind, ListKind, Reply, Request};
