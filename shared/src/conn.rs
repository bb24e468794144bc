//! A TCP connection that speaks frames, and the handshake that opens it.
//!
//! Reads go through a `BufReader` so that reading a 5-byte header does not cost a system call
//! each; the same buffer must then be used for the raw file bytes that follow a header, because
//! it may already hold their first part. Writes go through a `BufWriter` and are flushed once per
//! reply, so a listing of many small frames leaves in few TCP segments.
//!
//! Both directions have a timeout ([`crate::IDLE_TIMEOUT`]): a peer that says nothing, or stops
//! reading, is given up on instead of holding a thread (or, in stage 1, the whole server) forever.
//! The one exception is the client waiting for the server's hello ([`HANDSHAKE_TIMEOUT`]): a
//! stage-1 server may be busy with a silent client for a full idle timeout before it gets to us.
//!
//! A socket timeout alone is not enough for file data, though. It fires only when one `read` or
//! `write` call moves *nothing* for 10 s, and a peer can avoid that by moving almost nothing:
//! a client that never reads still lets the kernel squeeze a few hundred bytes into its receive
//! queue every few seconds, and a hostile server can send one byte every 9 s. Each call then
//! "progresses", and the transfer never ends. [`Pace`] closes that hole: a transfer must move at
//! least [`MIN_PROGRESS`] bytes in every [`crate::IDLE_TIMEOUT`], or it is given up on.
//!
//! Frames have the same hole, and their own answer: once a frame's first byte is in, the whole
//! frame must arrive within [`FRAME_TIME`] ([`crate::frame`] keeps the clock). While a frame is
//! being read, [`Connection::recv_opt`] cuts the socket's read timeout to the time the frame has
//! left, so the read that would outlast it returns at the deadline, and the connection is
//! dropped then, not one idle timeout later.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::{self, Role, Secret, Transcript};
use crate::error::{Error, Result};
use crate::frame::{read_frame_within, write_frame, FRAME_TIME};
use crate::protocol::{ErrorCode, Reply, Request};
use crate::IDLE_TIMEOUT;

/// Size of the read and write buffers. Large, because file data flows through them.
const BUF: usize = 256 * 1024;

/// How long a client waits for the server's hello. Longer than [`IDLE_TIMEOUT`] on purpose: a
/// one-client-at-a-time server that is stuck with a silent client drops it after `IDLE_TIMEOUT`
/// and only then accepts us. Were both waits equal, the client queued behind would give up at the
/// very moment its turn came.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2 * IDLE_TIMEOUT.as_secs());

/// One open connection to a peer.
pub struct Connection {
    /// Buffered reading side (frames and raw bytes).
    reader: BufReader<TcpStream>,
    /// Buffered writing side.
    writer: BufWriter<TcpStream>,
    /// The other end's socket address.
    peer_addr: SocketAddr,
    /// The other end's name, learnt in the handshake.
    peer_name: String,
}

impl Connection {
    /// Wraps an accepted or connected stream and sets its timeouts.
    ///
    /// # Errors
    /// If the socket cannot be configured.
    pub fn new(stream: TcpStream) -> Result<Self> {
        let peer_addr = stream
            .peer_addr()
            .map_err(|e| Error::net("reading the peer's address", e))?;
        let setup = |s: &TcpStream| -> std::io::Result<()> {
            s.set_read_timeout(Some(IDLE_TIMEOUT))?;
            s.set_write_timeout(Some(IDLE_TIMEOUT))?;
            // Replies are flushed whole; no need to wait for more bytes to fill a segment.
            s.set_nodelay(true)
        };
        setup(&stream).map_err(|e| Error::net("configuring the socket", e))?;
        let write_half = stream
            .try_clone()
            .map_err(|e| Error::net("configuring the socket", e))?;
        Ok(Connection {
            reader: BufReader::with_capacity(BUF, stream),
            writer: BufWriter::with_capacity(BUF, write_half),
            peer_addr,
            peer_name: peer_addr.to_string(),
        })
    }

