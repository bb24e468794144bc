use super::*;

fn name(original: &str, peer: &str) -> Option<ConflictName> {
    Some(ConflictName {
        original: original.into(),
        peer: peer.into(),
    })
}

#[test]
fn conflict_copy_names_are_read_back() {
    let p = parse;
    assert_eq!(
        p("report.conflict-box2-20261125-101500.txt"),
        name("report.txt", "box2")
    );
    assert_eq!(
        p("a/b.c/notes.conflict-my-box.2-20261125-101500"),
        name("a/b.c/notes", "my-box.2")
    );
    assert_eq!(
        p(".bashrc.conflict-x-20261125-101500-abcd1234"),
        name(".bashrc", "x")
    );
    assert_eq!(
        p("a.tar.conflict-b1-20261125-101500.gz"),
        name("a.tar.gz", "b1")
    );
    assert_eq!(
        p("r.conflict-a-20260101-000000.conflict-b-20260102-000000.txt"),
        name("r.conflict-a-20260101-000000.txt", "b")
    );
}

#[test]
fn other_names_are_not_conflict_copies() {
    for path in [
        "report.txt",
        "conflict.txt",
        "a.conflict-box2.txt",
        "a.conflict--20261125-101500.txt",
        "a.conflict-box2-2026112-101500.txt",
        "dir.conflict-b-20261125-101500/file.txt",
    ] {
        assert_eq!(parse(path), None, "{path}");
    }
}
