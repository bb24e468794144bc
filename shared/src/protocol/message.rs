//! Every message two boxes exchange: one enum for requests, one for replies.
//!
//! A connection opens with a handshake ([`Request::Hello`] / [`Reply::Hello`]) in which each side
//! tells its name. Then the client sends requests, one at a time, and reads each reply in full.
//! Listings arrive as [`Reply::Entries`] chunks closed by [`Reply::End`]; a file arrives as raw
//! bytes after a [`Reply::File`] header, closed by a [`Reply::Trailer`] carrying its MD5.
//! `docs/PROTOCOL.md` says the same for someone writing a client in another language.

use serde::{Deserialize, Serialize};

use super::md5::Md5;
use super::timestamp::rfc3339;

/// The permission bits minibox keeps: `rwx` for user, group and other (never setuid, setgid or
/// sticky).
pub const MODE_MASK: u32 = 0o777;

/// A request from a client to a box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// First message of every connection: who is asking.
    Hello {
        /// The client's name.
        name: String,
    },
    /// List the box's files (`index …`, `hash checkall`).
    List {
        /// Which files.
        filter: Filter,
        /// What to say of each.
        #[serde(default)]
        listing: ListKind,
    },
    /// Stage 3: every file and folder with MD5s, except the folders the client already knows
    /// (see [`crate::protocol::sync::FolderSums`]).
    SyncList {
        /// Folders and their digests as the client believes the server holds them.
        #[serde(default)]
        known: Vec<FolderSum>,
    },
    /// One file's MD5 and metadata.
    Hash {
        /// The file's path in the box, `/`-separated.
        path: String,
    },
    /// Send a file over this TCP connection.
    Download {
        /// The file's path in the box.
        path: String,
    },
    /// Send a file over UDP; this connection carries the metadata and the verdict.
    DownloadUdp {
        /// The file's path in the box.
        path: String,
    },
    /// The client's answer to a [`Reply::Challenge`] (see [`crate::wire::auth`]).
    Prove {
        /// The client's fresh nonce, hex.
        nonce: String,
        /// HMAC-SHA-256 over the handshake, hex.
        proof: String,
    },
    /// During a UDP download: the client holds every block and waits for the trailer.
    UdpReceived {
        /// The transfer's token.
        token: u64,
    },
    /// Big files by blocks: a file's block size and the MD5 of each block
    /// (see [`crate::protocol::blocks`]).
    Blocks {
        /// The file's path in the box.
        path: String,
    },
    /// Big files by blocks: the raw bytes of blocks `first .. first + count` of the version of a
    /// file whose MD5 is `md5` (none: only whether that version is still there).
    Range {
        /// The file's path in the box.
        path: String,
        /// The whole file's MD5: the version the blocks must come from.
        md5: Md5,
        /// The first block.
        first: u64,
        /// How many blocks.
        count: u64,
    },
}

/// What a [`Request::List`] says of each file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    /// Path, size, mtime, permission bits and type (`index`).
    #[default]
    Index,
    /// The same with each file's MD5 (`hash checkall`; the server may have to read files).
    Hashes,
}

/// A folder and the digest of what is directly in it (see [`crate::protocol::sync`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderSum {
    /// The folder's path; `""` for the top of the box.
    pub folder: String,
    /// The digest.
    pub md5: Md5,
}

/// Which files a [`Request::List`] asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Filter {
    /// Everything.
    All,
    /// Files whose mtime lies in `[start_ns, end_ns]`, ns since the Unix epoch.
    Modified {
        /// Start of the range (inclusive).
        start_ns: i64,
        /// End of the range (inclusive).
        end_ns: i64,
    },
    /// Files whose path matches the regular expression (unanchored).
    Regex {
        /// Rust `regex` syntax.
        pattern: String,
    },
}

