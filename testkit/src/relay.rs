//! A damaging relay, to test UDP transfers over a network that loses, duplicates and reorders.
//!
//! [`Relay::start`] listens on `127.0.0.1:PORT` for TCP and on the same port number for UDP, like
//! a box does, and forwards to a real server:
//!
//! - TCP connections are forwarded untouched, byte for byte, both ways;
//! - UDP datagrams from a client go to the server from a socket of the relay's own (one per
//!   client address), and the server's answers go back to that client's address; on the way,
//!   in **both directions**, each datagram may be dropped, duplicated or held back and sent after
//!   the next one (reordered), at the rates of a [`Damage`], decided by a seeded generator so a
//!   failing run can be replayed.
//!
//! A client that connects to the relay's address sees a server on a bad network. [`Stats`] count
//! what was done, so a test can check that damage really happened.
//!
//! Every thread stops within [`TICK`] of the relay being dropped, and is joined.

use std::collections::hash_map::{Entry, HashMap};
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often relay threads look at the stop flag (and release a held-back datagram).
pub const TICK: Duration = Duration::from_millis(10);

/// What happens to datagrams on the way, per direction. Rates are probabilities in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Damage {
    /// Chance that a datagram is dropped.
    pub drop: f64,
    /// Chance that a forwarded datagram is sent twice.
    pub duplicate: f64,
    /// Chance that a datagram is held back and sent after the next one.
    pub reorder: f64,
    /// Server to client only: chance that, before a datagram, the relay sends the client a
    /// forged copy of it from the server's address (noise, a wrong token, a wrong length, a block past
    /// the end, an ack), which the client must ignore.
    pub junk: f64,
    /// Seed of the pseudo-random generator.
    pub seed: u64,
}

impl Damage {
    /// Forwards everything as it comes.
    pub fn none() -> Self {
        Damage {
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            junk: 0.0,
            seed: 1,
        }
    }

    /// Drops `loss` of the datagrams, and duplicates and reorders 5 % of them.
    pub fn lossy(loss: f64, seed: u64) -> Self {
        Damage {
            drop: loss,
            duplicate: 0.05,
            reorder: 0.05,
            junk: 0.0,
            seed,
        }
    }

    /// The same damage, plus forged datagrams toward the client at rate `junk`.
    pub fn with_junk(self, junk: f64) -> Self {
        Damage { junk, ..self }
    }

    /// Drops every datagram (TCP still passes).
    pub fn everything_dropped() -> Self {
        Damage {
            drop: 1.0,
            ..Damage::none()
        }
    }
}

/// Counters for one direction.
#[derive(Debug, Default)]
pub struct Counters {
    /// Datagrams received by the relay.
    pub seen: AtomicU64,
    /// Dropped.
    pub dropped: AtomicU64,
    /// Sent twice.
    pub duplicated: AtomicU64,
    /// Held back and sent after a later one.
    pub reordered: AtomicU64,
    /// Forged datagrams sent (see [`Damage::junk`]).
    pub injected: AtomicU64,
    /// The largest datagram received, in bytes (for data datagrams: the block size plus the
    /// 24-byte header, so a test can tell which block size the server chose).
    pub largest: AtomicU64,
}

/// What the relay did, by direction.
#[derive(Debug, Default)]
pub struct Stats {
    /// Client to server.
    pub to_server: Counters,
    /// Server to client.
    pub to_client: Counters,
}

impl Counters {
    /// (seen, dropped, duplicated, reordered).
    pub fn get(&self) -> (u64, u64, u64, u64) {
        (
            self.seen.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.duplicated.load(Ordering::Relaxed),
            self.reordered.load(Ordering::Relaxed),
        )
    }
}

/// A running relay; stopped and joined on drop.
pub struct Relay {
    /// Where clients connect (TCP and UDP).
    addr: SocketAddr,
    /// Set on drop.
    stop: Arc<AtomicBool>,
    /// Every thread, to join.
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Open TCP streams, to shut down on drop.
    streams: Arc<Mutex<Vec<TcpStream>>>,
    /// Counters.
    stats: Arc<Stats>,
}

