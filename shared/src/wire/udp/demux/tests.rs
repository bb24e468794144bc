use super::*;
use crate::wire::udp::datagram::{encode_ack, Ack};

fn ack_bytes(token: u64) -> Vec<u8> {
    let mut b = Vec::new();
    encode_ack(
        &Ack {
            token,
            ..Ack::default()
        },
        &mut b,
    );
    b
}

#[test]
fn two_transfers_on_one_socket_each_get_their_own_datagrams() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = server.local_addr().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let localhost: IpAddr = "127.0.0.1".parse().unwrap();
    let a = Inbox::open(&server, localhost).unwrap();
    let b = Inbox::open(&server, localhost).unwrap();
    assert_ne!(a.token(), b.token());
    // Noise, an unknown token, then b's datagram, then a's.
    client.send_to(b"noise", to).unwrap();
    client.send_to(&ack_bytes(12345), to).unwrap();
    client.send_to(&ack_bytes(b.token()), to).unwrap();
    client.send_to(&ack_bytes(a.token()), to).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 2048];
    std::thread::scope(|s| {
        let got_b = s.spawn(|| {
            let mut buf = [0u8; 2048];
            let (n, _) = b.recv(&mut buf, deadline).unwrap().expect("b's datagram");
            datagram::token_of(&buf[..n])
        });
        let (n, _) = a.recv(&mut buf, deadline).unwrap().expect("a's datagram");
        assert_eq!(datagram::token_of(&buf[..n]), Some(a.token()));
        assert_eq!(got_b.join().unwrap(), Some(b.token()));
    });
    // Nothing more for a: the deadline passes.
    let soon = Instant::now() + Duration::from_millis(50);
    assert!(a.recv(&mut buf, soon).unwrap().is_none());
}

#[test]
fn datagrams_from_another_ip_are_ignored() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = server.local_addr().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let elsewhere: IpAddr = "127.0.0.2".parse().unwrap();
    let inbox = Inbox::open(&server, elsewhere).unwrap();
    client.send_to(&ack_bytes(inbox.token()), to).unwrap();
    let mut buf = [0u8; 2048];
    let soon = Instant::now() + Duration::from_millis(100);
    assert!(inbox.recv(&mut buf, soon).unwrap().is_none());
}

#[test]
fn a_closed_transfer_leaves_no_mailbox() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let localhost: IpAddr = "127.0.0.1".parse().unwrap();
    let inbox = Inbox::open(&server, localhost).unwrap();
    let demux = Arc::clone(&inbox.demux);
    assert_eq!(demux.lock().mailboxes.len(), 1);
    drop(inbox);
    assert!(demux.lock().mailboxes.is_empty());
}
