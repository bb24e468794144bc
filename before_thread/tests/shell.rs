//! The stage-1 shell against the real stage-1 server, command by command, in both output modes:
//! listings, hashes, downloads (bytes, mtime to the nanosecond, permission bits, the trash, nested
//! folders, names with spaces, empty and multi-megabyte files), `help` and `quit`.
//!
//! Errors are in `errors.rs`; `index shortlist` and its timestamp forms in `shortlist.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// The MIME type the listing should show for each sample file.
fn mime(path: &str) -> &'static str {
    match path {
        "docs/read me.md" => "text/markdown",
        p if p.ends_with(".txt") => "text/plain",
        _ => "application/octet-stream",
    }
}

/// Checks one file object of a listing against the file in the server box.
fn check_file(value: &Value, server_box: &Path, with_md5: bool) {
    let path = value["path"].as_str().unwrap();
    let on_disk = server_box.join(path);
    let meta = fs::metadata(&on_disk).unwrap();
    if with_md5 {
        assert_keys(value, &["path", "size", "mtime", "type", "md5"]);
        assert_eq!(value["md5"], md5_of(&on_disk), "{path}");
    } else {
        assert_keys(value, &["path", "size", "mtime", "type"]);
    }
    assert_eq!(value["size"], meta.len(), "{path}");
    assert_eq!(value["type"], mime(path), "{path}");
    let mtime = value["mtime"].as_str().unwrap();
    assert!(mtime.ends_with('Z'), "RFC 3339 in UTC: {mtime}");
    assert_eq!(
        i128::from(minibox::protocol::timestamp::parse(mtime).unwrap()),
        testkit::mtime_ns(&on_disk),
        "{path}: {mtime} is the file's mtime to the nanosecond"
    );
}

fn paths_of(value: &Value) -> Vec<&str> {
    value["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files in {value}"))
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect()
}

fn files(value: &Value) -> &Vec<Value> {
    assert_keys(value, &["ok", "files"]);
    assert_eq!(value["ok"], true, "{value}");
    value["files"].as_array().unwrap()
}

#[test]
fn every_listing_command_in_json_mode() {
    let s = Setup::new(sample_box);
    let run = s.json(
        "index longlist\n\
         INDEX Regex \\.txt$\n\
         index regex ^docs/\n\
         index regex nothing-matches-this\n\
         hash verify \"docs/read me.md\"\n\
         hash checkall\n\
         help\n\
         quit\n\
         index longlist\n",
    );
    assert_eq!(run.code(), 0, "every command succeeded: {run:?}");
    let lines = run.json_lines();
    assert_eq!(
        lines.len(),
        7,
        "one line per command, none after quit: {run:?}"
    );
    json_longlist_has_every_regular_file(&lines[0], &s.server_box);
    json_regex_is_unanchored_on_the_whole_path(&lines, &s.server_box);
    json_hash_verify_gives_one_file_with_its_md5(&lines[4], &s.server_box);
    json_hash_checkall_gives_every_file_with_its_md5(&lines[5], &s.server_box);
    json_help_lists_every_command(&lines[6]);
    both_sides_logged_each_request(&s);
}

/// index longlist: every regular file, sorted; no folders, no link, nothing of .minibox/.
fn json_longlist_has_every_regular_file(line: &Value, server_box: &Path) {
    assert_eq!(paths_of(line), SAMPLE_FILES);
    for file in files(line) {
        check_file(file, server_box, false);
    }
    assert_eq!(files(line)[4]["mtime"], "2026-11-20T08:00:00.123456789Z");
    assert_eq!(files(line)[2]["mtime"], "2024-02-29T12:00:00Z");
}

/// index regex: unanchored, on the whole relative path, keywords case-insensitive (lines 1 to 3).
fn json_regex_is_unanchored_on_the_whole_path(lines: &[Value], server_box: &Path) {
    assert_eq!(paths_of(&lines[1]), ["docs/deep/er/notes.txt", "hello.txt"]);
    assert_eq!(
        paths_of(&lines[2]),
        ["docs/deep/er/notes.txt", "docs/read me.md"]
    );
    for file in files(&lines[2]) {
        check_file(file, server_box, false);
    }
    assert!(files(&lines[3]).is_empty());
}

