#![allow(clippy::single_range_in_vec_init)] // lists of gaps that happen to have one
use super::*;
use std::ops::Range;

fn ack(cum: u32, seen_end: u32, echo: u64, gaps: Vec<Range<u32>>) -> Ack {
    Ack {
        token: 1,
        cumulative: cum,
        window: 100,
        seen_end,
        echo,
        gaps,
    }
}

/// Sends everything the flight allows at time `now`, returning the blocks.
fn send_all(f: &mut Flight, now: u64) -> Vec<u32> {
    let mut out = Vec::new();
    while let Some(b) = f.next_to_send() {
        f.on_sent(b, now);
        out.push(b);
    }
    out
}

#[test]
fn nothing_is_sent_before_the_receiver_speaks_and_never_past_its_window() {
    let mut f = Flight::new(100);
    assert_eq!(f.next_to_send(), None);
    f.on_ack(
        &Ack {
            window: 5,
            ..ack(0, 0, 0, vec![])
        },
        1,
    );
    assert_eq!(send_all(&mut f, 10), vec![0, 1, 2, 3, 4]);
    assert!(!f.can_send());
    // Acking two blocks opens two more slots.
    assert!(f.on_ack(
        &Ack {
            window: 5,
            ..ack(2, 2, 10, vec![])
        },
        20
    ));
    assert_eq!(send_all(&mut f, 30), vec![5, 6]);
}

#[test]
fn only_the_gaps_are_resent() {
    let mut f = Flight::new(10);
    f.on_ack(&ack(0, 0, 0, vec![]), 1);
    assert_eq!(send_all(&mut f, 10), (0..10).collect::<Vec<_>>());
    // 0..3 arrived, 3 and 6..8 are missing, 9 arrived last.
    assert!(f.on_ack(&ack(3, 10, 10, vec![3..4, 6..8]), 100));
    // Sent at 10, the echo is 10 as well: no datagram sent *after* them has arrived yet.
    assert_eq!(f.next_to_send(), None);
    let mut f = Flight::new(10);
    f.on_ack(&ack(0, 0, 0, vec![]), 1);
    for b in 0..10 {
        let b2 = f.next_to_send().unwrap();
        assert_eq!(b, b2);
        f.on_sent(b, 10 + u64::from(b));
    }
    assert!(f.on_ack(&ack(3, 10, 19, vec![3..4, 6..8]), 100));
    assert_eq!(send_all(&mut f, 200), vec![3, 6, 7]);
    assert_eq!(f.resends, 3);
    // The same (stale) ack again: those blocks were just resent, nothing more to do.
    assert!(!f.on_ack(&ack(3, 10, 19, vec![3..4, 6..8]), 210));
    assert_eq!(f.next_to_send(), None);
    // The resends arrive.
    assert!(f.on_ack(&ack(10, 10, 200, vec![]), 300));
    assert!(f.done());
}

#[test]
fn a_loss_halves_the_window_once_per_flight() {
    let mut f = Flight::new(1000);
    f.on_ack(&ack(0, 0, 0, vec![]), 1);
    let start = f.cwnd();
    let sent = send_all(&mut f, 10);
    assert_eq!(sent.len() as u32, start);
    // Two separate holes of the same flight: one cut.
    f.on_ack(&ack(0, 10, 11, vec![0..1, 5..6]), 20);
    assert_eq!(f.cwnd(), start / 2);
    f.on_ack(&ack(0, 12, 11, vec![0..1, 5..6, 10..11]), 21);
    assert_eq!(f.cwnd(), start / 2);
}

#[test]
fn a_timeout_resends_the_oldest_blocks_and_backs_off() {
    let mut f = Flight::new(10);
    f.on_ack(&ack(0, 0, 0, vec![]), 1);
    send_all(&mut f, 10);
    // 1 and 3 arrived.
    f.on_ack(&ack(0, 4, 5, vec![0..1, 2..3]), 20);
    let before = f.rtt.rto();
    f.on_timeout(1_000);
    assert_eq!(f.cwnd(), MIN_CWND);
    assert!(f.rtt.rto() > before);
    assert_eq!(send_all(&mut f, 2_000), vec![0, 2, 4, 5]);
    assert_eq!(f.timeouts, 1);
}

#[test]
fn an_ack_with_huge_ranges_costs_no_more_than_the_blocks_sent() {
    let mut f = Flight::new(u32::MAX);
    f.on_ack(&ack(0, 0, 0, vec![]), 1);
    send_all(&mut f, 10);
    let started = std::time::Instant::now();
    let hostile = ack(0, u32::MAX, u64::MAX, vec![4_000_000_000..4_000_000_001]);
    f.on_ack(&hostile, 20);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(f.acked(), 0);
}

#[test]
fn acks_for_blocks_never_sent_are_ignored() {
    let mut f = Flight::new(10);
    f.on_ack(&ack(0, 0, 0, vec![]), 1);
    assert!(!f.on_ack(&ack(5, 5, 1, vec![]), 2));
    assert_eq!(f.acked(), 0);
}

#[test]
fn the_timeout_follows_the_measured_round_trip() {
    let mut rtt = Rtt::default();
    assert_eq!(rtt.rto(), INITIAL_RTO);
    for _ in 0..20 {
        rtt.sample(100_000_000); // 100 ms
    }
    let rto = rtt.rto();
    assert!(rto >= Duration::from_millis(100) && rto < Duration::from_millis(150));
    rtt.back_off();
    assert!(rtt.rto() >= rto * 2 || rtt.rto() == MAX_RTO);
    for _ in 0..20 {
        rtt.back_off();
    }
    assert_eq!(rtt.rto(), MAX_RTO);
    let mut fast = Rtt::default();
    fast.sample(10_000);
    assert_eq!(fast.rto(), MIN_RTO, "a fast loopback still waits MIN_RTO");
}
