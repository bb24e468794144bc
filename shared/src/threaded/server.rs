//! Stage 2: the threaded server (stages 2 and 3 serve with it).
//!
//! Stage 1 serves one client at a time. From stage 2 on, a box must answer its peer *while* its
//! own user types commands, and answer several peers at once. [`Server::start`] runs an acceptor
//! thread that hands every accepted connection to a thread of its own.
//!
//! Why a thread per connection (with a cap) rather than a small fixed pool? A connection spends
//! nearly all its life waiting on the network, and a blocked thread costs only its stack. With a
//! pool of, say, 8 workers, 8 clients that connect and say nothing would stall everybody for the
//! 10 s idle timeout. With one thread each, a silent client only holds its own thread. The cap
//! ([`ServerConfig::max_connections`]) keeps a flood from exhausting the machine: past it, a new
//! connection gets a one-line "busy" error and is closed.
//!
//! Shutdown is explicit: [`Server::stop`] sets a flag, wakes the acceptor (which is blocked in
//! `accept`) by connecting to it, shuts down every open connection's socket so that threads
//! blocked in `read` or `write` return at once, and joins every thread. A file this box was
//! sending is cut off mid-way; the receiver sees the connection close before the trailer and
//! installs nothing. (Downloads *into* this box are the shell's business: see
//! [`super::interrupt`].) The listening socket is closed when the acceptor ends, so the port can
//! be bound again immediately.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::local::LocalBox;
use crate::protocol::error::{Error, Result};
use crate::protocol::message::{ErrorCode, Reply};
use crate::serve::sync_list::Witness;
use crate::serve::{serve_connection, Options};
use crate::util::lock;
use crate::wire::conn::Connection;

/// How a [`Server`] behaves.
#[derive(Clone)]
pub struct ServerConfig {
    /// The most connections served at once; more are refused with a "busy" reply.
    pub max_connections: usize,
    /// Stage 3: told what syncing peers saw of this box (see [`Witness`]).
    pub witness: Option<Arc<dyn Witness>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 256,
            witness: None,
        }
    }
}

/// An open connection: a clone of its socket (to shut it down from `stop`) and the thread serving
/// it (to join it), keyed by connection number.
type LiveTable = HashMap<u64, (TcpStream, Option<JoinHandle<()>>)>;

/// What the acceptor and the connection threads share.
struct Shared {
    /// The box served.
    local: Arc<LocalBox>,
    /// The box's UDP socket (same port as TCP).
    udp: UdpSocket,
    /// Set once by [`Server::stop`]; checked by the acceptor after every accept.
    stopping: AtomicBool,
    /// Open connections by id: a clone of each socket, so `stop` can shut it down, and the
    /// thread serving it, so `stop` can join it.
    live: Mutex<LiveTable>,
    /// Connection threads that ended and wait to be joined.
    finished: Mutex<Vec<JoinHandle<()>>>,
    /// Numbers connections (and names their threads).
    next_id: AtomicU64,
    /// See [`ServerConfig`].
    config: ServerConfig,
}

impl Shared {
    fn live(&self) -> MutexGuard<'_, LiveTable> {
        lock(&self.live)
    }

    fn finished(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        lock(&self.finished)
    }
}

