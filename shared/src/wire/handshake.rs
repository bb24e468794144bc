//! The handshake that opens every connection: each side tells its name.
//!
//! ```text
//! client                              server
//!   hello { name: "box2" }      ->
//!                               <-    hello { name: "box1" }
//! ```
//!
//! With a shared secret (`--secret-file`) the server answers with a challenge instead, and both
//! sides prove they know the secret ([`super::auth`]).

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::auth;
use super::conn::Connection;
use crate::local::auth::Secret;
use crate::protocol::error::{Error, Result};
use crate::protocol::limits::IDLE_TIMEOUT;
use crate::protocol::message::{Reply, Request};

/// How long a client waits for the server's hello: twice the idle timeout. A stage-1 server
/// serves one connection at a time; ours may sit in its queue behind a client that went silent
/// after its hello (dropped after [`IDLE_TIMEOUT`]), or behind a few that never said hello
/// (dropped after [`HELLO_TIME`](crate::protocol::limits::HELLO_TIME) each), and still be
/// served.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2 * IDLE_TIMEOUT.as_secs());

/// Connects to `addr` as `my_name`, proving `secret` if given, and learns the server's name.
///
/// # Errors
/// [`Error::Net`] or [`Error::Timeout`] if the peer cannot be reached; [`Error::Auth`] if the
/// secrets do not match; a protocol error if it does not answer the handshake properly.
pub fn connect(addr: &str, my_name: &str, secret: Option<&Secret>) -> Result<Connection> {
    let context = || format!("cannot reach the peer at {addr}");
    let target = addr
        .to_socket_addrs()
        .map_err(|e| Error::net(context(), e))?
        .next();
    let target = target.ok_or_else(|| Error::Usage(format!("\"{addr}\" is not an address")))?;
    let stream =
        TcpStream::connect_timeout(&target, IDLE_TIMEOUT).map_err(|e| Error::net(context(), e))?;
    let mut conn = Connection::new(stream)?;
    conn.send(&Request::Hello {
        name: my_name.to_string(),
    })?;
    // The hello may sit in the server's accept queue while it finishes with someone else.
    conn.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let first = conn.recv::<Reply>()?;
    conn.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let name = match (first, secret) {
        (Reply::Hello { name }, None) => name,
        (Reply::Challenge { name, nonce }, Some(secret)) => {
            auth::prove(&mut conn, addr, my_name, secret, &name, &nonce)?;
            name
        }
        (first @ (Reply::Hello { .. } | Reply::Challenge { .. }), _) => {
            return Err(auth::mismatch(addr, &first))
        }
        (Reply::Error { code, message }, _) => return Err(Error::Remote { code, message }),
        (other, _) => return Err(Error::Protocol(format!("expected hello, got {other:?}"))),
    };
    conn.set_peer_name(&name);
    Ok(conn)
}

/// The server's side: reads the client's hello and answers as `my_name`, demanding proof of
/// `secret` if given. `Ok(false)` if the client hung up before saying anything.
///
/// # Errors
/// If the first frame is not a hello, the client cannot prove the secret, or the socket fails.
pub fn accept_hello(conn: &mut Connection, my_name: &str, secret: Option<&Secret>) -> Result<bool> {
    accept_hello_within(conn, my_name, secret, IDLE_TIMEOUT)
}

/// [`accept_hello`], with `within` for the client to begin its hello, and as long again to
/// finish it, instead of the idle timeout. Stage 1 gives
/// [`HELLO_TIME`](crate::protocol::limits::HELLO_TIME): an honest client sends its hello as it
/// connects, and a silent one must not make the clients queued behind it give up.
///
/// # Errors
/// As [`accept_hello`]; [`Error::Timeout`] if the hello does not come in time.
pub fn accept_hello_within(
    conn: &mut Connection,
    my_name: &str,
    secret: Option<&Secret>,
    within: Duration,
) -> Result<bool> {
    let name = match first_frame(conn, within)? {
        None => return Ok(false),
        Some(Request::Hello { name }) => name,
        Some(other) => {
            let what = other.describe();
            return Err(Error::Protocol(format!(
                "a connection must open with hello, not {what}"
            )));
        }
    };
    match secret {
        None => conn.send(&Reply::Hello {
            name: my_name.to_string(),
        })?,
        Some(secret) => auth::challenge(conn, &name, my_name, secret)?,
    }
    conn.set_peer_name(&name);
    Ok(true)
}

/// Reads the connection's first frame: its wait and the frame itself limited to `within` each.
fn first_frame(conn: &mut Connection, within: Duration) -> Result<Option<Request>> {
    if within >= IDLE_TIMEOUT {
        return conn.recv_opt();
    }
    conn.set_read_timeout(Some(within))?;
    let first = conn.recv_opt_within(within);
    conn.set_read_timeout(Some(IDLE_TIMEOUT))?;
    first.map_err(|e| match e {
        Error::Timeout(_) => Error::Timeout(format!("no hello within {} s", within.as_secs())),
        other => other,
    })
}
