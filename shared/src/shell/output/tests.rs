use super::*;
use crate::protocol::message::Kind;

fn entry(path: &str, size: u64) -> Entry {
    Entry {
        path: path.into(),
        kind: Kind::File,
        size,
        mtime_ns: 1_795_600_800_000_000_000,
        mode: 0o644,
        mime: "text/plain".into(),
        md5: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
    }
}

#[test]
fn sizes() {
    assert_eq!(human_size(0), "0 B");
    assert_eq!(human_size(1023), "1023 B");
    assert_eq!(human_size(1536), "1.5 KiB");
    assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
    assert_eq!(human_size(3 << 30), "3.0 GiB");
}

#[test]
fn json_shapes_follow_the_contract() {
    let files = Outcome::Files {
        files: vec![entry("a b.txt", 3)],
        hashes: false,
    };
    assert_eq!(
        to_json(&files).unwrap().to_string(),
        r#"{"ok":true,"files":[{"path":"a b.txt","size":3,"mtime":"2026-11-25T10:00:00Z","type":"text/plain"}]}"#
    );
    let d = Outcome::Downloaded {
        entry: entry("x", 0),
        transport: Transport::Udp,
    };
    let v = to_json(&d).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["transport"], "udp");
    assert_eq!(v["file"]["md5"], "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(error_json("no").to_string(), r#"{"ok":false,"error":"no"}"#);
    assert!(to_json(&Outcome::Quit).is_none());
}

#[test]
fn tables_align() {
    let text = to_text(&Outcome::Files {
        files: vec![entry("short", 1), entry("a/much/longer/name.txt", 4096)],
        hashes: false,
    })
    .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    let col = lines[0].find("SIZE").unwrap();
    assert!(lines.iter().all(|l| l.len() >= col + 4));
    assert!(lines[2].contains("4.0 KiB"));
    assert!(!text.contains("MD5"));
}
