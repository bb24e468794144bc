//! The messages two boxes exchange, as one enum for requests and one for replies.
//!
//! Every connection opens with a handshake ([`Request::Hello`] / [`Reply::Hello`]) in which each
//! side tells its name. Then the client sends requests, one at a time, and reads each reply in
//! full before the next. Listings are long, so they arrive as several [`Reply::Entries`] chunks
//! closed by [`Reply::End`]; file contents arrive as raw bytes after a [`Reply::File`] header and
//! are closed by a [`Reply::Trailer`] carrying the MD5. `docs/PROTOCOL.md` describes the same
//! thing for someone writing a client in another language.

use serde::{Deserialize, Serialize};

use crate::hash::Md5;

/// How many entries travel in one [`Reply::Entries`] frame: small enough to stay far below
/// [`crate::frame::MAX_FRAME`] whatever the names, large enough that framing costs nothing.
pub const ENTRIES_PER_CHUNK: usize = 512;

/// A request from a client to a box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// First message of every connection: who is asking.
    Hello {
        /// The client's name (its box folder's name, or `--name`).
        name: String,
    },
    /// List the box.
    List {
        /// Which files to list.
        filter: Filter,
        /// Include each file's MD5 (costly when not cached).
        #[serde(default)]
        hashes: bool,
        /// Include folders too (sync needs them; the shell lists files only).
        #[serde(default)]
        folders: bool,
    },
    /// The listing a sync round needs: every file and folder, with MD5s, like a [`Request::List`]
    /// of everything with `hashes` and `folders` — except for the folders the client already
    /// knows. `known` carries the digest of each folder as the client believes the server holds
    /// it (see [`crate::index::FolderSums`]); the server sends the entries of only the folders
    /// whose digest differs, and names the others in [`Reply::Same`]. So a round between two
    /// boxes in sync exchanges a digest per folder, not an entry per file.
    SyncList {
        /// At most [`MAX_KNOWN`] folders; empty: send everything.
        #[serde(default)]
        known: Vec<FolderSum>,
    },
    /// One file's MD5 and metadata.
    Hash {
        /// The file's path relative to the box, with `/` separators.
        path: String,
    },
    /// Send a file over this TCP connection.
    Download {
        /// The file's path relative to the box.
        path: String,
    },
    /// Send a file over UDP; this TCP connection carries the metadata and the final verdict.
    DownloadUdp {
        /// The file's path relative to the box.
        path: String,
    },
    /// The client's answer to a [`Reply::Challenge`]: its own nonce and its proof that it knows
    /// the shared secret (see [`crate::auth`]).
    Prove {
        /// The client's fresh nonce, hex.
        nonce: String,
        /// HMAC-SHA-256 over the handshake, hex.
        proof: String,
    },
    /// Sent during a UDP download, after the [`Reply::UdpOffer`]: the client holds every block
    /// and waits for the [`Reply::Trailer`]. (It travels on TCP so that the end of a transfer
    /// never depends on a datagram getting through.)
    UdpReceived {
        /// The transfer's token.
        token: u64,
    },
}

/// A folder and the digest of what is directly in it (see [`crate::index::FolderSums`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderSum {
    /// The folder's path relative to the box; `""` for the top of the box.
    pub folder: String,
    /// The digest.
    pub md5: Md5,
}

/// The most folders a [`Request::List`] may name in `known`: enough for a box of a million files
/// in folders of a hundred, and small enough that the request stays far below
/// [`crate::frame::MAX_FRAME`] (about 80 bytes a folder).
pub const MAX_KNOWN: usize = 20_000;

