//! UDP downloads. Not built yet: the server answers that UDP is not available, and the client
//! reports it. The reliable transfer (blocks, window, acks, gaps) lands with its own issue.

use std::net::UdpSocket;

use crate::conn::Connection;
use crate::local::LocalBox;
use crate::protocol::ErrorCode;
use crate::serve::Failure;

/// Serves a `download_udp` request. For now: a clear "not available yet" reply.
///
/// # Errors
/// Always, until UDP transfers land.
pub fn serve_download(
    _conn: &mut Connection,
    _local: &LocalBox,
    _socket: &UdpSocket,
    _name: &str,
) -> Result<String, Failure> {
    Err(Failure::Reply(
        ErrorCode::Unsupported,
        "download UDP is not available yet".into(),
    ))
}

/// Downloads `name` over UDP. For now the request is sent and the server's answer (that UDP is not
/// available yet) is reported.
///
/// # Errors
/// The server's refusal, or a broken connection.
pub fn download(
    conn: &mut Connection,
    _local: &LocalBox,
    name: &str,
    _progress: crate::transfer::Progress<'_>,
) -> crate::Result<crate::protocol::Entry> {
    crate::paths::check_name(name)?;
    conn.send(&crate::protocol::Request::DownloadUdp {
        path: name.to_string(),
    })?;
    Err(crate::transfer::unexpected(conn.recv()?))
}