impl Relay {
    /// Starts a relay in front of the server at `target` (TCP and UDP on the same port).
    ///
    /// # Panics
    /// If no port can be bound or a thread cannot start.
    pub fn start(target: SocketAddr, damage: Damage) -> Relay {
        let (listener, front) = bind_pair();
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let stats = Arc::new(Stats::default());
        let relay = Relay {
            addr,
            stop: Arc::clone(&stop),
            threads: Arc::clone(&threads),
            streams: Arc::clone(&streams),
            stats: Arc::clone(&stats),
        };
        let tcp = {
            let (stop, threads, streams) = (Arc::clone(&stop), Arc::clone(&threads), streams);
            spawn("relay-accept", move || {
                accept_loop(&listener, target, &stop, &threads, &streams);
            })
        };
        let udp = {
            let (stop, threads) = (Arc::clone(&stop), Arc::clone(&threads));
            spawn("relay-udp", move || {
                udp_front(front, target, damage, &stop, &threads, &stats);
            })
        };
        lock(&relay.threads).extend([tcp, udp]);
        relay
    }

    /// The address to give clients.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What was done so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor, and end every pump.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        for s in lock(&self.streams).iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Threads may add threads while stopping (an accept in progress): join until none left.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let batch: Vec<_> = lock(&self.threads).drain(..).collect();
            if batch.is_empty() || Instant::now() > deadline {
                break;
            }
            for t in batch {
                let _ = t.join();
            }
            for s in lock(&self.streams).iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("a relay thread starts")
}

/// A TCP listener and a UDP socket on one port of 127.0.0.1.
fn bind_pair() -> (TcpListener, UdpSocket) {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a TCP port");
        let addr = tcp.local_addr().expect("local address");
        if let Ok(udp) = UdpSocket::bind(addr) {
            return (tcp, udp);
        }
    }
    panic!("no port free for both TCP and UDP");
}

fn accept_loop(
    listener: &TcpListener,
    target: SocketAddr,
    stop: &AtomicBool,
    threads: &Mutex<Vec<JoinHandle<()>>>,
    streams: &Mutex<Vec<TcpStream>>,
) {
    for client in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect(target) else {
            continue; // the client sees its connection close
        };
        let pairs = [
            (client.try_clone(), server.try_clone()),
            (server.try_clone(), client.try_clone()),
        ];
        {
            let mut s = lock(streams);
            s.extend(client.try_clone());
            s.extend(server.try_clone());
        }
        for (from, to) in pairs {
            let (Ok(mut from), Ok(mut to)) = (from, to) else {
                continue;
            };
            lock(threads).push(spawn("relay-pump", move || {
                let _ = io::copy(&mut from, &mut to);
                let _ = to.shutdown(Shutdown::Write);
            }));
        }
    }
}

/// One direction's damage: a generator and the datagram held back, if any.
struct Pipe<'a> {
    damage: Damage,
    state: u64,
    held: Option<(Vec<u8>, Instant)>,
    counters: &'a Counters,
}

