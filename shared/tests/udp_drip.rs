//! A UDP client that acknowledges one small block every few seconds: always something new, never
//! a transfer. The server holds it to the pace that protects TCP (16 KiB in every 11 s, the
//! client's 10 s and a second of grace) and gives up with an error on TCP. (A file of its own:
//! the block size is set for the whole process.)

// Test code: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use minibox::local::LocalBox;
use minibox::protocol::{Reply, Request};
use minibox::serve::{self, Options};
use minibox::wire::conn::Connection;
use minibox::wire::listen::bind;
use minibox::wire::udp::datagram::{encode_ack, Ack};

#[test]
fn the_server_gives_up_on_a_client_that_acknowledges_a_block_every_few_seconds() {
    // 512-byte blocks: a block every 3 s is 2 KiB in 11 s.
    std::env::set_var("MINIBOX_UDP_BLOCK", "512");
    let source = testkit::tempdir();
    testkit::write(source.path(), "f.bin", &testkit::pseudo_random(200_000, 7));
    let local = LocalBox::open(source.path(), "server").unwrap();
    let (listener, udp) = bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let conn = Connection::new(listener.accept().unwrap().0).unwrap();
            let opts = Options {
                udp: Some(&udp),
                witness: None,
                hello_within: None,
            };
            serve::serve_connection(conn, &local, opts);
        });
        let mut conn = minibox::wire::handshake::connect(&addr.to_string(), "drip", None).unwrap();
        conn.send(&Request::DownloadUdp {
            path: "f.bin".into(),
        })
        .unwrap();
        let Reply::UdpOffer { token, .. } = conn.recv().unwrap() else {
            panic!("expected an offer");
        };
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let (started, mut block, mut buf, mut ack) = (Instant::now(), 0, vec![0u8; 2048], vec![]);
        // One block in, one more asked for, every 3 s, until the server speaks on TCP.
        while !conn.poll_input().unwrap() {
            assert!(started.elapsed() < Duration::from_secs(30), "still sending");
            let want = Ack {
                token,
                cumulative: block,
                window: 1,
                seen_end: block,
                ..Ack::default()
            };
            encode_ack(&want, &mut ack);
            socket.send_to(&ack, addr).unwrap();
            if socket.recv(&mut buf).is_ok() {
                block += 1;
                std::thread::sleep(Duration::from_secs(3));
            }
        }
        match conn.recv::<Reply>().unwrap() {
            Reply::Error { message, .. } => {
                assert!(message.contains("fewer than 16 KiB in 11 s"), "{message}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
        assert!(block > 2, "the drip went on for a while: {block} blocks");
        conn.shutdown();
    });
}
