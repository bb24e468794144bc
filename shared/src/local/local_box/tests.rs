use super::*;
use crate::protocol::name::META_DIR;

#[test]
fn opening_a_box_removes_only_orphaned_temp_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(META_DIR).join("tmp");
    fs::create_dir_all(&dir).unwrap();
    // pid 1 always runs; a pid beyond the kernel's limit never does.
    fs::write(dir.join("1-0.part"), "alive").unwrap();
    fs::write(dir.join("4294967295-0.part"), "orphan").unwrap();
    fs::write(dir.join("junk"), "junk").unwrap();
    fs::create_dir_all(dir.join("1")).unwrap();
    fs::write(dir.join("1/4294967295-7.part"), "orphan in a lane").unwrap();
    fs::write(dir.join("1/1-7.part"), "alive in a lane").unwrap();
    let local = LocalBox::open(tmp.path(), "t").unwrap();
    assert!(dir.join("1-0.part").exists());
    assert!(!dir.join("4294967295-0.part").exists());
    assert!(!dir.join("junk").exists());
    assert!(dir.join("1/1-7.part").exists());
    assert!(!dir.join("1/4294967295-7.part").exists());
    assert!(local.temp_path_in(Some(2)).starts_with(dir.join("2")));
    assert!(local
        .temp_path_in(None)
        .starts_with(local.root().join(META_DIR).join("tmp")));
}

#[test]
fn a_scan_is_used_again_until_the_box_changes() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("sub/deeper")).unwrap();
    fs::write(tmp.path().join("sub/deeper/a.txt"), "a").unwrap();
    let local = LocalBox::open(tmp.path(), "t").unwrap();
    let once = local.scan().unwrap();
    assert!(
        !Arc::ptr_eq(&once, &local.scan().unwrap()),
        "not kept unless asked"
    );
    local.keep_scans();
    let first = local.scan().unwrap();
    assert_eq!(first.len(), 3);
    let again = local.scan().unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "nothing changed: the same scan"
    );

    // A change deep down is seen at once (inotify queues it before the write returns).
    fs::write(local.root().join("sub/deeper/b.txt"), "b").unwrap();
    let after = local.scan().unwrap();
    assert!(!Arc::ptr_eq(&again, &after));
    assert!(after.iter().any(|s| s.path == "sub/deeper/b.txt"));

    // minibox's own files are not the box.
    local.log.record("p", "something", "ok");
    fs::write(local.meta_dir().join("tmp").join("x.part"), "x").unwrap();
    assert!(Arc::ptr_eq(&after, &local.scan().unwrap()));

    // A folder made after the scan is watched from the next one on.
    fs::create_dir(local.root().join("new")).unwrap();
    let with_new = local.scan().unwrap();
    assert!(with_new.iter().any(|s| s.path == "new"));
    fs::write(local.root().join("new/c.txt"), "c").unwrap();
    assert!(local.scan().unwrap().iter().any(|s| s.path == "new/c.txt"));
}

#[test]
fn what_is_trashed_together_shares_a_folder_and_nothing_trashed_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let local = LocalBox::open(tmp.path(), "t").unwrap();
    let a = local.trash.slot("d/a.txt").unwrap();
    fs::write(&a, "first").unwrap();
    let b = local.trash.slot("e/b.txt").unwrap();
    assert_eq!(
        a.parent().unwrap().parent(),
        b.parent().unwrap().parent(),
        "one session"
    );
    assert!(a.ends_with("d/a.txt") && b.parent().unwrap().is_dir());
    // The same name again: a new session, the first copy stays.
    let again = local.trash.slot("d/a.txt").unwrap();
    assert_ne!(again, a);
    assert!(again.ends_with("d/a.txt"));
    assert_eq!(fs::read_to_string(&a).unwrap(), "first");
    assert!(again.starts_with(local.meta_dir().join("trash")));
}