impl<'a> Pipe<'a> {
    fn new(damage: Damage, salt: u64, counters: &'a Counters) -> Self {
        Pipe {
            damage,
            state: (damage.seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1,
            held: None,
            counters,
        }
    }

    /// A uniform number in `[0, 1)` (xorshift64*).
    fn chance(&mut self) -> f64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let x = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Passes one datagram through: maybe dropped, held, duplicated.
    fn push(&mut self, bytes: &[u8], send: &mut impl FnMut(&[u8])) {
        self.counters.seen.fetch_add(1, Ordering::Relaxed);
        self.counters
            .largest
            .fetch_max(bytes.len() as u64, Ordering::Relaxed);
        if self.chance() < self.damage.drop {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.held.is_none() && self.chance() < self.damage.reorder {
            self.counters.reordered.fetch_add(1, Ordering::Relaxed);
            self.held = Some((bytes.to_vec(), Instant::now()));
            return;
        }
        send(bytes);
        if self.chance() < self.damage.duplicate {
            self.counters.duplicated.fetch_add(1, Ordering::Relaxed);
            send(bytes);
        }
        if let Some((held, _)) = self.held.take() {
            send(&held);
        }
    }

    /// Releases a datagram held back for too long (nothing came after it).
    fn tick(&mut self, send: &mut impl FnMut(&[u8])) {
        if self
            .held
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() >= TICK)
        {
            if let Some((held, _)) = self.held.take() {
                send(&held);
            }
        }
    }
}

/// Client-to-server datagrams: read on the front socket, forwarded from a per-client upstream
/// socket, whose own thread carries the answers back.
fn udp_front(
    front: UdpSocket,
    target: SocketAddr,
    damage: Damage,
    stop: &Arc<AtomicBool>,
    threads: &Mutex<Vec<JoinHandle<()>>>,
    stats: &Arc<Stats>,
) {
    let front = Arc::new(front);
    let _ = front.set_read_timeout(Some(TICK));
    big_buffers(&front);
    // Per client: the socket that speaks to the server for it, and that direction's damage.
    let mut upstreams: HashMap<SocketAddr, (UdpSocket, Pipe<'_>)> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    let mut clients = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let (n, client) = match front.recv_from(&mut buf) {
            Ok(got) => got,
            Err(_) => {
                // Timeouts, and ICMP errors about earlier sends: nothing to forward.
                for (up, pipe) in upstreams.values_mut() {
                    pipe.tick(&mut |b| drop(up.send(b)));
                }
                continue;
            }
        };
        let (up, pipe) = match upstreams.entry(client) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => {
                clients += 1;
                let back = (Arc::clone(stop), Arc::clone(stats), Arc::clone(&front));
                let Some(up) = open_upstream(target, client, damage, clients, back, threads) else {
                    continue;
                };
                new.insert((up, Pipe::new(damage, clients, &stats.to_server)))
            }
        };
        pipe.push(&buf[..n], &mut |b| drop(up.send(b)));
    }
}

/// Opens the socket that speaks to the server for `client`, and the thread that carries the
/// server's answers back to it.
fn open_upstream(
    target: SocketAddr,
    client: SocketAddr,
    damage: Damage,
    salt: u64,
    (stop, stats, front): (Arc<AtomicBool>, Arc<Stats>, Arc<UdpSocket>),
    threads: &Mutex<Vec<JoinHandle<()>>>,
) -> Option<UdpSocket> {
    let up = UdpSocket::bind("127.0.0.1:0")
        .and_then(|u| u.connect(target).map(|()| u))
        .ok()?;
    big_buffers(&up);
    let back = up.try_clone().ok()?;
    lock(threads).push(spawn("relay-udp-back", move || {
        udp_back(&back, &front, client, damage, salt, &stop, &stats);
    }));
    Some(up)
}

/// Server-to-client datagrams for one client.
fn udp_back(
    up: &UdpSocket,
    front: &UdpSocket,
    client: SocketAddr,
    damage: Damage,
    salt: u64,
    stop: &AtomicBool,
    stats: &Stats,
) {
    let _ = up.set_read_timeout(Some(TICK));
    let mut pipe = Pipe::new(damage, 1000 + salt, &stats.to_client);
    let mut buf = vec![0u8; 65_536];
    let mut forged = 0u64;
    while !stop.load(Ordering::SeqCst) {
        match up.recv(&mut buf) {
            Ok(n) => {
                // The forgery goes first, so that a client that took it would take it instead
                // of the real datagram, not as a harmless duplicate.
                if damage.junk > 0.0 && pipe.chance() < damage.junk {
                    let fake = forge(&buf[..n], forged);
                    let _ = front.send_to(&fake, client);
                    forged += 1;
                    stats.to_client.injected.fetch_add(1, Ordering::Relaxed);
                }
                pipe.push(&buf[..n], &mut |b| drop(front.send_to(b, client)));
            }
            Err(_) => pipe.tick(&mut |b| drop(front.send_to(b, client))),
        }
    }
}

