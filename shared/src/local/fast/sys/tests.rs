use super::*;

#[test]
fn a_rename_that_must_not_replace_leaves_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    fs::write(&a, "new").unwrap();
    fs::write(&b, "there").unwrap();
    assert!(!rename_if_free(&a, &b).unwrap(), "b is taken");
    assert_eq!(fs::read(&b).unwrap(), b"there");
    assert!(a.exists());
    assert!(!rename_if_free(&a, &dir.path().join("no/such/folder")).unwrap());
    assert!(!rename_if_free(&a, &b.join("under-a-file")).unwrap());
    assert!(a.exists());
    assert!(rename_if_free(&a, &c).unwrap());
    assert_eq!(fs::read(&c).unwrap(), b"new");
    assert!(!a.exists());
}
