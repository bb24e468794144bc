//! Asking a peer: every request this box makes opens its connection here, as this box (its
//! name, its shared secret), and turns a reply it did not expect into an error.

use crate::local::LocalBox;
use crate::protocol::error::{Error, Result};
use crate::protocol::message::Reply;
use crate::wire::conn::Connection;
use crate::wire::handshake;

/// Opens a connection to the peer at `addr` as `local`.
///
/// # Errors
/// See [`handshake::connect`].
pub fn connect(local: &LocalBox, addr: &str) -> Result<Connection> {
    handshake::connect(addr, local.name(), local.secret())
}

/// Turns a reply we did not expect into an error (a remote error keeps its code and sentence).
pub fn unexpected(reply: Reply) -> Error {
    match reply {
        Reply::Error { code, message } => Error::Remote { code, message },
        other => Error::Protocol(format!("unexpected reply {other:?}")),
    }
}
