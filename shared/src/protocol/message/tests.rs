use super::*;

#[test]
fn requests_have_a_stable_json_form() {
    let r = Request::List {
        filter: Filter::Regex {
            pattern: r"\.txt$".into(),
        },
        listing: ListKind::Hashes,
    };
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(
        json,
        r#"{"op":"list","filter":{"kind":"regex","pattern":"\\.txt$"},"listing":"hashes"}"#
    );
    assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), r);
    // Without a listing kind, a list is an index.
    let plain: Request = serde_json::from_str(r#"{"op":"list","filter":{"kind":"all"}}"#).unwrap();
    assert_eq!(
        plain,
        Request::List {
            filter: Filter::All,
            listing: ListKind::Index
        }
    );
}

#[test]
fn unknown_ops_and_fields_are_rejected() {
    assert!(serde_json::from_str::<Request>(r#"{"op":"format_disk"}"#).is_err());
    assert!(serde_json::from_str::<Request>(r#"{"op":"hash","path":"a","x":1}"#).is_err());
    assert!(serde_json::from_str::<Request>(r#"{"op":"hash"}"#).is_err());
    // The flags of protocol version 1 are gone.
    let old = r#"{"op":"list","filter":{"kind":"all"},"hashes":true,"folders":true}"#;
    assert!(serde_json::from_str::<Request>(old).is_err());
}

#[test]
fn entries_omit_an_unknown_md5() {
    let e = Entry {
        path: "a b/c.txt".into(),
        kind: Kind::File,
        size: 3,
        mtime_ns: 1,
        mode: 0o644,
        mime: "text/plain".into(),
        md5: None,
    };
    let json = serde_json::to_string(&e).unwrap();
    assert!(!json.contains("md5"));
    assert!(json.contains(r#""type":"text/plain""#));
    assert_eq!(serde_json::from_str::<Entry>(&json).unwrap(), e);
}
