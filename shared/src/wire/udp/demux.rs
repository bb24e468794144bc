//! Sharing the server's one UDP socket between transfers.
//!
//! The contract puts UDP on the same port as TCP, so every UDP download a server runs goes
//! through one socket. In stage 1 there is one transfer at a time; in stages 2 and 3 each
//! connection has its own thread, and several of them may be waiting for acks on that socket at
//! once. A datagram read by one thread may belong to another.
//!
//! The way out, kept small: a [`Demux`] per socket, with one mailbox per transfer (keyed by the
//! transfer's token), and a rule that **at most one thread reads the socket at a time**. A thread
//! that wants a datagram first looks in its mailbox. If it is empty and nobody is reading, it
//! becomes the reader: it calls `recv_from`, and when a datagram comes, keeps it if it is its own
//! or drops it into the owner's mailbox and wakes the others. If someone else is already reading,
//! it sleeps on a condition variable until woken or until its own deadline. (This is known as the
//! leader/followers pattern.) With one transfer, as in stage 1, it costs one uncontended lock per
//! datagram.
//!
//! What the demultiplexer drops: anything that is not a minibox datagram, tokens nobody
//! registered (noise, or acks that come in after their transfer ended), and datagrams with a known
//! token from an IP address other than the one whose TCP connection asked for that transfer.
//!
//! The demultiplexer belongs to the socket, but the socket is handed around as a plain
//! `&UdpSocket`, so a small registry maps each socket's local address to its demultiplexer (two
//! sockets cannot be bound to the same address; a clone of the socket shares its queue and so
//! rightly shares its demultiplexer too). Entries go away when the last transfer on a socket ends.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::blocks::new_token;
use super::datagram;
use crate::util::lock;

/// Datagrams waiting in one mailbox at most; more are dropped, as a full socket buffer would.
const MAILBOX_CAP: usize = 1024;

/// Every socket's demultiplexer, by local address.
static REGISTRY: Mutex<Vec<(SocketAddr, Weak<Demux>)>> = Mutex::new(Vec::new());

/// The demultiplexer of one socket.
#[derive(Debug, Default)]
struct Demux {
    /// Mailboxes and who reads.
    state: Mutex<State>,
    /// Signalled when a reader is done (a datagram may be in your mailbox, or the socket is free).
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// One mailbox per registered token.
    mailboxes: HashMap<u64, Mailbox>,
    /// Someone is in `recv_from` now.
    reading: bool,
    /// The read timeout last set on the socket (only the reader sets it).
    timeout: Option<Duration>,
}

#[derive(Debug)]
struct Mailbox {
    /// Only datagrams from this IP are accepted for the token.
    peer: IpAddr,
    /// Datagrams read by another thread for this token, with their source.
    queue: VecDeque<(Vec<u8>, SocketAddr)>,
}

impl Demux {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a map of queues: still consistent if a holder panicked.
        lock(&self.state)
    }

    /// The demultiplexer of `socket`, made on first use.
    fn of(socket: &UdpSocket) -> io::Result<Arc<Demux>> {
        let addr = socket.local_addr()?;
        let mut registry = lock(&REGISTRY);
        registry.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(demux) = registry
            .iter()
            .find(|(a, _)| *a == addr)
            .and_then(|(_, weak)| weak.upgrade())
        {
            return Ok(demux);
        }
        let demux = Arc::new(Demux::default());
        registry.push((addr, Arc::downgrade(&demux)));
        Ok(demux)
    }
}

/// One transfer's place on a shared socket: its token and mailbox. Unregistered on drop.
#[derive(Debug)]
pub struct Inbox<'s> {
    /// The socket shared by every transfer.
    socket: &'s UdpSocket,
    /// Its demultiplexer.
    demux: Arc<Demux>,
    /// This transfer's token.
    token: u64,
    /// Only datagrams from this IP are ours.
    peer: IpAddr,
}

