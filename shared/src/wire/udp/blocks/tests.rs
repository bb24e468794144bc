use super::*;

#[test]
fn lan_blocks_fit_one_ethernet_frame() {
    assert_eq!(LAN_BLOCK_V4, 1448);
    assert_eq!(LAN_BLOCK_V4 as usize + datagram::DATA_HEADER + 8 + 20, 1500);
    assert_eq!(LAN_BLOCK_V6 as usize + datagram::DATA_HEADER + 8 + 40, 1500);
    assert!(LOOPBACK_BLOCK as usize + datagram::DATA_HEADER + 8 + 20 <= 65536);
}

#[test]
fn the_block_size_follows_the_path() {
    if std::env::var_os("MINIBOX_UDP_BLOCK").is_some() {
        return; // forced by the environment: nothing to check here
    }
    assert_eq!(block_size_for("127.0.0.1".parse().unwrap()), LOOPBACK_BLOCK);
    assert_eq!(block_size_for("::1".parse().unwrap()), LOOPBACK_BLOCK);
    assert_eq!(
        block_size_for("192.168.1.20".parse().unwrap()),
        LAN_BLOCK_V4
    );
    assert_eq!(block_size_for("fe80::1".parse().unwrap()), LAN_BLOCK_V6);
}

#[test]
fn block_counts() {
    assert_eq!(block_count(0, 1448).unwrap(), 0);
    assert_eq!(block_count(1, 1448).unwrap(), 1);
    assert_eq!(block_count(1448, 1448).unwrap(), 1);
    assert_eq!(block_count(1449, 1448).unwrap(), 2);
    assert!(block_count(10, 0).is_err());
    assert!(block_count(10, 70_000).is_err());
    assert!(block_count(u64::MAX, 1448).is_err());
}

#[test]
fn the_window_fits_the_socket_buffer() {
    // 8 MiB granted, 5 MiB counted on: 32 KiB blocks, each charged about 37 KiB.
    let w = receive_window(8 << 20, LOOPBACK_BLOCK);
    assert!((130..=145).contains(&w), "{w}");
    // The kernel's default 208 KiB: a handful of large blocks, many small ones.
    assert!(receive_window(425_984, LOOPBACK_BLOCK) >= 2);
    assert!(receive_window(425_984, LAN_BLOCK_V4) > 50);
    // The memory budget caps tiny blocks on a huge buffer.
    assert!(receive_window(1 << 30, MIN_BLOCK) <= flight::MAX_WINDOW);
}

#[test]
fn tokens_differ_and_fit_json_numbers() {
    let a = new_token();
    let b = new_token();
    assert_ne!(a, b);
    assert!(a < 1 << 53 && b < 1 << 53 && a > 0);
}
