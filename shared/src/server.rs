//! The threaded server of stages 2 and 3, and the stop signals.
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
//! [`crate::interrupt`].) The listening socket is closed when the acceptor ends, so the port can
//! be bound again immediately.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::conn::Connection;
use crate::error::{Error, Result};
use crate::local::LocalBox;
use crate::protocol::{ErrorCode, Reply};
use crate::serve::{self, ServeOptions};

/// How a [`Server`] behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The most connections served at once; more are refused with a "busy" reply.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 256,
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
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finished(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.finished.lock().unwrap_or_else(|p| p.into_inner())
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
    /// [`serve::bind`]). Binding is the caller's job so that tests can bind port 0.
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
            let opts = ServeOptions {
                udp: Some(&for_thread.udp),
            };
            serve::serve_connection(conn, &for_thread.local, &opts);
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

/// Delivers SIGINT and SIGTERM as messages on a channel, so a stage's main loop can `select!` on
/// them next to its other work and stop cleanly. Dropping it stops the watcher thread.
pub struct StopSignals {
    /// One message per signal received (the signal's number).
    pub receiver: crossbeam_channel::Receiver<i32>,
    /// Closes the signal iterator, which ends the thread.
    handle: signal_hook::iterator::Handle,
    /// The watcher thread.
    thread: Option<JoinHandle<()>>,
}

impl StopSignals {
    /// Starts watching SIGINT and SIGTERM. From now on they no longer kill the process at once:
    /// the owner decides what to do.
    ///
    /// # Errors
    /// If the handlers cannot be installed.
    pub fn install() -> Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
            .map_err(|e| Error::io("signal handlers", e))?;
        let handle = signals.handle();
        let (tx, receiver) = crossbeam_channel::unbounded();
        let thread = thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if tx.send(signal).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::io("signal thread", e))?;
        Ok(StopSignals {
            receiver,
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Request;

    fn start(dir: &std::path::Path, max: usize) -> Server {
        let local = Arc::new(LocalBox::open(dir, "test").unwrap());
        let (listener, udp) = serve::bind("127.0.0.1:0").unwrap();
        Server::start(
            listener,
            udp,
            local,
            ServerConfig {
                max_connections: max,
            },
        )
        .unwrap()
    }

    #[test]
    fn serves_several_clients_at_once_and_stops_with_idle_ones_open() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.txt"), "hi").unwrap();
        let server = start(tmp.path(), 16);
        let addr = server.addr().to_string();
        // Two silent clients hold their own threads only.
        let _silent: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&addr).unwrap()).collect();
        let mut a = Connection::connect(&addr, "a").unwrap();
        let mut b = Connection::connect(&addr, "b").unwrap();
        let la = crate::transfer::list(&mut a, crate::protocol::Filter::All, false, false).unwrap();
        let lb = crate::transfer::list(&mut b, crate::protocol::Filter::All, true, false).unwrap();
        assert_eq!(la.len(), 1);
        assert_eq!(
            lb[0].md5.as_deref(),
            Some("49f68a5c8493ec2c0bf489821c21fc3b")
        );
        server.stop();
        // The port is free again at once.
        TcpListener::bind(&addr).unwrap();
        // And the open connections were closed.
        assert!(
            a.send(&Request::Hash {
                path: "a.txt".into()
            })
            .is_err()
                || a.recv::<Reply>().is_err()
        );
    }

    #[test]
    fn connections_past_the_cap_are_refused_with_a_reply() {
        let tmp = tempfile::tempdir().unwrap();
        let server = start(tmp.path(), 1);
        let addr = server.addr().to_string();
        let _first = Connection::connect(&addr, "first").unwrap();
        let err = Connection::connect(&addr, "second").err().unwrap();
        assert!(err.to_string().contains("too many connections"), "{err}");
        server.stop();
    }
}
