//! Property tests ("fuzzing" within `cargo test`) of everything that parses untrusted input: the
//! frame decoder, request and reply decoding, the shell's tokenizer and parser, the path gate and
//! the timestamp parser.
//!
//! Each property runs a few thousand generated cases, from a fixed seed so that CI sees the same
//! cases every run (set `PROPTEST_RNG_SEED` to explore others, `PROPTEST_CASES` to run more). The
//! first property of each kind is "never panics"; where there is more to say (a round trip, a
//! resolved path staying inside the box), it is said too.

use std::path::{Component, Path};

use minibox::local::gate as paths;
use minibox::protocol::frame::{self, FrameError, MAX_FRAME, VERSION};
use minibox::protocol::name::check_name;
use minibox::protocol::timestamp;
use minibox::protocol::{Entry, ErrorCode, Filter, Kind, ListKind, Reply, Request};
use minibox::shell::grammar;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// `cases` cases from a fixed seed, unless the environment asks otherwise.
fn config(cases: u32) -> Config {
    let mut c = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(0x006d_696e_6962_6f78);
    }
    // Failures print the shrunk case; no files are written into the source tree.
    c.failure_persistence = None;
    c
}

// ---- strategies for the protocol's own types ----

fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 ._/-]{0,40}",
        any::<String>(),
        Just("../x".to_string()),
        Just("\0".to_string()),
    ]
}

fn any_filter() -> impl Strategy<Value = Filter> {
    prop_oneof![
        Just(Filter::All),
        (any::<i64>(), any::<i64>())
            .prop_map(|(start_ns, end_ns)| Filter::Modified { start_ns, end_ns }),
        any::<String>().prop_map(|pattern| Filter::Regex { pattern }),
    ]
}

fn any_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        any_name().prop_map(|name| Request::Hello { name }),
        (any_filter(), any::<bool>()).prop_map(|(filter, hashes)| {
            let listing = if hashes {
                ListKind::Hashes
            } else {
                ListKind::Index
            };
            Request::List { filter, listing }
        }),
        any_name().prop_map(|path| Request::Hash { path }),
        any_name().prop_map(|path| Request::Download { path }),
        any_name().prop_map(|path| Request::DownloadUdp { path }),
        ("[0-9a-f]{0,64}", any::<String>())
            .prop_map(|(nonce, proof)| Request::Prove { nonce, proof }),
    ]
}

fn any_entry() -> impl Strategy<Value = Entry> {
    (
        any_name(),
        any::<bool>(),
        any::<u64>(),
        any::<i64>(),
        0u32..0o1000,
        "[a-z/+-]{0,20}",
        proptest::option::of("[0-9a-f]{32}"),
    )
        .prop_map(|(path, dir, size, mtime_ns, mode, mime, md5)| Entry {
            path,
            kind: if dir { Kind::Dir } else { Kind::File },
            size,
            mtime_ns,
            mode,
            mime,
            md5,
        })
}

fn any_reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        any_name().prop_map(|name| Reply::Hello { name }),
        (any_name(), "[0-9a-f]{0,64}").prop_map(|(name, nonce)| Reply::Challenge { name, nonce }),
        any::<String>().prop_map(|proof| Reply::Welcome { proof }),
        proptest::collection::vec(any_entry(), 0..4).prop_map(|entries| Reply::Entries { entries }),
        any::<u64>().prop_map(|count| Reply::End { count }),
        any_entry().prop_map(|entry| Reply::File { entry }),
        (any_entry(), any::<u64>(), any::<u32>()).prop_map(|(entry, token, block_size)| {
            Reply::UdpOffer {
                entry,
                token,
                block_size,
            }
        }),
        "[0-9a-f]{0,40}".prop_map(|md5| Reply::Trailer { md5 }),
        any::<String>().prop_map(|message| Reply::Error {
            code: ErrorCode::BadPath,
            message
        }),
    ]
}

/// Decodes every frame in `bytes` as `T` until the end or the first error; never panics.
fn decode_all<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, FrameError> {
    let mut r = bytes;
    let mut out = Vec::new();
    while let Some(msg) = frame::read_frame(&mut r)? {
        out.push(msg);
    }
    Ok(out)
}

