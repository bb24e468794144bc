use super::*;
use std::sync::Arc;

const SHORT: Duration = Duration::from_millis(50);

#[test]
fn readers_share_writers_exclude() {
    let t = LockTable::new();
    let r1 = t.read("a", SHORT).unwrap();
    let r2 = t.read("a", SHORT).unwrap();
    assert!(t.write("a", SHORT).is_none(), "readers keep a writer out");
    drop(r1);
    assert!(t.write("a", SHORT).is_none(), "one reader is enough");
    drop(r2);
    let w = t.write("a", SHORT).unwrap();
    assert!(t.read("a", SHORT).is_none(), "a writer keeps readers out");
    assert!(t.write("a", SHORT).is_none(), "and other writers");
    assert!(
        t.write("b", SHORT).is_some(),
        "other files are never blocked"
    );
    drop(w);
    assert_eq!(t.busy(), 0, "released locks leave no trace");
}

#[test]
fn a_waiting_writer_holds_back_new_readers_so_it_is_not_starved() {
    let t = Arc::new(LockTable::new());
    let first = t.read("f", SHORT).unwrap();
    let t2 = Arc::clone(&t);
    let writer = std::thread::spawn(move || t2.write("f", Duration::from_secs(10)).is_some());
    // Once the writer waits, a new reader must wait too, even though only readers hold "f".
    assert!(
        wait(|| t.read("f", SHORT).is_none()),
        "a new reader got in ahead of the waiting writer"
    );
    assert!(
        t.read("g", SHORT).is_some(),
        "other files are not held back"
    );
    drop(first);
    assert!(writer.join().unwrap(), "the writer got its turn");
    assert!(
        t.read("f", SHORT).is_some(),
        "and readers are let in after it"
    );
    assert_eq!(t.busy(), 0);
}

#[test]
fn a_writer_that_gives_up_lets_readers_in_again() {
    let t = LockTable::new();
    let r = t.read("f", SHORT).unwrap();
    assert!(t.write("f", SHORT).is_none());
    assert!(t.read("f", SHORT).is_some(), "no writer waits any more");
    drop(r);
    assert_eq!(t.busy(), 0, "the gave-up writer left no trace");
}

/// Polls `check` for up to 5 s (the writer thread needs a moment to start waiting).
fn wait(mut check: impl FnMut() -> bool) -> bool {
    (0..100).any(|_| {
        check() || {
            std::thread::sleep(SHORT);
            false
        }
    })
}

#[test]
fn a_waiter_gets_the_lock_when_it_is_released() {
    let t = Arc::new(LockTable::new());
    let w = t.write("f", SHORT).unwrap();
    let t2 = Arc::clone(&t);
    let waiter = std::thread::spawn(move || t2.read("f", Duration::from_secs(5)).is_some());
    std::thread::sleep(Duration::from_millis(30));
    drop(w);
    assert!(waiter.join().unwrap());
}