/// hash verify: one file, with its MD5.
fn json_hash_verify_gives_one_file_with_its_md5(line: &Value, server_box: &Path) {
    let one = files(line);
    assert_eq!(one.len(), 1);
    check_file(&one[0], server_box, true);
    assert_eq!(one[0]["md5"], README_MD5);
}

/// hash checkall: every file with its MD5 (known values, not only recomputed ones).
fn json_hash_checkall_gives_every_file_with_its_md5(line: &Value, server_box: &Path) {
    assert_eq!(paths_of(line), SAMPLE_FILES);
    for file in files(line) {
        check_file(file, server_box, true);
    }
    let md5s: Vec<&str> = files(line)
        .iter()
        .map(|f| f["md5"].as_str().unwrap())
        .collect();
    assert_eq!(&md5s[1..], [NOTES_MD5, README_MD5, EMPTY_MD5, HELLO_MD5]);
}

/// help: {"ok": true, "help": "…"}, listing every command.
fn json_help_lists_every_command(line: &Value) {
    assert_keys(line, &["ok", "help"]);
    assert_eq!(line["ok"], true);
    let help = line["help"].as_str().unwrap();
    for command in [
        "index longlist",
        "index shortlist",
        "index regex",
        "hash verify",
        "hash checkall",
        "download TCP",
        "download UDP",
        "quit",
    ] {
        assert!(help.contains(command), "help mentions {command}");
    }
}

/// The server logged each request it answered, one line each, and the client what it asked.
fn both_sides_logged_each_request(s: &Setup) {
    // The server logged each request it answered, one line each.
    let log = fs::read_to_string(s.server_box.join(".minibox/log")).unwrap();
    assert_eq!(log.lines().count(), 6, "{log}");
    assert!(
        log.contains(&format!("hash \"docs/read me.md\"\tok md5 {README_MD5}")),
        "{log}"
    );
    // And the client logged what it asked.
    let log = fs::read_to_string(s.client_box.join(".minibox/log")).unwrap();
    assert_eq!(log.lines().count(), 6, "{log}");
}

/// The rows of a table, each split on runs of two or more spaces (cells hold single spaces).
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

#[test]
fn every_listing_command_in_human_mode() {
    let s = Setup::new(sample_box);
    let run = s.human(
        "index longlist\n\
         index regex read\n\
         index regex nothing-matches-this\n\
         hash verify hello.txt\n\
         hash checkall\n\
         help\n\
         exit\n\
         hash checkall\n",
    );
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stderr.is_empty(), "nothing on stderr: {}", run.stderr);
    let out = &run.stdout;
    // A table starts with a line "PATH …" (the help text says PATH too, mid-line).
    let lined = format!("\n{out}");
    let blocks: Vec<&str> = lined.split("\nPATH ").skip(1).collect();
    // longlist, regex, (no files), verify, checkall: four tables.
    assert_eq!(blocks.len(), 4, "{out}");
    human_longlist_table(blocks[0], out);
    human_regex_table_then_no_files(blocks[1], out);
    human_verify_table_has_the_md5(blocks[2]);
    human_checkall_table_then_help_then_nothing(blocks[3], out, &s.server_box);
}

/// The longlist table: header, one row per file with its size; local times to the second and
/// MIME types.
fn human_longlist_table(block: &str, out: &str) {
    let longlist = rows(&format!("PATH {block}"));
    assert_eq!(longlist[0], ["PATH", "SIZE", "MODIFIED", "TYPE"]);
    assert_eq!(longlist.len(), 6, "{out}");
    let sizes = ["5.0 MiB", "5 B", "10 B", "0 B", "11 B"];
    for ((row, path), size) in longlist[1..].iter().zip(SAMPLE_FILES).zip(sizes) {
        assert_eq!(row.len(), 4, "{row:?}");
        assert_eq!((row[0].as_str(), row[1].as_str()), (path, size));
    }
    // Times are local (TZ=UTC here), to the second; types are MIME guesses.
    assert_eq!(
        longlist[5],
        ["hello.txt", "11 B", "2026-11-20 08:00:00", "text/plain"]
    );
    assert_eq!(
        longlist[3],
        [
            "docs/read me.md",
            "10 B",
            "2024-02-29 12:00:00",
            "text/markdown"
        ]
    );
    assert_eq!(
        longlist[2],
        [
            "docs/deep/er/notes.txt",
            "5 B",
            "2025-06-30 23:59:59",
            "text/plain"
        ]
    );
}

