use super::*;
use std::collections::BTreeSet;

#[test]
fn folder_digests_change_only_where_the_change_is() {
    let file = |s: &str, mtime| Version::file(Md5::of(s.as_bytes()), s.len() as u64, 0o644, mtime);
    let mut index = Index::new();
    index.insert("a".into(), Version::dir(0o755));
    index.insert("a/x.txt".into(), file("x", 1));
    index.insert("a/y.txt".into(), file("y", 2));
    index.insert("b".into(), Version::dir(0o755));
    index.insert("empty".into(), Version::dir(0o700));
    index.insert("top.txt".into(), file("t", 3));
    let before = FolderSums::of(&index);
    let folders: BTreeSet<&str> = before.keys().map(String::as_str).collect();
    assert_eq!(folders, BTreeSet::from(["", "a", "b", "empty"]));
    assert_ne!(before["b"], before["a"]);
    assert_eq!(before["b"], Hasher::new().digest(), "an empty folder");

    // An edit in a/: only a/ differs. A new bit on a/ itself: only the top differs.
    let mut edited = index.clone();
    edited.insert("a/y.txt".into(), file("y2", 2));
    let after = FolderSums::of(&edited);
    let differ = |x: &HashMap<String, Md5>| -> Vec<String> {
        let mut d: Vec<String> = before
            .keys()
            .filter(|k| x.get(*k) != before.get(*k))
            .cloned()
            .collect();
        d.sort();
        d
    };
    assert_eq!(differ(&after), ["a"]);
    let mut chmodded = index.clone();
    chmodded.insert("a".into(), Version::dir(0o700));
    assert_eq!(differ(&FolderSums::of(&chmodded)), [""]);
    // The same facts give the same digests, however they were obtained.
    let round_trip: Index = serde_json::from_str(&serde_json::to_string(&index).unwrap()).unwrap();
    assert_eq!(FolderSums::of(&round_trip), before);
}
