use super::*;
use std::time::Duration;

#[test]
fn a_drip_is_not_progress_but_a_stream_is() {
    let mut pace = Pace::new();
    pace.window_start = Instant::now() - IDLE_TIMEOUT - Duration::from_secs(1);
    // A steady stream resets the window before it ends.
    assert!(pace.advance(MIN_PROGRESS).is_ok());
    assert!(pace.advance(10).is_ok(), "a fresh window");
    // Only a trickle over a whole window: given up on.
    pace.window_start = Instant::now() - IDLE_TIMEOUT - Duration::from_secs(1);
    let err = pace.advance(100).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(err.to_string().contains("fewer than 16 KiB"), "{err}");
}

#[test]
fn a_paced_reader_reads_exactly_the_file_and_names_an_early_end() {
    let bytes = b"0123456789".to_vec();
    let mut r = PacedReader::new(bytes.as_slice(), 4);
    let mut buf = [0u8; 16];
    let n = r.read_some(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"0123", "never past the file's size");
    assert_eq!(r.done(), 4);
    let mut r = PacedReader::new(&bytes[..3], 5);
    let err = r.fill(&mut [0u8; 5]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert!(err.to_string().contains("after 3 of 5 bytes"), "{err}");
}
