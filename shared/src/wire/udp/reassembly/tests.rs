#![allow(clippy::single_range_in_vec_init)] // lists of gaps that happen to have one
use super::*;

/// Feeds blocks to a reassembly and collects what it delivers.
fn feed(r: &mut Reassembly, out: &mut Vec<u8>, block: u32, at: u64) -> Arrival {
    r.accept(block, at, &[block as u8], &mut |bytes: &[u8]| {
        out.extend_from_slice(bytes);
        Ok(())
    })
    .unwrap()
}

#[test]
fn in_order_blocks_are_delivered_at_once() {
    let mut r = Reassembly::new(3, 8);
    let mut out = Vec::new();
    assert_eq!(feed(&mut r, &mut out, 0, 1), Arrival::InOrder);
    assert_eq!(feed(&mut r, &mut out, 1, 2), Arrival::InOrder);
    assert_eq!(feed(&mut r, &mut out, 1, 3), Arrival::Duplicate);
    assert_eq!(feed(&mut r, &mut out, 2, 4), Arrival::InOrder);
    assert!(r.complete());
    assert_eq!(out, vec![0, 1, 2]);
    let ack = r.ack(7);
    assert_eq!((ack.cumulative, ack.seen_end, ack.echo), (3, 3, 4));
    assert!(ack.gaps.is_empty());
}

#[test]
fn holes_are_reported_and_filled() {
    let mut r = Reassembly::new(10, 8);
    let mut out = Vec::new();
    feed(&mut r, &mut out, 0, 1);
    assert_eq!(feed(&mut r, &mut out, 2, 3), Arrival::Early);
    assert_eq!(feed(&mut r, &mut out, 5, 6), Arrival::Early);
    assert_eq!(feed(&mut r, &mut out, 5, 7), Arrival::Duplicate);
    assert_eq!(feed(&mut r, &mut out, 9, 8), Arrival::Outside, "1 + 8 = 9");
    let ack = r.ack(1);
    assert_eq!(ack.cumulative, 1);
    assert_eq!(ack.seen_end, 6);
    assert_eq!(ack.gaps, vec![1..2, 3..5]);
    assert_eq!(ack.echo, 7);
    assert_eq!(out, vec![0]);
    assert_eq!(feed(&mut r, &mut out, 1, 9), Arrival::FilledGap);
    assert_eq!(out, vec![0, 1, 2]);
    assert_eq!(r.ack(1).gaps, vec![3..5]);
    feed(&mut r, &mut out, 4, 10);
    feed(&mut r, &mut out, 3, 11);
    assert_eq!(out, vec![0, 1, 2, 3, 4, 5]);
    for b in 6..10 {
        feed(&mut r, &mut out, b, 20);
    }
    assert!(r.complete());
    assert_eq!(out, (0..10).collect::<Vec<u8>>());
}

#[test]
fn a_long_list_of_holes_is_cut_at_the_first_one_left_out() {
    let n = (MAX_GAPS as u32 + 10) * 2;
    let mut r = Reassembly::new(n, n);
    let mut out = Vec::new();
    for b in (1..n).step_by(2) {
        feed(&mut r, &mut out, b, 1);
    }
    let ack = r.ack(1);
    assert_eq!(ack.gaps.len(), MAX_GAPS);
    // Holes are the even blocks; the first unreported one is 2 * MAX_GAPS.
    assert_eq!(ack.seen_end, 2 * MAX_GAPS as u32);
    assert_eq!(ack.gaps[0], 0..1);
}

#[test]
fn delivery_errors_are_returned() {
    let mut r = Reassembly::new(2, 2);
    let err = r
        .accept(0, 1, b"x", &mut |_: &[u8]| {
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "disk full");
}
