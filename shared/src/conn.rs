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

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::frame::{read_frame, write_frame};
use crate::protocol::{Reply, Request};
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
        match conn.recv::<Reply>()? {
            Reply::Hello { name } => conn.peer_name = name,
            Reply::Error { code, message } => return Err(Error::Remote { code, message }),
            other => return Err(Error::Protocol(format!("expected hello, got {other:?}"))),
        }
        conn.set_read_timeout(Some(IDLE_TIMEOUT))?;
        Ok(conn)
    }

    /// The server side of the handshake: reads the client's hello and answers with `my_name`.
    /// Returns `Ok(false)` if the client hung up before saying anything.
    ///
    /// # Errors
    /// If the first frame is not a hello, or the socket fails.
    pub fn accept_hello(&mut self, my_name: &str) -> Result<bool> {
        match self.recv_opt::<Request>()? {
            None => Ok(false),
            Some(Request::Hello { name }) => {
                self.peer_name = name;
                self.send(&Reply::Hello {
                    name: my_name.to_string(),
                })?;
                Ok(true)
            }
            Some(other) => Err(Error::Protocol(format!(
                "a connection must open with hello, not {other:?}"
            ))),
        }
    }

    /// The other end's name (its address until the handshake is done).
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
        read_frame(&mut self.reader).map_err(Error::from)
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
