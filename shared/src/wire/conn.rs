//! A TCP connection that speaks frames.
//!
//! Reads go through a `BufReader`, so reading a 5-byte header does not cost a system call each;
//! the same buffer must then serve the raw file bytes that follow a header, since it may hold
//! their first part already. Writes go through a `BufWriter`, flushed once per reply, so a
//! listing of many small frames leaves in few TCP segments.
//!
//! Both directions time out after [`IDLE_TIMEOUT`]: a peer that says nothing, or stops reading,
//! is given up on instead of holding a thread (in stage 1, the whole server) forever. While a
//! frame is being read, the read timeout is cut to the time the frame has left (see
//! [`crate::protocol::frame`]), so a peer that drips a frame is dropped at its deadline.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::protocol::error::{Error, Result};
use crate::protocol::frame::{read_frame_within, write_frame, FRAME_TIME};
use crate::protocol::limits::IDLE_TIMEOUT;
use crate::protocol::name::clean_name;

/// Size of the read and write buffers: large, because file data flows through them.
const BUF: usize = 256 * 1024;

/// One open connection to a peer.
pub struct Connection {
    /// Buffered reading side (frames and raw bytes).
    reader: BufReader<TcpStream>,
    /// Buffered writing side.
    writer: BufWriter<TcpStream>,
    /// The other end's socket address.
    peer_addr: SocketAddr,
    /// The other end's name, learnt in the handshake (its address until then).
    peer_name: String,
}

impl Connection {
    /// Wraps an accepted or connected stream and sets its timeouts.
    ///
    /// # Errors
    /// If the socket cannot be configured.
    pub fn new(stream: TcpStream) -> Result<Self> {
        let context = "configuring the socket";
        let peer_addr = stream.peer_addr().map_err(|e| Error::net(context, e))?;
        let setup = |s: &TcpStream| -> io::Result<TcpStream> {
            s.set_read_timeout(Some(IDLE_TIMEOUT))?;
            s.set_write_timeout(Some(IDLE_TIMEOUT))?;
            // Replies are flushed whole: no need to wait for more bytes to fill a segment.
            s.set_nodelay(true)?;
            s.try_clone()
        };
        let write_half = setup(&stream).map_err(|e| Error::net(context, e))?;
        Ok(Connection {
            reader: BufReader::with_capacity(BUF, stream),
            writer: BufWriter::with_capacity(BUF, write_half),
            peer_addr,
            peer_name: peer_addr.to_string(),
        })
    }

    /// The other end's name, cleaned (see [`clean_name`]): safe in logs and file names.
    pub fn peer_name(&self) -> &str {
        &self.peer_name
    }

    /// Records the name the other end announced in the handshake.
    pub fn set_peer_name(&mut self, name: &str) {
        self.peer_name = clean_name(name);
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

    /// Flushes queued frames.
    ///
    /// # Errors
    /// If the socket fails.
    pub fn flush(&mut self) -> Result<()> {
        self.writer
            .flush()
            .map_err(|e| Error::net("sending to the peer", e))
    }

    /// Whether bytes from the peer wait in our buffer already: a pipelining client's next
    /// request. A server answering a batch flushes only when none waits.
    pub fn input_pending(&self) -> bool {
        !self.reader.buffer().is_empty()
    }

    /// Reads one frame; the peer hanging up is an error here.
    ///
    /// # Errors
    /// If the peer hung up, timed out or sent a bad frame.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T> {
        let eof = || {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the connection",
            )
        };
        self.recv_opt()?
            .ok_or_else(|| Error::net("reading from the peer", eof()))
    }

    /// Reads one frame; `None` if the peer hung up cleanly between frames.
    ///
    /// # Errors
    /// If the peer timed out or sent a bad frame.
    pub fn recv_opt<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        self.recv_opt_within(FRAME_TIME)
    }

    /// [`Connection::recv_opt`] with the time the frame may take once begun (a handshake's
    /// first frame has less than [`FRAME_TIME`]).
    ///
    /// # Errors
    /// If the peer timed out or sent a bad frame.
    pub fn recv_opt_within<T: DeserializeOwned>(&mut self, limit: Duration) -> Result<Option<T>> {
        // The socket's own timeout, once read, to put back after the frame.
        let mut usual: Option<Option<Duration>> = None;
        let got = read_frame_within(&mut self.reader, limit, |reader, left| {
            // Bytes already buffered are read without waiting: nothing to limit.
            if !reader.buffer().is_empty() {
                return Ok(());
            }
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

    /// The socket itself, for raw bytes sent around the buffer (queued frames are flushed
    /// first, so the order on the wire is kept).
    ///
    /// # Errors
    /// If flushing fails.
    pub fn raw_writer(&mut self) -> Result<&mut TcpStream> {
        self.flush()?;
        Ok(self.writer.get_mut())
    }

    /// Whether the peer has sent something (or closed) that [`Connection::recv`] would read at
    /// once. A UDP transfer asks between datagrams: its TCP connection carries the end.
    ///
    /// # Errors
    /// If the socket fails.
    pub fn poll_input(&mut self) -> Result<bool> {
        if !self.reader.buffer().is_empty() {
            return Ok(true);
        }
        let stream = self.reader.get_ref();
        let context = "checking the connection";
        // A non-blocking peek: data or end of stream is "readable", WouldBlock is quiet.
        stream
            .set_nonblocking(true)
            .map_err(|e| Error::net(context, e))?;
        let peeked = stream.peek(&mut [0u8; 1]);
        stream
            .set_nonblocking(false)
            .map_err(|e| Error::net(context, e))?;
        match peeked {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(false)
            }
            // Data, the end, or a reset connection (the next read reports it).
            _ => Ok(true),
        }
    }

    /// Changes the read timeout (a UDP transfer waits on TCP longer than a request does).
    ///
    /// # Errors
    /// If the socket refuses.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        let socket = self.reader.get_ref();
        socket
            .set_read_timeout(timeout)
            .map_err(|e| Error::net("configuring the socket", e))
    }

    /// Hangs up with a reset rather than a close, so that the peer cannot take it for the clean
    /// end of a conversation (a client that gives up in the middle of an answer must not look
    /// like one that finished; a syncing peer's server takes a clean close for the end of a
    /// round).
    pub fn abort(self) {
        let linger = socket2::SockRef::from(self.reader.get_ref()).set_linger(Some(Duration::ZERO));
        if let Err(e) = linger {
            log::debug!("a reset instead of a close was refused ({e}); closing");
        }
        // Dropped here: closing a socket that lingers for zero seconds resets it. (No
        // `shutdown` first: that would send the clean end this is meant to avoid.)
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
