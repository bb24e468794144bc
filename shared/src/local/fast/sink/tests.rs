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
