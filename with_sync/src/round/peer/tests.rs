use super::*;
use crate::plan::Agreed;
use minibox::protocol::md5::Md5;

fn file(label: &str) -> Version {
    Version::file(Md5::of(label.as_bytes()), label.len() as u64, 0o644, 1)
}

#[test]
fn the_peers_index_is_what_it_sent_plus_the_folders_it_said_are_the_same() {
    let agreed: Agreement = [
        ("a", Version::dir(0o755)),
        ("a/x", file("ax")),
        ("a/y", file("ay")),
        ("b", Version::dir(0o755)),
        ("b/z", file("bz")),
        ("top", file("top")),
    ]
    .into_iter()
    .map(|(p, v)| {
        (
            p.to_string(),
            Agreed {
                version: v,
                since: 1,
            },
        )
    })
    .collect();
    // The top folder and b/ are the same; a/ changed: a/y edited, a/new added, a/x gone.
    let received = vec![
        ("a/new".to_string(), file("new")),
        ("a/y".to_string(), file("ay2")),
        // Said to be the same, sent anyway: what was sent counts.
        ("b/z".to_string(), file("bz2")),
    ];
    let same = vec!["".to_string(), "b".to_string()];
    let remote = Remote::new(received, same, &agreed);
    let got: Vec<(&str, &Version)> = remote.items().collect();
    let (ay2, new, bz2, top) = (file("ay2"), file("new"), file("bz2"), file("top"));
    let dir = Version::dir(0o755);
    let want = [
        ("a", &dir),
        ("a/new", &new),
        ("a/y", &ay2),
        ("b", &dir),
        ("b/z", &bz2),
        ("top", &top),
    ];
    assert_eq!(got, want);
    for (path, version) in want {
        assert_eq!(remote.version(path), Some(version), "{path}");
    }
    assert_eq!(remote.version("a/x"), None, "gone from a changed folder");
    assert_eq!(remote.version("nothing"), None);
    let nothing_known = Remote::new(Vec::new(), Vec::new(), &agreed);
    assert_eq!(nothing_known.items().count(), 0);
}
