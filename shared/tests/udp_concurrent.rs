//! Several UDP downloads at once from one server, through its one shared UDP socket, as happens
//! in stages 2 and 3 (a thread per connection). Each transfer must get its own datagrams (the
//! demultiplexer keyed by token) and every copy must be exact, also on a lossy path.

// Helpers of a test crate may unwrap like the tests themselves (clippy.toml only covers #[test]).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use minibox::local::LocalBox;
use minibox::serve::{self, Options};
use minibox::wire::conn::Connection;
use minibox::wire::listen::bind;
use testkit::relay::{Damage, Relay};

const CLIENTS: usize = 3;

/// Serves `CLIENTS` connections, each on its own thread, all sharing the one UDP socket.
fn serve_concurrently(local: &LocalBox) -> (SocketAddr, impl FnOnce() + '_) {
    let (listener, udp) = bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let run = move || {
        std::thread::scope(|scope| {
            for _ in 0..CLIENTS {
                let (stream, _) = listener.accept().unwrap();
                let conn = Connection::new(stream).unwrap();
                let udp = &udp;
                scope.spawn(move || {
                    serve::serve_connection(
                        conn,
                        local,
                        Options {
                            udp: Some(udp),
                            witness: None,
                            hello_within: None,
                        },
                    );
                });
            }
        });
    };
    (addr, run)
}

fn downloads_at_once(damage: Option<Damage>) {
    let source = testkit::tempdir();
    let files: Vec<(String, Vec<u8>)> = (0..CLIENTS)
        .map(|i| {
            let bytes = testkit::pseudo_random((2 << 20) + i * 12_345, i as u64 + 1);
            (format!("file{i}.bin"), bytes)
        })
        .collect();
    for (name, bytes) in &files {
        testkit::write(source.path(), name, bytes);
    }
    let local = LocalBox::open(source.path(), "server").unwrap();
    let (addr, run) = serve_concurrently(&local);
    let relay = damage.map(|d| Relay::start(addr, d));
    let peer = relay.as_ref().map_or(addr, Relay::addr).to_string();
    std::thread::scope(|scope| {
        scope.spawn(run);
        let clients: Vec<_> = files
            .iter()
            .map(|(name, bytes)| {
                let peer = peer.clone();
                scope.spawn(move || {
                    let dest = testkit::tempdir();
                    let mine = Arc::new(LocalBox::open(dest.path(), "client").unwrap());
                    let mut conn =
                        minibox::wire::handshake::connect(&peer, "client", None).unwrap();
                    let entry = minibox::ask::download_udp::download(
                        &mut conn,
                        &mine,
                        name,
                        &mut |_, _| {},
                    )
                    .unwrap();
                    assert_eq!(entry.size, bytes.len() as u64);
                    let got = std::fs::read(dest.path().join(name)).unwrap();
                    assert!(got == *bytes, "{name}: the bytes differ");
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
}

#[test]
fn three_downloads_share_the_server_socket() {
    downloads_at_once(None);
}

#[test]
fn three_downloads_share_the_server_socket_on_a_lossy_path() {
    downloads_at_once(Some(Damage::lossy(0.10, 7)));
}

#[test]
fn the_server_gives_up_on_a_client_that_vanished() {
    // A client asks for a UDP download, then neither sends a datagram nor closes the connection:
    // the server must give up within its 10 s (it answers with an error on TCP).
    let source = testkit::tempdir();
    testkit::write(source.path(), "f.bin", &testkit::pseudo_random(100_000, 3));
    let local = LocalBox::open(source.path(), "server").unwrap();
    let (listener, udp) = bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let (stream, _) = listener.accept().unwrap();
            let conn = Connection::new(stream).unwrap();
            serve::serve_connection(
                conn,
                &local,
                Options {
                    udp: Some(&udp),
                    witness: None,
                    hello_within: None,
                },
            );
        });
        let mut conn =
            minibox::wire::handshake::connect(&addr.to_string(), "silent", None).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        conn.send(&minibox::protocol::Request::DownloadUdp {
            path: "f.bin".into(),
        })
        .unwrap();
        let offer: minibox::protocol::Reply = conn.recv().unwrap();
        assert!(matches!(offer, minibox::protocol::Reply::UdpOffer { .. }));
        let verdict: minibox::protocol::Reply = conn.recv().unwrap();
        match verdict {
            minibox::protocol::Reply::Error { message, .. } => {
                assert!(message.contains("gave up"), "{message}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
        conn.shutdown();
    });
}

#[test]
fn the_server_stops_as_soon_as_the_connection_closes() {
    use minibox::wire::udp::datagram::{encode_ack, Ack};
    let source = testkit::tempdir();
    testkit::write(source.path(), "f.bin", &testkit::pseudo_random(4 << 20, 4));
    let local = LocalBox::open(source.path(), "server").unwrap();
    let (listener, udp) = bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::scope(|scope| {
        let server = scope.spawn(|| {
            let (stream, _) = listener.accept().unwrap();
            let conn = Connection::new(stream).unwrap();
            serve::serve_connection(
                conn,
                &local,
                Options {
                    udp: Some(&udp),
                    witness: None,
                    hello_within: None,
                },
            );
            std::time::Instant::now()
        });
        let mut conn =
            minibox::wire::handshake::connect(&addr.to_string(), "leaver", None).unwrap();
        conn.send(&minibox::protocol::Request::DownloadUdp {
            path: "f.bin".into(),
        })
        .unwrap();
        let minibox::protocol::Reply::UdpOffer { token, .. } = conn.recv().unwrap() else {
            panic!("expected an offer");
        };
        // Start the transfer with a window of 2 blocks and never ack again: the server sends two
        // blocks, then waits for acks (and would time out after 10 s)...
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut ack = Vec::new();
        encode_ack(
            &Ack {
                token,
                window: 2,
                ..Ack::default()
            },
            &mut ack,
        );
        socket.send_to(&ack, addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = vec![0u8; 70_000];
        socket.recv(&mut buf).expect("the first block arrives");
        // ...but we hang up instead.
        let closed = std::time::Instant::now();
        drop(conn);
        let ended = server.join().unwrap();
        let took = ended.duration_since(closed);
        assert!(
            took < Duration::from_secs(5),
            "the server went on for {took:?} after the connection closed"
        );
    });
}
