//! The crate's error type: one enum with context, so that a caller can branch on what went
//! wrong (a peer that is down is retried next round; a bad name is refused; a mismatched MD5
//! installs nothing), and the edge of every binary prints one clear sentence with `Display`.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::frame::FrameError;
use super::message::ErrorCode;
use super::name::PathError;

/// Everything that can go wrong in minibox.
#[derive(Debug)]
pub enum Error {
    /// A local file or folder could not be read or written.
    Io {
        /// The file or folder the operation was on.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The peer could not be reached, or the connection broke.
    Net {
        /// What we were doing, e.g. "connecting to 127.0.0.1:60000".
        context: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// The bytes on the wire did not form a valid frame.
    Frame(FrameError),
    /// The peer sent a valid frame that makes no sense at this point of the conversation.
    Protocol(String),
    /// The peer answered with an error.
    Remote {
        /// What kind of failure the peer reported.
        code: ErrorCode,
        /// The peer's sentence.
        message: String,
    },
    /// A name was refused by the path gate.
    Path(PathError),
    /// The user typed something that cannot be run (bad regex, bad timestamp, unknown command).
    Usage(String),
    /// Received data did not verify (wrong MD5, wrong size, changed during the transfer).
    Verify(String),
    /// The peer stopped making progress.
    Timeout(String),
    /// Authentication failed: the other side does not know the shared secret, or asks for none
    /// when we expected it to.
    Auth(String),
    /// This process is stopping (SIGINT, SIGTERM) and abandoned the operation; nothing was
    /// installed.
    Interrupted(String),
    /// Something in this box changed under an operation that depended on it (a file a user
    /// edited while a sync round was about to replace it); nothing was changed, and the
    /// operation is left for later.
    LocalChange(String),
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error on a local path.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps a socket error with what we were doing when it happened. A read or write that timed
    /// out becomes [`Error::Timeout`], so callers need not look inside the `io::Error`; one we
    /// timed out ourselves keeps its reason (the pace rule's "fewer than 16 KiB in 10 s").
    pub fn net(context: impl Into<String>, source: io::Error) -> Self {
        let context = context.into();
        match source.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                let why = source.get_ref().map(ToString::to_string);
                let why = why.unwrap_or_else(|| "no answer for too long".into());
                Error::Timeout(format!("{context}: {why}"))
            }
            _ => Error::Net { context, source },
        }
    }

    /// True when the error means the other side is unreachable or went away: worth a retry later.
    pub fn is_peer_unavailable(&self) -> bool {
        matches!(self, Error::Net { .. } | Error::Timeout(_))
    }

    /// True when this box's disk is full: what a download holds on disk should be let go.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull)
    }
}

/// What the operating system said, in words a person can act on: no `(os error N)`, and for the
/// usual causes the likely reason and the next step.
pub fn os_words(e: &io::Error) -> String {
    use io::ErrorKind as K;
    let said = match e.kind() {
        K::ConnectionRefused => "nothing is listening there (is the other box running?)",
        K::AddrInUse => {
            "the address is already in use (is this box already running? --listen picks another port)"
        }
        K::AddrNotAvailable => "this machine has no such address",
        K::PermissionDenied => "permission denied",
        K::NotFound => "no such file or folder",
        K::AlreadyExists => "something of that name is already there",
        K::NotADirectory => "a part of the path is a file, not a folder",
        K::IsADirectory => "it is a folder, not a file",
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
            "the other side closed the connection"
        }
        K::StorageFull => "the disk is full",
        K::HostUnreachable | K::NetworkUnreachable => "that address cannot be reached from here",
        _ => "",
    };
    if !said.is_empty() {
        return said.to_string();
    }
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {}", path.display(), os_words(source)),
            Error::Net { context, source } => write!(f, "{context}: {}", os_words(source)),
            Error::Frame(e) => write!(f, "bad message from the peer: {e}"),
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
            Error::Remote { message, .. } => f.write_str(message),
            Error::Path(e) => e.fmt(f),
            Error::Usage(m)
            | Error::Verify(m)
            | Error::Timeout(m)
            | Error::Auth(m)
            | Error::Interrupted(m)
            | Error::LocalChange(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Net { source, .. } => Some(source),
            Error::Frame(e) => Some(e),
            Error::Path(e) => Some(e),
            _ => None,
        }
    }
}

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(source) => Error::net("talking to the peer", source),
            // Slow, not malformed: a timeout like a silent peer's (and, for a client, a peer
            // worth trying again later).
            slow @ FrameError::TooSlow(_) => Error::Timeout(slow.to_string()),
            other => Error::Frame(other),
        }
    }
}

impl From<PathError> for Error {
    fn from(e: PathError) -> Self {
        Error::Path(e)
    }
}

#[cfg(test)]
mod tests;