/// A reply from a box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// Answer to [`Request::Hello`].
    Hello {
        /// The server's name.
        name: String,
    },
    /// Answer to a hello from a box that wants the shared secret proved first.
    Challenge {
        /// The server's name.
        name: String,
        /// The server's fresh nonce, hex.
        nonce: String,
    },
    /// The end of an authenticated handshake: the server's own proof.
    Welcome {
        /// HMAC-SHA-256 over the handshake, hex.
        proof: String,
    },
    /// A chunk of a listing.
    Entries {
        /// At most [`crate::protocol::limits::ENTRIES_PER_CHUNK`] entries.
        entries: Vec<Entry>,
    },
    /// Stage 3: folders of a sync listing whose digest matched the client's (not sent).
    Same {
        /// At most [`crate::protocol::limits::ENTRIES_PER_CHUNK`] folder paths.
        folders: Vec<String>,
    },
    /// The server is still preparing the answer: `done` of `total` bytes hashed, or, while it
    /// reads its folder tree, the `scanned` files and folders so far (see [`crate::ask::patience`]).
    Working {
        /// Bytes hashed so far.
        done: u64,
        /// Bytes to hash in all (0: nothing to count yet).
        total: u64,
        /// Files and folders of its box read so far (0: not scanning, and left out on the wire).
        #[serde(default, skip_serializing_if = "is_zero")]
        scanned: u64,
    },
    /// The end of a listing.
    End {
        /// How many entries were sent, a check against lost chunks.
        count: u64,
    },
    /// Answer to [`Request::Hash`].
    Entry {
        /// The file, with its MD5.
        entry: Entry,
    },
    /// Header of a TCP download: exactly `entry.size` raw bytes follow, then a trailer.
    File {
        /// The file as it was when the transfer began (`md5` set if the server knew it).
        entry: Entry,
    },
    /// Header of a UDP download (see `docs/PROTOCOL.md`).
    UdpOffer {
        /// The file as it was when the transfer began.
        entry: Entry,
        /// The token every datagram of this transfer carries (below 2^53).
        token: u64,
        /// Payload bytes per datagram; every block has this size but the last.
        block_size: u32,
    },
    /// Header of a block list: `block_sums` chunks follow, then a trailer with the whole
    /// file's MD5 (or a `changed` error).
    BlockList {
        /// The file as it was when the list began (`md5` set if the server knew it).
        entry: Entry,
        /// Bytes per block (the last block may be shorter).
        block_size: u64,
    },
    /// A chunk of a block list: the next blocks' MD5s, in order.
    BlockSums {
        /// At most [`crate::protocol::blocks::SUMS_PER_CHUNK`] MD5s.
        md5s: Vec<Md5>,
    },
    /// Header of a range: exactly `size` raw bytes follow, then a trailer with the whole file's
    /// MD5 (or a `changed` error).
    Range {
        /// The first block.
        first: u64,
        /// How many blocks.
        count: u64,
        /// Their bytes in all.
        size: u64,
    },
    /// End of a transfer: the MD5 of the bytes the server read.
    Trailer {
        /// Lowercase hex MD5.
        md5: String,
    },
    /// The request failed; the connection stays usable.
    Error {
        /// What kind of failure.
        code: ErrorCode,
        /// One sentence for the user.
        message: String,
    },
}

/// The kinds of failure a box reports, so a client can branch without parsing sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No such file (or not a regular file).
    NotFound,
    /// The name is not a clean relative path inside the box.
    BadPath,
    /// The request was malformed (a bad regex, say).
    BadRequest,
    /// The file changed while it was being sent; install nothing.
    Changed,
    /// The server could not read the file.
    Io,
    /// The server does not offer this.
    Unsupported,
    /// The server is going away.
    ShuttingDown,
    /// Too many connections, or the file is being replaced: try again shortly.
    Busy,
    /// The peer did not prove it knows the box's shared secret.
    Unauthorized,
}

/// Whether an entry is a file or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
}

/// One file or folder of a box, as the index and the wire know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path in the box, `/`-separated, never empty, never with `.` or `..` parts.
    pub path: String,
    /// File or folder.
    pub kind: Kind,
    /// Size in bytes (0 for folders).
    pub size: u64,
    /// Last modification, ns since the Unix epoch.
    pub mtime_ns: i64,
    /// Permission bits (at most [`MODE_MASK`]).
    pub mode: u32,
    /// MIME type guessed from the name (`inode/directory` for folders).
    #[serde(rename = "type")]
    pub mime: String,
    /// Lowercase hex MD5 of the contents, when asked for and known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
}

impl Reply {
    /// An error reply.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        let message = message.into();
        Reply::Error { code, message }
    }
}

impl Request {
    /// A short description for the activity log, the same on both sides.
    pub fn describe(&self) -> String {
        match self {
            Request::Hello { .. } => "hello".into(),
            Request::List { filter, listing } => {
                let what = match listing {
                    ListKind::Index => "index",
                    ListKind::Hashes => "hash list",
                };
                match filter {
                    Filter::All => format!("{what} all"),
                    Filter::Modified { start_ns, end_ns } => {
                        format!(
                            "{what} modified {}..{}",
                            rfc3339(*start_ns),
                            rfc3339(*end_ns)
                        )
                    }
                    Filter::Regex { pattern } => format!("{what} regex {pattern:?}"),
                }
            }
            Request::SyncList { known } => format!("sync list ({} folders known)", known.len()),
            Request::Prove { .. } => "prove".into(),
            Request::Hash { path } => format!("hash {path:?}"),
            Request::Download { path } => format!("download tcp {path:?}"),
            Request::DownloadUdp { path } => format!("download udp {path:?}"),
            Request::UdpReceived { token } => format!("udp received {token}"),
            Request::Blocks { path } => format!("blocks {path:?}"),
            Request::Range {
                path, first, count, ..
            } => format!("range {path:?} blocks {first}+{count}"),
        }
    }
}

/// Whether a count is 0, so that it can be left out of a frame (serde hands it by reference).
fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests;
