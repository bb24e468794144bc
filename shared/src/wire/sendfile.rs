//! Speed, skippable: sending a file whose MD5 is already known without passing its bytes
//! through this process. `sendfile(2)` has the kernel copy them from the page cache straight to
//! the socket. `scripts/bench.sh`, row `tcp-cached`, shows what it buys.

use std::fs::File;
use std::io;
use std::net::TcpStream;
use std::time::Duration;

use crate::protocol::limits::IDLE_TIMEOUT;
use crate::protocol::pace::PacedWriter;

/// The most one `sendfile` call is asked to move.
const CHUNK: usize = 1024 * 1024;

/// How long one `sendfile` call may wait for room in the socket before it returns.
const WAIT: Duration = Duration::from_secs(1);

/// Sends `len` bytes of `file` from the byte at `from`; returns how many went (fewer only if
/// the file ended early). One `sendfile` call could stay blocked far longer than the send timeout while
/// a stalled reader lets a few bytes through now and then, so during the copy the timeout is cut
/// to a second and the pace is checked after each call, exactly as for `write`.
///
/// # Errors
/// If the socket fails or the peer reads too slowly.
pub fn send_file(
    out: &mut PacedWriter<&mut TcpStream>,
    file: &File,
    from: u64,
    len: u64,
) -> io::Result<u64> {
    out.inner.set_write_timeout(Some(WAIT))?;
    let result = copy(out, file, from, len);
    // Back to the ordinary timeout for the frames that follow.
    out.inner.set_write_timeout(Some(IDLE_TIMEOUT))?;
    result
}

fn copy(
    out: &mut PacedWriter<&mut TcpStream>,
    file: &File,
    from: u64,
    len: u64,
) -> io::Result<u64> {
    let too_far = || io::Error::new(io::ErrorKind::InvalidInput, "offset past the limit");
    let mut offset = nix::libc::off_t::try_from(from).map_err(|_| too_far())?;
    let mut sent = 0u64;
    while sent < len {
        let want = usize::try_from(len - sent).map_or(CHUNK, |n| n.min(CHUNK));
        match nix::sys::sendfile::sendfile(&*out.inner, file, Some(&mut offset), want) {
            Ok(0) => break,
            Ok(n) => {
                out.pace.advance(n as u64)?;
                sent += n as u64;
            }
            // Nothing moved within WAIT: no error yet, unless the pace's window is over.
            Err(nix::errno::Errno::EAGAIN) => out.pace.advance(0)?,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    Ok(sent)
}
