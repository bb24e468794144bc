use super::*;

fn list(blocks: usize) -> BlockList {
    let md5s = (0..blocks).map(|i| Md5::of(&[i as u8])).collect();
    BlockList::new(blocks as u64 * 128 * 1024, md5s).unwrap()
}

#[test]
fn verified_blocks_are_listed_once_written_and_found_again() {
    let tmp = tempfile::tempdir().unwrap();
    let l = list(4);
    let mut p = Partial::open(tmp.path(), "big.bin", &l).unwrap();
    assert!(exists(tmp.path(), "big.bin"));
    assert!(!exists(tmp.path(), "other.bin"));
    p.file().set_len(l.size).unwrap();
    p.verified(0, l.md5s[0], l.range(0).end);
    p.verified(2, l.md5s[2], l.range(2).end);
    // Only what lies before the written mark is listed.
    p.save(l.range(1).end).unwrap();
    drop(p);
    let p = Partial::open(tmp.path(), "big.bin", &l).unwrap();
    assert_eq!(p.holds(0), Some(l.md5s[0]));
    assert_eq!(p.holds(2), None, "verified but never written");
    assert_eq!(p.holds(9), None);
}

#[test]
fn another_block_size_or_a_short_file_starts_afresh() {
    let tmp = tempfile::tempdir().unwrap();
    let l = list(4);
    let mut p = Partial::open(tmp.path(), "f", &l).unwrap();
    p.verified(3, l.md5s[3], l.range(3).end);
    p.save(u64::MAX).unwrap();
    drop(p);
    // The file holds nothing: a listed block past its end is not believed.
    assert_eq!(Partial::open(tmp.path(), "f", &l).unwrap().holds(3), None);
    let mut p = Partial::open(tmp.path(), "f", &l).unwrap();
    p.file().set_len(l.size).unwrap();
    p.verified(3, l.md5s[3], l.range(3).end);
    p.save(u64::MAX).unwrap();
    drop(p);
    let other = BlockList {
        block_size: 256 * 1024,
        ..list(4)
    };
    assert_eq!(
        Partial::open(tmp.path(), "f", &other).unwrap().holds(3),
        None
    );
}

#[test]
fn one_download_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let l = list(1);
    let first = Partial::open(tmp.path(), "f", &l).unwrap();
    let second = Partial::open(tmp.path(), "f", &l);
    assert!(matches!(second, Err(Error::Timeout(_))));
    drop(first);
    assert!(Partial::open(tmp.path(), "f", &l).is_ok());
}

#[test]
fn the_assembled_file_moves_out_and_a_discarded_one_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let l = list(1);
    let p = Partial::open(tmp.path(), "f", &l).unwrap();
    p.file().set_len(5).unwrap();
    let to = tmp.path().join("out");
    let file = p.into_file(&to).unwrap();
    assert_eq!(file.metadata().unwrap().len(), 5);
    assert!(to.exists());
    assert!(!exists(tmp.path(), "f"));
    let p = Partial::open(tmp.path(), "g", &l).unwrap();
    p.discard();
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1, "only `out`");
}

#[test]
fn only_partial_downloads_left_alone_for_a_day_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
    fs::write(&old, b"x").unwrap();
    fs::write(&new, b"x").unwrap();
    let day_ago = SystemTime::now() - KEEP_PARTIAL - Duration::from_secs(60);
    let times = fs::FileTimes::new().set_modified(day_ago);
    File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_times(times)
        .unwrap();
    remove_stale(tmp.path());
    assert!(!old.exists());
    assert!(new.exists());
    remove_stale(&tmp.path().join("missing"));
}
