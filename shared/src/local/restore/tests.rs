use super::*;
use std::path::Path;

fn boxed(root: &Path) -> LocalBox {
    LocalBox::open(root, "me").unwrap()
}

#[test]
fn the_newest_version_comes_back_and_the_current_one_goes_to_the_trash() {
    let tmp = tempfile::tempdir().unwrap();
    let local = boxed(tmp.path());
    let file = tmp.path().join("notes/a.txt");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    for version in ["one", "two", "three"] {
        fs::write(&file, version).unwrap();
        // The name is in the current time folder already: each version gets a new one.
        local.trash.take(local.root(), "notes/a.txt").unwrap();
    }
    fs::write(&file, "now").unwrap();
    let listed = local.trash.list();
    assert_eq!(listed.len(), 3);
    assert!(listed[0].trashed_ns >= listed[1].trashed_ns, "newest first");

    let back = restore(&local, "notes/a.txt").unwrap();
    assert_eq!(back.size, 5);
    assert_eq!(fs::read_to_string(&file).unwrap(), "three");
    let contents: Vec<String> = local
        .trash
        .list()
        .iter()
        .map(|t| fs::read_to_string(&t.location).unwrap())
        .collect();
    assert_eq!(
        contents,
        ["now", "two", "one"],
        "what was there is trashed first"
    );
}

#[test]
fn restoring_a_deleted_file_makes_its_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let local = boxed(tmp.path());
    fs::create_dir_all(tmp.path().join("x/y")).unwrap();
    fs::write(tmp.path().join("x/y/z.txt"), "z").unwrap();
    local.trash.take(local.root(), "x").unwrap();
    assert!(!tmp.path().join("x").exists());
    restore(&local, "x/y/z.txt").unwrap();
    assert_eq!(
        fs::read_to_string(tmp.path().join("x/y/z.txt")).unwrap(),
        "z"
    );
}

#[test]
fn unknown_names_folders_and_bad_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let local = boxed(tmp.path());
    let err = restore(&local, "nothing.txt").unwrap_err().to_string();
    assert!(err.contains("not in the trash"), "{err}");
    assert!(restore(&local, "../x").is_err());
    fs::write(tmp.path().join("d"), "file").unwrap();
    local.trash.take(local.root(), "d").unwrap();
    fs::create_dir(tmp.path().join("d")).unwrap();
    let err = restore(&local, "d").unwrap_err().to_string();
    assert!(err.contains("is a folder here"), "{err}");
}
