use super::*;
use std::os::unix::fs::symlink;

#[test]
fn a_scan_lists_files_and_folders_and_skips_links_and_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join("a/b")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::create_dir_all(root.join(META_DIR)).unwrap();
    fs::write(root.join(META_DIR).join("log"), "x").unwrap();
    fs::write(root.join("a/b/deep file.txt"), "hello").unwrap();
    fs::write(root.join("top.json"), "{}").unwrap();
    fs::set_permissions(root.join("top.json"), fs::Permissions::from_mode(0o4755)).unwrap();
    symlink("/etc", root.join("link")).unwrap();

    let names: Vec<(String, Kind)> = scan(root)
        .unwrap()
        .into_iter()
        .map(|s| (s.path, s.kind))
        .collect();
    assert_eq!(
        names,
        vec![
            ("a".into(), Kind::Dir),
            ("a/b".into(), Kind::Dir),
            ("a/b/deep file.txt".into(), Kind::File),
            ("empty".into(), Kind::Dir),
            ("top.json".into(), Kind::File),
        ]
    );
    let all = scan(root).unwrap();
    let top = all.iter().find(|s| s.path == "top.json").unwrap().entry();
    assert_eq!(top.mode, 0o755, "setuid is not kept");
    assert_eq!(top.mime, "application/json");
    assert_eq!(all[2].entry().size, 5);
    assert_eq!(all[2].entry().mime, "text/plain");
    assert_eq!(all[0].entry().mime, "inode/directory");
}
