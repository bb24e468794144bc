//! How a request can fail on the serving side: with an answer the client gets (the connection
//! stays usable), or with the connection itself broken.

use crate::local::gate::ResolveError;
use crate::protocol::error::Error;
use crate::protocol::message::ErrorCode;

/// A request's failure.
#[derive(Debug)]
pub enum Failure {
    /// Send this error reply and go on.
    Reply(ErrorCode, String),
    /// The connection is unusable.
    Connection(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Connection(e)
    }
}

impl From<ResolveError> for Failure {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Refused(p) => Failure::Reply(ErrorCode::BadPath, p.to_string()),
            ResolveError::Io(e) => Failure::Reply(ErrorCode::Io, e.to_string()),
        }
    }
}
