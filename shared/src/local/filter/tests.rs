use super::*;
use crate::local::scan::mime_of;
use crate::protocol::message::Kind;

#[test]
fn filters() {
    let e = |path: &str, mtime_ns| Entry {
        path: path.into(),
        kind: Kind::File,
        size: 0,
        mtime_ns,
        mode: 0o644,
        mime: mime_of(path),
        md5: None,
    };
    let m = Matcher::new(&Filter::Modified {
        start_ns: 10,
        end_ns: 20,
    })
    .unwrap();
    assert!(m.matches(&e("a", 10)) && m.matches(&e("a", 20)));
    assert!(!m.matches(&e("a", 9)) && !m.matches(&e("a", 21)));
    let m = Matcher::new(&Filter::Regex {
        pattern: r"\.txt$".into(),
    })
    .unwrap();
    assert!(m.matches(&e("dir/x.txt", 0)));
    assert!(!m.matches(&e("x.txt.bak", 0)));
    let err = Matcher::new(&Filter::Regex {
        pattern: "(".into(),
    })
    .unwrap_err();
    assert!(err.contains("not a valid regular expression"), "{err}");
    assert!(err.ends_with("(unclosed group)"), "{err}");
    assert_eq!(mime_of("noext"), "application/octet-stream");
}
