use super::*;
use crate::ask::list::receive;
use crate::protocol::message::Reply;
use crate::wire::conn::Connection;
use std::net::{TcpListener, TcpStream};

fn file(path: &str) -> Entry {
    Entry {
        path: path.into(),
        kind: Kind::File,
        size: 1,
        mtime_ns: 0,
        mode: 0o644,
        mime: "text/plain".into(),
        md5: Some("5eb63bbbe01eeed093cb22bb8f5acdc3".into()),
    }
}

/// What `receive` makes of these replies, as a sync listing that asked about `known`.
fn receive_these(replies: Vec<Reply>, known: &[&str]) -> Result<(Vec<String>, Vec<String>)> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let server = std::thread::spawn(move || {
        let mut server = Connection::new(listener.accept().unwrap().0).unwrap();
        for reply in replies {
            // The client may hang up first: the rest is not heard.
            let _ = server.send(&reply);
        }
    });
    let mut client = Connection::new(client).unwrap();
    let known: Vec<String> = known.iter().map(|k| k.to_string()).collect();
    let mut paths = Vec::new();
    let got = receive(&mut client, true, &known, &mut |e| paths.push(e.path));
    drop(client);
    server.join().unwrap();
    got.map(|same| (paths, same))
}

fn refused(replies: Vec<Reply>, known: &[&str], why: &str) {
    let e = receive_these(replies, known).unwrap_err();
    assert!(e.to_string().contains(why), "wanted {why:?}: {e}");
}

#[test]
fn an_honest_listing_passes() {
    let replies = vec![
        Reply::Working {
            done: 0,
            total: 10,
            scanned: 0,
        },
        Reply::Entries {
            entries: vec![file("a"), file("a b"), file("a/b")],
        },
        Reply::Same {
            folders: vec!["c".into(), "d".into()],
        },
        Reply::End { count: 3 },
    ];
    let (paths, same) = receive_these(replies, &["c", "d", "e"]).unwrap();
    assert_eq!(paths, ["a", "a b", "a/b"]);
    assert_eq!(same, ["c", "d"]);
}

#[test]
fn chunks_that_are_empty_or_too_long_are_refused() {
    let empty = Reply::Entries { entries: vec![] };
    refused(vec![empty], &[], "a chunk of 0 entries");
    let many: Vec<Entry> = (0..=ENTRIES_PER_CHUNK)
        .map(|i| file(&format!("f{i:04}")))
        .collect();
    refused(
        vec![Reply::Entries { entries: many }],
        &[],
        "a chunk of 513 entries",
    );
    refused(
        vec![Reply::Same { folders: vec![] }],
        &[],
        "a chunk of 0 same",
    );
}

#[test]
fn names_out_of_order_or_twice_are_refused() {
    let twice = Reply::Entries {
        entries: vec![file("a"), file("a")],
    };
    refused(vec![twice], &[], "out of order, or twice");
    // Across chunks too.
    let first = Reply::Entries {
        entries: vec![file("b")],
    };
    let again = Reply::Entries {
        entries: vec![file("a")],
    };
    refused(vec![first, again], &[], "out of order, or twice");
    let same = |f: &str| Reply::Same {
        folders: vec![f.into()],
    };
    refused(vec![same("c"), same("c")], &["c"], "out of order, or twice");
    refused(vec![same("x")], &["c"], "which we did not ask about");
}

#[test]
fn entries_that_carry_too_much_are_refused() {
    let long_type = Entry {
        mime: "t".repeat(MAX_TYPE + 1),
        ..file("a")
    };
    refused(
        vec![Reply::Entries {
            entries: vec![long_type],
        }],
        &[],
        "a type of 256 bytes",
    );
    let not_md5 = Entry {
        md5: Some("x".repeat(1000)),
        ..file("a")
    };
    refused(
        vec![Reply::Entries {
            entries: vec![not_md5],
        }],
        &[],
        "is not an MD5",
    );
    let too_long = file(&"n".repeat(crate::protocol::limits::MAX_PATH + 1));
    refused(
        vec![Reply::Entries {
            entries: vec![too_long],
        }],
        &[],
        "longer than the 4095 bytes",
    );
}

#[test]
fn a_listing_whose_names_add_up_past_the_limit_is_refused() {
    // What 65,000 names of 4,000 bytes would have added up to so far.
    let mut total = MAX_LISTING_NAMES - 10;
    add_names(&mut total, &[file("0123456789")]).unwrap();
    let e = add_names(&mut total, &[file("x")]).unwrap_err();
    assert!(e.to_string().contains("more than 268435456 bytes"), "{e}");
}
