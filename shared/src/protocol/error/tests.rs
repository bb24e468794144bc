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

#[test]
fn a_timeout_of_our_own_keeps_its_reason_and_the_kernel_s_says_silence() {
    let e = Error::net("reading", io::Error::from_raw_os_error(libc::EAGAIN));
    assert_eq!(e.to_string(), "reading: no answer for too long");
    let pace = io::Error::new(io::ErrorKind::TimedOut, "the peer moved fewer than 16 KiB");
    let e = Error::net("receiving a.txt", pace);
    assert!(matches!(e, Error::Timeout(_)));
    assert_eq!(
        e.to_string(),
        "receiving a.txt: the peer moved fewer than 16 KiB"
    );
}
