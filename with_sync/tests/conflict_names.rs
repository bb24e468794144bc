//! The conflict-copy name format is written in one place (`with_sync::plan::conflict_name`) and
//! read in another (`minibox::local::conflicts::parse`, low in the shared crate so that every
//! shell can list conflicts). This keeps the two in step: every name the first makes, the second
//! reads back as the path it is a copy of and the peer it names.

use minibox::local::conflicts::parse;
use with_sync::plan::conflict_name;

#[test]
fn every_conflict_name_reads_back_as_its_original_and_peer() {
    let paths = [
        "report.txt",
        "a/b.c/notes",
        ".bashrc",
        "a.tar.gz",
        "deep/er/x.conflict-old-20200101-000000.md",
        "spaces in a name.txt",
        "ünïcode/файл.txt",
    ];
    let peers = ["box2", "my-box.2", "peer_1", "a b/../c", "..", ""];
    let times = [0, 1_764_065_700_000_000_000, -1_000_000_000, i64::MAX / 2];
    for path in paths {
        for peer in peers {
            for t in times {
                for tag in [None, Some("0123abcd")] {
                    let copy = conflict_name(path, peer, t, tag);
                    let read = parse(&copy).unwrap_or_else(|| panic!("{copy} not read back"));
                    assert_eq!(read.original, path, "{copy}");
                    assert!(
                        copy.contains(&format!(".conflict-{}-", read.peer)),
                        "{copy}"
                    );
                }
            }
        }
    }
    assert_eq!(parse("report.txt"), None);
}
