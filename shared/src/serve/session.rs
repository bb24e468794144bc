//! One client connection, served to the end: the handshake, then each request in turn, until
//! the client hangs up, goes silent for 10 s, or sends something that is not a frame (that one
//! connection is closed; the server goes on). A stage decides only *how* connections are
//! accepted: one at a time in stage 1, each on a thread of its own from stage 2 on.
//!
//! A request that fails (missing file, bad regex, a name that leaves the box) gets an error
//! reply, and the connection stays usable. Every request is logged in `.minibox/log`.

use std::net::UdpSocket;
use std::time::Duration;

use super::failure::Failure;
use super::sync_list::{Shown, Witness};
use super::{blocks, download, download_udp, hash, list, range, sync_list};
use crate::local::log::served;
use crate::local::LocalBox;
use crate::protocol::error::{Error, Result};
use crate::protocol::limits::IDLE_TIMEOUT;
use crate::protocol::message::{ErrorCode, Reply, Request};
use crate::wire::conn::Connection;
use crate::wire::handshake::accept_hello_within;

/// What a server offers besides the box.
#[derive(Default, Clone, Copy)]
pub struct Options<'a> {
    /// The UDP socket bound on the TCP listener's port, when the server offers UDP downloads.
    pub udp: Option<&'a UdpSocket>,
    /// Stage 3: told what a syncing peer saw of this box (see [`Witness`]).
    pub witness: Option<&'a dyn Witness>,
    /// Stage 1: the time a connection has to say hello, shorter than the idle timeout (see
    /// [`crate::protocol::limits::HELLO_TIME`]); `None`: the idle timeout.
    pub hello_within: Option<Duration>,
}

/// Serves one client connection to the end. Errors are logged, not returned: one bad client
/// must never stop a server.
pub fn serve_connection(mut conn: Connection, local: &LocalBox, opts: Options<'_>) {
    let result = serve(&mut conn, local, opts);
    local.log.flush();
    if let Err(e) = result {
        log::info!("{}: dropping the connection: {e}", conn.peer_addr());
        let who = served(conn.peer_name());
        local
            .log
            .record(&who, "connection", &format!("dropped: {e}"));
        // Tell the client why, if it still listens; then close.
        if matches!(e, Error::Frame(_) | Error::Protocol(_)) {
            let _ = conn.send(&Reply::error(ErrorCode::BadRequest, e.to_string()));
        }
    }
    conn.shutdown();
}

fn serve(conn: &mut Connection, local: &LocalBox, opts: Options<'_>) -> Result<()> {
    let within = opts.hello_within.unwrap_or(IDLE_TIMEOUT);
    if !accept_hello_within(conn, local.name(), local.secret(), within)? {
        return Ok(());
    }
    let mut shown = Shown::default();
    while let Some(request) = conn.recv_opt::<Request>()? {
        let (peer, what) = (served(conn.peer_name()), request.describe());
        match answer(conn, local, opts, request, &mut shown) {
            Ok(summary) => local
                .log
                .defer(&peer, &what, format!("ok {summary}").trim_end()),
            Err(Failure::Reply(code, message)) => {
                local.log.defer(&peer, &what, &format!("error: {message}"));
                conn.queue(&Reply::error(code, message))?;
            }
            Err(Failure::Connection(e)) => {
                local.log.record(&peer, &what, &format!("failed: {e}"));
                return Err(e);
            }
        }
        // A client that pipelines has its next request waiting already: answer it before
        // flushing, so a batch of small replies (and their log lines) leaves in a few writes.
        if !conn.input_pending() {
            local.log.flush();
            conn.flush()?;
        }
    }
    // A clean hang-up: a syncing peer's round (if this was one) is over.
    shown.round_over(conn.peer_name(), opts.witness);
    Ok(())
}

/// Answers one request; returns the summary for the log.
fn answer(
    conn: &mut Connection,
    local: &LocalBox,
    opts: Options<'_>,
    request: Request,
    shown: &mut Shown,
) -> Result<String, Failure> {
    let refuse = |message: &str| Err(Failure::Reply(ErrorCode::BadRequest, message.into()));
    match request {
        Request::List { filter, listing } => list::answer(conn, local, &filter, listing),
        Request::Hash { path } => hash::answer(conn, local, &path),
        Request::Download { path } => download::answer(conn, local, &path),
        Request::DownloadUdp { path } => download_udp::answer(conn, local, opts.udp, &path),
        Request::SyncList { known } => sync_list::answer(conn, local, &known, opts.witness, shown),
        Request::Blocks { path } => blocks::answer(conn, local, &path),
        Request::Range {
            path,
            md5,
            first,
            count,
        } => {
            let name = &path;
            range::answer(
                conn,
                local,
                range::Wanted {
                    name,
                    md5,
                    first,
                    count,
                },
            )
        }
        Request::Hello { .. } => refuse("hello was already said on this connection"),
        Request::Prove { .. } => {
            refuse("prove belongs to the opening handshake of an authenticated box")
        }
        Request::UdpReceived { .. } => refuse("no UDP download is running on this connection"),
    }
}
