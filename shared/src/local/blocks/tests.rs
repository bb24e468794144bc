use super::*;
use crate::local::gate::open_for_reading;
use crate::protocol::blocks::block_size;

/// A file of `len` pseudo-random bytes at `path`; returns them.
fn write_file(path: &Path, len: usize, seed: u8) -> Vec<u8> {
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect();
    fs::write(path, &bytes).unwrap();
    bytes
}

fn stamp_of(path: &Path) -> Stamp {
    Stamp::of(&fs::symlink_metadata(path).unwrap())
}

#[test]
fn one_read_gives_the_md5_and_every_block_md5() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f");
    let bytes = write_file(&path, 3 * 128 * 1024 + 17, 1);
    let (file, _) = open_for_reading(&path).unwrap();
    let mut seen = 0;
    let (md5, list) = digest_blocks(&file, bytes.len() as u64, 128 * 1024, &mut |done| {
        assert!(done.len() >= seen, "blocks are only ever added");
        seen = done.len();
        Ok(())
    })
    .unwrap();
    assert_eq!(md5, Md5::of(&bytes));
    let expected: Vec<Md5> = bytes.chunks(128 * 1024).map(Md5::of).collect();
    assert_eq!(list.md5s, expected);
    assert_eq!(list.block_size, block_size(bytes.len() as u64));
}

#[test]
fn a_file_that_is_not_the_size_its_stamp_said_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f");
    write_file(&path, 300_000, 2);
    let (file, _) = open_for_reading(&path).unwrap();
    let read = digest_blocks(&file, 100_000, 128 * 1024, &mut |_| Ok(()));
    assert!(read.is_err());
}

#[test]
fn a_list_is_found_only_under_the_stamp_it_was_made_with() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f");
    write_file(&path, 1000, 3);
    let cache = BlockCache::new(tmp.path());
    let stamp = stamp_of(&path);
    let list = Arc::new(BlockList::new(1000, vec![Md5::of(b"x")]).unwrap());
    cache.put("f", stamp, Arc::clone(&list));
    assert_eq!(cache.get(&stamp).as_deref(), Some(&*list));
    let touched = Stamp {
        ctime_ns: stamp.ctime_ns + 1,
        ..stamp
    };
    assert!(cache.get(&touched).is_none());
    assert_eq!(cache.lists().len(), 1);
}

#[test]
fn the_cache_is_read_only_when_used_survives_a_reload_and_forgets_changed_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_file(&a, 1000, 4);
    write_file(&b, 1000, 5);
    let cache = BlockCache::new(tmp.path());
    let list = Arc::new(BlockList::new(1000, vec![Md5::of(b"a")]).unwrap());
    cache.put("a", stamp_of(&a), Arc::clone(&list));
    cache.put("b", stamp_of(&b), Arc::clone(&list));
    // b changes before the save: its list is not worth keeping.
    fs::write(&b, b"new").unwrap();
    cache.save().unwrap();
    let reloaded = BlockCache::new(tmp.path());
    assert!(crate::util::lock(&reloaded.map).is_none(), "not read yet");
    assert_eq!(reloaded.get(&stamp_of(&a)).as_deref(), Some(&*list));
    assert_eq!(reloaded.lists().len(), 1);
    assert_eq!(reloaded.lists()[0].path, "a");
}

#[test]
fn a_corrupt_cache_file_starts_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join(META_DIR).join("block-cache");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    for junk in [&b"not a cache"[..], b"mbxblks1\x01\x02", b""] {
        fs::write(&file, junk).unwrap();
        assert!(BlockCache::new(tmp.path()).lists().is_empty());
    }
    // A list whose count does not fit its size is refused too.
    let mut bytes = MAGIC.to_vec();
    for word in [7u64, 1000, 0, 0] {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&2u32.to_le_bytes());
    bytes.extend_from_slice(b"a");
    bytes.extend_from_slice(&[0u8; 32]);
    assert!(decode(&bytes).is_none());
}
