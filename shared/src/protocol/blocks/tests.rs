use super::*;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

#[test]
fn the_block_size_doubles_until_a_file_has_fewer_than_2000_blocks() {
    assert_eq!(block_size(0), MIN_BLOCK);
    assert_eq!(block_size(1), MIN_BLOCK);
    assert_eq!(block_size(MIB), 128 * KIB);
    // 1,999 blocks of 128 KiB stay at 128 KiB; one byte more makes 2,000, and the size doubles.
    assert_eq!(block_size(1999 * 128 * KIB), 128 * KIB);
    assert_eq!(block_size(1999 * 128 * KIB + 1), 256 * KIB);
    assert_eq!(block_size(GIB), MIB);
    assert_eq!(block_count(GIB), 1024);
    assert_eq!(block_size(100 * GIB), MAX_BLOCK);
    assert_eq!(block_size(u64::MAX), MAX_BLOCK);
}

#[test]
fn the_block_count_covers_every_byte_and_the_last_block_may_be_short() {
    assert_eq!(block_count(0), 0);
    assert_eq!(block_count(1), 1);
    assert_eq!(block_count(128 * KIB), 1);
    assert_eq!(block_count(128 * KIB + 1), 2);
    assert_eq!(block_count(u64::MAX), u64::MAX.div_ceil(MAX_BLOCK));
    for size in [1, 5 * MIB + 3, GIB - 1, GIB + 1, 300 * MIB] {
        let count = block_count(size);
        assert!(count < TARGET_BLOCKS || block_size(size) == MAX_BLOCK);
        assert!((count - 1) * block_size(size) < size, "{size}");
        assert!(count * block_size(size) >= size, "{size}");
    }
}

#[test]
fn a_list_knows_where_each_block_lies() {
    let size = 2 * 128 * KIB + 10;
    let list = BlockList::new(size, vec![Md5::default(); 3]).unwrap();
    assert_eq!(list.range(0), 0..128 * KIB);
    assert_eq!(list.range(1), 128 * KIB..256 * KIB);
    assert_eq!(list.range(2), 256 * KIB..size);
    // Past the end: empty, never a panic.
    assert_eq!(list.range(3), size..size);
    assert_eq!(list.range(usize::MAX), size..size);
    assert_eq!(list.span(1, 2), 128 * KIB..size);
    assert_eq!(list.span(0, u64::MAX), 0..size);
    assert_eq!(list.span(2, 0), 256 * KIB..256 * KIB);
}

#[test]
fn a_list_with_the_wrong_number_of_blocks_is_refused() {
    assert!(BlockList::new(MIB, vec![Md5::default(); 7]).is_none());
    assert!(BlockList::new(MIB, vec![Md5::default(); 9]).is_none());
    assert!(BlockList::new(MIB, vec![Md5::default(); 8]).is_some());
    assert!(BlockList::new(0, Vec::new()).is_some_and(|l| l.is_empty()));
}

#[test]
fn block_md5s_do_not_depend_on_how_the_bytes_are_fed() {
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let expected: Vec<Md5> = bytes.chunks(64).map(Md5::of).collect();
    for piece in [1, 5, 63, 64, 65, 1000] {
        let mut h = BlockHasher::new(64);
        for chunk in bytes.chunks(piece) {
            h.update(chunk);
        }
        assert_eq!(h.finish(), expected, "fed {piece} bytes at a time");
    }
}

#[test]
fn closed_blocks_show_before_the_end_and_an_exact_fit_has_no_empty_last_block() {
    let mut h = BlockHasher::new(4);
    h.update(b"abcdef");
    assert_eq!(h.done(), &[Md5::of(b"abcd")]);
    h.update(b"gh");
    assert_eq!(h.finish(), vec![Md5::of(b"abcd"), Md5::of(b"efgh")]);
    assert!(BlockHasher::new(4).finish().is_empty());
}
