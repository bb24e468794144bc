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

#[test]
fn system_errors_are_told_in_words_without_their_number() {
    let refused = Error::net(
        "cannot reach the peer at 127.0.0.1:9",
        io::Error::from_raw_os_error(111),
    );
    assert_eq!(
        refused.to_string(),
        "cannot reach the peer at 127.0.0.1:9: nothing is listening there (is the other box running?)"
    );
    let in_use = Error::net(
        "cannot listen on 127.0.0.1:1",
        io::Error::from_raw_os_error(98),
    );
    assert!(in_use
        .to_string()
        .contains("already in use (is this box already running?"));
    let other = Error::io("/x", io::Error::from_raw_os_error(libc::EROFS));
    assert_eq!(other.to_string(), "/x: Read-only file system");
    for e in [refused, in_use, other] {
        assert!(!e.to_string().contains("os error"), "{e}");
    }
}