/// The regex table has one row, and the regex that matches nothing says "no files".
fn human_regex_table_then_no_files(block: &str, out: &str) {
    let regex = rows(&format!("PATH {block}"));
    assert_eq!(
        regex.len(),
        3,
        "header, the table row, then \"no files\": {out}"
    );
    assert_eq!(regex[1][0], "docs/read me.md");
    assert_eq!(regex[2], ["no files"]);
}

/// The verify table has an MD5 column and the file's MD5.
fn human_verify_table_has_the_md5(block: &str) {
    let verify = rows(&format!("PATH {block}"));
    assert_eq!(verify[0], ["PATH", "SIZE", "MODIFIED", "TYPE", "MD5"]);
    assert_eq!(
        verify[1],
        [
            "hello.txt",
            "11 B",
            "2026-11-20 08:00:00",
            "text/plain",
            HELLO_MD5
        ]
    );
}

/// The checkall table with every MD5, then the help text, and nothing after `exit`.
fn human_checkall_table_then_help_then_nothing(block: &str, out: &str, server_box: &Path) {
    // checkall's table is followed by the help text; cut there.
    let (checkall, help) = block.split_once("commands (").unwrap();
    let checkall = rows(&format!("PATH {checkall}"));
    assert_eq!(checkall.len(), 6, "{out}");
    assert_eq!(
        checkall[4],
        [
            "empty.dat",
            "0 B",
            "2024-02-29 12:00:00",
            "application/octet-stream",
            EMPTY_MD5
        ]
    );
    assert_eq!(checkall[1][4], md5_of(&server_box.join("big.bin")));
    assert!(help.contains("download TCP FILE"), "{out}");
    // Nothing after `exit` ran: the last thing printed is the help text.
    assert!(
        out.trim_end().ends_with("download TCP \"my file.txt\""),
        "{out}"
    );
}

/// The files of a tree (no folders), from [`testkit::snapshot`].
fn files_only(root: &Path) -> Vec<(String, Vec<u8>, u32, i128)> {
    testkit::snapshot(root)
        .into_iter()
        .filter(|(_, (is_dir, ..))| !is_dir)
        .map(|(path, (_, bytes, mode, mtime))| (path, bytes, mode, mtime))
        .collect()
}

