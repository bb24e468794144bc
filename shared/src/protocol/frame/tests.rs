use super::*;
use serde::Deserialize;

/// The default frame time, for tests that must not run into it.
const IDLE: Duration = FRAME_TIME;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Msg {
    text: String,
    n: u64,
}

fn sample() -> Msg {
    Msg {
        text: "héllo \"box\"".into(),
        n: 42,
    }
}

#[test]
fn round_trip_of_several_frames() {
    let mut buf = Vec::new();
    write_frame(&mut buf, &sample()).unwrap();
    write_frame(
        &mut buf,
        &Msg {
            text: String::new(),
            n: 0,
        },
    )
    .unwrap();
    let mut r = buf.as_slice();
    assert_eq!(read_frame::<_, Msg>(&mut r).unwrap(), Some(sample()));
    assert_eq!(read_frame::<_, Msg>(&mut r).unwrap().unwrap().n, 0);
    assert!(read_frame::<_, Msg>(&mut r).unwrap().is_none(), "clean end");
}

#[test]
fn a_frame_cut_anywhere_is_truncated_not_a_panic() {
    let mut buf = Vec::new();
    write_frame(&mut buf, &sample()).unwrap();
    for cut in 1..buf.len() {
        let mut r = &buf[..cut];
        let got = read_frame::<_, Msg>(&mut r);
        assert!(
            matches!(got, Err(FrameError::Truncated)),
            "cut at {cut}: {got:?}"
        );
    }
}

#[test]
fn an_oversized_length_is_refused_before_allocating() {
    let mut buf = vec![VERSION];
    buf.extend_from_slice(&u32::MAX.to_be_bytes());
    let got = read_frame::<_, Msg>(&mut buf.as_slice());
    assert!(matches!(got, Err(FrameError::TooLarge(u32::MAX))));
    let mut buf = vec![VERSION];
    buf.extend_from_slice(&(MAX_FRAME + 1).to_be_bytes());
    assert!(matches!(
        read_frame::<_, Msg>(&mut buf.as_slice()),
        Err(FrameError::TooLarge(_))
    ));
}

#[test]
fn the_limit_is_exactly_max_frame() {
    // A JSON string of MAX_FRAME - 2 characters plus its quotes: a body of exactly MAX_FRAME.
    let at_limit = "x".repeat(MAX_FRAME as usize - 2);
    let mut buf = Vec::new();
    write_frame(&mut buf, &at_limit).unwrap();
    assert_eq!(buf.len(), HEADER_LEN + MAX_FRAME as usize);
    assert_eq!(
        read_frame::<_, String>(&mut buf.as_slice()).unwrap(),
        Some(at_limit)
    );
    // One byte more is refused on the way out, and nothing is written.
    let mut buf = Vec::new();
    let over = "x".repeat(MAX_FRAME as usize - 1);
    assert!(matches!(
        write_frame(&mut buf, &over),
        Err(FrameError::TooLarge(_))
    ));
    assert!(buf.is_empty());
}

#[test]
fn an_empty_body_is_malformed_not_a_panic() {
    let buf = [VERSION, 0, 0, 0, 0];
    assert!(matches!(
        read_frame::<_, Msg>(&mut &buf[..]),
        Err(FrameError::Json(_))
    ));
}

#[test]
fn a_stream_that_delivers_one_byte_at_a_time_still_reads_whole_frames() {
    /// A reader that hands out one byte per `read`, as a slow network may.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }
    let mut buf = Vec::new();
    write_frame(&mut buf, &sample()).unwrap();
    write_frame(&mut buf, &sample()).unwrap();
    let mut r = Trickle(&buf);
    assert_eq!(read_frame::<_, Msg>(&mut r).unwrap(), Some(sample()));
    assert_eq!(read_frame::<_, Msg>(&mut r).unwrap(), Some(sample()));
    assert_eq!(read_frame::<_, Msg>(&mut r).unwrap(), None);
}

/// A fake network: hands out `bytes` at most `per_read` at a time, sleeping `delay` before
/// each read, and once they are gone answers `then` (end of stream, or a socket timeout).
struct SlowPeer {
    bytes: Vec<u8>,
    per_read: usize,
    delay: Duration,
    then: Option<io::ErrorKind>,
    reads: usize,
}

impl SlowPeer {
    fn new(bytes: Vec<u8>, per_read: usize, delay: Duration) -> Self {
        SlowPeer {
            bytes,
            per_read,
            delay,
            then: None,
            reads: 0,
        }
    }
}

impl Read for SlowPeer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        std::thread::sleep(self.delay);
        if self.bytes.is_empty() {
            return match self.then {
                Some(kind) => Err(io::Error::from(kind)),
                None => Ok(0),
            };
        }
        let n = self.per_read.min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes.drain(..n);
        Ok(n)
    }
}

fn framed(msg: &Msg) -> Vec<u8> {
    let mut buf = Vec::new();
    write_frame(&mut buf, msg).unwrap();
    buf
}

