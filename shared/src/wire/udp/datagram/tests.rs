#![allow(clippy::single_range_in_vec_init)] // lists of gaps that happen to have one
use super::*;

#[test]
fn data_round_trips() {
    let payload = b"hello, block";
    let d = Data {
        token: 0x0123_4567_89ab_cdef,
        block: 42,
        sent_at: 7_000_000_001,
        ack_now: false,
        payload,
    };
    let bytes = encode_data(&d);
    assert_eq!(bytes.len(), DATA_HEADER + payload.len());
    assert_eq!(decode(&bytes), Ok(Datagram::Data(d.clone())));
    let urgent = Data { ack_now: true, ..d };
    assert_eq!(decode(&encode_data(&urgent)), Ok(Datagram::Data(urgent)));
    assert_eq!(token_of(&bytes), Some(0x0123_4567_89ab_cdef));
}

#[test]
fn acks_round_trip() {
    let ack = Ack {
        token: 9,
        cumulative: 10,
        window: 64,
        seen_end: 30,
        echo: 123_456,
        gaps: vec![10..12, 15..16, 20..29],
    };
    let mut bytes = Vec::new();
    encode_ack(&ack, &mut bytes);
    assert_eq!(bytes.len(), ACK_HEADER + 3 * 8);
    assert_eq!(decode(&bytes), Ok(Datagram::Ack(ack)));
}

#[test]
fn a_full_ack_fits_one_ethernet_frame() {
    let ack = Ack {
        seen_end: 10_000,
        gaps: (0..MAX_GAPS as u32).map(|i| i * 3..i * 3 + 1).collect(),
        ..Ack::default()
    };
    let mut bytes = Vec::new();
    encode_ack(&ack, &mut bytes);
    assert!(bytes.len() <= MAX_ACK);
    assert_eq!(decode(&bytes), Ok(Datagram::Ack(ack)));
}

#[test]
fn garbage_is_rejected_without_panicking() {
    assert_eq!(decode(b""), Err(WireError::TooShort(0)));
    assert_eq!(decode(b"GET / HTTP/1.1"), Err(WireError::NotOurs));
    assert_eq!(decode(b"MB\x02D00000000"), Err(WireError::Version(2)));
    assert_eq!(decode(b"MB\x01Z"), Err(WireError::Kind(b'Z')));
    assert_eq!(decode(b"MB\x01D1234"), Err(WireError::TooShort(8)));
    assert!(token_of(b"MB\x01").is_none());
    // Every prefix of valid datagrams, and pseudo-random junk: errors or values, no panic.
    let mut ack = Vec::new();
    encode_ack(
        &Ack {
            seen_end: 5,
            gaps: vec![1..2],
            ..Ack::default()
        },
        &mut ack,
    );
    let data = encode_data(&Data {
        token: 1,
        block: 2,
        sent_at: 3,
        ack_now: true,
        payload: b"xyz",
    });
    for whole in [&ack, &data] {
        for n in 0..whole.len() {
            let _ = decode(&whole[..n]);
        }
    }
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for len in 0..200 {
        let mut junk = b"MB\x01A".to_vec();
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            junk.push(state as u8);
        }
        let _ = decode(&junk);
    }
}

#[test]
fn inconsistent_acks_are_rejected() {
    let encode = |ack: &Ack| {
        let mut b = Vec::new();
        encode_ack(ack, &mut b);
        b
    };
    let base = Ack {
        cumulative: 10,
        seen_end: 20,
        ..Ack::default()
    };
    for gaps in [
        vec![5..12],          // starts before the cumulative ack
        vec![12..12],         // empty
        vec![12..25],         // past seen_end
        vec![15..17, 12..13], // unsorted
        vec![12..15, 14..16], // overlapping
    ] {
        let bad = Ack {
            gaps,
            ..base.clone()
        };
        assert!(
            matches!(decode(&encode(&bad)), Err(WireError::BadAck(_))),
            "{bad:?}"
        );
    }
    let backwards = Ack {
        cumulative: 30,
        ..base.clone()
    };
    assert!(matches!(
        decode(&encode(&backwards)),
        Err(WireError::BadAck(_))
    ));
    // A count that does not match the length.
    let mut b = encode(&Ack {
        gaps: vec![12..13],
        ..base
    });
    b.pop();
    assert!(matches!(decode(&b), Err(WireError::BadAck(_))));
}
