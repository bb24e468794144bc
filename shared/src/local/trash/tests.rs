use super::*;

const DAY_NS: i64 = 86_400_000_000_000;

/// A trash with time folders made by hand, `ages` days before `now`.
fn trash_with(meta: &Path, now: i64, ages: &[i64]) -> Trash {
    for (i, age) in ages.iter().enumerate() {
        let when = crate::protocol::timestamp::utc(now - age * DAY_NS);
        let dir = meta.join("trash").join(when.format(STAMP).to_string());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("f{i}")), vec![0u8; i + 1]).unwrap();
    }
    Trash::new(meta)
}

#[test]
fn items_older_than_the_kept_days_expire() {
    let tmp = tempfile::tempdir().unwrap();
    let now = now_ns();
    let trash = trash_with(tmp.path(), now, &[0, 10, 29, 31, 400]);
    fs::create_dir_all(tmp.path().join("trash/not-a-time")).unwrap();
    assert_eq!(trash.list().len(), 5);
    assert_eq!(trash.expire(now), 2, "31 and 400 days old");
    let left: Vec<String> = trash.list().into_iter().map(|t| t.path).collect();
    assert_eq!(left, ["f0", "f1", "f2"], "newest first");
    assert!(tmp.path().join("trash/not-a-time").exists(), "left alone");
    trash.days.store(0, Ordering::Relaxed);
    assert_eq!(trash.expire(now + 1000 * DAY_NS), 0, "0 keeps everything");
    trash.keep_days(5);
    assert_eq!(trash.list().len(), 1, "keep_days expires at once");
}

#[test]
fn the_list_shows_paths_as_they_were_in_the_box() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("box");
    fs::create_dir_all(root.join("a/b")).unwrap();
    fs::write(root.join("a/b/c.txt"), "abc").unwrap();
    let trash = Trash::new(&tmp.path().join("meta"));
    let at = trash.take(&root, "a").unwrap();
    assert!(at.ends_with("a"));
    let listed = trash.list();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].path.as_str(), listed[0].size), ("a/b/c.txt", 3));
    assert!((now_ns() - listed[0].trashed_ns).abs() < DAY_NS);
}