#[test]
fn downloads_keep_bytes_mtime_and_permissions_and_trash_what_they_replace() {
    let s = Setup::new(sample_box);
    // The client box already has older versions of two files.
    testkit::write(&s.client_box, "big.bin", b"old big");
    testkit::write(&s.client_box, "hello.txt", b"old hello");
    let run = s.json(
        "download TCP \"docs/read me.md\"\n\
         download tcp docs/deep/er/notes.txt\n\
         DOWNLOAD Tcp empty.dat\n\
         download TCP big.bin\n\
         download TCP hello.txt\n\
         download TCP hello.txt\n",
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = run.json_lines();
    each_download_answer_describes_the_source(&lines, &run, &s.server_box);
    the_client_box_matches_the_server_box(&s);
    replaced_files_are_in_the_trash_and_tmp_is_empty(&s.client_box);
    // The server's own files were only read.
    assert_eq!(
        fs::metadata(s.server_box.join("empty.dat"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o444
    );
}

/// One verified TCP answer per download, whose path, size, MD5 and mtime are the source's.
fn each_download_answer_describes_the_source(
    lines: &[Value],
    run: &testkit::ShellRun,
    server_box: &Path,
) {
    let names = [
        "docs/read me.md",
        "docs/deep/er/notes.txt",
        "empty.dat",
        "big.bin",
        "hello.txt",
        "hello.txt",
    ];
    assert_eq!(lines.len(), names.len(), "{run:?}");
    for (line, name) in lines.iter().zip(names) {
        assert_keys(line, &["ok", "file", "verified", "transport"]);
        assert_eq!(line["ok"], true);
        assert_eq!(line["verified"], true);
        assert_eq!(line["transport"], "tcp");
        let file = &line["file"];
        assert_keys(file, &["path", "size", "mtime", "md5"]);
        assert_eq!(file["path"], name);
        let source = server_box.join(name);
        assert_eq!(file["size"], fs::metadata(&source).unwrap().len());
        assert_eq!(file["md5"], md5_of(&source), "{name}");
        let mtime = minibox::protocol::timestamp::parse(file["mtime"].as_str().unwrap()).unwrap();
        assert_eq!(i128::from(mtime), testkit::mtime_ns(&source), "{name}");
    }
    assert_eq!(lines[0]["file"]["md5"], README_MD5);
    assert_eq!(lines[2]["file"]["md5"], EMPTY_MD5);
    assert_eq!(lines[4]["file"]["mtime"], "2026-11-20T08:00:00.123456789Z");
    assert_eq!(lines[3]["file"]["size"], BIG_LEN);
}

/// Same bytes, same permission bits, same mtime to the nanosecond; the nested folders were
/// made; the symbolic link and what it points to did not travel.
fn the_client_box_matches_the_server_box(s: &Setup) {
    assert_eq!(files_only(&s.client_box), files_only(&s.server_box));
    let modes: Vec<u32> = files_only(&s.client_box).iter().map(|f| f.2).collect();
    assert_eq!(modes, [0o755, 0o640, 0o600, 0o444, 0o644]);
    assert!(s.client_box.join("docs/deep/er").is_dir());
    assert!(!s.client_box.join("link-out").exists());
}

/// What was replaced is in the trash, whole (the second, identical download of hello.txt
/// trashed nothing); nothing is left half-done in tmp.
fn replaced_files_are_in_the_trash_and_tmp_is_empty(client_box: &Path) {
    let trash = client_box.join(".minibox/trash");
    let mut trashed: Vec<(String, Vec<u8>)> = testkit::files_under(&trash)
        .into_iter()
        .map(|rel| {
            let name = rel.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(trash.join(&rel)).unwrap())
        })
        .collect();
    trashed.sort();
    assert_eq!(
        trashed,
        [
            ("big.bin".to_string(), b"old big".to_vec()),
            ("hello.txt".to_string(), b"old hello".to_vec()),
        ]
    );
    assert_eq!(
        testkit::files_under(&client_box.join(".minibox/tmp")),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn a_download_in_human_mode_says_it_verified() {
    let s = Setup::new(sample_box);
    let run = s.human("download TCP \"docs/read me.md\"\ndownload tcp big.bin\n");
    assert_eq!(run.code(), 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{}", run.stdout);
    assert_eq!(
        rows(lines[0])[0],
        ["PATH", "SIZE", "MODIFIED", "TYPE", "MD5"]
    );
    assert_eq!(
        rows(lines[1])[0],
        [
            "docs/read me.md",
            "10 B",
            "2024-02-29 12:00:00",
            "text/markdown",
            README_MD5
        ]
    );
    assert_eq!(
        lines[2],
        "verified: MD5 matches the other box's, received over TCP"
    );
    assert_eq!(rows(lines[4])[0][..2], ["big.bin", "5.0 MiB"]);
    assert_eq!(lines[5], lines[2]);
    assert_eq!(
        fs::read(s.client_box.join("big.bin")).unwrap(),
        testkit::pseudo_random(BIG_LEN, 7)
    );
    assert_eq!(
        fs::read(s.client_box.join("docs/read me.md")).unwrap(),
        b"# minibox\n"
    );
}
