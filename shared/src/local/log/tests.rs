use super::*;
use crate::protocol::name::META_DIR;

#[test]
fn fields_cannot_forge_lines_or_grow_without_bound() {
    assert_eq!(field("box2"), "box2");
    assert_eq!(field("a\tb\nFORGED\r"), "a\\tb\\nFORGED\\r");
    let long = field(&"x".repeat(10_000));
    assert_eq!(long.chars().count(), MAX_FIELD + 1);
}

#[test]
fn lines_are_appended_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(ActivityLog::new(tmp.path()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    log.record(&format!("peer{t}"), &format!("download a{i}"), "ok");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let text = fs::read_to_string(log.path()).unwrap();
    assert_eq!(text.lines().count(), 200);
    assert!(text
        .lines()
        .all(|l| l.split('\t').count() == 4 && l.ends_with("ok")));
}

#[test]
fn deferred_lines_wait_for_a_flush_and_keep_their_order() {
    let tmp = tempfile::tempdir().unwrap();
    let log = ActivityLog::new(tmp.path());
    log.defer("p", "one", "ok");
    log.defer("p", "two", "ok");
    assert!(!log.path().exists(), "nothing written yet");
    log.record("p", "three", "ok");
    log.defer("p", "four", "ok");
    let read = || fs::read_to_string(log.path()).unwrap();
    let whats = |text: String| -> Vec<String> {
        text.lines()
            .map(|l| l.split('\t').nth(2).unwrap().to_string())
            .collect()
    };
    assert_eq!(whats(read()), ["one", "two", "three"]);
    log.flush();
    assert_eq!(whats(read()), ["one", "two", "three", "four"]);
    log.defer("p", "five", "ok");
    drop(log);
    let text = fs::read_to_string(tmp.path().join(META_DIR).join("log")).unwrap();
    assert_eq!(
        whats(text).last().map(String::as_str),
        Some("five"),
        "flushed on drop"
    );
}