#[test]
fn a_frame_dripped_past_its_time_is_too_slow_however_busy_each_read_was() {
    // One byte per read, each read 20 ms: every read "succeeds", yet after a few of them the
    // frame has had its 50 ms. (Sleeps never end early, so this cannot pass by luck.)
    let limit = Duration::from_millis(50);
    let mut peer = SlowPeer::new(framed(&sample()), 1, Duration::from_millis(20));
    let mut told = Vec::new();
    let got = read_frame_within::<_, Msg>(&mut peer, limit, |_, left| {
        told.push(left);
        Ok(())
    });
    assert!(
        matches!(got, Err(FrameError::TooSlow(l)) if l == limit),
        "{got:?}"
    );
    assert!(peer.reads < 10, "gave up only after {} reads", peer.reads);
    // Told before every read after the first byte, each time with what was left: never
    // nothing, never more than the limit, and less and less.
    assert_eq!(told.len(), peer.reads - 1);
    assert!(told.iter().all(|l| !l.is_zero() && *l <= limit), "{told:?}");
    assert!(told.windows(2).all(|w| w[1] < w[0]), "{told:?}");
    let err = crate::protocol::error::Error::from(got.unwrap_err());
    assert!(
        matches!(err, crate::protocol::error::Error::Timeout(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("to send one message"), "{err}");
}

#[test]
fn a_read_cut_short_at_the_deadline_is_too_slow_and_one_before_it_is_a_timeout() {
    // Half a header, then the socket's (shortened) timeout, once the limit has passed.
    let limit = Duration::from_millis(30);
    let mut peer = SlowPeer::new(vec![VERSION, 0, 0], 3, Duration::ZERO);
    peer.then = Some(io::ErrorKind::WouldBlock);
    let mut slept = false;
    let got = read_frame_within::<_, Msg>(&mut peer, limit, |_, left| {
        // Stands for the read that waited out the time left.
        std::thread::sleep(left);
        slept = true;
        Ok(())
    });
    assert!(slept);
    assert!(matches!(got, Err(FrameError::TooSlow(_))), "{got:?}");
    // The same timeout long before the frame's limit is an ordinary one.
    let mut peer = SlowPeer::new(vec![VERSION, 0, 0], 3, Duration::ZERO);
    peer.then = Some(io::ErrorKind::WouldBlock);
    let got = read_frame_within::<_, Msg>(&mut peer, IDLE, |_, _| Ok(()));
    assert!(
        matches!(&got, Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock),
        "{got:?}"
    );
}

#[test]
fn the_wait_before_the_first_byte_is_not_the_frames() {
    /// Silent for a while before its first byte, then quick.
    struct LateStart<'a> {
        silence: Option<Duration>,
        rest: &'a [u8],
    }
    impl Read for LateStart<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if let Some(silence) = self.silence.take() {
                std::thread::sleep(silence);
            }
            self.rest.read(buf)
        }
    }
    // 600 ms of silence, then the frame: a limit of 500 ms is not broken, because the frame
    // began with its first byte, and nothing was asked of `wait` before that.
    let bytes = framed(&sample());
    let mut peer = LateStart {
        silence: Some(Duration::from_millis(600)),
        rest: &bytes,
    };
    let mut waits = 0;
    let got = read_frame_within::<_, Msg>(&mut peer, Duration::from_millis(500), |_, _| {
        waits += 1;
        Ok(())
    });
    assert_eq!(got.unwrap(), Some(sample()));
    assert_eq!(waits, 1, "asked once, before the body's read");
    // And the clock itself: it starts at the first byte, and only the first.
    let t0 = Instant::now();
    let mut clock = FrameClock::new(IDLE);
    assert_eq!(clock.left(t0 + IDLE * 5), None, "no frame yet, no limit");
    clock.bytes_at(t0);
    clock.bytes_at(t0 + Duration::from_secs(4));
    assert_eq!(
        clock.left(t0 + Duration::from_secs(3)),
        Some(IDLE - Duration::from_secs(3))
    );
    assert!(!clock.is_up(t0 + IDLE - Duration::from_millis(1)));
    assert!(clock.is_up(t0 + IDLE));
    assert_eq!(clock.left(t0 + IDLE * 2), Some(Duration::ZERO));
}

#[test]
fn a_failing_wait_fails_the_frame() {
    let mut peer = SlowPeer::new(framed(&sample()), 2, Duration::ZERO);
    let got = read_frame_within::<_, Msg>(&mut peer, IDLE, |_, _| {
        Err(io::Error::other("cannot set the timeout"))
    });
    assert!(matches!(got, Err(FrameError::Io(_))), "{got:?}");
    assert_eq!(peer.reads, 1, "no read after the failed wait");
}

#[test]
fn garbage_is_an_error() {
    // Wrong version byte.
    let got = read_frame::<_, Msg>(&mut &b"GET / HTTP/1.1\r\n"[..]);
    assert!(matches!(got, Err(FrameError::BadVersion(b'G'))));
    // Right header, body not JSON.
    let mut buf = vec![VERSION, 0, 0, 0, 4];
    buf.extend_from_slice(b"\xff\xfe{}");
    assert!(matches!(
        read_frame::<_, Msg>(&mut buf.as_slice()),
        Err(FrameError::Json(_))
    ));
    // Valid JSON of the wrong shape.
    let mut buf = Vec::new();
    write_frame(&mut buf, &vec![1, 2, 3]).unwrap();
    assert!(matches!(
        read_frame::<_, Msg>(&mut buf.as_slice()),
        Err(FrameError::Json(_))
    ));
}

#[test]
fn pseudo_random_bytes_never_panic() {
    // A small xorshift generator keeps the test deterministic and dependency-free.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..20_000 {
        let mut bytes = Vec::new();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 64) as usize;
        for i in 0..len {
            bytes.push((state >> (i % 8 * 8)) as u8);
        }
        if !bytes.is_empty() && state.is_multiple_of(2) {
            bytes[0] = VERSION;
        }
        let _ = read_frame::<_, Msg>(&mut bytes.as_slice());
    }
}