/// A forged datagram made from a real one, of the `n % 5`th kind: noise, another token (with
/// the payload inverted), the right token with a payload one byte short, the right token with a block far past the end,
/// or an ack (which a client never accepts). The layout is minibox's (docs/PROTOCOL.md): token at
/// bytes 4..12, block number at 12..16, payload from 24.
fn forge(real: &[u8], n: u64) -> Vec<u8> {
    let mut fake = real.to_vec();
    match (n % 5, fake.len() >= 24) {
        (1, true) => {
            // Another token, and bytes that would corrupt the file if taken.
            fake[4] ^= 0x55;
            fake[24..].iter_mut().for_each(|b| *b = !*b);
        }
        (2, true) if fake.len() > 24 => {
            fake.pop();
        }
        (3, true) => fake[12..16].copy_from_slice(&0xFFFF_FFF0_u32.to_be_bytes()),
        (4, true) => {
            fake[3] = b'A';
            fake.truncate(34);
        }
        _ => fake = crate::pseudo_random(1 + (n as usize * 37) % 1400, n),
    }
    fake
}

/// Room for bursts, so that the relay itself loses nothing it was not told to.
fn big_buffers(socket: &UdpSocket) {
    let s = socket2::SockRef::from(socket);
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(8 << 20);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_roughly_kept_and_replayable() {
        let counters = Counters::default();
        let mut sent = Vec::new();
        let mut pipe = Pipe::new(Damage::lossy(0.3, 42), 1, &counters);
        for i in 0..10_000u32 {
            pipe.push(&i.to_be_bytes(), &mut |b| sent.push(b.to_vec()));
        }
        let (seen, dropped, duplicated, reordered) = counters.get();
        assert_eq!(seen, 10_000);
        assert_eq!(counters.largest.load(Ordering::Relaxed), 4);
        assert!((2_700..3_300).contains(&dropped), "{dropped}");
        assert!(duplicated > 200 && reordered > 200);
        // Out of order somewhere, and the same again with the same seed.
        assert!(sent.windows(2).any(|w| w[0] > w[1]));
        let again = Counters::default();
        let mut replay = Vec::new();
        let mut pipe = Pipe::new(Damage::lossy(0.3, 42), 1, &again);
        for i in 0..10_000u32 {
            pipe.push(&i.to_be_bytes(), &mut |b| replay.push(b.to_vec()));
        }
        assert_eq!(sent, replay);
    }

    #[test]
    fn forwards_udp_both_ways_and_tcp_untouched() {
        // A tiny echo server on TCP and UDP of one port.
        let (listener, udp) = bind_pair();
        let target = listener.local_addr().unwrap();
        let echo_udp = std::thread::spawn(move || {
            udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 100];
            let (n, from) = udp.recv_from(&mut buf).unwrap();
            udp.send_to(&buf[..n], from).unwrap();
        });
        let echo_tcp = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = s.try_clone().unwrap();
            io::copy(&mut r, &mut s).unwrap();
        });
        let relay = Relay::start(target, Damage::none());
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(relay.addr()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.send(b"ping").unwrap();
        let mut buf = [0u8; 100];
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        let mut tcp = TcpStream::connect(relay.addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        io::Write::write_all(&mut tcp, b"hello").unwrap();
        let mut got = [0u8; 5];
        io::Read::read_exact(&mut tcp, &mut got).unwrap();
        assert_eq!(&got, b"hello");
        drop(tcp);
        echo_udp.join().unwrap();
        echo_tcp.join().unwrap();
        assert_eq!(relay.stats().to_server.get().0, 1);
        assert_eq!(relay.stats().to_client.get().0, 1);
    }

    #[test]
    fn everything_dropped_means_nothing_arrives() {
        let (listener, udp) = bind_pair();
        let target = listener.local_addr().unwrap();
        let relay = Relay::start(target, Damage::everything_dropped());
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"x", relay.addr()).unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 10];
        assert!(udp.recv_from(&mut buf).is_err());
        assert_eq!(relay.stats().to_server.get().1, 1);
    }
}
