use super::*;

#[test]
fn the_peak_grows_with_what_was_held() {
    let before = peak_memory().expect("Linux says");
    let held = vec![1u8; 64 << 20];
    let after = peak_memory().expect("Linux says");
    assert!(
        after >= before.max(held.len() as u64),
        "{before} then {after}"
    );
}
