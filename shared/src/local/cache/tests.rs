use super::*;
use crate::local::gate::{digest_file, open_for_reading};

/// The MD5 of the file at `path`, through the cache.
fn md5_via(cache: &HashCache, path: &Path) -> io::Result<Md5> {
    let (file, meta) = open_for_reading(path)?;
    cache.md5_of_open("f", &file, Stamp::of(&meta), &mut |_, _| Ok(()))
}

#[test]
fn the_cache_notices_a_same_size_edit() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f");
    fs::write(&path, "aaaa").unwrap();
    let cache = HashCache::open(tmp.path());
    let first = md5_via(&cache, &path).unwrap();
    let stamp = Stamp::of(&fs::symlink_metadata(&path).unwrap());
    assert_eq!(cache.get(&stamp), Some(first), "remembered");
    fs::write(&path, "bbbb").unwrap();
    let edited = Stamp::of(&fs::symlink_metadata(&path).unwrap());
    assert_eq!(edited.inode, stamp.inode, "the same inode");
    assert_eq!(
        cache.get(&edited),
        None,
        "the new stamp is not the cached one"
    );
    let second = md5_via(&cache, &path).unwrap();
    assert_ne!(first, second);
    assert_eq!(second, digest_file(&path).unwrap());
}

#[test]
fn the_cache_follows_a_renamed_file_and_forgets_deleted_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    fs::write(&a, "data").unwrap();
    let cache = HashCache::open(tmp.path());
    let md5 = md5_via(&cache, &a).unwrap();
    fs::rename(&a, &b).unwrap();
    // A rename moves the ctime: the cache sees a new stamp, so the file is read again (and
    // remembered under its new stamp), but the entry is the same inode's, not a second one.
    assert_eq!(md5_via(&cache, &b).unwrap(), md5);
    assert_eq!(cache.len(), 1);
    cache.retain(|_| false);
    assert!(cache.is_empty());
}

#[test]
fn the_cache_survives_a_save_and_reload_and_shrugs_off_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f");
    fs::write(&path, "data").unwrap();
    let cache = HashCache::open(tmp.path());
    let md5 = md5_via(&cache, &path).unwrap();
    cache.save().unwrap();
    let stamp = Stamp::of(&fs::symlink_metadata(&path).unwrap());
    assert_eq!(HashCache::open(tmp.path()).get(&stamp), Some(md5));
    let file = tmp.path().join(META_DIR).join("stat-cache");
    let saved = fs::metadata(&file).unwrap().modified().unwrap();
    cache.put(stamp, md5);
    cache.save().unwrap();
    assert_eq!(
        fs::metadata(&file).unwrap().modified().unwrap(),
        saved,
        "nothing new: not written again"
    );
    // A corrupt or cut cache file is ignored, not fatal.
    let bytes = fs::read(&file).unwrap();
    fs::write(&file, &bytes[..bytes.len() - 1]).unwrap();
    assert_eq!(HashCache::open(tmp.path()).get(&stamp), None);
    fs::write(&file, "{not a cache").unwrap();
    assert_eq!(HashCache::open(tmp.path()).get(&stamp), None);
}
