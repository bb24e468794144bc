use super::*;
use std::sync::Arc;

#[test]
fn a_name_is_claimed_once_and_given_back_on_drop() {
    let t = InFlight::new();
    let round = t.try_claim(&"big.bin".into(), "a sync round").unwrap();
    assert_eq!(
        t.try_claim(&"big.bin".into(), "the shell").err(),
        Some("a sync round")
    );
    assert!(
        t.try_claim(&"other.bin".into(), "the shell").is_ok(),
        "other names are free"
    );
    drop(round);
    assert!(t.is_empty(), "a dropped claim leaves no trace");
    assert!(t.try_claim(&"big.bin".into(), "the shell").is_ok());
}

#[test]
fn a_free_name_is_claimed_without_waiting_or_asking() {
    let t = InFlight::new();
    let (_claim, waited) = t
        .claim("f", "the shell", &mut |_| panic!("nobody to wait for"))
        .unwrap();
    assert!(!waited);
}

#[test]
fn a_waiting_claim_gets_the_name_once_it_is_given_back() {
    let t = Arc::new(InFlight::new());
    let round = t.try_claim(&"f".into(), "a sync round").unwrap();
    let t2 = Arc::clone(&t);
    let waiter = std::thread::spawn(move || {
        let mut asked = Vec::new();
        let got = t2.claim("f", "the shell", &mut |holder| {
            asked.push(holder.to_string());
            asked.len() < 100
        });
        let waited = got.map(|(_, waited)| waited);
        (waited, asked)
    });
    // Give the waiter time to find the name taken (it gives up by itself after 100 asks).
    std::thread::sleep(Duration::from_millis(300));
    drop(round);
    let (waited, asked) = waiter.join().unwrap();
    assert_eq!(waited, Ok(true));
    assert!(asked.iter().all(|h| h == "a sync round"), "{asked:?}");
    assert!(t.is_empty());
}

#[test]
fn a_claim_that_stops_waiting_says_who_held_the_name() {
    let t = InFlight::new();
    let _round = t.try_claim(&"f".into(), "a sync round").unwrap();
    let mut asked = 0;
    let got = t.claim("f", "the shell", &mut |_| {
        asked += 1;
        asked < 3
    });
    assert_eq!(got.err(), Some("a sync round"));
    assert_eq!(asked, 3);
    assert_eq!(t.len(), 1, "the holder keeps its claim");
}