/// Which files a [`Request::List`] asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Filter {
    /// Everything.
    All,
    /// Files whose mtime lies in `[start_ns, end_ns]`, nanoseconds since the Unix epoch.
    Modified {
        /// Start of the range (inclusive).
        start_ns: i64,
        /// End of the range (inclusive).
        end_ns: i64,
    },
    /// Files whose relative path matches the regular expression (unanchored).
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
    /// Answer to [`Request::Hello`] from a box that wants the shared secret: prove you know it
    /// (with [`Request::Prove`]) before anything else.
    Challenge {
        /// The server's name.
        name: String,
        /// The server's fresh nonce, hex.
        nonce: String,
    },
    /// The end of an authenticated handshake: the server's own proof that it knows the secret.
    Welcome {
        /// HMAC-SHA-256 over the handshake, hex.
        proof: String,
    },
    /// A chunk of a listing.
    Entries {
        /// At most [`ENTRIES_PER_CHUNK`] entries.
        entries: Vec<Entry>,
    },
    /// A chunk of the folders of a sync listing whose digest matched the client's (see
    /// [`Request::SyncList`]): their entries are what the client believes, and are not sent.
    /// Comes after the [`Reply::Entries`] chunks, before [`Reply::End`].
    Same {
        /// At most [`ENTRIES_PER_CHUNK`] folder paths.
        folders: Vec<String>,
    },
    /// The server is still reading files to answer (hashing those it has not seen before):
    /// `done` of `total`. Sent every couple of seconds while a listing or a hash takes long, so
    /// that the client, which gives up on a silent connection after 10 s, keeps waiting. The
    /// client reads on.
    Working {
        /// Files (or bytes, for one file's hash) done.
        done: u64,
        /// Files (or bytes) in all.
        total: u64,
    },
    /// The end of a listing.
    End {
        /// How many entries were sent in all, a check against lost chunks.
        count: u64,
    },
    /// Answer to [`Request::Hash`].
    Entry {
        /// The file, with its MD5.
        entry: Entry,
    },
    /// Header of a TCP download: exactly `entry.size` raw bytes follow, then a [`Reply::Trailer`].
    File {
        /// The file as it was when the transfer began. `md5` is set when the server already knew
        /// it; otherwise the trailer brings it.
        entry: Entry,
    },
    /// Header of a UDP download: the blocks come over UDP (see `docs/PROTOCOL.md`), the client
    /// answers [`Request::UdpReceived`] once it has them all, then a [`Reply::Trailer`] follows
    /// on TCP.
    UdpOffer {
        /// The file as it was when the transfer began. `md5` is set when the server already knew
        /// it; otherwise the trailer brings it.
        entry: Entry,
        /// The per-transfer token every datagram of this transfer carries (below 2^53, so that
        /// it is an exact JSON number in any language).
        token: u64,
        /// Payload bytes per datagram: every block has this size but the last.
        block_size: u32,
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
    /// No such file (or it is not a regular file).
    NotFound,
    /// The name is not a clean relative path inside the box.
    BadPath,
    /// The request was malformed (bad regex, say).
    BadRequest,
    /// The file changed while it was being sent; nothing should be installed.
    Changed,
    /// The server could not read the file.
    Io,
    /// The server does not offer this (yet).
    Unsupported,
    /// The server is going away.
    ShuttingDown,
    /// The server is serving as many connections as it will, or the file asked for is being
    /// replaced; try again shortly.
    Busy,
    /// The peer did not prove it knows the box's shared secret.
    Unauthorized,
}

/// Whether an index entry is a file or a folder.
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
    /// Path relative to the box, `/`-separated, never empty, never with `.` or `..` parts.
    pub path: String,
    /// File or folder.
    pub kind: Kind,
    /// Size in bytes (0 for folders).
    pub size: u64,
    /// Last modification, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Permission bits (`rwx` for user, group, other: at most `0o777`).
    pub mode: u32,
    /// MIME type guessed from the name (`inode/directory` for folders).
    #[serde(rename = "type")]
    pub mime: String,
    /// Lowercase hex MD5 of the contents, when asked for and known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
}

impl Reply {
    /// Builds an error reply.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Reply::Error {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_json_form() {
        let r = Request::List {
            filter: Filter::Regex {
                pattern: r"\.txt$".into(),
            },
            hashes: true,
            folders: false,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"op":"list","filter":{"kind":"regex","pattern":"\\.txt$"},"hashes":true,"folders":false}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), r);
    }

    #[test]
    fn unknown_ops_and_fields_are_rejected() {
        assert!(serde_json::from_str::<Request>(r#"{"op":"format_disk"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"hash","path":"a","x":1}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"hash"}"#).is_err());
    }

    #[test]
    fn entries_omit_an_unknown_md5() {
        let e = Entry {
            path: "a b/c.txt".into(),
            kind: Kind::File,
            size: 3,
            mtime_ns: 1,
            mode: 0o644,
            mime: "text/plain".into(),
            md5: None,
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(!json.contains("md5"));
        assert!(json.contains(r#""type":"text/plain""#));
        assert_eq!(serde_json::from_str::<Entry>(&json).unwrap(), e);
    }
}