/// A running threaded server. Stop it with [`Server::stop`]; dropping it stops it too.
pub struct Server {
    /// Where it listens.
    addr: SocketAddr,
    /// State shared with its threads.
    shared: Arc<Shared>,
    /// The acceptor thread; `None` once joined.
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts serving `local` on an already bound listener and UDP socket (see
    /// [`crate::wire::listen::bind`]). Binding is the caller's job so that tests can bind port 0.
    ///
    /// # Errors
    /// If the acceptor thread cannot be started.
    pub fn start(
        listener: TcpListener,
        udp: UdpSocket,
        local: Arc<LocalBox>,
        config: ServerConfig,
    ) -> Result<Server> {
        let addr = listener
            .local_addr()
            .map_err(|e| Error::net("reading the bound address", e))?;
        // A serving box is listed again and again: keep its scan while nothing changes.
        local.keep_scans();
        let shared = Arc::new(Shared {
            local,
            udp,
            stopping: AtomicBool::new(false),
            live: Mutex::new(HashMap::new()),
            finished: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            config,
        });
        let for_acceptor = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name("acceptor".into())
            .spawn(move || accept_loop(&listener, &for_acceptor))
            .map_err(|e| Error::io("acceptor thread", e))?;
        Ok(Server {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections are being served right now.
    pub fn connections(&self) -> usize {
        self.shared.live().len()
    }

    /// Stops accepting, closes every open connection, and joins every thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        // `accept` blocks until a connection arrives; make one. If it fails the acceptor is not
        // blocked in accept anyway (it failed or ended).
        let _ = TcpStream::connect_timeout(&wake_address(self.addr), Duration::from_secs(1));
        let _ = acceptor.join();
        // Wake every connection thread blocked on its socket, then join them all: those still
        // serving and those that already ended (taken under the same lock, see `admit`).
        let handles: Vec<JoinHandle<()>> = {
            let mut live = self.shared.live();
            let mut handles: Vec<JoinHandle<()>> = live
                .values_mut()
                .filter_map(|(stream, handle)| {
                    let _ = stream.shutdown(Shutdown::Both);
                    handle.take()
                })
                .collect();
            handles.append(&mut self.shared.finished());
            handles
        };
        for handle in handles {
            let _ = handle.join();
        }
        log::info!("server on {} stopped", self.addr);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A backstop: owners call `stop` explicitly.
        self.shutdown();
    }
}

/// Where to connect to reach our own listener (an unspecified address is not connectable).
fn wake_address(addr: SocketAddr) -> SocketAddr {
    let mut target = addr;
    if addr.ip().is_unspecified() {
        target.set_ip(match addr {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    target
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        reap(shared);
        match stream {
            Ok(stream) => admit(stream, shared),
            // A client that gave up before we accepted it; or the process is out of file
            // descriptors, in which case a short pause lets connections finish.
            Err(e) => {
                log::warn!("accept failed: {e}");
                if e.kind() != io::ErrorKind::ConnectionAborted {
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
    // The listener is dropped by the caller's closure right after this: the port is free.
}

/// Joins connection threads that have ended, so handles do not pile up.
fn reap(shared: &Shared) {
    let done: Vec<JoinHandle<()>> = shared.finished().drain(..).collect();
    for handle in done {
        let _ = handle.join();
    }
}

/// Gives an accepted connection its own thread, or refuses it when at the cap.
fn admit(stream: TcpStream, shared: &Arc<Shared>) {
    let Ok(conn) = Connection::new(stream) else {
        return;
    };
    let Ok(clone) = conn.stream().try_clone() else {
        return;
    };
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let mut live = shared.live();
    if live.len() >= shared.config.max_connections {
        drop(live);
        log::warn!(
            "refusing {}: {} connections already",
            conn.peer_addr(),
            shared.config.max_connections
        );
        let mut conn = conn;
        let _ = conn.send(&Reply::error(
            ErrorCode::Busy,
            "the box is serving too many connections; try again shortly",
        ));
        conn.shutdown();
        return;
    }
    let for_thread = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name(format!("conn-{id}"))
        .spawn(move || {
            let opts = Options {
                udp: Some(&for_thread.udp),
                witness: for_thread.config.witness.as_deref(),
                // A thread per connection: a silent one holds only its own.
                hello_within: None,
            };
            serve_connection(conn, &for_thread.local, opts);
            // Hand our own handle to the acceptor (or to `stop`) for joining. Both steps happen
            // under the `live` lock, so `stop` (which takes the same lock) finds this thread in
            // one table or the other, never in neither.
            let mut live = for_thread.live();
            if let Some((_, Some(handle))) = live.remove(&id) {
                for_thread.finished().push(handle);
            }
        });
    match spawned {
        Ok(handle) => {
            live.insert(id, (clone, Some(handle)));
        }
        Err(e) => log::warn!("cannot start a connection thread: {e}"),
    }
}

#[cfg(test)]
mod tests;