    /// Connects to `addr`, introduces itself as `my_name` and learns the server's name.
    ///
    /// # Errors
    /// [`Error::Net`] / [`Error::Timeout`] if the peer cannot be reached; a protocol error if it
    /// does not answer the handshake properly.
    pub fn connect(addr: &str, my_name: &str) -> Result<Self> {
        Connection::connect_with(addr, my_name, None)
    }

    /// [`Connection::connect`], proving knowledge of `secret` when given (and demanding that the
    /// server prove it too; see [`crate::auth`]).
    ///
    /// # Errors
    /// As [`Connection::connect`]; [`Error::Auth`] if the server does not know the secret, or
    /// asks for one we do not have, or asks for none when we have one; [`Error::Remote`] with
    /// [`ErrorCode::Unauthorized`] if the server refused our proof.
    pub fn connect_with(addr: &str, my_name: &str, secret: Option<&Secret>) -> Result<Self> {
        let context = || format!("cannot reach the peer at {addr}");
        let target = addr
            .to_socket_addrs()
            .map_err(|e| Error::net(context(), e))?
            .next()
            .ok_or_else(|| Error::Usage(format!("\"{addr}\" is not an address")))?;
        let stream = TcpStream::connect_timeout(&target, IDLE_TIMEOUT)
            .map_err(|e| Error::net(context(), e))?;
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
            (Reply::Hello { .. }, Some(_)) => {
                return Err(Error::Auth(format!(
                    "the box at {addr} asks for no shared secret, so it is not the box this \
                     secret is shared with; not going on"
                )))
            }
            (Reply::Challenge { .. }, None) => {
                return Err(Error::Auth(format!(
                    "the box at {addr} only talks to peers that know its shared secret \
                     (give the same --secret-file)"
                )))
            }
            (Reply::Challenge { name, nonce }, Some(secret)) => {
                let client_nonce = auth::nonce()?;
                let t = Transcript {
                    server_nonce: &nonce,
                    client_nonce: &client_nonce,
                    client_name: my_name,
                    server_name: &name,
                };
                conn.send(&Request::Prove {
                    nonce: client_nonce.clone(),
                    proof: secret.proof(Role::Client, &t),
                })?;
                match conn.recv::<Reply>()? {
                    Reply::Welcome { proof } if secret.verify(Role::Server, &t, &proof) => name,
                    Reply::Welcome { .. } => {
                        return Err(Error::Auth(format!(
                            "the box at {addr} could not prove it knows the shared secret; \
                             not going on"
                        )))
                    }
                    Reply::Error { code, message } => return Err(Error::Remote { code, message }),
                    other => {
                        return Err(Error::Protocol(format!("expected welcome, got {other:?}")))
                    }
                }
            }
            (Reply::Error { code, message }, _) => return Err(Error::Remote { code, message }),
            (other, _) => return Err(Error::Protocol(format!("expected hello, got {other:?}"))),
        };
        conn.peer_name = clean_name(&name);
        Ok(conn)
    }

    /// The server side of the handshake: reads the client's hello and answers with `my_name`.
    /// Returns `Ok(false)` if the client hung up before saying anything.
    ///
    /// # Errors
    /// If the first frame is not a hello, or the socket fails.
    pub fn accept_hello(&mut self, my_name: &str) -> Result<bool> {
        self.accept_hello_with(my_name, None)
    }

    /// [`Connection::accept_hello`], demanding proof of `secret` when given (and proving it
    /// back). A client that cannot prove it gets one `unauthorized` error reply; the caller then
    /// closes the connection.
    ///
    /// # Errors
    /// As [`Connection::accept_hello`]; [`Error::Auth`] when the client did not prove it knows
    /// the secret.
    pub fn accept_hello_with(&mut self, my_name: &str, secret: Option<&Secret>) -> Result<bool> {
        let name = match self.recv_opt::<Request>()? {
            None => return Ok(false),
            Some(Request::Hello { name }) => name,
            Some(other) => {
                return Err(Error::Protocol(format!(
                    "a connection must open with hello, not {}",
                    crate::serve::describe(&other)
                )))
            }
        };
        match secret {
            None => self.send(&Reply::Hello {
                name: my_name.to_string(),
            })?,
            Some(secret) => self.challenge(&name, my_name, secret)?,
        }
        self.peer_name = clean_name(&name);
        Ok(true)
    }

    /// The server's half of the challenge-response (see [`crate::auth`]).
    fn challenge(&mut self, client_name: &str, my_name: &str, secret: &Secret) -> Result<()> {
        let server_nonce = auth::nonce()?;
        self.send(&Reply::Challenge {
            name: my_name.to_string(),
            nonce: server_nonce.clone(),
        })?;
        let why = match self.recv_opt::<Request>()? {
            Some(Request::Prove { nonce, proof }) => {
                let t = Transcript {
                    server_nonce: &server_nonce,
                    client_nonce: &nonce,
                    client_name,
                    server_name: my_name,
                };
                let fresh = nonce.len() == 2 * auth::NONCE_LEN && nonce != server_nonce;
                if fresh && secret.verify(Role::Client, &t, &proof) {
                    return self.send(&Reply::Welcome {
                        proof: secret.proof(Role::Server, &t),
                    });
                }
                "its proof of the shared secret was wrong"
            }
            None => "it hung up instead of proving it knows the shared secret",
            Some(_) => "it did not prove it knows the shared secret",
        };
        // One clear refusal, then the caller closes the connection.
        let _ = self.send(&Reply::error(
            ErrorCode::Unauthorized,
            "this box only talks to peers that know its shared secret (--secret-file)",
        ));
        Err(Error::Auth(format!("refused {client_name:?}: {why}")))
    }

    /// The other end's name (its address until the handshake is done), passed through
    /// [`clean_name`]: safe in logs and file names whatever the peer sent.
    pub fn peer_name(&self) -> &str {
        &self.peer_name
    }

    /// The other end's socket address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// Sends one frame and flushes.
    ///
    /// # Errors
    /// If the socket fails.
    pub fn send<T: Serialize>(&mut self, msg: &T) -> Result<()> {
        self.queue(msg)?;
        self.flush()
    }

    /// Queues one frame without flushing (for a burst of frames).
    ///
    /// # Errors
    /// If the socket fails.
    pub fn queue<T: Serialize>(&mut self, msg: &T) -> Result<()> {
        write_frame(&mut self.writer, msg).map_err(Error::from)
    }

    /// Queues raw bytes (file data after a header) without flushing.
    ///
    /// # Errors
    /// If the socket fails.
    pub fn queue_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer
            .write_all(bytes)
            .map_err(|e| Error::net("sending to the peer", e))
    }

    /// Whether bytes from the peer are already buffered here, read from the socket but not yet
    /// taken by [`Connection::recv`]: a pipelining client's next request. A server answering a
    /// batch flushes its replies only when this is false, so one system call carries many.
    pub fn input_pending(&self) -> bool {
        !self.reader.buffer().is_empty()
    }

    /// Flushes queued frames.
    ///
    /// # Errors
    /// If the socket fails.
    pub fn flush(&mut self) -> Result<()> {
        self.writer
            .flush()
            .map_err(|e| Error::net("sending to the peer", e))
    }

    /// Reads one frame; the peer hanging up is an error here.
    ///
    /// # Errors
    /// If the peer hung up, timed out or sent a bad frame.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T> {
        self.recv_opt()?.ok_or_else(|| {
            Error::net(
                "reading from the peer",
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection",
                ),
            )
        })
    }

    /// Reads one frame; `None` if the peer hung up cleanly between frames.
    ///
    /// # Errors
    /// If the peer timed out or sent a bad frame.
    pub fn recv_opt<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        // The socket's own timeout, once read, to put back after the frame.
        let mut usual: Option<Option<Duration>> = None;
        let got = read_frame_within(&mut self.reader, FRAME_TIME, |reader, left| {
            // Bytes already in the buffer are read without waiting: nothing to limit.
            if !reader.buffer().is_empty() {
                return Ok(());
            }
            // The next read waits for the network: not past the frame's deadline.
            let socket = reader.get_ref();
            let idle = match usual {
                Some(idle) => idle,
                None => *usual.insert(socket.read_timeout()?),
            };
            socket.set_read_timeout(Some(idle.map_or(left, |idle| idle.min(left))))
        });
        if let Some(idle) = usual {
            let restored = self.reader.get_ref().set_read_timeout(idle);
            if got.is_ok() {
                restored.map_err(|e| Error::net("configuring the socket", e))?;
            }
        }
        got.map_err(Error::from)
    }

    /// The buffered reading side, for raw bytes that follow a header.
    pub fn raw_reader(&mut self) -> &mut impl Read {
        &mut self.reader
    }

    /// The socket itself, for sending raw bytes with zero-copy `sendfile` (queued frames are
    /// flushed first so the order on the wire is kept).
    ///
    /// # Errors
    /// If flushing fails.
    pub fn raw_writer(&mut self) -> Result<&mut TcpStream> {
        self.flush()?;
        Ok(self.writer.get_mut())
    }

    /// Whether the peer has sent something (or closed the connection) that [`Connection::recv`]
    /// would now read without waiting. A UDP transfer asks this between datagrams: its TCP
    /// connection carries the end of the transfer, or the news that the other side gave up.
    ///
    /// # Errors
    /// If the socket fails.
    pub fn poll_input(&mut self) -> Result<bool> {
        if !self.reader.buffer().is_empty() {
            return Ok(true);
        }
        let stream = self.reader.get_ref();
        let context = "checking the connection";
        // A non-blocking peek: data or end of stream means "readable", WouldBlock means quiet.
        stream
            .set_nonblocking(true)
            .map_err(|e| Error::net(context, e))?;
        let peeked = stream.peek(&mut [0u8; 1]);
        stream
            .set_nonblocking(false)
            .map_err(|e| Error::net(context, e))?;
        match peeked {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(false),
            // A reset connection: let the next read report it.
            Err(_) => Ok(true),
        }
    }

    /// Changes the read timeout (a UDP transfer waits on TCP longer than a request does).
    ///
    /// # Errors
    /// If the socket refuses.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.reader
            .get_ref()
            .set_read_timeout(timeout)
            .map_err(|e| Error::net("configuring the socket", e))
    }

    /// Closes both directions now, waking any thread blocked on this socket.
    pub fn shutdown(&self) {
        let _ = self.reader.get_ref().shutdown(Shutdown::Both);
    }

    /// The underlying stream (to clone a handle for shutdown from another thread).
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }
}