impl<'s> Inbox<'s> {
    /// Registers a new transfer on `socket` for a client at `peer`, with a fresh token.
    ///
    /// # Errors
    /// If the socket's address cannot be read.
    pub fn open(socket: &'s UdpSocket, peer: IpAddr) -> io::Result<Self> {
        let demux = Demux::of(socket)?;
        let token = {
            let mut state = demux.lock();
            let mut token = new_token();
            while state.mailboxes.contains_key(&token) {
                token = new_token();
            }
            state.mailboxes.insert(
                token,
                Mailbox {
                    peer,
                    queue: VecDeque::new(),
                },
            );
            token
        };
        Ok(Inbox {
            socket,
            demux,
            token,
            peer,
        })
    }

    /// This transfer's token.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Sends one datagram (sending needs no coordination: each `send_to` is one whole datagram).
    ///
    /// # Errors
    /// If the socket refuses.
    pub fn send_to(&self, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        self.socket.send_to(bytes, to).map(drop)
    }

    /// Waits until `deadline` for a datagram of this transfer; copies it into `buf` and returns
    /// its length and source. `Ok(None)` when the deadline passes first.
    ///
    /// # Errors
    /// If the socket fails (other than timing out).
    pub fn recv(
        &self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> io::Result<Option<(usize, SocketAddr)>> {
        let mut state = self.demux.lock();
        loop {
            if let Some((bytes, from)) = state
                .mailboxes
                .get_mut(&self.token)
                .and_then(|m| m.queue.pop_front())
            {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                return Ok(Some((n, from)));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wait = deadline - now;
            if state.reading {
                // Someone else reads; they will wake us when they got something.
                state = self
                    .demux
                    .wake
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            // Our turn to read. Round the wait up to a whole millisecond: the kernel counts
            // timeouts in clock ticks anyway, and fewer distinct values mean fewer setsockopt calls.
            state.reading = true;
            let timeout = Duration::from_millis(wait.as_millis().max(1) as u64);
            let set = state.timeout != Some(timeout);
            drop(state);
            let result = (if set {
                self.socket.set_read_timeout(Some(timeout))
            } else {
                Ok(())
            })
            .and_then(|()| self.socket.recv_from(buf));
            state = self.demux.lock();
            state.reading = false;
            if set {
                state.timeout = Some(timeout);
            }
            self.demux.wake.notify_all();
            match result {
                Ok((n, from)) if self.sort(&mut state, &buf[..n], from) => {
                    return Ok(Some((n, from)))
                }
                Ok(_) => {}
                Err(e) if is_timeout(&e) || is_icmp(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Inbox<'_> {
    /// Takes a datagram just read: true if it is ours; another transfer's goes to its mailbox;
    /// noise, unknown tokens and strangers' datagrams are dropped.
    fn sort(&self, state: &mut State, bytes: &[u8], from: SocketAddr) -> bool {
        match datagram::token_of(bytes) {
            Some(t) if t == self.token && from.ip() == self.peer => return true,
            Some(t) if t == self.token => {
                log::debug!("udp: ignoring a datagram for our token from {from}")
            }
            Some(t) => match state.mailboxes.get_mut(&t) {
                Some(m) if m.peer == from.ip() && m.queue.len() < MAILBOX_CAP => {
                    m.queue.push_back((bytes.to_vec(), from));
                }
                _ => log::debug!("udp: dropping a datagram from {from} (unknown token)"),
            },
            None => log::debug!("udp: dropping {} bytes of noise from {from}", bytes.len()),
        }
        false
    }
}

impl Drop for Inbox<'_> {
    fn drop(&mut self) {
        self.demux.lock().mailboxes.remove(&self.token);
    }
}

/// A `recv` that ran out of time (Linux says `WouldBlock`, other systems `TimedOut`).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// An error a UDP socket reports for an ICMP message about an earlier send (port unreachable): it
/// concerns some past datagram, not this socket's health, so the loops go on.
pub fn is_icmp(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests;
