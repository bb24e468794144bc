use super::*;

#[test]
fn clean_names_pass() {
    for ok in [
        "a",
        "a.txt",
        "dir/sub/file name.txt",
        "..hidden",
        "a..b",
        "ü/ß.txt",
        ".x",
    ] {
        assert_eq!(check_name(ok), Ok(()), "{ok}");
    }
}

#[test]
fn dirty_names_are_refused_with_the_right_reason() {
    assert_eq!(check_name(""), Err(PathError::Empty));
    assert!(matches!(
        check_name("/etc/passwd"),
        Err(PathError::Absolute(_))
    ));
    for bad in ["..", "../x", "a/../../x", "a/./b", "a//b", "a/", ".", "./a"] {
        assert!(
            matches!(check_name(bad), Err(PathError::BadComponent(_))),
            "{bad}"
        );
    }
    for bad in ["a\0b", "a\\b", "..\\..\\x", "C:\\x"] {
        assert!(
            matches!(check_name(bad), Err(PathError::BadCharacter(_))),
            "{bad}"
        );
    }
    assert!(matches!(
        check_name(".minibox/log"),
        Err(PathError::Reserved(_))
    ));
    assert!(matches!(
        check_name(".minibox"),
        Err(PathError::Reserved(_))
    ));
    assert_eq!(check_name(".miniboxes"), Ok(()));
}

#[test]
fn peer_names_are_cleaned() {
    assert_eq!(clean_name("box2"), "box2");
    assert_eq!(clean_name("laptop-1.home"), "laptop-1.home");
    assert_eq!(clean_name("../../etc"), ".._.._etc");
    assert_eq!(clean_name(".."), "_..");
    assert_eq!(clean_name(""), "_");
    assert_eq!(clean_name("a\nb\tc/d\\e\0"), "a_b_c_d_e_");
    assert_eq!(clean_name(&"n".repeat(1000)).len(), MAX_NAME);
}

#[test]
fn a_name_longer_than_a_path_may_be_is_refused_without_a_copy() {
    let longest = format!("{}/{}", "d".repeat(255), "f".repeat(MAX_PATH - 256));
    assert_eq!(check_name(&longest), Ok(()));
    let longer = format!("{longest}x");
    assert_eq!(check_name(&longer), Err(PathError::TooLong(MAX_PATH + 1)));
    let said = PathError::TooLong(MAX_PATH + 1).to_string();
    assert!(
        said.contains("4096 bytes") && said.contains("4095"),
        "{said}"
    );
}