/// The longest peer name kept, in characters.
pub const MAX_NAME: usize = 64;

/// Makes a name a peer announced safe to use anywhere: in logs, in file names (a stage may name
/// conflict copies or per-peer state after it), in messages. Keeps letters, digits and `-_.@+`,
/// turns anything else into `_`, keeps at most [`MAX_NAME`] characters, and never returns an
/// empty name, `.` or `..`. An honest name (`box2`, `laptop-1`) passes unchanged.
pub fn clean_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .take(MAX_NAME)
        .map(|c| {
            if c.is_alphanumeric() || "-_.@+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        format!("_{cleaned}")
    } else {
        cleaned
    }
}

/// The least a transfer must move in each [`IDLE_TIMEOUT`] to count as progressing: 16 KiB, far
/// below any working link, far above what a stalled peer's kernel lets trickle through.
pub const MIN_PROGRESS: u64 = 16 * 1024;

/// Watches the bytes of one transfer for the slow drip (see the module's documentation).
#[derive(Debug)]
pub struct Pace {
    /// When the current window began: the last time [`MIN_PROGRESS`] bytes were reached.
    window_start: Instant,
    /// Bytes moved since then.
    moved: u64,
}

impl Default for Pace {
    fn default() -> Self {
        Pace::new()
    }
}

