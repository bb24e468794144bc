//! The wire protocol as `docs/PROTOCOL.md` describes it, spoken by hand to the real server.
//!
//! This test is the "client in another language": it frames JSON itself (a version byte, a
//! big-endian length, the body) and never uses the `minibox` crate's codec, so it checks the
//! document's examples against what the server really sends. If you change one, change both.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// A raw connection: frames written and read by hand.
struct Raw(TcpStream);

impl Raw {
    fn connect(s: &Setup) -> Raw {
        let stream = TcpStream::connect(s.server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Raw(stream)
    }

    /// Sends one frame with this exact body.
    fn send(&mut self, body: &str) {
        self.send_bytes(2, body.as_bytes());
    }

    fn send_bytes(&mut self, version: u8, body: &[u8]) {
        let mut frame = vec![version];
        frame.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        frame.extend_from_slice(body);
        self.0.write_all(&frame).unwrap();
    }

    /// Reads one frame; `None` if the server closed the connection.
    fn recv(&mut self) -> Option<Value> {
        let mut header = [0u8; 5];
        if let Err(e) = self.0.read_exact(&mut header) {
            assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
            return None;
        }
        assert_eq!(header[0], 2, "protocol version");
        let len = u32::from_be_bytes(header[1..].try_into().unwrap());
        assert!(len <= 4 * 1024 * 1024, "frame of {len} bytes");
        let mut body = vec![0u8; len as usize];
        self.0.read_exact(&mut body).unwrap();
        Some(serde_json::from_slice(&body).unwrap())
    }

    fn expect(&mut self) -> Value {
        self.recv().expect("a reply, not a closed connection")
    }

    fn raw_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        self.0.read_exact(&mut buf).unwrap();
        buf
    }

