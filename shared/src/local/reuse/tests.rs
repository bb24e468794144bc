use super::*;

const B: u64 = 128 * 1024;

/// A list of blocks named by letters (each letter a different MD5), the last one `last` long.
fn blocks(letters: &str, last: u64) -> BlockList {
    let md5s: Vec<Md5> = letters.bytes().map(|c| Md5::of(&[c])).collect();
    let size = (md5s.len() as u64 - 1) * B + last;
    BlockList::new(size, md5s).unwrap()
}

fn candidate(letters: &str, last: u64) -> Candidate {
    Candidate {
        name: letters.to_string(),
        stamp: Stamp {
            size: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            inode: 0,
        },
        list: Arc::new(blocks(letters, last)),
        file: None,
    }
}

fn nothing_held(_: usize) -> Option<Md5> {
    None
}

#[test]
fn blocks_this_box_has_are_copied_and_the_others_come_from_the_peer() {
    let new = blocks("abXd", B);
    let old = [candidate("abcd", B)];
    let sources = plan(&new, &nothing_held, &old);
    assert_eq!(
        sources,
        vec![
            Source::File(0, 0),
            Source::File(0, B),
            Source::Peer,
            Source::File(0, 3 * B)
        ]
    );
}

#[test]
fn a_block_in_another_file_or_at_another_place_is_found() {
    let new = blocks("zyab", B);
    let here = [candidate("abcd", B), candidate("qrsz", B)];
    let sources = plan(&new, &nothing_held, &here);
    assert_eq!(
        sources,
        vec![
            Source::File(1, 3 * B),
            Source::Peer,
            Source::File(0, 0),
            Source::File(0, B)
        ]
    );
}

#[test]
fn a_last_block_matches_only_one_of_its_own_length() {
    // The same MD5 cannot be two lengths, but the index must not pair a short block with a
    // full one: it keys blocks by MD5 and length.
    let new = blocks("ab", 10);
    let old = [candidate("ab", B)];
    assert_eq!(
        plan(&new, &nothing_held, &old),
        vec![Source::File(0, 0), Source::Peer]
    );
}

#[test]
fn blocks_held_by_the_partial_download_are_kept_first() {
    let new = blocks("abc", B);
    let held = |i: usize| (i == 1).then(|| Md5::of(b"b"));
    let wrong = |i: usize| (i == 2).then(|| Md5::of(b"x"));
    let old = [candidate("ab", B)];
    assert_eq!(
        plan(&new, &held, &old),
        vec![Source::File(0, 0), Source::Partial(B), Source::Peer]
    );
    assert_eq!(
        plan(&new, &wrong, &[]),
        vec![Source::Peer, Source::Peer, Source::Peer]
    );
}

#[test]
fn a_block_repeated_in_the_new_file_crosses_the_wire_once_if_it_is_written_by_then() {
    // Eight blocks of 128 KiB make the 1 MiB a sink may hold unwritten: a repeat right after
    // is fetched again, one far enough is copied from the partial file.
    let new = blocks("XaXbcdefghijX", B);
    let sources = plan(&new, &nothing_held, &[]);
    assert_eq!(sources[0], Source::Peer);
    assert_eq!(sources[2], Source::Peer, "too close: maybe not written yet");
    assert_eq!(sources[12], Source::Partial(0));
}
