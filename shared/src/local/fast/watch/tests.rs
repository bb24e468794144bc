use super::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// Events are delivered by the kernel at once, but give it a moment on a busy machine.
fn settles(w: &mut Watcher) -> bool {
    std::thread::sleep(std::time::Duration::from_millis(20));
    w.changed()
}

#[test]
fn every_kind_of_change_is_reported_and_quiet_is_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("sub/a.txt"), "a").unwrap();
    let mut w = Watcher::new().expect("inotify on Linux");
    assert!(w.watch(root) && w.watch(&root.join("sub")));
    assert!(!settles(&mut w), "nothing happened");
    type Change<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let changes: [Change; 6] = [
        (
            "create",
            Box::new(|| fs::write(root.join("b.txt"), "b").unwrap()),
        ),
        (
            "write",
            Box::new(|| fs::write(root.join("sub/a.txt"), "a2").unwrap()),
        ),
        (
            "chmod",
            Box::new(|| {
                fs::set_permissions(root.join("sub/a.txt"), fs::Permissions::from_mode(0o600))
                    .unwrap()
            }),
        ),
        (
            "rename",
            Box::new(|| fs::rename(root.join("sub/a.txt"), root.join("sub/c.txt")).unwrap()),
        ),
        (
            "delete",
            Box::new(|| fs::remove_file(root.join("b.txt")).unwrap()),
        ),
        (
            "mkdir",
            Box::new(|| fs::create_dir(root.join("new")).unwrap()),
        ),
    ];
    for (what, change) in changes {
        change();
        assert!(settles(&mut w), "{what} was not reported");
        assert!(!w.changed(), "{what} was reported twice");
    }
    // Reading is not a change.
    fs::read(root.join("sub/c.txt")).unwrap();
    fs::read_dir(root).unwrap().for_each(drop);
    assert!(!settles(&mut w), "a read counted as a change");
}

#[test]
fn what_happens_in_an_unwatched_folder_is_not_a_change() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join(".minibox/tmp")).unwrap();
    let mut w = Watcher::new().expect("inotify on Linux");
    assert!(w.watch(root));
    fs::write(root.join(".minibox/log"), "line\n").unwrap();
    fs::write(root.join(".minibox/tmp/x.part"), "part").unwrap();
    fs::remove_file(root.join(".minibox/tmp/x.part")).unwrap();
    assert!(
        !settles(&mut w),
        "the contents of a subfolder are not the folder's"
    );
    // But a file renamed from there into the box is.
    fs::write(root.join(".minibox/tmp/y.part"), "y").unwrap();
    fs::rename(root.join(".minibox/tmp/y.part"), root.join("y.txt")).unwrap();
    assert!(settles(&mut w));
}
