use super::*;

#[test]
fn known_digests() {
    assert_eq!(
        md5_reader(&b""[..]).unwrap(),
        "d41d8cd98f00b204e9800998ecf8427e"
    );
    assert_eq!(
        md5_reader(&b"The quick brown fox jumps over the lazy dog"[..]).unwrap(),
        "9e107d9d372bb6826bd81d3542a419d6"
    );
    let big = vec![7u8; BUF_SIZE * 3 + 5];
    let mut h = Hasher::new();
    h.update(&big);
    assert_eq!(md5_reader(big.as_slice()).unwrap(), h.finish());
    assert_eq!(Md5::of(&big), digest_reader(big.as_slice()).unwrap());
}

#[test]
fn md5s_read_and_print_as_hex_and_order_like_their_text() {
    let text = "9e107d9d372bb6826bd81d3542a419d6";
    let md5: Md5 = text.parse().unwrap();
    assert_eq!(md5.to_string(), text);
    assert_eq!(
        "9E107D9D372BB6826BD81D3542A419D6".parse::<Md5>().unwrap(),
        md5
    );
    assert_eq!(serde_json::to_string(&md5).unwrap(), format!("\"{text}\""));
    assert_eq!(
        serde_json::from_str::<Md5>(&format!("\"{text}\"")).unwrap(),
        md5
    );
    for bad in [
        "",
        "9e10",
        "9e107d9d372bb6826bd81d3542a419dz",
        &format!("{text}0"),
    ] {
        assert!(bad.parse::<Md5>().is_err(), "{bad}");
    }
    assert!(serde_json::from_str::<Md5>("\"nope\"").is_err());
    let (a, b) = (Md5::of(b"a"), Md5::of(b"b"));
    assert_eq!(a < b, a.to_string() < b.to_string());
}
