use super::*;
use crate::protocol::message::Kind;
use crate::protocol::name::META_DIR;
use std::io::Write;
use std::os::unix::fs::MetadataExt;

fn entry(path: &str, bytes: &[u8], mode: u32) -> Entry {
    Entry {
        path: path.to_string(),
        kind: Kind::File,
        size: bytes.len() as u64,
        mtime_ns: 1_700_000_000_000_000_000,
        mode,
        mime: "application/octet-stream".into(),
        md5: Some(Md5::of(bytes).to_string()),
    }
}

fn temp_with(local: &LocalBox, bytes: &[u8]) -> TempFile {
    let mut tmp = TempFile::create(local, None).unwrap();
    tmp.file().write_all(bytes).unwrap();
    tmp
}

#[test]
fn a_temporary_file_has_the_bits_the_umask_foretells() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalBox::open(dir.path(), "t").unwrap();
    let mut tmp = TempFile::create(&local, None).unwrap();
    let bits = tmp.file().metadata().unwrap().mode() & MODE_MASK;
    assert_eq!(created_mode(), Some(bits), "Linux tells the umask");
    assert_eq!(tmp.mode, Some(bits));
}

#[test]
fn installing_gives_every_file_its_bits_and_mtime_whatever_the_umask_gave() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalBox::open(dir.path(), "t").unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    for (i, mode) in [0o644, 0o600, 0o755, 0o444, 0o640].into_iter().enumerate() {
        let name = format!("sub/f{i}");
        let e = entry(&name, name.as_bytes(), mode);
        let stamp = install(&local, temp_with(&local, name.as_bytes()), &e)
            .unwrap()
            .expect("a stamp");
        let meta = fs::symlink_metadata(dir.path().join(&name)).unwrap();
        assert_eq!(meta.mode() & MODE_MASK, mode, "{name}");
        assert_eq!(meta.mtime(), 1_700_000_000, "{name}");
        assert_eq!(stamp, Stamp::of(&meta), "the stamp is the installed file's");
    }
}

#[test]
fn installing_over_a_file_trashes_it_and_a_refusal_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalBox::open(dir.path(), "t").unwrap();
    let target = dir.path().join("x.txt");
    fs::write(&target, "old").unwrap();
    // `expect` accepts only "nothing there": the no-replace rename finds the old file, and
    // the second look hands it to `expect`, which refuses.
    let e = entry("x.txt", b"new", 0o644);
    let refused = install_over(&local, temp_with(&local, b"new"), &e, |there| match there {
        None => Ok(()),
        Some(_) => Err("x.txt appeared".into()),
    });
    assert!(matches!(refused, Err(Error::LocalChange(_))), "{refused:?}");
    assert_eq!(fs::read(&target).unwrap(), b"old");
    // Accepting what is there replaces it, and the old bytes go to the trash.
    install(&local, temp_with(&local, b"new"), &e).unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"new");
    let trashed = walk_files(&dir.path().join(META_DIR).join("trash"));
    assert_eq!(trashed.len(), 1, "{trashed:?}");
    assert_eq!(fs::read(&trashed[0]).unwrap(), b"old");
    // Neither left a temporary file behind.
    assert!(walk_files(&dir.path().join(META_DIR).join("tmp")).is_empty());
}

#[test]
fn installing_a_name_new_at_two_levels_makes_its_folders_and_refuses_a_link_on_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalBox::open(dir.path(), "t").unwrap();
    let e = entry("a/b/c.txt", b"deep", 0o644);
    install(&local, temp_with(&local, b"deep"), &e).unwrap();
    assert_eq!(fs::read(dir.path().join("a/b/c.txt")).unwrap(), b"deep");
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
    let e = entry("link/c.txt", b"out", 0o644);
    let refused = install(&local, temp_with(&local, b"out"), &e);
    assert!(matches!(refused, Err(Error::Path(_))), "{refused:?}");
    assert!(
        walk_files(outside.path()).is_empty(),
        "nothing written outside"
    );
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(read) = fs::read_dir(dir) else {
        return out;
    };
    for item in read.flatten() {
        let path = item.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn an_identical_download_trashes_and_rewrites_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalBox::open(dir.path(), "t").unwrap();
    let e = entry("same.txt", b"same bytes", 0o644);
    install(&local, temp_with(&local, b"same bytes"), &e).unwrap();
    let path = dir.path().join("same.txt");
    let before = fs::metadata(&path).unwrap();
    // The same bytes again, with another mtime and other bits: set in place.
    let again = Entry {
        mtime_ns: e.mtime_ns + 5,
        mode: 0o600,
        ..e.clone()
    };
    install(&local, temp_with(&local, b"same bytes"), &again).unwrap();
    let after = fs::metadata(&path).unwrap();
    assert_eq!(after.ino(), before.ino(), "not replaced");
    assert_eq!(after.mode() & MODE_MASK, 0o600);
    assert_eq!(testkit_mtime(&after), again.mtime_ns);
    assert!(local.trash.list().is_empty(), "nothing trashed");
    assert!(
        fs::read_dir(dir.path().join(META_DIR).join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "no temporary file left"
    );
    // Other bytes of the same size do replace it.
    let other = entry("same.txt", b"SAME BYTES", 0o644);
    install(&local, temp_with(&local, b"SAME BYTES"), &other).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"SAME BYTES");
    assert_eq!(local.trash.list().len(), 1);
}

fn testkit_mtime(meta: &fs::Metadata) -> i64 {
    meta.mtime() * 1_000_000_000 + meta.mtime_nsec()
}
