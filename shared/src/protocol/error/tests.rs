use super::*;

#[test]
fn timeouts_are_recognised_as_unavailable_peers() {
    let e = Error::net("reading", io::Error::from(io::ErrorKind::WouldBlock));
    assert!(matches!(e, Error::Timeout(_)));
    assert!(e.is_peer_unavailable());
    let e = Error::net(
        "connecting",
        io::Error::from(io::ErrorKind::ConnectionRefused),
    );
    assert!(e.is_peer_unavailable());
    assert!(!Error::Verify("x".into()).is_peer_unavailable());
}

#[test]
fn errors_are_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Error>();
}
