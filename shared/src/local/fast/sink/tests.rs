use super::*;
use crate::protocol::md5::digest_reader;

#[test]
fn blocks_are_aligned_whatever_the_allocator_gives() {
    for _ in 0..8 {
        let mut b = Block::new();
        assert_eq!(b.spare().as_ptr() as usize % ALIGN, 0);
        assert_eq!(b.spare().len(), BLOCK);
        assert!(b.data().is_empty());
    }
}

#[test]
fn the_background_hasher_agrees_with_the_plain_one() {
    let data: Vec<u8> = (0..BLOCK * 3 + 17).map(|i| (i % 253) as u8).collect();
    let bg = BackgroundHasher::start(2).unwrap();
    for chunk in data.chunks(BLOCK / 2 + 1) {
        let mut block = bg.buffer();
        block.spare()[..chunk.len()].copy_from_slice(chunk);
        block.len = chunk.len();
        bg.submit(block);
    }
    assert_eq!(bg.finish(), digest_reader(data.as_slice()).unwrap());
    // Dropped half-way: no hang, no leaked thread.
    let bg = BackgroundHasher::start(2).unwrap();
    bg.submit(Block::new());
    drop(bg);
}

#[test]
fn zeros_become_holes_and_read_back_as_zeros() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse.bin");
    let file = File::create(&path).unwrap();
    // Zeros, a few bytes, zeros again to the end: the last block is a hole too.
    let mut data = vec![0u8; BLOCK * 6];
    data[BLOCK * 3 + 5..BLOCK * 3 + 12].copy_from_slice(b"minibox");
    let mut sink: Box<dyn Sink> = Box::new(DirectSink::new(&file, &path).unwrap());
    let mut rest = data.as_slice();
    while !rest.is_empty() {
        let n = sink.spare().len().min(rest.len()).min(100_000);
        sink.spare()[..n].copy_from_slice(&rest[..n]);
        sink.filled(n).unwrap();
        rest = &rest[n..];
    }
    let md5 = sink.finish().unwrap();
    assert_eq!(md5, digest_reader(data.as_slice()).unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), data.len() as u64);
    // 512-byte units on disk: one block's worth at most, not six.
    assert!(
        meta.blocks() * 512 <= BLOCK as u64,
        "{} blocks",
        meta.blocks()
    );
}

/// A resumed partial download writes into a file that holds bytes already: zeros in the new
/// version must then be written, or the old bytes would stay under an MD5 that says zeros.
#[test]
fn zeros_over_old_bytes_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.bin");
    std::fs::write(&path, vec![0xA5u8; BLOCK * 2]).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let data = vec![0u8; BLOCK * 2];
    let mut sink: Box<dyn Sink> = Box::new(DirectSink::new(&file, &path).unwrap());
    for chunk in data.chunks(BLOCK / 2) {
        sink.spare()[..chunk.len()].copy_from_slice(chunk);
        sink.filled(chunk.len()).unwrap();
    }
    assert_eq!(
        sink.finish().unwrap(),
        digest_reader(data.as_slice()).unwrap()
    );
    assert_eq!(std::fs::read(&path).unwrap(), data);
}
