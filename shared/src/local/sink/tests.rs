use crate::local::fast::sink::{ALIGN, BLOCK, LARGE};
use crate::local::install::TempFile;
use crate::local::LocalBox;
use crate::protocol::md5::digest_reader;

/// Every size around the thresholds, fed by `put` in odd pieces or through `spare`: the file
/// holds exactly the bytes, in place, and the MD5 is theirs, whichever sink `TempFile::sink` chose.
#[test]
fn a_sink_writes_and_hashes_every_byte_in_order() {
    let sizes = [
        0usize,
        1,
        ALIGN - 1,
        ALIGN + 1,
        BLOCK,
        BLOCK * 2 + 5,
        LARGE as usize,
        LARGE as usize + ALIGN * 3 + 77,
    ];
    for size in sizes {
        for by_put in [false, true] {
            let data: Vec<u8> = (0..size).map(|j| (j * 31 % 251) as u8).collect();
            let dir = tempfile::tempdir().unwrap();
            let local = LocalBox::open(dir.path(), "t").unwrap();
            let mut tmp = TempFile::create(&local, None).unwrap();
            let path = tmp.path().to_path_buf();
            let mut sink = tmp.sink(size as u64).unwrap();
            if by_put {
                for piece in data.chunks(32 * 1024 + 7) {
                    sink.put(piece).unwrap();
                }
            } else {
                let mut rest = data.as_slice();
                while !rest.is_empty() {
                    let spare = sink.spare();
                    let n = spare.len().min(rest.len()).min(100_000);
                    spare[..n].copy_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    sink.filled(n).unwrap();
                }
            }
            let md5 = sink.finish().unwrap();
            let what = format!("size {size}, put {by_put}");
            assert!(std::fs::read(&path).unwrap() == data, "{what}");
            assert_eq!(md5, digest_reader(data.as_slice()).unwrap(), "{what}");
        }
    }
}