impl Pace {
    /// Starts watching now.
    pub fn new() -> Self {
        Pace {
            window_start: Instant::now(),
            moved: 0,
        }
    }

    /// Notes that `n` more bytes moved.
    ///
    /// # Errors
    /// [`io::ErrorKind::TimedOut`] when fewer than [`MIN_PROGRESS`] bytes moved over more than
    /// [`IDLE_TIMEOUT`].
    pub fn advance(&mut self, n: u64) -> io::Result<()> {
        self.moved += n;
        if self.moved >= MIN_PROGRESS {
            self.window_start = Instant::now();
            self.moved = 0;
        } else if self.window_start.elapsed() > IDLE_TIMEOUT {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the peer moved fewer than {} KiB in {} s",
                    MIN_PROGRESS / 1024,
                    IDLE_TIMEOUT.as_secs()
                ),
            ));
        }
        Ok(())
    }
}

/// A writer whose every write is watched by a [`Pace`].
pub struct PacedWriter<W> {
    /// Where the bytes go.
    inner: W,
    /// The watch.
    pace: Pace,
}

impl<W: Write> PacedWriter<W> {
    /// Wraps `inner`, starting the watch now.
    pub fn new(inner: W) -> Self {
        PacedWriter {
            inner,
            pace: Pace::new(),
        }
    }
}