/// A frame header announcing `len` bytes, with our version.
fn header(len: u32) -> Vec<u8> {
    let mut h = vec![VERSION];
    h.extend_from_slice(&len.to_be_bytes());
    h
}

// ---- the frame decoder ----

proptest! {
    #![proptest_config(config(4000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_all::<Request>(&bytes);
        let _ = decode_all::<Reply>(&bytes);
    }

    #[test]
    fn any_header_with_any_body_is_an_answer_not_a_panic(
        len in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = header(len);
        bytes.extend_from_slice(&body);
        match frame::read_frame::<_, Request>(&mut bytes.as_slice()) {
            Err(FrameError::TooLarge(n)) => prop_assert!(n > MAX_FRAME),
            Err(FrameError::Truncated) => prop_assert!(len as usize > body.len()),
            Ok(Some(_)) | Err(FrameError::Json(_)) => prop_assert!(len as usize <= body.len()),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn requests_and_replies_survive_the_wire(request in any_request(), reply in any_reply()) {
        let mut bytes = Vec::new();
        frame::write_frame(&mut bytes, &request).unwrap();
        frame::write_frame(&mut bytes, &reply).unwrap();
        let mut r = bytes.as_slice();
        prop_assert_eq!(frame::read_frame::<_, Request>(&mut r).unwrap(), Some(request));
        prop_assert_eq!(frame::read_frame::<_, Reply>(&mut r).unwrap(), Some(reply));
        prop_assert!(r.is_empty());
    }

    #[test]
    fn mutated_frames_never_panic(
        request in any_request(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = Vec::new();
        frame::write_frame(&mut bytes, &request).unwrap();
        for (at, byte, how) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = at % bytes.len();
            match how {
                0 => bytes[at] = byte,   // overwrite
                1 => bytes.insert(at, byte),
                _ => bytes.truncate(at), // cut
            }
        }
        if let Ok(frames) = decode_all::<Request>(&bytes) {
            // Whatever decoded is a request the server can encode again within the limit.
            for f in frames {
                let mut again = Vec::new();
                prop_assert!(frame::write_frame(&mut again, &f).is_ok());
            }
        }
    }

    #[test]
    fn json_shaped_text_never_panics_the_request_and_reply_decoders(
        text in r#"[{}\[\]":,0-9a-z_ .\\-]{0,80}"#,
    ) {
        let _ = serde_json::from_str::<Request>(&text);
        let _ = serde_json::from_str::<Reply>(&text);
        // Put in front a prefix the decoders accept, to reach deeper.
        let _ = serde_json::from_str::<Request>(&format!(r#"{{"op":"list","filter":{text}"#));
        let _ = serde_json::from_str::<Request>(&format!(r#"{{"op":"hash","path":{text}}}"#));
    }
}

// ---- the shell ----

proptest! {
    #![proptest_config(config(4000))]

    #[test]
    fn any_line_parses_or_errs(line in any::<String>()) {
        let _ = grammar::tokenize(&line);
        let _ = grammar::parse_with(&line, 0, |t| timestamp::parse_in(t, &chrono::Utc));
    }

    #[test]
    fn command_like_lines_parse_or_err(
        line in r#"(index|hash|download|sync|help|quit|INDEX|Download) ?(longlist|shortlist|regex|verify|checkall|tcp|UDP)? ?("[^"]{0,12}"|[@0-9/:T -]{0,24}|[a-z.\\*()]{0,12}){0,3}"#,
    ) {
        let _ = grammar::parse_with(&line, 0, |t| timestamp::parse_in(t, &chrono::Utc));
    }

    #[test]
    fn plain_tokens_come_back_as_they_were(tokens in proptest::collection::vec("[a-zA-Z0-9._/@-]{1,12}", 0..6)) {
        let line = tokens.join("  ");
        prop_assert_eq!(grammar::tokenize(&line).unwrap(), tokens);
    }

    #[test]
    fn a_quoted_token_keeps_its_spaces(inner in r#"[^"\\]{0,30}"#) {
        let line = format!(r#"download TCP "{inner}""#);
        let tokens = grammar::tokenize(&line).unwrap();
        prop_assert_eq!(tokens.len(), 3);
        prop_assert_eq!(&tokens[2], &inner);
    }
}

// ---- the path gate ----

/// Names made of the parts that matter most to the gate, joined by `/` (or a backslash).
fn gate_name() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        Just("a"),
        Just("b.txt"),
        Just(".."),
        Just("."),
        Just(""),
        Just(".minibox"),
        Just("door"),
        Just("real"),
        Just("ü"),
        Just("x\0y"),
        Just("c\\d"),
        Just("/"),
    ];
    (
        proptest::collection::vec(part, 0..6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(parts, lead, back)| {
            let sep = if back { "\\" } else { "/" };
            let body = parts.join(sep);
            if lead {
                format!("/{body}")
            } else {
                body
            }
        })
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn an_accepted_name_stays_inside_the_box(name in prop_oneof![gate_name(), any::<String>()]) {
        let tmp = shared_box();
        let root = tmp.path().join("box");
        match check_name(&name) {
            Err(_) => prop_assert!(paths::resolve(&root, &name).is_err()),
            Ok(()) => {
                prop_assert!(!name.starts_with('/'));
                prop_assert!(!name.contains('\0') && !name.contains('\\'));
                if let Ok(path) = paths::resolve(&root, &name) {
                    let rest = path.strip_prefix(&root);
                    prop_assert!(rest.is_ok(), "{:?} left {:?}", path, root);
                    let rest = rest.unwrap();
                    prop_assert!(rest.components().all(|c| matches!(c, Component::Normal(_))));
                    // No existing prefix of the path is a symbolic link.
                    let mut at = root.clone();
                    for c in rest.components() {
                        at.push(c);
                        if let Ok(meta) = std::fs::symlink_metadata(&at) {
                            prop_assert!(!meta.file_type().is_symlink(), "{:?} passes a link", path);
                        }
                    }
                }
            }
        }
    }
}

/// One box for every case of the gate property: `box/real/` a folder, `box/door` a link to a
/// folder outside, `box/real/b.txt` a file.
fn shared_box() -> &'static tempfile::TempDir {
    static BOX: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    BOX.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let root = tmp.path().join("box");
        std::fs::create_dir_all(root.join("real")).expect("building the box");
        std::fs::create_dir_all(tmp.path().join("outside")).expect("building the box");
        std::fs::write(root.join("real/b.txt"), "b").expect("building the box");
        std::os::unix::fs::symlink(tmp.path().join("outside"), root.join("door"))
            .expect("building the box");
        std::os::unix::fs::symlink(Path::new("../outside"), root.join("real/door"))
            .expect("building the box");
        tmp
    })
}

// ---- timestamps and regular expressions ----

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn any_text_is_a_timestamp_or_a_clear_error(text in prop_oneof![
        any::<String>(),
        "[0-9]{1,6}(/[0-9]{1,4}){0,7}",
        "@-?[0-9]{0,25}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,12})?)?)?(Z|[+-][0-9]{2}:[0-9]{2})?",
    ]) {
        match timestamp::parse_in(&text, &chrono::Utc) {
            Ok(_) => {}
            Err(e) => prop_assert!(
                e.contains("not a timestamp") || e.contains("does not exist"),
                "{}", e
            ),
        }
    }

    #[test]
    fn unix_seconds_mean_what_they_say(secs in -9_000_000_000i64..9_000_000_000) {
        prop_assert_eq!(
            timestamp::parse_in(&format!("@{secs}"), &chrono::Utc),
            Ok(secs * 1_000_000_000)
        );
    }
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn any_pattern_compiles_or_is_refused_clearly(pattern in prop_oneof![
        any::<String>(),
        r"[a-z.*+?(){}\[\]|^$\\0-9,]{0,24}",
    ]) {
        if let Err(e) = minibox::local::filter::compile(&pattern) {
            prop_assert!(e.contains("not a valid regular expression"));
        }
    }
}
