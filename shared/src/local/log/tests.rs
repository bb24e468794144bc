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

#[test]
fn times_are_utc_and_the_direction_is_told() {
    let tmp = tempfile::tempdir().unwrap();
    let log = ActivityLog::new(tmp.path());
    log.record(&served("box1"), "index all", "ok 3 entries");
    log.record(&made("127.0.0.1:60001"), "hash \"a\"", "ok");
    let text = fs::read_to_string(log.path()).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert!(
        lines[0][0].ends_with('Z') && lines[0][0].len() == 24,
        "{text}"
    );
    assert_eq!(lines[0][1], "<- box1");
    assert_eq!(lines[1][1], "-> 127.0.0.1:60001");
}

#[test]
fn identical_lines_are_summed_up_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let log = ActivityLog::new(tmp.path());
    for _ in 0..300 {
        log.record("<- box2", "sync list (3 folders known)", "ok 0 entries");
    }
    let lines = || fs::read_to_string(log.path()).unwrap().lines().count();
    assert_eq!(lines(), 1, "the first one only, so far");
    log.record("<- box2", "download tcp \"a\"", "ok 1 bytes");
    let text = fs::read_to_string(log.path()).unwrap();
    let all: Vec<&str> = text.lines().collect();
    assert_eq!(all.len(), 3, "{text}");
    assert!(
        all[1].ends_with("ok 0 entries (the same 299 more times since ")
            || all[1].contains("ok 0 entries (the same 299 more times since 20"),
        "{text}"
    );
    assert_eq!(all[1].split('\t').count(), 4);
    // A run still going when the log is dropped is summed up then.
    log.record("<- box2", "download tcp \"a\"", "ok 1 bytes");
    drop(log);
    let text = fs::read_to_string(tmp.path().join(META_DIR).join("log")).unwrap();
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("(the same 1 more time since"),
        "{text}"
    );
}

#[test]
fn a_full_log_rotates_to_log_1() {
    let tmp = tempfile::tempdir().unwrap();
    let log = ActivityLog::with_limit(tmp.path(), 1000);
    for i in 0..100 {
        log.record("<- p", &format!("hash \"file{i}\""), "ok");
    }
    let dir = tmp.path().join(META_DIR);
    let size = |name: &str| fs::metadata(dir.join(name)).map(|m| m.len()).unwrap_or(0);
    assert!(size("log") <= 1000, "{}", size("log"));
    assert!(size("log.1") > 0 && size("log.1") <= 1000);
    let last = fs::read_to_string(dir.join("log")).unwrap();
    assert!(last.lines().last().unwrap().contains("file99"));
}
