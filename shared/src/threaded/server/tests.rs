use super::*;
use crate::ask::list::list;
use crate::protocol::message::{Filter, ListKind, Request};
use crate::wire::handshake::connect;

fn start(dir: &std::path::Path, max: usize) -> Server {
    let local = Arc::new(LocalBox::open(dir, "test").unwrap());
    let (listener, udp) = crate::wire::listen::bind("127.0.0.1:0").unwrap();
    Server::start(
        listener,
        udp,
        local,
        ServerConfig {
            max_connections: max,
            witness: None,
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
    let mut a = connect(&addr, "a", None).unwrap();
    let mut b = connect(&addr, "b", None).unwrap();
    let la = list(&mut a, Filter::All, ListKind::Index).unwrap();
    let lb = list(&mut b, Filter::All, ListKind::Hashes).unwrap();
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
    let _first = connect(&addr, "first", None).unwrap();
    let err = connect(&addr, "second", None).err().unwrap();
    assert!(err.to_string().contains("too many connections"), "{err}");
    server.stop();
}