/// The most one `sendfile` call is asked to move: large enough that system calls cost nothing.
const SENDFILE_CHUNK: usize = 1024 * 1024;

impl PacedWriter<&mut TcpStream> {
    /// Sends `len` bytes of `file` from its start, the kernel copying them straight from the page
    /// cache to the socket (`sendfile(2)`): the bytes never pass through this process. Returns how
    /// many were sent (fewer only if the file ended early).
    ///
    /// A single `sendfile` call can stay blocked far longer than the socket's send timeout while
    /// a stalled reader lets a few bytes through now and then, so during the copy the timeout is
    /// cut to `SENDFILE_WAIT` (1 s): every call returns soon, having moved something or nothing, and
    /// the pace is checked after each, exactly as for `write`. A peer that reads a trickle is
    /// caught within the pace's window.
    ///
    /// # Errors
    /// If the socket fails or the peer reads too slowly (see [`Pace`]).
    pub fn send_file(&mut self, file: &std::fs::File, len: u64) -> io::Result<u64> {
        self.inner.set_write_timeout(Some(SENDFILE_WAIT))?;
        let result = self.sendfile_loop(file, len);
        // Back to the ordinary timeout for the frames that follow.
        self.inner.set_write_timeout(Some(IDLE_TIMEOUT))?;
        result
    }

    fn sendfile_loop(&mut self, file: &std::fs::File, len: u64) -> io::Result<u64> {
        let mut offset: nix::libc::off_t = 0;
        let mut sent = 0u64;
        while sent < len {
            let want =
                usize::try_from(len - sent).map_or(SENDFILE_CHUNK, |n| n.min(SENDFILE_CHUNK));
            match nix::sys::sendfile::sendfile(&*self.inner, file, Some(&mut offset), want) {
                Ok(0) => break,
                Ok(n) => {
                    self.pace.advance(n as u64)?;
                    sent += n as u64;
                }
                // Nothing moved within SENDFILE_WAIT: no error yet, unless the window is over.
                Err(nix::errno::Errno::EAGAIN) => self.pace.advance(0)?,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(io::Error::from(e)),
            }
        }
        Ok(sent)
    }
}

/// How long one `sendfile` call may wait for room in the socket before it returns.
const SENDFILE_WAIT: Duration = Duration::from_secs(1);

impl<W: Write> Write for PacedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pace.advance(n as u64)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_names_are_cleaned() {
        assert_eq!(clean_name("box2"), "box2");
        assert_eq!(clean_name("laptop-1.home"), "laptop-1.home");
        assert_eq!(clean_name("../../etc"), ".._.._etc");
        assert_eq!(clean_name(".."), "_..");
        assert_eq!(clean_name(""), "_");
        assert_eq!(clean_name("a\nb\tc/d\\e\0"), "a_b_c_d_e_");
        assert_eq!(clean_name(&"n".repeat(1000)).len(), MAX_NAME);
    }

    #[test]
    fn a_drip_is_not_progress_but_a_stream_is() {
        let mut pace = Pace::new();
        pace.window_start = Instant::now() - IDLE_TIMEOUT - Duration::from_secs(1);
        // A steady stream resets the window before it ends.
        assert!(pace.advance(MIN_PROGRESS).is_ok());
        assert!(pace.advance(10).is_ok(), "a fresh window");
        // Only a trickle over a whole window: given up on.
        pace.window_start = Instant::now() - IDLE_TIMEOUT - Duration::from_secs(1);
        let err = pace.advance(100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("fewer than 16 KiB"), "{err}");
    }
}
