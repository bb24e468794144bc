//! The examples of `docs/PROTOCOL.md`, read from the page and checked: every JSON frame shown is
//! a message minibox reads, and each worked example marked `<!-- example: NAME -->` (the hello
//! in bytes, the authentication test vector and its MAC input, a folder digest, an ack and a
//! data header in hex) comes out of the description and out of minibox's own code alike. A
//! page that drifts from the code fails here.

// Test code: a failed step is a failed test.
#![allow(clippy::unwrap_used)]
#![allow(clippy::single_range_in_vec_init)] // a list of gaps that happens to have one

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use minibox::local::auth::{Role, Secret, Transcript};
use minibox::protocol::frame::read_frame;
use minibox::protocol::md5::{hex, Md5};
use minibox::protocol::sync::{FolderSums, Version};
use minibox::protocol::{Reply, Request};
use minibox::wire::udp::datagram::{self, Ack, Datagram};
use sha2::Sha256;

fn page() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/PROTOCOL.md");
    fs::read_to_string(path).unwrap()
}

/// The lines of the fenced block that follows `<!-- example: NAME -->`.
fn example(name: &str) -> Vec<String> {
    let page = page();
    let marker = format!("<!-- example: {name} -->");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} on the page"));
    let mut lines = page[at..].lines().skip(1);
    assert!(
        lines.next().unwrap().starts_with("```"),
        "{marker}: a block"
    );
    lines
        .take_while(|l| !l.starts_with("```"))
        .map(str::to_string)
        .collect()
}

/// The bytes of a hex dump: on each line, the pairs of hex digits before the comment (which is
/// set off by two spaces or more); lines that do not start with one are words, not bytes.
fn bytes_of(lines: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        let dump = line.split("  ").next().unwrap_or("");
        let pairs: Option<Vec<u8>> = dump
            .split_whitespace()
            .map(|t| {
                (t.len() == 2)
                    .then(|| u8::from_str_radix(t, 16).ok())
                    .flatten()
            })
            .collect();
        out.extend(pairs.unwrap_or_default());
    }
    out
}

/// The value of `label:` in a block of `label: value` lines.
fn value<'a>(lines: &'a [String], label: &str) -> &'a str {
    let prefix = format!("{label}:");
    let line = lines.iter().find(|l| l.starts_with(&prefix));
    line.unwrap_or_else(|| panic!("no {label}"))
        .trim_start_matches(&prefix)
        .trim()
}

/// The frames the page shows as malformed, on purpose.
const MALFORMED: [&str; 1] = [r#"{"op":"format_disk"}"#];

#[test]
fn every_frame_shown_is_one_that_minibox_reads() {
    let page = page();
    let mut checked = 0;
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        let Some((arrow, start)) = ["→ ", "← "]
            .iter()
            .find_map(|a| line.trim_start().strip_prefix(a).map(|rest| (*a, rest)))
            .filter(|(_, rest)| rest.starts_with('{'))
        else {
            continue;
        };
        // A frame may go on over several lines: up to its closing brace.
        let mut json = start.to_string();
        while json.matches('{').count() > json.matches('}').count() {
            json.push_str(lines.next().unwrap().trim());
        }
        let json = json.split("   ").next().unwrap().trim();
        if json.contains('…') {
            continue; // elided on purpose
        }
        let parsed = match arrow {
            "→ " => serde_json::from_str::<Request>(json).map(|_| ()),
            _ => serde_json::from_str::<Reply>(json).map(|_| ()),
        };
        // The page's example of a malformed frame must be one.
        let malformed = MALFORMED.contains(&json);
        assert_eq!(parsed.is_err(), malformed, "{arrow}{json}: {parsed:?}");
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} frames found on the page");
}

#[test]
fn the_hello_in_bytes_is_a_frame() {
    let bytes = bytes_of(&example("frame"));
    assert_eq!(bytes.len(), 5 + 28);
    let hello: Request = read_frame(&mut bytes.as_slice()).unwrap().unwrap();
    assert_eq!(
        hello,
        Request::Hello {
            name: "box2".into()
        }
    );
}

/// The MAC input exactly as the page describes it: six fields, each after its length as a
/// big-endian u64.
fn mac_input(label: &str, vector: &[String]) -> Vec<u8> {
    let fields = [
        "minibox-auth-v1",
        label,
        value(vector, "server nonce"),
        value(vector, "client nonce"),
        value(vector, "client name"),
        value(vector, "server name"),
    ];
    let mut out = Vec::new();
    for field in fields {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

#[test]
fn the_authentication_test_vector_comes_out_of_the_description_and_the_code() {
    let vector = example("auth");
    let key = value(&vector, "key");
    assert_eq!(
        bytes_of(&example("auth-input")),
        mac_input("client", &vector)
    );
    for (label, role) in [("client", Role::Client), ("server", Role::Server)] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(&mac_input(label, &vector));
        let by_the_page = hex(&mac.finalize().into_bytes());
        // minibox's own code, with the key read from a secret file that ends in a newline.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        fs::write(&file, format!("{key}\n")).unwrap();
        let t = Transcript {
            server_nonce: value(&vector, "server nonce"),
            client_nonce: value(&vector, "client nonce"),
            client_name: value(&vector, "client name"),
            server_name: value(&vector, "server name"),
        };
        let by_the_code = Secret::from_file(&file).unwrap().proof(role, &t);
        let shown = value(&vector, &format!("{label} proof"));
        assert_eq!(by_the_page, shown, "{label}: the page's own recipe");
        assert_eq!(by_the_code, shown, "{label}: minibox");
    }
}

#[test]
fn the_folder_digest_example_comes_out_of_the_description_and_the_code() {
    let lines = example("folder-digest");
    let shown = value(&lines, "digest of docs");
    let bytes = bytes_of(&lines);
    assert_eq!(bytes.len(), 42 + 48, "a folder's 42 bytes and a file's 48");
    assert_eq!(Md5::of(&bytes).to_string(), shown, "the bytes shown");
    let md5: Md5 = "2ba0aca117ca7a11f84b571d42ff5e76".parse().unwrap();
    let items = BTreeMap::from([
        ("docs".to_string(), Version::dir(0o755)),
        ("docs/deep".to_string(), Version::dir(0o755)),
        (
            "docs/read me.md".to_string(),
            Version::file(md5, 10, 0o600, 1_709_208_000_000_000_000),
        ),
    ]);
    let sums = FolderSums::of(&items);
    assert_eq!(sums["docs"].to_string(), shown, "minibox");
}

#[test]
fn the_ack_and_the_data_header_in_hex_are_what_minibox_sends() {
    let token = 4_120_398_532_112_385;
    let ack = Ack {
        token,
        cumulative: 2,
        window: 64,
        seen_end: 4,
        echo: 1_500_000,
        gaps: vec![2..3],
    };
    let bytes = bytes_of(&example("ack"));
    assert_eq!(datagram::decode(&bytes), Ok(Datagram::Ack(ack.clone())));
    let mut encoded = Vec::new();
    datagram::encode_ack(&ack, &mut encoded);
    assert_eq!(encoded, bytes);

    let bytes = bytes_of(&example("data"));
    let mut header = [0u8; datagram::DATA_HEADER];
    datagram::put_data_header(&mut header, token, 3, 1_400_000, false);
    assert_eq!(bytes, header);
    let Ok(Datagram::Data(data)) = datagram::decode(&bytes) else {
        panic!("a data datagram");
    };
    assert_eq!(
        (data.token, data.block, data.sent_at),
        (token, 3, 1_400_000)
    );
    assert!(!data.ack_now && data.payload.is_empty());
}