    fn hello(&mut self) {
        self.send(r#"{"op":"hello","name":"box2"}"#);
        assert_eq!(self.expect(), json!({"reply":"hello","name":"box1"}));
    }
}

fn hello_entry() -> Value {
    json!({"path":"hello.txt","kind":"file","size":11,"mtime_ns":1_795_161_600_123_456_789_i64,
           "mode":420,"type":"text/plain"})
}

#[test]
fn a_session_as_the_protocol_document_shows_it() {
    let s = Setup::new(sample_box);
    let mut c = Raw::connect(&s);
    c.hello();
    list_files_only_in_one_chunk_then_the_end(&mut c);
    list_with_hashes_by_modification_time(&mut c);
    list_matching_nothing_sends_only_the_end(&mut c);
    let entry = hash_gives_one_entry_with_its_md5(&mut c);
    download_sends_header_raw_bytes_then_trailer(&mut c, &entry);
    download_of_an_unhashed_file_has_the_md5_in_the_trailer_only(&mut c);
    sync_list_shows_folders_as_dirs(&mut c);
    errors_leave_the_connection_usable(&mut c);

    // The client hangs up between frames: a clean end for the server.
    drop(c);
    let mut c = Raw::connect(&s);
    c.hello();
}

/// list, files only, no hashes: one chunk of entries, then the end with the count.
fn list_files_only_in_one_chunk_then_the_end(c: &mut Raw) {
    c.send(r#"{"op":"list","filter":{"kind":"regex","pattern":"^(hello|docs/)"}}"#);
    let chunk = c.expect();
    assert_eq!(chunk["reply"], "entries");
    let entries = chunk["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2], hello_entry());
    assert_eq!(
        entries[1],
        json!({"path":"docs/read me.md","kind":"file","size":10,
               "mtime_ns":1_709_208_000_000_000_000_i64,"mode":384,"type":"text/markdown"})
    );
    assert_eq!(c.expect(), json!({"reply":"end","count":3}));
}

/// list with hashes, by modification time.
fn list_with_hashes_by_modification_time(c: &mut Raw) {
    c.send(
        r#"{"op":"list","filter":{"kind":"modified","start_ns":1709208000000000000,"end_ns":1709208000000000000},"listing":"hashes"}"#,
    );
    let chunk = c.expect();
    assert_eq!(
        chunk["entries"],
        json!([{"path":"docs/read me.md","kind":"file","size":10,
                "mtime_ns":1_709_208_000_000_000_000_i64,"mode":384,"type":"text/markdown",
                "md5":README_MD5}, {"path":"empty.dat","kind":"file","size":0,
                "mtime_ns":1_709_208_000_000_000_000_i64,"mode":292,
                "type":"application/octet-stream","md5":EMPTY_MD5}])
    );
    assert_eq!(c.expect(), json!({"reply":"end","count":2}));
}

/// Nothing matches: no entries frame at all, just the end.
fn list_matching_nothing_sends_only_the_end(c: &mut Raw) {
    c.send(r#"{"op":"list","filter":{"kind":"regex","pattern":"^nothing$"}}"#);
    assert_eq!(c.expect(), json!({"reply":"end","count":0}));
}

/// hash: one entry with its MD5. Returns that entry.
fn hash_gives_one_entry_with_its_md5(c: &mut Raw) -> Value {
    c.send(r#"{"op":"hash","path":"hello.txt"}"#);
    let mut entry = hello_entry();
    entry["md5"] = json!(HELLO_MD5);
    assert_eq!(c.expect(), json!({"reply":"entry","entry":entry}));
    entry
}

/// download: the header, exactly `size` raw bytes, then the trailer with the MD5. The header
/// carries the MD5 too when the server already knows it (it does: it just hashed the file).
fn download_sends_header_raw_bytes_then_trailer(c: &mut Raw, entry: &Value) {
    c.send(r#"{"op":"download","path":"hello.txt"}"#);
    assert_eq!(c.expect(), json!({"reply":"file","entry":entry}));
    assert_eq!(c.raw_bytes(11), b"hello world");
    assert_eq!(c.expect(), json!({"reply":"trailer","md5":HELLO_MD5}));
}

/// A file the server has not hashed yet: no MD5 in the header, the trailer brings it. An empty
/// file has no raw bytes at all.
fn download_of_an_unhashed_file_has_the_md5_in_the_trailer_only(c: &mut Raw) {
    c.send(r#"{"op":"download","path":"docs/deep/er/notes.txt"}"#);
    let header = c.expect();
    assert_eq!(header["reply"], "file");
    assert!(header["entry"].get("md5").is_none(), "{header}");
    assert_eq!(header["entry"]["size"], 5);
    assert_eq!(c.raw_bytes(5), b"deep\n");
    assert_eq!(c.expect(), json!({"reply":"trailer","md5":NOTES_MD5}));
    c.send(r#"{"op":"download","path":"empty.dat"}"#);
    assert_eq!(c.expect()["entry"]["size"], 0);
    assert_eq!(c.expect(), json!({"reply":"trailer","md5":EMPTY_MD5}));
}

/// Folders (in a sync listing) come with kind "dir" and type "inode/directory".
fn sync_list_shows_folders_as_dirs(c: &mut Raw) {
    c.send(r#"{"op":"sync_list"}"#);
    let chunk = c.expect();
    let dir = chunk["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "docs/deep");
    let dir = dir.expect("the folder is listed");
    assert_eq!(dir["kind"], "dir");
    assert_eq!(dir["type"], "inode/directory");
    assert_eq!(dir["size"], 0);
    assert_eq!(c.expect()["reply"], "end");
}

/// Errors: a reply with a code and a sentence; the connection stays usable after each.
fn errors_leave_the_connection_usable(c: &mut Raw) {
    let errors = [
        (r#"{"op":"hash","path":"missing.txt"}"#, "not_found"),
        (r#"{"op":"download","path":"docs"}"#, "not_found"),
        (r#"{"op":"download","path":"hello.txt/below"}"#, "not_found"),
        (r#"{"op":"download","path":"../etc/passwd"}"#, "bad_path"),
        (r#"{"op":"hash","path":"/etc/passwd"}"#, "bad_path"),
        (r#"{"op":"hash","path":"a\\b"}"#, "bad_path"),
        (
            r#"{"op":"download","path":"link-out/secret.txt"}"#,
            "bad_path",
        ),
        (r#"{"op":"download","path":".minibox/log"}"#, "bad_path"),
        (
            r#"{"op":"list","filter":{"kind":"regex","pattern":"("}}"#,
            "bad_request",
        ),
        (r#"{"op":"hello","name":"again"}"#, "bad_request"),
        (r#"{"op":"download_udp","path":"missing.txt"}"#, "not_found"),
        (r#"{"op":"udp_received","token":1}"#, "bad_request"),
    ];
    for (request, code) in errors {
        c.send(request);
        let reply = c.expect();
        assert_eq!(reply["reply"], "error", "{request}: {reply}");
        assert_eq!(reply["code"], code, "{request}: {reply}");
        assert!(
            !reply["message"].as_str().unwrap().is_empty(),
            "{request}: {reply}"
        );
        assert_eq!(reply.as_object().unwrap().len(), 3, "{reply}");
    }
    c.send(r#"{"op":"hash","path":"hello.txt"}"#);
    assert_eq!(c.expect()["reply"], "entry");
}

/// An ack datagram exactly as `docs/PROTOCOL.md` draws it (no gaps).
fn ack_datagram(token: u64, cumulative: u32, window: u32, echo: u64) -> Vec<u8> {
    let mut d = b"MB\x01A".to_vec();
    d.extend_from_slice(&token.to_be_bytes());
    d.extend_from_slice(&cumulative.to_be_bytes());
    d.extend_from_slice(&window.to_be_bytes());
    d.extend_from_slice(&cumulative.to_be_bytes()); // seen_end: nothing known past the ack
    d.extend_from_slice(&echo.to_be_bytes());
    d.extend_from_slice(&0u16.to_be_bytes()); // no gaps
    assert_eq!(d.len(), 34);
    d
}

#[test]
fn a_udp_download_by_hand() {
    let s = Setup::new(sample_box);
    let mut c = Raw::connect(&s);
    c.hello();
    // The offer: the entry (with the MD5 once the server knows it), a token, the block size.
    c.send(r#"{"op":"download_udp","path":"hello.txt"}"#);
    let offer = c.expect();
    assert_eq!(offer["reply"], "udp_offer", "{offer}");
    assert_eq!(offer["entry"], hello_entry());
    assert_eq!(offer["block_size"], 32_768, "loopback blocks");
    let token = offer["token"].as_u64().unwrap();
    assert!(token > 0 && token < 1 << 53);
    // Our first ack, from a UDP socket of our own, to the server's UDP port (= its TCP port):
    // "nothing yet, window 8". The server answers to this datagram's source address.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    udp.send_to(&ack_datagram(token, 0, 8, 0), s.server.addr)
        .unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(from, s.server.addr, "data comes from the server's port");
    let d = &buf[..n];
    assert_eq!(&d[..3], b"MB\x01");
    assert_eq!(
        d[3], b'F',
        "the only block is also the last before the server waits"
    );
    assert_eq!(u64::from_be_bytes(d[4..12].try_into().unwrap()), token);
    assert_eq!(
        u32::from_be_bytes(d[12..16].try_into().unwrap()),
        0,
        "block 0"
    );
    let sent_at = u64::from_be_bytes(d[16..24].try_into().unwrap());
    assert!(sent_at > 0);
    assert_eq!(&d[24..], b"hello world");
    // Ack it (echoing its time), say so on TCP, get the trailer.
    udp.send_to(&ack_datagram(token, 1, 8, sent_at), s.server.addr)
        .unwrap();
    c.send(&format!(r#"{{"op":"udp_received","token":{token}}}"#));
    assert_eq!(c.expect(), json!({"reply":"trailer","md5":HELLO_MD5}));
    // The connection goes on as usual.
    c.send(r#"{"op":"hash","path":"hello.txt"}"#);
    assert_eq!(c.expect()["reply"], "entry");
}

/// Sends `frame` (after a handshake if `hello`), expects a `bad_request` error, then the close.
fn refused_then_closed(s: &Setup, hello: bool, send: impl FnOnce(&mut Raw)) {
    let mut c = Raw::connect(s);
    if hello {
        c.hello();
    }
    send(&mut c);
    let reply = c.expect();
    assert_eq!(reply["reply"], "error", "{reply}");
    assert_eq!(reply["code"], "bad_request", "{reply}");
    assert_eq!(c.recv(), None, "the server closed the connection");
}

#[test]
fn malformed_frames_get_an_error_and_a_closed_connection_and_the_server_goes_on() {
    let s = Setup::new(sample_box);
    // An unknown request.
    refused_then_closed(&s, true, |c| c.send(r#"{"op":"format_disk"}"#));
    // A known request with an unknown field.
    refused_then_closed(&s, true, |c| {
        c.send(r#"{"op":"hash","path":"hello.txt","force":true}"#);
    });
    // Not JSON.
    refused_then_closed(&s, true, |c| c.send_bytes(2, b"\xff\xfe not json"));
    // Another protocol version (1, before `listing` replaced two flags).
    refused_then_closed(&s, true, |c| c.send_bytes(1, b"{}"));
    // A length over the 4 MiB limit: refused from the header alone.
    refused_then_closed(&s, true, |c| {
        let mut header = vec![2u8];
        header.extend_from_slice(&(4 * 1024 * 1024 + 1_u32).to_be_bytes());
        c.0.write_all(&header).unwrap();
    });
    // A request before the handshake.
    refused_then_closed(&s, false, |c| {
        c.send(r#"{"op":"hash","path":"hello.txt"}"#);
    });
    // Something that is not minibox at all.
    refused_then_closed(&s, false, |c| {
        c.0.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    });
    // A client that connects and leaves at once.
    drop(Raw::connect(&s));

    // And the server still answers properly.
    let mut c = Raw::connect(&s);
    c.hello();
    c.send(r#"{"op":"hash","path":"hello.txt"}"#);
    assert_eq!(c.expect()["entry"]["md5"], HELLO_MD5);
    let log = std::fs::read_to_string(s.server_box.join(".minibox/log")).unwrap();
    assert_eq!(log.matches("dropped: ").count(), 7, "{log}");
}

/// One item of a folder, for [`folder_digest`]: name, is a folder, size, mtime, bits, MD5.
type Item<'a> = (&'a str, bool, u64, i64, u32, [u8; 16]);

/// A folder digest computed by hand, exactly as `docs/PROTOCOL.md` defines it: for each item
/// directly in the folder, in path order, its last part, a 0 byte, `d` or `f`, then size, mtime,
/// permission bits (8, 8 and 4 bytes, little-endian) and the 16 bytes of its MD5.
fn folder_digest(items: &[Item<'_>]) -> String {
    let mut bytes = Vec::new();
    for (name, dir, size, mtime, mode, md5) in items {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.push(if *dir { b'd' } else { b'f' });
        bytes.extend_from_slice(&size.to_le_bytes());
        bytes.extend_from_slice(&mtime.to_le_bytes());
        bytes.extend_from_slice(&mode.to_le_bytes());
        bytes.extend_from_slice(md5);
    }
    minibox::protocol::md5::md5_reader(bytes.as_slice()).unwrap()
}

fn md5_bytes(hex: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn sync_list_sends_only_the_folders_whose_digest_differs() {
    let s = Setup::new(sample_box);
    let mut c = Raw::connect(&s);
    c.hello();
    c.send(&sync_list_with_known_digests(&s).to_string());
    let (paths, mut same, count) = read_sync_list(&mut c);
    same.sort();
    assert_eq!(
        same,
        ["docs/deep", "docs/deep/er"],
        "the two digests that match"
    );
    assert_eq!(count as usize, paths.len());
    assert!(
        paths.iter().all(|p| !p.starts_with("docs/deep/")),
        "{paths:?}"
    );
    // Everything else comes: the top folder (not named) and docs/ (a wrong digest).
    for p in [
        "hello.txt",
        "docs",
        "docs/read me.md",
        "docs/deep",
        "empty.dat",
        "big.bin",
    ] {
        assert!(paths.iter().any(|x| x == p), "{p} missing from {paths:?}");
    }
}

/// A `sync_list` request naming four folders: docs/deep/er and docs/deep with their right
/// digests, docs with a wrong one, and a folder the server does not have.
fn sync_list_with_known_digests(s: &Setup) -> Value {
    let notes = md5_bytes(&md5_of(&s.server_box.join("docs/deep/er/notes.txt")));
    // docs/deep/er holds one file; docs/deep holds one folder, er.
    let er_mode = {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(s.server_box.join("docs/deep/er")).unwrap();
        meta.permissions().mode() & 0o777
    };
    let er = folder_digest(&[("notes.txt", false, 5, NOTES_MTIME, 0o640, notes)]);
    let deep = folder_digest(&[("er", true, 0, 0, er_mode, [0; 16])]);
    json!({"op":"sync_list","known":[
        {"folder":"docs/deep/er","md5":er},
        {"folder":"docs/deep","md5":deep},
        {"folder":"docs","md5":"00000000000000000000000000000000"},
        {"folder":"gone","md5":"d41d8cd98f00b204e9800998ecf8427e"},
    ]})
}

/// Reads a sync listing up to its end; checks that every reply is one a listing may hold.
/// Returns the paths listed, the folders said to be the same, and the count of the end.
fn read_sync_list(c: &mut Raw) -> (Vec<String>, Vec<String>, u64) {
    let mut paths = Vec::new();
    let mut same = Vec::new();
    let count = loop {
        let reply = c.expect();
        match reply["reply"].as_str().unwrap() {
            "entries" => paths.extend(
                reply["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["path"].as_str().unwrap().to_string()),
            ),
            "same" => same.extend(
                reply["folders"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_str().unwrap().to_string()),
            ),
            "working" => {}
            "end" => break reply["count"].as_u64().unwrap(),
            other => panic!("unexpected {other}: {reply}"),
        }
    };
    (paths, same, count)
}

/// The edge cases of a sync listing's `known`, as the page tells them: a folder name that
/// breaks the name rules is no error (it is never the same); more than 20,000 folders get a
/// `bad_request` and the connection stays usable; a digest that is not one closes it.
#[test]
fn sync_list_edge_cases_of_known() {
    let s = Setup::new(sample_box);
    let mut c = Raw::connect(&s);
    c.hello();
    c.send(r#"{"op":"sync_list","known":[{"folder":"../x","md5":"d41d8cd98f00b204e9800998ecf8427e"}]}"#);
    let (paths, same, _) = read_sync_list(&mut c);
    assert!(same.is_empty(), "{same:?}");
    assert!(
        paths.iter().any(|p| p == "hello.txt"),
        "the whole box: {paths:?}"
    );

    let known: Vec<Value> = (0..20_001)
        .map(|i| json!({"folder": format!("f{i}"), "md5": "d41d8cd98f00b204e9800998ecf8427e"}))
        .collect();
    c.send(&json!({"op":"sync_list","known":known}).to_string());
    let reply = c.expect();
    assert_eq!(reply["code"], "bad_request", "{reply}");
    assert!(
        reply["message"].as_str().unwrap().contains("at most 20000"),
        "{reply}"
    );
    c.send(r#"{"op":"hash","path":"hello.txt"}"#);
    assert_eq!(c.expect()["reply"], "entry", "still usable");

    refused_then_closed(&s, true, |c| {
        c.send(r#"{"op":"sync_list","known":[{"folder":"docs","md5":"not a digest"}]}"#)
    });
}

/// Big files by blocks, by hand: a file's block list, then some of its blocks, as the protocol
/// document shows them.
#[test]
fn blocks_and_ranges_by_hand() {
    let s = Setup::new(sample_box);
    let path = s.server_box.join("big.bin");
    let bytes = std::fs::read(&path).unwrap();
    let mut c = Raw::connect(&s);
    c.hello();
    let md5 = a_block_list_is_a_header_chunks_of_md5s_and_a_trailer(&mut c, &bytes);
    a_range_is_a_header_raw_bytes_and_a_trailer(&mut c, &bytes, &md5);
    ranges_of_another_version_or_past_the_end_are_refused(&mut c, &md5);
    // The file changes: blocks of the old version are no longer to be had.
    std::fs::write(&path, b"a new version").unwrap();
    let range = format!(r#"{{"op":"range","path":"big.bin","md5":"{md5}","first":0,"count":1}}"#);
    c.send(&range);
    let reply = c.expect();
    assert_eq!(reply["code"], "changed", "{reply}");
    c.send(r#"{"op":"blocks","path":"missing.bin"}"#);
    assert_eq!(c.expect()["code"], "not_found");
}

/// blocks: 128 KiB blocks for a 5 MiB file (the size rule), their MD5s in order, the whole
/// file's MD5 in the trailer. Returns it.
fn a_block_list_is_a_header_chunks_of_md5s_and_a_trailer(c: &mut Raw, bytes: &[u8]) -> String {
    c.send(r#"{"op":"blocks","path":"big.bin"}"#);
    let header = c.expect();
    assert_eq!(header["reply"], "block_list", "{header}");
    assert_eq!(header["block_size"], 131_072);
    assert_eq!(header["entry"]["path"], "big.bin");
    assert_eq!(header["entry"]["size"], bytes.len());
    let mut md5s = Vec::new();
    let trailer = loop {
        let reply = c.expect();
        match reply["reply"].as_str() {
            Some("block_sums") => md5s.extend(reply["md5s"].as_array().unwrap().clone()),
            _ => break reply,
        }
    };
    let expected: Vec<Value> = bytes
        .chunks(131_072)
        .map(|b| json!(testkit::md5_of(b)))
        .collect();
    assert_eq!(md5s.len(), 41);
    assert_eq!(md5s, expected);
    let md5 = testkit::md5_of(bytes);
    assert_eq!(trailer, json!({"reply":"trailer","md5":md5}));
    md5
}

/// range: the bytes of the blocks asked for, then the version's MD5; the last block is short,
/// and an empty range only says the version is still there.
fn a_range_is_a_header_raw_bytes_and_a_trailer(c: &mut Raw, bytes: &[u8], md5: &str) {
    let range = |first: u64, count: u64| {
        format!(
            r#"{{"op":"range","path":"big.bin","md5":"{md5}","first":{first},"count":{count}}}"#
        )
    };
    c.send(&range(1, 2));
    assert_eq!(
        c.expect(),
        json!({"reply":"range","first":1,"count":2,"size":262_144})
    );
    assert_eq!(c.raw_bytes(262_144), &bytes[131_072..393_216]);
    assert_eq!(c.expect(), json!({"reply":"trailer","md5":md5}));
    c.send(&range(40, 1));
    assert_eq!(
        c.expect(),
        json!({"reply":"range","first":40,"count":1,"size":3})
    );
    assert_eq!(c.raw_bytes(3), &bytes[40 * 131_072..]);
    assert_eq!(c.expect(), json!({"reply":"trailer","md5":md5}));
    c.send(&range(0, 0));
    assert_eq!(
        c.expect(),
        json!({"reply":"range","first":0,"count":0,"size":0})
    );
    assert_eq!(c.expect(), json!({"reply":"trailer","md5":md5}));
}

fn ranges_of_another_version_or_past_the_end_are_refused(c: &mut Raw, md5: &str) {
    let other = "0123456789abcdef0123456789abcdef";
    c.send(&format!(
        r#"{{"op":"range","path":"big.bin","md5":"{other}","first":0,"count":1}}"#
    ));
    assert_eq!(c.expect()["code"], "changed");
    c.send(&format!(
        r#"{{"op":"range","path":"big.bin","md5":"{md5}","first":40,"count":2}}"#
    ));
    assert_eq!(c.expect()["code"], "bad_request");
    c.send(&format!(
        r#"{{"op":"range","path":"big.bin","md5":"{md5}","first":18446744073709551615,"count":18446744073709551615}}"#
    ));
    assert_eq!(c.expect()["code"], "bad_request");
}
