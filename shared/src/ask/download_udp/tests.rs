use super::*;
use crate::wire::udp::blocks::LOOPBACK_BLOCK;
use crate::wire::udp::datagram::DATA_HEADER;

#[test]
fn the_last_block_is_short() {
    let plan = Plan {
        name: "f",
        token: 1,
        size: 2500,
        block_size: 1000,
        blocks: 3,
        window: 8,
    };
    assert_eq!(plan.len_of(0), 1000);
    assert_eq!(plan.len_of(2), 500);
    assert_eq!(plan.len_of(3), 0);
}

#[test]
fn data_header_leaves_room_for_a_loopback_block() {
    assert!(DATA_HEADER + LOOPBACK_BLOCK as usize <= MAX_DATAGRAM);
}
