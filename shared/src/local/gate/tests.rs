use super::*;
use crate::protocol::name::PathError;

#[cfg(unix)]
#[test]
fn symlinked_parts_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("box");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(root.join("real")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "s").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("door")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), root.join("real/link")).unwrap();

    let refused = |name: &str| {
        matches!(
            resolve(&root, name),
            Err(ResolveError::Refused(PathError::Symlink(_)))
        )
    };
    assert!(refused("door"));
    assert!(refused("door/secret"));
    assert!(refused("door/new/file"));
    assert!(refused("real/link"));
    assert_eq!(
        resolve(&root, "real/new.txt").unwrap(),
        root.join("real/new.txt")
    );
    assert_eq!(
        resolve(&root, "missing/a/b").unwrap(),
        root.join("missing/a/b")
    );
    // A file used as a folder: the name cannot exist, but it is not an error of the gate.
    fs::write(root.join("real/file"), "f").unwrap();
    assert_eq!(
        resolve(&root, "real/file/below").unwrap(),
        root.join("real/file/below")
    );
}

#[cfg(unix)]
#[test]
fn reading_opens_refuse_fifos_links_and_folders_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::write(root.join("file"), "x").unwrap();
    fs::create_dir(root.join("dir")).unwrap();
    std::os::unix::fs::symlink(root.join("file"), root.join("link")).unwrap();
    let fifo = root.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let (_, meta) = open_for_reading(&root.join("file")).unwrap();
    assert_eq!(meta.len(), 1);
    // No writer ever opens the FIFO: a plain open would block this test forever.
    let err = open_for_reading(&fifo).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(open_for_reading(&root.join("dir")).is_err());
    drop(std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap());
    let err = open_for_reading(&root.join("sock")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let err = open_for_reading(&root.join("link")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
}

#[cfg(unix)]
#[test]
fn opening_in_the_box_refuses_a_link_in_any_part_and_anything_not_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "no").unwrap();
    fs::create_dir_all(root.join("a/b")).unwrap();
    fs::write(root.join("a/b/file"), "yes").unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("a/out")).unwrap();
    std::os::unix::fs::symlink(root.join("a/b/file"), root.join("a/link")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(root.join("a/fifo"))
        .status()
        .unwrap();
    assert!(made.success());
    let (_, meta) = open_in_box(&root, "a/b/file").unwrap();
    assert_eq!(meta.len(), 3);
    for name in ["a/out/secret", "a/link"] {
        let refused = open_in_box(&root, name).unwrap_err();
        assert!(
            matches!(refused, ResolveError::Refused(PathError::Symlink(_))),
            "{name}: {refused:?}"
        );
    }
    let refused = open_in_box(&root, "../x").unwrap_err();
    assert!(matches!(refused, ResolveError::Refused(_)), "{refused:?}");
    let kind = |name| match open_in_box(&root, name) {
        Err(ResolveError::Io(e)) => e.kind(),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(
        kind("a/fifo"),
        io::ErrorKind::InvalidInput,
        "without blocking"
    );
    assert_eq!(kind("a/b"), io::ErrorKind::InvalidInput, "a folder");
    assert_eq!(kind("a/none"), io::ErrorKind::NotFound);
    match open_in_box(&root, "a/b/file/below") {
        Err(ResolveError::Io(e)) => assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn scanned_paths_become_names() {
    let root = Path::new("/box");
    assert_eq!(
        name_of(root, Path::new("/box/a/b c.txt")).as_deref(),
        Some("a/b c.txt")
    );
    assert_eq!(name_of(root, Path::new("/box/a\\b")), None);
    assert_eq!(name_of(root, Path::new("/elsewhere/x")), None);
}
